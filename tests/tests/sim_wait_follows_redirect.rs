//! A `WAIT` that follows a write (`Cmd::after`) runs on the connection that answered the write,
//! wherever a redirection took it: a write asked to the target of a migration (`ASK`) is
//! acknowledged there, and the source, which never ran it, is never asked. Pipelined without
//! `after`, the `WAIT` goes to the node that redirected (bug A2), which this test also shows.

use slotcache_core::client::{Cmd, Reply, Request};
use slotcache_core::key_slot;
use slotcache_tests::sim::{Sim, SimCluster};

fn run(follow: bool) -> (u64, u64, Vec<String>) {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 7);
    let key = b"{w}k";
    sim.call(Cmd::new("SET").arg(&key[..]).arg("old")).expect("set");
    let slot = key_slot(key);
    let source = sim.cluster.owner_of(key);
    let target = sim.cluster.primaries().into_iter().find(|p| *p != source).expect("target");
    sim.cluster.start_migration(slot, &target);
    sim.cluster.migrate_key(key);
    let set = Cmd::new("SET").arg(&key[..]).arg("new").with_slot(slot);
    let wait = Cmd::new("WAIT").arg(1).arg(1000).with_slot(slot).with_read_only(false);
    let wait = if follow { wait.after(0) } else { wait };
    let id = sim.submit(Request::pipeline(vec![set, wait]));
    let Ok(Reply::Pipeline(results)) = sim.wait(id) else { panic!("a pipeline reply") };
    let shown = results.iter().map(|r| format!("{r:?}")).collect();
    (sim.cluster.count(&source, "WAIT"), sim.cluster.count(&target, "WAIT"), shown)
}

#[test]
fn the_wait_runs_where_the_asked_write_ran() {
    let (at_source, at_target, results) = run(true);
    assert_eq!((at_source, at_target), (0, 1), "{results:?}");
    assert!(results[1].contains("Int(1)"), "the target's replica acknowledged: {results:?}");
}

#[test]
fn a_pipelined_wait_goes_to_the_node_that_redirected() {
    let (at_source, at_target, results) = run(false);
    assert_eq!((at_source, at_target), (1, 0), "bug A2 reproduced: {results:?}");
}
