//! Tag invalidation and namespace-wide invalidation.

use bytes::Bytes;
use futures_util::future::join_all;
use slotcache_core::cache::CacheError;
use slotcache_core::cache::plan;
use slotcache_core::client::Cmd;
use slotcache_core::{NodeAddr, Value};

use slotcache_core::cache::op::invalidate_tags::InvalidateTags;
use slotcache_core::cache::op::scope::distinct_tags;

use super::exec::Deadline;
use super::namespace::Cache;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Invalidates every entry written with any of `tags`, and returns how many entries it
    /// actually removed.
    ///
    /// Each tag's token is replaced atomically on its slot, so every entry written before
    /// (which carries the old token) is a miss for every read that starts after this returns,
    /// on every client, even if deleting it below fails. Then the entries that still carry the
    /// old token are deleted (entries rewritten since are left alone) and leave the other tags
    /// they had. The count is the number of deleted entries that were still fresh: an entry that
    /// an earlier invalidation of another of its tags had already made stale (its write landed
    /// after that invalidation's deletion step) is deleted as clean-up but not counted. With
    /// [`Durability::Replicas`](super::Durability) the token change is acknowledged by a
    /// replica before this returns, so a failover cannot undo it.
    ///
    /// # Errors
    /// An invalid tag; a cluster error; [`CacheError::NotDurable`] when too few replicas
    /// acknowledged (the invalidation is in force on the primary; retrying is safe).
    pub async fn invalidate_by_tags(&self, tags: &[&str]) -> Result<u64, CacheError> {
        let d = self.deadline("invalidate_by_tags", self.inner.settings.config.bulk_operation_timeout);
        let machine = InvalidateTags::machine(self.inner.scope.clone(), distinct_tags(tags), d);
        self.inner.exec.drive(machine).await
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
            .map_err(|e| self.inner.exec.deadline_error(e, d))?;
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
        let reply =
            self.inner.exec.client.request(req).await.map_err(|e| self.inner.exec.deadline_error(e, d))?;
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

/// Test-only entry points that run a cache operation's machine with a reintroduced bug, so
/// the real-cluster tests can show that what they check would catch it. Not part of the API.
#[doc(hidden)]
pub mod testing {
    use slotcache_core::cache::CacheError;
    use slotcache_core::cache::op::invalidate_tags::{InvalidateTags, Variant};
    use slotcache_core::cache::op::scope::distinct_tags;

    use super::Cache;

    /// `invalidate_by_tags` with the machine's bug `variant`.
    ///
    /// # Errors
    /// As `invalidate_by_tags`.
    pub async fn invalidate_by_tags_with<K, V>(
        cache: &Cache<K, V>,
        tags: &[&str],
        variant: Variant,
    ) -> Result<u64, CacheError>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        let d = cache.deadline("invalidate_by_tags", cache.inner.settings.config.bulk_operation_timeout);
        let machine =
            InvalidateTags::machine_with(cache.inner.scope.clone(), distinct_tags(tags), d, variant);
        cache.inner.exec.drive(machine).await
    }
}
