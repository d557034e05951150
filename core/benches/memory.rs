//! Heap memory of the topology and of the client as the cluster and the load grow (issue 19,
//! docs/performance.md): `cargo bench -p slotcache-core --bench memory`. Prints Markdown tables.
//!
//! Every allocation goes through a counting global allocator ([`stats_alloc`], which wraps the
//! system allocator): a figure is the bytes the code asked for and still holds (allocated minus
//! freed over the measured span), not what the allocator adds per block (glibc's malloc adds
//! 8 to 16 bytes a block and rounds up to 16). Bytes do not depend on the machine's load. The
//! counts are exact, so the program also checks what it claims (the cost per node of a topology
//! does not grow with the cluster; connections and pending requests cost memory).
//!
//! 1. **Topology**: a cluster of N shards with one replica each, as its `CLUSTER SHARDS` reply
//!    (RESP3 bytes, as a server sends them), decoded and parsed the way the client does a
//!    refresh; measured: the reply's size, what the parsed [`Topology`] holds once the reply is
//!    gone, and what one refresh allocates on the way (churn).
//! 2. **Client, per connection**: the sans-IO [`Client`](slotcache_core::client::Client) of a
//!    600-shard cluster, driven with no socket (`common::Server`), one request sent to each of
//!    K primaries (answered, so nothing stays pending); the client then holds K connections
//!    (the seed, node 0, is the first primary). Bytes per connection: the slope between
//!    K = 128 and K = 512 (powers of two, so that the client's doubling tables are as full at
//!    both ends). Then 4 connections per node (`connections_per_node`) on 128 nodes: the cost
//!    of a connection to a node already connected.
//! 3. **Client, per pending request**: on a 3-shard cluster with its connections open (and
//!    warmed by 64 answered requests), M requests submitted, written and left unanswered (a
//!    slow server); bytes per pending request at several M, for `GET` of a 16-byte key and
//!    `SET` of values of 100 and 1,000 bytes. The value's own bytes are not counted: the caller
//!    hands them over as [`Bytes`] and the client keeps that buffer (for retries) without
//!    copying it; the key's are (the request is built inside the measured span).
//! 4. **Client, after refreshes**: every primary connected, then 20 topology refreshes (each
//!    asked of another primary, as the refresh policy rotates): what the client holds more
//!    afterwards (the read buffers the replies left on their connections).

use std::alloc::System;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use slotcache_core::client::{ClientConfig, Cmd, Request};
use slotcache_core::resp::{Limits, decode};
use slotcache_core::topology::Topology;
use slotcache_core::{Protocol, SLOT_COUNT};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

mod common;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes still held at the end of a span: allocated minus freed (reallocations count in both).
fn held(s: &Stats) -> i64 {
    i64::try_from(s.bytes_allocated).expect("small") - i64::try_from(s.bytes_deallocated).expect("small")
}

/// Blocks still held at the end of a span.
fn blocks(s: &Stats) -> i64 {
    i64::try_from(s.allocations).expect("small") - i64::try_from(s.deallocations).expect("small")
}

/// The slot map: one `u16` shard index per slot.
const SLOT_MAP: i64 = SLOT_COUNT as i64 * 2;

fn topology() {
    println!("## Topology (N shards, 1 replica each, parsed from CLUSTER SHARDS in RESP3)\n");
    println!(
        "| shards | nodes | reply bytes | topology holds (bytes) | blocks | per node over the slot map | refresh allocates (bytes, blocks) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut per_node = Vec::new();
    for shards in [3usize, 30, 100, 500, 1000] {
        let reply = common::shards_reply(shards);
        let origin = common::node_addr(0);
        let region = Region::new(GLOBAL);
        let mut buf = BytesMut::from(&reply[..]);
        let value = decode(&mut buf, Protocol::Resp3, &Limits::default()).expect("valid").expect("whole");
        let topo = Topology::from_shards_reply(&value, &origin, false).expect("parses");
        drop(value);
        drop(buf);
        let s = region.change();
        assert_eq!(topo.shards().len(), shards);
        let nodes = 2 * shards;
        let node = (held(&s) - SLOT_MAP) as f64 / nodes as f64;
        per_node.push(node);
        println!(
            "| {shards} | {nodes} | {} | {} | {} | {node:.0} | {}, {} |",
            reply.len(),
            held(&s),
            blocks(&s),
            s.bytes_allocated,
            s.allocations
        );
        drop(topo);
    }
    println!(
        "\nInline size of `Topology`: {} bytes (counted above only when boxed; the client holds it in \
         an `Option` inside `Client`).\n",
        size_of::<Topology>()
    );
    // What the doc claims: a fixed slot map plus a per-node cost that does not grow with N.
    let (lo, hi) = per_node.iter().fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(hi < 1.5 * lo, "the cost per node grows with the cluster: {per_node:?}");
}

/// A client of `shards` shards (1 replica each) with `per_node` connections per node, after one
/// request to each of the first `k` primaries; returns the bytes held and the connections.
fn client_with_connections(shards: usize, per_node: usize, k: usize, tags: &[String]) -> (i64, u64) {
    #[allow(clippy::disallowed_methods)] // the epoch of the virtual clock
    let now = Instant::now();
    let mut cfg = ClientConfig::new(Vec::new());
    cfg.connections_per_node = per_node;
    let reply = common::shards_reply(shards);
    let region = Region::new(GLOBAL);
    let mut server = common::Server::new(shards, reply, cfg, now);
    let topo = server.client.topology().expect("known").clone();
    for shard in topo.shards().iter().take(k) {
        let slot = shard.slots[0].start();
        for _ in 0..per_node {
            server.submit(Request::command(Cmd::new("GET").arg(format!("{{{}}}:key", tags[slot.index()]))));
        }
    }
    drop(topo);
    let conns = server.connections();
    let s = region.change();
    assert_eq!(server.completed, k * per_node, "every request answered");
    assert!(conns as usize >= k * per_node, "{conns} connections");
    drop(server);
    (held(&s), conns)
}

/// The cluster of the connection figures: more primaries than the most connected.
const CONN_SHARDS: usize = 600;

fn connections(tags: &[String]) {
    println!("## Client memory per connection (sans-IO core, {CONN_SHARDS}-shard cluster)\n");
    println!("| connections per node | primaries connected | connections | client holds (bytes) |");
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    for (per_node, k) in [(1, 0), (1, 128), (1, 512), (4, 128)] {
        let (bytes, conns) = client_with_connections(CONN_SHARDS, per_node, k, tags);
        println!("| {per_node} | {k} | {conns} | {bytes} |");
        rows.push((conns, bytes));
    }
    let slope = |a: (u64, i64), b: (u64, i64)| (b.1 - a.1) as f64 / (b.0 as f64 - a.0 as f64);
    let first = slope(rows[1], rows[2]);
    let more = slope(rows[1], rows[3]);
    println!(
        "\nPer connection, one per node (the node's own entries included): {first:.0} bytes; \
         per extra connection to a node already connected: {more:.0} bytes.\n"
    );
    assert!(first > 0.0 && more > 0.0, "connections cost memory");
}

/// A client of a 3-shard cluster with every primary connected, then `m` requests made by
/// `make` written and left unanswered; returns the bytes the pending requests add.
fn client_with_pending(m: usize, make: &dyn Fn(usize) -> Request) -> i64 {
    #[allow(clippy::disallowed_methods)] // the epoch of the virtual clock
    let now = Instant::now();
    let mut server = common::Server::new(3, common::shards_reply(3), ClientConfig::new(Vec::new()), now);
    for i in 0..64 {
        server.submit(make(m + i));
    }
    assert_eq!(server.connections(), 3, "every primary connected");
    server.hold = true;
    let region = Region::new(GLOBAL);
    for i in 0..m {
        server.submit(make(i));
    }
    let s = region.change();
    assert_eq!(server.held, m, "every command written and held");
    assert_eq!(server.client.stats().outstanding as usize, m);
    drop(server);
    held(&s)
}

/// Makes the `i`-th request of a measurement.
type MakeRequest = Box<dyn Fn(usize) -> Request>;

/// Pending requests measured: powers of two fill the client's growable tables (vectors
/// double) exactly; 10,000 shows a table two thirds full.
const PENDING: [usize; 4] = [1_024, 10_000, 16_384, 131_072];

fn pending() {
    println!("## Client memory per pending request (sans-IO core, 3-shard cluster, 1 connection per node)\n");
    println!(
        "| command | bytes per pending request, at {} pending |",
        PENDING.map(|m| m.to_string()).join(" / ")
    );
    println!("|---|---|");
    let value = |n: usize| Bytes::from(vec![b'v'; n]);
    let key = |i: usize| format!("key:{i:012}"); // 16 bytes
    let v100 = value(100);
    let v1000 = value(1000);
    let cases: [(&str, MakeRequest); 3] = [
        ("GET, 16-byte key", Box::new(move |i| Request::command(Cmd::new("GET").arg(key(i))))),
        (
            "SET, 16-byte key, 100-byte value",
            Box::new(move |i| Request::command(Cmd::new("SET").arg(key(i)).arg(v100.clone()))),
        ),
        (
            "SET, 16-byte key, 1,000-byte value",
            Box::new(move |i| Request::command(Cmd::new("SET").arg(key(i)).arg(v1000.clone()))),
        ),
    ];
    for (name, make) in &cases {
        let per: Vec<String> = PENDING
            .iter()
            .map(|&m| {
                let per = client_with_pending(m, make.as_ref()) as f64 / m as f64;
                assert!(per > 0.0, "pending requests cost memory");
                format!("{per:.0}")
            })
            .collect();
        println!("| {name} | {} |", per.join(" / "));
    }
    println!();
}

/// What the client holds after `refreshes` topology refreshes of a `shards`-shard cluster, each
/// asked of a different primary (as the policy spreads them), all of them connected.
fn after_refreshes(shards: usize, refreshes: usize, tags: &[String]) -> i64 {
    #[allow(clippy::disallowed_methods)] // the epoch of the virtual clock
    let now = Instant::now();
    let mut server =
        common::Server::new(shards, common::shards_reply(shards), ClientConfig::new(Vec::new()), now);
    let topo = server.client.topology().expect("known").clone();
    for shard in topo.shards() {
        let slot = shard.slots[0].start();
        server.submit(Request::command(Cmd::new("GET").arg(format!("{{{}}}:key", tags[slot.index()]))));
    }
    drop(topo);
    let region = Region::new(GLOBAL);
    for _ in 0..refreshes {
        server.refresh();
    }
    let s = region.change();
    drop(server);
    held(&s)
}

fn refreshes(tags: &[String]) {
    println!("## Client memory after topology refreshes (each asked of another primary)\n");
    println!("| shards | reply bytes | refreshes | client holds afterwards (bytes) | per refresh |");
    println!("|---|---|---|---|---|");
    for shards in [30usize, 100, 500, 1000] {
        let reply = common::shards_reply(shards).len();
        let n = 20.min(shards);
        let bytes = after_refreshes(shards, n, tags);
        println!("| {shards} | {reply} | {n} | {bytes} | {:.0} |", bytes as f64 / n as f64);
    }
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let tags = common::tags();
    topology();
    connections(&tags);
    pending();
    refreshes(&tags);
}
