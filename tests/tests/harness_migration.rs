//! Slot migrations (legacy and Valkey 9 atomic) and adding/removing nodes.

use slotcache_core::key_slot;
use slotcache_tests::{ClusterBuilder, DRILL_TIMEOUT, key_for_slot, resp};

#[test]
fn legacy_migration_shows_ask_asking_and_tryagain() {
    let c = ClusterBuilder::new().replicas(0).label("mig-legacy").start().unwrap();
    let slot = key_slot(b"{t2}").get();
    assert_eq!(slot, 4748);
    let (from, to) = (0, 1);
    assert_eq!(c.slot_owner(slot).unwrap(), Some(from));
    for i in 1..=5 {
        assert_eq!(c.cmd_text(from, ["SET", &format!("{{t2}}:k{i}"), &format!("v{i}")]).unwrap(), "OK");
    }
    let m = c.begin_legacy_migration(slot, from, to).unwrap();
    m.move_keys(&c, &["{t2}:k1", "{t2}:k2"]).unwrap();

    let to_addr = c.node(to).addr();
    let ask = resp::redirect(&c.cmd(from, ["GET", "{t2}:k1"]).unwrap()).unwrap();
    assert!(ask.ask, "a moved key answers ASK");
    assert_eq!((ask.slot, &ask.addr), (slot, &to_addr));
    assert_eq!(c.cmd_text(from, ["GET", "{t2}:k3"]).unwrap(), "v3", "an unmoved key is still served");
    let ask_new = resp::redirect(&c.cmd(from, ["SET", "{t2}:new", "x"]).unwrap()).unwrap();
    assert!(ask_new.ask, "a new key in a migrating slot is sent on with ASK");

    let moved = resp::redirect(&c.cmd(to, ["GET", "{t2}:k1"]).unwrap()).unwrap();
    assert!(!moved.ask, "the target answers MOVED without ASKING");
    assert_eq!(moved.addr, c.node(from).addr());
    let mut conn = c.conn(to).unwrap();
    conn.cmd_ok(["ASKING"]).unwrap();
    assert_eq!(conn.cmd(["GET", "{t2}:k1"]).unwrap().as_str(), Some("v1"));

    let err = resp::error_text(&c.cmd(from, ["MGET", "{t2}:k1", "{t2}:k3"]).unwrap()).unwrap();
    assert!(err.starts_with("TRYAGAIN"), "{err}");

    assert_eq!(m.move_all(&c).unwrap(), 3);
    m.finish(&c).unwrap();
    for v in [from, 2] {
        let r = resp::redirect(&c.cmd(v, ["GET", "{t2}:k1"]).unwrap()).unwrap();
        assert!(!r.ask);
        assert_eq!(r.addr, to_addr, "node {v} sends clients to the new owner");
    }
    for i in 1..=5 {
        assert_eq!(c.cmd_text(to, ["GET", &format!("{{t2}}:k{i}")]).unwrap(), format!("v{i}"));
    }
    c.wait_state_ok(DRILL_TIMEOUT).unwrap();
}

#[test]
fn atomic_migration_moves_slots_and_data() {
    let c = ClusterBuilder::new().label("mig-atomic").start().unwrap();
    let (from, to, lo, hi) = (0, 1, 1000u16, 1099u16);
    let keys: Vec<String> = (lo..=hi).map(|s| key_for_slot(s, "atomic")).collect();
    for k in &keys {
        assert_eq!(c.cmd_text(from, ["SET", k.as_str(), k.as_str()]).unwrap(), "OK");
    }
    let d = c.migrate_slots(from, to, lo, hi).unwrap();
    eprintln!("[timing] atomic migration of 100 slots / 100 keys: {d:?}");
    for k in &keys {
        assert_eq!(c.cmd_text(to, ["GET", k.as_str()]).unwrap(), *k);
        let r = resp::redirect(&c.cmd(from, ["GET", k.as_str()]).unwrap()).unwrap();
        assert!(!r.ask, "atomic migration leaves MOVED, never ASK");
        assert_eq!(r.addr, c.node(to).addr());
    }
    for v in c.live() {
        assert_eq!(c.slot_owner_seen_by(v, lo).unwrap(), Some(to));
        assert_eq!(c.slot_owner_seen_by(v, hi).unwrap(), Some(to));
        assert_eq!(c.slot_owner_seen_by(v, hi + 1).unwrap(), Some(from));
    }
    // A single slot (Valkey lists that job as "1100-1100").
    let one = key_for_slot(hi + 1, "atomic-one");
    assert_eq!(c.cmd_text(from, ["SET", one.as_str(), "one"]).unwrap(), "OK");
    c.migrate_slots(from, to, hi + 1, hi + 1).unwrap();
    assert_eq!(c.cmd_text(to, ["GET", one.as_str()]).unwrap(), "one");
    assert_eq!(c.slot_owner_seen_by(to, hi + 1).unwrap(), Some(to));
    // The target's replica followed.
    let mut rc = c.conn(to + 3).unwrap();
    rc.cmd_ok(["READONLY"]).unwrap();
    slotcache_tests::wait_until(DRILL_TIMEOUT, "the target's replica to have the keys", || {
        Ok(rc.cmd(["GET", keys[0].as_str()])?.as_str() == Some(keys[0].as_str()))
    })
    .unwrap();
}

#[test]
fn add_a_master_give_it_slots_then_remove_it() {
    let mut c = ClusterBuilder::new().replicas(0).label("mig-addremove").start().unwrap();
    let n = c.add_master().unwrap();
    assert_eq!(n, 3);
    for v in c.live() {
        assert_eq!(c.cluster_nodes(v).unwrap().len(), 4, "node {v} knows the new node");
    }
    assert_eq!(c.masters().unwrap(), vec![0, 1, 2], "an empty master serves nothing yet");

    let key = key_for_slot(10, "moving");
    assert_eq!(c.cmd_text(0, ["SET", key.as_str(), "here"]).unwrap(), "OK");
    c.migrate_slots(0, n, 0, 99).unwrap();
    assert_eq!(c.masters().unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(c.cmd_text(n, ["GET", key.as_str()]).unwrap(), "here");

    // A replica for the new master, then remove it again.
    let r = c.add_replica(n).unwrap();
    assert_eq!(c.master_of(r).unwrap(), Some(n));
    c.remove_node(r).unwrap();
    assert!(c.node(r).is_removed() && !c.node(r).is_running());

    // The master cannot go while it serves slots; move them home first.
    assert!(c.remove_node(n).is_err());
    c.migrate_slots(n, 0, 0, 99).unwrap();
    c.remove_node(n).unwrap();
    for v in c.live() {
        let nodes = c.cluster_nodes(v).unwrap();
        assert_eq!(nodes.len(), 3, "node {v} forgot the removed nodes");
    }
    c.wait_healthy(DRILL_TIMEOUT).unwrap();
    assert_eq!(c.cmd_text(0, ["GET", key.as_str()]).unwrap(), "here");
}
