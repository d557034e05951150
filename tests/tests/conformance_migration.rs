//! Conformance (real cluster, every runtime): slot migrations under traffic.
//!
//! - A legacy migration (`SETSLOT IMPORTING/MIGRATING`, `MIGRATE` a few keys at a time,
//!   `SETSLOT NODE`) of slots that traffic is writing and reading: moved keys answer `ASK`, then
//!   the finished slots answer `MOVED`; the client follows both with zero user-visible errors and
//!   zero wrong values.
//! - A Valkey 9 atomic migration (`CLUSTER MIGRATESLOTS`) of a slot range under traffic: the
//!   client follows the `MOVED`s with zero user-visible errors and zero wrong values.
//! - `TRYAGAIN`: an `MGET` of same-slot keys, some moved and some not, during a legacy
//!   migration. With the default retry budget (6 attempts, about 62 ms of backoff) it fails fast
//!   with a typed `TRYAGAIN` server error while the migration stays open; with a budget that
//!   spans the migration it is retried until the migration completes (completed concurrently,
//!   after a bounded delay) and returns every value.

use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_core::ServerErrorKind;
use slotcache_rt::{Client, Cmd, Error, RequestError, Value};
use slotcache_tests::conformance::{ALL, TrafficRun, config, seed_keys, slot_owners, traffic_plan};
use slotcache_tests::{Cluster, ClusterBuilder, key_for_slot};

fn cluster(label: &str) -> Cluster {
    ClusterBuilder::new().masters(3).replicas(0).label(label).start().expect("cluster")
}

/// Keys of the slots being migrated split into `tasks` groups, plus the groups of `others`
/// (keys that stay where they are); one traffic task per group, tagged by group index.
fn groups(moving: &[String], others: Vec<(usize, Vec<String>)>, tasks: usize) -> Vec<(usize, Vec<String>)> {
    let mut g: Vec<Vec<String>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, k) in moving.iter().enumerate() {
        g[i % tasks].push(k.clone());
    }
    g.extend(others.into_iter().map(|(_, keys)| keys));
    g.into_iter().enumerate().collect()
}

#[test]
fn legacy_migration_ask_then_moved_under_traffic_has_no_errors() {
    let c = cluster("conf-mig-legacy");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        let owners = slot_owners(&c, 0).expect("owners");
        let (from, to) = (round % 3, (round + 1) % 3);
        // Three slots of `from`, 30 keys each.
        let from_slots: Vec<u16> = (0..16384u16).filter(|&s| owners[usize::from(s)] == Some(from)).collect();
        let slots: Vec<u16> = (0..3).map(|i| from_slots[100 + i * 997]).collect();
        let moving: Vec<String> = slots
            .iter()
            .flat_map(|&s| (0..30).map(move |i| key_for_slot(s, &format!("lg:{p}:{i}"))))
            .collect();
        seed_keys(&c, from, &moving).expect("seed");
        let others = traffic_plan(&c, &owners, 0..3, 1, 8, &format!("lg-other:{p}")).expect("seed");
        let cfg = config(&c);
        let c = &c;
        rt.block_on(async move {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let run = TrafficRun::start(rt, &client, groups(&moving, others, 9));
            rt.sleep(Duration::from_millis(200)).await;
            let t_mig = Instant::now();
            for &slot in &slots {
                let m = c.begin_legacy_migration(slot, from, to).expect("begin");
                // A few keys at a time, so traffic meets a half-moved slot (ASK) for a while.
                for _ in 0..100 {
                    let keys = m.keys_left(c, 4).expect("keys left");
                    if keys.is_empty() {
                        break;
                    }
                    m.move_keys(c, &keys).expect("MIGRATE");
                    rt.sleep(Duration::from_millis(10)).await;
                }
                m.finish(c).expect("finish");
            }
            let took = t_mig.elapsed();
            rt.sleep(Duration::from_millis(300)).await;
            let all = run.finish().await;
            let stats = client.stats().await.expect("stats");
            client.close().await;
            let errors = all.errors().count();
            eprintln!(
                "[figure] legacy-migration/{p}: 3 slots x 30 keys moved from node {from} to node {to} in {} ms \
                 under traffic: {} requests, {errors} errors {:?}, {} wrong; client followed {} ASK and {} \
                 MOVED, {} refreshes",
                took.as_millis(),
                all.ops.len(),
                all.error_kinds(),
                all.wrong.len(),
                stats.ask,
                stats.moved,
                stats.refreshes
            );
            assert!(all.wrong.is_empty(), "{p}: wrong values: {:?}", all.wrong);
            assert_eq!(errors, 0, "{p}: user-visible errors: {:?}", all.error_kinds());
            assert_eq!(all.stale, 0, "{p}: stale reads");
            assert!(stats.ask > 0, "{p}: traffic met no ASK: {stats:?}");
            assert!(stats.moved > 0, "{p}: traffic met no MOVED: {stats:?}");
            for &slot in &slots {
                assert_eq!(c.slot_owner(slot).expect("owner"), Some(to), "{p}");
            }
        });
    }
}

#[test]
fn atomic_slot_migration_under_traffic_has_no_errors() {
    let c = cluster("conf-mig-atomic");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        let owners = slot_owners(&c, 0).expect("owners");
        let (from, to) = (round % 3, (round + 1) % 3);
        // 300 contiguous slots of `from`, from its first slot on, 2 keys each.
        let lo = (0..16384u16).find(|&s| owners[usize::from(s)] == Some(from)).expect("a slot");
        let hi = lo + 299;
        assert!((lo..=hi).all(|s| owners[usize::from(s)] == Some(from)), "{p}: contiguous");
        let moving: Vec<String> =
            (lo..=hi).flat_map(|s| (0..2).map(move |i| key_for_slot(s, &format!("am:{p}:{i}")))).collect();
        seed_keys(&c, from, &moving).expect("seed");
        let others = traffic_plan(&c, &owners, 0..3, 1, 8, &format!("am-other:{p}")).expect("seed");
        let cfg = config(&c);
        let c = &c;
        rt.block_on(async move {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let run = TrafficRun::start(rt, &client, groups(&moving, others, 9));
            rt.sleep(Duration::from_millis(300)).await;
            let took = c.migrate_slots(from, to, lo, hi).expect("CLUSTER MIGRATESLOTS");
            rt.sleep(Duration::from_millis(300)).await;
            let all = run.finish().await;
            let stats = client.stats().await.expect("stats");
            client.close().await;
            let errors = all.errors().count();
            eprintln!(
                "[figure] atomic-migration/{p}: slots {lo}-{hi} ({} keys) moved from node {from} to node {to} \
                 in {} ms under traffic: {} requests, {errors} errors {:?}, {} wrong; client followed {} \
                 MOVED, {} ASK, {} TRYAGAIN, {} refreshes",
                moving.len(),
                took.as_millis(),
                all.ops.len(),
                all.error_kinds(),
                all.wrong.len(),
                stats.moved,
                stats.ask,
                stats.tryagain,
                stats.refreshes
            );
            assert!(all.wrong.is_empty(), "{p}: wrong values: {:?}", all.wrong);
            assert_eq!(errors, 0, "{p}: user-visible errors: {:?}", all.error_kinds());
            assert_eq!(all.stale, 0, "{p}: stale reads");
            assert!(stats.moved > 0, "{p}: traffic met no MOVED: {stats:?}");
            assert_eq!(c.slot_owner(lo).expect("owner"), Some(to), "{p}");
        });
    }
}

#[test]
fn tryagain_on_multikey_during_legacy_migration_is_retried_until_it_completes() {
    let c = cluster("conf-mig-tryagain");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        let owners = slot_owners(&c, 0).expect("owners");
        let (from, to) = (round % 3, (round + 1) % 3);
        let slot = (0..16384u16).filter(|&s| owners[usize::from(s)] == Some(from)).nth(500).expect("slot");
        let keys: Vec<String> = (0..4).map(|i| key_for_slot(slot, &format!("ta:{p}:{i}"))).collect();
        seed_keys(&c, from, &keys).expect("seed");
        let want = Value::Array(keys.iter().map(|k| Value::Bulk(Bytes::from(format!("{k}|0")))).collect());
        let mget = || {
            let mut cmd = Cmd::new("MGET");
            for k in &keys {
                cmd.push_arg(k.as_str());
            }
            cmd
        };

        // Half-moved slot: the source has keys 1..3, the target key 0.
        let m = c.begin_legacy_migration(slot, from, to).expect("begin");
        m.move_keys(&c, &keys[..1]).expect("MIGRATE");

        // While the migration stays open: retried until the request's deadline (300 ms here), then
        // a typed TRYAGAIN, never later than the deadline.
        let mut cfg = config(&c);
        cfg.client.request_timeout = Duration::from_millis(300);
        let e = rt.block_on(async {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let t = Instant::now();
            let r = client.send(mget()).await;
            let took = t.elapsed();
            let stats = client.stats().await.expect("stats");
            client.close().await;
            eprintln!(
                "[figure] tryagain/{p}: gave up at the 300 ms deadline after {} ms and {} TRYAGAIN",
                took.as_millis(),
                stats.tryagain
            );
            assert!(took < Duration::from_millis(450), "{p}: {took:?}");
            assert!(
                took >= Duration::from_millis(150),
                "{p}: kept retrying while the deadline allowed: {took:?}"
            );
            assert!(stats.tryagain >= 4, "{p}: retried: {stats:?}");
            r.expect_err("TRYAGAIN while the migration is open")
        });
        match &e {
            Error::Request(RequestError::Server(s)) => {
                assert_eq!(s.kind(), &ServerErrorKind::TryAgain, "{p}: {e}");
            }
            other => panic!("{p}: expected a TRYAGAIN server error, got {other:?}"),
        }

        // The default policy with a deadline that spans the migration: retried until it completes.
        let mut cfg = config(&c);
        cfg.client.request_timeout = Duration::from_secs(5);
        let delay = Duration::from_millis(300);
        std::thread::scope(|s| {
            let (m, c) = (&m, &c);
            let completer = s.spawn(move || {
                // The migration takes a while; the MGET is sent meanwhile.
                std::thread::sleep(delay);
                m.move_all(c)?;
                // From here the source has no key of the slot left: it answers ASK, not TRYAGAIN.
                let moved = Instant::now();
                m.finish(c)?;
                Ok::<Instant, slotcache_tests::Error>(moved)
            });
            rt.block_on(async {
                let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
                let t = Instant::now();
                let r = client.send(mget()).await;
                let done = Instant::now();
                let stats = client.stats().await.expect("stats");
                client.close().await;
                let moved = completer.join().expect("completer").expect("migration");
                eprintln!(
                    "[figure] tryagain/{p}: MGET answered {} ms after it was sent ({} ms after the last \
                     keys moved), {} TRYAGAIN, {} ASK and {} MOVED followed",
                    (done - t).as_millis(),
                    done.saturating_duration_since(moved).as_millis(),
                    stats.tryagain,
                    stats.ask,
                    stats.moved
                );
                assert_eq!(r.expect("MGET after the migration"), want, "{p}");
                assert!(stats.tryagain >= 1, "{p}: met TRYAGAIN: {stats:?}");
                assert!(done >= moved, "{p}: answered before the migration moved every key");
            });
        });
        assert_eq!(c.slot_owner(slot).expect("owner"), Some(to), "{p}");
    }
}
