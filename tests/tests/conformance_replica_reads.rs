//! Conformance (real cluster, every runtime): where reads and writes go.
//!
//! 3 masters + 1 replica each. Counting with the servers' own `INFO commandstats`:
//!
//! - `ReadFrom::PreferReplica`: every `GET` (single and split `MGET`) reaches a replica
//!   (`cmdstat_get` grows on replicas by the number of reads, not at all on primaries), and
//!   every write reaches a primary (no `MOVED` was needed, so no write ever went to a
//!   replica, which would have answered `MOVED` on a `READONLY` connection; and no replica
//!   rejected a `SET`).
//! - `ReadFrom::AzAffinity`: with every replica in zone `az-replicas` (`CONFIG SET
//!   availability-zone`), a client of that zone reads from the replicas; a client of a zone no
//!   node is in falls back to the primaries.

use std::time::Duration;

use bytes::Bytes;
use slotcache_rt::{Client, Cmd, ReadFrom, Value};
use slotcache_tests::conformance::{ALL, Rt, cmdstat_calls, config, keys_on, slot_owners};
use slotcache_tests::{Cluster, ClusterBuilder, wait_until};

/// `cmdstat_<command>` calls on each node.
fn calls(c: &Cluster, nodes: &[usize], command: &str) -> Vec<u64> {
    nodes.iter().map(|&i| cmdstat_calls(c, i, command).expect("commandstats")).collect()
}

/// `rejected_calls` of `cmdstat_<command>` on node `i`.
fn rejected(c: &Cluster, i: usize, command: &str) -> u64 {
    c.commandstats(i).expect("commandstats").get(command).map_or(0, |s| s.rejected_calls)
}

fn delta(after: &[u64], before: &[u64]) -> u64 {
    after.iter().zip(before).map(|(a, b)| a - b).sum()
}

/// Writes `keys` with the client, then makes sure every replica has them (a `WAIT` after a
/// write of its own on each master covers every earlier write).
async fn write_all(c: &Cluster, client: &Client, keys: &[String], masters: &[usize]) {
    for k in keys {
        let r = client.send(Cmd::new("SET").arg(k.as_str()).arg(format!("v:{k}"))).await.expect("set");
        assert_eq!(r.as_str(), Some("OK"));
    }
    for &m in masters {
        let mut conn = c.conn(m).expect("conn");
        let probe = c.key_owned_by(m, "wait-probe").expect("key");
        conn.cmd_ok(["SET", probe.as_str(), "x"]).expect("probe");
        assert_eq!(conn.cmd(["WAIT", "1", "5000"]).expect("WAIT").as_int(), Some(1));
    }
}

/// Reads every key, one `GET` each, then all of them in one split `MGET`; checks the values.
/// Returns how many `GET`s the servers should count (`MGET` is counted apart).
async fn read_all(client: &Client, keys: &[String]) -> u64 {
    for k in keys {
        let v = client.send(Cmd::new("GET").arg(k.as_str())).await.expect("get");
        assert_eq!(v, Value::Bulk(Bytes::from(format!("v:{k}"))), "{k}");
    }
    let mut mget = Cmd::new("MGET");
    for k in keys {
        mget.push_arg(k.as_str());
    }
    let Value::Array(vals) = client.send(mget).await.expect("mget") else { panic!("array") };
    for (k, v) in keys.iter().zip(vals) {
        assert_eq!(v, Value::Bulk(Bytes::from(format!("v:{k}"))), "{k}");
    }
    keys.len() as u64
}

fn setup() -> (Cluster, Vec<usize>, Vec<usize>) {
    let c =
        ClusterBuilder::new().masters(3).replicas(1).label("conf-replica-reads").start().expect("cluster");
    let masters = c.masters().expect("masters");
    let replicas: Vec<usize> = masters.iter().flat_map(|&m| c.replicas_of(m).expect("replicas")).collect();
    assert_eq!((masters.len(), replicas.len()), (3, 3));
    (c, masters, replicas)
}

fn keys(c: &Cluster, masters: &[usize], name: &str) -> Vec<String> {
    let owners = slot_owners(c, masters[0]).expect("owners");
    masters.iter().flat_map(|&m| keys_on(&owners, m, 40, name)).collect()
}

#[test]
fn prefer_replica_reads_reach_replicas_and_writes_never_do() {
    let (c, masters, replicas) = setup();
    for rt in ALL {
        let p = rt.name();
        let keys = keys(&c, &masters, &format!("rr:{p}"));
        let mut cfg = config(&c);
        cfg.client.read_from = ReadFrom::PreferReplica;
        rt.block_on(async {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let (set_m0, set_r0) = (calls(&c, &masters, "set"), calls(&c, &replicas, "set"));
            let rejected0: u64 = replicas.iter().map(|&r| rejected(&c, r, "set")).sum();
            write_all(&c, &client, &keys, &masters).await;
            let (get_m0, get_r0) = (calls(&c, &masters, "get"), calls(&c, &replicas, "get"));
            let (mget_m0, mget_r0) = (calls(&c, &masters, "mget"), calls(&c, &replicas, "mget"));
            let reads = read_all(&client, &keys).await;
            let (get_m, get_r) = (calls(&c, &masters, "get"), calls(&c, &replicas, "get"));
            let (mget_m, mget_r) = (calls(&c, &masters, "mget"), calls(&c, &replicas, "mget"));
            let (set_m, set_r) = (calls(&c, &masters, "set"), calls(&c, &replicas, "set"));
            let rejected1: u64 = replicas.iter().map(|&r| rejected(&c, r, "set")).sum();
            let stats = client.stats().await.expect("stats");
            client.close().await;
            eprintln!(
                "[figure] replica-reads/{p}: {reads} GETs -> replicas {} (per replica {:?}), primaries {}; \
                 split MGET parts -> replicas {}, primaries {}; {} SETs -> primaries {} (replicas applied {} \
                 through replication, rejected {}); client moved {}",
                delta(&get_r, &get_r0),
                get_r.iter().zip(&get_r0).map(|(a, b)| a - b).collect::<Vec<_>>(),
                delta(&get_m, &get_m0),
                delta(&mget_r, &mget_r0),
                delta(&mget_m, &mget_m0),
                keys.len(),
                delta(&set_m, &set_m0),
                delta(&set_r, &set_r0),
                rejected1 - rejected0,
                stats.moved
            );
            assert_eq!(delta(&get_r, &get_r0), reads, "{p}: every GET reached a replica");
            assert!(get_r.iter().zip(&get_r0).all(|(a, b)| a > b), "{p}: every replica served reads");
            assert_eq!(delta(&get_m, &get_m0), 0, "{p}: no GET reached a primary");
            assert!(delta(&mget_r, &mget_r0) >= 3, "{p}: the split MGET's parts reached replicas");
            assert_eq!(delta(&mget_m, &mget_m0), 0, "{p}: no MGET part reached a primary");
            assert_eq!(stats.moved, 0, "{p}: no write went to a replica: {stats:?}");
            assert_eq!(rejected1, rejected0, "{p}: no replica rejected a write");
            assert!(delta(&set_m, &set_m0) >= keys.len() as u64, "{p}: every SET reached a primary");
        });
    }
}

/// Sets `availability-zone` on every replica and waits until every node's `CLUSTER SHARDS`
/// reports it (it travels by gossip).
fn zone_replicas(c: &Cluster, replicas: &[usize], zone: &str) {
    for &r in replicas {
        c.conn(r).expect("conn").cmd_ok(["CONFIG", "SET", "availability-zone", zone]).expect("CONFIG SET");
    }
    wait_until(Duration::from_secs(10), "CLUSTER SHARDS to report the replicas' zone", || {
        for v in c.live() {
            let shards = c.cmd(v, ["CLUSTER", "SHARDS"])?;
            let text = slotcache_tests::resp::display(&shards);
            if text.matches(zone).count() < replicas.len() {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .expect("zone reported");
}

fn az_round(rt: Rt, c: &Cluster, masters: &[usize], replicas: &[usize], zone: &str, to_replicas: bool) {
    let p = rt.name();
    let keys = keys(c, masters, &format!("az:{p}:{zone}"));
    let mut cfg = config(c);
    cfg.client.read_from = ReadFrom::AzAffinity(zone.into());
    rt.block_on(async {
        let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
        write_all(c, &client, &keys, masters).await;
        let (get_m0, get_r0) = (calls(c, masters, "get"), calls(c, replicas, "get"));
        let reads = read_all(&client, &keys).await;
        let (get_m, get_r) = (calls(c, masters, "get"), calls(c, replicas, "get"));
        let stats = client.stats().await.expect("stats");
        client.close().await;
        eprintln!(
            "[figure] az-affinity/{p}: zone {zone:?}: {reads} GETs -> replicas {}, primaries {}",
            delta(&get_r, &get_r0),
            delta(&get_m, &get_m0)
        );
        let (want_r, want_m) = if to_replicas { (reads, 0) } else { (0, reads) };
        assert_eq!(delta(&get_r, &get_r0), want_r, "{p}: zone {zone}: GETs on replicas");
        assert_eq!(delta(&get_m, &get_m0), want_m, "{p}: zone {zone}: GETs on primaries");
        assert_eq!(stats.moved, 0, "{p}: {stats:?}");
    });
}

#[test]
fn az_affinity_reads_from_its_zone_and_falls_back_to_primaries() {
    let (c, masters, replicas) = setup();
    zone_replicas(&c, &replicas, "az-replicas");
    for rt in ALL {
        az_round(rt, &c, &masters, &replicas, "az-replicas", true);
        az_round(rt, &c, &masters, &replicas, "az-nowhere", false);
    }
}
