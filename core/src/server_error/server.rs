//! Server error replies: classification and the pure "what does a cluster client do" decision.
//!
//! Error texts as Valkey sends them (the first word is the code; classification looks at the
//! code only, case-sensitively, so `BUSYKEY` is not `BUSY` and `ERR MOVED ..` from a proxy is
//! not a redirect):
//!
//! | Code | Example reply | Kind | Action |
//! |---|---|---|---|
//! | `MOVED` | `MOVED 3999 127.0.0.1:6381`, `MOVED 3999 :6381` | [`Moved`](ServerErrorKind::Moved) | [`Redirect`](ErrorAction::Redirect) |
//! | `ASK` | `ASK 3999 127.0.0.1:6381` | [`Ask`](ServerErrorKind::Ask) | [`Ask`](ErrorAction::Ask) |
//! | `TRYAGAIN` | `TRYAGAIN Multiple keys request during rehashing of slot` | `TryAgain` | backoff, no refresh |
//! | `CLUSTERDOWN` | `CLUSTERDOWN Hash slot not served` | `ClusterDown` | backoff + refresh |
//! | `LOADING` | `LOADING Valkey is loading the dataset in memory` | `Loading` | backoff |
//! | `MASTERDOWN` | `MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.` | `MasterDown` | backoff + refresh |
//! | `READONLY` | `READONLY You can't write against a read only replica.` | `ReadOnly` | [`RefreshAndRetry`](ErrorAction::RefreshAndRetry) |
//! | `CROSSSLOT` | `CROSSSLOT Keys in request don't hash to the same slot` | `CrossSlot` | fail |
//! | `NOSCRIPT` | `NOSCRIPT No matching script.` | `NoScript` | fail (the caller sends `EVAL`) |
//! | `NOAUTH`, `WRONGPASS`, `NOPERM` | `NOAUTH Authentication required.` | auth kinds | fail |
//! | `OOM`, `BUSY`, `EXECABORT` | `OOM command not allowed when used memory > 'maxmemory'.` | | fail |
//!
//! A redirect endpoint is an IPv4 address, an unbracketed IPv6 address (split at the **last**
//! colon), a hostname, or empty (`MOVED 3999 :6381`), which means "the host of the connection
//! that got this reply" ([`Endpoint::resolve`]). A redirect whose slot is not a number below
//! 16384, whose port is not a number in `1..=65535`, whose endpoint is `?` or lacks a colon, or
//! which has more or fewer than three words, is [`MalformedRedirect`](ServerErrorKind::MalformedRedirect)
//! and fails the request: following a garbled address is worse than reporting it. Nothing here
//! panics on any input.
//!
//! `MASTERDOWN` refreshes the topology: it comes from a replica whose primary is unreachable,
//! so a failover is likely under way. `LOADING` does not: the node is fine, just restarting.
//! Valkey 8's standalone `-REDIRECT host:port` (after `CLIENT CAPA redirect`) is not a cluster
//! reply and classifies as `Other`.
//!
//! ```
//! use slotcache_core::{ErrorAction, NodeAddr, ServerError};
//!
//! let err = ServerError::new("MOVED 3999 :6381");
//! let ErrorAction::Redirect { slot, endpoint } = err.action() else { unreachable!() };
//! assert_eq!(slot.get(), 3999);
//! let origin = NodeAddr::new("10.0.0.5", 7000);
//! assert_eq!(endpoint.resolve(&origin), NodeAddr::new("10.0.0.5", 6381));
//! ```

use core::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::node_addr::NodeAddr;
use crate::resp::Value;
use crate::slot::Slot;

/// Where a `MOVED` or `ASK` reply points.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The host, or `None` for an empty endpoint: the host of the connection that got the reply.
    pub host: Option<Arc<str>>,
    /// The port.
    pub port: u16,
}

impl Endpoint {
    /// The node to contact: this endpoint, with the host of `origin` (the node that sent the
    /// redirect) when the endpoint's host is empty.
    #[must_use]
    pub fn resolve(&self, origin: &NodeAddr) -> NodeAddr {
        match &self.host {
            Some(host) => NodeAddr::new(Arc::clone(host), self.port),
            None => NodeAddr::new(origin.host(), self.port),
        }
    }

    /// Parses `host:port`, `[v6]:port`, an unbracketed IPv6 `a:b::c:port` or an empty `:port`.
    fn parse(text: &[u8]) -> Option<Self> {
        let text = core::str::from_utf8(text).ok()?;
        let (host, port) = text.rsplit_once(':')?;
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host == "?" || host.contains(['[', ']']) {
            return None;
        }
        let host = (!host.is_empty()).then(|| Arc::from(host));
        Some(Self { host, port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.as_deref() {
            Some(h) if h.contains(':') => write!(f, "[{h}]:{}", self.port),
            Some(h) => write!(f, "{h}:{}", self.port),
            None => write!(f, ":{}", self.port),
        }
    }
}

/// What an error reply means to a cluster client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// `MOVED slot endpoint`: the slot lives elsewhere for good.
    Moved {
        /// The slot.
        slot: Slot,
        /// Its owner.
        endpoint: Endpoint,
    },
    /// `ASK slot endpoint`: the slot is migrating; ask the target once.
    Ask {
        /// The slot.
        slot: Slot,
        /// The migration target.
        endpoint: Endpoint,
    },
    /// `TRYAGAIN`: a multi-key command hit a slot in migration.
    TryAgain,
    /// `CLUSTERDOWN`: the cluster is down or the slot is unserved.
    ClusterDown,
    /// `LOADING`: the node is loading its dataset.
    Loading,
    /// `MASTERDOWN`: a replica lost its primary and does not serve stale data.
    MasterDown,
    /// `READONLY`: a write reached a replica (typically right after a failover).
    ReadOnly,
    /// `CROSSSLOT`: the keys of one command are in different slots.
    CrossSlot,
    /// `NOSCRIPT`: `EVALSHA` of a script the node does not have.
    NoScript,
    /// `NOAUTH`: the connection is not authenticated.
    NoAuth,
    /// `WRONGPASS`: bad credentials.
    WrongPass,
    /// `NOPERM`: the ACL user may not run this command or touch this key.
    NoPerm,
    /// `OOM`: the node is at `maxmemory` and refuses writes.
    Oom,
    /// `BUSY`: a script or function is running.
    Busy,
    /// `EXECABORT`: the transaction was discarded.
    ExecAbort,
    /// A `MOVED` or `ASK` reply that does not parse.
    MalformedRedirect,
    /// Anything else (`ERR ..`, `WRONGTYPE ..`, module errors).
    Other,
}

/// What a cluster client does about an error reply. A pure decision: no state is touched.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorAction {
    /// `MOVED`: patch the slot map, schedule a topology refresh, resend at once to `endpoint`.
    Redirect {
        /// The slot to patch.
        slot: Slot,
        /// The new owner (resolve an empty host with [`Endpoint::resolve`]).
        endpoint: Endpoint,
    },
    /// `ASK`: send `ASKING` and the command, once, to `endpoint`; leave the slot map alone.
    Ask {
        /// The slot in migration.
        slot: Slot,
        /// The migration target.
        endpoint: Endpoint,
    },
    /// Wait (backoff) and resend; refresh the topology first when `refresh` is set.
    RetryAfterBackoff {
        /// Whether the topology is likely stale.
        refresh: bool,
    },
    /// Refresh the topology, then resend (`READONLY`: the map points a write at a replica).
    RefreshAndRetry,
    /// Report the error to the caller.
    Fail,
}

/// An error reply, with its classification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    raw: Bytes,
    kind: ServerErrorKind,
}

impl ServerError {
    /// Classifies an error reply given without its leading `-` (as [`Value::Error`] holds it).
    #[must_use]
    pub fn new(raw: impl Into<Bytes>) -> Self {
        let raw = raw.into();
        let kind = classify(&raw);
        Self { raw, kind }
    }

    /// The error of a [`Value::Error`] reply; `None` for any other value.
    #[must_use]
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Error(raw) => Some(Self::new(raw.clone())),
            _ => None,
        }
    }

    /// The reply bytes, as received.
    #[must_use]
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The first word of the reply (`MOVED`, `ERR`, ...).
    #[must_use]
    pub fn code(&self) -> &[u8] {
        code_and_rest(&self.raw).0
    }

    /// The classification.
    #[must_use]
    pub const fn kind(&self) -> &ServerErrorKind {
        &self.kind
    }

    /// What a cluster client does about this error.
    #[must_use]
    pub fn action(&self) -> ErrorAction {
        use ServerErrorKind as K;
        match &self.kind {
            K::Moved { slot, endpoint } => ErrorAction::Redirect { slot: *slot, endpoint: endpoint.clone() },
            K::Ask { slot, endpoint } => ErrorAction::Ask { slot: *slot, endpoint: endpoint.clone() },
            K::TryAgain | K::Loading => ErrorAction::RetryAfterBackoff { refresh: false },
            K::ClusterDown | K::MasterDown => ErrorAction::RetryAfterBackoff { refresh: true },
            K::ReadOnly => ErrorAction::RefreshAndRetry,
            K::CrossSlot
            | K::NoScript
            | K::NoAuth
            | K::WrongPass
            | K::NoPerm
            | K::Oom
            | K::Busy
            | K::ExecAbort
            | K::MalformedRedirect
            | K::Other => ErrorAction::Fail,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.raw))
    }
}

impl std::error::Error for ServerError {}

fn code_and_rest(raw: &[u8]) -> (&[u8], &[u8]) {
    match raw.iter().position(|&b| b == b' ') {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &[]),
    }
}

fn classify(raw: &[u8]) -> ServerErrorKind {
    use ServerErrorKind as K;
    let (code, rest) = code_and_rest(raw);
    match code {
        b"MOVED" => {
            redirect(rest).map_or(K::MalformedRedirect, |(slot, endpoint)| K::Moved { slot, endpoint })
        }
        b"ASK" => redirect(rest).map_or(K::MalformedRedirect, |(slot, endpoint)| K::Ask { slot, endpoint }),
        b"TRYAGAIN" => K::TryAgain,
        b"CLUSTERDOWN" => K::ClusterDown,
        b"LOADING" => K::Loading,
        b"MASTERDOWN" => K::MasterDown,
        b"READONLY" => K::ReadOnly,
        b"CROSSSLOT" => K::CrossSlot,
        b"NOSCRIPT" => K::NoScript,
        b"NOAUTH" => K::NoAuth,
        b"WRONGPASS" => K::WrongPass,
        b"NOPERM" => K::NoPerm,
        b"OOM" => K::Oom,
        b"BUSY" => K::Busy,
        b"EXECABORT" => K::ExecAbort,
        _ => K::Other,
    }
}

/// Parses `slot endpoint` (the words after `MOVED` or `ASK`).
fn redirect(rest: &[u8]) -> Option<(Slot, Endpoint)> {
    let (slot, endpoint) = code_and_rest(rest);
    if slot.is_empty() || slot.len() > 5 || !slot.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if endpoint.is_empty() || endpoint.contains(&b' ') {
        return None;
    }
    let slot = slot.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let slot = Slot::new(u16::try_from(slot).ok()?)?;
    Some((slot, Endpoint::parse(endpoint)?))
}
