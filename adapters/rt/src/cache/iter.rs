//! Iteration over a namespace: async streams paged by `SCAN` on every primary, values fetched
//! with `MGET` per slot. At most one page is held at a time; nothing buffers the namespace.
//! The page protocol is the core's `NextPage` machine; this file turns pages into streams of
//! typed keys and values.
//!
//! Like any `SCAN`, this is not a snapshot: entries written meanwhile may or may not appear,
//! and a slot migrating meanwhile can hide or repeat keys. Entries made stale by a tag
//! invalidation are skipped (when values are fetched).

use std::collections::VecDeque;

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use slotcache_core::cache::CacheError;
use slotcache_core::cache::op::iterate::{KeyCursor, NextPage, Page};
use slotcache_core::cache::typed::{PageItems, Typed};

use super::namespace::Cache;

/// A stream's state: the walk (`None` once it ended or failed) and the items of its last page.
struct Walk<K, V, T> {
    cache: Cache<K, V>,
    cursor: Option<KeyCursor>,
    buf: VecDeque<Result<T, CacheError>>,
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// The next page of the walk, or `None` at its end.
    async fn next_page(
        &self,
        cursor: KeyCursor,
        values: bool,
    ) -> Result<(KeyCursor, Option<Page>), CacheError> {
        let (scope, budget) = (self.inner.typed.scope(), self.inner.config.operation_timeout);
        let machine = if values {
            NextPage::entries(scope, cursor, "scan", budget)
        } else {
            NextPage::keys(scope, cursor, "scan", budget)
        };
        let paged = self.inner.exec.drive(machine).await?;
        Ok((paged.cursor, paged.page))
    }

    /// A stream of the items `items` makes of each page; an error of the walk, or of a whole
    /// page, is its last item.
    fn walk<T: Send + 'static>(
        &self,
        values: bool,
        items: fn(&Typed<K, V>, Page) -> PageItems<T>,
    ) -> BoxStream<'static, Result<T, CacheError>> {
        let cursor = Some(KeyCursor::new(self.inner.typed.ns().scan_pattern()));
        let walk = Walk { cache: self.clone(), cursor, buf: VecDeque::new() };
        stream::unfold(walk, move |mut w| async move {
            loop {
                if let Some(item) = w.buf.pop_front() {
                    return Some((item, w));
                }
                let cursor = w.cursor.take()?;
                match w.cache.next_page(cursor, values).await.and_then(|(cursor, page)| {
                    page.map(|p| Ok((cursor, items(&w.cache.inner.typed, p)?))).transpose()
                }) {
                    Ok(Some((cursor, page))) => {
                        w.cursor = Some(cursor);
                        w.buf.extend(page);
                    }
                    Ok(None) => return None,
                    Err(e) => return Some((Err(e), w)),
                }
            }
        })
        .boxed()
    }

    /// Every key of the namespace (values are not fetched).
    pub fn keys(&self) -> BoxStream<'static, Result<K, CacheError>> {
        self.walk(false, Typed::page_keys)
    }

    /// Every entry of the namespace, page by page.
    pub fn entries(&self) -> BoxStream<'static, Result<(K, V), CacheError>> {
        self.walk(true, Typed::page_entries)
    }

    /// Every value of the namespace.
    pub fn values(&self) -> BoxStream<'static, Result<V, CacheError>> {
        self.entries().map(|r| r.map(|(_, v)| v)).boxed()
    }
}
