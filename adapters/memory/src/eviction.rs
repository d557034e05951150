//! Eviction under `maxmemory`, approximated as Valkey does: sample a few keys (from the
//! cluster's seeded generator) and evict the best candidate of the sample.

use bytes::Bytes;
use slotcache_core::Rng;

use super::store::Store;

/// Keys sampled per eviction (Valkey's `maxmemory-samples` default).
pub const SAMPLES: u64 = 5;

/// The text of the `OOM` error.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// Refuse writes that may grow memory with `OOM`.
    #[default]
    NoEviction,
    /// Evict the least recently used key of a sample of all keys.
    AllKeysLru,
    /// Evict a random key.
    AllKeysRandom,
    /// Evict the least recently used key of a sample of keys with an expiry.
    VolatileLru,
    /// Evict a random key with an expiry.
    VolatileRandom,
    /// Evict the key with the nearest expiry of a sample of keys with an expiry.
    VolatileTtl,
}

impl EvictionPolicy {
    /// Every policy, for parsing and `CONFIG GET`.
    pub const ALL: [Self; 6] = [
        Self::NoEviction,
        Self::AllKeysLru,
        Self::AllKeysRandom,
        Self::VolatileLru,
        Self::VolatileRandom,
        Self::VolatileTtl,
    ];

    /// Its name in `CONFIG`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::NoEviction => "noeviction",
            Self::AllKeysLru => "allkeys-lru",
            Self::AllKeysRandom => "allkeys-random",
            Self::VolatileLru => "volatile-lru",
            Self::VolatileRandom => "volatile-random",
            Self::VolatileTtl => "volatile-ttl",
        }
    }

    /// Parses a `CONFIG SET` value (any case).
    #[must_use]
    pub fn parse(s: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().as_bytes().eq_ignore_ascii_case(s))
    }

    const fn volatile(self) -> bool {
        matches!(self, Self::VolatileLru | Self::VolatileRandom | Self::VolatileTtl)
    }
}

/// Evicts keys until `store` uses at most `maxmemory` bytes or nothing is left to evict under
/// `policy`; returns how many keys went (each deletion is recorded for replication).
pub fn make_room(store: &mut Store, maxmemory: usize, policy: EvictionPolicy, rng: &mut Rng) -> u64 {
    let mut evicted = 0;
    while maxmemory > 0 && store.used_memory() > maxmemory && policy != EvictionPolicy::NoEviction {
        let pool: Vec<(&Bytes, u64, u64)> = store
            .entries()
            .filter(|(_, e)| !policy.volatile() || e.expires_at.is_some())
            .map(|(k, e)| (k, e.access, e.expires_at.unwrap_or(u64::MAX)))
            .collect();
        if pool.is_empty() {
            break;
        }
        let random = matches!(policy, EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom);
        let samples = if random { 1 } else { SAMPLES };
        let mut best: Option<(&Bytes, u64)> = None;
        for _ in 0..samples {
            let (k, access, exp) = pool[rng.below(pool.len() as u64) as usize];
            let rank = if policy == EvictionPolicy::VolatileTtl { exp } else { access };
            if best.is_none_or(|(_, r)| rank < r) {
                best = Some((k, rank));
            }
        }
        let Some((victim, _)) = best else { break };
        let victim = victim.clone();
        store.remove(&victim, 0);
        evicted += 1;
    }
    evicted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Entry, Val};

    fn fill(store: &mut Store, n: usize, ttl_every: usize) {
        for i in 0..n {
            let mut e = Entry::new(Val::Str(Bytes::from(vec![b'x'; 100])));
            if ttl_every > 0 && i % ttl_every == 0 {
                e.expires_at = Some(1_000_000 + i as u64);
            }
            store.insert(Bytes::from(format!("k{i:03}")), e);
        }
    }

    #[test]
    fn policies_evict_down_to_the_limit() {
        for policy in [EvictionPolicy::AllKeysLru, EvictionPolicy::AllKeysRandom, EvictionPolicy::VolatileTtl]
        {
            let mut st = Store::new();
            fill(&mut st, 100, 1);
            let limit = st.used_memory() / 2;
            let n = make_room(&mut st, limit, policy, &mut Rng::new(1));
            assert!(n >= 45 && st.used_memory() <= limit, "{policy:?}: {n}");
        }
    }

    #[test]
    fn lru_prefers_old_keys_and_volatile_spares_persistent_ones() {
        let mut st = Store::new();
        fill(&mut st, 100, 0);
        // Touch the second half: the first half is older.
        for i in 50..100 {
            st.get(format!("k{i:03}").as_bytes(), 0);
        }
        let limit = st.used_memory() * 8 / 10;
        make_room(&mut st, limit, EvictionPolicy::AllKeysLru, &mut Rng::new(2));
        let young_gone = (50..100).filter(|i| !st.contains_key(format!("k{i:03}").as_bytes())).count();
        assert!(young_gone <= 3, "sampled LRU spares recently used keys: {young_gone}");

        let mut st = Store::new();
        fill(&mut st, 100, 2);
        let n = make_room(&mut st, 1, EvictionPolicy::VolatileLru, &mut Rng::new(3));
        assert_eq!(n, 50, "only keys with a TTL go");
        assert_eq!(make_room(&mut st, 1, EvictionPolicy::NoEviction, &mut Rng::new(3)), 0);
    }
}
