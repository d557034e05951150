//! The client's cost of one topology refresh as the cluster grows (issue 19,
//! docs/performance.md): `cargo bench -p slotcache-core --bench topology`.
//!
//! A cluster of N shards with one replica each (`common::cluster`), its `CLUSTER SHARDS` reply in
//! RESP3 bytes as a server sends it. Measured per N:
//! - `decode`: the reply's bytes to a [`Value`](slotcache_core::Value) (the connection's
//!   decoder);
//! - `parse`: that value to a [`Topology`] (shards, nodes, the 16384-slot map);
//! - `diff`: the new topology against the one in use, equal to it (a steady refresh);
//! - `refresh`: the three together, what a refresh costs the client's thread between the
//!   reply's last byte and the routing of the next request.
//!
//! Throughput is the reply's bytes, so criterion also prints the decode rate.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slotcache_core::resp::{Limits, decode};
use slotcache_core::topology::Topology;
use slotcache_core::{Protocol, Value};

#[allow(dead_code)] // the in-memory server is for memory.rs
mod common;

const SHARDS: [usize; 5] = [3, 30, 100, 500, 1000];

fn refresh(c: &mut Criterion) {
    let limits = Limits::default();
    let origin = common::node_addr(0);
    for shards in SHARDS {
        let reply = common::shards_reply(shards);
        let value = || {
            let mut buf = BytesMut::from(&reply[..]);
            decode(&mut buf, Protocol::Resp3, &limits).expect("valid").expect("whole")
        };
        let parse = |v: &Value| Topology::from_shards_reply(v, &origin, false).expect("parses");
        let parsed = value();
        let old = parse(&parsed);
        assert_eq!(old, common::cluster(shards, 1), "the reply describes the cluster");
        let mut group = c.benchmark_group(format!("topology/{shards}"));
        group.throughput(Throughput::Bytes(reply.len() as u64));
        group.bench_function("decode", |b| b.iter(|| black_box(value())));
        group.bench_function("parse", |b| b.iter(|| black_box(parse(black_box(&parsed)))));
        group.bench_function("diff", |b| {
            let new = parse(&parsed);
            b.iter(|| black_box(black_box(&old).diff(black_box(&new))));
        });
        group.bench_function("refresh", |b| {
            b.iter(|| {
                let new = parse(&value());
                black_box(old.diff(&new));
                new
            });
        });
        group.finish();
    }
}

fn config() -> Criterion {
    // The machine is shared: short runs, enough samples for a stable median.
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = refresh
}
criterion_main!(benches);
