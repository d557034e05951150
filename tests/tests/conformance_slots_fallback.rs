//! Conformance (real cluster, every runtime): the `CLUSTER SLOTS` fallback.
//!
//! 3 masters, no replicas. A user `noshards` is created on every node with every right but
//! `CLUSTER SHARDS` (`ACL SETUSER noshards on >pw ~* &* +@all -cluster|shards`): the server
//! answers its `CLUSTER SHARDS` with `NOPERM`. Shows:
//!
//! - a client logged in as that user still connects and gets a topology: every slot has a
//!   primary, and the primaries are the cluster's masters;
//! - it serves every shard (a write and a checked read on each master's slots);
//! - it really fell back, by the servers' own counters (`INFO commandstats`): during its life
//!   `cmdstat_cluster|slots` calls grew and `cmdstat_cluster|shards` calls did not (its
//!   `CLUSTER SHARDS` attempts appear as `rejected_calls`), and no refresh counted as failed;
//! - the measure tells the two paths apart: a client of the default user on the same cluster
//!   grows `cluster|shards` calls and leaves `cluster|slots` alone.
//!
//! Prints `[figure]` lines per runtime: the servers' counters for each client.

use std::time::Duration;

use bytes::Bytes;
use slotcache_rt::{Client, Cmd, Config, Password, Slot, Value};
use slotcache_tests::conformance::{ALL, Rt, config, keys_on, slot_owners};
use slotcache_tests::{Cluster, ClusterBuilder};

const USER: &str = "noshards";
const PASSWORD: &str = "noshards-pw";

/// The servers' counters of the two topology commands, summed over every node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TopologyCalls {
    shards_calls: u64,
    shards_rejected: u64,
    slots_calls: u64,
}

impl TopologyCalls {
    fn read(c: &Cluster) -> Self {
        let mut t = Self::default();
        for i in c.live() {
            let stats = c.commandstats(i).expect("commandstats");
            if let Some(s) = stats.get("cluster|shards") {
                t.shards_calls += s.calls;
                t.shards_rejected += s.rejected_calls;
            }
            if let Some(s) = stats.get("cluster|slots") {
                t.slots_calls += s.calls + s.rejected_calls;
            }
        }
        t
    }

    fn since(self, before: Self) -> Self {
        Self {
            shards_calls: self.shards_calls - before.shards_calls,
            shards_rejected: self.shards_rejected - before.shards_rejected,
            slots_calls: self.slots_calls - before.slots_calls,
        }
    }
}

/// Connects with `cfg`, writes and reads back a key on every master's slots, checks the
/// topology covers every slot with the cluster's masters, and returns what the servers counted
/// of the topology commands meanwhile (the harness sends none: it reads `CLUSTER NODES`).
fn run_client(c: &Cluster, rt: Rt, cfg: Config, keys: &[String], who: &str) -> TopologyCalls {
    let p = rt.name();
    let masters: Vec<String> = (0..3).map(|m| c.node(m).addr().to_string()).collect();
    let before = TopologyCalls::read(c);
    rt.block_on(async {
        let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
        for k in keys {
            let set = client.send(Cmd::new("SET").arg(k.as_str()).arg(format!("{who}:{k}"))).await;
            assert_eq!(set.expect("SET").as_str(), Some("OK"), "{p}/{who}: SET {k}");
            let got = client.send(Cmd::new("GET").arg(k.as_str())).await.expect("GET");
            assert_eq!(got, Value::Bulk(Bytes::from(format!("{who}:{k}"))), "{p}/{who}: GET {k}");
        }
        let topology = client.topology().expect("a topology");
        let mut primaries: Vec<String> = topology.primaries().map(|n| n.addr.to_string()).collect();
        primaries.sort();
        let mut want = masters.clone();
        want.sort();
        assert_eq!(primaries, want, "{p}/{who}: the topology's primaries");
        let unserved = (0..slotcache_core::SLOT_COUNT)
            .filter(|&s| topology.primary(Slot::new(s).expect("slot")).is_none())
            .count();
        assert_eq!(unserved, 0, "{p}/{who}: slots without a primary in the topology");
        let stats = client.stats().await.expect("stats");
        assert!(stats.refreshes >= 1, "{p}/{who}: {stats:?}");
        assert_eq!(stats.refresh_failures, 0, "{p}/{who}: a fallback is not a failed refresh: {stats:?}");
        client.close().await;
    });
    TopologyCalls::read(c).since(before)
}

#[test]
fn user_denied_cluster_shards_gets_its_topology_from_cluster_slots() {
    let c =
        ClusterBuilder::new().masters(3).replicas(0).label("conf-slots-fallback").start().expect("cluster");
    for i in c.live() {
        c.conn(i)
            .expect("conn")
            .cmd_ok([
                "ACL",
                "SETUSER",
                USER,
                "reset",
                "on",
                &format!(">{PASSWORD}"),
                "~*",
                "&*",
                "+@all",
                "-cluster|shards",
            ])
            .expect("ACL SETUSER");
        // What the user gets from the server itself.
        let mut as_user = c.conn(i).expect("conn");
        as_user.cmd_ok(["AUTH", USER, PASSWORD]).expect("AUTH");
        let denied = as_user.cmd(["CLUSTER", "SHARDS"]).expect("CLUSTER SHARDS");
        let text = slotcache_tests::resp::error_text(&denied);
        assert!(
            text.as_deref().is_some_and(|t| t.starts_with("NOPERM")),
            "node {i}: CLUSTER SHARDS as {USER}: {denied:?}"
        );
        if i == 0 {
            eprintln!(
                "[figure] slots-fallback: node 0 answers {USER}'s CLUSTER SHARDS with {:?}",
                text.unwrap_or_default()
            );
        }
    }
    let owners = slot_owners(&c, 0).expect("owners");
    for rt in ALL {
        let p = rt.name();
        let keys: Vec<String> = (0..3).flat_map(|m| keys_on(&owners, m, 4, &format!("sf:{p}:{m}"))).collect();

        let mut cfg = config(&c);
        cfg.client.username = Some(USER.into());
        cfg.client.password = Some(Password::new(PASSWORD));
        cfg.client.request_timeout = Duration::from_secs(1);
        let denied = run_client(&c, rt, cfg, &keys, USER);
        eprintln!(
            "[figure] slots-fallback/{p}: client as {USER}: servers counted CLUSTER SLOTS {} calls, CLUSTER SHARDS \
             {} calls and {} rejected; every shard served ({} keys written and read back)",
            denied.slots_calls,
            denied.shards_calls,
            denied.shards_rejected,
            keys.len()
        );
        assert!(denied.slots_calls >= 1, "{p}: the client never asked CLUSTER SLOTS: {denied:?}");
        assert_eq!(denied.shards_calls, 0, "{p}: CLUSTER SHARDS ran for {USER}: {denied:?}");
        assert!(denied.shards_rejected >= 1, "{p}: the client never tried CLUSTER SHARDS first: {denied:?}");

        let mut cfg = config(&c);
        cfg.client.request_timeout = Duration::from_secs(1);
        let normal = run_client(&c, rt, cfg, &keys, "default");
        eprintln!(
            "[figure] slots-fallback/{p}: client as the default user: CLUSTER SHARDS {} calls ({} rejected), \
             CLUSTER SLOTS {} calls",
            normal.shards_calls, normal.shards_rejected, normal.slots_calls
        );
        assert!(normal.shards_calls >= 1, "{p}: {normal:?}");
        assert_eq!(normal.slots_calls, 0, "{p}: the default user has no reason to fall back: {normal:?}");
        assert_eq!(normal.shards_rejected, 0, "{p}: {normal:?}");
    }
}
