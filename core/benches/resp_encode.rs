//! `encode_value` (written in the core since it dropped redis-protocol from its dependencies)
//! against the previous path through redis-protocol's frames (`src/resp/reference.rs`, which
//! the property tests also check it against byte for byte), on typical replies: a 1 KiB bulk
//! string, an `MGET`-shaped array of 100 64-byte bulks, and a RESP3 map of 32 integer and
//! double fields. Results: `bench/results/resp_encode/README.md`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slotcache_core::resp::{Protocol, Value, encode_value};

#[path = "../src/resp/reference.rs"]
mod reference;

fn replies() -> Vec<(&'static str, Value, Protocol)> {
    let text = |n: usize| Bytes::from((0..n).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
    let map = (0..32)
        .map(|i| {
            let v = if i % 2 == 0 { Value::Int(i * 1_000_003) } else { Value::Double(i as f64 / 7.0) };
            (Value::Bulk(Bytes::from(format!("field{i}"))), v)
        })
        .collect();
    vec![
        ("bulk_1k", Value::Bulk(text(1024)), Protocol::Resp2),
        ("array_100x64", Value::Array(vec![Value::Bulk(text(64)); 100]), Protocol::Resp2),
        ("map_32_resp3", Value::Map(map), Protocol::Resp3),
    ]
}

fn encode(c: &mut Criterion) {
    for (name, value, protocol) in replies() {
        let mut size = BytesMut::new();
        encode_value(&mut size, &value, protocol).expect("encodable");
        let mut group = c.benchmark_group(format!("encode_value/{name}"));
        group.throughput(Throughput::Bytes(size.len() as u64));
        group.bench_function("ours", |b| {
            let mut buf = BytesMut::with_capacity(size.len());
            b.iter(|| {
                buf.clear();
                encode_value(&mut buf, black_box(&value), protocol).expect("encodable");
                black_box(buf.len())
            });
        });
        group.bench_function("redis_protocol", |b| {
            let mut buf = BytesMut::with_capacity(size.len());
            b.iter(|| {
                buf.clear();
                reference::encode(&mut buf, black_box(&value), protocol).expect("encodable");
                black_box(buf.len())
            });
        });
        group.finish();
    }
}

criterion_group!(benches, encode);
criterion_main!(benches);
