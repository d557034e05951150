//! The decoded reply type shared by every layer.

use bytes::Bytes;

/// One decoded RESP2 or RESP3 frame.
///
/// RESP2 replies use the subset `Nil`, `Simple`, `Error`, `Int`, `Bulk` and `Array`.
/// A top-level `Error` is a server error for the command it answers; an `Error` nested in an
/// array (for example an `EXEC` element) is data for the caller to inspect.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `$-1`, `*-1` (RESP2) or `_` (RESP3).
    Nil,
    /// A simple string such as `+OK`.
    Simple(Bytes),
    /// An error reply (`-ERR ...` or RESP3 `!` blob error), without the leading `-`.
    Error(Bytes),
    /// An integer reply.
    Int(i64),
    /// A bulk (blob) string.
    Bulk(Bytes),
    /// An array.
    Array(Vec<Self>),
    /// A RESP3 map, in the order received.
    Map(Vec<(Self, Self)>),
    /// A RESP3 set, in the order received.
    Set(Vec<Self>),
    /// A RESP3 double.
    Double(f64),
    /// A RESP3 boolean.
    Bool(bool),
    /// A RESP3 big number, as its decimal text.
    BigNumber(Bytes),
    /// A RESP3 verbatim string: the 3-byte format (such as `txt`) and the text.
    Verbatim {
        /// The format, such as `txt` or `mkd`.
        format: Bytes,
        /// The text.
        text: Bytes,
    },
    /// A RESP3 out-of-band push message (pub/sub, client-tracking invalidations).
    Push(Vec<Self>),
}

impl Value {
    /// The bytes of a `Bulk`, `Simple` or `Verbatim` value.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Self::Bulk(b) | Self::Simple(b) | Self::Verbatim { text: b, .. } => Some(b),
            _ => None,
        }
    }

    /// The text of a `Bulk`, `Simple` or `Verbatim` value, when it is UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| core::str::from_utf8(b).ok())
    }

    /// An integer, from `Int` or from a decimal `Bulk`/`Simple`.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => self.as_str().and_then(|s| s.parse().ok()),
        }
    }

    /// The elements of an `Array`, `Set` or `Push`.
    #[must_use]
    pub fn as_array(&self) -> Option<&[Self]> {
        match self {
            Self::Array(a) | Self::Set(a) | Self::Push(a) => Some(a),
            _ => None,
        }
    }

    /// Whether this is `Nil`.
    #[must_use]
    pub const fn is_nil(&self) -> bool {
        matches!(self, Self::Nil)
    }

    /// Looks a field up by name in a RESP3 `Map` or in a RESP2 flat `[k1, v1, k2, v2, ...]`
    /// array, the two shapes servers use for the same reply.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Self> {
        match self {
            Self::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_bytes().is_some_and(|b| b.as_ref() == name.as_bytes()))
                .map(|(_, v)| v),
            Self::Array(items) => items
                .chunks_exact(2)
                .find(|kv| kv[0].as_bytes().is_some_and(|b| b.as_ref() == name.as_bytes()))
                .map(|kv| &kv[1]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_in_both_shapes() {
        let k = |s: &'static str| Value::Bulk(Bytes::from_static(s.as_bytes()));
        let map = Value::Map(vec![(k("port"), Value::Int(7000))]);
        let flat = Value::Array(vec![k("port"), Value::Int(7000)]);
        assert_eq!(map.field("port"), Some(&Value::Int(7000)));
        assert_eq!(flat.field("port"), Some(&Value::Int(7000)));
        assert_eq!(flat.field("ip"), None);
        assert_eq!(k("42").as_int(), Some(42));
    }
}
