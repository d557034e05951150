//! User-key encoders: how a typed user key becomes the `UK` bytes of a data key and back.
//!
//! The reference rules (spec §3.2), kept byte-for-byte:
//! - strings are written verbatim ([`StringKeys`], or [`BytesKeys`] for raw bytes);
//! - integers are written in decimal ([`DecimalKeys`]);
//! - any other type is turned into bytes by a pluggable [`KeyMarshal`] and written as unpadded
//!   base64url ([`Base64Keys`]), so the key never holds braces, colons, glob characters or binary.

use core::fmt;
use core::marker::PhantomData;
use core::str::FromStr;

use bytes::Bytes;
use thiserror::Error;

use super::base64url::{self, Base64Error};

/// A boxed error from a user-supplied [`KeyMarshal`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a user key could not be encoded or decoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyCodecError {
    /// A string key read back from the server is not UTF-8.
    #[error("user key is not UTF-8")]
    NotUtf8,
    /// An integer key read back from the server is not a decimal number of the key's type.
    #[error("user key `{0}` is not a decimal integer of the expected type")]
    NotDecimal(String),
    /// A marshalled key read back from the server is not valid base64url.
    #[error("user key is not base64url: {0}")]
    Base64(#[from] Base64Error),
    /// The [`KeyMarshal`] failed to turn a key into bytes.
    #[error("failed to marshal key: {0}")]
    Marshal(#[source] BoxError),
    /// The [`KeyMarshal`] failed to turn bytes back into a key.
    #[error("failed to unmarshal key: {0}")]
    Unmarshal(#[source] BoxError),
}

/// Turns user keys of one type into the `UK` part of a data key, and back.
///
/// `decode(encode(k)) == k` must hold for every key the encoder accepts.
pub trait KeyEncoder {
    /// The user-key type.
    type Key;

    /// Appends the encoded form of `key` to `out`.
    fn encode(&self, key: &Self::Key, out: &mut Vec<u8>) -> Result<(), KeyCodecError>;

    /// Decodes the `UK` bytes (the namespace prefix already stripped).
    fn decode(&self, encoded: &[u8]) -> Result<Self::Key, KeyCodecError>;
}

/// `String` keys, written verbatim (the reference's rule 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StringKeys;

impl KeyEncoder for StringKeys {
    type Key = String;

    fn encode(&self, key: &String, out: &mut Vec<u8>) -> Result<(), KeyCodecError> {
        out.extend_from_slice(key.as_bytes());
        Ok(())
    }

    fn decode(&self, encoded: &[u8]) -> Result<String, KeyCodecError> {
        core::str::from_utf8(encoded).map(str::to_owned).map_err(|_| KeyCodecError::NotUtf8)
    }
}

/// Raw byte keys, written verbatim (Go strings are byte strings, so this matches rule 1 for
/// keys that are not UTF-8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BytesKeys;

impl KeyEncoder for BytesKeys {
    type Key = Bytes;

    fn encode(&self, key: &Bytes, out: &mut Vec<u8>) -> Result<(), KeyCodecError> {
        out.extend_from_slice(key);
        Ok(())
    }

    fn decode(&self, encoded: &[u8]) -> Result<Bytes, KeyCodecError> {
        Ok(Bytes::copy_from_slice(encoded))
    }
}

/// An integer type that [`DecimalKeys`] can write. Implemented for every primitive integer.
pub trait DecimalInt: Copy + fmt::Display + FromStr + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! decimal_ints {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl DecimalInt for $t {}
    )*};
}
decimal_ints!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

/// Integer keys written in decimal, as Go's `%v` writes them (`42`, `-7`).
///
/// Decoding accepts only what encoding writes: optional `-`, digits, no leading zeros (other
/// than `0` itself), no `+`, no spaces. Anything else is [`KeyCodecError::NotDecimal`], so a
/// foreign key under the prefix never decodes to a key that would encode differently.
pub struct DecimalKeys<T>(PhantomData<fn() -> T>);

impl<T> DecimalKeys<T> {
    /// The encoder.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> Default for DecimalKeys<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for DecimalKeys<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for DecimalKeys<T> {}

impl<T> fmt::Debug for DecimalKeys<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecimalKeys")
    }
}

impl<T: DecimalInt> KeyEncoder for DecimalKeys<T> {
    type Key = T;

    fn encode(&self, key: &T, out: &mut Vec<u8>) -> Result<(), KeyCodecError> {
        out.extend_from_slice(key.to_string().as_bytes());
        Ok(())
    }

    fn decode(&self, encoded: &[u8]) -> Result<T, KeyCodecError> {
        let not_decimal = || KeyCodecError::NotDecimal(String::from_utf8_lossy(encoded).into_owned());
        let digits = encoded.strip_prefix(b"-").unwrap_or(encoded);
        let canonical = match digits {
            [] => false,
            [b'0'] => encoded.len() == 1,
            [b'0', ..] => false,
            _ => digits.iter().all(u8::is_ascii_digit),
        };
        if !canonical {
            return Err(not_decimal());
        }
        core::str::from_utf8(encoded).ok().and_then(|s| s.parse().ok()).ok_or_else(not_decimal)
    }
}

/// Turns keys of a non-string, non-integer type into bytes and back (the reference's
/// `KeyRegistry` encoder). [`Base64Keys`] writes those bytes as base64url.
pub trait KeyMarshal {
    /// The user-key type.
    type Key;

    /// Appends the bytes of `key` to `out`.
    fn marshal(&self, key: &Self::Key, out: &mut Vec<u8>) -> Result<(), BoxError>;

    /// Reads a key back from bytes written by [`marshal`](Self::marshal).
    fn unmarshal(&self, bytes: &[u8]) -> Result<Self::Key, BoxError>;
}

/// Keys of any type, marshalled by `M` and written as unpadded base64url (rule 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Base64Keys<M>(pub M);

impl<M: KeyMarshal> KeyEncoder for Base64Keys<M> {
    type Key = M::Key;

    fn encode(&self, key: &M::Key, out: &mut Vec<u8>) -> Result<(), KeyCodecError> {
        let mut raw = Vec::new();
        self.0.marshal(key, &mut raw).map_err(KeyCodecError::Marshal)?;
        base64url::encode_into(&raw, out);
        Ok(())
    }

    fn decode(&self, encoded: &[u8]) -> Result<M::Key, KeyCodecError> {
        let raw = base64url::decode(encoded)?;
        self.0.unmarshal(&raw).map_err(KeyCodecError::Unmarshal)
    }
}
