//! What every operation of one namespace shares: its key layout, storage mode and limits.

use bytes::Bytes;

use crate::cache::durability::Durability;
use crate::cache::plan::Command;
use crate::cache::storage::Storage;
use crate::keys::{EncodedKey, Namespace};

use super::machine::Entropy;

/// A namespace as its operations see it.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The key layout.
    pub ns: Namespace,
    /// The namespace's normalised name (for error messages).
    pub name: String,
    /// How entries are stored.
    pub storage: Storage,
    /// The largest stored entry, in bytes.
    pub max_value_size: usize,
    /// How far invalidations are acknowledged.
    pub durability: Durability,
    /// Sliding expiry: the remaining life, in ms, that a read a caller sees gives every entry
    /// it finds (`GETEX`), and the memberships of tagged ones (`TAG_TOUCH`).
    pub expire_after_read_ms: Option<u64>,
}

impl Scope {
    /// The TTL a read gives what it finds: [`Scope::expire_after_read_ms`] when the read is
    /// one a caller sees (`touch`), else none.
    #[must_use]
    pub fn touch_ms(&self, touch: bool) -> Option<u64> {
        self.expire_after_read_ms.filter(|_| touch)
    }

    /// The read of one entry: `GET` (or `JSON.GET`), on the primary when `primary`; a read that
    /// also extends the entry when [`Scope::touch_ms`] says so (always on the primary).
    #[must_use]
    pub fn read(&self, key: &EncodedKey, primary: bool, touch: bool) -> Command {
        match self.touch_ms(touch) {
            Some(ms) => self.storage.read_touching(key, ms),
            None => self.storage.read(key, primary).into(),
        }
    }
}

/// Length of a [`token`].
pub const TOKEN_LEN: usize = 32;

/// A fresh 128-bit token, as 32 lower-case hex digits.
pub fn token(entropy: &mut dyn Entropy) -> Bytes {
    let mut raw = [0u8; TOKEN_LEN / 2];
    entropy.fill(&mut raw);
    let mut out = Vec::with_capacity(TOKEN_LEN);
    for b in raw {
        out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
        out.push(b"0123456789abcdef"[usize::from(b & 15)]);
    }
    Bytes::from(out)
}

/// Distinct tags, in the caller's order, as bytes.
#[must_use]
pub fn distinct_tags(tags: &[&str]) -> Vec<Bytes> {
    let mut out: Vec<Bytes> = Vec::with_capacity(tags.len());
    for t in tags {
        let b = Bytes::copy_from_slice(t.as_bytes());
        if !out.contains(&b) {
            out.push(b);
        }
    }
    out
}
