//! The provider's configuration: every field of the reference's `Config`, validated.
//!
//! Plain data: `Tls` is the adapter's TLS settings type (the async layer's `ProviderConfig`
//! is this with its rustls settings).

use core::fmt;
use core::time::Duration;

use crate::client::{ClientConfig, ClientSettings, ConfigError, Mode, Password, ReadFrom};
use crate::config::{ConnectionUrl, UrlError};
use crate::node_addr::NodeAddr;
use crate::resp::{Limits, Protocol};
use crate::retry::RetryConfig;
use crate::topology::RefreshConfig;

use super::durability::Durability;
use super::error::CacheError;
use super::eviction::EvictionClass;

mod url;

/// Duration fields read from files as `"250ms"`, `"2s"` (feature `serde`).
#[cfg(feature = "serde")]
use crate::config::de::duration as de_duration;

/// The provider's settings. Field names follow the reference's `Config`; the cluster client's
/// own settings (read policy, retries, refresh, connections, protocol, timeouts, bounds) are
/// fields too, with the client's defaults.
///
/// Build it with [`ProviderConfig::new`] (seeds), [`ProviderConfig::from_url`] or
/// [`Default`], then set fields; with the `serde` feature it reads from a file (TOML, JSON,
/// the environment through any serde source): missing fields take their defaults, unknown
/// fields are refused by name, durations are written `"250ms"`, `"2s"`, `"1m"`. Everything
/// is checked by [`ProviderConfig::client_settings`] (which the provider calls on connect),
/// each error naming its field.
#[derive(Clone)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct ProviderConfig<Tls> {
    /// Seed nodes, `host:port` (at least one; no default).
    pub init_address: Vec<String>,
    /// A cluster, a standalone node (one primary, optionally with replicas), or detected from
    /// the seed; default [`Mode::Auto`] (in files and URLs: `"auto"`, `"cluster"`,
    /// `"standalone"`; see [`ClientConfig::mode`]). The cache API is the same on both.
    pub mode: Mode,
    /// ACL user name; default empty (the default user). Needs a password.
    pub username: String,
    /// Password; default empty (none). Never shown by `Debug` or in errors.
    pub password: String,
    /// A global key prefix for every namespace (honoured, unlike the reference); default empty.
    pub namespace: String,
    /// `CLIENT SETNAME` for every connection; default empty (none). No spaces or newlines.
    pub client_name: String,
    /// Prefix of search index names; default `"index:"`, must not be empty.
    pub index_prefix: String,
    /// TTL of entries written without one; default 1 h, at least 1 ms.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_duration"))]
    pub default_ttl: Duration,
    /// Budget of single-key operations, and the client's default request budget; default 2 s,
    /// at least 1 ms.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_duration"))]
    pub operation_timeout: Duration,
    /// Budget of the compute family (all attempts together); default 5 s, at least 1 ms.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_duration"))]
    pub atomic_operation_timeout: Duration,
    /// Budget of bulk operations and tag invalidation; default 10 s, at least 1 ms.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_duration"))]
    pub bulk_operation_timeout: Duration,
    /// Budget of `invalidate_all`; default 30 s, at least 1 ms.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_duration"))]
    pub flush_timeout: Duration,
    /// Budget of search and query; default 5 s, at least 1 ms.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_duration"))]
    pub search_timeout: Duration,
    /// Attempts of a compute before it gives up on conflicts; default 10, at least 1.
    pub max_compute_retries: u32,
    /// This application owns the whole cluster: allows the provider's two operations that act
    /// on every primary for every application, `Provider::flush_all` (`FLUSHDB`) and
    /// `Provider::set_maximum` (`CONFIG SET maxmemory`); default false (both refused with a
    /// typed error).
    pub allow_unsafe_flushdb: bool,
    /// The reference's switch for replica reads; default false. `true` with
    /// [`read_from`](Self::read_from) left at [`ReadFrom::Primary`] means
    /// [`ReadFrom::PreferReplica`]; any other `read_from` wins.
    pub send_to_replicas: bool,
    /// Where read-only commands go; default [`ReadFrom::Primary`] (in files and URLs:
    /// `"primary"`, `"replica"`, `"az:<zone>"`). Reads from replicas may lag writes by the
    /// replication delay; compute reads and tag checks still go to primaries.
    pub read_from: ReadFrom,
    /// The protocol to ask for (`2` or `3`); default RESP3, falling back to RESP2 on servers
    /// without `HELLO`.
    pub protocol: Protocol,
    /// How long a connection may take to open and finish its handshake; default 1 s, must be
    /// positive.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_duration"))]
    pub connect_timeout: Duration,
    /// Connections per node, requests pipelined over them; default 1, must be 1..=64.
    pub connections_per_node: usize,
    /// How long a connection owing a reply to a timed-out request may stay silent before it is
    /// replaced; default 250 ms, more than zero and at most 60 s (see
    /// [`ClientConfig::stall_timeout`]).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_duration"))]
    pub stall_timeout: Duration,
    /// Requests queued or in flight per node before new ones fail fast with `QueueFull`;
    /// default 65,536, must be positive.
    pub max_queued_per_node: usize,
    /// Requests outstanding in the whole client before new ones are refused with
    /// `Overloaded`; default 1,048,576, must be positive.
    pub max_outstanding: usize,
    /// Retries and backoff of each request; defaults in [`RetryConfig`]'s `Default` (6
    /// attempts, backoff 2 ms doubling to 128 ms, 5 redirects).
    pub retry: RetryConfig,
    /// When topology refreshes happen; defaults in [`RefreshConfig`]'s `Default` (at most one
    /// per 100 ms, periodic every 30 s).
    pub refresh: RefreshConfig,
    /// RESP decoding limits; defaults in [`Limits`]'s `Default`.
    pub limits: Limits,
    /// TLS for every connection; default none. Not read from files (build it in code).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub tls: Option<Tls>,
    /// TLS is required (set by `rediss://` and `valkeys://` URLs): without [`tls`](Self::tls),
    /// validation fails with [`ConfigError::TlsRequired`]. Default false.
    pub require_tls: bool,
    /// How invalidations survive a failover; default: one replica's acknowledgement within
    /// 250 ms (in files: `"primary"` or `{ replicas = 1, timeout = "250ms" }`).
    pub durability: Durability,
    /// Largest stored value accepted, in bytes; default 64 MiB, must be positive.
    pub max_value_size: usize,
    /// Eviction setups the provider refuses to start with: when it connects it reads every
    /// primary's `maxmemory-policy` and `maxmemory` (`CONFIG GET`, else `INFO memory`),
    /// classifies each ([`EvictionClass`]), logs a warning for each risky one, and fails with
    /// `CacheError::EvictionRefused` if a primary's class is listed here. Default empty: warn
    /// only. A setup that cannot be read is [`EvictionClass::Unknown`]: not an error unless
    /// `unknown` is listed. `allkeys` cannot be listed (it keeps every guarantee: the setup to
    /// ask for). In files `refuse_eviction = ["volatile", "noeviction"]`; in URLs
    /// `refuse_eviction=volatile,noeviction`.
    pub refuse_eviction: Vec<EvictionClass>,
}

impl<Tls: fmt::Debug> fmt::Debug for ProviderConfig<Tls> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("init_address", &self.init_address)
            .field("mode", &self.mode)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "***" })
            .field("namespace", &self.namespace)
            .field("client_name", &self.client_name)
            .field("index_prefix", &self.index_prefix)
            .field("default_ttl", &self.default_ttl)
            .field("operation_timeout", &self.operation_timeout)
            .field("atomic_operation_timeout", &self.atomic_operation_timeout)
            .field("bulk_operation_timeout", &self.bulk_operation_timeout)
            .field("flush_timeout", &self.flush_timeout)
            .field("search_timeout", &self.search_timeout)
            .field("max_compute_retries", &self.max_compute_retries)
            .field("allow_unsafe_flushdb", &self.allow_unsafe_flushdb)
            .field("send_to_replicas", &self.send_to_replicas)
            .field("read_from", &self.read_from)
            .field("protocol", &self.protocol)
            .field("connect_timeout", &self.connect_timeout)
            .field("connections_per_node", &self.connections_per_node)
            .field("stall_timeout", &self.stall_timeout)
            .field("max_queued_per_node", &self.max_queued_per_node)
            .field("max_outstanding", &self.max_outstanding)
            .field("retry", &self.retry)
            .field("refresh", &self.refresh)
            .field("limits", &self.limits)
            .field("tls", &self.tls)
            .field("require_tls", &self.require_tls)
            .field("durability", &self.durability)
            .field("max_value_size", &self.max_value_size)
            .field("refuse_eviction", &self.refuse_eviction)
            .finish()
    }
}

impl<Tls> Default for ProviderConfig<Tls> {
    /// The defaults, with no seeds (add at least one).
    fn default() -> Self {
        let client = ClientConfig::default();
        Self {
            init_address: Vec::new(),
            mode: client.mode,
            username: String::new(),
            password: String::new(),
            namespace: String::new(),
            client_name: String::new(),
            index_prefix: "index:".into(),
            default_ttl: Duration::from_secs(3600),
            operation_timeout: Duration::from_secs(2),
            atomic_operation_timeout: Duration::from_secs(5),
            bulk_operation_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(30),
            search_timeout: Duration::from_secs(5),
            max_compute_retries: 10,
            allow_unsafe_flushdb: false,
            send_to_replicas: false,
            read_from: client.read_from,
            protocol: client.protocol,
            connect_timeout: client.connect_timeout,
            connections_per_node: client.connections_per_node,
            stall_timeout: client.stall_timeout,
            max_queued_per_node: client.max_queued_per_node,
            max_outstanding: client.max_outstanding,
            retry: client.retry,
            refresh: client.refresh,
            limits: client.limits,
            tls: None,
            require_tls: false,
            durability: Durability::default(),
            max_value_size: 64 * 1024 * 1024,
            refuse_eviction: Vec::new(),
        }
    }
}

/// A provider setting out of its range, as a typed error naming the field.
fn invalid(field: &'static str, reason: impl Into<String>) -> CacheError {
    CacheError::ClientConfig(ConfigError::Invalid { field, reason: reason.into() })
}

impl<Tls: Clone> ProviderConfig<Tls> {
    /// The reference's defaults with these seeds.
    #[must_use]
    pub fn new<S: Into<String>>(init_address: impl IntoIterator<Item = S>) -> Self {
        Self { init_address: init_address.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// Checks every field and builds the cluster client's settings.
    ///
    /// The client's `rng_seed` (jitter, replica choice) is left at its default: the core has no
    /// randomness of its own, so whoever connects with these settings draws one (the
    /// provider does, from the operating system).
    ///
    /// # Errors
    /// [`CacheError::ClientConfig`] with the [`ConfigError`] naming the first invalid field
    /// ([`ConfigError::field`]).
    pub fn client_settings(&self) -> Result<ClientSettings<Tls>, CacheError> {
        if self.init_address.is_empty() {
            return Err(invalid("init_address", "at least one seed address is required"));
        }
        let mut seeds = Vec::with_capacity(self.init_address.len());
        for a in &self.init_address {
            match NodeAddr::parse(a) {
                Some(n) if !n.host().is_empty() && n.port() != 0 => seeds.push(n),
                _ => return Err(invalid("init_address", format!("{a:?} is not host:port"))),
            }
        }
        for (field, d) in [
            ("default_ttl", self.default_ttl),
            ("operation_timeout", self.operation_timeout),
            ("atomic_operation_timeout", self.atomic_operation_timeout),
            ("bulk_operation_timeout", self.bulk_operation_timeout),
            ("flush_timeout", self.flush_timeout),
            ("search_timeout", self.search_timeout),
        ] {
            if d < Duration::from_millis(1) {
                return Err(invalid(field, "must be at least 1 ms"));
            }
        }
        if self.max_compute_retries == 0 {
            return Err(invalid("max_compute_retries", "must be at least 1"));
        }
        if self.index_prefix.is_empty() {
            return Err(invalid("index_prefix", "must not be empty"));
        }
        if self.max_value_size == 0 {
            return Err(invalid("max_value_size", "must be positive"));
        }
        if !self.username.is_empty() && self.password.is_empty() {
            return Err(invalid("username", "a user name needs a password"));
        }
        if self.refuse_eviction.contains(&EvictionClass::AllKeys) {
            return Err(invalid(
                "refuse_eviction",
                "allkeys keeps every guarantee and cannot be refused (list volatile, noeviction, unlimited or unknown)",
            ));
        }
        if self.require_tls && self.tls.is_none() {
            return Err(CacheError::ClientConfig(ConfigError::TlsRequired));
        }
        let mut settings = ClientSettings::new(seeds);
        let c = &mut settings.client;
        c.username = (!self.username.is_empty()).then(|| self.username.clone());
        c.password = (!self.password.is_empty()).then(|| Password::new(self.password.as_str()));
        c.client_name = (!self.client_name.is_empty()).then(|| self.client_name.clone());
        c.request_timeout = self.operation_timeout;
        c.tls = self.require_tls;
        self.write_client(c);
        settings.tls.clone_from(&self.tls);
        settings.validate()?;
        Ok(settings)
    }

    /// Copies the client tuning fields into `c`.
    fn write_client(&self, c: &mut ClientConfig) {
        c.mode = self.mode;
        c.read_from = match (&self.read_from, self.send_to_replicas) {
            (ReadFrom::Primary, true) => ReadFrom::PreferReplica,
            (r, _) => r.clone(),
        };
        c.protocol = self.protocol;
        c.connect_timeout = self.connect_timeout;
        c.connections_per_node = self.connections_per_node;
        c.stall_timeout = self.stall_timeout;
        c.max_queued_per_node = self.max_queued_per_node;
        c.max_outstanding = self.max_outstanding;
        c.retry.clone_from(&self.retry);
        c.refresh.clone_from(&self.refresh);
        c.limits = self.limits;
    }

    /// Copies the client tuning fields back from `c` (after URL options were applied to it).
    fn read_client(&mut self, c: &ClientConfig) {
        self.mode = c.mode;
        self.read_from.clone_from(&c.read_from);
        self.protocol = c.protocol;
        self.connect_timeout = c.connect_timeout;
        self.connections_per_node = c.connections_per_node;
        self.stall_timeout = c.stall_timeout;
        self.max_queued_per_node = c.max_queued_per_node;
        self.max_outstanding = c.max_outstanding;
        self.retry.clone_from(&c.retry);
        self.refresh.clone_from(&c.refresh);
        self.limits = c.limits;
        if let Some(name) = &c.client_name {
            self.client_name.clone_from(name);
        }
    }

    /// A configuration from a connection URL, the reference's defaults for the rest, such as
    /// `redis://app:s3cret@10.0.0.1:6379,10.0.0.2:6379?read_from=replica&connect_timeout=250ms&protocol=3&client_name=svc`
    /// (the forms: [`crate::config::url`]).
    ///
    /// Options: those of [`ClientConfig::apply_url_option`], and `namespace`, `index_prefix`,
    /// `default_ttl`, `operation_timeout`, `atomic_operation_timeout`, `bulk_operation_timeout`,
    /// `flush_timeout`, `search_timeout`, `max_compute_retries`, `max_value_size`,
    /// `send_to_replicas`, `refuse_eviction` (classes separated by commas). A `rediss://` or `valkeys://` URL sets
    /// [`require_tls`](Self::require_tls): set [`tls`](Self::tls) before connecting.
    ///
    /// # Errors
    /// [`UrlError`] naming the scheme, user, password, host, port, path, option name or option
    /// value that is wrong (never showing the password).
    pub fn from_url(url: &str) -> Result<Self, UrlError> {
        let parsed = ConnectionUrl::parse(url)?;
        let mut cfg = Self::new(parsed.seeds.iter().map(ToString::to_string));
        cfg.require_tls = parsed.tls;
        cfg.username = parsed.username.unwrap_or_default();
        cfg.password = parsed.password.map(|p| p.expose().to_owned()).unwrap_or_default();
        let mut client = ClientConfig::default();
        cfg.write_client(&mut client);
        for (name, value) in &parsed.options {
            if !client.apply_url_option(name, value)? {
                url::apply_provider_option(&mut cfg, name, value)?;
            }
        }
        cfg.read_client(&client);
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests;
