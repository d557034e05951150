//! The storage hooks that callers not yet converted to core machines still use
//! (`compute.rs`), each now a thin call to the namespace's
//! [`Storage`](slotcache_core::cache::Storage). Delete each one when its last caller asks
//! `self.inner.scope.storage` directly.

use bytes::Bytes;
use slotcache_core::cache::scripts::Script;
use slotcache_core::cache::{CacheError, Entry};
use slotcache_core::client::Cmd;
use slotcache_core::keys::EncodedKey;

use super::namespace::Cache;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// The read of one stored entry. (`read.rs`, `compute.rs`)
    pub(crate) fn read_cmd(&self, key: &EncodedKey, primary: bool) -> Cmd {
        self.inner.scope.storage.read(key, primary)
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
