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

// Protocol names are read where the protocol is defined (`resp`); re-exported with the other
// readers.
pub use crate::resp::{ProtocolError, parse_protocol};
