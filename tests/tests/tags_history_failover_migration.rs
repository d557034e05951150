//! The tag guarantees checked on a recorded history while the source primary of a slot
//! migration is killed mid-migration and its replica promoted, against a real cluster (3
//! masters + 3 replicas, node timeout 1 s).
//!
//! The slots of the workload's tag keys and data keys that one master serves (the master
//! serving most of them) are opened for a legacy migration (`SETSLOT IMPORTING` / `MIGRATING`,
//! keys moved with `MIGRATE`: `ASK` for moved keys, `TRYAGAIN` for multi-key commands over both
//! sides), with four keys outside the namespace added to each (the workload deletes its own
//! keys, so only those are sure to be left); half of each slot's keys are moved; then that
//! master is killed with `SIGKILL`. Once its replica is promoted, the new primary carries the
//! migration on (it inherited the migrating state: Valkey replicates `SETSLOT` to replicas; if
//! it had not, the test sets it again and says so), moves the rest (`MIGRATE ... REPLACE`: it
//! may hold a key whose delete it never received while the key was written again on the
//! target) and ends it; the old primary comes back as a replica (made one if it came back as an
//! empty primary). Then the quiescent checks, the history check and the in-run count check.
//! Prints a `[figure]` line; asserts 0 violations, that operations failed while the source was
//! down, and that the promoted replica moved keys of the migration.

use std::time::{Duration, Instant};

use slotcache_core::key_slot;
use slotcache_tests::conformance::{Rt, info_number};
use slotcache_tests::history::Subject;
use slotcache_tests::history::run::{
    Disruption, Runner, Window, assert_clean, assert_windows_failed_operations, check_run, other_master,
    slotcache, start, wait_for_traffic,
};
use slotcache_tests::history::workload::Spec;
use slotcache_tests::wait::scaled;
use slotcache_tests::{
    ClusterBuilder, DRILL_TIMEOUT, Error, LegacyMigration, Role, key_for_slot, wait_until,
};

/// Whether node `i`'s own line in `CLUSTER NODES` shows `slot` migrating (`[slot->-<target>]`).
fn shows_migrating(c: &slotcache_tests::Cluster, i: usize, slot: u16) -> slotcache_tests::Result<bool> {
    let nodes = c.cmd_text(i, ["CLUSTER", "NODES"])?;
    let me = nodes.lines().find(|l| l.contains("myself")).unwrap_or_default();
    Ok(me.contains(&format!("[{slot}->-")))
}

#[test]
fn history_while_the_source_primary_fails_over_mid_migration() {
    let rt = Runner::new(Rt::AsyncStd);
    let mut cluster =
        start(ClusterBuilder::new().node_timeout(Duration::from_millis(1000)).label("hist-fo-migration"));
    let subject = slotcache(&rt, &cluster, "hist-fo-migration");
    let spec = Spec { max: Duration::from_secs(30), ..Spec::new(Duration::from_secs(3)) };
    // The slots of every tag key and data key of the workload; the master serving most of them.
    let mut keys: Vec<Vec<u8>> = spec.tag_names().iter().map(|t| subject.tag_key(t)).collect();
    keys.extend(spec.key_names().iter().map(|k| subject.data_key(k)));
    let mut hot: Vec<(u16, usize)> = keys
        .iter()
        .map(|k| key_slot(k).get())
        .map(|s| (s, cluster.slot_owner(s).expect("owner").expect("served")))
        .collect();
    hot.sort_unstable();
    hot.dedup();
    let masters = cluster.masters().expect("masters");
    let source =
        masters.iter().copied().max_by_key(|&m| hot.iter().filter(|h| h.1 == m).count()).expect("a master");
    let slots: Vec<u16> = hot.iter().filter(|h| h.1 == source).map(|h| h.0).collect();
    let replica = cluster.replicas_of(source).expect("replicas")[0];
    let target = other_master(&cluster, source);
    let mut carried_on = 0;
    let carried = &mut carried_on;
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c, clock| {
        wait_for_traffic(c, source, 300)?;
        let t0 = Instant::now();
        let mut open = Vec::new();
        let mut moved = 0;
        for (i, &s) in slots.iter().enumerate() {
            // Keys of no cache entry (outside the namespace) that the workload never deletes:
            // every slot keeps some to move after the failover.
            for f in 0..4 {
                c.cmd(source, ["SET", &key_for_slot(s, &format!("filler-{f}")), "x"])?;
            }
            let m = c.begin_legacy_migration(s, source, target)?;
            let keys = m.keys_left(c, 1000)?;
            // Half of each slot's keys; a slot of one key: every other slot moves it.
            let half = (keys.len() + i % 2) / 2;
            m.move_keys(c, &keys[..half])?;
            moved += half;
            open.push(m);
        }
        let replicated = slots.iter().all(|&s| shows_migrating(c, replica, s).unwrap_or(false));
        // The replica has the moves (their deletes on the source) before the kill.
        let offset = info_number(c, source, "replication", "master_repl_offset")?;
        wait_until(scaled(DRILL_TIMEOUT), "the replica to have the moves", || {
            Ok(info_number(c, replica, "replication", "slave_repl_offset")? >= offset)
        })?;
        let from = clock.now();
        c.kill(source)?;
        c.wait_promoted(replica, DRILL_TIMEOUT)?;
        let window = Window {
            name: format!("source {source} killed, until replica {replica} promoted"),
            from,
            to: clock.now(),
        };
        let promoted = t0.elapsed();
        let mut inherited = true;
        for m in &open {
            if !shows_migrating(c, replica, m.slot)? {
                inherited = false;
                c.conn(replica)?.cmd_ok([
                    "CLUSTER",
                    "SETSLOT",
                    &m.slot.to_string(),
                    "MIGRATING",
                    c.node(target).id(),
                ])?;
            }
        }
        let mut rest = 0;
        for m in open {
            let m = LegacyMigration { from: replica, ..m };
            rest += m.move_all_replacing(c)?;
            m.finish(c)?;
        }
        *carried = rest;
        for &s in &slots {
            if c.slot_owner(s)? != Some(target) {
                return Err(Error::new(format!("slot {s} did not end on node {target}")));
            }
        }
        c.restart(source)?;
        // A primary back to find its slots gone follows the node that took its last slot: its
        // replica after a failover; but if the last one went by migration, it stays an empty
        // primary (replica migration is off in the harness): then it is made the replica.
        let id = c.node(source).id().to_owned();
        wait_until(scaled(DRILL_TIMEOUT), "the old source to learn it lost its slots", || {
            let me = c.cluster_nodes(source)?.into_iter().find(|e| e.id == id);
            Ok(me.is_some_and(|e| e.role() == Role::Replica || e.slots.is_empty()))
        })?;
        let empty_primary = c.role(source)? == Role::Master;
        if empty_primary {
            c.conn(source)?.cmd_ok(["CLUSTER", "REPLICATE", c.node(replica).id()])?;
        }
        c.wait_replica_of(source, replica, DRILL_TIMEOUT)?;
        Ok(Disruption {
            what: format!(
                "legacy migration of slots {slots:?} from node {source} to node {target}: {moved} keys moved, \
                 then SIGKILL of the source; replica {replica} promoted after {promoted:.2?} (migrating state \
                 on the replica before the kill: {replicated}, kept after the promotion: {inherited}); it moved \
                 the other {rest} keys and the migration ended; old source back as its replica after {:.2?} (came back as an empty \
                 primary first: {empty_primary})",
                t0.elapsed()
            ),
            windows: vec![window],
        })
    });
    o.print("failover-mid-migration", "slotcache", &spec);
    rt.block_on(subject.close());
    assert!(carried_on > 0, "the promoted replica moved no key: the migration did not span the failover");
    assert_windows_failed_operations("failover-mid-migration", &o);
    assert_clean("failover-mid-migration", &o);
}
