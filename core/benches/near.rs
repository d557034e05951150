//! The near cache's hit path in the core: `NearCache::lookup` of a stored, servable entry (the
//! owner, generation, lease and expiry checks and the LRU move), over 10,000 entries of
//! 24-byte keys, some depending on a tag's token key. Issue 15's target is a hit under 150 ns
//! through the adapter; this measures the core's share of it (no lock, no `Arc` clone).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slotcache_core::near::{Dep, Link, Lookup, NearCache, NearConfig, Pttl, Read};
use slotcache_core::{Rng, Slot, SlotRange, key_slot};

const ENTRIES: usize = 10_000;
const NODES: u32 = 3;

fn key(i: usize) -> Bytes {
    Bytes::from(format!("app:users:{i:014}"))
}

#[allow(clippy::disallowed_methods)] // a benchmark needs one real instant as its epoch
fn epoch() -> Instant {
    Instant::now()
}

/// A cache with `ENTRIES` entries over three nodes; with `tagged`, each depends on one of ten
/// tags' token keys.
fn filled(tagged: bool, now: Instant) -> NearCache<u64> {
    let config =
        NearConfig::new(1 << 30, Duration::from_secs(3600), Duration::from_secs(3600)).expect("valid");
    let mut cache = NearCache::new(config);
    let third = 16384 / 3;
    for node in 0..NODES {
        let start = u16::try_from(node as usize * third).expect("slot");
        let end = if node == NODES - 1 {
            16383
        } else {
            u16::try_from((node as usize + 1) * third - 1).expect("slot")
        };
        let range =
            SlotRange::new(Slot::new(start).expect("slot"), Slot::new(end).expect("slot")).expect("range");
        cache.route(range, Some(node));
        cache.connected(Link { node, generation: 1 }, now);
    }
    let link =
        |slot: Slot| Link { node: (u32::from(slot.get()) / third as u32).min(NODES - 1), generation: 1 };
    for i in 0..ENTRIES {
        let key = key(i);
        let slot = key_slot(&key);
        let mut deps = Vec::new();
        if tagged {
            let token = Bytes::from(format!("tag:{{app:t{}}}:tok", i % 10));
            let slot = key_slot(&token);
            deps.push(Dep { key: token, slot, link: link(slot) });
        }
        let ticket = cache.begin(Read { key, slot, link: link(slot), deps, sent_at: now }).expect("trusted");
        let _ = cache.commit(ticket, i as u64, 8, Pttl::Persistent, now);
    }
    cache
}

fn hit(c: &mut Criterion) {
    let now = epoch();
    let mut rng = Rng::new(15);
    let order: Vec<Bytes> = (0..1024).map(|_| key(rng.below(ENTRIES as u64) as usize)).collect();
    let mut group = c.benchmark_group("near/lookup_hit");
    group.throughput(Throughput::Elements(order.len() as u64));
    for (name, tagged) in [("untagged", false), ("one_tag", true)] {
        let mut cache = filled(tagged, now);
        group.bench_function(name, |b| {
            b.iter(|| {
                for key in &order {
                    if let Lookup::Hit(v) = cache.lookup(black_box(key), now) {
                        black_box(*v);
                    }
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, hit);
criterion_main!(benches);
