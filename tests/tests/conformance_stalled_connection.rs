//! Conformance (real cluster, every runtime): a connection whose oldest reply never comes is
//! replaced, instead of failing every later request until the OS closes it.
//!
//! 1 master, no replicas, request timeout 500 ms, the default `stall_timeout` (250 ms), one
//! connection per node. A `BLPOP` on an empty list with no block limit, sent with a 200 ms
//! timeout, times out while the healthy node keeps its reply back for ever: the connection's
//! reply queue is then stuck exactly as on a half-open connection or one whose bytes a node
//! dropped (which a real node cannot be made to do; a `SIGSTOP`ped node keeps the bytes in the
//! kernel and answers them at `SIGCONT`, see `conformance_pause.rs`). Shows:
//!
//! - the `BLPOP` fails with a typed `Timeout` at its own timeout;
//! - the `GET`s that follow, on the same node, all succeed: the first one, written behind the
//!   abandoned `BLPOP`, is resent on a new connection once the old one has been silent for
//!   `stall_timeout`, within its own timeout;
//! - the client closed the stuck connection (`Stats::stalled`), and the node sees it go (no
//!   client of ours blocked in `BLPOP` any more).
//!
//! Before the fix every `GET` timed out, for as long as the connection lived.
//!
//! Prints a `[figure]` line per runtime: the time from the `BLPOP`'s timeout to the first
//! success.

use std::time::{Duration, Instant};

use slotcache_rt::{Client, Cmd, Request, Value};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config, error_kind};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
const BLPOP_TIMEOUT: Duration = Duration::from_millis(200);

#[test]
fn a_stuck_connection_is_replaced_after_a_reply_timeout_on_every_runtime() {
    let cluster = ClusterBuilder::new().masters(1).replicas(0).label("conf-stall").start().expect("cluster");
    let node = cluster.node(0).addr();
    for rt in ALL {
        let p = rt.name();
        let mut cfg = config(&cluster);
        cfg.client.request_timeout = REQUEST_TIMEOUT;
        let stall = cfg.client.stall_timeout;
        let (key, list) = (format!("stall:{p}:k"), format!("stall:{p}:list"));
        let cluster = &cluster;
        let node = node.clone();
        rt.block_on(async move {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            client.send(Cmd::new("SET").arg(key.as_str()).arg("v")).await.expect("set");
            let connects = client.stats().await.expect("stats").connects;

            let t = Instant::now();
            let blpop = Request::node(node.clone(), Cmd::new("BLPOP").arg(list.as_str()).arg("0"))
                .with_timeout(BLPOP_TIMEOUT);
            let err = client.request(blpop).await.expect_err("an empty list never answers BLPOP 0");
            let took = t.elapsed();
            assert!(error_kind(&err).starts_with("Timeout"), "{p}: a typed timeout: {err:?}");
            assert!(
                // The upper bound only says the deadline ended it (a loaded 2-core machine can
                // take a few hundred ms to run the timer), not when exactly.
                took >= BLPOP_TIMEOUT - Duration::from_millis(5)
                    && took < BLPOP_TIMEOUT + Duration::from_secs(2),
                "{p}: the BLPOP timed out after {took:?}"
            );
            let t_timeout = Instant::now();

            // Every GET must succeed, the first included; bounded in count and in time.
            let mut first_ok = None;
            for i in 0..20 {
                let got = client.send(Cmd::new("GET").arg(key.as_str())).await;
                match got {
                    Ok(Value::Bulk(b)) if &b[..] == b"v" => {
                        first_ok.get_or_insert_with(|| t_timeout.elapsed());
                    }
                    other => panic!("{p}: GET {i} after the stuck BLPOP: {other:?}"),
                }
            }
            let first_ok = first_ok.expect("served");
            let stats = client.stats().await.expect("stats");
            eprintln!(
                "[figure] stall/{p}: first GET served {} ms after the BLPOP's timeout (stall_timeout {} ms); \
                 stalled connections closed {}, connects {} -> {}",
                first_ok.as_millis(),
                stall.as_millis(),
                stats.stalled,
                connects,
                stats.connects
            );
            assert!(
                first_ok < stall + Duration::from_secs(2),
                "{p}: the first GET took {first_ok:?} after the BLPOP's timeout"
            );
            assert_eq!(stats.stalled, 1, "{p}: one stuck connection closed: {stats:?}");
            assert_eq!(stats.connects, connects + 1, "{p}: and replaced once: {stats:?}");
            client.close().await;

            // The node saw the connection go: none of ours is blocked any more.
            rt.wait_until(
                Duration::from_secs(5),
                Duration::from_millis(20),
                "the node to drop the BLPOP",
                || {
                    let list = cluster.cmd_text(0, ["CLIENT", "LIST"])?;
                    Ok(!list
                        .lines()
                        .any(|l| l.contains("name=slotcache-conformance") && l.contains("cmd=blpop")))
                },
            )
            .await
            .expect("the blocked connection is closed on the server too");
        });
    }
}
