//! The tag guarantees of `docs/consistency.md`, checked on recorded concurrent histories
//! against a real cluster (3 masters + 3 replicas): plainly, while a master is killed and its
//! replica promoted, while slots migrate (Valkey 9 atomic `CLUSTER MIGRATESLOTS`, and legacy
//! `MIGRATE` with ASK), and — the negative control — against the reference's naive protocol,
//! where the same checker must find violations.
//!
//! Runtimes: the plain run on tokio, smol and async-std in turn; the failover on smol; the
//! atomic migration on async-std; the legacy migration and the rest on tokio.
//!
//! Each run: 16 workers (tasks of its runtime) for a few seconds over 32 keys and 4 tags (see
//! `slotcache_tests::history::workload`), then the quiescent checks (guarantees 2–5), then the
//! history check (guarantee 1) over everything recorded. Each prints a `[figure]` line. The
//! tests take turns (one cluster and one workload at a time: two shared cores).

use core::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use slotcache_core::key_slot;
use slotcache_rt::ProviderConfig;
use slotcache_tests::conformance::{ALL, Rt};
use slotcache_tests::history::check::{Figures, check_p1};
use slotcache_tests::history::naive::NaiveSubject;
use slotcache_tests::history::quiescent::{self, Report};
use slotcache_tests::history::workload::{self, Spec, Stop};
use slotcache_tests::history::{Clock, History, SlotcacheSubject, Subject, Violation, per_property};
use slotcache_tests::{Cluster, ClusterBuilder, DRILL_TIMEOUT};

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn start(builder: ClusterBuilder) -> Cluster {
    let t0 = Instant::now();
    let c = builder.start().expect("cluster");
    eprintln!("[timing] tags_history: cluster ready (permit wait included) in {:.2?}", t0.elapsed());
    c
}

/// The runtime a run uses, kept for the whole run (tokio's is built once: the provider's driver
/// lives in it between `block_on` calls).
struct Runner {
    rt: Rt,
    tokio: Option<tokio::runtime::Runtime>,
}

impl Runner {
    fn new(rt: Rt) -> Self {
        let tokio = matches!(rt, Rt::Tokio).then(|| {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio")
        });
        Self { rt, tokio }
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match &self.tokio {
            Some(t) => t.block_on(fut),
            None => self.rt.block_on(fut),
        }
    }
}

fn slotcache(rt: &Runner, cluster: &Cluster, ns: &str) -> Arc<SlotcacheSubject> {
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    let mut cfg = ProviderConfig::new(seeds);
    cfg.client_name = "slotcache-tags-history".into();
    cfg.bulk_operation_timeout = Duration::from_secs(3);
    Arc::new(rt.block_on(SlotcacheSubject::connect(rt.rt.runtime(), cfg, ns)).expect("provider"))
}

/// What one run found.
struct Outcome {
    history: History,
    p1: Vec<Violation>,
    fig: Figures,
    quiescent: Report,
    disruption: String,
}

impl Outcome {
    fn violations(&self) -> Vec<&Violation> {
        self.p1.iter().chain(&self.quiescent.violations).collect()
    }

    fn print(&self, run: &str, subject: &str, spec: &Spec) {
        let all = self.violations();
        let per: Vec<Violation> = all.iter().map(|v| (*v).clone()).collect();
        let [p1, p2, p3, p4, p5] = per_property(&per);
        let h = &self.history;
        eprintln!(
            "[figure] tags_history run={run} subject={subject} seed={} ops={} reads={} hits={} \
             hits_after_covering_invalidation={} invalidations={} errors={} counts_checked={} \
             metadata_checked={} violations={} (P1 {p1}, P2 {p2}, P3 {p3}, P4 {p4}, P5 {p5}) unchecked={}",
            spec.seed,
            h.len(),
            h.reads_ok(),
            self.fig.hits_checked,
            self.fig.hits_after_covering_invalidation,
            h.invalidations_ok(),
            h.errors(),
            self.quiescent.counts_checked,
            self.quiescent.metadata_checked,
            all.len(),
            self.quiescent.unchecked.len(),
        );
        eprintln!("[figure] tags_history run={run} disruption: {}", self.disruption);
        let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for r in &h.records {
            if let Err(e) = &r.result {
                let op = format!("{}", r.op);
                let op = op.split('(').next().unwrap_or_default();
                *kinds.entry(format!("{op}: {}", e.chars().take(90).collect::<String>())).or_default() += 1;
            }
        }
        for (kind, n) in kinds.iter().take(12) {
            eprintln!("  errors {n:>5} x {kind}");
        }
        for v in all.iter().take(8) {
            eprintln!("  violation {v}");
        }
        if all.len() > 8 {
            eprintln!("  ... {} more", all.len() - 8);
        }
        for u in &self.quiescent.unchecked {
            eprintln!("  unchecked: {u}");
        }
    }
}

/// Runs the workload on `subject` while `disrupt` acts on the cluster (in its own thread), then
/// the quiescent checks, then the history check.
fn check_run(
    rt: &Runner,
    cluster: &mut Cluster,
    subject: Arc<dyn Subject>,
    spec: &Spec,
    disrupt: impl FnOnce(&mut Cluster) -> slotcache_tests::Result<String> + Send,
) -> Outcome {
    let clock = Clock::new();
    let t0 = Instant::now();
    let stop = Stop::pending();
    let (parts, disruption) = std::thread::scope(|s| {
        let done = stop.clone();
        let c = &mut *cluster;
        let d = s.spawn(move || {
            let r = disrupt(c);
            done.disruption_done();
            r
        });
        let parts = rt.block_on(workload::run(rt.rt, subject.clone(), spec, clock, stop));
        (parts, d.join().expect("disruption thread"))
    });
    let parts = parts.expect("workload");
    let disruption = disruption.expect("disruption");
    cluster.wait_healthy(DRILL_TIMEOUT).expect("cluster healthy after the run");
    let t1 = Instant::now();
    let workload_history = History::merge(parts);
    let quiescent =
        rt.block_on(quiescent::run(rt.rt, subject.as_ref(), cluster, clock, spec, &workload_history));
    let t2 = Instant::now();
    let history = History::merge([workload_history.records, quiescent.records.clone()]);
    let (p1, fig) = check_p1(&history);
    eprintln!(
        "[timing] tags_history {}: workload {:.2?}, quiescent checks {:.2?}, history check {:.2?}",
        subject.name(),
        t1 - t0,
        t2 - t1,
        t2.elapsed()
    );
    Outcome { history, p1, fig, quiescent, disruption }
}

fn assert_clean(run: &str, o: &Outcome) {
    assert!(o.violations().is_empty(), "{run}: slotcache broke a tag guarantee (see the violations above)");
    assert!(o.quiescent.unchecked.is_empty(), "{run}: some quiescent checks could not be made (see above)");
    assert!(o.fig.hits_checked > 100, "{run}: too few hits to check anything");
    assert!(o.fig.hits_after_covering_invalidation > 0, "{run}: no read was ever exposed to an invalidation");
    assert!(o.history.invalidations_ok() > 100, "{run}: too few invalidations");
    assert!(
        o.quiescent.counts_checked >= 7 && o.quiescent.metadata_checked >= 9,
        "{run}: quiescent checks skipped"
    );
}

/// The slots of some of a namespace's tag keys and data keys (distinct).
fn hot_slots(subject: &dyn Subject, spec: &Spec) -> Vec<u16> {
    let mut keys: Vec<Vec<u8>> = spec.tag_names().iter().take(2).map(|t| subject.tag_key(t)).collect();
    keys.extend(spec.key_names().iter().take(4).map(|k| subject.data_key(k)));
    let mut slots: Vec<u16> = keys.iter().map(|k| key_slot(k).get()).collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// A master other than `m`.
fn other_master(c: &Cluster, m: usize) -> usize {
    let masters = c.masters().expect("masters");
    let i = masters.iter().position(|&x| x == m).unwrap_or(0);
    masters[(i + 1) % masters.len()]
}

#[test]
fn history_plain() {
    let _t = turn();
    let mut cluster = start(ClusterBuilder::new().label("hist-plain"));
    for rt in ALL {
        let run = format!("plain/{}", rt.name());
        let rt = Runner::new(rt);
        let subject = slotcache(&rt, &cluster, &format!("hist-plain-{}", rt.rt.name()));
        let spec = Spec::new(Duration::from_secs(3));
        let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |_| Ok("none".into()));
        o.print(&run, "slotcache", &spec);
        rt.block_on(subject.close());
        assert_clean(&run, &o);
    }
}

#[test]
fn history_while_a_master_fails_over() {
    let _t = turn();
    let rt = Runner::new(Rt::Smol);
    let mut cluster =
        start(ClusterBuilder::new().node_timeout(Duration::from_millis(1000)).label("hist-failover"));
    let subject = slotcache(&rt, &cluster, "hist-failover");
    let spec = Spec { max: Duration::from_secs(25), ..Spec::new(Duration::from_secs(3)) };
    let on_node_0: Vec<String> = hot_slots(subject.as_ref(), &spec)
        .into_iter()
        .filter(|&s| cluster.slot_owner(s).ok().flatten() == Some(0))
        .map(|s| s.to_string())
        .collect();
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c| {
        std::thread::sleep(Duration::from_millis(1000)); // let the workload get going
        let t0 = Instant::now();
        c.kill(0)?;
        c.wait_promoted(3, DRILL_TIMEOUT)?;
        let promoted = t0.elapsed();
        c.restart(0)?;
        c.wait_replica_of(0, 3, DRILL_TIMEOUT)?;
        Ok(format!(
            "SIGKILL of master 0 (serving hot slots {on_node_0:?}); replica 3 promoted after {promoted:.2?}; \
             old master back as its replica after {:.2?}",
            t0.elapsed()
        ))
    });
    o.print("failover", "slotcache", &spec);
    rt.block_on(subject.close());
    assert!(o.history.errors() > 0, "the failover window should have failed some operations");
    assert_clean("failover", &o);
}

/// Moves each slot to another master and back again, with `mover(c, slot, from, to)`.
fn migrate_round_trip(
    c: &Cluster,
    slots: &[u16],
    mover: impl Fn(&Cluster, u16, usize, usize) -> slotcache_tests::Result<()>,
) -> slotcache_tests::Result<String> {
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(500)); // let the workload get going
    let mut homes = Vec::new();
    for &s in slots {
        let from =
            c.slot_owner(s)?.ok_or_else(|| slotcache_tests::Error::new(format!("slot {s} unowned")))?;
        let to = other_master(c, from);
        mover(c, s, from, to)?;
        homes.push((s, from, to));
    }
    for &(s, from, to) in &homes {
        mover(c, s, to, from)?;
    }
    Ok(format!(
        "slots {slots:?} moved away and back ({} migrations) in {:.2?}",
        2 * slots.len(),
        t0.elapsed()
    ))
}

#[test]
fn history_while_slots_migrate_atomically() {
    let _t = turn();
    let rt = Runner::new(Rt::AsyncStd);
    let mut cluster = start(ClusterBuilder::new().label("hist-atomic"));
    let subject = slotcache(&rt, &cluster, "hist-atomic");
    let spec = Spec { tail: Duration::from_millis(500), ..Spec::new(Duration::from_secs(3)) };
    let slots = hot_slots(subject.as_ref(), &spec);
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c| {
        migrate_round_trip(c, &slots, |c, s, from, to| {
            // Two-slot ranges: the harness matches a one-slot job as "656" while the server lists
            // it as "656-656" (so its wait never sees the job succeed).
            let (lo, hi) =
                if s < 16383 && c.slot_owner(s + 1)? == Some(from) { (s, s + 1) } else { (s - 1, s) };
            c.migrate_slots(from, to, lo, hi)?;
            std::thread::sleep(Duration::from_millis(100)); // traffic on the new owner
            Ok(())
        })
    });
    o.print("atomic-migration", "slotcache", &spec);
    rt.block_on(subject.close());
    assert_clean("atomic-migration", &o);
}

#[test]
fn history_while_slots_migrate_with_legacy_migrate() {
    let _t = turn();
    let rt = Runner::new(Rt::Tokio);
    let mut cluster = start(ClusterBuilder::new().label("hist-legacy"));
    let subject = slotcache(&rt, &cluster, "hist-legacy");
    let spec = Spec { tail: Duration::from_millis(500), ..Spec::new(Duration::from_secs(3)) };
    let slots = hot_slots(subject.as_ref(), &spec);
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c| {
        migrate_round_trip(c, &slots, |c, s, from, to| {
            let m = c.begin_legacy_migration(s, from, to)?;
            let keys = m.keys_left(c, 1000)?;
            m.move_keys(c, &keys[..keys.len() / 2])?;
            // Half the slot's keys on each side: ASK for moved keys and new keys.
            std::thread::sleep(Duration::from_millis(150));
            m.move_all(c)?;
            m.finish(c)
        })
    });
    o.print("legacy-migration", "slotcache", &spec);
    rt.block_on(subject.close());
    assert_clean("legacy-migration", &o);
}

/// The negative control: the reference's protocol under the same workload and checker.
///
/// Its tags accumulate, so a key is usually still listed in some tag set when the final
/// invalidations run; an orphan survives them only when every membership of its key was lost.
/// That is common but not certain in one 3 s run, so up to 3 runs (each on a fresh namespace)
/// are made until one shows an orphan.
#[test]
fn naive_protocol_is_caught() {
    let _t = turn();
    let rt = Runner::new(Rt::Tokio);
    let mut cluster = start(ClusterBuilder::new().label("hist-naive"));
    let mut totals = [0usize; 5];
    for round in 0..3 {
        let runtime = rt.rt.runtime();
        let ns = format!("naive-hist-{round}");
        let naive = Arc::new(
            rt.block_on(NaiveSubject::connect(runtime, cluster.seeds(), &ns, Duration::from_millis(1)))
                .expect("naive client"),
        );
        let mut spec = Spec::new(Duration::from_secs(3));
        spec.seed = spec.seed.wrapping_add(round);
        let o = check_run(&rt, &mut cluster, naive.clone(), &spec, |_| Ok("none".into()));
        o.print(&format!("plain-{round}"), "naive", &spec);
        rt.block_on(naive.close());
        let per: Vec<Violation> = o.violations().into_iter().cloned().collect();
        for (t, n) in totals.iter_mut().zip(per_property(&per)) {
            *t += n;
        }
        if totals[1] > 0 {
            break;
        }
    }
    let [p1, p2, p3, p4, p5] = totals;
    eprintln!("[figure] tags_history naive totals: P1 {p1}, P2 {p2}, P3 {p3}, P4 {p4}, P5 {p5}");
    assert!(
        p2 > 0,
        "the checker found no orphan in the naive protocol in 3 runs: it cannot fail, so it proves nothing"
    );
    assert!(p1 > 0, "the naive protocol's lost memberships must show as stale reads after an invalidation");
    assert!(p4 > 0, "the naive protocol accumulates tags; the replace check must say so");
    assert!(p5 > 0, "the naive protocol never prunes its tag sets; the metadata check must say so");
}

/// Regression (found by the P3 check): an entry already made stale by one of its tags was
/// counted again by an invalidation of another of its tags.
///
/// The race: `set(k, [a, b])` reads both tokens, a concurrent `invalidate_by_tags([b])` replaces
/// b's token and runs its deletion step before the write's `SET` lands. The entry is then stale
/// (a miss) but still a member of tag a. Here the same end state is made deterministically:
/// write, keep the stored bytes, invalidate b, put the bytes back.
#[test]
fn an_entry_already_stale_is_not_counted_again() {
    let _t = turn();
    let rt = Runner::new(Rt::Tokio);
    let cluster = start(ClusterBuilder::new().replicas(0).label("hist-stale-count"));
    let subject = slotcache(&rt, &cluster, "stale-count");
    let cache = subject.cache().clone();
    let raw = |args: &[&[u8]]| {
        let owner = cluster.owner_of_key(args[1]).expect("owner");
        cluster.cmd(owner, args).expect("raw command")
    };
    rt.block_on(async {
        let k = |s: &str| s.to_owned();
        // Writes `key` with tags a and b, then leaves it stale through b but listed in a.
        let stale_through_b = async |key: &str| {
            cache.set(&k(key), &k("old"), &["a", "b"]).await.expect("set");
            let fk = subject.data_key(key);
            let bytes = raw(&[b"GET", &fk]).as_bytes().expect("stored").to_vec();
            assert_eq!(cache.invalidate_by_tags(&["b"]).await.expect("invalidate b"), 1);
            assert_eq!(raw(&[b"SET", &fk, &bytes]).as_str(), Some("OK"), "the late SET lands");
            assert_eq!(cache.get_if_present(&k(key)).await.expect("get"), None, "{key} is stale through b");
            fk
        };
        // One tag: the stale k1 is deleted (clean-up) but only the visible k2 is counted.
        let k1 = stale_through_b("k1").await;
        cache.set(&k("k2"), &k("v2"), &["a", "b"]).await.expect("fresh k2");
        assert_eq!(
            cache.invalidate_by_tags(&["a"]).await.expect("invalidate a"),
            1,
            "k1 was already invisible"
        );
        // b's invalidation removed k1 from its other tags, so the late SET's bytes are not found
        // by a's invalidation: they stay invisible (stale through b) until they expire
        // (docs/consistency.md, guarantee 3's exception).
        assert_eq!(cache.get_if_present(&k("k1")).await.expect("get"), None, "k1 stays a miss");
        let _ = k1;
        // Both tags at once: the stale k3 is not counted, the visible k4 is (once).
        let k3 = stale_through_b("k3").await;
        cache.set(&k("k4"), &k("v4"), &["a", "b"]).await.expect("fresh k4");
        assert_eq!(
            cache.invalidate_by_tags(&["a", "b"]).await.expect("invalidate a, b"),
            1,
            "only k4 counts"
        );
        assert_eq!(cache.get_if_present(&k("k3")).await.expect("get"), None, "k3 stays a miss");
        let _ = k3;
        // A fresh entry with an untouched other tag is counted.
        cache.set(&k("k5"), &k("v5"), &["a", "c"]).await.expect("fresh k5");
        assert_eq!(cache.invalidate_by_tags(&["a"]).await.expect("invalidate a"), 1);
    });
    rt.block_on(subject.close());
}

/// Regression (found by the legacy-migration run): `invalidate_by_tags` of a tag whose key sits
/// in a slot being migrated with legacy `MIGRATE` (the key still on the source) failed with
/// `ERR ... non local key in a cluster node script`, after deleting the tag key half-way.
#[test]
fn invalidation_while_its_tag_slot_migrates_the_legacy_way() {
    let _t = turn();
    let rt = Runner::new(Rt::Tokio);
    let cluster = start(ClusterBuilder::new().replicas(0).label("hist-legacy-tag"));
    let subject = slotcache(&rt, &cluster, "legacy-tag");
    let cache = subject.cache().clone();
    let tag_key = subject.tag_key("t");
    let slot = key_slot(&tag_key).get();
    let k = |s: &str| s.to_owned();
    rt.block_on(async {
        for key in ["a", "b"] {
            cache.set(&k(key), &k("v"), &["t"]).await.expect("set");
        }
    });
    let from = cluster.slot_owner(slot).expect("owner").expect("served");
    let m = cluster.begin_legacy_migration(slot, from, other_master(&cluster, from)).expect("begin");
    // The tag key has not moved: the source runs the script.
    rt.block_on(async {
        assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("invalidate during the migration"), 2);
        assert_eq!(cache.get_if_present(&k("a")).await.expect("get"), None);
        cache.set(&k("c"), &k("v"), &["t"]).await.expect("set during the migration");
        assert_eq!(cache.get_if_present(&k("c")).await.expect("get"), Some(k("v")));
    });
    m.move_all(&cluster).expect("move the rest");
    m.finish(&cluster).expect("finish");
    rt.block_on(async {
        assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("invalidate after the migration"), 1);
        assert_eq!(cache.get_if_present(&k("c")).await.expect("get"), None);
    });
    rt.block_on(subject.close());
}
