//! Value transformers (compression, encryption) and the pipeline that chains them.
//!
//! A [`ValuePipeline`] turns a codec's bytes into an [`Entry`](super::Entry) payload and the
//! list of [`TransformId`]s it applied, which the envelope records; reading reverses the
//! **recorded** chain, not the configured one, so a value is never read with the wrong chain.
//!
//! - [`Zstd`]: zstd compression (crate `zstd`, bindings to the reference C library, with its
//!   legacy-format decoders left out; the reference's level 3 by default) with a frame checksum,
//!   and a cap on decompressed size checked while decoding, never trusted from the frame header.
//! - [`XChaCha20Poly1305`]: authenticated encryption (RustCrypto's `chacha20poly1305` 0.10; 0.11
//!   needs a newer Rust than our MSRV) with a random 24-byte nonce, long enough that random
//!   nonces never repeat in practice. There is no AES-GCM transformer: the envelope has no id for
//!   one.
//!
//! The core has no OS randomness: [`Transform::apply`] takes a `random` callback that fills
//! nonces. It must be a cryptographically secure source (the OS generator, in the adapter);
//! the core's [`Rng`](crate::Rng) is not one.
//!
//! The reference's chain is not byte-compatible with this one (its crypto transformer calls an
//! external crypto service, and its envelope is JSON); shared Go/Rust namespaces use no
//! transformers.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XNonce};

use super::envelope::TransformId;
use super::error::CacheError;

/// One reversible step applied to a value's bytes.
pub trait Transform: Send + Sync + 'static {
    /// The id recorded in the envelope; a pipeline finds the transformer to reverse by it.
    fn id(&self) -> TransformId;

    /// A short name, for errors.
    fn name(&self) -> &'static str;

    /// Transforms `data`. `random` fills nonces (the core has no OS randomness; the caller passes
    /// a cryptographically secure source).
    ///
    /// # Errors
    /// [`CacheError::Transform`] when the data cannot be transformed.
    fn apply(&self, data: &[u8], random: &mut dyn FnMut(&mut [u8])) -> Result<Vec<u8>, CacheError>;

    /// Undoes [`Transform::apply`].
    ///
    /// # Errors
    /// [`CacheError::Transform`] for data this transformer did not produce, or produced with
    /// another key, or altered since.
    fn reverse(&self, data: &[u8]) -> Result<Vec<u8>, CacheError>;
}

/// The name of the built-in transformer with this id, for errors about recorded chains.
#[must_use]
pub const fn transform_name(id: TransformId) -> &'static str {
    match id {
        TransformId::Zstd => "zstd",
        TransformId::ChaCha20Poly1305 => "xchacha20poly1305",
    }
}

/// The reference's zstd level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// The reference's cap on decompressed size: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;

/// zstd compression, with a cap on the decompressed size.
///
/// Frames carry zstd's checksum, so a corrupted frame is an error rather than wrong bytes.
/// Decompression streams into a buffer that stops at the cap, whatever size the frame header
/// declares, and refuses windows larger than the cap needs, so a small hostile frame cannot
/// make a reader allocate more than about twice the cap. Compressing a value larger than the cap
/// is refused, since it could never be read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zstd {
    level: i32,
    max_decompressed: usize,
}

impl Zstd {
    /// zstd at this level (zstd clamps it to its range: 1 to 22, negative for faster modes, 0
    /// for zstd's default), with the default 64 MiB cap.
    #[must_use]
    pub const fn new(level: i32) -> Self {
        Self { level, max_decompressed: DEFAULT_MAX_DECOMPRESSED }
    }

    /// The same, with this cap on the decompressed size in bytes.
    #[must_use]
    pub const fn with_max_decompressed(self, bytes: usize) -> Self {
        Self { max_decompressed: bytes, ..self }
    }

    /// The compression level.
    #[must_use]
    pub const fn level(&self) -> i32 {
        self.level
    }

    /// The cap on decompressed size, in bytes.
    #[must_use]
    pub const fn max_decompressed(&self) -> usize {
        self.max_decompressed
    }

    fn error(reason: impl Into<String>) -> CacheError {
        CacheError::Transform { name: "zstd", reason: reason.into() }
    }

    /// The largest window a frame of at most `max_decompressed` bytes needs (log2), within
    /// zstd's bounds: 2^10 to 2^27 (zstd's own default limit).
    fn window_log_max(&self) -> u32 {
        let needed = self.max_decompressed.checked_next_power_of_two().map_or(27, usize::trailing_zeros);
        needed.clamp(10, 27)
    }
}

impl Default for Zstd {
    fn default() -> Self {
        Self::new(DEFAULT_ZSTD_LEVEL)
    }
}

impl Transform for Zstd {
    fn id(&self) -> TransformId {
        TransformId::Zstd
    }

    fn name(&self) -> &'static str {
        "zstd"
    }

    fn apply(&self, data: &[u8], _random: &mut dyn FnMut(&mut [u8])) -> Result<Vec<u8>, CacheError> {
        if data.len() > self.max_decompressed {
            return Err(Self::error(format!(
                "a value of {} bytes is over the decompression cap of {} bytes and could never be read back",
                data.len(),
                self.max_decompressed
            )));
        }
        let fail = |e: std::io::Error| Self::error(format!("compression failed: {e}"));
        let mut compressor = zstd::bulk::Compressor::new(self.level).map_err(fail)?;
        compressor.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true)).map_err(fail)?;
        compressor.compress(data).map_err(fail)
    }

    fn reverse(&self, data: &[u8]) -> Result<Vec<u8>, CacheError> {
        if data.is_empty() {
            return Err(Self::error("corrupt frame: no data"));
        }
        let corrupt = |e: std::io::Error| Self::error(format!("corrupt frame: {e}"));
        let mut decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(corrupt)?;
        decoder.window_log_max(self.window_log_max()).map_err(corrupt)?;
        let limit = self.max_decompressed;
        // The declared size only sizes the first allocation (never above the cap); the read
        // below stops at the cap whatever the frame says.
        let declared = zstd::zstd_safe::get_frame_content_size(data).ok().flatten();
        let hint =
            declared.and_then(|n| usize::try_from(n).ok()).unwrap_or_else(|| data.len().saturating_mul(4));
        let mut out = Vec::with_capacity(hint.min(limit));
        let read_limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        decoder.take(read_limit).read_to_end(&mut out).map_err(corrupt)?;
        if out.len() > limit {
            return Err(Self::error(format!("decompressed value exceeds the cap of {limit} bytes")));
        }
        Ok(out)
    }
}

/// Key length for [`XChaCha20Poly1305`].
pub const KEY_LEN: usize = 32;
/// Nonce length, prepended to each ciphertext.
pub const NONCE_LEN: usize = 24;
/// Authentication tag length, appended to each ciphertext.
pub const TAG_LEN: usize = 16;

/// XChaCha20-Poly1305 authenticated encryption, recorded as [`TransformId::ChaCha20Poly1305`].
///
/// Output: `nonce (24 random bytes) || ciphertext || tag (16 bytes)`, with no associated data:
/// the standard layout other XChaCha20-Poly1305 implementations (libsodium's `_ietf_` variant)
/// read. A wrong key, a truncated value or any altered byte is
/// [`CacheError::Transform`] "authentication failed", never wrong bytes. The key is wiped from
/// memory when the transformer is dropped and never appears in `Debug` output.
///
/// A ciphertext is not bound to the key it is stored under: someone able to write to the
/// cluster can copy one encrypted value over another of the same namespace.
#[derive(Clone)]
pub struct XChaCha20Poly1305 {
    cipher: chacha20poly1305::XChaCha20Poly1305,
}

impl XChaCha20Poly1305 {
    /// A transformer with this 32-byte key.
    #[must_use]
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self { cipher: chacha20poly1305::XChaCha20Poly1305::new(key.into()) }
    }

    /// A transformer with this key, which must be 32 bytes.
    ///
    /// # Errors
    /// [`CacheError::Config`] for a key of another length (the key itself is not in the error).
    pub fn from_slice(key: &[u8]) -> Result<Self, CacheError> {
        let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| {
            CacheError::Config(format!(
                "an XChaCha20-Poly1305 key must be {KEY_LEN} bytes, not {}",
                key.len()
            ))
        })?;
        Ok(Self::new(key))
    }

    fn error(reason: &str) -> CacheError {
        CacheError::Transform { name: "xchacha20poly1305", reason: reason.to_owned() }
    }
}

impl core::fmt::Debug for XChaCha20Poly1305 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("XChaCha20Poly1305").field("key", &"<redacted>").finish()
    }
}

impl Transform for XChaCha20Poly1305 {
    fn id(&self) -> TransformId {
        TransformId::ChaCha20Poly1305
    }

    fn name(&self) -> &'static str {
        "xchacha20poly1305"
    }

    fn apply(&self, data: &[u8], random: &mut dyn FnMut(&mut [u8])) -> Result<Vec<u8>, CacheError> {
        let mut nonce = XNonce::default();
        random(nonce.as_mut_slice());
        let mut out = Vec::with_capacity(NONCE_LEN + data.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(data);
        let (_, body) = out.split_at_mut(NONCE_LEN);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, b"", body)
            .map_err(|_| Self::error("encryption failed (value too large)"))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn reverse(&self, data: &[u8]) -> Result<Vec<u8>, CacheError> {
        let auth_failed = || Self::error("authentication failed (wrong key, or the value was altered)");
        let (nonce, rest) = data.split_at_checked(NONCE_LEN).ok_or_else(auth_failed)?;
        let body_len = rest.len().checked_sub(TAG_LEN).ok_or_else(auth_failed)?;
        let (body, tag) = rest.split_at(body_len);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| auth_failed())?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| auth_failed())?;
        let mut plain = body.to_vec();
        self.cipher
            .decrypt_in_place_detached(&XNonce::from(nonce), b"", &mut plain, &Tag::from(tag))
            .map_err(|_| auth_failed())?;
        Ok(plain)
    }
}

/// The default [`ValuePipeline::max_value_size`]: 512 MiB, the server's largest string.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 512 << 20;
/// The longest chain a pipeline applies or reverses. A longer recorded chain is corrupt.
pub const MAX_CHAIN: usize = 8;

/// Turns codec bytes into an entry payload plus the transformers applied, and back.
#[derive(Clone)]
pub struct ValuePipeline {
    /// The transformers, applied in this order when writing. At most [`MAX_CHAIN`].
    pub transforms: Vec<Arc<dyn Transform>>,
    /// The largest payload written or read, in bytes (after the transformers).
    pub max_value_size: usize,
}

impl ValuePipeline {
    /// A pipeline applying these transformers, with the default size limit.
    #[must_use]
    pub fn new(transforms: Vec<Arc<dyn Transform>>) -> Self {
        Self { transforms, max_value_size: DEFAULT_MAX_VALUE_SIZE }
    }

    /// The same pipeline with this size limit.
    #[must_use]
    pub fn with_max_value_size(self, bytes: usize) -> Self {
        Self { max_value_size: bytes, ..self }
    }

    /// Applies the transformers in order to `codec_bytes`, returning the payload and the ids to
    /// record in the entry. With no transformers the bytes are returned as they are.
    ///
    /// # Errors
    /// [`CacheError::TooLarge`] when the payload exceeds [`Self::max_value_size`];
    /// [`CacheError::Config`] for a chain over [`MAX_CHAIN`]; a transformer's error.
    pub fn encode(
        &self,
        codec_bytes: Vec<u8>,
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(Bytes, Vec<TransformId>), CacheError> {
        if self.transforms.len() > MAX_CHAIN {
            return Err(CacheError::Config(format!(
                "{} value transformers configured, at most {MAX_CHAIN} are supported",
                self.transforms.len()
            )));
        }
        let mut data = codec_bytes;
        let mut ids = Vec::with_capacity(self.transforms.len());
        for t in &self.transforms {
            data = t.apply(&data, random)?;
            ids.push(t.id());
        }
        self.check_size(data.len())?;
        Ok((Bytes::from(data), ids))
    }

    /// Reverses the `recorded` chain on `payload`, giving back the codec bytes.
    ///
    /// A value recorded with no transformers is returned as it is, even when this pipeline has
    /// transformers, so values written before compression or encryption was enabled stay
    /// readable. (So a namespace with encryption also accepts unencrypted values: encryption
    /// protects confidentiality against readers of the cluster, not integrity against its
    /// writers.)
    ///
    /// # Errors
    /// [`CacheError::TooLarge`] when the payload exceeds [`Self::max_value_size`];
    /// [`CacheError::Corrupt`] for a recorded chain over [`MAX_CHAIN`];
    /// [`CacheError::Transform`] when a recorded transformer is not in this pipeline (an
    /// encrypted value read without the key) or fails to reverse (wrong key, tampering,
    /// corruption, over the decompression cap).
    pub fn decode(&self, payload: &Bytes, recorded: &[TransformId]) -> Result<Bytes, CacheError> {
        self.check_size(payload.len())?;
        let Some((&last, earlier)) = recorded.split_last() else {
            return Ok(payload.clone());
        };
        if recorded.len() > MAX_CHAIN {
            return Err(CacheError::Corrupt {
                what: "a recorded transformer chain longer than any pipeline",
            });
        }
        let mut data = self.find(last)?.reverse(payload)?;
        for &id in earlier.iter().rev() {
            data = self.find(id)?.reverse(&data)?;
        }
        Ok(Bytes::from(data))
    }

    fn find(&self, id: TransformId) -> Result<&dyn Transform, CacheError> {
        self.transforms.iter().find(|t| t.id() == id).map(|t| &**t).ok_or_else(|| CacheError::Transform {
            name: transform_name(id),
            reason: "the value was written with this transformer, which this namespace does not have \
                     (for encryption: no key configured)"
                .to_owned(),
        })
    }

    fn check_size(&self, size: usize) -> Result<(), CacheError> {
        if size > self.max_value_size {
            return Err(CacheError::TooLarge { size, limit: self.max_value_size });
        }
        Ok(())
    }
}

impl Default for ValuePipeline {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl core::fmt::Debug for ValuePipeline {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names: Vec<&str> = self.transforms.iter().map(|t| t.name()).collect();
        f.debug_struct("ValuePipeline")
            .field("transforms", &names)
            .field("max_value_size", &self.max_value_size)
            .finish()
    }
}

#[cfg(test)]
mod tests;
