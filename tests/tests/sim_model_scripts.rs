//! Simulation model: scripts through the real client and the cache's own command plans. Each
//! node has its own script cache: `EVALSHA` answers `NOSCRIPT` until `EVAL` (or `SCRIPT LOAD`)
//! ran on that node, again after `SCRIPT FLUSH`, after a restart, and on a promoted replica
//! (scripts are not replicated). The native `TAG_WRITE` / `TAG_INVALIDATE` do what the Lua does,
//! read back with the cache's own reply readers.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::cache::plan::{self, Tags};
use slotcache_core::cache::scripts::TAG_WRITE;
use slotcache_core::client::{Cmd, RequestError};
use slotcache_core::{Namespace, ServerErrorKind, Value};
use slotcache_tests::sim::{Sim, SimCluster, addr};

fn is_noscript(r: &Result<Value, RequestError>) -> bool {
    matches!(r, Err(RequestError::Server(e)) if e.kind() == &ServerErrorKind::NoScript)
}

/// `TAG_WRITE` of `member` into `tag` by SHA, falling back to `EVAL` on NOSCRIPT as the cache
/// does; returns (token, whether NOSCRIPT was seen).
fn tag_write(sim: &mut Sim, ns: &Namespace, tag: &[u8], member: &[u8], fresh: &str) -> (Bytes, bool) {
    let tags = Tags::new(ns);
    let member = ns.data_key(member);
    let cmd = tags.write(tag, &member, Some(60_000), Bytes::from(fresh.to_owned()), true).expect("cmd");
    let first = sim.call(cmd.clone());
    let (v, noscript) = if is_noscript(&first) {
        (sim.call(plan::as_eval(&cmd, &TAG_WRITE)).expect("eval"), true)
    } else {
        (first.expect("evalsha"), false)
    };
    (plan::read_token_written(v).expect("token"), noscript)
}

#[test]
fn noscript_until_eval_then_after_flush_restart_and_promotion() {
    let mut c = SimCluster::new(1, 1);
    c.set_replication_lag(&addr(1), Duration::from_millis(1), Duration::ZERO);
    let mut sim = Sim::new(c, Sim::config(), 11);
    let ns = Namespace::new("users").expect("ns");
    let (tok, noscript) = tag_write(&mut sim, &ns, b"admins", b"alice", "T1");
    assert!(noscript, "a fresh node has no scripts");
    assert_eq!(tok, Bytes::from("T1"));
    let (tok, noscript) = tag_write(&mut sim, &ns, b"admins", b"bob", "T2");
    assert!(!noscript, "EVAL cached it");
    assert_eq!(tok, Bytes::from("T1"), "the tag keeps its token");

    sim.call_node(&addr(0), Cmd::new("SCRIPT").arg("FLUSH")).expect("flush");
    assert!(tag_write(&mut sim, &ns, b"admins", b"carol", "T3").1, "NOSCRIPT after SCRIPT FLUSH");
    assert!(!tag_write(&mut sim, &ns, b"admins", b"carol", "T3").1);

    sim.restart(&addr(0), true);
    sim.run_for(Duration::from_millis(50));
    assert!(tag_write(&mut sim, &ns, b"admins", b"dave", "T4").1, "NOSCRIPT after a restart");

    // The replica saw every write, but no script: promoted, it answers NOSCRIPT.
    sim.run_for(Duration::from_millis(10));
    sim.cluster.manual_failover(&addr(1));
    sim.run_for(Duration::from_millis(10));
    let (tok, noscript) = tag_write(&mut sim, &ns, b"admins", b"erin", "T5");
    assert!(noscript, "NOSCRIPT on the promoted replica");
    assert_eq!(tok, Bytes::from("T1"), "the tag itself was replicated");
    let exists =
        sim.call_node(&addr(1), Cmd::new("SCRIPT").arg("EXISTS").arg(TAG_WRITE.sha1())).expect("exists");
    assert_eq!(exists, Value::Array(vec![Value::Int(1)]));
}

#[test]
fn native_tag_invalidate_does_what_the_lua_does() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 12);
    let ns = Namespace::new("users").expect("ns");
    let tags = Tags::new(&ns);
    for m in [&b"alice"[..], b"bob"] {
        tag_write(&mut sim, &ns, b"admins", m, "OLD");
    }
    // A member written with a short TTL is not returned once expired.
    let short =
        tags.write(b"admins", &ns.data_key(b"gone"), Some(10), Bytes::from_static(b"x"), false).expect("cmd");
    sim.call(short).expect("tag write");
    sim.run_for(Duration::from_millis(20));

    let inv = tags.invalidate(b"admins", Bytes::from_static(b"NEW"), false).expect("cmd");
    let v = sim.call(inv).expect("invalidate");
    let (old, listed) = plan::read_invalidated(v).expect("read").expect("had a token");
    let mut members: Vec<Bytes> = listed.into_iter().map(|l| l.member).collect();
    members.sort();
    assert_eq!(old, Bytes::from("OLD"));
    assert_eq!(members, vec![ns.data_key(b"alice").bytes().clone(), ns.data_key(b"bob").bytes().clone()]);
    // The tag now holds only the new token, which reads back through the plan's token query.
    let cur = sim.call(tags.read_token(b"admins").expect("cmd")).expect("token");
    assert_eq!(plan::read_current_token(cur).expect("read"), Some(Bytes::from("NEW")));
    let key = tags.key(b"admins").expect("key");
    let all = sim.call(Cmd::new("ZCARD").arg(key.bytes().clone())).expect("zcard");
    assert_eq!(all, Value::Int(1), "members removed, token kept");
    // Invalidating a tag that never existed answers {false, {}}.
    let v = sim.call(tags.invalidate(b"nobody", Bytes::from_static(b"N"), false).expect("cmd")).expect("inv");
    assert_eq!(plan::read_invalidated(v).expect("read"), None);
}

#[test]
fn a_script_the_registry_does_not_know_is_an_error_saying_so() {
    let mut sim = Sim::new(SimCluster::new(1, 0), Sim::config(), 13);
    let err = sim.call(Cmd::new("EVAL").arg("return 42").arg(1).arg("k")).expect_err("unknown");
    assert!(err.to_string().contains("no native version of script"), "{err}");
}
