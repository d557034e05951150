//! Conformance (real cluster, every runtime): auto-pipelining batches concurrent requests.
//!
//! 3 masters, no replicas, one connection per node (the default). The servers count every read
//! of a client socket (`INFO stats` `total_reads_processed`) and every command
//! (`total_commands_processed`): commands per read is 1 when each command arrives alone and
//! grows when several arrive in one write. Shows, by the servers' counters:
//!
//! - one task sending `SET`s one after the other gets about 1 command per read (the baseline:
//!   the measure does not flatter);
//! - 64 tasks sending `SET`s concurrently over the same single connection per node get more than
//!   2 commands per read: the client writes the requests that queued while it was busy in one
//!   go, instead of one write per request;
//! - each node saw exactly one connection of the client (`CLIENT LIST`), and every `SET` was
//!   answered `OK` and is readable.
//!
//! Prints `[figure]` lines per runtime: commands, reads and their ratio for both runs.

use std::time::Instant;

use bytes::Bytes;
use slotcache_rt::{Client, Cmd, Value};
use slotcache_tests::Cluster;
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config, info_number};

const TASKS: usize = 64;
const SETS_PER_TASK: usize = 60;
const BASELINE_SETS: usize = 400;

/// `(commands, reads)` summed over the masters.
fn counters(c: &Cluster) -> (u64, u64) {
    let mut out = (0, 0);
    for i in c.live() {
        out.0 += info_number(c, i, "stats", "total_commands_processed").expect("INFO stats");
        out.1 += info_number(c, i, "stats", "total_reads_processed").expect("INFO stats");
    }
    out
}

fn ratio(commands: u64, reads: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let r = commands as f64 / reads.max(1) as f64;
    r
}

#[test]
fn concurrent_sets_reach_the_servers_in_batches() {
    let c = ClusterBuilder::new().masters(3).replicas(0).label("conf-autopipe").start().expect("cluster");
    for rt in ALL {
        let p = rt.name();
        let cfg = config(&c);
        assert_eq!(cfg.client.connections_per_node, 1, "{p}: the default");
        rt.block_on(async {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            // Open the connection to every master before counting.
            for (addr, r) in client.all_primaries(Cmd::new("PING")).await.expect("PING") {
                assert_eq!(r.expect("PONG").as_str(), Some("PONG"), "{p}: {addr}");
            }

            // Baseline: one request at a time.
            let (c0, r0) = counters(&c);
            let t = Instant::now();
            for i in 0..BASELINE_SETS {
                let k = format!("ap:{p}:seq:{i}");
                let v = client.send(Cmd::new("SET").arg(k.as_str()).arg(i)).await.expect("SET");
                assert_eq!(v.as_str(), Some("OK"), "{p}");
            }
            let seq_time = t.elapsed();
            let (c1, r1) = counters(&c);
            // Counted as they are: the snapshots' own `INFO` calls add a command and a read or
            // two per node, noise beside hundreds of `SET`s.
            let (seq_cmds, seq_reads) = (c1 - c0, r1 - r0);
            let seq_ratio = ratio(seq_cmds, seq_reads);

            // 64 tasks at once, on the same client.
            let t = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| {
                    let client = client.clone();
                    rt.spawn(async move {
                        let mut failed = Vec::new();
                        for i in 0..SETS_PER_TASK {
                            let k = format!("ap:{p}:par:{task}:{i}");
                            match client.send(Cmd::new("SET").arg(k.as_str()).arg(i)).await {
                                Ok(v) if v.as_str() == Some("OK") => {}
                                other => failed.push(format!("SET {k}: {other:?}")),
                            }
                        }
                        failed
                    })
                })
                .collect();
            let mut failed = Vec::new();
            for task in tasks {
                failed.extend(task.await);
            }
            let par_time = t.elapsed();
            let (c2, r2) = counters(&c);
            let (par_cmds, par_reads) = (c2 - c1, r2 - r1);
            let par_ratio = ratio(par_cmds, par_reads);
            assert!(failed.is_empty(), "{p}: {:?}", &failed[..failed.len().min(5)]);

            // Every write landed, and the client used one connection per node.
            for task in [0, TASKS / 2, TASKS - 1] {
                let k = format!("ap:{p}:par:{task}:{}", SETS_PER_TASK - 1);
                let v = client.send(Cmd::new("GET").arg(k.as_str())).await.expect("GET");
                assert_eq!(v, Value::Bulk(Bytes::from((SETS_PER_TASK - 1).to_string())), "{p}: {k}");
            }
            let mut per_node = Vec::new();
            for i in c.live() {
                let list = c.cmd_text(i, ["CLIENT", "LIST"]).expect("CLIENT LIST");
                let ours = list.lines().filter(|l| l.contains(" name=slotcache-conformance ")).count();
                per_node.push(ours);
            }
            client.close().await;

            eprintln!(
                "[figure] autopipelining/{p}: 1 task, {BASELINE_SETS} SETs in {} ms: {seq_cmds} commands in \
                 {seq_reads} reads = {seq_ratio:.2} commands per read",
                seq_time.as_millis()
            );
            eprintln!(
                "[figure] autopipelining/{p}: {TASKS} tasks, {} SETs in {} ms: {par_cmds} commands in {par_reads} \
                 reads = {par_ratio:.2} commands per read; client connections per node {per_node:?}",
                TASKS * SETS_PER_TASK,
                par_time.as_millis()
            );
            assert_eq!(per_node, vec![1; 3], "{p}: one connection per node");
            assert!(seq_cmds >= BASELINE_SETS as u64 && par_cmds >= (TASKS * SETS_PER_TASK) as u64, "{p}");
            assert!(seq_ratio < 1.5, "{p}: one request at a time should arrive alone: {seq_ratio:.2}");
            assert!(par_ratio > 2.0, "{p}: 64 concurrent tasks were not batched: {par_ratio:.2} commands per read");
        });
    }
}
