//! Simulation model: scripts during a legacy migration, and the atomic migration.
//!
//! - Legacy (`MIGRATING`/`IMPORTING`): a script whose key already moved gets `ASK` from the
//!   source; the client sends `ASKING` + the script to the target, where it runs. A script that
//!   deletes its key and then touches it again fails half-way on the source ("non local key"),
//!   keeping the deletion: the hazard `TAG_INVALIDATE` is written to avoid.
//! - Atomic (`CLUSTER MIGRATESLOTS`): the slot's keys move at one instant; clients see the
//!   value at the source, then `MOVED`, never `ASK`.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::cache::plan::{self, Tags};
use slotcache_core::client::{Cmd, Request};
use slotcache_core::{Namespace, Value, key_slot};
use slotcache_tests::sim::script_host::ScriptCtx;
use slotcache_tests::sim::trace::TraceKind;
use slotcache_tests::sim::{Sim, SimCluster};

#[test]
fn a_script_on_a_moved_key_is_asked_to_the_target_and_runs_there() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 41);
    let ns = Namespace::new("users").expect("ns");
    let tags = Tags::new(&ns);
    let w = tags.write(b"t", &ns.data_key(b"alice"), None, Bytes::from_static(b"OLD"), false).expect("cmd");
    sim.call(w).expect("tag write");
    let key = tags.key(b"t").expect("key");
    let slot = key.slot();
    let source = sim.cluster.owner_of(key.bytes());
    let target = sim.cluster.primaries().into_iter().find(|p| *p != source).expect("target");
    sim.cluster.start_migration(slot, &target);
    sim.cluster.migrate_key(key.bytes());
    let v =
        sim.call(tags.invalidate(b"t", Bytes::from_static(b"NEW"), false).expect("cmd")).expect("invalidate");
    let (old, members) = plan::read_invalidated(v).expect("read").expect("token");
    assert_eq!(old, Bytes::from("OLD"));
    let members: Vec<Bytes> = members.into_iter().map(|l| l.member).collect();
    assert_eq!(members, vec![ns.data_key(b"alice").bytes().clone()]);
    assert!(sim.cluster.count(&target, "ASKING") >= 1);
    assert!(sim.client.stats().ask >= 1);
    assert!(sim.cluster.nodes[&target].data.contains_key(key.bytes()));
    assert!(!sim.cluster.nodes[&source].data.contains_key(key.bytes()));
}

fn del_then_zadd(cx: &mut ScriptCtx<'_>, keys: &[Bytes], _: &[Bytes]) -> Result<Value, String> {
    cx.call(&[b"DEL", &keys[0]])?;
    cx.call(&[b"ZADD", &keys[0], b"-1", b"x"])
}

#[test]
fn a_script_that_deletes_its_key_in_a_migrating_slot_fails_half_way() {
    let mut c = SimCluster::new(3, 0);
    let src = "redis.call('DEL', KEYS[1]) return redis.call('ZADD', KEYS[1], -1, 'x')";
    c.scripts.register("del_then_zadd", src, del_then_zadd);
    let mut sim = Sim::new(c, Sim::config(), 42);
    sim.call(Cmd::new("ZADD").arg("{h}k").arg(1).arg("a")).expect("zadd");
    let slot = key_slot(b"{h}k");
    let source = sim.cluster.owner_of(b"{h}k");
    let target = sim.cluster.primaries().into_iter().find(|p| *p != source).expect("target");
    sim.cluster.start_migration(slot, &target);
    let err = sim.call(Cmd::new("EVAL").arg(src).arg(1).arg("{h}k")).expect_err("non local key");
    assert!(err.to_string().contains("Script attempted to access a non local key"), "{err}");
    assert!(!sim.cluster.nodes[&source].data.contains_key(b"{h}k"), "the DEL before the failure stays");
}

#[test]
fn atomic_migration_never_answers_ask() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 43);
    sim.enable_trace(100_000);
    let keys: Vec<String> = (0..20).map(|i| format!("{{am}}{i}")).collect();
    for k in &keys {
        sim.call(Cmd::new("SET").arg(k.as_str()).arg("v1")).expect("set");
    }
    let slot = key_slot(b"{am}");
    let source = sim.cluster.owner_of(b"{am}");
    let target = sim.cluster.primaries().into_iter().find(|p| *p != source).expect("target");
    // Requests in flight on both sides of the move instant.
    let mut ids = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        ids.push(sim.submit(Request::command(Cmd::new("GET").arg(k.as_str()))));
        if i == 10 {
            sim.run_for(Duration::from_micros(150));
            sim.cluster.migrate_slot_atomic(slot, &target);
        }
    }
    for id in ids {
        let v = sim.wait(id).expect("served").into_value().expect("value");
        assert_eq!(v, Value::Bulk(Bytes::from("v1")));
    }
    for k in &keys {
        sim.call(Cmd::new("SET").arg(k.as_str()).arg("v2")).expect("set on the new owner");
    }
    assert_eq!(sim.client.stats().ask, 0);
    assert!(sim.client.stats().moved >= 1);
    assert_eq!(sim.cluster.count(&target, "ASKING"), 0);
    let asks = sim
        .trace()
        .expect("trace")
        .entries()
        .filter(|e| e.kind == TraceKind::Reply && e.text.contains("ASK "))
        .count();
    assert_eq!(asks, 0, "{}", sim.trace_dump());
    assert_eq!(sim.cluster.keys_in_slot(&target, slot).len(), 20);
    assert!(sim.cluster.keys_in_slot(&source, slot).is_empty());
    let t = sim.client.topology().expect("topology");
    assert_eq!(t.primary(slot).map(|n| n.addr.clone()), Some(target));
}
