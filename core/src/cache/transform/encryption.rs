//! The XChaCha20-Poly1305 encryption transformer (feature `encryption`).

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XNonce};

use super::Transform;
use crate::cache::envelope::TransformId;
use crate::cache::error::CacheError;

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
