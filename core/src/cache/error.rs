//! The cache layer's typed errors.

use crate::client::{ConfigError, RequestError, SubmitError};
use crate::keys::{KeyError, NamespaceError, TagError};
pub use crate::shared_error::SharedError;

/// Everything a cache operation can fail with.
///
/// The reference's sentinels (spec section 11.1) that apply to a cluster cache map onto
/// variants: `ErrSearchNotSupported` is [`CacheError::SearchNotSupported`]; `ErrNotFound` from a
/// loader is [`CacheError::NotFound`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A TTL that cannot be used (zero, or under one millisecond).
    #[error("invalid TTL: {reason}")]
    InvalidTtl {
        /// Why.
        reason: &'static str,
    },
    /// A tag that cannot be used.
    #[error("invalid tag: {reason}")]
    InvalidTag {
        /// Why.
        reason: String,
    },
    /// A key that cannot be encoded or decoded.
    #[error("invalid key: {0}")]
    Key(String),
    /// A namespace that cannot be used.
    #[error("invalid namespace: {0}")]
    Namespace(#[from] NamespaceError),
    /// The value could not be encoded or decoded by the namespace's codec.
    #[error("value codec: {0}")]
    Codec(String),
    /// A transformer (compression, encryption) failed; for decryption this includes a value
    /// written with another key or tampered with.
    #[error("value transformer {name}: {reason}")]
    Transform {
        /// The transformer.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The stored bytes are not a value this namespace can read.
    #[error("corrupt entry: {what}")]
    Corrupt {
        /// What is wrong.
        what: &'static str,
    },
    /// The encoded value is larger than the namespace allows.
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// The cluster request failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The request was refused before sending.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// A reply did not have the expected shape.
    #[error("unexpected reply to {command}: {got}")]
    UnexpectedReply {
        /// The command.
        command: &'static str,
        /// What came back, abbreviated.
        got: String,
    },
    /// An invalidation was applied on the primary but fewer replicas than required
    /// acknowledged it, so a failover could still undo it. Retrying is safe.
    #[error("invalidation acknowledged by {acked} replica(s), {wanted} required")]
    NotDurable {
        /// Replicas that acknowledged.
        acked: i64,
        /// Replicas required.
        wanted: i64,
    },
    /// `invalidate_by_tags` failed to delete some of the entries it found (`cause`), and then
    /// failed to list them in their tags again (`relist`). The invalidation itself is in force
    /// (those entries are stale: never served), but no later invalidation can find them, so
    /// their bytes stay until their TTL expires (forever without one).
    #[error(
        "invalidation clean-up failed ({cause}), and {unlisted} stale entries could not be listed \
         in their tags again ({relist}): they stay until they expire"
    )]
    CleanupUnlisted {
        /// Entries left unlisted.
        unlisted: u64,
        /// Why the deletes failed.
        cause: Box<Self>,
        /// Why the re-listing failed.
        relist: Box<Self>,
    },
    /// A compare-and-set kept conflicting with concurrent writers.
    #[error("compute gave up after {attempts} conflicting attempts")]
    ComputeConflict {
        /// Attempts made.
        attempts: u32,
    },
    /// The loader found nothing (not cached).
    #[error("key not found")]
    NotFound,
    /// The loader failed: its error, kept as the source (see [`SharedError::downcast_ref`]).
    /// Every caller that joined the same load gets the same error.
    #[error("loader failed: {0}")]
    Loader(#[source] SharedError),
    /// The loader panicked or was dropped before it finished.
    #[error("loader did not finish: {0}")]
    LoaderAborted(String),
    /// A namespace with this name exists with other key or value types, or other options.
    #[error("namespace {name:?} already exists with {what}")]
    NamespaceConflict {
        /// The normalised name.
        name: String,
        /// What differs.
        what: &'static str,
    },
    /// `flush_all` (`FLUSHDB` on every primary) refused: `allow_unsafe_flushdb` is not set.
    #[error(
        "refusing to flush every primary: set allow_unsafe_flushdb to clear a cluster this application owns"
    )]
    UnsafeFlush,
    /// `set_maximum` changes `maxmemory` on every primary, for every application of the cluster:
    /// refused unless `allow_unsafe_flushdb` says this application owns the cluster.
    #[error(
        "refusing to change maxmemory on every primary: set allow_unsafe_flushdb to change a cluster this application owns"
    )]
    UnsafeSetMaximum,
    /// The provider refused to start: a primary's eviction setup is of a class that
    /// `ProviderConfig::refuse_eviction` lists (see
    /// [`EvictionClass`](crate::cache::eviction_class::EvictionClass)). For
    /// [`EvictionClass::Unknown`](crate::cache::eviction_class::EvictionClass::Unknown), `cause` is
    /// why the setup could not be read (and `addr` is empty when no primary could be asked).
    #[error("primary {addr:?} evicts with {policy:?} ({class}), which refuse_eviction refuses")]
    EvictionRefused {
        /// The primary.
        addr: String,
        /// Its `maxmemory-policy` (empty when not read).
        policy: String,
        /// Its class.
        class: crate::cache::eviction_class::EvictionClass,
        /// Why it could not be read, for an unknown setup.
        #[source]
        cause: Option<Box<Self>>,
    },
    /// Search or query on a namespace without a schema, or a cluster without the module.
    #[error("search operations not supported by this provider: {0}")]
    SearchNotSupported(String),
    /// A search schema, filter or reply problem (see [`SearchError`]).
    #[error(transparent)]
    Search(#[from] SearchError),
    /// The provider was closed.
    #[error("the cache provider is closed")]
    Closed,
    /// The operation's time budget ran out.
    #[error("{op} exceeded its {timeout_ms} ms timeout")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// Its budget.
        timeout_ms: u64,
    },
    /// An invalid configuration.
    #[error("invalid cache configuration: {0}")]
    Config(String),
    /// An invalid provider or client setting, or connection URL: the error names the field
    /// ([`ConfigError::field`]).
    #[error("invalid configuration: {0}")]
    ClientConfig(#[from] ConfigError),
    /// The TLS settings are unusable (a certificate, key or server name that cannot be read);
    /// the source is the TLS library's own error where there is one.
    #[error("TLS: {0}")]
    Tls(#[source] SharedError),
    /// The credentials provider failed when the client started; its error is the source.
    #[error("the credentials provider failed: {0}")]
    Credentials(#[source] SharedError),
}

impl From<crate::config::UrlError> for CacheError {
    fn from(e: crate::config::UrlError) -> Self {
        Self::ClientConfig(ConfigError::Url(e))
    }
}

impl CacheError {
    /// A loader's error, kept as the source.
    pub fn loader(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Loader(SharedError::new(e))
    }

    pub(crate) fn invalid_tag(reason: impl Into<String>) -> Self {
        Self::InvalidTag { reason: reason.into() }
    }
}

impl From<KeyError> for CacheError {
    fn from(e: KeyError) -> Self {
        Self::Key(e.to_string())
    }
}

impl From<TagError> for CacheError {
    fn from(e: TagError) -> Self {
        Self::InvalidTag { reason: e.to_string() }
    }
}

/// What can go wrong with a search, before or after the server answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The schema is not usable.
    #[error("invalid search schema: {0}")]
    Schema(String),
    /// An existing index was built with another schema; it is never silently reused. Drop it
    /// (`FT.DROPINDEX`) or change `index_prefix`.
    #[error("the existing search index differs from the schema: {0}")]
    SchemaMismatch(String),
    /// A filter, sort or page request that cannot be expressed exactly.
    #[error("invalid search filter: {0}")]
    InvalidFilter(String),
    /// The server refused the search.
    #[error("search failed on the server: {0}")]
    Server(String),
    /// A reply of an unexpected shape.
    #[error("unexpected search reply: {0}")]
    Reply(String),
}
