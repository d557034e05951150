//! The client's typed errors.

use crate::node_addr::NodeAddr;
use crate::resp::DecodeError;
use crate::server_error::ServerError;
use crate::shared_error::SharedError;
use crate::slot::Slot;

use super::tls_failure::TlsFailure;

/// Why a connection failed or closed, as the adapter reports it (the core holds no `io::Error`;
/// the adapter's own error, a TLS library's for instance, may travel as the [source]).
///
/// [source]: std::error::Error::source
#[derive(Clone, Debug, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ConnError {
    /// The broad kind.
    pub kind: ConnErrorKind,
    /// The adapter's description (an I/O or TLS error's text).
    pub message: String,
    /// What the TLS handshake did not accept, when the adapter could tell.
    tls: Option<TlsFailure>,
    /// The adapter's error, kept whole.
    #[source]
    source: Option<SharedError>,
}

impl ConnError {
    /// A connection error of this kind with this description.
    #[must_use]
    pub fn new(kind: ConnErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), tls: None, source: None }
    }

    /// A [`ConnErrorKind::Tls`] error saying what the handshake did not accept; connections
    /// that fail so before they are ready are not retried (see [`TlsFailure`]).
    #[must_use]
    pub fn tls(failure: TlsFailure, message: impl Into<String>) -> Self {
        Self { kind: ConnErrorKind::Tls, message: message.into(), tls: Some(failure), source: None }
    }

    /// The same error, with the adapter's own error kept as its source.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(SharedError::new(source));
        self
    }

    /// What the TLS handshake did not accept, when that is why the connection failed.
    #[must_use]
    pub const fn tls_failure(&self) -> Option<TlsFailure> {
        self.tls
    }

    /// Whether retrying cannot help when this happens before the connection is ready: a TLS
    /// handshake refused for a [`TlsFailure`].
    #[must_use]
    pub const fn is_permanent(&self) -> bool {
        self.tls.is_some()
    }
}

/// Equal when kind, text and TLS failure are (the sources are not compared).
impl PartialEq for ConnError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message && self.tls == other.tls
    }
}

impl Eq for ConnError {}

/// The broad kind of a [`ConnError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnErrorKind {
    /// The peer refused or the address did not resolve.
    Refused,
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
    /// The peer closed the connection.
    Closed,
    /// An I/O error on an established connection.
    Io,
    /// The TLS handshake or a TLS record failed (for example a certificate the roots do not
    /// trust).
    Tls,
    /// The peer sent bytes that are not RESP, or exceeded a decoding limit.
    Protocol,
    /// The client closed it: its oldest reply belonged to a request that had timed out and
    /// nothing arrived for [`ClientConfig::stall_timeout`](super::ClientConfig::stall_timeout)
    /// (a half-open connection, or a node that dropped or never answered the command).
    Stalled,
}

/// Why a request failed. Cloneable so that one failure can be reported to several waiters.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The server answered with an error that retrying does not fix (or retries ran out and
    /// this was the last answer).
    #[error("server error: {0}")]
    Server(ServerError),
    /// Authentication failed (`WRONGPASS`, `NOAUTH`, `NOPERM` on `HELLO`/`AUTH`), while
    /// connecting or re-authenticating an open connection with new credentials.
    #[error("authentication to {addr} failed: {error}")]
    Auth {
        /// The node that refused.
        addr: NodeAddr,
        /// Its answer.
        error: ServerError,
    },
    /// The request's time budget ran out.
    #[error("timed out after {attempts} attempt(s) while {stage}")]
    Timeout {
        /// What the request was waiting for when the time ran out.
        stage: TimeoutStage,
        /// How many times it had been sent.
        attempts: u32,
    },
    /// The connection was lost after the command was written; it may or may not have executed,
    /// and it is not idempotent, so it was not sent again.
    #[error("connection to {addr} lost after the command was sent; it may have executed ({error})")]
    ConnectionLost {
        /// The node.
        addr: NodeAddr,
        /// How the connection was lost (also the [source](std::error::Error::source)).
        #[source]
        error: ConnError,
    },
    /// A node could not be reached and the retry budget ran out.
    #[error("cannot reach {addr}: {error}")]
    Unreachable {
        /// The node.
        addr: NodeAddr,
        /// The last connection error (also the [source](std::error::Error::source)).
        #[source]
        error: ConnError,
    },
    /// A node sent a malformed reply; the connection was closed.
    #[error("protocol error from {addr}: {error}")]
    Protocol {
        /// The node.
        addr: NodeAddr,
        /// What was wrong.
        error: DecodeError,
    },
    /// Redirections for this slot went round in a loop.
    #[error("redirect loop for slot {slot}")]
    RedirectLoop {
        /// The slot.
        slot: Slot,
    },
    /// Too many requests are queued for this node (it is slow or down); failing fast keeps memory
    /// bounded.
    #[error("too many requests queued for {addr}")]
    QueueFull {
        /// The node.
        addr: NodeAddr,
    },
    /// No seed has answered with a topology yet.
    #[error("no cluster topology from the seeds {}: {detail}", addr_list(.seeds))]
    NoTopology {
        /// The configured seeds.
        seeds: Vec<NodeAddr>,
        /// What the last attempt met.
        detail: String,
    },
    /// A seed is a standalone node while [`ClientConfig::mode`](super::ClientConfig::mode) is
    /// [`Mode::Cluster`](super::Mode::Cluster), or a cluster node while it is
    /// [`Mode::Standalone`](super::Mode::Standalone). Before the first topology, requests fail
    /// with it as soon as every seed has answered so; [`Mode::Auto`](super::Mode::Auto) (the
    /// default) accepts both.
    #[error("{addr} is a {found} node but the client's mode is {configured}: set mode to {found} or auto")]
    ModeMismatch {
        /// The node that answered.
        addr: NodeAddr,
        /// The configured mode.
        configured: super::Mode,
        /// What the node is: [`Mode::Cluster`](super::Mode::Cluster) or
        /// [`Mode::Standalone`](super::Mode::Standalone).
        found: super::Mode,
    },
    /// No node serves this slot and no topology refresh has found one.
    #[error("no node serves slot {slot}: {detail}")]
    NoRoute {
        /// The slot.
        slot: Slot,
        /// What the last topology refresh said.
        detail: String,
    },
    /// A reply did not have the shape its command promises (for example one part of a split
    /// `MGET` answering with the wrong number of values).
    #[error("unexpected reply: expected {expected}, got {got}")]
    UnexpectedReply {
        /// What was expected.
        expected: &'static str,
        /// What came, abbreviated.
        got: String,
    },
    /// Not sent: it was to run after command `index` of its pipeline, on the connection that
    /// answered it (see [`Cmd::after`](super::Cmd::after)), and that command failed.
    #[error("not sent: command {index} of the pipeline, which it follows, failed")]
    Skipped {
        /// The command it follows.
        index: usize,
    },
    /// The client was closed by its user ([`Client::close`](super::Client::close)); never
    /// anything else.
    #[error("the client is closed")]
    Closed,
    /// The client lost track of a request it should have answered: a bug in slotcache, reported
    /// as such rather than as [`RequestError::Closed`].
    #[error("internal error: {what} (a slotcache bug)")]
    Internal {
        /// What went wrong.
        what: &'static str,
    },
}

/// `a:1, b:2` for messages (`NodeAddr`'s `Debug` is noisy there).
fn addr_list(addrs: &[NodeAddr]) -> String {
    addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// What a request was waiting for when its time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutStage {
    /// The first topology (no seed has answered yet).
    Topology,
    /// A connection to the node.
    Connect,
    /// The node's reply.
    Reply,
    /// A retry after a backoff.
    Retry,
}

impl core::fmt::Display for TimeoutStage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Topology => "waiting for the cluster topology",
            Self::Connect => "connecting",
            Self::Reply => "waiting for the reply",
            Self::Retry => "waiting to retry",
        })
    }
}

/// Why [`Client::submit`](super::Client::submit) refused a request before sending anything.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// A command with no name, or a pipeline with no commands.
    #[error("empty command")]
    Empty,
    /// The command's arguments do not fit its key layout.
    #[error("malformed command {name}: {reason}")]
    Malformed {
        /// The command name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A command that cannot be split has keys in different slots (use hash tags to put them
    /// in one slot, or send the commands separately).
    #[error("the keys of {name} hash to different slots")]
    CrossSlot {
        /// The command name.
        name: String,
    },
    /// Too many requests are outstanding.
    #[error("too many outstanding requests ({limit})")]
    Overloaded {
        /// The configured bound.
        limit: usize,
    },
    /// The client was closed by its user ([`Client::close`](super::Client::close)); never
    /// anything else.
    #[error("the client is closed")]
    Closed,
    /// The client lost track of a request it should have answered: a bug in slotcache, reported
    /// as such rather than as [`RequestError::Closed`].
    #[error("internal error: {what} (a slotcache bug)")]
    Internal {
        /// What went wrong.
        what: &'static str,
    },
}

/// An invalid [`ClientConfig`](super::ClientConfig).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No seed address.
    #[error("at least one seed address is required")]
    NoSeeds,
    /// A value out of its range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The retry settings (field `retry`) are inconsistent.
    #[error("invalid retry settings: {0}")]
    Retry(#[source] crate::retry::RetryConfigError),
    /// The topology refresh settings (field `refresh`) are inconsistent.
    #[error("invalid refresh settings: {0}")]
    Refresh(#[source] crate::topology::RefreshConfigError),
    /// The configuration asks for TLS (a `rediss://` or `valkeys://` URL, or `tls` set) but
    /// no TLS settings were given.
    #[error(
        "TLS is required (rediss:// or valkeys://) but no TLS settings were given: supply the \
         certificate roots to trust (slotcache's TlsConfig::with_root_pem) in the tls setting"
    )]
    TlsRequired,
    /// A connection URL that cannot be used.
    #[error("invalid connection URL: {0}")]
    Url(#[from] crate::config::UrlError),
}

impl ConfigError {
    /// The configuration field at fault (`"tls"` for [`ConfigError::TlsRequired`], `"url"` for
    /// a URL).
    #[must_use]
    pub const fn field(&self) -> &'static str {
        match self {
            Self::NoSeeds => "seeds",
            Self::Invalid { field, .. } => field,
            Self::Retry(_) => "retry",
            Self::Refresh(_) => "refresh",
            Self::TlsRequired => "tls",
            Self::Url(_) => "url",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_topology_names_the_seeds_plainly() {
        let e = RequestError::NoTopology {
            seeds: vec![NodeAddr::new("127.0.0.1", 7000), NodeAddr::new("::1", 7001)],
            detail: "127.0.0.1:7000: Tls: invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(
            e.to_string(),
            "no cluster topology from the seeds 127.0.0.1:7000, [::1]:7001: \
             127.0.0.1:7000: Tls: invalid peer certificate: UnknownIssuer"
        );
    }
}
