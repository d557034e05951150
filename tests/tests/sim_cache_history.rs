//! The whole cache under deterministic fault simulation: many seeds of concurrent cache
//! operations (tagged and untagged writes, bulk writes, reads, entry reads, invalidations by
//! key and by tag) over a simulated 3+3 cluster with asynchronous replication, a lossy
//! failover episode (frozen replica, lost script cache, promotion of the stale replica),
//! second failovers, migrations (legacy and atomic), slow, paused and disconnected nodes.
//! The tag history checker must find no violation of guarantee 1 (no stale hit after an
//! invalidation) in any seed, and it must find the reintroduced bug A1 (the `WAIT` answered
//! before the `EVAL` retry) within the seeds CI runs.
//!
//! Seeds: `SLOTCACHE_SIM_SEEDS` (how many, from 1), or `SLOTCACHE_SIM_SEED` (just that one).

use std::time::Instant;

use slotcache_core::cache::op::invalidate_tags::Variant;
use slotcache_tests::simcache::scenario::{Options, run};

fn seeds(default: u64) -> Vec<u64> {
    if let Some(one) = std::env::var("SLOTCACHE_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![one];
    }
    let n = std::env::var("SLOTCACHE_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    (1..=n).collect()
}

#[test]
fn no_stale_hit_after_an_invalidation_in_any_seed() {
    let started = Instant::now();
    let (mut ops, mut hits, mut invalidations, mut faults, mut errors, mut covered) = (0, 0, 0, 0, 0, 0);
    let seeds = seeds(300);
    for &seed in &seeds {
        let out = run(seed, Options::default());
        assert!(out.violations.is_empty(), "{}", out.report());
        ops += out.history.len();
        hits += out.history.hits();
        invalidations += out.history.invalidations_ok();
        errors += out.history.errors();
        faults += out.faults.len();
        covered += out.figures.hits_after_covering_invalidation;
    }
    eprintln!(
        "[figure] sim_cache_history: {} seeds, {ops} operations ({hits} hits, {invalidations} Ok \
         invalidations, {errors} errors), {faults} faults, {covered} hits after a covering \
         invalidation checked, 0 violations, in {:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(hits > 0 && invalidations > 0 && faults > 0, "the runs exercised nothing");
}

#[test]
fn the_wait_before_the_eval_retry_is_caught() {
    let options = Options { variant: Variant::WaitBeforeRetry, ..Options::default() };
    let seeds = seeds(300);
    let caught = seeds.iter().find_map(|&seed| {
        let out = run(seed, options);
        (!out.violations.is_empty()).then_some(out)
    });
    let out = caught.unwrap_or_else(|| panic!("bug A1 not caught in {} seeds", seeds.len()));
    eprintln!("[figure] sim_cache_history: bug A1 caught at seed {}: {}", out.seed, out.violations[0]);
}
