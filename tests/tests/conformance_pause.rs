//! Conformance (real cluster, every runtime): a master frozen with `SIGSTOP` under traffic.
//!
//! 3 masters, no replicas, node timeout 5 s (so the short pause is never failed over and no node
//! declares the cluster down), request timeout 500 ms. 12 tasks (4 per shard) write and read
//! their own keys; one master is paused for 1.5 s (a different one on each runtime). Shows:
//!
//! - requests for the paused node's slots fail with a typed `Timeout`, each within its timeout
//!   (not later), and nothing else;
//! - the other shards keep serving with normal latency: no error, no slow request;
//! - after `SIGCONT` the paused node serves again at once: every request sent after the resume
//!   succeeds, and the first success comes within a short bound;
//! - zero wrong values.
//!
//! Prints `[figure]` lines per runtime: timeouts, their durations, healthy-shard latency during
//! the pause, and the time from `SIGCONT` to the first success.

use std::time::Duration;

use slotcache_rt::Client;
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, Op, TrafficRun, config, slot_owners, traffic_plan};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
const PAUSE: Duration = Duration::from_millis(1500);

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

#[test]
fn paused_master_times_out_its_slots_only_and_serves_again_after_sigcont() {
    let mut cluster = ClusterBuilder::new()
        .masters(3)
        .replicas(0)
        .node_timeout(Duration::from_secs(5))
        .label("conf-pause")
        .start()
        .expect("cluster");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        let victim = round;
        let owners = slot_owners(&cluster, 0).expect("owners");
        let plan = traffic_plan(&cluster, &owners, 0..3, 4, 6, &format!("pause:{p}")).expect("seed");
        let mut cfg = config(&cluster);
        cfg.client.request_timeout = REQUEST_TIMEOUT;
        let cluster = &mut cluster;
        rt.block_on(async move {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let run = TrafficRun::start(rt, &client, plan);
            let t0 = run.t0;
            rt.sleep(Duration::from_millis(300)).await;
            let t_pause = t0.elapsed();
            cluster.pause(victim).expect("SIGSTOP");
            rt.sleep(PAUSE).await;
            let t_cont = t0.elapsed();
            cluster.resume(victim).expect("SIGCONT");
            rt.sleep(Duration::from_millis(700)).await;
            let all = run.finish().await;
            let stats = client.stats().await.expect("stats");
            client.close().await;

            let (paused, healthy): (Vec<&Op>, Vec<&Op>) = all.ops.iter().partition(|o| o.tag == victim);
            let paused_errors: Vec<&&Op> = paused.iter().filter(|o| o.error.is_some()).collect();
            let healthy_errors: Vec<&&Op> = healthy.iter().filter(|o| o.error.is_some()).collect();
            let during = |o: &&&Op| o.start >= t_pause && o.start < t_cont;
            let healthy_lat: Vec<Duration> = healthy.iter().filter(during).map(|o| o.end - o.start).collect();
            let before_lat: Vec<Duration> =
                healthy.iter().filter(|o| o.end < t_pause).map(|o| o.end - o.start).collect();
            let timeout_lat: Vec<Duration> = paused_errors.iter().map(|o| o.end - o.start).collect();
            let first_ok = paused.iter().filter(|o| o.error.is_none() && o.end >= t_cont).map(|o| o.end).min();
            let after_cont = paused.iter().filter(|o| o.start >= t_cont).count();
            eprintln!(
                "[figure] pause/{p}: node {victim} paused {} ms: {} timeouts on its slots (each after {:?}..{:?}), \
                 {} errors elsewhere {:?}; healthy-shard latency p50 {:?} p99 {:?} max {:?} during the pause \
                 (before: p50 {:?} max {:?}); first success {:?} ms after SIGCONT; {} requests sent after it",
                (t_cont - t_pause).as_millis(),
                paused_errors.len(),
                timeout_lat.iter().min().copied().unwrap_or_default(),
                timeout_lat.iter().max().copied().unwrap_or_default(),
                healthy_errors.len(),
                all.error_kinds(),
                percentile(healthy_lat.clone(), 0.5),
                percentile(healthy_lat.clone(), 0.99),
                healthy_lat.iter().max().copied().unwrap_or_default(),
                percentile(before_lat.clone(), 0.5),
                before_lat.iter().max().copied().unwrap_or_default(),
                first_ok.map(|t| t.saturating_sub(t_cont).as_millis()),
                after_cont,
            );
            eprintln!("[figure] pause/{p}: client stats: timeouts {}, disconnects {}", stats.timeouts, stats.disconnects);

            assert!(all.wrong.is_empty(), "{p}: wrong values: {:?}", all.wrong);
            assert!(healthy_errors.is_empty(), "{p}: healthy shards failed: {healthy_errors:?}");
            assert!(!healthy_lat.is_empty(), "{p}: the healthy shards were served during the pause");
            let max = healthy_lat.iter().max().copied().unwrap_or_default();
            assert!(max < Duration::from_millis(250), "{p}: a healthy-shard request took {max:?} during the pause");
            assert!(paused_errors.len() >= 4, "{p}: the paused shard's requests timed out");
            for e in &paused_errors {
                assert!(
                    e.error.as_deref().is_some_and(|k| k.starts_with("Timeout")),
                    "{p}: not a typed timeout: {e:?}"
                );
                let took = e.end - e.start;
                assert!(
                    took >= REQUEST_TIMEOUT - Duration::from_millis(5) && took <= REQUEST_TIMEOUT + Duration::from_millis(150),
                    "{p}: a timeout after {took:?}"
                );
                assert!(e.start + REQUEST_TIMEOUT >= t_pause && e.start <= t_cont, "{p}: outside the pause: {e:?}");
            }
            let first_ok = first_ok.expect("the paused shard served again");
            assert!(
                first_ok - t_cont < Duration::from_millis(300),
                "{p}: first success {:?} after SIGCONT",
                first_ok - t_cont
            );
            assert!(after_cont > 20, "{p}: traffic after SIGCONT");
            assert!(
                paused.iter().filter(|o| o.start >= t_cont).all(|o| o.error.is_none()),
                "{p}: a request sent after SIGCONT failed"
            );
        });
    }
}
