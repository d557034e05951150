//! The compute family: optimistic read-modify-write with a compare-and-set script.
//!
//! Each attempt reads the entry from the primary, calls the function, and writes with a script
//! that applies only if the stored bytes are still the ones read (compared by SHA-1 on the
//! server). A conflict waits a jittered, growing pause and tries again, up to
//! `max_compute_retries` attempts within `atomic_operation_timeout`. The function may run once
//! per attempt. The value returned is the one computed and written, never a re-read.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::cache::plan::{self, Tags};
use slotcache_core::cache::scripts::{self, sha1_hex};
use slotcache_core::cache::{CacheError, Ttl};

use super::exec::{Deadline, Step};
use super::namespace::{Cache, wall_ms};
use super::random;

/// What a compute function decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compute<V> {
    /// Store this value (the namespace's TTL).
    Set(V),
    /// Store this value with this TTL.
    SetWithTtl(V, Ttl),
    /// Delete the entry.
    Delete,
    /// Leave the entry as it is.
    Keep,
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    async fn compute_inner<F>(&self, key: &K, op: &'static str, mut f: F) -> Result<Option<V>, CacheError>
    where
        F: FnMut(Option<&V>) -> Option<Compute<V>>,
    {
        let fk = self.key(key)?;
        let d = self.deadline(op, self.inner.settings.config.atomic_operation_timeout);
        let max = self.inner.settings.config.max_compute_retries;
        for attempt in 1..=max {
            let v = self.inner.exec.one(plan::get_primary(&fk).into(), &d).await?;
            let stored = plan::read_stored(v)?;
            let entry = self.fresh_entries(vec![stored.clone()], &d).await?.pop().flatten();
            let current = entry.as_ref().map(|e| self.decode_value(e)).transpose()?;
            // `None` from the function: leave everything (used by compute_if_absent/present).
            let Some(action) = f(current.as_ref()) else { return Ok(current) };
            let expected = stored.as_ref().map_or_else(Bytes::new, |s| Bytes::from(sha1_hex(s)));
            let (args, result, keep_tags) = match action {
                Compute::Keep => return Ok(current),
                Compute::Delete => {
                    if stored.is_none() {
                        return Ok(None);
                    }
                    (vec![expected, Bytes::from_static(b"del"), Bytes::new(), Bytes::new()], None, None)
                }
                Compute::Set(new) => self.compute_write(key, expected, new, None, entry.as_ref())?,
                Compute::SetWithTtl(new, ttl) => {
                    self.compute_write(key, expected, new, Some(ttl), entry.as_ref())?
                }
            };
            let cmd = plan::script(&scripts::CAS, &fk, args, true, false);
            let v = self.inner.exec.one(Step::script(cmd, &scripts::CAS), &d).await?;
            if plan::read_int("cas", &v)? == 1 {
                if let Some((tags, ttl_ms)) = keep_tags {
                    self.refresh_memberships(&fk, &tags, ttl_ms, &d).await?;
                }
                return Ok(result);
            }
            if attempt < max {
                self.conflict_pause(attempt, &d).await?;
            }
        }
        Err(CacheError::ComputeConflict { attempts: max })
    }

    /// The CAS arguments for writing `new`, keeping the tags of the entry it replaces.
    #[allow(clippy::type_complexity)]
    fn compute_write(
        &self,
        key: &K,
        expected: Bytes,
        new: V,
        ttl: Option<Ttl>,
        old: Option<&slotcache_core::cache::Entry>,
    ) -> Result<(Vec<Bytes>, Option<V>, Option<(Vec<Bytes>, Option<u64>)>), CacheError> {
        let ttl_ms = self.ttl_for(key, &new, ttl)?;
        let mut entry = self.encode_value(&new, wall_ms())?;
        let keep = old.filter(|o| !o.tags.is_empty()).map(|o| {
            entry.tags.clone_from(&o.tags);
            (o.tags.iter().map(|t| t.tag.clone()).collect::<Vec<_>>(), ttl_ms)
        });
        let stored = entry.encode()?;
        self.check_size(&stored)?;
        let ttl_arg = ttl_ms.map_or_else(Bytes::new, |ms| Bytes::from(ms.to_string()));
        Ok((vec![expected, Bytes::from_static(b"set"), stored, ttl_arg], Some(new), keep))
    }

    /// Re-registers a key in its tags with its new lifetime after a compute rewrote it.
    async fn refresh_memberships(
        &self,
        fk: &slotcache_core::keys::EncodedKey,
        tags: &[Bytes],
        ttl_ms: Option<u64>,
        d: &Deadline,
    ) -> Result<(), CacheError> {
        let plans = Tags::new(&self.inner.ns);
        let mut steps = Vec::with_capacity(tags.len());
        for t in tags {
            steps.push(Step::script(plans.write(t, fk, ttl_ms, random::token(), true)?, &scripts::TAG_WRITE));
        }
        for r in self.inner.exec.run(steps, d).await? {
            plan::read_token_written(r.map_err(CacheError::Request)?)?;
        }
        Ok(())
    }

    async fn conflict_pause(&self, attempt: u32, d: &Deadline) -> Result<(), CacheError> {
        let cap_ms = (1u64 << attempt.min(6)).min(50);
        let mut b = [0u8; 2];
        random::fill(&mut b);
        let jitter = u64::from(u16::from_le_bytes(b)) % (cap_ms * 1000 + 1);
        let pause = Duration::from_micros(jitter);
        if d.remaining(self.inner.exec.now())? <= pause {
            return Err(d.timeout_error());
        }
        self.inner.exec.sleep(pause).await;
        Ok(())
    }

    /// Reads the entry, calls `f` with it (`None` when absent or invalidated), and applies its
    /// decision atomically; retries on conflict. Returns the value now stored (`None` after a
    /// delete, or when `Keep` left nothing).
    ///
    /// # Errors
    /// [`CacheError::ComputeConflict`] when every attempt met a concurrent writer; a cluster,
    /// codec or TTL error.
    pub async fn compute<F>(&self, key: &K, mut f: F) -> Result<Option<V>, CacheError>
    where
        F: FnMut(Option<&V>) -> Compute<V>,
    {
        self.compute_inner(key, "compute", |cur| Some(f(cur))).await
    }

    /// Like [`Cache::compute`]; the function sets the TTL of what it stores.
    ///
    /// # Errors
    /// As [`Cache::compute`].
    pub async fn compute_with_ttl<F>(&self, key: &K, mut f: F) -> Result<Option<V>, CacheError>
    where
        F: FnMut(Option<&V>) -> (V, Ttl),
    {
        self.compute_inner(key, "compute_with_ttl", |cur| {
            let (v, ttl) = f(cur);
            Some(Compute::SetWithTtl(v, ttl))
        })
        .await
    }

    /// Stores `f()` if the key is absent. Returns the value now stored and whether this call
    /// stored it (`f` is not called when the key is present).
    ///
    /// # Errors
    /// As [`Cache::compute`].
    pub async fn compute_if_absent<F>(&self, key: &K, mut f: F) -> Result<(V, bool), CacheError>
    where
        F: FnMut() -> V,
        V: Clone,
    {
        let mut stored_here = false;
        let v = self
            .compute_inner(key, "compute_if_absent", |cur| {
                stored_here = cur.is_none();
                if cur.is_some() { None } else { Some(Compute::Set(f())) }
            })
            .await?;
        let v =
            v.ok_or(CacheError::UnexpectedReply { command: "compute_if_absent", got: "no value".into() })?;
        Ok((v, stored_here))
    }

    /// Applies `f` if the key is present; returns `None` (without calling `f`) when absent.
    ///
    /// # Errors
    /// As [`Cache::compute`].
    pub async fn compute_if_present<F>(&self, key: &K, mut f: F) -> Result<Option<V>, CacheError>
    where
        F: FnMut(&V) -> Compute<V>,
    {
        self.compute_inner(key, "compute_if_present", |cur| cur.map(&mut f)).await
    }
}
