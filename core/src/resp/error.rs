//! Decoding limits and the typed errors of the RESP layer.

use core::fmt;

/// Bounds on what [`decode`](super::decode) accepts from the server.
///
/// Every bound is checked as soon as the header that declares it has arrived, before waiting
/// for the payload: a `$999999999999\r\n` header over [`max_bulk_len`](Self::max_bulk_len) is an
/// error at once, not after half a terabyte has been buffered.
///
/// Nothing bounds a whole frame, only its parts: a decoded [`Value`](super::Value) takes up to
/// about 24 times the bytes of a frame of tiny elements (72 bytes per 3-byte `_\r\n`), so the
/// caller bounds how much it buffers for one reply.
///
/// With the `serde` feature, a table of these fields (missing ones take their defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct Limits {
    /// Deepest nesting of aggregates (arrays, maps, sets, pushes, attributes): `0` allows only
    /// scalar replies, `1` allows an array of scalars, and so on.
    ///
    /// Values above [`MAX_DEPTH_CEILING`] count as that ceiling, because a decoded
    /// [`Value`](super::Value) is dropped, compared and printed recursively.
    pub max_depth: usize,
    /// Longest bulk string, blob error or verbatim string payload, in bytes. Simple strings,
    /// simple errors and big numbers are lines, and their text is bounded by the same number.
    pub max_bulk_len: usize,
    /// Most entries declared by one array, set or push, or pairs declared by one map or
    /// attribute.
    pub max_array_len: usize,
}

/// The hard ceiling on [`Limits::max_depth`].
pub const MAX_DEPTH_CEILING: usize = 512;

/// The longest numeric line (length header, integer, double, boolean, null), in bytes before
/// its CRLF. The longest double a server prints in fixed notation is about 330 bytes.
pub const MAX_NUMERIC_LINE: usize = 512;

impl Default for Limits {
    /// Depth 64, bulk strings up to 512 MiB (the server's own `proto-max-bulk-len`), and
    /// aggregates up to 16 Mi entries.
    fn default() -> Self {
        Self { max_depth: 64, max_bulk_len: 512 * 1024 * 1024, max_array_len: 16 * 1024 * 1024 }
    }
}

impl Limits {
    /// [`max_depth`](Self::max_depth) capped at [`MAX_DEPTH_CEILING`].
    pub(super) fn depth(&self) -> usize {
        self.max_depth.min(MAX_DEPTH_CEILING)
    }
}

/// Why a byte stream is not valid RESP, or is valid but outside the [`Limits`].
///
/// After any of these the stream cannot be resynchronised: the connection should be closed.
/// The input buffer is left as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A frame starts with a byte that is not a type marker of the protocol in use (RESP3
    /// markers such as `%` are invalid on a RESP2 connection).
    #[error("invalid RESP type byte {:?}", char::from(*byte))]
    InvalidPrefix {
        /// The offending byte.
        byte: u8,
    },
    /// Aggregates nest deeper than [`Limits::max_depth`].
    #[error("RESP aggregates nest deeper than the limit of {limit}")]
    TooDeep {
        /// The depth limit in force.
        limit: usize,
    },
    /// A bulk string, blob error or verbatim string declares more than
    /// [`Limits::max_bulk_len`] bytes.
    #[error("RESP bulk string of {len} bytes exceeds the limit of {limit}")]
    BulkTooLong {
        /// The declared length (`usize::MAX` if it does not fit).
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// An array, set, push, map or attribute declares more than [`Limits::max_array_len`]
    /// entries.
    #[error("RESP aggregate of {len} entries exceeds the limit of {limit}")]
    ArrayTooLong {
        /// The declared number of entries (pairs for maps and attributes).
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A line has run past its limit without a CRLF: [`Limits::max_bulk_len`] for simple
    /// strings, simple errors and big numbers, [`MAX_NUMERIC_LINE`] for the others.
    #[error("RESP line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The bytes break the grammar.
    #[error("malformed RESP: {reason}")]
    Malformed {
        /// What is wrong.
        reason: Syntax,
    },
    /// A RESP3 streamed string or aggregate (`$?`, `*?`, `%?`, `~?`, `;`, `.`). Servers only
    /// send these to clients that asked for them, which this client never does.
    #[error("RESP3 streamed frames are not supported (type byte {:?})", char::from(*byte))]
    Unsupported {
        /// The type byte of the streamed frame.
        byte: u8,
    },
}

/// The grammar rule a [`DecodeError::Malformed`] frame breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Syntax {
    /// A payload is not followed by CRLF.
    MissingCrlf,
    /// A length header is not a decimal count (or `-1` where a null is allowed).
    BadLength,
    /// An integer is not a decimal `i64`.
    BadInteger,
    /// A double is not a decimal number, `inf`, `-inf` or `nan`.
    BadDouble,
    /// A boolean is neither `#t` nor `#f`.
    BadBoolean,
    /// A null is not exactly `_`.
    BadNull,
    /// A big number is not a decimal integer.
    BadBigNumber,
    /// A verbatim string is shorter than 4 bytes or has no `:` after its format.
    BadVerbatim,
    /// The decoder disagreed with its own pre-scan. This is a bug; please report it.
    Inconsistent,
}

impl Syntax {
    const fn describe(self) -> &'static str {
        match self {
            Self::MissingCrlf => "payload not followed by CRLF",
            Self::BadLength => "invalid length header",
            Self::BadInteger => "invalid integer",
            Self::BadDouble => "invalid double",
            Self::BadBoolean => "invalid boolean",
            Self::BadNull => "invalid null",
            Self::BadBigNumber => "invalid big number",
            Self::BadVerbatim => "invalid verbatim string",
            Self::Inconsistent => "decoder inconsistency (a bug)",
        }
    }
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl From<Syntax> for DecodeError {
    fn from(reason: Syntax) -> Self {
        Self::Malformed { reason }
    }
}

/// Why [`encode_value`](super::encode_value) cannot write a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// RESP2 has no form for maps, sets, doubles, booleans, big numbers, verbatim strings or
    /// push messages. No flattening is done: build the RESP2 shape the server would send.
    #[error("{kind} values cannot be sent over RESP2")]
    NotInResp2 {
        /// The kind of value, such as `"map"`.
        kind: &'static str,
    },
    /// A simple string, RESP2 error or big number contains CR or LF, which would end its line.
    #[error("{kind} text contains CR or LF")]
    LineBreak {
        /// The kind of value, such as `"simple string"`.
        kind: &'static str,
    },
    /// A RESP2 error text is not UTF-8 (RESP2 clients read errors as text).
    #[error("RESP2 error text is not UTF-8")]
    ErrorNotUtf8,
    /// A big number's text is not an optionally signed decimal integer.
    #[error("big number text is not a decimal integer")]
    BadBigNumber,
    /// A verbatim string format other than `txt` or `mkd`, the two RESP3 defines.
    #[error("verbatim string format is neither `txt` nor `mkd`")]
    VerbatimFormat,
}
