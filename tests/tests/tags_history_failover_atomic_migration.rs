//! The tag guarantees checked on a recorded history while the source primary of a Valkey 9
//! **atomic** slot migration (`CLUSTER MIGRATESLOTS`) is killed in the middle of it and its
//! replica promoted, against a real cluster (3 masters + 3 replicas, node timeout 1 s).
//! (`tags_history_failover_migration` does the same with a legacy `MIGRATE` migration.)
//!
//! The slots of the workload's tag keys and data keys that one master serves (the master
//! serving most of them) get filler keys outside the namespace (64 KiB each, so the migration's
//! snapshot takes a while); one `CLUSTER MIGRATESLOTS` job moves them all to another master.
//! As soon as the target lists the import job (the migration is under way on both ends), the
//! source is killed with `SIGKILL`. Once its replica is promoted, the job has failed: every
//! slot is still served by the shard (now by the promoted replica), none by the target, and
//! the target kept none of the keys it was importing. The promoted replica then migrates the
//! slots to the target atomically, to the end; the old source comes back as a replica (made one
//! if it came back as an empty primary). Then the
//! quiescent checks, the history check and the in-run count check.
//! Prints a `[figure]` line; asserts 0 violations and that operations failed while the source
//! was down.

use std::time::{Duration, Instant};

use slotcache_core::key_slot;
use slotcache_core::resp::Value;
use slotcache_tests::conformance::{Rt, info_number};
use slotcache_tests::history::Subject;
use slotcache_tests::history::run::{
    Disruption, Runner, Window, assert_clean, assert_windows_failed_operations, check_run, other_master,
    slotcache, start, wait_for_traffic,
};
use slotcache_tests::history::workload::Spec;
use slotcache_tests::wait::scaled;
use slotcache_tests::{Cluster, ClusterBuilder, DRILL_TIMEOUT, Error, Role, key_for_slot, resp, wait_until};

/// Filler keys per slot, and their size.
const FILLERS: usize = 48;
const FILLER_BYTES: usize = 64 * 1024;

/// The jobs node `i` lists in `CLUSTER GETSLOTMIGRATIONS` whose slot ranges name `slot`, as
/// `state` strings.
fn job_states(c: &Cluster, i: usize, slot: u16) -> slotcache_tests::Result<Vec<String>> {
    let jobs = c.cmd(i, ["CLUSTER", "GETSLOTMIGRATIONS"])?;
    let want = format!("{slot}-");
    Ok(jobs
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter(|j| {
            let ranges = j.field("slot_ranges").map(resp::display).unwrap_or_default();
            ranges
                .split(|ch: char| !(ch.is_ascii_digit() || ch == '-'))
                .any(|t| t.starts_with(&want) || t == slot.to_string())
        })
        .map(|j| j.field("state").and_then(Value::as_str).unwrap_or_default().to_owned())
        .collect())
}

#[test]
fn history_while_the_source_primary_fails_over_during_an_atomic_migration() {
    let rt = Runner::new(Rt::Tokio);
    let mut cluster =
        start(ClusterBuilder::new().node_timeout(Duration::from_millis(1000)).label("hist-fo-atomic"));
    let subject = slotcache(&rt, &cluster, "hist-fo-atomic");
    let spec = Spec { max: Duration::from_secs(40), ..Spec::new(Duration::from_secs(3)) };
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
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c, clock| {
        wait_for_traffic(c, source, 300)?;
        let t0 = Instant::now();
        let filler = "x".repeat(FILLER_BYTES);
        for &s in &slots {
            for f in 0..FILLERS {
                c.cmd(source, ["SET", &key_for_slot(s, &format!("filler-{f}")), &filler])?;
            }
        }
        // The replica has the fillers before the kill (its promotion keeps them to move).
        let offset = info_number(c, source, "replication", "master_repl_offset")?;
        wait_until(scaled(DRILL_TIMEOUT), "the replica to have the fillers", || {
            Ok(info_number(c, replica, "replication", "slave_repl_offset")? >= offset)
        })?;
        let target_id = c.node(target).id().to_owned();
        let mut args: Vec<String> = vec!["CLUSTER".into(), "MIGRATESLOTS".into(), "SLOTSRANGE".into()];
        for &s in &slots {
            args.extend([s.to_string(), s.to_string()]);
        }
        args.extend(["NODE".into(), target_id]);
        c.conn(source)?.cmd_ok(&args)?;
        // Under way on both ends: the target lists the import.
        wait_until(scaled(Duration::from_secs(10)), "the target to list the import job", || {
            Ok(!job_states(c, target, slots[0])?.is_empty())
        })?;
        let seen_source = job_states(c, source, slots[0])?;
        let seen_target = job_states(c, target, slots[0])?;
        let from = clock.now();
        c.kill(source)?;
        c.wait_promoted(replica, DRILL_TIMEOUT)?;
        let window = Window {
            name: format!(
                "source {source} killed during the atomic migration, until replica {replica} promoted"
            ),
            from,
            to: clock.now(),
        };
        let promoted = t0.elapsed();
        // The job failed with its source: the slots stayed with the shard.
        for &s in &slots {
            c.wait_slot_owner(s, replica, DRILL_TIMEOUT)
                .map_err(|e| Error::new(format!("slot {s} not with the promoted replica: {e}")))?;
        }
        // The target drops what it had imported of the failed job (bounded wait).
        let on_target = |c: &Cluster| -> slotcache_tests::Result<i64> {
            let mut n = 0;
            for &s in &slots {
                n += c.cmd(target, ["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()])?.as_int().unwrap_or(-1);
            }
            Ok(n)
        };
        wait_until(scaled(DRILL_TIMEOUT), "the target to drop the keys of the failed import", || {
            Ok(on_target(c)? == 0)
        })?;
        let target_states = job_states(c, target, slots[0])?;
        // The promoted replica migrates the slots to the end.
        let mut moved = Duration::ZERO;
        for &s in &slots {
            moved += c.migrate_slots(replica, target, s, s)?;
        }
        c.restart(source)?;
        // A primary back to find its slots gone follows the node that took its last slot: its
        // replica after a failover; but when the last update it learns is a migration of its
        // slots to the target, it stays an empty primary (replica migration is off in the
        // harness): then it is made the replica.
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
                "atomic migration (CLUSTER MIGRATESLOTS) of slots {slots:?} from node {source} to node {target} \
                 with {FILLERS} fillers of {FILLER_BYTES} bytes per slot; SIGKILL of the source while the job \
                 was under way (source states {seen_source:?}, target states {seen_target:?}); replica \
                 {replica} promoted after {promoted:.2?}, the slots still its own, the target's job then \
                 {target_states:?} with no key left; the promoted replica migrated them atomically in \
                 {moved:.2?}; old source back as its replica after {:.2?} (came back as an empty primary \
                 first: {empty_primary})",
                t0.elapsed()
            ),
            windows: vec![window],
        })
    });
    o.print("failover-during-atomic-migration", "slotcache", &spec);
    rt.block_on(subject.close());
    assert_windows_failed_operations("failover-during-atomic-migration", &o);
    assert_clean("failover-during-atomic-migration", &o);
}
