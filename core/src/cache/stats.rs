//! A namespace's statistics: lock-free counters (client-side, so per namespace, unlike the
//! reference's server-wide figures) and their snapshot. Hits and misses are kept per
//! [`Read`] (the operation that read), so that an exporter can label them.

use core::time::Duration;
use std::sync::atomic::{AtomicU64, Ordering};

use super::op::load::Warning;

/// A snapshot of a namespace's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads that found a fresh entry.
    pub hits: u64,
    /// Reads that found nothing (stale entries included).
    pub misses: u64,
    /// Reads that found an entry made stale by a tag invalidation.
    pub stale: u64,
    /// Loader calls that succeeded.
    pub loads: u64,
    /// Loader calls that failed.
    pub load_failures: u64,
    /// Time spent in loaders.
    pub load_time: Duration,
    /// Loaded values that could not be stored (they were still returned).
    pub store_failures: u64,
}

/// The operation a read was made by: what [`Counters::reads`] tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// `get` (its lookup; a failed read is neither a hit nor a miss).
    Get,
    /// `get_if_present`.
    GetIfPresent,
    /// `bulk_get`.
    BulkGet,
    /// `bulk_get_with` (the read before the loader is called).
    BulkGetWith,
    /// `get_entry` (`probe_entry` is not counted).
    GetEntry,
}

impl Read {
    /// Every read.
    pub const ALL: [Self; 5] =
        [Self::Get, Self::GetIfPresent, Self::BulkGet, Self::BulkGetWith, Self::GetEntry];
}

/// The counters of one namespace, shared by every handle of it.
#[derive(Debug, Default)]
pub struct Counters {
    /// Hits (`[0]`) and misses (`[1]`), by [`Read`].
    reads: [[AtomicU64; 2]; Read::ALL.len()],
    stale: AtomicU64,
    loads: AtomicU64,
    load_failures: AtomicU64,
    load_nanos: AtomicU64,
    store_failures: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

impl Counters {
    /// A read by `read` that found a fresh entry (`hit`) or nothing.
    pub fn read(&self, read: Read, hit: bool) {
        if let Some(c) = self.reads.get(read as usize).and_then(|r| r.get(usize::from(!hit))) {
            add(c, 1);
        }
    }

    /// The hits and misses of reads by `read` so far.
    #[must_use]
    pub fn reads(&self, read: Read) -> (u64, u64) {
        self.reads
            .get(read as usize)
            .map_or((0, 0), |[h, m]| (h.load(Ordering::Relaxed), m.load(Ordering::Relaxed)))
    }

    /// Reads that met `n` entries a tag invalidation had made stale.
    pub fn stale(&self, n: u64) {
        add(&self.stale, n);
    }

    /// A loader call that took `elapsed` and succeeded (`ok`) or failed.
    pub fn load(&self, elapsed: Duration, ok: bool) {
        add(&self.load_nanos, u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        add(if ok { &self.loads } else { &self.load_failures }, 1);
    }

    /// Loaded values of namespace `name` that could not be stored (they were still returned):
    /// counted, and logged with `message`.
    pub fn store_failed(&self, name: &str, error: &dyn core::fmt::Display, message: &str) {
        add(&self.store_failures, 1);
        tracing::warn!(namespace = %name, error = %error, "{message}");
    }

    /// What went wrong in a load of namespace `name` without failing it: counted and logged.
    pub fn load_warnings(&self, name: &str, warnings: Vec<Warning>) {
        for w in warnings {
            match w {
                Warning::LockUnavailable(e) => {
                    tracing::warn!(error = %e, "load lock unavailable; loading without it");
                }
                Warning::StoreFailed(e) => self.store_failed(name, &e, "storing a loaded value failed"),
                Warning::UnlockFailed(e) => {
                    tracing::warn!(error = %e, "releasing a load lock failed; it expires by itself");
                }
                Warning::Superseded => {
                    tracing::debug!(namespace = %name, "a reloaded value was not stored: a tag was invalidated while it loaded");
                }
            }
        }
    }

    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> CacheStats {
        let (hits, misses) =
            Read::ALL.iter().map(|&r| self.reads(r)).fold((0, 0), |a, r| (a.0 + r.0, a.1 + r.1));
        CacheStats {
            hits,
            misses,
            stale: self.stale.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            load_failures: self.load_failures.load(Ordering::Relaxed),
            load_time: Duration::from_nanos(self.load_nanos.load(Ordering::Relaxed)),
            store_failures: self.store_failures.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheError;

    #[test]
    fn counts_reads_loads_and_warnings() {
        let c = Counters::default();
        c.read(Read::Get, true);
        c.read(Read::BulkGet, false);
        c.read(Read::BulkGet, false);
        c.stale(3);
        c.load(Duration::from_millis(2), true);
        c.load(Duration::from_millis(1), false);
        c.load_warnings(
            "ns:",
            vec![Warning::LockUnavailable(CacheError::Closed), Warning::StoreFailed(CacheError::Closed)],
        );
        let s = c.snapshot();
        assert_eq!((s.hits, s.misses, s.stale, s.loads, s.load_failures), (1, 2, 3, 1, 1));
        assert_eq!(
            (c.reads(Read::Get), c.reads(Read::BulkGet), c.reads(Read::GetEntry)),
            ((1, 0), (0, 2), (0, 0))
        );
        assert_eq!((s.load_time, s.store_failures), (Duration::from_millis(3), 1));
    }
}
