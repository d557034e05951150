//! `key_slot` cost per 16-byte key, against the bare CRC16 it is built on and against
//! redis-protocol's `redis_keyslot`. Goal: `key_slot` ≤ 1.1× bare CRC16 on untagged keys.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slotcache_core::{Rng, key_slot};

const KEYS: usize = 1024;

/// `KEYS` distinct 16-byte keys; with `tagged`, shaped `{user12345}.abcd`.
fn keys(tagged: bool) -> Vec<[u8; 16]> {
    let mut rng = Rng::new(16);
    (0..KEYS)
        .map(|_| {
            let mut key = [0u8; 16];
            for b in &mut key {
                *b = b'a' + (rng.next_u64() % 26) as u8;
            }
            if tagged {
                key[0] = b'{';
                key[10] = b'}';
                key[11] = b'.';
            }
            key
        })
        .collect()
}

fn slot(c: &mut Criterion) {
    for (name, tagged) in [("plain", false), ("tagged", true)] {
        let keys = keys(tagged);
        let mut group = c.benchmark_group(format!("slot/{name}"));
        group.throughput(Throughput::Elements(KEYS as u64));
        group.bench_function("key_slot", |b| {
            b.iter(|| {
                for key in &keys {
                    black_box(key_slot(black_box(key)));
                }
            });
        });
        group.bench_function("crc16_whole_key", |b| {
            b.iter(|| {
                for key in &keys {
                    black_box(crc16::State::<crc16::XMODEM>::calculate(black_box(key)) & 0x3FFF);
                }
            });
        });
        group.bench_function("redis_keyslot", |b| {
            b.iter(|| {
                for key in &keys {
                    black_box(redis_protocol::redis_keyslot(black_box(key)));
                }
            });
        });
        group.finish();
    }
}

criterion_group!(benches, slot);
criterion_main!(benches);
