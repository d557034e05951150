//! The async layer's error type.

use slotcache_core::cache::SharedError;
use slotcache_core::client::{ConfigError, RequestError, SubmitError};

/// Everything that can go wrong for a caller of the async client.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request failed (server error, timeout, unreachable node, ...).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The request was refused before anything was sent.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS settings are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The [`CredentialsProvider`](crate::CredentialsProvider) failed when the client started.
    #[error("the credentials provider failed: {0}")]
    Credentials(#[source] SharedError),
    /// The client was closed (or its driver task stopped).
    #[error("the client is closed")]
    Closed,
}

impl From<slotcache_core::config::UrlError> for Error {
    fn from(e: slotcache_core::config::UrlError) -> Self {
        Self::Config(ConfigError::Url(e))
    }
}

/// Unusable TLS settings: what could not be used, and the TLS library's error when it gave one.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("TLS: {what}{}", .source.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
pub struct TlsError {
    what: String,
    #[source]
    source: Option<SharedError>,
}

impl TlsError {
    /// An error about `what`, with no underlying error.
    pub(crate) fn new(what: impl Into<String>) -> Self {
        Self { what: what.into(), source: None }
    }

    /// An error about `what`, caused by `source`.
    pub(crate) fn caused(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self { what: what.into(), source: Some(SharedError::new(source)) }
    }

    /// What could not be used.
    #[must_use]
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The TLS library's error, kept whole (downcast it with [`SharedError::downcast_ref`]).
    #[must_use]
    pub const fn tls_source(&self) -> Option<&SharedError> {
        self.source.as_ref()
    }
}
