//! The protocol version a connection speaks, and how a configuration names it.

/// The protocol version spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2 (`AUTH`, `CLIENT SETNAME`; no maps, doubles or push messages).
    Resp2,
    /// RESP3 (negotiated with `HELLO 3`).
    Resp3,
}

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

/// `2`, `3`, `"resp2"` or `"resp3"` (feature `serde`).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use core::fmt;

        use serde::de::{self, Visitor};

        struct V;
        impl Visitor<'_> for V {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("2, 3, \"resp2\" or \"resp3\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Protocol, E> {
                parse_protocol(s).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Protocol, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Protocol, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(V)
    }
}
