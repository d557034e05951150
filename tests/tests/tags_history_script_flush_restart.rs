//! The tag guarantees checked on a recorded history while the servers lose their scripts,
//! against a real cluster (3 masters + 3 replicas, node timeout 5 s so that a quick restart is
//! not failed over).
//!
//! Mid-run, `SCRIPT FLUSH` on every node: the next script each primary receives answers
//! `NOSCRIPT` and is sent again in full (`EVAL`), with its `WAIT` after it. Then the primary
//! serving the workload's first tag is killed and started again from its folder (same node id
//! and slots, nothing persisted: it comes back empty, without scripts, and its replica syncs
//! from it). Then the quiescent checks, the history check and the in-run count check. Prints
//! a `[figure]` line; asserts 0 violations, that every primary answered `NOSCRIPT` after the
//! flush and the restarted one after its restart (the first invalidations after were really
//! the resent ones), that operations failed while it was down, and that it is a new process
//! (`run_id`) still serving as primary.

use std::time::{Duration, Instant};

use slotcache_core::key_slot;
use slotcache_tests::conformance::{Rt, errorstat_count};
use slotcache_tests::history::Subject;
use slotcache_tests::history::run::{
    Disruption, Runner, Window, assert_clean, assert_windows_failed_operations, check_run, run_id, slotcache,
    start, wait_for_traffic,
};
use slotcache_tests::history::workload::Spec;
use slotcache_tests::wait::scaled;
use slotcache_tests::{ClusterBuilder, DRILL_TIMEOUT, Role, topo, wait_until};

#[test]
fn history_while_scripts_are_flushed_and_a_primary_restarts() {
    let rt = Runner::new(Rt::Smol);
    let mut cluster =
        start(ClusterBuilder::new().node_timeout(Duration::from_millis(5000)).label("hist-script-flush"));
    let subject = slotcache(&rt, &cluster, "hist-script-flush");
    let spec = Spec { max: Duration::from_secs(40), ..Spec::new(Duration::from_secs(3)) };
    let victim = cluster.slot_owner(key_slot(&subject.tag_key("t0")).get()).expect("owner").expect("served");
    let replica = cluster.replicas_of(victim).expect("replicas")[0];
    let before = run_id(&cluster, victim).expect("run_id");
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c, clock| {
        let masters = c.masters()?;
        for &m in &masters {
            wait_for_traffic(c, m, 100)?;
        }
        let t0 = Instant::now();
        let mut noscript = Vec::new();
        for &m in &masters {
            noscript.push(errorstat_count(c, m, "NOSCRIPT")?);
        }
        for i in c.live() {
            c.conn(i)?.cmd_ok(["SCRIPT", "FLUSH"])?;
        }
        let relearnt =
            wait_until(scaled(DRILL_TIMEOUT), "every primary to answer NOSCRIPT after the flush", || {
                for (&m, &n) in masters.iter().zip(&noscript) {
                    if errorstat_count(c, m, "NOSCRIPT")? <= n {
                        return Ok(false);
                    }
                }
                Ok(true)
            })?;
        let t1 = Instant::now();
        let from = clock.now();
        c.kill(victim)?;
        c.restart(victim)?;
        wait_until(scaled(DRILL_TIMEOUT), "the restarted primary to serve again", || {
            let info = c.cmd_text(victim, ["CLUSTER", "INFO"])?;
            Ok(topo::info_field(&info, "cluster_state") == Some("ok"))
        })?;
        let window =
            Window { name: format!("primary {victim} killed, until it serves again"), from, to: clock.now() };
        let back = t1.elapsed();
        c.wait_replica_of(replica, victim, DRILL_TIMEOUT)?;
        let resent = wait_until(scaled(DRILL_TIMEOUT), "the restarted primary to answer NOSCRIPT", || {
            Ok(errorstat_count(c, victim, "NOSCRIPT")? > 0)
        })?;
        Ok(Disruption {
            what: format!(
                "SCRIPT FLUSH on every node; every primary answered NOSCRIPT \
                 {relearnt:.2?} later; primary {victim} killed and restarted empty, serving again after \
                 {back:.2?}, answered NOSCRIPT {resent:.2?} after its replica {replica} synced; {:.2?} in all",
                t0.elapsed()
            ),
            windows: vec![window],
        })
    });
    o.print("script-flush-restart", "slotcache", &spec);
    rt.block_on(subject.close());
    assert_eq!(
        cluster.role(victim).expect("role"),
        Role::Master,
        "the restarted primary was not failed over"
    );
    assert_ne!(run_id(&cluster, victim).expect("run_id"), before, "the primary must have been restarted");
    assert_windows_failed_operations("script-flush-restart", &o);
    assert_clean("script-flush-restart", &o);
}
