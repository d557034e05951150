//! Tag invalidation and namespace-wide invalidation.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use futures_util::future::join_all;
use slotcache_core::cache::plan::{self, Tags};
use slotcache_core::cache::{CacheError, Entry, scripts};
use slotcache_core::client::{Cmd, RequestError};
use slotcache_core::{NodeAddr, Value};

use super::exec::{Deadline, Step, to_cache_error};
use super::namespace::Cache;
use super::random;
use super::write::distinct_tags;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Invalidates every entry written with any of `tags`, and returns how many entries it
    /// actually removed.
    ///
    /// Each tag's token is replaced atomically on its slot, so every entry written before
    /// (which carries the old token) is a miss for every read that starts after this returns,
    /// on every client, even if deleting it below fails. Then the entries that still carry the
    /// old token are deleted (entries rewritten since are left alone). The count is the number
    /// of deleted entries that were still fresh: an entry that an earlier invalidation of
    /// another of its tags had already made stale (its write landed after that invalidation's
    /// deletion step) is deleted as clean-up but not counted. With
    /// [`Durability::Replicas`](super::Durability) the token change is acknowledged by a
    /// replica before this returns, so a failover cannot undo it.
    ///
    /// # Errors
    /// An invalid tag; a cluster error; [`CacheError::NotDurable`] when too few replicas
    /// acknowledged (the invalidation is in force on the primary; retrying is safe).
    pub async fn invalidate_by_tags(&self, tags: &[&str]) -> Result<u64, CacheError> {
        let tags = distinct_tags(tags);
        if tags.is_empty() {
            return Ok(0);
        }
        let d = self.deadline("invalidate_by_tags", self.inner.settings.config.bulk_operation_timeout);
        let plans = Tags::new(&self.inner.ns);
        let mut steps = Vec::new();
        let mut waits = Vec::new();
        for t in &tags {
            let key = plans.key(t)?;
            steps.push(Step::script(plans.invalidate(t, random::token(), true)?, &scripts::TAG_INVALIDATE));
            match self.durability_wait(&key).await? {
                Some((wait, want)) => {
                    steps.push(wait);
                    waits.push(Some(want));
                }
                None => waits.push(None),
            }
        }
        let mut replies = self.inner.exec.run(steps, &d).await?.into_iter();
        let mut doomed: Vec<(Bytes, Bytes)> = Vec::new();
        // Each invalidated tag's token just before this call replaced it (`None`: it had none).
        let mut before: HashMap<Bytes, Option<Bytes>> = HashMap::with_capacity(tags.len());
        let mut short: Option<(i64, i64)> = None;
        for (tag, want) in tags.iter().zip(waits) {
            let r = replies.next().unwrap_or(Err(RequestError::Closed)).map_err(CacheError::Request)?;
            let old = plan::read_invalidated(r)?.map(|(old, members)| {
                doomed.extend(members.into_iter().map(|m| (m, old.clone())));
                old
            });
            before.insert(tag.clone(), old);
            if let Some(want) = want {
                let r = replies.next().unwrap_or(Err(RequestError::Closed)).map_err(CacheError::Request)?;
                let acked = plan::read_int("WAIT", &r)?;
                if acked < want {
                    short.get_or_insert((acked, want));
                }
            }
        }
        let mut seen = HashSet::new();
        doomed.retain(|p| seen.insert(p.clone()));
        let steps = doomed
            .iter()
            .map(|(m, tok)| Step::script(plan::cond_del(m, tok, true), &scripts::COND_DEL))
            .collect();
        let mut deleted: Vec<Option<Entry>> = Vec::new();
        for r in self.inner.exec.run(steps, &d).await? {
            if let Some(header) = plan::read_cond_del(r.map_err(CacheError::Request)?)? {
                deleted.push(Entry::decode(&header).ok());
            }
        }
        let removed = self.count_fresh(&deleted, before, &d).await;
        if let Some((acked, wanted)) = short {
            return Err(CacheError::NotDurable { acked, wanted });
        }
        Ok(removed)
    }

    /// How many of the entries an invalidation deleted were still fresh when it started: each
    /// of its tags being invalidated carried the token the tag had just before (`before`), and
    /// each other tag carries that tag's current token (read from the primaries, one pipeline,
    /// only when a deleted entry has other tags).
    ///
    /// An entry whose header cannot be read is counted (it carried the token). If the token
    /// read fails, every deleted entry is counted: the invalidation itself has succeeded, and
    /// failing it now would only make the caller invalidate again.
    async fn count_fresh(
        &self,
        deleted: &[Option<Entry>],
        mut before: HashMap<Bytes, Option<Bytes>>,
        d: &Deadline,
    ) -> u64 {
        let mut others: Vec<Bytes> = deleted
            .iter()
            .flatten()
            .flat_map(|e| e.tags.iter().map(|t| &t.tag))
            .filter(|t| !before.contains_key(*t))
            .cloned()
            .collect();
        others.sort();
        others.dedup();
        if !others.is_empty() {
            let plans = Tags::new(&self.inner.ns);
            let current = async {
                let steps = others
                    .iter()
                    .map(|t| plans.read_token(t).map(Step::from))
                    .collect::<Result<Vec<_>, _>>()?;
                let replies = self.inner.exec.run(steps, d).await?;
                others
                    .iter()
                    .zip(replies)
                    .map(|(t, r)| Ok((t.clone(), plan::read_current_token(r.map_err(CacheError::Request)?)?)))
                    .collect::<Result<Vec<_>, CacheError>>()
            };
            match current.await {
                Ok(tokens) => before.extend(tokens),
                Err(_) => return deleted.len() as u64,
            }
        }
        deleted.iter().filter(|e| e.as_ref().is_none_or(|e| plan::is_fresh(e, &before))).count() as u64
    }

    /// Deletes every entry of this namespace and its tag metadata: `SCAN` of the namespace's
    /// prefix (glob characters escaped) on every primary, never replicas, with `UNLINK` per
    /// page. Returns the number of keys deleted. Never `FLUSHDB` (see
    /// [`Provider::flush_all`](super::Provider::flush_all) for that).
    ///
    /// Keys written while it runs may survive; a slot migrating meanwhile may hide keys from
    /// the scan.
    ///
    /// # Errors
    /// A node's error, or the `flush_timeout`.
    pub async fn invalidate_all(&self) -> Result<u64, CacheError> {
        let d = self.deadline("invalidate_all", self.inner.settings.config.flush_timeout);
        let ns = &self.inner.ns;
        let patterns = [ns.scan_pattern(), ns.tag_scan_pattern(), ns.reverse_scan_pattern()];
        let mut total = 0;
        for pattern in patterns {
            total += self.scan_all(&pattern, &d, true).await?;
        }
        Ok(total)
    }

    /// Approximate number of entries: a `SCAN` count of the namespace's prefix on every
    /// primary. Its cost is O(keys in the cluster) (the scan walks every key and filters by
    /// prefix); bounded by `bulk_operation_timeout`, and an error rather than a partial count
    /// when that runs out.
    ///
    /// # Errors
    /// A node's error or the timeout.
    pub async fn estimated_size(&self) -> Result<u64, CacheError> {
        let d = self.deadline("estimated_size", self.inner.settings.config.bulk_operation_timeout);
        self.scan_all(&self.inner.ns.scan_pattern(), &d, false).await
    }

    /// Scans every primary for `pattern` in parallel; deletes what it finds when `delete`.
    async fn scan_all(&self, pattern: &[u8], d: &Deadline, delete: bool) -> Result<u64, CacheError> {
        let nodes = self.primaries(d).await?;
        let counts = join_all(nodes.into_iter().map(|n| self.scan_node(n, pattern, d, delete))).await;
        counts.into_iter().sum()
    }

    pub(crate) async fn primaries(&self, d: &Deadline) -> Result<Vec<NodeAddr>, CacheError> {
        let timeout = d.remaining(self.inner.exec.now())?;
        let per = self
            .inner
            .exec
            .client
            .request(slotcache_core::client::Request::all_primaries(Cmd::new("PING")).with_timeout(timeout))
            .await
            .map_err(to_cache_error)?;
        match per {
            slotcache_core::client::Reply::PerNode(v) => Ok(v.into_iter().map(|(a, _)| a).collect()),
            other => Err(CacheError::UnexpectedReply { command: "PING", got: format!("{other:?}") }),
        }
    }

    /// One page of `SCAN` on one node: the next cursor and the keys.
    pub(crate) async fn scan_page(
        &self,
        node: &NodeAddr,
        cursor: &Bytes,
        pattern: &[u8],
        d: &Deadline,
    ) -> Result<(Bytes, Vec<Bytes>), CacheError> {
        let cmd =
            Cmd::new("SCAN").arg(cursor.clone()).arg("MATCH").arg(pattern.to_vec()).arg("COUNT").arg(1000u32);
        let timeout = d.remaining(self.inner.exec.now())?;
        let req = slotcache_core::client::Request::node(node.clone(), cmd).with_timeout(timeout);
        let reply = self.inner.exec.client.request(req).await.map_err(to_cache_error)?;
        let v = reply.into_value().unwrap_or(Value::Nil);
        let Value::Array(mut parts) = v else {
            return Err(CacheError::UnexpectedReply { command: "SCAN", got: format!("{v:?}") });
        };
        let keys = parts.pop();
        let next = parts.pop();
        match (next, keys) {
            (Some(Value::Bulk(next)), Some(Value::Array(keys))) => {
                let keys = keys.into_iter().filter_map(|k| k.as_bytes().cloned()).collect();
                Ok((next, keys))
            }
            (n, k) => Err(CacheError::UnexpectedReply { command: "SCAN", got: format!("{n:?} {k:?}") }),
        }
    }

    async fn scan_node(
        &self,
        node: NodeAddr,
        pattern: &[u8],
        d: &Deadline,
        delete: bool,
    ) -> Result<u64, CacheError> {
        let mut cursor = Bytes::from_static(b"0");
        let mut count = 0u64;
        loop {
            let (next, keys) = self.scan_page(&node, &cursor, pattern, d).await?;
            if !keys.is_empty() {
                if delete {
                    let mut unlink = Cmd::new("UNLINK");
                    for k in keys {
                        unlink.push_arg(k);
                    }
                    let v = self.inner.exec.one(unlink.into(), d).await?;
                    count += u64::try_from(plan::read_int("UNLINK", &v)?).unwrap_or(0);
                } else {
                    count += keys.len() as u64;
                }
            }
            if next.as_ref() == b"0" {
                return Ok(count);
            }
            cursor = next;
        }
    }
}
