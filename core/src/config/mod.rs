//! Reading configuration from text: connection URLs ([`url`]), human-readable durations
//! ([`duration`]) and, with the `serde` feature, files and the environment (every
//! configuration type implements `serde::Deserialize`, durations written `"250ms"`, unknown
//! fields refused by name).

#[cfg(feature = "serde")]
pub mod de;
pub mod duration;
pub mod url;

pub use duration::{DurationError, parse_duration};
pub use url::{ConnectionUrl, UrlError};

use crate::resp::Protocol;

/// Why a protocol name could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a protocol: use 2, 3, resp2 or resp3")]
pub struct ProtocolError(pub String);

/// Reads a protocol: `2`, `3`, `resp2`, `resp3` (any case).
///
/// # Errors
/// [`ProtocolError`] for anything else.
pub fn parse_protocol(s: &str) -> Result<Protocol, ProtocolError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "2" | "resp2" => Ok(Protocol::Resp2),
        "3" | "resp3" => Ok(Protocol::Resp3),
        _ => Err(ProtocolError(s.to_owned())),
    }
}
