//! Conformance (real cluster, every runtime): a demoted primary's `READONLY`, and writing
//! scripts on a stale topology.
//!
//! 3 masters + 3 replicas. Two clients connect, then their topology goes stale on purpose: a
//! replica takes over with `CLUSTER FAILOVER` (coordinated, over a raw connection) and the
//! clients are told nothing (a different shard on each runtime).
//!
//! What a real Valkey 9 answers on the old primary, now a replica (checked on raw connections):
//! a keyed command gets `MOVED` to the new primary; a keyless write (`FUNCTION LOAD`, `FLUSHDB`)
//! gets `READONLY You can't write against a read only replica.`; and on a connection in
//! `READONLY` mode, a writing `EVAL` (not a write command in the server's table) runs there as a
//! read would and its `SET` is refused with `ERR Attempted to access a non local key in a cluster
//! node`. Shows:
//!
//! - `READONLY`: `FUNCTION LOAD` sent to every primary (`Client::all_primaries`) on the stale
//!   topology reaches the old primary, which answers `READONLY` (its `errorstat_READONLY` grew);
//!   that node's part fails with the typed `RequestError::Server` of kind
//!   `ServerErrorKind::ReadOnly` (a command addressed to one node is not moved elsewhere), the
//!   others succeed; the client refreshes by itself (no `MOVED` involved) and its topology names
//!   the new primary; the same call again succeeds on every primary, the new one included;
//! - a client reading from replicas (`ReadFrom::PreferReplica`) runs a writing `EVAL` for the
//!   failed-over shard on its stale topology: it succeeds, by the old primary's `MOVED`, with the
//!   value on the new primary, and the old primary sent the client no `ERR`. (Before the fix in
//!   this branch every connection was put in `READONLY` mode, primaries' too, and that `EVAL`
//!   failed with the `non local key` error: found by this test.)
//!
//! Prints `[figure]` lines per runtime: the raw replies, what each client saw, and its counters.

use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_core::ServerErrorKind;
use slotcache_rt::{Client, Cmd, ReadFrom, RequestError, Slot, Value};
use slotcache_tests::conformance::{ALL, config, errorstat_count, keys_on, slot_owners};
use slotcache_tests::{ClusterBuilder, FailoverMode, Role};

const SCRIPT: &str = "return redis.call('SET', KEYS[1], ARGV[1])";

fn text(v: &Value) -> String {
    slotcache_tests::resp::error_text(v).unwrap_or_else(|| format!("{v:?}"))
}

fn library(p: &str, version: u32) -> String {
    let name = format!("ro_{}", p.replace('-', "_"));
    format!("#!lua name={name}\nserver.register_function('{name}_v', function() return {version} end)")
}

#[test]
fn demoted_primary_answers_readonly_and_the_client_refreshes() {
    let mut cluster = ClusterBuilder::new()
        .masters(3)
        .replicas(1)
        .node_timeout(Duration::from_millis(1000))
        .label("conf-readonly")
        .start()
        .expect("cluster");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        let old = round;
        assert_eq!(cluster.role(old).expect("role"), Role::Master, "{p}");
        let new = *cluster.replicas_of(old).expect("replicas").first().expect("a replica");
        let owners = slot_owners(&cluster, old).expect("owners");
        let key = keys_on(&owners, old, 1, &format!("ro:{p}")).remove(0);
        let slot = Slot::new(slotcache_core::key_slot(key.as_bytes()).get()).expect("slot");
        let mut cfg = config(&cluster);
        cfg.client.request_timeout = Duration::from_secs(2);
        let plain_cfg = cfg.clone();
        cfg.client.read_from = ReadFrom::PreferReplica;
        let replica_cfg = cfg;
        let (old_addr, new_addr) = (cluster.node(old).addr(), cluster.node(new).addr());
        let c = &mut cluster;
        rt.block_on(async move {
            let cluster = c;
            let admin = Client::connect(rt.runtime(), plain_cfg).await.expect("connect");
            let reader = Client::connect(rt.runtime(), replica_cfg).await.expect("connect");
            let eval = |v: &str| Cmd::new("EVAL").arg(SCRIPT).arg(1).arg(key.as_str()).arg(v);
            let ok = reader.send(eval("before")).await.expect("EVAL before");
            assert_eq!(ok.as_str(), Some("OK"), "{p}");
            for (addr, r) in admin.all_primaries(Cmd::new("PING")).await.expect("PING") {
                assert_eq!(r.expect("PONG").as_str(), Some("PONG"), "{p}: {addr}");
            }
            let (admin0, reader0) = (admin.stats().await.expect("stats"), reader.stats().await.expect("stats"));

            let took = cluster.failover(new, FailoverMode::Default).expect("CLUSTER FAILOVER");
            for client in [&admin, &reader] {
                let stale = client.topology().expect("topology");
                assert_eq!(stale.primary(slot).map(|n| n.addr.clone()), Some(old_addr.clone()), "{p}: not stale");
            }

            // READONLY: a keyless write to every primary the stale topology lists.
            let readonly0 = errorstat_count(cluster, old, "READONLY").expect("errorstats");
            let t = Instant::now();
            let first = admin
                .all_primaries(Cmd::new("FUNCTION").arg("LOAD").arg("REPLACE").arg(library(p, 1)))
                .await
                .expect("FUNCTION LOAD");
            let first_took = t.elapsed();
            let readonly = errorstat_count(cluster, old, "READONLY").expect("errorstats") - readonly0;
            let refreshed = rt
                .wait_until(Duration::from_secs(2), Duration::from_millis(5), "the admin client's refresh", || {
                    let t = admin.topology().expect("topology");
                    Ok(t.primary(slot).map(|n| n.addr.clone()) == Some(new_addr.clone()))
                })
                .await;
            let second = admin
                .all_primaries(Cmd::new("FUNCTION").arg("LOAD").arg("REPLACE").arg(library(p, 2)))
                .await
                .expect("FUNCTION LOAD");
            let admin1 = admin.stats().await.expect("stats");
            admin.close().await;

            // The writing script, from the client that reads from replicas.
            let err0 = errorstat_count(cluster, old, "ERR").expect("errorstats");
            let t = Instant::now();
            let r = reader.send(eval("after")).await;
            let eval_took = t.elapsed();
            let err_to_reader = errorstat_count(cluster, old, "ERR").expect("errorstats") - err0;
            let reader1 = reader.stats().await.expect("stats");
            reader.close().await;
            let on_new = cluster.cmd(new, ["GET", key.as_str()]).expect("GET");
            let listed = cluster.cmd(new, ["FCALL", &format!("ro_{}_v", p.replace('-', "_")), "0"]);

            // What the old primary answers, on raw connections.
            let mut plain = cluster.conn(old).expect("conn");
            let raw_set = text(&plain.cmd(["SET", key.as_str(), "raw"]).expect("SET"));
            let raw_load = text(&plain.cmd(["FUNCTION", "LOAD", "REPLACE", &library(p, 3)]).expect("LOAD"));
            let raw_plain_eval = text(&plain.cmd(["EVAL", SCRIPT, "1", key.as_str(), "raw"]).expect("EVAL"));
            let mut ro = cluster.conn(old).expect("conn");
            ro.cmd_ok(["READONLY"]).expect("READONLY");
            let raw_ro_eval = text(&ro.cmd(["EVAL", SCRIPT, "1", key.as_str(), "raw"]).expect("EVAL"));

            let kinds = |v: &[(slotcache_rt::NodeAddr, Result<Value, RequestError>)]| {
                v.iter()
                    .map(|(a, r)| format!("{a}: {}", r.as_ref().map_or_else(ToString::to_string, text)))
                    .collect::<Vec<_>>()
            };
            eprintln!(
                "[figure] readonly/{p}: node {new} took over from node {old} in {} ms; the old primary answers \
                 SET with {raw_set:?}, FUNCTION LOAD with {raw_load:?}, the writing EVAL with {raw_plain_eval:?} \
                 and, on a READONLY connection, with {raw_ro_eval:?}",
                took.as_millis()
            );
            eprintln!(
                "[figure] readonly/{p}: FUNCTION LOAD to every primary on the stale topology ({} ms): {:?}; the \
                 old primary sent {readonly} READONLY; topology refreshed: {:?}; again: {:?}; admin client: \
                 moved {}, refreshes {}, retries {}",
                first_took.as_millis(),
                kinds(&first),
                refreshed.as_ref().map(Duration::as_millis),
                kinds(&second),
                admin1.moved - admin0.moved,
                admin1.refreshes - admin0.refreshes,
                admin1.retries - admin0.retries,
            );
            eprintln!(
                "[figure] readonly/{p}: replica-reading client's writing EVAL on the stale topology: {r:?} after \
                 {} ms; ERR replies from the old primary {err_to_reader}; moved {}, refreshes {}",
                eval_took.as_millis(),
                reader1.moved - reader0.moved,
                reader1.refreshes - reader0.refreshes
            );
            assert!(raw_set.starts_with("MOVED"), "{p}: {raw_set}");
            assert!(raw_load.starts_with("READONLY"), "{p}: {raw_load}");

            // READONLY, typed, then recovered by the refresh.
            assert!(readonly >= 1, "{p}: the old primary never answered READONLY");
            for (addr, r) in &first {
                if *addr == old_addr {
                    match r {
                        Err(RequestError::Server(e)) => assert_eq!(e.kind(), &ServerErrorKind::ReadOnly, "{p}: {e}"),
                        other => panic!("{p}: the old primary's part: {other:?}"),
                    }
                } else {
                    assert!(r.is_ok(), "{p}: {addr}: {r:?}");
                }
            }
            assert_eq!(admin1.moved, admin0.moved, "{p}: no MOVED involved");
            assert!(admin1.refreshes > admin0.refreshes, "{p}: no refresh: {admin1:?}");
            refreshed.expect("the admin client's topology names the new primary");
            assert!(second.iter().any(|(a, _)| *a == new_addr), "{p}: the new primary is not addressed: {second:?}");
            assert!(second.iter().all(|(_, r)| r.is_ok()), "{p}: {second:?}");
            assert_eq!(listed.expect("FCALL on the new primary"), Value::Int(2), "{p}: the library loaded there");

            // The writing script, by MOVED.
            assert!(raw_ro_eval.contains("non local key"), "{p}: {raw_ro_eval}");
            assert_eq!(r.expect("EVAL after the failover").as_str(), Some("OK"), "{p}");
            assert_eq!(on_new, Value::Bulk(Bytes::from("after")), "{p}: the value on the new primary");
            assert_eq!(err_to_reader, 0, "{p}: the old primary answered the client's EVAL with an ERR");
            assert!(reader1.moved > reader0.moved, "{p}: {reader1:?}");
        });
        cluster.wait_healthy(Duration::from_secs(30)).expect("healthy");
    }
}
