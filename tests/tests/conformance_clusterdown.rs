//! Conformance (real cluster, every runtime): `CLUSTERDOWN` when most primaries are gone.
//!
//! 3 masters, no replicas, node timeout 1000 ms, request timeout 1 s. Two masters (a different
//! pair on each runtime) are frozen with `SIGSTOP`. After the node timeout the surviving master
//! sees only a minority of the primaries and marks the cluster down: it answers its own slots
//! with `CLUSTERDOWN The cluster is down` (checked on a raw connection first). Shows:
//!
//! - requests to the survivor's slots (12 at once, reads and writes, 4 with the client's 1 s
//!   timeout and 8 with a 250 ms budget of their own, `Request::with_timeout`) fail with a typed
//!   error within their budget: `Error::Request(RequestError::Server(e))` with
//!   `e.kind() == ServerErrorKind::ClusterDown`, after at least half the budget, since the
//!   client retried them (the survivor sent the client more than 3 `CLUSTERDOWN` replies per
//!   request, by its `errorstat_CLUSTERDOWN`) until the next wait would have passed the
//!   deadline. The only other outcome allowed is `RequestError::Timeout { stage: Reply, .. }`:
//!   the last retry was written just before the deadline and its reply came after it, so its
//!   outcome is unknown (about 1 request in 30 with a 250 ms budget on a loaded 2-core machine);
//!   at least half must be `CLUSTERDOWN`;
//! - a request to a frozen master's slots fails by its deadline with a typed `Timeout` (or
//!   `Unreachable` with a connect timeout, once its connection was replaced);
//! - once the two masters are woken (`SIGCONT`), the same client serves the survivor's slots
//!   again by itself, with the values written before.
//!
//! Prints `[figure]` lines per runtime: how long each failure took, the server's error counts,
//! and the time to serve again.

use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_core::ServerErrorKind;
use slotcache_core::client::TimeoutStage;
use slotcache_rt::{Client, Cmd, Error, Request, RequestError, Value};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config, error_kind, errorstat_count, keys_on, slot_owners};
use slotcache_tests::topo::info_field;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const SHORT_TIMEOUT: Duration = Duration::from_millis(250);
/// Slack over a deadline for the runtime's timer and the reply to reach the caller.
const SLACK: Duration = Duration::from_millis(150);

#[test]
fn minority_survivor_answers_clusterdown_as_a_typed_error_within_the_timeout() {
    let mut cluster = ClusterBuilder::new()
        .masters(3)
        .replicas(0)
        .node_timeout(Duration::from_millis(1000))
        .label("conf-clusterdown")
        .start()
        .expect("cluster");
    let owners = slot_owners(&cluster, 0).expect("owners");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        let survivor = round;
        let frozen: Vec<usize> = (0..3).filter(|&m| m != survivor).collect();
        let keys = keys_on(&owners, survivor, 8, &format!("cd:{p}"));
        let frozen_key = keys_on(&owners, frozen[0], 1, &format!("cd-frozen:{p}")).remove(0);
        let mut cfg = config(&cluster);
        cfg.client.request_timeout = REQUEST_TIMEOUT;
        let c = &mut cluster;
        rt.block_on(async move {
            let cluster = c;
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            for k in &keys {
                let v = client.send(Cmd::new("SET").arg(k.as_str()).arg(format!("v:{k}"))).await.expect("SET");
                assert_eq!(v.as_str(), Some("OK"), "{p}");
            }
            let errors_before = errorstat_count(cluster, survivor, "CLUSTERDOWN").expect("errorstats");
            let before = client.stats().await.expect("stats");

            for &m in &frozen {
                cluster.pause(m).expect("SIGSTOP");
            }
            let down_after = rt
                .wait_until(Duration::from_secs(15), Duration::from_millis(20), "the survivor to mark the cluster down", || {
                    let info = cluster.cmd_text(survivor, ["CLUSTER", "INFO"])?;
                    Ok(info_field(&info, "cluster_state") == Some("fail"))
                })
                .await
                .expect("cluster_state:fail");
            // What the server itself answers now.
            let raw = cluster.cmd(survivor, ["GET", keys[0].as_str()]).expect("raw GET");
            let raw_text = slotcache_tests::resp::error_text(&raw).unwrap_or_default();
            assert!(raw_text.starts_with("CLUSTERDOWN"), "{p}: the survivor answered {raw:?}");

            // Reads and writes, concurrently: 4 with the client's timeout, 8 with a shorter budget
            // of their own.
            let requests: Vec<(Duration, Cmd)> = (0..12)
                .map(|i| {
                    let k = keys[i % keys.len()].as_str();
                    let cmd = if i % 2 == 0 { Cmd::new("GET").arg(k) } else { Cmd::new("SET").arg(k).arg("while-down") };
                    (if i < 4 { REQUEST_TIMEOUT } else { SHORT_TIMEOUT }, cmd)
                })
                .collect();
            let tasks: Vec<_> = requests
                .into_iter()
                .map(|(timeout, cmd)| {
                    let client = client.clone();
                    rt.spawn(async move {
                        let t = Instant::now();
                        let r = client.request(Request::command(cmd).with_timeout(timeout)).await;
                        (timeout, t.elapsed(), r)
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await);
            }
            let mut clusterdown = 0;
            let mut late_reply = 0;
            let mut took: std::collections::BTreeMap<u128, Vec<u128>> = Default::default();
            for (timeout, d, r) in &outcomes {
                let e = r.as_ref().expect_err("the cluster is down");
                assert!(*d <= *timeout + SLACK, "{p}: failing took {d:?} of a {timeout:?} budget: {e}");
                match e {
                    Error::Request(RequestError::Server(s)) if s.kind() == &ServerErrorKind::ClusterDown => {
                        clusterdown += 1;
                        // Retried until the next wait would pass the deadline, not failed at the
                        // first reply.
                        assert!(*d >= *timeout / 2, "{p}: CLUSTERDOWN after only {d:?} of {timeout:?}");
                        if clusterdown == 1 {
                            eprintln!("[figure] clusterdown/{p}: the caller sees: {e:?} ({e})");
                        }
                    }
                    // The last retry was written before the deadline and its reply had not come
                    // when the deadline passed: its outcome is unknown, so a timeout.
                    Error::Request(RequestError::Timeout { stage: TimeoutStage::Reply, .. }) => late_reply += 1,
                    other => panic!("{p}: expected CLUSTERDOWN (or a reply timeout), got {other:?}"),
                }
                took.entry(timeout.as_millis()).or_default().push(d.as_millis());
            }
            assert!(clusterdown >= outcomes.len() / 2, "{p}: {clusterdown} CLUSTERDOWN, {late_reply} reply timeouts");
            // A frozen master's slots.
            let t = Instant::now();
            let frozen_err = client.send(Cmd::new("GET").arg(frozen_key.as_str())).await.expect_err("frozen");
            let frozen_took = t.elapsed();
            let frozen_kind = error_kind(&frozen_err);
            assert!(
                frozen_kind.starts_with("Timeout") || frozen_kind == "Unreachable(ConnectTimeout)",
                "{p}: a frozen master's slot: {frozen_err:?}"
            );
            assert!(frozen_took <= REQUEST_TIMEOUT + SLACK, "{p}: took {frozen_took:?}");

            let down = client.stats().await.expect("stats");
            let server_errors = errorstat_count(cluster, survivor, "CLUSTERDOWN").expect("errorstats") - errors_before;
            // One error reply is the raw probe's; the rest went to the client.
            let to_client = server_errors - 1;

            // Wake them; the same client serves again by itself.
            for &m in &frozen {
                cluster.resume(m).expect("SIGCONT");
            }
            let t_resume = Instant::now();
            let mut failed = Vec::new();
            let back = loop {
                match client.send(Cmd::new("GET").arg(keys[7].as_str())).await {
                    Ok(v) => {
                        assert_eq!(v, Value::Bulk(Bytes::from(format!("v:{}", keys[7]))), "{p}");
                        break t_resume.elapsed();
                    }
                    Err(e) => failed.push(error_kind(&e)),
                }
                assert!(t_resume.elapsed() < Duration::from_secs(15), "{p}: never served again: {failed:?}");
            };
            for (i, k) in keys.iter().enumerate() {
                let v = client.send(Cmd::new("GET").arg(k.as_str())).await.expect("GET after");
                // The SETs answered CLUSTERDOWN did not run.
                assert_eq!(v, Value::Bulk(Bytes::from(format!("v:{k}"))), "{p}: key {i}");
            }
            client.close().await;

            let ms = |d: Duration| d.as_millis();
            eprintln!(
                "[figure] clusterdown/{p}: nodes {frozen:?} frozen; survivor {survivor} said cluster_state:fail \
                 {} ms later and answers {raw_text:?}",
                ms(down_after)
            );
            eprintln!(
                "[figure] clusterdown/{p}: 12 concurrent requests failed: {clusterdown} with CLUSTERDOWN, \
                 {late_reply} with a reply timeout; ms taken by budget {took:?}; a frozen master's slot: \
                 {frozen_kind} after {} ms",
                ms(frozen_took)
            );
            eprintln!(
                "[figure] clusterdown/{p}: the survivor sent the client {to_client} CLUSTERDOWN replies for 12 \
                 requests; client stats: clusterdown {}, retries {}, refreshes {}; served again {} ms after \
                 SIGCONT ({} failed tries before: {:?})",
                down.clusterdown - before.clusterdown,
                down.retries - before.retries,
                down.refreshes - before.refreshes,
                ms(back),
                failed.len(),
                failed.iter().collect::<std::collections::BTreeSet<_>>()
            );
            assert!(to_client > 12 * 3, "{p}: CLUSTERDOWN was not retried: {to_client} replies for 12 requests");
            assert!(down.clusterdown - before.clusterdown > 12 * 3, "{p}: {down:?}");
        });
        cluster.wait_healthy(Duration::from_secs(30)).expect("healthy again");
    }
}
