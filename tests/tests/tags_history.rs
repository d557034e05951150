//! The tag guarantees of `docs/consistency.md`, checked on recorded concurrent histories
//! against a real cluster (3 masters + 3 replicas): plainly, while a master is killed and its
//! replica promoted, while slots migrate (Valkey 9 atomic `CLUSTER MIGRATESLOTS`, and legacy
//! `MIGRATE` with ASK), and — the negative control — against the reference's naive protocol,
//! where the same checker must find violations.
//!
//! The other conditions have a file (a cluster) each, on the same run and checks
//! (`slotcache_tests::history::run`):
//!
//! - `tags_history_processes`: three client processes (one per runtime), each with its own
//!   provider, their histories merged on one clock; and the naive protocol caught there too;
//! - `tags_history_failover_migration`: the source primary of a legacy migration killed
//!   mid-migration, its replica promoted and finishing the migration;
//! - `tags_history_two_failovers`: one shard failed over twice (the promoted replica killed in
//!   turn once the old primary is back as its replica);
//! - (here) reads from replicas: the tag rule holds for them, the key rule is waived (lag);
//! - (here) short TTLs: the workers' entries expire during the run;
//! - `tags_history_script_flush_restart`: `SCRIPT FLUSH` on every node, then a primary
//!   restarted empty (scripts lost both ways);
//! - `tags_history_failover_atomic_migration`: the source primary of an atomic migration
//!   (`CLUSTER MIGRATESLOTS`) killed while the job is under way.
//!
//! Runtimes: the plain run on tokio, smol and async-std in turn; the failover on smol; the
//! atomic migration on async-std; the legacy migration and the rest on tokio.
//!
//! Each run: workers (tasks of its runtime) for a few seconds over a few keys and tags, mixing
//! reads (`get`, `get_entry`, `bulk_get`, `get` with a loader, `entries()`, `keys()`), writes
//! (`set`, `bulk_set`, `compute`, `refresh`, `bulk_refresh`, `set_expires_after`) and
//! invalidations (by key, by tags, rarely `invalidate_all`; see
//! `slotcache_tests::history::workload`); then the quiescent checks
//! (guarantees 2–5, exact counts), then the history check (guarantee 1) and the in-run count
//! check (guarantee 3's bound: never more than could have been deleted) over everything
//! recorded. Each prints a `[figure]` line. The tests take turns (one cluster and one workload
//! at a time: two shared cores).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use slotcache_core::key_slot;
use slotcache_tests::conformance::{ALL, Rt, cmdstat_calls, info_number};
use slotcache_tests::history::naive::NaiveSubject;
use slotcache_tests::history::run::{
    Disruption, Runner, Window, assert_clean, assert_windows_failed_operations, check_run, check_run_with,
    hot_slots, other_master, slotcache, slotcache_with, start, wait_for_traffic,
};
use slotcache_tests::history::workload::Spec;
use slotcache_tests::history::{Subject, Violation, per_property};
use slotcache_tests::{Cluster, ClusterBuilder, DRILL_TIMEOUT};

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
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
        let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |_, _| Ok("none".into()));
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
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c, clock| {
        wait_for_traffic(c, 0, 300)?; // the workload is under way on the victim's shard
        let t0 = Instant::now();
        let from = clock.now();
        c.kill(0)?;
        c.wait_promoted(3, DRILL_TIMEOUT)?;
        let window =
            Window { name: "master 0 killed, until replica 3 promoted".into(), from, to: clock.now() };
        let promoted = t0.elapsed();
        c.restart(0)?;
        c.wait_replica_of(0, 3, DRILL_TIMEOUT)?;
        Ok(Disruption {
            what: format!(
                "SIGKILL of master 0 (serving hot slots {on_node_0:?}); replica 3 promoted after {promoted:.2?}; \
                 old master back as its replica after {:.2?}",
                t0.elapsed()
            ),
            windows: vec![window],
        })
    });
    o.print("failover", "slotcache", &spec);
    rt.block_on(subject.close());
    assert_windows_failed_operations("failover", &o);
    assert_clean("failover", &o);
}

/// Reads from replicas (`send_to_replicas`) while the workers run: values may lag (a key
/// `invalidate`d on its primary may still be read from its replica, which the checker allows
/// for these reads), but tag checks go to primaries, so guarantee 1's tag rule holds for every
/// read. The quiescent checks run through a second provider reading primaries only.
#[test]
fn history_with_replica_reads() {
    let _t = turn();
    let rt = Runner::new(Rt::AsyncStd);
    let mut cluster = start(ClusterBuilder::new().label("hist-replica-reads"));
    let ns = "hist-replica-reads";
    let readers = slotcache_with(&rt, &cluster, ns, |cfg| cfg.send_to_replicas = true);
    let checker = slotcache(&rt, &cluster, ns);
    let replicas: Vec<usize> = cluster
        .masters()
        .expect("masters")
        .into_iter()
        .flat_map(|m| cluster.replicas_of(m).expect("replicas"))
        .collect();
    let gets =
        |c: &Cluster| -> u64 { replicas.iter().map(|&r| cmdstat_calls(c, r, "get").unwrap_or(0)).sum() };
    let before = gets(&cluster);
    let spec = Spec { replica_reads: true, ..Spec::new(Duration::from_secs(3)) };
    let o = check_run_with(&rt, &mut cluster, readers.clone(), checker.as_ref(), &spec, |_, _| {
        Ok("none (reads from replicas)".into())
    });
    let replica_gets = gets(&cluster).saturating_sub(before);
    o.print("replica-reads", "slotcache", &spec);
    eprintln!("[figure] tags_history run=replica-reads GETs served by replicas: {replica_gets}");
    rt.block_on(readers.close());
    rt.block_on(checker.close());
    assert!(
        replica_gets > 100,
        "the replicas served too few reads ({replica_gets}): replica reads were not on"
    );
    assert_clean("replica-reads", &o);
}

/// The workers' `set`s with TTLs from 1 to 100 ms (shorter than the time between two writes of
/// a key, often): entries expire during the run, under reads, invalidations and counts (tag
/// members pruned as they expire). The quiescent checks wait until the short-lived entries
/// expired.
#[test]
fn history_with_short_ttls() {
    let _t = turn();
    let rt = Runner::new(Rt::Tokio);
    let mut cluster = start(ClusterBuilder::new().label("hist-short-ttls"));
    let subject = slotcache(&rt, &cluster, "hist-short-ttls");
    let masters = cluster.masters().expect("masters");
    let expired = |c: &Cluster| -> u64 {
        masters.iter().map(|&m| info_number(c, m, "stats", "expired_keys").unwrap_or(0)).sum()
    };
    let before = expired(&cluster);
    let spec = Spec { ttl: Some(Duration::from_millis(100)), ..Spec::new(Duration::from_secs(3)) };
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |_, _| Ok("none (TTLs of 1-100 ms)".into()));
    let expired_keys = expired(&cluster).saturating_sub(before);
    o.print("short-ttls", "slotcache", &spec);
    eprintln!("[figure] tags_history run=short-ttls keys expired by the servers: {expired_keys}");
    rt.block_on(subject.close());
    assert!(expired_keys > 20, "too few entries expired ({expired_keys}): the TTLs were not short");
    assert_clean("short-ttls", &o);
}

/// Moves each slot to another master and back again, with `mover(c, slot, from, to)`.
fn migrate_round_trip(
    c: &Cluster,
    slots: &[u16],
    mover: impl Fn(&Cluster, u16, usize, usize) -> slotcache_tests::Result<()>,
) -> slotcache_tests::Result<Disruption> {
    let t0 = Instant::now();
    for &s in slots {
        // The workload is under way on the shard of each slot.
        wait_for_traffic(c, c.slot_owner(s)?.ok_or_else(|| slotcache_tests::Error::new("unowned"))?, 50)?;
    }
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
    )
    .into())
}

#[test]
fn history_while_slots_migrate_atomically() {
    let _t = turn();
    let rt = Runner::new(Rt::AsyncStd);
    let mut cluster = start(ClusterBuilder::new().label("hist-atomic"));
    let subject = slotcache(&rt, &cluster, "hist-atomic");
    let spec = Spec { tail: Duration::from_millis(500), ..Spec::new(Duration::from_secs(3)) };
    let slots = hot_slots(subject.as_ref(), &spec);
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c, _| {
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
    let o = check_run(&rt, &mut cluster, subject.clone(), &spec, |c, _| {
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
        let o = check_run(&rt, &mut cluster, naive.clone(), &spec, |_, _| Ok("none".into()));
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
