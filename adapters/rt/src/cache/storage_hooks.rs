//! The storage hooks that callers not yet converted to core machines still use (`read.rs`,
//! `compute.rs`, `iter.rs`), each now a thin call to the namespace's
//! [`Storage`](slotcache_core::cache::Storage). Delete each one when its last caller asks
//! `self.inner.scope.storage` directly.

use bytes::Bytes;
use slotcache_core::cache::scripts::Script;
use slotcache_core::cache::{CacheError, Entry};
use slotcache_core::client::Cmd;
use slotcache_core::keys::EncodedKey;

use super::namespace::Cache;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// A JSON-storage error from a cluster without the JSON module becomes
    /// [`CacheError::SearchNotSupported`]; other errors stay as they are. (`read.rs`)
    pub(crate) fn storage_error(&self, e: CacheError) -> CacheError {
        self.inner.scope.storage.error(&self.inner.name, e)
    }

    /// The read of one stored entry. (`read.rs`, `compute.rs`)
    pub(crate) fn read_cmd(&self, key: &EncodedKey, primary: bool) -> Cmd {
        self.inner.scope.storage.read(key, primary)
    }

    /// `MGET keys...`, or `JSON.MGET keys... $`. (`iter.rs`)
    pub(crate) fn mget_cmd(&self, keys: impl IntoIterator<Item = Bytes>) -> Cmd {
        self.inner.scope.storage.read_many(keys)
    }

    /// The entry in stored bytes. (`read.rs`)
    pub(crate) fn decode_stored(&self, stored: &Bytes) -> Result<Entry, CacheError> {
        self.inner.scope.storage.decode(stored)
    }

    /// The bytes to store for `entry` (size-checked). (`compute.rs`)
    pub(crate) fn stored_form(&self, entry: &Entry) -> Result<Bytes, CacheError> {
        self.inner.scope.storage.encode(entry, self.inner.scope.max_value_size)
    }

    /// The compare-and-set script for this storage mode. (`compute.rs`)
    pub(crate) fn cas_script(&self) -> &'static Script {
        self.inner.scope.storage.cas_script()
    }
}
