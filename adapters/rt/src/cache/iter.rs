//! Iteration over a namespace: async streams paged by `SCAN` on every primary, values fetched
//! with `MGET` per slot. At most one page is held at a time; nothing buffers the namespace.
//! The walk (its cursor, the items of its last page, when to fetch the next) is the core's
//! `Walk`, and each page is its `NextPage` machine; this file runs them as streams of typed
//! keys and values.
//!
//! Like any `SCAN`, this is not a snapshot: entries written meanwhile may or may not appear,
//! and a slot migrating meanwhile can hide or repeat keys. Entries made stale by a tag
//! invalidation are skipped (when values are fetched).

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use slotcache_core::cache::op::iterate::Page;
use slotcache_core::cache::op::walk::{Ahead, PageItems, Walk};
use slotcache_core::cache::{CacheError, Typed};

use super::namespace::Cache;
use crate::observe::Op;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// A stream of `walk`'s items, made of each page by `items`; each page fetched is one
    /// observed `op`.
    pub(super) fn walk<T: Send + 'static>(
        &self,
        op: Op,
        walk: Walk<T>,
        items: fn(&Typed<K, V>, Page) -> PageItems<T>,
    ) -> BoxStream<'static, Result<T, CacheError>> {
        stream::unfold((self.clone(), walk), move |(cache, mut walk)| async move {
            loop {
                match walk.ahead() {
                    Ahead::Item(item) => return Some((item, (cache, walk))),
                    Ahead::Fetch(machine) => {
                        let paged = cache.observed(op, cache.inner.exec.drive(*machine)).await;
                        walk.paged(paged, |page| items(&cache.inner.typed, page));
                    }
                    Ahead::End => return None,
                }
            }
        })
        .boxed()
    }

    /// Every key of the namespace (values are not fetched).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use futures_util::StreamExt;
    ///
    /// let mut keys = users.keys();
    /// while let Some(key) = keys.next().await {
    ///     println!("{}", key?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn keys(&self) -> BoxStream<'static, Result<K, CacheError>> {
        let walk = Walk::keys(self.inner.typed.scope(), self.inner.config.operation_timeout);
        self.walk(Op::Keys, walk, Typed::page_keys)
    }

    /// Every entry of the namespace, page by page.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use futures_util::StreamExt;
    ///
    /// let mut entries = users.entries();
    /// while let Some(entry) = entries.next().await {
    ///     let (key, name) = entry?;
    ///     println!("{key}: {name}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn entries(&self) -> BoxStream<'static, Result<(K, V), CacheError>> {
        let walk = Walk::entries(self.inner.typed.scope(), self.inner.config.operation_timeout);
        self.walk(Op::Entries, walk, Typed::page_entries)
    }

    /// Every value of the namespace.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use futures_util::TryStreamExt;
    ///
    /// let names: Vec<String> = users.values().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn values(&self) -> BoxStream<'static, Result<V, CacheError>> {
        self.entries().map(|r| r.map(|(_, v)| v)).boxed()
    }
}
