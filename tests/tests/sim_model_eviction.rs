//! Simulation model: eviction under `maxmemory`. With `allkeys-lru` a node over its limit
//! evicts (old keys first, so a cache sees misses, not errors), and the evictions are
//! replicated; with `noeviction` writes fail with `OOM` while deletions still work; with
//! `volatile-ttl` only keys with a TTL go. `CONFIG GET/SET` read and change the knobs.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::Value;
use slotcache_core::client::{Cmd, RequestError};
use slotcache_tests::sim::{EvictionPolicy, Sim, SimCluster, addr};

fn payload() -> String {
    "x".repeat(1000)
}

#[test]
fn allkeys_lru_turns_old_entries_into_misses() {
    let mut c = SimCluster::new(1, 1);
    c.set_maxmemory(&addr(0), 50_000, EvictionPolicy::AllKeysLru);
    let mut sim = Sim::new(c, Sim::config(), 31);
    for i in 0..200 {
        sim.call(Cmd::new("SET").arg(format!("k{i}")).arg(payload())).expect("writes never fail");
    }
    let node = &sim.cluster.nodes[&addr(0)];
    assert!(node.evicted > 100, "evicted {}", node.evicted);
    assert!(node.data.used_memory() <= 50_000 + 1200, "about the limit: {}", node.data.used_memory());
    let misses = (0..50)
        .filter(|i| sim.call(Cmd::new("GET").arg(format!("k{i}"))).expect("get") == Value::Nil)
        .count();
    let recent_hits = (190..200)
        .filter(|i| sim.call(Cmd::new("GET").arg(format!("k{i}"))).expect("get") != Value::Nil)
        .count();
    assert!(misses > 40, "old entries are gone: {misses} misses of 50");
    assert!(recent_hits >= 8, "recent ones mostly survive: {recent_hits} of 10");
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        sim.cluster.nodes[&addr(1)].data.len(),
        sim.cluster.nodes[&addr(0)].data.len(),
        "evictions replicate"
    );
}

#[test]
fn noeviction_answers_oom_but_deletes_still_work() {
    let mut sim = Sim::new(SimCluster::new(1, 0), Sim::config(), 32);
    sim.call_node(&addr(0), Cmd::new("CONFIG").arg("SET").arg("maxmemory").arg(20_000)).expect("config set");
    let v = sim.call_node(&addr(0), Cmd::new("CONFIG").arg("GET").arg("maxmemory*")).expect("config get");
    let want = [("maxmemory", "20000"), ("maxmemory-policy", "noeviction")];
    let pairs: Vec<(Value, Value)> = want
        .iter()
        .map(|(k, v)| {
            (Value::Bulk(Bytes::from_static(k.as_bytes())), Value::Bulk(Bytes::from_static(v.as_bytes())))
        })
        .collect();
    assert!(
        v == Value::Map(pairs.clone())
            || v == Value::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        "{v:?}"
    );
    let mut oom = None;
    for i in 0..100 {
        match sim.call(Cmd::new("SET").arg(format!("k{i}")).arg(payload())) {
            Ok(_) => {}
            Err(e) => {
                oom = Some((i, e));
                break;
            }
        }
    }
    let (i, e) = oom.expect("OOM once over the limit");
    assert!(
        matches!(&e, RequestError::Server(s) if s.to_string().starts_with("OOM command not allowed")),
        "{e}"
    );
    assert!((15..25).contains(&i), "about 20 KB fit: {i}");
    assert_eq!(sim.cluster.nodes[&addr(0)].evicted, 0);
    sim.call(Cmd::new("DEL").arg("k0").arg("k1").arg("k2")).expect("DEL is allowed over the limit");
    sim.call(Cmd::new("SET").arg("again").arg("small")).expect("room again");
}

#[test]
fn volatile_ttl_evicts_only_keys_with_a_ttl_soonest_first() {
    let mut c = SimCluster::new(1, 0);
    c.set_maxmemory(&addr(0), 40_000, EvictionPolicy::VolatileTtl);
    let mut sim = Sim::new(c, Sim::config(), 33);
    for i in 0..10 {
        sim.call(Cmd::new("SET").arg(format!("p{i}")).arg(payload())).expect("persistent");
    }
    for i in 0..40 {
        sim.call(Cmd::new("SET").arg(format!("v{i}")).arg(payload()).arg("PX").arg(100_000 + i * 1000))
            .expect("set");
    }
    for i in 0..10 {
        assert_ne!(sim.call(Cmd::new("GET").arg(format!("p{i}"))).expect("get"), Value::Nil, "p{i} kept");
    }
    let gone_early =
        (0..10).filter(|i| sim.cluster.get(&addr(0), format!("v{i}").as_bytes()).is_none()).count();
    let gone_late =
        (30..40).filter(|i| sim.cluster.get(&addr(0), format!("v{i}").as_bytes()).is_none()).count();
    assert!(gone_early > gone_late, "nearest expiries go first: {gone_early} vs {gone_late}");
}
