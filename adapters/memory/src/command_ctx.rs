//! What every data command runs with, whichever module implements it ([`super::commands`],
//! [`super::json`], [`super::search`]): the node's keyspace and clock ([`Ctx`]), the reply
//! helpers and Valkey's integer arguments.

use bytes::Bytes;
use slotcache_core::Value;

use super::store::Store;

/// The text of a `WRONGTYPE` error.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// An error reply.
#[must_use]
pub fn err(s: &str) -> Value {
    Value::Error(Bytes::copy_from_slice(s.as_bytes()))
}

/// `+OK`.
#[must_use]
pub const fn ok() -> Value {
    Value::Simple(Bytes::from_static(b"OK"))
}

/// The clock and keyspace one command runs against.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The node's keyspace.
    pub store: &'a mut Store,
    /// The node's clock, microseconds since the Unix epoch (skew included).
    pub now_us: u64,
    /// Whether the connection speaks RESP3 (scores as doubles).
    pub resp3: bool,
}

impl Ctx<'_> {
    /// The node's clock in milliseconds.
    #[must_use]
    pub const fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }
}

/// Parses a strict integer as Valkey's `string2ll` does (no `+`, no spaces, no leading zeros
/// beyond a lone `0`).
#[must_use]
pub fn parse_int(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with('+') || s.len() > 20 {
        return None;
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) || s == "-0" {
        return None;
    }
    s.parse().ok()
}
