//! Value transformers (compression, encryption) and the pipeline that chains them.
//!
//! A [`ValuePipeline`] turns a codec's bytes into an [`Entry`](super::Entry) payload and the
//! list of [`TransformId`]s it applied, which the envelope records; reading reverses the
//! **recorded** chain, not the configured one, so a value is never read with the wrong chain.
//!
//! - `Zstd` (feature `zstd`): zstd compression (crate `zstd`, bindings to the reference C
//!   library, with its legacy-format decoders left out; the reference's level 3 by default)
//!   with a frame checksum, and a cap on decompressed size checked while decoding, never
//!   trusted from the frame header.
//! - `XChaCha20Poly1305` (feature `encryption`): authenticated encryption (RustCrypto's
//!   `chacha20poly1305` 0.10; 0.11 needs a newer Rust than our MSRV) with a random 24-byte
//!   nonce, long enough that random nonces never repeat in practice. There is no AES-GCM
//!   transformer: the envelope has no id for one.
//!
//! The core has no OS randomness: [`Transform::apply`] takes a `random` callback that fills
//! nonces. It must be a cryptographically secure source (the OS generator, in the adapter);
//! the core's [`Rng`](crate::Rng) is not one.
//!
//! The reference's chain is not byte-compatible with this one (its crypto transformer calls an
//! external crypto service, and its envelope is JSON); shared Go/Rust namespaces use no
//! transformers.

#[cfg(feature = "zstd")]
mod compression;
#[cfg(feature = "encryption")]
mod encryption;

use std::sync::Arc;

use bytes::Bytes;

use super::envelope::TransformId;
use super::error::CacheError;

#[cfg(feature = "zstd")]
#[cfg_attr(docsrs, doc(cfg(feature = "zstd")))]
pub use compression::{DEFAULT_MAX_DECOMPRESSED, DEFAULT_ZSTD_LEVEL, Zstd};
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub use encryption::{KEY_LEN, NONCE_LEN, TAG_LEN, XChaCha20Poly1305};

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

// The tests chain both built-in transformers: they need the `zstd` and `encryption` features.
#[cfg(all(test, feature = "zstd", feature = "encryption"))]
mod tests;
