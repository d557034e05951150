//! A namespace: the typed [`Cache`] handle and what its handles share.

use core::convert::Infallible;
use core::fmt;
use core::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::{BoxFuture, Shared};
use slotcache_core::cache::op::Machine;
use slotcache_core::cache::op::flights::Flights;
#[cfg(feature = "search")]
use slotcache_core::cache::op::search_index::KnownIndexes;
use slotcache_core::cache::{CacheError, CacheStats, Typed};

use super::config::ProviderConfig;
use super::exec::{Deadline, Exec};
use crate::observe::Op;

/// A load shared by every concurrent caller of one key.
pub(crate) type Flight<V> = Shared<BoxFuture<'static, Result<V, CacheError>>>;

/// What every handle of one namespace shares.
pub(crate) struct Inner<K, V> {
    pub(crate) exec: Exec,
    pub(crate) config: Arc<ProviderConfig>,
    /// Scope, keys, values, TTLs, search index and counters.
    pub(crate) typed: Typed<K, V>,
    /// The loads in flight.
    pub(crate) flights: Mutex<Flights<Flight<V>>>,
    /// search hook: the search indexes known to exist.
    #[cfg(feature = "search")]
    pub(crate) known: Mutex<KnownIndexes>,
    /// Spans and metrics.
    pub(crate) obs: crate::observe::NamespaceObs,
}

/// A typed cache over one namespace. Cheap to clone; every clone shares the provider's cluster
/// client.
///
/// ```no_run
/// # async fn demo(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
/// use std::time::Duration;
/// use slotcache_rt::{Compute, NamespaceOptions, Ttl};
///
/// let pages = provider.create_namespace::<String, String>("pages", NamespaceOptions::default())?;
/// let key = "/home".to_string();
/// // Store with a TTL and two tags; a tagged set is two round trips, an untagged one, one.
/// pages.set_with_ttl(&key, &"<html>".to_string(), Ttl::After(Duration::from_secs(60)), &["site", "home"]).await?;
/// // Read through, loading on a miss (one load for every concurrent caller of the key).
/// let html = pages.get(&key, |k| async move { Ok(format!("rendered {k}")) }).await?;
/// // Atomic read-modify-write (compare-and-set on the key's slot).
/// pages.compute(&key, |old| Compute::Set(format!("{}!", old.cloned().unwrap_or_default()))).await?;
/// // Every entry tagged "site" is a miss from now on, on every client; returns how many were removed.
/// let removed = pages.invalidate_by_tags(&["site"]).await?;
/// # let _ = (html, removed);
/// # Ok(()) }
/// ```
pub struct Cache<K, V> {
    pub(crate) inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<K, V: 'static> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.typed.name())
            .field("options", self.inner.typed.options())
            .finish()
    }
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// The namespace's normalised name (with its trailing `:`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// // "users:" for a namespace created as "users" (or "users:").
    /// println!("namespace {}", users.name());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        self.inner.typed.name()
    }

    /// Counters since the namespace was created.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let stats = users.stats();
    /// println!("{} hits, {} misses, {} loads", stats.hits, stats.misses, stats.loads);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.inner.typed.counters().snapshot()
    }

    /// Closing a namespace never closes the shared client: it is a no-op kept for parity with
    /// the reference (whose namespace `Close` closed every namespace's connection). Close the
    /// [`Provider`](super::Provider) instead.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// users.close(); // nothing closes: the provider's `close` does
    /// # Ok(()) }
    /// ```
    pub const fn close(&self) {}

    /// The table of loads in flight (a panic while it was held left it consistent: every
    /// change to it is one call). Its `barrier()` is what a caller of `get` or `refresh`
    /// starting now must see: no load older than an invalidation of this namespace that
    /// already returned is joined (see the core's `op::flights`).
    pub(crate) fn flights(&self) -> MutexGuard<'_, Flights<Flight<V>>> {
        self.inner.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The deadline of operation `op` starting now: its name, and its timeout ([`Op::timeout`]).
    pub(crate) fn deadline_for(&self, op: Op) -> Deadline {
        Deadline::new(self.inner.exec.rt.now(), op.name(), op.timeout(&self.inner.config))
    }

    /// Runs operation `op` in its span, recording its duration and outcome (and the reads the
    /// namespace's counters counted).
    pub(crate) async fn observed<T>(
        &self,
        op: Op,
        fut: impl Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        self.inner.obs.observe(op, self.inner.typed.counters(), fut).await
    }

    /// Runs operation `op` in its span: the machine `make` makes with the operation's
    /// deadline, then `then` with its output. An invalidation is marked as running (for the
    /// loads in flight) until it returns, fails, or is cancelled.
    pub(crate) async fn run<M, T>(
        &self,
        op: Op,
        make: impl FnOnce(Deadline) -> Result<M, CacheError>,
        then: impl FnOnce(M::Output) -> Result<T, CacheError>,
    ) -> Result<T, CacheError>
    where
        M: Machine<Call = Infallible, Answer = Infallible>,
    {
        self.observed(op, async move {
            let machine = make(self.deadline_for(op))?;
            let _running = op.invalidates().then(|| {
                let mark = self.flights().invalidation_started();
                OnDrop(Some(move || self.flights().invalidation_ended(mark)))
            });
            then(self.inner.exec.drive(machine).await?)
        })
        .await
    }
}

/// Calls its function when dropped: when what it guards returns, fails, panics or is
/// cancelled (an invalidation running, a led load in the table of loads in flight).
pub(crate) struct OnDrop<F: FnOnce()>(pub(crate) Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
