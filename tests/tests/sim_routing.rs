//! Simulation: the first topology comes from a seed, and every command reaches the slot's owner:
//! single keys in every slot range, MGET/DEL split per slot and reassembled in order, pipelines
//! across slots, and DBSIZE fanned out to the primaries and summed.

use bytes::Bytes;
use slotcache_core::client::{Cmd, Reply, Request};
use slotcache_core::{Value, key_slot};
use slotcache_tests::sim::{Sim, SimCluster};

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn keys_in_every_slot_range_reach_their_owner() {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 1);
    let keys: Vec<String> = (0..300).map(|i| format!("key:{i}")).collect();
    for k in &keys {
        sim.call(Cmd::new("SET").arg(k.as_str()).arg(format!("v-{k}"))).expect("set");
    }
    for k in &keys {
        assert_eq!(sim.call(Cmd::new("GET").arg(k.as_str())).expect("get"), bulk(&format!("v-{k}")));
        let owner = sim.cluster.owner_of(k.as_bytes());
        assert!(sim.cluster.nodes[&owner].data.contains_key(k.as_bytes()), "{k} stored on its slot's owner");
    }
    // Each primary got a share, and no request needed a redirect.
    for p in sim.cluster.primaries() {
        assert!(sim.cluster.count(&p, "SET") > 50, "{p} served its slots");
    }
    assert_eq!(sim.client.stats().moved, 0);
    assert_eq!(sim.cluster.count_all("CLUSTER SHARDS"), 1, "one topology query at start-up");
}

#[test]
fn mget_split_per_slot_comes_back_in_caller_order() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 2);
    let keys: Vec<String> = (0..100).map(|i| format!("m:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            sim.call(Cmd::new("SET").arg(k.as_str()).arg(i.to_string())).expect("set");
        }
    }
    let mut mget = Cmd::new("MGET");
    for k in &keys {
        mget.push_arg(k.as_str());
    }
    let slots: std::collections::BTreeSet<_> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    assert!(slots.len() > 50, "the keys span many slots");
    let Value::Array(values) = sim.call(mget).expect("mget") else { panic!("array") };
    assert_eq!(values.len(), keys.len());
    for (i, v) in values.iter().enumerate() {
        let want = if i % 3 == 0 { Value::Nil } else { bulk(&i.to_string()) };
        assert_eq!(v, &want, "position {i}");
    }
    // DEL across slots sums the per-slot counts.
    let mut del = Cmd::new("DEL");
    for k in &keys {
        del.push_arg(k.as_str());
    }
    assert_eq!(sim.call(del).expect("del"), Value::Int(66));
}

#[test]
fn pipeline_across_slots_keeps_order_and_fanout_sums() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 3);
    let cmds: Vec<Cmd> = (0..60)
        .flat_map(|i| {
            [Cmd::new("SET").arg(format!("p:{i}")).arg(i.to_string()), Cmd::new("GET").arg(format!("p:{i}"))]
        })
        .collect();
    let id = sim.submit(Request::pipeline(cmds));
    let Reply::Pipeline(results) = sim.wait(id).expect("pipeline") else { panic!("pipeline reply") };
    assert_eq!(results.len(), 120);
    for i in 0..60 {
        assert_eq!(results[2 * i].as_ref().expect("set"), &Value::Simple(Bytes::from_static(b"OK")));
        assert_eq!(results[2 * i + 1].as_ref().expect("get"), &bulk(&i.to_string()));
    }
    assert_eq!(sim.call(Cmd::new("DBSIZE")).expect("dbsize"), Value::Int(60));
    let id = sim.submit(Request::all_primaries(Cmd::new("DBSIZE")));
    let Reply::PerNode(per) = sim.wait(id).expect("per node") else { panic!("per-node reply") };
    assert_eq!(per.len(), 3);
    let sum: i64 = per.iter().map(|(_, r)| r.as_ref().expect("dbsize").as_int().expect("int")).sum();
    assert_eq!(sum, 60);
}

#[test]
fn cross_slot_commands_that_cannot_split_are_refused_before_sending() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 4);
    let err = sim.client.submit(sim.now, Request::command(Cmd::new("RENAME").arg("a").arg("b")));
    assert!(
        matches!(err, Err(slotcache_core::client::SubmitError::CrossSlot { .. })),
        "RENAME a b spans two slots: {err:?}"
    );
    let ok = sim.client.submit(sim.now, Request::command(Cmd::new("RENAME").arg("{t}a").arg("{t}b")));
    assert!(ok.is_ok(), "hash tags put both keys in one slot");
}
