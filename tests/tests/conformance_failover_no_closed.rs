//! Conformance (real cluster, every runtime): during a failover no request ends in `Closed`.
//!
//! `Closed` means one thing: the user closed the client. A request that meets a dead master
//! must end with what happened to it (the connection lost, a timeout, a redirect that failed),
//! as a typed error. The driver once dropped some requests' reply channels without answering
//! them (a request's slot in its table of waiting callers was taken by the next request before
//! the first one's completion was delivered), and the handle reported the dropped channel as
//! `Closed`: 4 to 12 requests per failover, all between the kill and the promotion.
//!
//! 3 masters + 3 replicas, node timeout 1000 ms, `cluster-require-full-coverage no`. Tasks are
//! pinned to shards (each works on keys of one master) and send back to back, with no pause:
//! `SET`, `GET`, and `INCR` (not idempotent: it fails at once when its connection is lost after
//! it was written), half of them with a short timeout so that requests on the dead shard fail
//! all through the failover window instead of waiting in retries. One master is killed with
//! `SIGKILL` mid-run (a different one on each runtime); traffic goes on until shortly after
//! every node agrees on the promoted replica.
//!
//! Fails on any `Closed` (the handle's or the core's), and checks the run exercised what it is
//! about: requests on the killed shard failed (with typed errors), the healthy shards kept being
//! served, and the client still answers afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use slotcache_rt::{Client, Cmd, Error, Request, RequestError};
use slotcache_tests::Role;
use slotcache_tests::conformance::{ALL, FailoverRound, Rt, config, error_kind, failover_cluster, keys_on};

const TASKS_PER_SHARD: usize = 12;
const KEYS_PER_TASK: usize = 4;
/// The client's default request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// The timeout of every other request: short, so requests on the dead shard keep failing all
/// through the failover window.
const SHORT_TIMEOUT: Duration = Duration::from_millis(60);
/// Traffic before the kill.
const WARM_UP: Duration = Duration::from_millis(500);
/// Traffic after every node agrees on the promoted replica.
const AFTER: Duration = Duration::from_millis(1000);
/// A task stops by itself after this long, whatever happens to the test.
const HARD_STOP: Duration = Duration::from_secs(60);

/// What one task saw.
#[derive(Default)]
struct Seen {
    /// Requests sent.
    ops: u64,
    /// Error kinds ([`error_kind`]) and how many.
    errors: BTreeMap<String, u64>,
    /// `Closed` errors: when they ended (from the start of the traffic) and their text.
    closed: Vec<(Duration, String)>,
    /// Successes after the kill.
    ok_after_kill: u64,
}

fn is_closed(e: &Error) -> bool {
    matches!(e, Error::Closed | Error::Request(RequestError::Closed))
}

/// Sends `SET`, `GET`, `INCR` on `keys` in turn, back to back, until `stop` (bounded by
/// [`HARD_STOP`]).
async fn load(
    client: Client,
    keys: Vec<String>,
    t0: Instant,
    kill: Arc<std::sync::Mutex<Option<Duration>>>,
    stop: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) && t0.elapsed() < HARD_STOP {
        let key = &keys[n % keys.len()];
        let cmd = match (n / keys.len()) % 3 {
            0 => Cmd::new("SET").arg(key.as_str()).arg(n),
            1 => Cmd::new("GET").arg(key.as_str()),
            _ => Cmd::new("INCR").arg(format!("{key}:n")),
        };
        let mut request = Request::command(cmd);
        if n % 2 == 1 {
            request = request.with_timeout(SHORT_TIMEOUT);
        }
        n += 1;
        seen.ops += 1;
        match client.request(request).await {
            Ok(_) => {
                if kill.lock().expect("kill time").is_some() {
                    seen.ok_after_kill += 1;
                }
            }
            Err(e) => {
                if is_closed(&e) {
                    seen.closed.push((t0.elapsed(), e.to_string()));
                }
                *seen.errors.entry(error_kind(&e)).or_default() += 1;
            }
        }
    }
    seen
}

#[test]
fn no_request_ends_closed_during_a_failover() {
    let mut cluster = failover_cluster("failover-no-closed");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        // A different original master each round; its replica takes over.
        let FailoverRound { victim, replica, masters, owners } = FailoverRound::new(&cluster, round, p);
        let mut plan = Vec::new();
        for &m in &masters {
            let keys = keys_on(&owners, m, TASKS_PER_SHARD * KEYS_PER_TASK, &format!("nc:{p}"));
            assert!(!keys.is_empty(), "{p}: master {m} serves no slot");
            for chunk in keys.chunks(KEYS_PER_TASK) {
                plan.push((m, chunk.to_vec()));
            }
        }
        let mut cfg = config(&cluster);
        cfg.client.request_timeout = REQUEST_TIMEOUT;
        let cluster = &mut cluster;
        rt.block_on(run(rt, cluster, cfg, plan, victim, replica));
    }
}

async fn run(
    rt: Rt,
    cluster: &mut slotcache_tests::Cluster,
    cfg: slotcache_rt::Config,
    plan: Vec<(usize, Vec<String>)>,
    victim: usize,
    replica: usize,
) {
    let p = rt.name();
    let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let kill_at = Arc::new(std::sync::Mutex::new(None));
    let t0 = Instant::now();
    let tasks: Vec<_> = plan
        .into_iter()
        .map(|(m, keys)| (m, rt.spawn(load(client.clone(), keys, t0, kill_at.clone(), stop.clone()))))
        .collect();
    rt.sleep(WARM_UP).await;

    let t_kill = t0.elapsed();
    *kill_at.lock().expect("kill time") = Some(t_kill);
    cluster.kill(victim).expect("kill");
    let promoted = rt
        .wait_until(Duration::from_secs(30), Duration::from_millis(10), "the replica's promotion", || {
            Ok(cluster.role(replica)? == Role::Master)
        })
        .await;
    let t_promoted = t0.elapsed();
    let agreed = rt
        .wait_until(Duration::from_secs(30), Duration::from_millis(20), "every node to agree", || {
            let id = cluster.node(replica).id().to_owned();
            for v in cluster.live() {
                if !cluster
                    .cluster_nodes(v)?
                    .iter()
                    .any(|e| e.id == id && e.role() == Role::Master && !e.slots.is_empty())
                {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await;
    rt.sleep(AFTER).await;
    stop.store(true, Ordering::Relaxed);

    let mut killed = Seen::default();
    let mut healthy = Seen::default();
    for (m, t) in tasks {
        let seen = t.await;
        let into = if m == victim { &mut killed } else { &mut healthy };
        into.ops += seen.ops;
        into.ok_after_kill += seen.ok_after_kill;
        into.closed.extend(seen.closed);
        for (k, v) in seen.errors {
            *into.errors.entry(k).or_default() += v;
        }
    }
    // The client was never closed: it still answers.
    let ping = client.send(Cmd::new("PING")).await;
    client.close().await;
    promoted.expect("promotion");
    agreed.expect("agreement");

    let closed: Vec<_> = killed.closed.iter().chain(&healthy.closed).collect();
    eprintln!(
        "[figure] failover-no-closed/{p}: node {victim} killed at +{} ms, promoted +{} ms; {} requests \
         ({} on the killed shard); killed shard errors {:?}; healthy shard errors {:?}; Closed: {}",
        t_kill.as_millis(),
        t_promoted.as_millis(),
        killed.ops + healthy.ops,
        killed.ops,
        killed.errors,
        healthy.errors,
        closed.len(),
    );
    assert!(
        closed.is_empty(),
        "{p}: {} request(s) ended in Closed though the client was open (kill +{} ms, promoted +{} ms), \
         first ones (+ms, text): {:?}",
        closed.len(),
        t_kill.as_millis(),
        t_promoted.as_millis(),
        closed.iter().take(10).map(|(t, e)| (t.as_millis(), e.as_str())).collect::<Vec<_>>()
    );
    assert!(ping.is_ok(), "{p}: the client stopped answering after the failover: {ping:?}");
    assert!(
        killed.errors.values().sum::<u64>() > 0,
        "{p}: no request on the killed shard failed: the run did not exercise the failover window"
    );
    assert!(
        healthy.ok_after_kill > 1000,
        "{p}: the healthy shards were barely served: {}",
        healthy.ok_after_kill
    );
}
