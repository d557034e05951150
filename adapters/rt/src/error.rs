//! The async layer's error type.

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
    #[error("TLS: {0}")]
    Tls(String),
    /// The client was closed (or its driver task stopped).
    #[error("the client is closed")]
    Closed,
}
