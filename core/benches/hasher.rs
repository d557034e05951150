//! The hasher of the core's internal maps, on the keys they actually hash: the client's maps by
//! node address (`HashMap<NodeAddr, _>`: the connections per node and the node ids of
//! `client::node_stats`), IPv4-shaped (`10.0.3.17:7004`) and name-shaped
//! (`cache-node-17.internal:6379`); and the near cache's maps by cache key (`Bytes`,
//! `ns:user:00042`).
//!
//! Compares the hand-written multiply-rotate hasher the core had until it took `foldhash`
//! (`HandWritten`, a verbatim copy of `core/src/fast_hasher.rs`), `foldhash::fast::FixedState`
//! (fixed seed: the same order in every run), `rustc-hash`'s `FxBuildHasher`, and the
//! standard SipHash `RandomState` as the baseline: one `hash_one`, then building and looking up
//! maps of 6 and 64 nodes. Results: `bench/results/hasher/README.md`.

use core::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use slotcache_core::NodeAddr;

/// The hand-written hasher the core used (`core/src/fast_hasher.rs`, removed): FxHash's
/// multiply-rotate with a final rotation.
#[derive(Clone, Copy, Debug, Default)]
struct HandWritten(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl HandWritten {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(K);
    }
}

impl Hasher for HandWritten {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// `n` addresses of one shape: `10.0.<i/256>.<i%256>:7000+i%16`, or
/// `cache-node-<i>.internal:6379`.
fn addrs(n: usize, named: bool) -> Vec<NodeAddr> {
    (0..n)
        .map(|i| {
            if named {
                NodeAddr::new(format!("cache-node-{i}.internal"), 6379)
            } else {
                NodeAddr::new(format!("10.0.{}.{}", i / 256, i % 256), 7000 + (i % 16) as u16)
            }
        })
        .collect()
}

fn bench_one<S: BuildHasher + Clone>(c: &mut Criterion, hasher: &str, state: &S) {
    for (shape, named) in [("ipv4", false), ("named", true)] {
        let one = addrs(1, named).remove(0);
        c.bench_function(&format!("hash_one/{shape}/{hasher}"), |b| {
            b.iter(|| black_box(state.hash_one(black_box(&one))));
        });
        for n in [6, 64] {
            let keys = addrs(n, named);
            c.bench_function(&format!("map_insert/{shape}/{n}/{hasher}"), |b| {
                b.iter(|| {
                    let mut map: HashMap<NodeAddr, usize, S> = HashMap::with_hasher(state.clone());
                    for (i, k) in keys.iter().enumerate() {
                        map.insert(k.clone(), i);
                    }
                    black_box(map)
                });
            });
            let mut map: HashMap<NodeAddr, usize, S> = HashMap::with_hasher(state.clone());
            for (i, k) in keys.iter().enumerate() {
                map.insert(k.clone(), i);
            }
            c.bench_function(&format!("map_lookup/{shape}/{n}/{hasher}"), |b| {
                b.iter(|| {
                    let mut sum = 0;
                    for k in &keys {
                        sum += map.get(black_box(k)).copied().unwrap_or(0);
                    }
                    black_box(sum)
                });
            });
        }
    }
}

/// `n` cache keys as the near cache holds them (`Bytes`, `ns:user:<i>`, 12 to 16 bytes).
fn cache_keys(n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("ns:user:{i:05}"))).collect()
}

/// The near cache's maps (`near::cache`, keyed by the cache keys): one `hash_one`, then building
/// and looking up maps of 64 and 1024 keys.
fn bench_keys<S: BuildHasher + Clone>(c: &mut Criterion, hasher: &str, state: &S) {
    let one = cache_keys(1).remove(0);
    c.bench_function(&format!("hash_one/cache_key/{hasher}"), |b| {
        b.iter(|| black_box(state.hash_one(black_box(&one))));
    });
    for n in [64, 1024] {
        let keys = cache_keys(n);
        c.bench_function(&format!("map_insert/cache_key/{n}/{hasher}"), |b| {
            b.iter(|| {
                let mut map: HashMap<Bytes, usize, S> = HashMap::with_hasher(state.clone());
                for (i, k) in keys.iter().enumerate() {
                    map.insert(k.clone(), i);
                }
                black_box(map)
            });
        });
        let mut map: HashMap<Bytes, usize, S> = HashMap::with_hasher(state.clone());
        for (i, k) in keys.iter().enumerate() {
            map.insert(k.clone(), i);
        }
        c.bench_function(&format!("map_lookup/cache_key/{n}/{hasher}"), |b| {
            b.iter(|| {
                let mut sum = 0;
                for k in &keys {
                    sum += map.get(black_box(k)).copied().unwrap_or(0);
                }
                black_box(sum)
            });
        });
    }
}

fn hashers(c: &mut Criterion) {
    bench_one(c, "hand_written", &BuildHasherDefault::<HandWritten>::default());
    bench_one(c, "foldhash_fixed", &foldhash::fast::FixedState::default());
    bench_one(c, "rustc_hash", &rustc_hash::FxBuildHasher);
    bench_one(c, "siphash", &RandomState::new());
    bench_keys(c, "hand_written", &BuildHasherDefault::<HandWritten>::default());
    bench_keys(c, "foldhash_fixed", &foldhash::fast::FixedState::default());
    bench_keys(c, "rustc_hash", &rustc_hash::FxBuildHasher);
    bench_keys(c, "siphash", &RandomState::new());
}

criterion_group!(benches, hashers);
criterion_main!(benches);
