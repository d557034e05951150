//! Simulation: a slot migrating with the legacy flow. Moved keys are fetched with ASKING + the
//! command on the target, without touching the slot map; unmoved keys are still served by the
//! source; once the migration ends, one MOVED patches the map and later requests go straight to
//! the new owner.

use bytes::Bytes;
use slotcache_core::client::Cmd;
use slotcache_core::{Value, key_slot};
use slotcache_tests::sim::{Sim, SimCluster};

#[test]
fn ask_then_moved() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 21);
    for i in 0..5 {
        sim.call(Cmd::new("SET").arg(format!("{{m}}{i}")).arg(format!("v{i}"))).expect("set");
    }
    let slot = key_slot(b"{m}");
    let source = sim.cluster.owner_of(b"{m}");
    let target = sim.cluster.primaries().into_iter().find(|p| *p != source).expect("another primary");
    sim.cluster.start_migration(slot, &target);
    sim.cluster.migrate_key(b"{m}0");
    sim.cluster.migrate_key(b"{m}1");

    assert_eq!(sim.call(Cmd::new("GET").arg("{m}0")).expect("moved key"), Value::Bulk(Bytes::from("v0")));
    assert_eq!(sim.call(Cmd::new("GET").arg("{m}3")).expect("unmoved key"), Value::Bulk(Bytes::from("v3")));
    sim.call(Cmd::new("SET").arg("{m}new").arg("fresh")).expect("new key goes to the target");
    assert!(sim.cluster.nodes[&target].data.contains_key(b"{m}new".as_slice()));
    assert!(sim.cluster.count(&target, "ASKING") >= 2, "ASKING preceded the redirected commands");
    let stats = sim.client.stats();
    assert!(stats.ask >= 2, "{stats:?}");
    let t = sim.client.topology().expect("topology");
    assert_eq!(t.primary(slot).map(|n| n.addr.clone()), Some(source), "ASK never changes the map");

    sim.cluster.finish_migration(slot);
    assert_eq!(
        sim.call(Cmd::new("GET").arg("{m}3")).expect("after migration"),
        Value::Bulk(Bytes::from("v3"))
    );
    let moved = sim.client.stats().moved;
    assert!(moved >= 1);
    for i in 0..5 {
        sim.call(Cmd::new("GET").arg(format!("{{m}}{i}"))).expect("get");
    }
    assert_eq!(sim.client.stats().moved, moved, "the map was patched: no further MOVED");
    let t = sim.client.topology().expect("topology");
    assert_eq!(t.primary(slot).map(|n| n.addr.clone()), Some(target));
}
