//! Base64 with the URL-safe alphabet (RFC 4648 §5) and no padding: the text form of user keys
//! that are neither strings nor integers.
//!
//! Hand-written (about fifty lines) rather than a dependency: the core needs only this one
//! alphabet, only unpadded, and a strict decoder that accepts exactly what the encoder writes.

use thiserror::Error;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Why a base64url text could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Base64Error {
    /// A byte outside the URL-safe alphabet (padding `=` included) at this offset.
    #[error("byte 0x{byte:02x} at offset {at} is not in the base64url alphabet")]
    InvalidByte {
        /// Offset of the byte in the text.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// The length leaves a single dangling character (`len % 4 == 1`), which no input encodes to.
    #[error("base64url text of length {0} cannot be complete")]
    InvalidLength(usize),
    /// The unused low bits of the last character are not zero, so the encoder never wrote this.
    #[error("base64url text has non-zero trailing bits")]
    NonCanonical,
}

/// Appends the unpadded base64url text of `input` to `out`.
pub fn encode_into(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len().div_ceil(3) * 4);
    let mut chunks = input.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12)]);
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6)]);
        }
        _ => {}
    }
}

/// The unpadded base64url text of `input`.
#[must_use]
pub fn encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(input, &mut out);
    out
}

/// Decodes unpadded base64url text. Strict: padding, other alphabets and non-zero trailing bits
/// are refused, so every accepted text is exactly what [`encode`] writes for its result.
pub fn decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    if text.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength(text.len()));
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for (i, chunk) in text.chunks(4).enumerate() {
        let mut n: u32 = 0;
        for (j, &byte) in chunk.iter().enumerate() {
            let v = value(byte).ok_or(Base64Error::InvalidByte { at: i * 4 + j, byte })?;
            n |= u32::from(v) << (18 - 6 * j);
        }
        let [_, b0, b1, b2] = n.to_be_bytes();
        let (bytes, unused_bits): (&[u8], u32) = match chunk.len() {
            2 => (&[b0], n & 0xFFFF),
            3 => (&[b0, b1], n & 0xFF),
            _ => (&[b0, b1, b2], 0),
        };
        if unused_bits != 0 {
            return Err(Base64Error::NonCanonical);
        }
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

fn sextet(n: u32, shift: u32) -> u8 {
    ALPHABET[((n >> shift) & 0x3F) as usize]
}

const fn value(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}
