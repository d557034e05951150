//! Simulation: a pipeline holding multi-key commands whose keys span slots (MSET, MGET, EXISTS,
//! DEL, UNLINK; the simulated nodes do not implement TOUCH, the real-cluster test covers it) splits each per slot and merges the parts back into that command's
//! result, in the pipeline's order; the parts reach each key's owner.

use bytes::Bytes;
use slotcache_core::client::{Cmd, Reply, Request};
use slotcache_core::{Value, key_slot};
use slotcache_tests::sim::{Sim, SimCluster};

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn with_keys(name: &str, keys: &[String], values: bool) -> Cmd {
    let mut c = Cmd::new(name);
    for k in keys {
        c.push_arg(k.as_str());
        if values {
            c.push_arg(format!("v-{k}"));
        }
    }
    c
}

#[test]
fn cross_slot_commands_in_a_pipeline_are_split_and_merged_in_order() {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 11);
    let keys: Vec<String> = (0..40).map(|i| format!("x:{i}")).collect();
    let slots: std::collections::BTreeSet<_> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    assert!(slots.len() > 20, "the keys span many slots");
    let absent = ["x:absent:1".to_owned(), "x:absent:2".to_owned()];
    let mut mget_keys = keys.clone();
    mget_keys.extend(absent.iter().cloned());
    let id = sim.submit(Request::pipeline(vec![
        with_keys("MSET", &keys, true),
        Cmd::new("GET").arg("x:0"),
        with_keys("MGET", &mget_keys, false),
        with_keys("EXISTS", &mget_keys, false),
        with_keys("DEL", &keys[..20], false),
        with_keys("UNLINK", &keys[20..], false),
        with_keys("EXISTS", &keys, false),
    ]));
    let Reply::Pipeline(r) = sim.wait(id).expect("pipeline") else { panic!("pipeline reply") };
    assert_eq!(r.len(), 7, "one result per command");
    assert_eq!(r[0].as_ref().expect("mset"), &Value::Simple(Bytes::from_static(b"OK")));
    assert_eq!(r[1].as_ref().expect("get"), &bulk("v-x:0"));
    let Value::Array(values) = r[2].as_ref().expect("mget") else { panic!("array") };
    let want: Vec<Value> =
        keys.iter().map(|k| bulk(&format!("v-{k}"))).chain([Value::Nil, Value::Nil]).collect();
    assert_eq!(values, &want, "MGET values in the caller's key order");
    assert_eq!(r[3].as_ref().expect("exists"), &Value::Int(40));
    assert_eq!(r[4].as_ref().expect("del"), &Value::Int(20));
    assert_eq!(r[5].as_ref().expect("unlink"), &Value::Int(20));
    assert_eq!(r[6].as_ref().expect("exists after"), &Value::Int(0));
    // Every part went to its slot's owner: no redirect was needed.
    assert_eq!(sim.client.stats().moved, 0);
}
