//! How a namespace stores its entries: as envelopes in plain strings, or as JSON documents
//! (searchable namespaces). Every read and write path asks this one place for its commands,
//! so the protocols above it do not branch on the storage mode.

use bytes::Bytes;

use crate::client::Cmd;
use crate::keys::EncodedKey;

use super::envelope::Entry;
use super::error::CacheError;
use super::plan::{self, Command};
use super::scripts::{self, Script};
#[cfg(feature = "search")]
use super::search::doc::{self, CAS_JSON, DEL_IF_STALE_JSON, JSON_GET_TOUCH, JSON_GETDEL, JSON_WRITE};
#[cfg(feature = "search")]
use super::search::refusal::is_unknown_command;

/// A namespace's storage mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Each entry is a string holding its envelope (bare codec bytes when untagged).
    Envelope,
    /// Each entry is a JSON document (`JSON.SET k $ doc`), with the tag tokens and refresh
    /// time in a reserved member (see `docs/search.md`). Feature `search`.
    #[cfg(feature = "search")]
    Document,
}

impl Storage {
    /// The read of one stored entry: `GET`, or `JSON.GET k $`. `primary` forces the primary
    /// (reads that must see the latest write).
    #[must_use]
    pub fn read(self, key: &EncodedKey, primary: bool) -> Cmd {
        match self {
            #[cfg(feature = "search")]
            Self::Document => {
                let c = Cmd::new("JSON.GET").arg(key.bytes().clone()).arg("$").with_slot(key.slot());
                if primary { c.with_read_only(false) } else { c }
            }
            Self::Envelope if primary => plan::get_primary(key),
            Self::Envelope => plan::get(key),
        }
    }

    /// The read of one stored entry that also sets its remaining life to `ttl_ms` (sliding
    /// expiry): `GETEX k PX ms`, or the `JSON_GET_TOUCH` script; same reply as
    /// [`Storage::read`]'s, from the primary.
    #[must_use]
    pub fn read_touching(self, key: &EncodedKey, ttl_ms: u64) -> Command {
        match self {
            #[cfg(feature = "search")]
            Self::Document => {
                let ttl = vec![Bytes::from(ttl_ms.to_string())];
                Command::script(plan::script(&JSON_GET_TOUCH, key, ttl, true, true), &JSON_GET_TOUCH)
            }
            Self::Envelope => plan::getex(key, ttl_ms).into(),
        }
    }

    /// The read of many stored entries: `MGET keys…`, or `JSON.MGET keys… $` (split per slot
    /// by the client).
    #[must_use]
    pub fn read_many(self, keys: impl IntoIterator<Item = Bytes>) -> Cmd {
        let mut c = Cmd::new(match self {
            #[cfg(feature = "search")]
            Self::Document => "JSON.MGET",
            Self::Envelope => "MGET",
        });
        for k in keys {
            c.push_arg(k);
        }
        #[cfg(feature = "search")]
        if self == Self::Document {
            return c.arg("$");
        }
        c
    }

    /// The entry in stored bytes (an envelope, or a `JSON.GET k $` reply).
    ///
    /// # Errors
    /// Bytes that are not an entry of this storage.
    pub fn decode(self, stored: &Bytes) -> Result<Entry, CacheError> {
        match self {
            #[cfg(feature = "search")]
            Self::Document => doc::from_stored(stored),
            Self::Envelope => Entry::decode(stored),
        }
    }

    /// The bytes to store for `entry`, at most `max_len` long.
    ///
    /// # Errors
    /// An entry that cannot be encoded, or is too large.
    pub fn encode(self, entry: &Entry, max_len: usize) -> Result<Bytes, CacheError> {
        let b = match self {
            #[cfg(feature = "search")]
            Self::Document => doc::to_document(entry)?,
            Self::Envelope => entry.encode()?,
        };
        if b.len() > max_len {
            return Err(CacheError::TooLarge { size: b.len(), limit: max_len });
        }
        Ok(b)
    }

    /// The write of one entry's stored bytes with `ttl_ms`, or `on_update` when the key exists
    /// already (if given: the namespace's `expire_after_update`): `SET k bytes [PX]`, the
    /// one-slot `SET_BY_AGE` script, or the one-slot `JSON_WRITE` script. A retry after a lost
    /// connection may find the key it wrote itself and give it the update's TTL.
    #[must_use]
    pub fn store(
        self,
        key: &EncodedKey,
        stored: Bytes,
        ttl_ms: Option<u64>,
        on_update: Option<Option<u64>>,
    ) -> Command {
        let arg = |ttl: Option<u64>| ttl.map_or_else(Bytes::new, |ms| Bytes::from(ms.to_string()));
        let mut args = vec![stored, arg(ttl_ms)];
        args.extend(on_update.map(arg));
        match (self, on_update) {
            #[cfg(feature = "search")]
            (Self::Document, _) => {
                Command::script(plan::script(&JSON_WRITE, key, args, true, true), &JSON_WRITE)
            }
            (Self::Envelope, Some(_)) => Command::script(
                plan::script(&scripts::SET_BY_AGE, key, args, true, true),
                &scripts::SET_BY_AGE,
            ),
            (Self::Envelope, None) => plan::set(key, args.swap_remove(0), ttl_ms).into(),
        }
    }

    /// The delete that hands back what was stored: `GETDEL`, or the `JSON_GETDEL` script.
    #[must_use]
    pub fn take(self, key: &EncodedKey) -> Command {
        match self {
            #[cfg(feature = "search")]
            Self::Document => {
                Command::script(plan::script(&JSON_GETDEL, key, Vec::new(), true, true), &JSON_GETDEL)
            }
            Self::Envelope => plan::getdel(key).into(),
        }
    }

    /// The compare-and-set script.
    #[must_use]
    pub fn cas_script(self) -> &'static Script {
        match self {
            #[cfg(feature = "search")]
            Self::Document => &CAS_JSON,
            Self::Envelope => &scripts::CAS,
        }
    }

    /// The delete of `member` only if it carries `tag` with a token other than `current`, the
    /// tag's current token (a tag invalidation's clean-up): `DEL_IF_STALE`, or
    /// `DEL_IF_STALE_JSON`.
    #[must_use]
    pub fn delete_if_stale(self, member: &Bytes, tag: &Bytes, current: &Bytes) -> Command {
        match self {
            #[cfg(feature = "search")]
            Self::Document => {
                let key = EncodedKey::new(member.clone());
                Command::script(
                    plan::script(&DEL_IF_STALE_JSON, &key, vec![tag.clone(), current.clone()], true, true),
                    &DEL_IF_STALE_JSON,
                )
            }
            Self::Envelope => {
                Command::script(plan::del_if_stale(member, tag, current, true), &scripts::DEL_IF_STALE)
            }
        }
    }

    /// A storage error as the caller should see it: a document namespace on a cluster without
    /// the JSON module gets [`CacheError::SearchNotSupported`].
    #[must_use]
    pub fn error(self, namespace: &str, e: CacheError) -> CacheError {
        #[cfg(not(feature = "search"))]
        let _ = namespace;
        #[cfg(feature = "search")]
        if self == Self::Document && is_unknown_command(&e.to_string()) {
            return CacheError::SearchNotSupported(format!(
                "namespace {namespace} stores JSON documents but the cluster has no JSON module: {e}"
            ));
        }
        e
    }
}
