//! The whole cache under deterministic fault simulation: many seeds of concurrent cache
//! operations (tagged and untagged writes, bulk writes, reads, entry reads, invalidations by
//! key and by tag, `compute`, loads and reloads whose loaders take time, sharing loads in
//! flight, `bulk_refresh` (one loader call, each value under its entry's lease),
//! `set_expires_after`, `keys()` and `entries()` walks, `estimated_size`,
//! `invalidate_all`) over a simulated 3+3 cluster with asynchronous replication, a lossy
//! failover episode (frozen replica, lost script cache, promotion of the stale replica),
//! second failovers, migrations (legacy and atomic), slow, paused and disconnected nodes.
//! The tag history checker must find no violation of guarantee 1 (no stale hit after an
//! invalidation) in any seed, nor any orphan once the run is quiescent and every tag was
//! invalidated once more (P2 clean-up: an entry left with a stale token that no tag lists), and
//! it must find the reintroduced bugs within the seeds CI runs: A1 (the `WAIT` answered before
//! the `EVAL` retry), A6 (a failed clean-up that does not list its survivors again), a reload
//! stored untagged, A3 (a reload stored with the tokens current at its store instead of its
//! lease; a caller joining a load older than an invalidation), and the old `compute` (over a
//! stale entry, written untagged; failing after its write, property C).
//!
//! A quarter of the seeds run with a `maxmemory` small enough to fill (`EVICTING_MAXMEMORY`), under
//! a policy drawn from
//! `allkeys-lru`, `allkeys-random`, `volatile-lru`, `volatile-ttl` and `noeviction`
//! (`EVICTION_POLICIES` in `tests/src/simcache/scenario.rs`); a full node refusing writes (`OOM`)
//! must surface as a failed operation, never a stale hit.
//!
//! Seeds: `SLOTCACHE_SIM_SEEDS` (how many, from 1), or `SLOTCACHE_SIM_SEED` (just that one).

use std::time::Instant;

use slotcache_core::cache::op::invalidate_tags::Variant;
use slotcache_core::cache::op::{compute, flights, iterate, load};
use slotcache_tests::history::Op;
use slotcache_tests::simcache::scenario::{Options, run};
use slotcache_tests::simcache::seeds::{first_caught, from_env, totals};
use slotcache_tests::simcache::workload::Mix;

/// Seeds each CI run checks (the variants stop at their first catch, within
/// [`VARIANT_SEEDS`]).
const SEEDS: u64 = 2_000;
const VARIANT_SEEDS: u64 = 1_000;

#[test]
fn no_stale_hit_after_an_invalidation_in_any_seed() {
    let started = Instant::now();
    let seeds = from_env(SEEDS);
    let totals = totals(&seeds, |seed| {
        let out = run(seed, Options::default());
        assert!(out.violations.is_empty(), "{}", out.report());
        [
            out.history.len(),
            out.history.hits(),
            out.history.invalidations_ok(),
            out.history.errors(),
            out.faults.len(),
            out.figures.hits_checked,
            oom(&out),
            usize::try_from(out.evicted).unwrap_or(usize::MAX),
            iterations(&out),
            bulk_refreshed(&out),
        ]
    });
    let [ops, hits, invalidations, errors, faults, checked, ooms, evicted, iterations, refreshed] = totals;
    assert_eq!(hits, checked, "every value read is checked");
    eprintln!(
        "[figure] sim_cache_history: {} seeds, {ops} operations ({checked} values read and checked, \
         {invalidations} Ok invalidations, {errors} failed operations, {ooms} of them OOM, \
         {iterations} whole keys()/entries() walks, {refreshed} bulk_refresh calls that stored a value), \
         {faults} faults, {evicted} keys evicted, 0 violations, \
         in {:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(hits > 0 && invalidations > 0 && faults > 0, "the runs exercised nothing");
    if seeds.len() >= 100 {
        assert!(iterations > 0, "no keys() or entries() walk completed");
        assert!(refreshed > 0, "no bulk_refresh stored a value");
    }
    if seeds.len() >= 100 {
        assert!(evicted > 0, "no run evicted anything");
        assert!(ooms > 0, "no run filled a node that refuses writes (noeviction, volatile-*)");
    }
}

/// `keys()` and `entries()` walks of a run that completed (each yielded item checked: an entry
/// like a read, a key as written).
fn iterations(out: &slotcache_tests::simcache::scenario::Outcome) -> usize {
    out.history.records.iter().filter(|r| matches!(r.op, Op::Keys | Op::Entries) && r.ok()).count()
}

#[test]
fn a_bulk_refresh_without_its_lease_is_caught() {
    for variant in [load::Variant::ReloadUntagged, load::Variant::TokensAtStore] {
        let options = Options { bulk_refresh_variant: variant, ..Options::default() };
        let seeds = from_env(VARIANT_SEEDS);
        let caught = first_caught(&seeds, options, |out| !out.violations.is_empty());
        let out = caught
            .unwrap_or_else(|| panic!("bulk_refresh with {variant:?} not caught in {} seeds", seeds.len()));
        eprintln!(
            "[figure] sim_cache_history: bulk_refresh {variant:?} caught at seed {}: {}",
            out.seed, out.violations[0]
        );
    }
}

/// `bulk_refresh` calls of a run that stored at least one value.
fn bulk_refreshed(out: &slotcache_tests::simcache::scenario::Outcome) -> usize {
    let stored = |r: &&slotcache_tests::history::Record| {
        matches!(r.op, Op::BulkRefresh { .. })
            && matches!(r.result, Ok(slotcache_tests::history::Ret::BulkRefreshed { stored, .. }) if stored > 0)
    };
    out.history.records.iter().filter(stored).count()
}

/// Operations of a run that failed with the server's `OOM` (a node at `maxmemory` under
/// `noeviction`, or under `volatile-*` with nothing left to evict): a typed error
/// (`CacheError::Request(RequestError::Server)`, kind `Oom`), never a hit.
fn oom(out: &slotcache_tests::simcache::scenario::Outcome) -> usize {
    out.history.records.iter().filter(|r| r.result.as_ref().err().is_some_and(|e| e.contains("OOM"))).count()
}

#[test]
fn the_wait_before_the_eval_retry_is_caught() {
    // One tag: every invalidation swaps the token on the shard of the lossy failover episode,
    // the first one after its script cache is lost among them (with three tags the bug bit in
    // about one seed in several hundred, and a change of the operation mix moved its first
    // catch from seed 226 to seed 1,307).
    let mix = Mix { tags: 1, ..Mix::default() };
    let options = Options { variant: Variant::WaitBeforeRetry, mix, ..Options::default() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught = first_caught(&seeds, options, |out| !out.violations.is_empty());
    let out = caught.unwrap_or_else(|| panic!("bug A1 not caught in {} seeds", seeds.len()));
    eprintln!("[figure] sim_cache_history: bug A1 caught at seed {}: {}", out.seed, out.violations[0]);
    // The same seed and mix with the protocol as documented: no violation, so the catch is the
    // bug's, not the one-tag mix's.
    let correct = run(out.seed, Options { mix, ..Options::default() });
    assert!(correct.violations.is_empty(), "{}", correct.report());
}

#[test]
fn a_reload_stored_untagged_is_caught() {
    let options = Options { load_variant: load::Variant::ReloadUntagged, ..Options::default() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught = first_caught(&seeds, options, |out| !out.violations.is_empty());
    let out = caught.unwrap_or_else(|| panic!("the untagged reload not caught in {} seeds", seeds.len()));
    eprintln!(
        "[figure] sim_cache_history: untagged reload caught at seed {}: {}",
        out.seed, out.violations[0]
    );
}

#[test]
fn a_leaked_entry_after_a_failed_clean_up_is_caught() {
    let options = Options { variant: Variant::EraseBeforeEarlyReturn, ..Options::default() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught =
        first_caught(&seeds, options, |out| out.violations.iter().any(|v| v.property == "P2-cleanup"));
    let out = caught.unwrap_or_else(|| panic!("bug A6 not caught in {} seeds", seeds.len()));
    let v = out.violations.iter().find(|v| v.property == "P2-cleanup").expect("found");
    eprintln!(
        "[figure] sim_cache_history: bug A6 (leak after a failed clean-up) caught at seed {}: {v}",
        out.seed
    );
}

/// Bug A3, the lease: a reload stored with the tokens current at store time stores a value
/// loaded before an invalidation of one of its tags as fresh.
#[test]
fn a_reload_stored_under_current_tokens_is_caught() {
    let options = Options { load_variant: load::Variant::TokensAtStore, ..Options::default() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught = first_caught(&seeds, options, |out| out.violations.iter().any(|v| v.property == "P1"));
    let out =
        caught.unwrap_or_else(|| panic!("the reload without lease not caught in {} seeds", seeds.len()));
    let v = out.violations.iter().find(|v| v.property == "P1").expect("found");
    eprintln!("[figure] sim_cache_history: reload without lease (A3) caught at seed {}: {v}", out.seed);
}

/// Bug A3, the single flight: a caller that starts after an invalidation returned joins a load
/// that started before it, and gets the value the invalidation was meant to remove.
#[test]
fn a_caller_joining_an_older_load_is_caught() {
    let options = Options { flights_variant: flights::Variant::JoinAny, ..Options::default() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught = first_caught(&seeds, options, |out| out.violations.iter().any(|v| v.property == "P1"));
    let out = caught.unwrap_or_else(|| panic!("joining an older load not caught in {} seeds", seeds.len()));
    let v = out.violations.iter().find(|v| v.property == "P1").expect("found");
    eprintln!(
        "[figure] sim_cache_history: joining a load older than an invalidation (A3) caught at seed {}: {v}",
        out.seed
    );
}

/// The old compute bug: a value replacing a stale entry is written untagged, and escapes the
/// invalidations of the tags the entry had.
#[test]
fn a_compute_over_a_stale_entry_written_untagged_is_caught() {
    let options = Options { compute_variant: compute::Variant::StaleUntagged, ..Options::default() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught = first_caught(&seeds, options, |out| !out.violations.is_empty());
    let out = caught.unwrap_or_else(|| panic!("the untagged compute not caught in {} seeds", seeds.len()));
    eprintln!(
        "[figure] sim_cache_history: compute over a stale entry written untagged caught at seed {}: {}",
        out.seed, out.violations[0]
    );
}

/// The old compute bug: the tags registered after the compare-and-set, so a registration that
/// fails fails a call whose write happened (property C: a compute that failed with an error
/// reply wrote nothing).
#[test]
fn a_compute_that_errs_after_its_write_is_caught() {
    let options = Options { compute_variant: compute::Variant::RegisterAfterCas, ..Options::default() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught = first_caught(&seeds, options, |out| out.violations.iter().any(|v| v.property == "C"));
    let out = caught
        .unwrap_or_else(|| panic!("the error after a compute's write not caught in {} seeds", seeds.len()));
    let v = out.violations.iter().find(|v| v.property == "C").expect("found");
    eprintln!("[figure] sim_cache_history: compute erring after its write caught at seed {}: {v}", out.seed);
}

/// An iteration that does not check its entries' tokens yields entries a tag invalidation
/// made stale but did not delete (a write that raced it): caught as a stale hit.
#[test]
fn entries_yielding_stale_entries_are_caught() {
    let options = Options { iterate_variant: iterate::Variant::NoTokenCheck, ..Options::default() };
    let seeds = from_env(VARIANT_SEEDS);
    let by_walk = |v: &&slotcache_tests::history::Violation| {
        v.property == "P1" && v.ops.last().is_some_and(|r| r.op == Op::Entries)
    };
    let caught = first_caught(&seeds, options, |out| out.violations.iter().any(|v| by_walk(&v)));
    let out = caught.unwrap_or_else(|| panic!("the unchecked iteration not caught in {} seeds", seeds.len()));
    let v = out.violations.iter().find(by_walk).expect("found");
    eprintln!("[figure] sim_cache_history: entries() without token check caught at seed {}: {v}", out.seed);
}
