//! Key and tag layout: the exact bytes of every key slotcache writes, and their hash slots.
//!
//! # Layout
//!
//! With `G` the optional global prefix (empty by default), `NS` the normalised namespace (the
//! name plus a trailing `:` when it lacks one) and `UK` the encoded user key
//! ([`KeyEncoder`]), the reference example (namespace `users`, key `alice`, tags `admin` and
//! `eu`, no global prefix) is:
//!
//! | Kind | Bytes | Example | Hash slot of |
//! |---|---|---|---|
//! | data entry | `G NS UK` | `users:alice` | the whole key (or a `{..}` in `UK`) |
//! | forward tag index | `G "tag:{" NS tag "}"` | `tag:{users:admin}` | `NS tag`: one tag, one slot |
//! | reverse index | `G "keytags:" NS UK` | `keytags:users:alice` | the whole key (or a `{..}` in `UK`) |
//!
//! With `G` empty the key *names* are the reference's byte for byte (spec §3.1, §16). With `G`
//! set, *every* kind of key starts with `G`, so a sweep of `G*` finds data, tag and reverse keys
//! alike (the fix for spec §15.2; the Go provider ignores its `Namespace` setting, so it never
//! writes under a `G`). The members of a forward tag key are data keys as stored (`G NS UK`).
//! slotcache writes no reverse keys (an entry's tags travel in its envelope); it deletes the
//! reference's in `invalidate_all`.
//!
//! # Sharing a cluster with the Go provider
//!
//! Same key names do not make the same data: what the two providers store under them differs
//! wherever slotcache fixed the reference. slotcache has no interoperability mode; exactly this
//! can be shared, in a namespace both use (with `G` empty):
//!
//! - **Plain entries, both ways.** An entry written **without tags**, without transformers,
//!   without `refresh_after` and outside a searchable namespace is stored as the codec's bytes
//!   alone (`SET key bytes PX ms`, as the reference's default storage, spec §3.3), and a Go
//!   entry is read the same way. The bytes must mean the same value on both sides: slotcache's
//!   `Json` codec against the Go JSON encoder agree for strings, numbers, booleans and structs
//!   whose field names match (`"hello"` is the 7 bytes `"hello"` on both). The user keys must
//!   encode alike: strings verbatim ([`StringKeys`]), integers in decimal ([`DecimalKeys`], the
//!   Go default's `%v`), Go `KeyRegistry` keys as [`Base64Keys`] with a [`KeyMarshal`] that
//!   writes the Go encoder's bytes. TTLs are milliseconds on both sides; `GetIfPresent`, `Get`,
//!   `Invalidate` and `SetExpiresAfter` of either side work on the other's plain entries.
//! - **Not tagged entries.** slotcache envelopes a tagged entry (`0x00 'S' 'C'`, see
//!   `cache::envelope`): Go's `GetIfPresent` fails to decode it. Tag keys have the reference's
//!   names but another type: a **sorted set** (a token and members scored by expiry, see
//!   `cache::scripts`) where Go keeps a **set**. Go's `SADD` on a slotcache tag answers
//!   `WRONGTYPE` (Go's `Set` only logs it: the value is written, untagged); slotcache's tag
//!   scripts on a Go tag answer `WRONGTYPE` (the tagged write fails). Go's `InvalidateByTags`
//!   of a slotcache tag ignores that error, deletes no entry, returns 0 and then deletes the
//!   tag key: slotcache's entries of that tag become misses (their token is gone) but stay
//!   stored until they expire. A Go entry's tags are invisible to slotcache (Go stores the
//!   value bare): slotcache reads it as untagged, its `invalidate_by_tags` never finds it, and
//!   its `invalidate` leaves Go's tag and `keytags:` sets behind.
//! - **Not transformed or refreshable entries.** slotcache's transformer envelope is binary
//!   (the same header as tags, transformer ids, XChaCha20-Poly1305 for encryption); Go's is the
//!   JSON object `{"data":..,"transformers":[..],"version":1}` with its own crypto service.
//!   Neither reads the other's: slotcache reads Go's envelope as a plain value (a codec error,
//!   or the envelope object itself for a value type that accepts any JSON object). An entry
//!   with a refresh time (`refresh_after`) is enveloped too.
//! - **Not Go's wrapped namespaces.** Behind the Go builder's `[]byte` wrapper (custom value
//!   types, encoders or transformers, spec §10.3) Go stores a JSON string of base64: slotcache
//!   reads it as that string (a `String` value holding the base64 text) or fails.
//! - **Searchable namespaces, partly.** Documents are JSON on both sides and an untagged
//!   slotcache document is Go's; a tagged one carries the reserved member `__slotcache` (Go's
//!   decoder ignores it for structs, not for maps). Go writes plain strings in a searchable
//!   namespace from `SetWithTTL`, `BulkSet` and the compute family (spec §15.4), which
//!   slotcache's `JSON.GET` answers with `WRONGTYPE`. The indexes differ (slotcache: one per
//!   primary, `<prefix><NS>{tag}`; Go: one, `<prefix><raw name>`), so each side searches
//!   through its own.
//!
//! A Go service and a slotcache service can therefore share plain, untagged entries; anything
//! tagged, transformed or refreshable belongs to one side.
//!
//! Every builder returns an [`EncodedKey`]: the bytes plus the [`Slot`] computed once, here, so
//! routing later is a table lookup.
//!
//! ```
//! use slotcache_core::keys::{Namespace, StringKeys};
//!
//! let ns = Namespace::new("users")?;
//! let data = ns.encode_key(&StringKeys, &"alice".to_owned())?;
//! assert_eq!(&data.bytes()[..], b"users:alice");
//! assert_eq!(&ns.tag_key(b"admin")?.bytes()[..], b"tag:{users:admin}");
//! assert_eq!(&ns.reverse_key(b"alice").bytes()[..], b"keytags:users:alice");
//! assert_eq!(ns.decode_key(&StringKeys, data.bytes())?, "alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Validation
//!
//! Namespace names and the global prefix are checked by [`Namespace::new`] /
//! [`Namespace::with_global`]:
//! - a namespace name must not be empty (callers that want the reference's fallback pass
//!   [`DEFAULT_NAMESPACE`]); an empty global prefix means "none";
//! - at most [`MAX_NAME_LEN`] bytes each;
//! - no control bytes (`0x00..=0x1F`, `0x7F`): they make keys unreadable in every tool, and no
//!   sane name needs them;
//! - no `{` or `}`: a brace in `G` or `NS` would become the hash tag of every data key (all of a
//!   namespace in one slot, by accident) and would cut the `tag:{..}` hash tag short;
//! - the normalised namespace must not be `tag:` or start with `keytags:`, because its data
//!   keys would then collide with tag or reverse keys (`tag:` + `{users:admin}`).
//!
//! Glob characters (`* ? [ ] \`) are allowed: every `SCAN MATCH` pattern is escaped
//! ([`Namespace::scan_pattern`]). Namespaces that are prefixes of one another are refused by a
//! [`NamespaceRegistry`].
//!
//! # Tags containing `}`
//!
//! A tag containing `}` would end the hash tag early (`tag:{users:a}b}` hashes on `users:a`), so
//! two different tags could share a slot by accident and the "one tag, one slot" rule would rest
//! on luck. Escaping would change the bytes the reference writes. Such tags are therefore
//! **rejected** with [`TagError::ClosingBrace`]; every accepted tag keeps the reference bytes,
//! and its key hashes on exactly `NS tag`. A `{` inside a tag is harmless (the hash tag runs to
//! the first `}`, the closing one) and is allowed, as is the empty tag.

pub mod base64url;
mod encode;
mod glob;
mod registry;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use thiserror::Error;

use crate::slot::{Slot, key_slot};

pub use encode::{
    Base64Keys, BoxError, BytesKeys, DecimalInt, DecimalKeys, KeyCodecError, KeyEncoder, KeyMarshal,
    StringKeys,
};
pub use glob::{escape_glob, escape_glob_into, is_glob_special, prefix_pattern};
pub use registry::{NamespaceRegistry, Registered, RegistryError};

/// Longest accepted namespace name or global prefix, in bytes (before normalisation).
pub const MAX_NAME_LEN: usize = 256;

/// The name the reference substitutes for an empty namespace.
pub const DEFAULT_NAMESPACE: &str = "default";

const TAG_OPEN: &[u8] = b"tag:{";
const TAG_CLOSE: u8 = b'}';
const REVERSE: &[u8] = b"keytags:";

/// Which name a [`NamespaceError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamePart {
    /// The namespace name.
    Namespace,
    /// The global prefix.
    GlobalPrefix,
}

/// Why a namespace name or global prefix was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NamespaceError {
    /// The namespace name is empty.
    #[error("namespace name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("{part:?} is {len} bytes long, more than {MAX_NAME_LEN}")]
    TooLong {
        /// Which name.
        part: NamePart,
        /// Its length.
        len: usize,
    },
    /// The name holds a control byte.
    #[error("{part:?} holds control byte 0x{byte:02x} at offset {at}")]
    ControlByte {
        /// Which name.
        part: NamePart,
        /// The byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// The name holds `{` or `}`, which would change the hash slot of every key.
    #[error("{part:?} holds a brace at offset {at}, which would become a hash tag")]
    Brace {
        /// Which name.
        part: NamePart,
        /// Offset of the brace.
        at: usize,
    },
    /// The normalised namespace would collide with tag (`tag:`) or reverse (`keytags:`) keys.
    #[error("namespace `{0}` collides with the tag or reverse-index key space")]
    Reserved(String),
}

/// Why a tag was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TagError {
    /// The tag holds `}`, which would end the hash tag early.
    #[error("tag holds `}}` at offset {at}, which would cut its hash tag short")]
    ClosingBrace {
        /// Offset of the brace.
        at: usize,
    },
}

/// Why a stored key could not be mapped back to a user key.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key does not start with this namespace's prefix.
    #[error("key {key:?} missing expected namespace prefix {prefix:?}")]
    MissingPrefix {
        /// The key, lossily as text.
        key: String,
        /// The expected prefix `G NS`, lossily as text.
        prefix: String,
    },
    /// The user key could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] KeyCodecError),
}

/// A key's bytes with its hash slot, computed when the key was built.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EncodedKey {
    bytes: Bytes,
    slot: Slot,
}

impl EncodedKey {
    /// Wraps `bytes`, computing the slot.
    #[must_use]
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let slot = key_slot(&bytes);
        Self { bytes, slot }
    }

    /// The key bytes.
    #[must_use]
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The hash slot.
    #[must_use]
    pub const fn slot(&self) -> Slot {
        self.slot
    }

    /// The bytes and the slot.
    #[must_use]
    pub fn into_parts(self) -> (Bytes, Slot) {
        (self.bytes, self.slot)
    }
}

impl AsRef<[u8]> for EncodedKey {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A validated, normalised namespace with its optional global prefix. Cheap to clone.
///
/// `users` and `users:` are the same namespace: both normalise to `users:`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    /// `G NS`.
    prefix: Bytes,
    /// Length of `G` inside `prefix`.
    global_len: usize,
}

impl Namespace {
    /// The namespace `name` with no global prefix: the reference layout.
    pub fn new(name: &str) -> Result<Self, NamespaceError> {
        Self::with_global("", name)
    }

    /// The namespace `name` under the global prefix `global` (the configuration's `namespace`
    /// field). A non-empty global prefix is normalised like a namespace (`myapp` becomes
    /// `myapp:`); an empty one means none.
    pub fn with_global(global: &str, name: &str) -> Result<Self, NamespaceError> {
        if name.is_empty() {
            return Err(NamespaceError::Empty);
        }
        check_name(global.as_bytes(), NamePart::GlobalPrefix)?;
        check_name(name.as_bytes(), NamePart::Namespace)?;
        let mut prefix = Vec::with_capacity(global.len() + name.len() + 2);
        push_normalised(&mut prefix, global.as_bytes());
        let global_len = prefix.len();
        push_normalised(&mut prefix, name.as_bytes());
        let ns = &prefix[global_len..];
        if ns == b"tag:" || ns.starts_with(REVERSE) {
            return Err(NamespaceError::Reserved(String::from_utf8_lossy(ns).into_owned()));
        }
        Ok(Self { prefix: Bytes::from(prefix), global_len })
    }

    /// The global prefix `G` (normalised; empty when none).
    #[must_use]
    pub fn global_prefix(&self) -> &[u8] {
        &self.prefix[..self.global_len]
    }

    /// The normalised namespace `NS`, with its trailing `:`.
    #[must_use]
    pub fn ns(&self) -> &[u8] {
        &self.prefix[self.global_len..]
    }

    /// `G NS`: the prefix of every data key of this namespace.
    #[must_use]
    pub fn data_prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// `G "tag:{" NS`: the prefix of every forward tag key of this namespace.
    #[must_use]
    pub fn tag_prefix(&self) -> Vec<u8> {
        self.global_then(TAG_OPEN, 0)
    }

    /// `G "keytags:" NS`: the prefix of every reverse-index key of this namespace.
    #[must_use]
    pub fn reverse_prefix(&self) -> Vec<u8> {
        self.global_then(REVERSE, 0)
    }

    /// The data key `G NS UK` for an already encoded user key.
    #[must_use]
    pub fn data_key(&self, uk: &[u8]) -> EncodedKey {
        let mut out = Vec::with_capacity(self.prefix.len() + uk.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(uk);
        EncodedKey::new(out)
    }

    /// The data key of a typed user key, encoded by `encoder`.
    pub fn encode_key<E: KeyEncoder + ?Sized>(
        &self,
        encoder: &E,
        key: &E::Key,
    ) -> Result<EncodedKey, KeyCodecError> {
        let mut out = Vec::with_capacity(self.prefix.len() + 16);
        out.extend_from_slice(&self.prefix);
        encoder.encode(key, &mut out)?;
        Ok(EncodedKey::new(out))
    }

    /// The forward tag key `G "tag:{" NS tag "}"`. Its slot is the slot of `NS tag`.
    pub fn tag_key(&self, tag: &[u8]) -> Result<EncodedKey, TagError> {
        if let Some(at) = tag.iter().position(|&b| b == TAG_CLOSE) {
            return Err(TagError::ClosingBrace { at });
        }
        let mut out = self.global_then(TAG_OPEN, tag.len() + 1);
        out.extend_from_slice(tag);
        out.push(TAG_CLOSE);
        Ok(EncodedKey::new(out))
    }

    /// The reverse-index key `G "keytags:" NS UK` for an already encoded user key.
    #[must_use]
    pub fn reverse_key(&self, uk: &[u8]) -> EncodedKey {
        let mut out = self.global_then(REVERSE, uk.len());
        out.extend_from_slice(uk);
        EncodedKey::new(out)
    }

    /// The reverse-index key of a stored data key (a member of a forward tag set).
    pub fn reverse_key_of(&self, data_key: &[u8]) -> Result<EncodedKey, KeyError> {
        self.user_key(data_key).map(|uk| self.reverse_key(uk))
    }

    /// The `UK` bytes of a stored data key: the key without `G NS`.
    pub fn user_key<'k>(&self, data_key: &'k [u8]) -> Result<&'k [u8], KeyError> {
        data_key.strip_prefix(&self.prefix[..]).ok_or_else(|| KeyError::MissingPrefix {
            key: String::from_utf8_lossy(data_key).into_owned(),
            prefix: String::from_utf8_lossy(&self.prefix).into_owned(),
        })
    }

    /// The typed user key of a stored data key.
    pub fn decode_key<E: KeyEncoder + ?Sized>(
        &self,
        encoder: &E,
        data_key: &[u8],
    ) -> Result<E::Key, KeyError> {
        Ok(encoder.decode(self.user_key(data_key)?)?)
    }

    /// `SCAN MATCH` pattern for this namespace's data keys: the escaped `G NS` and `*`.
    #[must_use]
    pub fn scan_pattern(&self) -> Vec<u8> {
        prefix_pattern(&self.prefix)
    }

    /// `SCAN MATCH` pattern for this namespace's forward tag keys.
    #[must_use]
    pub fn tag_scan_pattern(&self) -> Vec<u8> {
        prefix_pattern(&self.tag_prefix())
    }

    /// `SCAN MATCH` pattern for this namespace's reverse-index keys.
    #[must_use]
    pub fn reverse_scan_pattern(&self) -> Vec<u8> {
        prefix_pattern(&self.reverse_prefix())
    }

    /// The three key spaces of this namespace: data, tag and reverse prefixes.
    pub(crate) fn key_spaces(&self) -> [Vec<u8>; 3] {
        [self.prefix.to_vec(), self.tag_prefix(), self.reverse_prefix()]
    }

    /// `G marker NS`, with room for `extra` more bytes.
    fn global_then(&self, marker: &[u8], extra: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + marker.len() + extra);
        out.extend_from_slice(self.global_prefix());
        out.extend_from_slice(marker);
        out.extend_from_slice(self.ns());
        out
    }
}

fn check_name(name: &[u8], part: NamePart) -> Result<(), NamespaceError> {
    if name.len() > MAX_NAME_LEN {
        return Err(NamespaceError::TooLong { part, len: name.len() });
    }
    for (at, &byte) in name.iter().enumerate() {
        if byte < 0x20 || byte == 0x7F {
            return Err(NamespaceError::ControlByte { part, byte, at });
        }
        if byte == b'{' || byte == b'}' {
            return Err(NamespaceError::Brace { part, at });
        }
    }
    Ok(())
}

/// Appends `name` plus a `:` when it is non-empty and lacks one.
fn push_normalised(out: &mut Vec<u8>, name: &[u8]) {
    out.extend_from_slice(name);
    if !name.is_empty() && !name.ends_with(b":") {
        out.push(b':');
    }
}
