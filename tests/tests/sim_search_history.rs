//! A searchable namespace under deterministic fault simulation: JSON documents written, read,
//! loaded, computed and invalidated (by key and by tag) through the JSON scripts, with
//! `query` (TAG and NUMERIC filters, sorts, pages), `ensure_search_index` and
//! `drop_search_index` mixed in, over a simulated 3+3 cluster with per-primary RediSearch
//! indexes and the fault schedules of `sim_cache_history`. Every document a query returns is
//! checked like a read: one whose key or tag was invalidated before the query started must
//! never appear (guarantee 1); every one must match the filter, and no page may list a key
//! twice; the last query, after the faults healed, must list every document the quiescent
//! reads found (in runs without TTLs or eviction). A search that skips the tag-token check is
//! caught, and so is the old fan-out (one index name per primary of a `MOVED`-patched
//! topology, routed by slot: pages with a key twice after a failover); a cluster without the
//! modules answers `SearchNotSupported`.
//!
//! Seeds: `SLOTCACHE_SIM_SEEDS` (how many, from 1), or `SLOTCACHE_SIM_SEED` (just that one).

use std::time::{Duration, Instant};

use slotcache_core::cache::op::search_query::Variant;
use slotcache_tests::history::{Op, Ret};
use slotcache_tests::sim::{Sim, SimCluster};
use slotcache_tests::simcache::ops::{CacheOps, Search};
use slotcache_tests::simcache::runner::Runner;
use slotcache_tests::simcache::scenario::{Options, duplicate_pages, run};
use slotcache_tests::simcache::seeds::{first_caught, from_env, totals};

/// Seeds each CI run checks (sized for about 30 s in debug on two cores).
const SEEDS: u64 = 400;
/// Seeds the variant may take to be caught.
const VARIANT_SEEDS: u64 = 400;

#[test]
fn no_invalidated_document_in_any_query_page() {
    let started = Instant::now();
    let seeds = from_env(SEEDS);
    let totals = totals(&seeds, |seed| {
        let out = run(seed, Options::documents());
        assert!(out.violations.is_empty(), "{}", out.report());
        let mut t = [0usize; 8];
        for r in &out.history.records {
            match (&r.op, &r.result) {
                (Op::Query { .. }, Ok(Ret::Found(items))) => {
                    t[0] += 1;
                    t[1] += items.len();
                }
                (Op::Query { .. }, Err(_)) => t[2] += 1,
                _ => {}
            }
        }
        t[3] = out.history.len();
        t[4] = out.figures.hits_checked;
        t[5] = out.history.invalidations_ok();
        t[6] = out.faults.len();
        t[7] = duplicate_pages(&out.history).len();
        t
    });
    let [queries, documents, failed, ops, checked, invalidations, faults, duplicated] = totals;
    eprintln!(
        "[figure] sim_search_history: {} seeds, {ops} operations, {queries} Ok queries returning \
         {documents} documents ({failed} failed queries), {checked} values read and checked, \
         {invalidations} Ok invalidations, {faults} faults, 0 violations, {duplicated} pages with a \
         key twice, in {:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(queries > 0 && documents > 0 && invalidations > 0 && faults > 0, "the runs exercised nothing");
    assert_eq!(duplicated, 0, "a page listed a key twice (each is also a violation)");
}

#[test]
fn the_old_per_slot_fan_out_is_caught() {
    let options = Options { search_variant: Variant::PerSlotFanOut, ..Options::documents() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught = first_caught(&seeds, options, |out| !duplicate_pages(&out.history).is_empty());
    let out = caught.unwrap_or_else(|| panic!("PerSlotFanOut not caught in {} seeds", seeds.len()));
    let v = out
        .violations
        .iter()
        .find(|v| v.what.contains("listed twice"))
        .unwrap_or_else(|| panic!("a page with a key twice is a violation: {}", out.report()));
    eprintln!("[figure] sim_search_history: PerSlotFanOut caught at seed {}: {v}", out.seed);
}

#[test]
fn a_search_that_skips_the_token_check_is_caught() {
    let options = Options { search_variant: Variant::SkipTokenCheck, ..Options::documents() };
    let seeds = from_env(VARIANT_SEEDS);
    let caught = first_caught(&seeds, options, |out| !out.violations.is_empty());
    let out = caught.unwrap_or_else(|| panic!("SkipTokenCheck not caught in {} seeds", seeds.len()));
    assert!(
        out.violations.iter().any(|v| v.ops.last().is_some_and(|r| matches!(r.op, Op::Query { .. }))),
        "caught by a query: {}",
        out.report()
    );
    eprintln!(
        "[figure] sim_search_history: SkipTokenCheck caught at seed {}: {}",
        out.seed, out.violations[0]
    );
}

#[test]
fn without_the_modules_search_and_documents_are_not_supported() {
    let mut cluster = SimCluster::new(3, 1);
    cluster.set_modules(false);
    let mut runner = Runner::new(Sim::new(cluster, Sim::config(), 1), 1);
    let scope = std::sync::Arc::new(slotcache_core::cache::op::Scope {
        ns: slotcache_core::keys::Namespace::new("doc").expect("valid"),
        name: "doc:".into(),
        storage: slotcache_core::cache::Storage::Document,
        max_value_size: 1 << 20,
        durability: slotcache_core::cache::Durability::default(),
        expire_after_read_ms: None,
    });
    let mut ops = CacheOps::new(scope);
    ops.search = Some(Search::new(&ops.scope, Variant::Correct));
    let all = [
        Op::Query { filter: "g=red".into() },
        Op::EnsureIndex,
        Op::DropIndex,
        Op::Set { key: "k00".into(), value: "w0-1".into(), tags: vec!["t0".into()] },
        Op::Get { key: "k00".into() },
        Op::Invalidate { key: "k00".into() },
    ];
    for (w, op) in all.iter().enumerate() {
        let m = ops.machine(op, runner.sim.now).expect("a machine");
        runner.spawn(w, op.clone(), m);
    }
    let mut records = Vec::new();
    for _ in 0..1_000 {
        let more = runner.step(Duration::from_millis(50));
        records.extend(runner.take_finished());
        if !more && runner.running() == 0 {
            break;
        }
    }
    assert_eq!(records.len(), all.len());
    for r in &records {
        let unsupported = matches!(&r.result, Err(e) if e.starts_with("search operations not supported"));
        // The invalidation of a key never written runs no JSON command (`TYPE` says none).
        let nothing = matches!((&r.op, &r.result), (Op::Invalidate { .. }, Ok(Ret::Existed(false))));
        assert!(unsupported || nothing, "{r}");
    }
}
