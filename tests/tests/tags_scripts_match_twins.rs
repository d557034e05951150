//! The native twins of the tag scripts (`slotcache_memory::tag_scripts`, the simulator's and
//! the in-memory provider's) do what the Lua does on a real Valkey: one sequence of
//! `TAG_WRITE`, `TAG_LEAVE`, `TAG_INVALIDATE`, `TAG_RELIST`, `TAG_TOUCH` (sliding expiry's
//! renewal of memberships) runs by raw `EVAL` on a real master, on a simulated node and on the
//! in-memory provider's node, and the three transcripts (each reply, then the tag key's `PTTL`
//! and members) must be equal. Times are relative to each node's own clock and rounded up to
//! the second, so the few milliseconds the real run takes do not count.
//!
//! The sequence walks the expiry rule of A5 (see `tags_never_member_leaves.rs`): a member
//! without expiry makes the key persistent, the last one leaving gives the key back the expiry
//! of its longest-lived member, a persistent key left with its token alone takes the grace, a
//! re-listing restores persistence and gives a key that lost its token a fresh one.

mod cache_support;

use bytes::Bytes;
use slotcache_core::cache::scripts::{TAG_INVALIDATE, TAG_LEAVE, TAG_RELIST, TAG_TOUCH, TAG_WRITE};
use slotcache_rt::{MemoryServer, Value};
use slotcache_tests::Cluster;
use slotcache_tests::sim::{Session, SimCluster, addr};

use cache_support::{cluster, shared};

const LABEL: &str = "tags-scripts-match-twins";

/// Where the sequence runs.
trait Node {
    fn call(&mut self, args: &[&[u8]]) -> Value;
}

struct Real<'a> {
    c: &'a Cluster,
    node: usize,
}

impl Node for Real<'_> {
    fn call(&mut self, args: &[&[u8]]) -> Value {
        self.c.cmd(self.node, args).expect("command")
    }
}

struct Simulated {
    c: SimCluster,
    s: Session,
}

impl Node for Simulated {
    fn call(&mut self, args: &[&[u8]]) -> Value {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        self.c.execute(&addr(0), &args, &mut self.s)
    }
}

/// The in-memory provider's node (the same twins, run through `slotcache_memory::Node`).
struct InMemory(MemoryServer);

impl Node for InMemory {
    fn call(&mut self, args: &[&[u8]]) -> Value {
        self.0.command(args)
    }
}

/// The node's clock in ms (`TIME`).
fn now_ms(n: &mut dyn Node) -> u64 {
    let Value::Array(t) = n.call(&[b"TIME"]) else { panic!("TIME") };
    let part = |i: usize| -> u64 {
        std::str::from_utf8(t[i].as_bytes().expect("TIME part")).expect("utf-8").parse().expect("number")
    };
    part(0) * 1000 + part(1) / 1000
}

/// Milliseconds from now, rounded up to the second (`+9s`), or the value as it is.
fn rel(now: u64, score: &[u8]) -> String {
    match std::str::from_utf8(score).ok().and_then(|s| s.parse::<f64>().ok()) {
        Some(f) if f.is_finite() && f > 1e9 => format!("+{}s", ((f - now as f64) / 1000.0).ceil()),
        _ => String::from_utf8_lossy(score).replace('\0', "\\0"),
    }
}

fn show(now: u64, v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(i) => i.to_string(),
        Value::Bulk(b) | Value::Simple(b) => rel(now, b),
        Value::Array(a) => format!("[{}]", a.iter().map(|x| show(now, x)).collect::<Vec<_>>().join(" ")),
        other => format!("{other:?}"),
    }
}

/// Runs the sequence on `tag` of node `n`, returning its transcript.
fn transcript(n: &mut dyn Node, tag: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut step = |n: &mut dyn Node, what: &str, src: &str, argv: &[&[u8]]| {
        let mut args: Vec<&[u8]> = vec![b"EVAL", src.as_bytes(), b"1", tag];
        args.extend_from_slice(argv);
        let reply = n.call(&args);
        let now = now_ms(n);
        let pttl = match n.call(&[b"PTTL", tag]) {
            Value::Int(t) if t > 0 => format!("+{}s", (t + 999) / 1000),
            other => show(now, &other),
        };
        let members = show(now, &n.call(&[b"ZRANGE", tag, b"0", b"-1", b"WITHSCORES"]));
        out.push(format!("{what}: {} | pttl {pttl} | {members}", show(now, &reply)));
    };
    step(n, "write d1 1 s", TAG_WRITE.source, &[b"d1", b"1000", b"T1"]);
    step(n, "write d2 forever", TAG_WRITE.source, &[b"d2", b"", b"T2"]);
    step(n, "write d3 9 s", TAG_WRITE.source, &[b"d3", b"9000", b"x"]);
    step(n, "rewrite d2 3 s", TAG_WRITE.source, &[b"d2", b"3000", b"x"]);
    step(n, "rewrite d2 forever", TAG_WRITE.source, &[b"d2", b"", b"x"]);
    step(n, "write d4 forever", TAG_WRITE.source, &[b"d4", b"", b"x"]);
    step(n, "d4 leaves", TAG_LEAVE.source, &[b"d4", b"nope"]);
    step(n, "d2 leaves", TAG_LEAVE.source, &[b"d2"]);
    step(n, "nothing leaves", TAG_LEAVE.source, &[b"nope"]);
    step(n, "write d2 forever", TAG_WRITE.source, &[b"d2", b"", b"x"]);
    step(n, "invalidate", TAG_INVALIDATE.source, &[b"N1"]);
    let later = (now_ms(n) + 5000).to_string();
    step(n, "relist", TAG_RELIST.source, &[b"F", b"inf", b"d2", later.as_bytes(), b"d3"]);
    step(n, "d2 leaves", TAG_LEAVE.source, &[b"d2"]);
    step(n, "invalidate", TAG_INVALIDATE.source, &[b"N2"]);
    step(n, "invalidate again", TAG_INVALIDATE.source, &[b"N3"]);
    n.call(&[b"DEL", tag]);
    step(n, "relist into nothing", TAG_RELIST.source, &[b"F9", later.as_bytes(), b"d5"]);
    n.call(&[b"DEL", tag]);
    step(n, "relist expired into nothing", TAG_RELIST.source, &[b"F8", b"1000", b"d6"]);
    step(n, "invalidate (expired member)", TAG_INVALIDATE.source, &[b"N4"]);
    n.call(&[b"DEL", tag]);
    step(n, "invalidate nothing", TAG_INVALIDATE.source, &[b"N5"]);
    step(n, "leave nothing", TAG_LEAVE.source, &[b"d1"]);
    step(n, "touch without token", TAG_TOUCH.source, &[b"5000", b"d1"]);
    step(n, "write d1 1 s", TAG_WRITE.source, &[b"d1", b"1000", b"T9"]);
    step(n, "touch d1 and unlisted d7 20 s", TAG_TOUCH.source, &[b"20000", b"d1", b"d7"]);
    step(n, "touch d1 5 s (never lowered)", TAG_TOUCH.source, &[b"5000", b"d1"]);
    step(n, "write d8 forever", TAG_WRITE.source, &[b"d8", b"", b"x"]);
    step(n, "touch d8 and d1 30 s", TAG_TOUCH.source, &[b"30000", b"d8", b"d1"]);
    out
}

#[test]
fn the_twins_do_what_the_lua_does_on_valkey() {
    let c = cluster(LABEL);
    let _g = shared();
    let tag = format!("tag:{{twins-{}}}", std::process::id());
    let node = c.owner_of_key(tag.as_bytes()).expect("owner");
    let real = transcript(&mut Real { c: &c, node }, tag.as_bytes());
    let sim = transcript(&mut Simulated { c: SimCluster::new(1, 0), s: Session::default() }, tag.as_bytes());
    for (r, s) in real.iter().zip(&sim) {
        eprintln!("valkey: {r}\n   sim: {s}");
    }
    assert_eq!(real, sim);
    let memory = transcript(&mut InMemory(MemoryServer::new()), tag.as_bytes());
    assert_eq!(real, memory, "the in-memory provider's node");
    // The transcript says what the rule is (a few landmarks).
    assert!(real[1].contains("pttl -1"), "{}", real[1]);
    assert!(real[3].contains("pttl +9s"), "{}", real[3]);
    assert!(real[7].contains("pttl +9s"), "{}", real[7]);
    assert!(real[10].contains("pttl +60s"), "{}", real[10]);
    assert!(real[11].contains("pttl -1"), "{}", real[11]);
    let n = real.len();
    assert!(real[n - 4].contains("pttl +20s"), "{}", real[n - 4]);
    assert!(real[n - 3].contains("pttl +20s"), "{}", real[n - 3]);
    assert!(real[n - 1].contains("pttl -1"), "{}", real[n - 1]);
}
