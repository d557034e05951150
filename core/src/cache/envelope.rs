//! The bytes stored under a data key.
//!
//! An entry with no tags, no transformers and no refresh time is stored as the codec's bytes,
//! exactly as the reference writes them, so Go and Rust services can share such entries (and
//! only those: see "Sharing a cluster with the Go provider" in [`crate::keys`]). Anything else
//! is wrapped in a small binary envelope, which the Go provider cannot read:
//!
//! ```text
//! 0x00 'S' 'C'  version(1)  header_len(u32 BE)  header  payload
//! header = flags(u8)
//!          [refresh_at_ms(u64 BE)]               if flags & REFRESH
//!          transform_count(u8) transform_ids..   (in the order they were applied)
//!          tag_count(u16 BE) { tag_len(u16 BE) tag  token_len(u8) token }*
//! ```
//!
//! A raw value that itself starts with `0x00` is always enveloped, so the first byte tells the
//! two forms apart without ambiguity (JSON never starts with `0x00`). Tag tokens sit in the
//! header, before the payload, so the server-side script that deletes an entry only if it still
//! carries a given token searches the header alone (see [`super::scripts`]).

use bytes::{BufMut, Bytes, BytesMut};

use super::error::CacheError;

/// The envelope's magic prefix.
pub const MAGIC: &[u8; 3] = b"\0SC";
/// The envelope version this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the header: magic, version, header length.
pub const PREFIX_LEN: usize = 8;

const FLAG_REFRESH: u8 = 1;

/// A transformer applied to the payload, recorded by id so a reader never applies the wrong
/// chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransformId {
    /// zstd compression.
    Zstd,
    /// ChaCha20-Poly1305 authenticated encryption.
    ChaCha20Poly1305,
}

impl TransformId {
    const fn to_u8(self) -> u8 {
        match self {
            Self::Zstd => 1,
            Self::ChaCha20Poly1305 => 2,
        }
    }

    const fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Zstd),
            2 => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }
}

/// A tag and the token it had when the entry was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagToken {
    /// The tag name.
    pub tag: Bytes,
    /// The tag's token at write time.
    pub token: Bytes,
}

/// A decoded entry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Entry {
    /// The payload (transformed bytes when `transforms` is not empty).
    pub payload: Bytes,
    /// The transformers applied, in order.
    pub transforms: Vec<TransformId>,
    /// The tags with their tokens.
    pub tags: Vec<TagToken>,
    /// Wall-clock milliseconds after which a read should trigger a background refresh.
    pub refresh_at_ms: Option<u64>,
}

impl Entry {
    /// An entry holding just these bytes.
    #[must_use]
    pub fn plain(payload: Bytes) -> Self {
        Self { payload, ..Self::default() }
    }

    /// Whether the entry can be stored as the bare payload.
    fn is_bare(&self) -> bool {
        self.transforms.is_empty()
            && self.tags.is_empty()
            && self.refresh_at_ms.is_none()
            && self.payload.first() != Some(&0)
    }

    /// The stored bytes.
    ///
    /// # Errors
    /// [`CacheError::InvalidTag`] for a tag over 65535 bytes or a token over 255 bytes, and
    /// [`CacheError::InvalidTag`] for more than 65535 tags.
    pub fn encode(&self) -> Result<Bytes, CacheError> {
        if self.is_bare() {
            return Ok(self.payload.clone());
        }
        let mut header = BytesMut::new();
        let flags = if self.refresh_at_ms.is_some() { FLAG_REFRESH } else { 0 };
        header.put_u8(flags);
        if let Some(at) = self.refresh_at_ms {
            header.put_u64(at);
        }
        let n = u8::try_from(self.transforms.len())
            .map_err(|_| CacheError::invalid_tag("too many transformers"))?;
        header.put_u8(n);
        for t in &self.transforms {
            header.put_u8(t.to_u8());
        }
        let n =
            u16::try_from(self.tags.len()).map_err(|_| CacheError::invalid_tag("more than 65535 tags"))?;
        header.put_u16(n);
        for t in &self.tags {
            let len =
                u16::try_from(t.tag.len()).map_err(|_| CacheError::invalid_tag("a tag over 65535 bytes"))?;
            header.put_u16(len);
            header.put_slice(&t.tag);
            let len =
                u8::try_from(t.token.len()).map_err(|_| CacheError::invalid_tag("a token over 255 bytes"))?;
            header.put_u8(len);
            header.put_slice(&t.token);
        }
        let header_len =
            u32::try_from(header.len()).map_err(|_| CacheError::invalid_tag("header too large"))?;
        let mut out = BytesMut::with_capacity(PREFIX_LEN + header.len() + self.payload.len());
        out.put_slice(MAGIC);
        out.put_u8(VERSION);
        out.put_u32(header_len);
        out.put_slice(&header);
        out.put_slice(&self.payload);
        Ok(out.freeze())
    }

    /// The length of what [`Entry::encode`] returns, computed without encoding (so a size limit
    /// can be checked before anything is sent).
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        if self.is_bare() {
            return self.payload.len();
        }
        let refresh = if self.refresh_at_ms.is_some() { 8 } else { 0 };
        let tags: usize = self.tags.iter().map(|t| 2 + t.tag.len() + 1 + t.token.len()).sum();
        let header = 1 + refresh + 1 + self.transforms.len() + 2 + tags;
        PREFIX_LEN + header + self.payload.len()
    }

    /// Reads stored bytes back.
    ///
    /// # Errors
    /// [`CacheError::Corrupt`] for a truncated or unknown envelope.
    pub fn decode(stored: &Bytes) -> Result<Self, CacheError> {
        if stored.first() != Some(&0) {
            return Ok(Self::plain(stored.clone()));
        }
        let corrupt = |what: &'static str| CacheError::Corrupt { what };
        if stored.get(..3) != Some(MAGIC.as_slice()) {
            return Err(corrupt("a value starting with 0x00 without the envelope magic"));
        }
        if stored.get(3) != Some(&VERSION) {
            return Err(corrupt("an envelope version this build cannot read"));
        }
        let len_bytes: [u8; 4] =
            stored.get(4..8).and_then(|b| b.try_into().ok()).ok_or_else(|| corrupt("truncated envelope"))?;
        let header_len = u32::from_be_bytes(len_bytes) as usize;
        let header_end =
            PREFIX_LEN.checked_add(header_len).ok_or_else(|| corrupt("envelope length overflow"))?;
        let mut r = Reader {
            buf: stored.get(PREFIX_LEN..header_end).ok_or_else(|| corrupt("truncated envelope header"))?,
        };
        let payload = stored.slice(header_end..);
        let flags = r.u8()?;
        let refresh_at_ms = if flags & FLAG_REFRESH != 0 { Some(r.u64()?) } else { None };
        let n = r.u8()?;
        let mut transforms = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            transforms
                .push(TransformId::from_u8(r.u8()?).ok_or_else(|| corrupt("an unknown transformer id"))?);
        }
        let n = r.u16()?;
        let mut tags = Vec::with_capacity(usize::from(n).min(1024));
        for _ in 0..n {
            let len = usize::from(r.u16()?);
            let tag = Bytes::copy_from_slice(r.take(len)?);
            let len = usize::from(r.u8()?);
            let token = Bytes::copy_from_slice(r.take(len)?);
            tags.push(TagToken { tag, token });
        }
        if !r.buf.is_empty() {
            return Err(corrupt("trailing bytes in the envelope header"));
        }
        Ok(Self { payload, transforms, tags, refresh_at_ms })
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CacheError> {
        if self.buf.len() < n {
            return Err(CacheError::Corrupt { what: "truncated envelope header" });
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CacheError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CacheError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Result<u64, CacheError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bare_values_are_stored_as_is() {
        let e = Entry::plain(Bytes::from_static(b"\"hello\""));
        assert_eq!(e.encode().expect("encode"), Bytes::from_static(b"\"hello\""));
        assert_eq!(Entry::decode(&Bytes::from_static(b"\"hello\"")).expect("decode"), e);
    }

    #[test]
    fn a_leading_nul_is_always_enveloped() {
        let e = Entry::plain(Bytes::from_static(b"\0\0raw"));
        let stored = e.encode().expect("encode");
        assert!(stored.starts_with(MAGIC));
        assert_eq!(Entry::decode(&stored).expect("decode"), e);
    }

    #[test]
    fn corrupt_envelopes_are_typed_errors() {
        for bad in [&b"\0"[..], b"\0SC", b"\0SC\x09\0\0\0\0", b"\0SC\x01\0\0\0\x09\0", b"\0XY\x01"] {
            assert!(
                matches!(Entry::decode(&Bytes::copy_from_slice(bad)), Err(CacheError::Corrupt { .. })),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..200),
                      tags in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..20), proptest::collection::vec(any::<u8>(), 0..40)), 0..5),
                      refresh in proptest::option::of(any::<u64>()),
                      zstd in any::<bool>()) {
            let e = Entry {
                payload: Bytes::from(payload),
                transforms: if zstd { vec![TransformId::Zstd] } else { vec![] },
                tags: tags.into_iter().map(|(t, k)| TagToken { tag: Bytes::from(t), token: Bytes::from(k) }).collect(),
                refresh_at_ms: refresh,
            };
            let stored = e.encode().expect("encode");
            prop_assert_eq!(stored.len(), e.encoded_len());
            prop_assert_eq!(Entry::decode(&stored).expect("decode"), e);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Entry::decode(&Bytes::from(bytes));
        }
    }
}
