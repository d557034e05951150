//! Iteration over a namespace: async streams paged by `SCAN` on every primary, values fetched
//! with `MGET` per slot. At most one page is held at a time; nothing buffers the namespace.
//!
//! Like any `SCAN`, this is not a snapshot: entries written meanwhile may or may not appear,
//! and a slot migrating meanwhile can hide or repeat keys. Entries made stale by a tag
//! invalidation are skipped (when values are fetched).

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use slotcache_core::NodeAddr;
use slotcache_core::cache::CacheError;
use slotcache_core::cache::plan;
use slotcache_core::client::Cmd;

use super::namespace::Cache;

struct Pager {
    nodes: Option<VecDeque<NodeAddr>>,
    cursor: Bytes,
    done: bool,
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// The next page of data keys, or `None` when every primary is done.
    async fn next_keys(&self, p: &mut Pager) -> Result<Option<Vec<Bytes>>, CacheError> {
        loop {
            if p.done {
                return Ok(None);
            }
            let d = self.op_deadline("scan");
            if p.nodes.is_none() {
                p.nodes = Some(self.primaries(&d).await?.into());
            }
            let Some(node) = p.nodes.as_ref().and_then(|n| n.front().cloned()) else {
                p.done = true;
                return Ok(None);
            };
            let (next, keys) = self.scan_page(&node, &p.cursor, &self.inner.ns.scan_pattern(), &d).await?;
            if next.as_ref() == b"0" {
                if let Some(n) = p.nodes.as_mut() {
                    n.pop_front();
                }
                p.cursor = Bytes::from_static(b"0");
            } else {
                p.cursor = next;
            }
            if !keys.is_empty() {
                return Ok(Some(keys));
            }
        }
    }

    fn user_key(&self, data_key: &[u8]) -> Result<K, CacheError> {
        Ok(self.inner.ns.decode_key(self.inner.opts.key_encoder.as_ref(), data_key)?)
    }

    /// Every key of the namespace (values are not fetched).
    pub fn keys(&self) -> BoxStream<'static, Result<K, CacheError>> {
        let this = self.clone();
        let pager = Pager { nodes: None, cursor: Bytes::from_static(b"0"), done: false };
        stream::unfold((this, pager, VecDeque::<Bytes>::new()), |(this, mut pager, mut buf)| async move {
            loop {
                if let Some(k) = buf.pop_front() {
                    return Some((this.user_key(&k), (this, pager, buf)));
                }
                match this.next_keys(&mut pager).await {
                    Ok(Some(keys)) => buf.extend(keys),
                    Ok(None) => return None,
                    Err(e) => {
                        pager.done = true;
                        return Some((Err(e), (this, pager, buf)));
                    }
                }
            }
        })
        .boxed()
    }

    /// Every entry of the namespace, page by page.
    pub fn entries(&self) -> BoxStream<'static, Result<(K, V), CacheError>> {
        let this = self.clone();
        let pager = Pager { nodes: None, cursor: Bytes::from_static(b"0"), done: false };
        stream::unfold(
            (this, pager, VecDeque::<Result<(K, V), CacheError>>::new()),
            |(this, mut pager, mut buf)| async move {
                loop {
                    if let Some(item) = buf.pop_front() {
                        return Some((item, (this, pager, buf)));
                    }
                    let keys = match this.next_keys(&mut pager).await {
                        Ok(Some(keys)) => keys,
                        Ok(None) => return None,
                        Err(e) => {
                            pager.done = true;
                            return Some((Err(e), (this, pager, buf)));
                        }
                    };
                    match this.fetch_page(keys).await {
                        Ok(items) => buf.extend(items.into_iter().map(Ok)),
                        Err(e) => {
                            pager.done = true;
                            return Some((Err(e), (this, pager, buf)));
                        }
                    }
                }
            },
        )
        .boxed()
    }

    /// Every value of the namespace.
    pub fn values(&self) -> BoxStream<'static, Result<V, CacheError>> {
        self.entries().map(|r| r.map(|(_, v)| v)).boxed()
    }

    /// The fresh entries among one page of keys.
    async fn fetch_page(&self, keys: Vec<Bytes>) -> Result<Vec<(K, V)>, CacheError> {
        let d = self.op_deadline("scan");
        let mut mget = Cmd::new("MGET");
        for k in &keys {
            mget.push_arg(k.clone());
        }
        let v = self.inner.exec.one(mget.into(), &d).await?;
        let slotcache_core::Value::Array(items) = v else {
            return Err(CacheError::UnexpectedReply { command: "MGET", got: format!("{v:?}") });
        };
        let stored = items.into_iter().map(plan::read_stored).collect::<Result<Vec<_>, _>>()?;
        let entries = self.fresh_entries(stored, &d).await?;
        let mut out = Vec::with_capacity(keys.len());
        for (k, e) in keys.into_iter().zip(entries) {
            if let Some(e) = e {
                out.push((self.user_key(&k)?, self.decode_value(&e)?));
            }
        }
        Ok(out)
    }
}
