//! The client's configuration.

use core::time::Duration;
use std::sync::Arc;

use crate::node_addr::NodeAddr;
use crate::resp::{Limits, Protocol};
use crate::retry::RetryConfig;
use crate::topology::RefreshConfig;

use super::error::ConfigError;
use super::mode::Mode;
use crate::config::url::{duration, number, optional_duration, parse_value};
use crate::config::{ConnectionUrl, UrlError};
use crate::password::Password;
use crate::resp::parse_protocol;

/// Where read-only commands go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadFrom {
    /// Every command goes to the slot's primary (read-your-writes).
    #[default]
    Primary,
    /// Read-only commands go to a random online replica of the slot's shard, the primary when it
    /// has none. Reads may be stale by the replication lag.
    PreferReplica,
    /// Read-only commands go to an online replica in this availability zone, else the primary.
    AzAffinity(Arc<str>),
}

/// Why a read policy could not be read (see [`ReadFrom`]'s `FromStr`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a read policy: use primary, replica or az:<zone>")]
pub struct ReadFromError(pub String);

/// `primary`; `replica` (or `prefer_replica`); `az:<zone>` (or `az_affinity:<zone>`).
impl core::str::FromStr for ReadFrom {
    type Err = ReadFromError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "primary" => Ok(Self::Primary),
            "replica" | "prefer_replica" => Ok(Self::PreferReplica),
            other => match other.split_once(':') {
                Some(("az" | "az_affinity", zone)) if !zone.is_empty() => Ok(Self::AzAffinity(zone.into())),
                _ => Err(ReadFromError(s.to_owned())),
            },
        }
    }
}

/// `"primary"`, `"replica"` or `"az:<zone>"` (feature `serde`).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ReadFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::de::from_str(d, str::parse::<Self>)
    }
}

/// The longest [`ClientConfig::stall_timeout`] accepted: a longer one is most likely seconds
/// given where milliseconds were meant, and keeps a dead connection failing requests that long.
pub const MAX_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything the client state machine needs to know, validated by [`ClientConfig::validate`].
///
/// Build it with [`ClientConfig::new`] (or [`Default`], or from a URL with
/// [`ClientSettings::from_url`]) and set fields; with the `serde` feature it also reads from a
/// file (missing fields take their defaults, unknown ones are refused, durations are written
/// `"250ms"`).
#[derive(Clone, Debug)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct ClientConfig {
    /// Seed nodes (`"host:port"`); the first topology comes from whichever answers. No default:
    /// at least one is required.
    pub seeds: Vec<NodeAddr>,
    /// A cluster, a standalone node, or detected; default [`Mode::Auto`]. In files and URLs:
    /// `"auto"`, `"cluster"`, `"standalone"`. A standalone node serves every slot: the topology
    /// is one shard owning all 16384 slots, whose primary is the node (or, when a replica
    /// answers, its master) and whose replicas are those the primary's `INFO replication`
    /// lists as connected. Several seeds must then be nodes of that one deployment.
    pub mode: Mode,
    /// ACL user name; `None` (default) for the default user. Needs a password.
    pub username: Option<String>,
    /// Password; `None` (default) for no authentication. Never shown by `Debug`.
    pub password: Option<Password>,
    /// `CLIENT SETNAME` for every connection; default none. No spaces or newlines.
    pub client_name: Option<String>,
    /// The protocol to ask for (`2`/`3`); default RESP3, which falls back to RESP2 on servers
    /// without `HELLO`.
    pub protocol: Protocol,
    /// Whether connections use TLS (then `tls-port` from `CLUSTER SHARDS` is used); default
    /// false. Set by a `rediss://` URL; then the adapter's TLS settings are required.
    pub tls: bool,
    /// Where read-only commands go; default [`ReadFrom::Primary`]. In files and URLs:
    /// `"primary"`, `"replica"`, `"az:<zone>"`.
    pub read_from: ReadFrom,
    /// Connections per node, requests pipelined over them; default 1, must be 1..=64.
    pub connections_per_node: usize,
    /// A request's default whole budget, retries included; default 2 s, must be positive.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub request_timeout: Duration,
    /// How long a connection may take to open and finish its handshake; default 1 s, must be
    /// positive.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub connect_timeout: Duration,
    /// How long a connection may stay silent while the reply it owes first belongs to a request
    /// that already timed out, before the client closes it and opens another. Default 250 ms;
    /// must be more than zero and at most [`MAX_STALL_TIMEOUT`].
    ///
    /// Replies come back in the order commands were sent, so a connection whose oldest reply
    /// never comes (half-open: the peer or a middlebox lost it without a close; a node that
    /// dropped the bytes; a blocking command that outlived its request) holds every later
    /// request on it too. The rule: **when a request times out with its command in flight, and
    /// `stall_timeout` later the connection's oldest unanswered reply still belongs to no
    /// waiting request and nothing has arrived on it for `stall_timeout`, the connection is
    /// closed and replaced.** Commands in flight behind that reply are resent on a new
    /// connection when idempotent (within their own deadline) and fail with
    /// [`RequestError::ConnectionLost`](super::RequestError::ConnectionLost) otherwise, since
    /// they may have run; [`Stats::stalled`](super::Stats::stalled) counts such closes.
    ///
    /// A connection whose oldest reply some request still waits for is never closed for being
    /// slow: a `WAIT 1 250`, a long `EVAL` or a blocking command keeps its connection for as long
    /// as its request's timeout allows ([`Request::with_timeout`](super::Request::with_timeout)
    /// for commands meant to run longer than `request_timeout`). Give a blocking command a
    /// request timeout longer than its block: once its request has timed out, the blocked
    /// connection is closed `stall_timeout` later, which is also the only way to unblock it.
    /// A late reply within `stall_timeout` keeps the connection (a node that was merely slow).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub stall_timeout: Duration,
    /// Bound on requests queued or in flight per node; beyond it requests fail fast with
    /// `QueueFull`, so memory stays flat while a node is slow or down. Default 65,536, must be
    /// positive.
    pub max_queued_per_node: usize,
    /// Bound on outstanding requests for the whole client; default 1,048,576, must be positive.
    pub max_outstanding: usize,
    /// Retry budget and backoff; defaults in [`RetryConfig`]'s `Default`.
    pub retry: RetryConfig,
    /// When topology refreshes happen; defaults in [`RefreshConfig`]'s `Default`.
    pub refresh: RefreshConfig,
    /// RESP decoding limits; defaults in [`Limits`]'s `Default`.
    pub limits: Limits,
    /// Seed of the pseudo-random generator (jitter, replica choice); a fixed default, so
    /// whoever connects should draw one (the async layer does, from the operating system).
    pub rng_seed: u64,
}

impl Default for ClientConfig {
    /// The defaults, with no seeds (add at least one).
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl ClientConfig {
    /// A configuration with these seeds and defaults for everything else.
    #[must_use]
    pub fn new(seeds: Vec<NodeAddr>) -> Self {
        Self {
            seeds,
            mode: Mode::Auto,
            username: None,
            password: None,
            client_name: None,
            protocol: Protocol::Resp3,
            tls: false,
            read_from: ReadFrom::Primary,
            connections_per_node: 1,
            request_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            stall_timeout: Duration::from_millis(250),
            max_queued_per_node: 65_536,
            max_outstanding: 1 << 20,
            retry: RetryConfig::default(),
            refresh: RefreshConfig::default(),
            limits: Limits::default(),
            rng_seed: 0x5107_cac4e,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(ConfigError::Invalid { field, reason: reason.to_owned() })
        };
        if self.seeds.is_empty() {
            return Err(ConfigError::NoSeeds);
        }
        if let Some(seed) = self.seeds.iter().find(|s| s.host().is_empty() || s.port() == 0) {
            return Err(ConfigError::Invalid {
                field: "seeds",
                reason: format!("{seed} has no host or port"),
            });
        }
        if self.connections_per_node == 0 || self.connections_per_node > 64 {
            return invalid("connections_per_node", "must be 1..=64");
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be positive");
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout", "must be positive");
        }
        if self.stall_timeout.is_zero() || self.stall_timeout > MAX_STALL_TIMEOUT {
            return invalid("stall_timeout", "must be more than zero and at most 60 s");
        }
        if self.max_queued_per_node == 0 {
            return invalid("max_queued_per_node", "must be positive");
        }
        if self.max_outstanding == 0 {
            return invalid("max_outstanding", "must be positive");
        }
        if self.password.is_none() && self.username.is_some() {
            return invalid("username", "a user name needs a password");
        }
        if let Some(name) = &self.client_name {
            if name.bytes().any(|b| b == b' ' || b == b'\n' || b == b'\r') {
                return invalid("client_name", "CLIENT SETNAME refuses spaces and newlines");
            }
        }
        if let ReadFrom::AzAffinity(az) = &self.read_from {
            if az.is_empty() {
                return invalid("read_from", "an availability zone name is required");
            }
        }
        self.retry.validate().map_err(ConfigError::Retry)?;
        self.refresh.validate().map_err(ConfigError::Refresh)?;
        Ok(())
    }

    /// Applies one option of a connection URL ([`ConnectionUrl`]) that every client configuration
    /// understands; `Ok(false)` when
    /// `name` is not one of them:
    ///
    /// | option | setting | example |
    /// |---|---|---|
    /// | `read_from` | [`ClientConfig::read_from`] | `primary`, `replica`, `az:use1-az1` |
    /// | `protocol` | [`ClientConfig::protocol`] | `2`, `3`, `resp2`, `resp3` |
    /// | `client_name` | [`ClientConfig::client_name`] | `my-service` |
    /// | `connect_timeout` | [`ClientConfig::connect_timeout`] | `250ms` |
    /// | `stall_timeout` | [`ClientConfig::stall_timeout`] | `250ms` |
    /// | `connections_per_node` | [`ClientConfig::connections_per_node`] | `2` |
    /// | `max_queued_per_node` | [`ClientConfig::max_queued_per_node`] | `10000` |
    /// | `max_outstanding` | [`ClientConfig::max_outstanding`] | `100000` |
    /// | `max_attempts` | [`RetryConfig::max_attempts`](crate::RetryConfig::max_attempts) | `4` |
    /// | `base_backoff` | [`RetryConfig::base_backoff`](crate::RetryConfig::base_backoff) | `2ms` |
    /// | `max_backoff` | [`RetryConfig::max_backoff`](crate::RetryConfig::max_backoff) | `100ms` |
    /// | `max_redirects` | [`RetryConfig::max_redirects`](crate::RetryConfig::max_redirects) | `5` |
    /// | `refresh_min_interval` | [`RefreshConfig::min_interval`](crate::RefreshConfig::min_interval) | `100ms` |
    /// | `refresh_periodic` | [`RefreshConfig::periodic`](crate::RefreshConfig::periodic) | `30s`, `off` |
    ///
    /// Values are checked for their syntax here; ranges are checked when the configuration
    /// is validated.
    ///
    /// # Errors
    /// [`UrlError::OptionValue`] when the value cannot be read.
    pub fn apply_url_option(&mut self, name: &str, value: &str) -> Result<bool, UrlError> {
        match name {
            "mode" => self.mode = parse_value(name, value, str::parse::<Mode>)?,
            "read_from" => self.read_from = parse_value(name, value, str::parse::<ReadFrom>)?,
            "protocol" => self.protocol = parse_value(name, value, parse_protocol)?,
            "client_name" => self.client_name = Some(value.to_owned()).filter(|n| !n.is_empty()),
            "connect_timeout" => self.connect_timeout = duration(name, value)?,
            "stall_timeout" => self.stall_timeout = duration(name, value)?,
            "connections_per_node" => self.connections_per_node = number(name, value)?,
            "max_queued_per_node" => self.max_queued_per_node = number(name, value)?,
            "max_outstanding" => self.max_outstanding = number(name, value)?,
            "max_attempts" => self.retry.max_attempts = number(name, value)?,
            "base_backoff" => self.retry.base_backoff = duration(name, value)?,
            "max_backoff" => self.retry.max_backoff = duration(name, value)?,
            "max_redirects" => self.retry.max_redirects = number(name, value)?,
            "refresh_min_interval" => self.refresh.min_interval = duration(name, value)?,
            "refresh_periodic" => self.refresh.periodic = optional_duration(name, value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// An adapter's client settings: the core's settings plus the adapter's TLS settings `Tls`
/// (the async layer's `Config` is this with its rustls settings).
#[derive(Clone, Debug)]
pub struct ClientSettings<Tls> {
    /// Seeds, credentials, timeouts, read routing, retry and refresh policy.
    pub client: ClientConfig,
    /// TLS for every connection; `None` for plain TCP.
    pub tls: Option<Tls>,
}

impl<Tls> ClientSettings<Tls> {
    /// A configuration with these seeds and defaults for everything else.
    #[must_use]
    pub fn new(seeds: Vec<NodeAddr>) -> Self {
        Self { client: ClientConfig::new(seeds), tls: None }
    }

    /// A configuration from a connection URL, such as
    /// `redis://user:secret@10.0.0.1:6379,10.0.0.2:6379?read_from=replica&connect_timeout=250ms`
    /// (the forms: [`crate::config::url`]). Its options are those of
    /// [`ClientConfig::apply_url_option`] and `request_timeout`.
    ///
    /// A `rediss://` or `valkeys://` URL sets [`ClientConfig::tls`]: add TLS settings (`tls`)
    /// before connecting, or validation fails with [`ConfigError::TlsRequired`].
    ///
    /// # Errors
    /// [`UrlError`] naming the part of the URL that is wrong.
    pub fn from_url(url: &str) -> Result<Self, UrlError> {
        let parsed = ConnectionUrl::parse(url)?;
        let mut client = ClientConfig::new(parsed.seeds);
        client.tls = parsed.tls;
        client.username = parsed.username;
        client.password = parsed.password;
        for (name, value) in &parsed.options {
            if client.apply_url_option(name, value)? {
                continue;
            }
            match name.as_str() {
                "request_timeout" => client.request_timeout = duration(name, value)?,
                _ => return Err(UrlError::UnknownOption { name: name.clone() }),
            }
        }
        Ok(Self { client, tls: None })
    }

    /// Checks every field, and that TLS settings are given when [`ClientConfig::tls`] asks for
    /// TLS.
    ///
    /// # Errors
    /// The first invalid field; [`ConfigError::TlsRequired`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client.tls && self.tls.is_none() {
            return Err(ConfigError::TlsRequired);
        }
        self.client.validate()
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    use crate::resp::Protocol;

    #[test]
    fn client_options_are_applied_and_checked() {
        let mut c = ClientConfig::default();
        let mut apply = |n: &str, v: &str| c.apply_url_option(n, v);
        assert_eq!(apply("read_from", "az:use1-az1"), Ok(true));
        assert_eq!(apply("protocol", "2"), Ok(true));
        assert_eq!(apply("connect_timeout", "250ms"), Ok(true));
        assert_eq!(apply("refresh_periodic", "off"), Ok(true));
        assert_eq!(apply("max_attempts", "3"), Ok(true));
        assert_eq!(apply("mode", "standalone"), Ok(true));
        assert!(matches!(apply("mode", "single"), Err(UrlError::OptionValue { name, .. }) if name == "mode"));
        assert_eq!(apply("nonsense", "1"), Ok(false));
        assert!(
            matches!(apply("protocol", "4"), Err(UrlError::OptionValue { name, value, .. }) if name == "protocol" && value == "4")
        );
        assert!(
            matches!(apply("connect_timeout", "250"), Err(UrlError::OptionValue { name, .. }) if name == "connect_timeout")
        );
        assert!(
            matches!(apply("read_from", "somewhere"), Err(UrlError::OptionValue { name, .. }) if name == "read_from")
        );
        assert!(matches!(apply("connections_per_node", "-1"), Err(UrlError::OptionValue { .. })));
        assert_eq!(c.read_from, ReadFrom::AzAffinity("use1-az1".into()));
        assert_eq!(c.protocol, Protocol::Resp2);
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.refresh.periodic, None);
        assert_eq!(c.retry.max_attempts, 3);
        assert_eq!(c.mode, Mode::Standalone);
        for m in [Mode::Auto, Mode::Cluster, Mode::Standalone] {
            assert_eq!(m.to_string().parse::<Mode>(), Ok(m));
        }
    }
}
