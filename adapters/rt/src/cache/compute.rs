//! The compute family: optimistic read-modify-write with a compare-and-set script.
//!
//! The protocol (read on the primary, compare-and-set, jittered retries) is the core's
//! `op::compute` machine; one attempt's decoding and encoding, and what the outcome leaves
//! stored, are the core's `Typed::apply` and `Typed::computed`; what `compute_if_absent`
//! stores and returns is the core's `IfAbsent`. This file runs the machine with the caller's
//! function, which may run once per attempt (`max_compute_retries` within
//! `atomic_operation_timeout`). The value returned is the one computed and written, never a
//! re-read.

use bytes::Bytes;
use slotcache_core::cache::op::compute::ComputeEntry;
use slotcache_core::cache::{CacheError, Compute, IfAbsent, Ttl};

use super::exec::wall_ms;
use super::namespace::Cache;
use super::random;
use crate::observe::Op;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Runs the compute machine of operation `op`; `f` is called once per attempt (`None`
    /// from it: leave the entry, used by compute_if_absent/present).
    async fn compute_inner<F>(&self, op: Op, key: &K, f: F) -> Result<Option<V>, CacheError>
    where
        F: FnMut(Option<&V>) -> Option<Compute<V>>,
    {
        self.compute_kept(op, key, f).await.map(|(v, _)| v)
    }

    /// [`Cache::compute_inner`], with the tags the written value kept (the replaced entry's;
    /// empty when nothing was written).
    pub(super) async fn compute_kept<F>(
        &self,
        op: Op,
        key: &K,
        mut f: F,
    ) -> Result<(Option<V>, Vec<Bytes>), CacheError>
    where
        F: FnMut(Option<&V>) -> Option<Compute<V>>,
    {
        let (typed, retries) = (&self.inner.typed, self.inner.config.max_compute_retries);
        let machine = ComputeEntry::new(typed.scope(), typed.key(key)?, retries, self.deadline_for(op));
        let apply = |call| std::future::ready(typed.apply(key, call, &mut f, wall_ms(), &mut random::fill));
        let mut outcome = self.inner.exec.drive_with(machine, apply).await?;
        let kept = std::mem::take(&mut outcome.kept_tags);
        Ok((typed.computed(outcome), kept))
    }

    /// Reads the entry, calls `f` with it (`None` when absent or invalidated), and applies its
    /// decision atomically; retries on conflict. Returns the value now stored (`None` after a
    /// delete, or when `Keep` left nothing).
    ///
    /// # Errors
    /// [`CacheError::ComputeConflict`] when every attempt met a concurrent writer; a cluster,
    /// codec or TTL error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use slotcache_rt::Compute;
    ///
    /// // Append to a list kept as one string, atomically with respect to every other writer.
    /// let now = users
    ///     .compute(&"visitors".to_string(), |old| match old {
    ///         Some(list) => Compute::Set(format!("{list},alice")),
    ///         None => Compute::Set("alice".to_string()),
    ///     })
    ///     .await?;
    /// // Delete only if it holds this value.
    /// let lock = "lock".to_string();
    /// users
    ///     .compute(&lock, |old| match old.map(String::as_str) {
    ///         Some("mine") => Compute::Delete,
    ///         _ => Compute::Keep,
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn compute<F>(&self, key: &K, mut f: F) -> Result<Option<V>, CacheError>
    where
        F: FnMut(Option<&V>) -> Compute<V>,
    {
        self.observed(Op::Compute, self.compute_inner(Op::Compute, key, |cur| Some(f(cur)))).await
    }

    /// Like [`Cache::compute`]; the function sets the TTL of what it stores.
    ///
    /// # Errors
    /// As [`Cache::compute`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use std::time::Duration;
    /// use slotcache_rt::Ttl;
    ///
    /// let stored = users
    ///     .compute_with_ttl(&"greeting".to_string(), |old| {
    ///         let next = format!("{}!", old.map(String::as_str).unwrap_or("hello"));
    ///         (next, Ttl::After(Duration::from_secs(60)))
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn compute_with_ttl<F>(&self, key: &K, mut f: F) -> Result<Option<V>, CacheError>
    where
        F: FnMut(Option<&V>) -> (V, Ttl),
    {
        let f = |cur: Option<&V>| {
            let (v, ttl) = f(cur);
            Some(Compute::SetWithTtl(v, ttl))
        };
        self.observed(Op::ComputeWithTtl, self.compute_inner(Op::ComputeWithTtl, key, f)).await
    }

    /// Stores `f()` if the key is absent. Returns the value now stored and whether this call
    /// stored it (`f` is not called when the key is present).
    ///
    /// # Errors
    /// As [`Cache::compute`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let lock = "lock".to_string();
    /// let (owner, mine) = users.compute_if_absent(&lock, || "worker-1".to_string()).await?;
    /// if mine {
    ///     println!("this worker holds the lock");
    /// } else {
    ///     println!("{owner} holds the lock");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn compute_if_absent<F>(&self, key: &K, mut f: F) -> Result<(V, bool), CacheError>
    where
        F: FnMut() -> V,
        V: Clone,
    {
        self.observed(Op::ComputeIfAbsent, async move {
            let mut absent = IfAbsent::default();
            let stored =
                self.compute_inner(Op::ComputeIfAbsent, key, |cur| absent.decide(cur, &mut f)).await?;
            absent.outcome(stored)
        })
        .await
    }

    /// Applies `f` if the key is present; returns `None` (without calling `f`) when absent.
    ///
    /// # Errors
    /// As [`Cache::compute`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use slotcache_rt::Compute;
    ///
    /// let alice = "alice".to_string();
    /// let renamed = users.compute_if_present(&alice, |name| Compute::Set(format!("{name} Lee"))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn compute_if_present<F>(&self, key: &K, mut f: F) -> Result<Option<V>, CacheError>
    where
        F: FnMut(&V) -> Compute<V>,
    {
        let f = |cur: Option<&V>| cur.map(&mut f);
        self.observed(Op::ComputeIfPresent, self.compute_inner(Op::ComputeIfPresent, key, f)).await
    }
}
