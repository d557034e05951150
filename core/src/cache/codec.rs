//! Value codecs: how a namespace's values become bytes and back.
//!
//! A [`Codec`] runs before the transformers (see [`super::transform`]): its bytes are what the
//! reference stores when no transformer is configured, so the codec alone decides whether Go
//! and Rust services can share a namespace.
//!
//! - `Json` (feature `json`, on by default) writes the bytes the reference's JSON encoder
//!   writes (Go `encoding/json` with HTML escaping off); see its documentation for the exact
//!   rules and the few differences left.
//! - [`Binary`] is a compact serde format for Rust-only namespaces: [postcard]. It was chosen
//!   over bincode because postcard's 1.x wire format is specified and frozen, the crate is
//!   actively maintained, and it needs no configuration to be deterministic (varint integers,
//!   no options to get wrong between writer and reader); bincode is unmaintained
//!   (RUSTSEC-2025-0141, which names postcard among the alternatives).
//! - [`Raw`] stores `Vec<u8>`, [`Bytes`] and `String` values as they are.
//!
//! Every codec turns undecodable input into [`CacheError::Codec`] and never panics.
//!
//! [postcard]: https://docs.rs/postcard

#[cfg(feature = "json")]
mod json;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::CacheError;

#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub use json::Json;

/// Turns values into bytes and back.
pub trait Codec<V>: Send + Sync + 'static {
    /// A short stable name, for error messages and configuration checks.
    fn name(&self) -> &'static str;

    /// Appends the bytes of `value` to `out`.
    ///
    /// # Errors
    /// [`CacheError::Codec`] when the value cannot be encoded; `out` is then left as it was.
    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CacheError>;

    /// Reads a value back from exactly these bytes.
    ///
    /// # Errors
    /// [`CacheError::Codec`] when the bytes are not a value of this type in this codec's format,
    /// trailing bytes included.
    fn decode(&self, bytes: &[u8]) -> Result<V, CacheError>;
}

/// A compact binary serde format ([postcard] 1.x), for namespaces only Rust services read.
///
/// Not readable by the Go reference. postcard is not self-describing, so types that need
/// `deserialize_any` (`serde_json::Value`, `#[serde(untagged)]`, `#[serde(flatten)]`) cannot be
/// decoded, and a reader must use the writer's exact type. postcard has no nesting limit: a
/// recursive type (a tree) decoded from hostile bytes could exhaust the stack, so store such
/// types with `Json` (limited to 128 levels) where the cluster's contents are not trusted.
///
/// [postcard]: https://docs.rs/postcard
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Binary;

impl<V: Serialize + DeserializeOwned> Codec<V> for Binary {
    fn name(&self) -> &'static str {
        "postcard"
    }

    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CacheError> {
        let start = out.len();
        let result = postcard::to_extend(value, Appender(&mut *out)).map(drop);
        result.map_err(|e| {
            out.truncate(start);
            CacheError::Codec(format!("postcard: cannot encode the value: {e}"))
        })
    }

    fn decode(&self, bytes: &[u8]) -> Result<V, CacheError> {
        let (value, rest) = postcard::take_from_bytes(bytes)
            .map_err(|e| CacheError::Codec(format!("postcard: cannot decode the value: {e}")))?;
        if !rest.is_empty() {
            return Err(CacheError::Codec(format!(
                "postcard: {} trailing bytes after the value",
                rest.len()
            )));
        }
        Ok(value)
    }
}

/// Lets postcard append to a caller's vector.
struct Appender<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// Stores bytes as they are: `Vec<u8>`, [`Bytes`] and `String` (checked to be UTF-8 when read).
///
/// The reference has no such codec (its JSON encoder stores `[]byte` as a base64 string); use it
/// for Rust-only namespaces, or to share opaque bytes with a service that reads them raw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), CacheError> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, CacheError> {
        Ok(bytes.to_vec())
    }
}

impl Codec<Bytes> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, value: &Bytes, out: &mut Vec<u8>) -> Result<(), CacheError> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Bytes, CacheError> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

impl Codec<String> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, value: &String, out: &mut Vec<u8>) -> Result<(), CacheError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, CacheError> {
        match core::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(CacheError::Codec(format!(
                "raw: the value is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ))),
        }
    }
}

// The vectors compare with the JSON codec's bytes: they need the `json` feature (on by default).
#[cfg(all(test, feature = "json"))]
mod tests;
