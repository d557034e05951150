//! An invalidation under `Durability::Replicas` is acknowledged by a replica, or fails with
//! `NotDurable`: also when the node had to be sent the script's source first (`NOSCRIPT`: a
//! fresh primary, a restart, `SCRIPT FLUSH`), which is exactly the first invalidation after a
//! failover.
//!
//! Every replica is stopped (`SIGSTOP`, shorter than the node timeout, so nothing fails over)
//! and the primaries' script caches are flushed: `invalidate_by_tags` and `invalidate` must
//! both fail with `NotDurable`, with the scripts cached and after `SCRIPT FLUSH` alike. The
//! test-only variant with bug A1 (the `WAIT` pipelined after the `EVALSHA`, answered before
//! the `EVAL` retry) is run too, and it must return `Ok`: what this test checks would catch it.

mod cache_support;

use slotcache_core::cache::op::invalidate_tags::Variant;
use slotcache_rt::cache::testing;
use slotcache_rt::{CacheError, NamespaceOptions};
use slotcache_tests::conformance::Rt;

use std::time::Duration;

use cache_support::{cluster, eventually, exclusive, ns, on_every_runtime, provider, roles, stop};

const LABEL: &str = "cache-durable-noscript";

fn not_durable<T: core::fmt::Debug>(what: &str, r: Result<T, CacheError>) {
    assert!(matches!(r, Err(CacheError::NotDurable { acked: 0, wanted: 1 })), "{what}: {r:?}");
}

/// Each master's replication offset now (`master_repl_offset`).
fn offsets(cluster: &slotcache_tests::Cluster, masters: &[usize]) -> Vec<u64> {
    masters
        .iter()
        .map(|&m| {
            let info = cluster.info(m, "replication").unwrap_or_default();
            info.lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(u64::MAX)
        })
        .collect()
}

/// Whether every master has recorded an acknowledgement from its replica up to `targets` (the
/// offsets taken right after the last write; `slave0:...,offset=N`): then a `WAIT` on a
/// connection whose writes all came before is answered at once, even with the replica stopped.
/// (Comparing with the current `master_repl_offset` instead never settles for sure: the master's
/// own periodic pings move it.)
fn acked_up_to(cluster: &slotcache_tests::Cluster, masters: &[usize], targets: &[u64]) -> bool {
    masters.iter().zip(targets).all(|(&m, &target)| {
        let info = cluster.info(m, "replication").unwrap_or_default();
        let acked = info
            .lines()
            .find(|l| l.starts_with("slave0:"))
            .and_then(|l| l.split(',').find_map(|kv| kv.strip_prefix("offset=")))
            .and_then(|v| v.parse::<u64>().ok());
        acked.is_some_and(|a| a >= target)
    })
}

#[test]
fn invalidations_are_not_durable_without_replicas_even_after_noscript() {
    let cluster = cluster(LABEL);
    let _only_me = exclusive();
    let (masters, replicas) = roles(&cluster);
    on_every_runtime("durable_after_noscript", |rt: Rt| {
        let cluster = cluster.clone();
        let (masters, replicas) = (masters.clone(), replicas.clone());
        async move {
            let p = provider(rt, &cluster, LABEL).await;
            let c = p
                .create_namespace::<String, String>(&ns(LABEL, rt, "d"), NamespaceOptions::default())
                .unwrap();
            let flush = || {
                for &m in &masters {
                    cluster.cmd(m, ["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
                }
            };
            let key = "k".to_string();
            let settle = |what: &'static str| {
                let (cluster, masters) = (cluster.clone(), masters.clone());
                let targets = offsets(&cluster, &masters);
                eventually(rt, Duration::from_secs(10), what, move || {
                    let done = acked_up_to(&cluster, &masters, &targets);
                    async move { done }
                })
            };
            // With the replicas up, everything is acknowledged (and the scripts get cached).
            c.set(&key, &"v".to_string(), &["t"]).await.unwrap();
            assert_eq!(c.invalidate_by_tags(&["t"]).await.unwrap(), 1);
            c.set(&key, &"v".to_string(), &["t"]).await.unwrap();
            settle("the replicas to acknowledge everything").await;
            {
                let _stopped: Vec<_> = replicas.iter().map(|&r| stop(&cluster, r)).collect();
                // First after SCRIPT FLUSH, on a connection whose earlier writes were all
                // acknowledged: the case bug A1 answered `Ok`.
                flush();
                not_durable("invalidate_by_tags after SCRIPT FLUSH", c.invalidate_by_tags(&["t"]).await);
                // Scripts cached.
                c.set(&key, &"v".to_string(), &["t"]).await.unwrap();
                not_durable("invalidate_by_tags, scripts cached", c.invalidate_by_tags(&["t"]).await);
                c.set(&key, &"v".to_string(), &["t"]).await.unwrap();
                not_durable("invalidate", c.invalidate(&key).await);
            }
            // Bug A1 reintroduced, in the same situation: the WAIT answers before the EVAL
            // retry, acknowledging nothing, and the call wrongly succeeds.
            c.set(&key, &"v".to_string(), &["t"]).await.unwrap();
            assert_eq!(c.invalidate_by_tags(&["t"]).await.unwrap(), 1, "replicas are back");
            c.set(&key, &"v".to_string(), &["t"]).await.unwrap();
            settle("the replicas to acknowledge everything again").await;
            {
                let _stopped: Vec<_> = replicas.iter().map(|&r| stop(&cluster, r)).collect();
                flush();
                let buggy = testing::invalidate_by_tags_with(&c, &["t"], Variant::WaitBeforeRetry).await;
                assert!(
                    matches!(buggy, Ok(1)),
                    "the A1 variant acknowledges a WAIT sent before the EVAL: {buggy:?}"
                );
            }
            p.close().await;
        }
    });
}
