//! The negative control of the iteration check, on a real cluster (3 masters + 3 replicas):
//! the plain history workload, with `entries()` run by the test-only variant whose pages do
//! not check their entries against their tags' tokens
//! (`slotcache_core::cache::op::iterate::Variant::NoTokenCheck`, through
//! `slotcache_rt::cache::testing::entries_with`). Such a walk yields entries a tag invalidation
//! made stale without deleting them (a write that raced it keeps its old token and no
//! membership; `docs/consistency.md`, guarantee 3's exception): the history checker must report
//! it as a stale hit (P1) whose read is the walk. Up to 4 runs of 3 s (each on a fresh
//! namespace), until one shows it; prints each run's `[figure]` line.

use std::sync::Arc;
use std::time::Duration;

use slotcache_core::cache::op::iterate::Variant;
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::Rt;
use slotcache_tests::history::Op;
use slotcache_tests::history::run::{Runner, check_run, slotcache, start};
use slotcache_tests::history::workload::Spec;

#[test]
fn entries_without_the_token_check_are_caught() {
    let rt = Runner::new(Rt::Tokio);
    let mut cluster = start(ClusterBuilder::new().label("hist-unchecked-walk"));
    let mut caught = None;
    for round in 0..4u64 {
        let ns = format!("hist-unchecked-walk-{round}");
        let plain = slotcache(&rt, &cluster, &ns);
        let subject = Arc::new((*plain).clone().with_iterate_variant(Variant::NoTokenCheck));
        let mut spec = Spec::new(Duration::from_secs(3));
        spec.seed = spec.seed.wrapping_add(round);
        let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |_, _| Ok("none".into()));
        o.print(&format!("unchecked-walk-{round}"), "slotcache (entries() without token check)", &spec);
        rt.block_on(subject.close());
        let by_walk: Vec<String> = o
            .violations()
            .into_iter()
            .filter(|v| v.property == "P1" && v.ops.last().is_some_and(|r| r.op == Op::Entries))
            .map(ToString::to_string)
            .collect();
        if let Some(first) = by_walk.first() {
            caught = Some((round, by_walk.len(), first.clone()));
            break;
        }
    }
    let (round, n, first) = caught
        .expect("no stale entry yielded by the unchecked entries() in 4 runs: the check proves nothing");
    eprintln!(
        "[figure] tags_history unchecked iteration caught in run {round}: {n} stale hits by entries(); first: {first}"
    );
}
