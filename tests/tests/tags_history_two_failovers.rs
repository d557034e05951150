//! The tag guarantees checked on a recorded history while one shard fails over twice, against
//! a real cluster (3 masters + 3 replicas, node timeout 1 s).
//!
//! The primary serving the workload's first tag is killed with `SIGKILL`; its replica is
//! promoted; the old primary comes back as the new primary's replica and syncs; then the
//! promoted replica is killed in turn, the old primary is promoted again, and the second victim
//! comes back as its replica. Then the quiescent checks, the history check and the in-run count
//! check. Prints a `[figure]` line per failover window; asserts 0 violations, that operations
//! failed in each window, and that the shard ended with its first primary serving again (a new
//! process: its `run_id` changed).

use std::time::{Duration, Instant};

use slotcache_core::key_slot;
use slotcache_tests::conformance::Rt;
use slotcache_tests::history::run::{
    Disruption, Runner, Window, assert_clean, assert_windows_failed_operations, check_run, run_id, slotcache,
    start, wait_for_traffic,
};
use slotcache_tests::history::workload::Spec;
use slotcache_tests::history::{Clock, Subject};
use slotcache_tests::{Cluster, ClusterBuilder, DRILL_TIMEOUT, Role};

/// Kills primary `p`, waits for replica `r` to be promoted, restarts `p` and waits for it to
/// replicate `r`; the window runs from the kill to the promotion.
fn fail_over(c: &mut Cluster, clock: Clock, p: usize, r: usize) -> slotcache_tests::Result<(Window, String)> {
    wait_for_traffic(c, p, 300)?;
    let t0 = Instant::now();
    let from = clock.now();
    c.kill(p)?;
    c.wait_promoted(r, DRILL_TIMEOUT)?;
    let window =
        Window { name: format!("primary {p} killed, until replica {r} promoted"), from, to: clock.now() };
    let promoted = t0.elapsed();
    c.restart(p)?;
    c.wait_replica_of(p, r, DRILL_TIMEOUT)?;
    let what = format!(
        "node {p} killed, node {r} promoted after {promoted:.2?}, node {p} its replica after {:.2?}",
        t0.elapsed()
    );
    Ok((window, what))
}

#[test]
fn history_while_one_shard_fails_over_twice() {
    let rt = Runner::new(Rt::Tokio);
    let mut cluster =
        start(ClusterBuilder::new().node_timeout(Duration::from_millis(1000)).label("hist-two-failovers"));
    let subject = slotcache(&rt, &cluster, "hist-two-failovers");
    let spec = Spec { max: Duration::from_secs(40), ..Spec::new(Duration::from_secs(3)) };
    let first = cluster.slot_owner(key_slot(&subject.tag_key("t0")).get()).expect("owner").expect("served");
    let second = cluster.replicas_of(first).expect("replicas")[0];
    let before = run_id(&cluster, first).expect("run_id");
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c, clock| {
        let (w1, what1) = fail_over(c, clock, first, second)?;
        let (w2, what2) = fail_over(c, clock, second, first)?;
        Ok(Disruption { what: format!("{what1}; then {what2}"), windows: vec![w1, w2] })
    });
    o.print("two-failovers", "slotcache", &spec);
    rt.block_on(subject.close());
    assert_eq!(cluster.role(first).expect("role"), Role::Master, "the first primary serves again");
    assert_eq!(cluster.master_of(second).expect("master_of"), Some(first), "the second is its replica again");
    let after = run_id(&cluster, first).expect("run_id");
    assert_ne!(before, after, "the first primary must have been restarted");
    assert_windows_failed_operations("two-failovers", &o);
    assert_clean("two-failovers", &o);
}
