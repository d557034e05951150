//! Conformance (real cluster, every runtime): a cluster whose nodes bind and announce the IPv6
//! loopback `::1`.
//!
//! 3 masters, no replicas, formed with `CLUSTER MEET ::1 <port>`, so `CLUSTER SHARDS` lists
//! every node at `::1` and redirects name `[::1]:port`. Shows: a client seeded with `[::1]:port`
//! learns every primary at `::1` and serves keys of every shard; a provider built from the URL
//! `redis://[::1]:port,[::1]:port` stores and reads entries (tagged, so the tag keys of other
//! shards are reached too) and invalidates by tag; a key sent to a node that does not own it is
//! that node's `MOVED <slot> ::1:<port>` (no brackets), read as the right owner.

use std::time::Duration;

use slotcache_core::ServerErrorKind;
use slotcache_rt::{Client, Cmd, Error, NamespaceOptions, Provider, ProviderConfig, RequestError};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config, keys_on, slot_owners};

#[test]
fn a_cluster_on_the_ipv6_loopback_is_served() {
    let c = ClusterBuilder::new().masters(3).replicas(0).ipv6().label("conf-ipv6").start().expect("cluster");
    let owners = slot_owners(&c, 0).expect("owners");
    let keys: Vec<Vec<String>> = (0..3).map(|m| keys_on(&owners, m, 5, "v6")).collect();
    let url = format!(
        "redis://{}",
        c.seeds().iter().map(|a| format!("[{}]:{}", a.host(), a.port())).collect::<Vec<_>>().join(",")
    );
    for rt in ALL {
        let p = rt.name();
        rt.block_on(async {
            let client = Client::connect(rt.runtime(), config(&c)).await.expect("connect over IPv6");
            for (m, keys) in keys.iter().enumerate() {
                for k in keys {
                    client.send(Cmd::new("SET").arg(k.as_str()).arg(p)).await.expect("SET");
                    let v = client.send(Cmd::new("GET").arg(k.as_str())).await.expect("GET");
                    assert_eq!(v.as_str(), Some(p), "{p}: key {k} of master {m}");
                }
            }
            let topology = client.topology().expect("a topology");
            let hosts: Vec<String> = topology.primaries().map(|n| n.addr.host().to_owned()).collect();
            assert_eq!(hosts, vec!["::1"; 3], "{p}: every primary at ::1");

            // A node asked for a key it does not own answers `MOVED <slot> ::1:<port>` (Valkey
            // writes the IPv6 address without brackets); the owner it names is read right.
            let wrong = c.node(1).addr();
            let k = &keys[0][0];
            let e = client.send_to(wrong.clone(), Cmd::new("GET").arg(k.as_str())).await.expect_err("MOVED");
            let Error::Request(RequestError::Server(moved)) = &e else { panic!("{p}: {e:?}") };
            let ServerErrorKind::Moved { endpoint, .. } = moved.kind() else { panic!("{p}: {e:?}") };
            assert_eq!(endpoint.resolve(&wrong), c.node(0).addr(), "{p}: the owner named by {moved}");
            client.close().await;

            let mut cfg = ProviderConfig::from_url(&url).expect("an IPv6 URL");
            cfg.operation_timeout = Duration::from_secs(5);
            let provider = Provider::connect(rt.runtime(), cfg).await.expect("provider over IPv6");
            let cache = provider
                .create_namespace::<String, String>(&format!("v6-{p}"), NamespaceOptions::default())
                .expect("namespace");
            for (i, keys) in keys.iter().enumerate() {
                for (j, k) in keys.iter().enumerate() {
                    let own = format!("own-{i}-{j}");
                    cache.set(k, &format!("{p}{i}"), &["shard", own.as_str()]).await.expect("tagged set");
                    assert_eq!(cache.get_if_present(k).await.expect("get"), Some(format!("{p}{i}")), "{p}");
                }
            }
            let removed = cache.invalidate_by_tags(&["shard"]).await.expect("invalidate");
            assert_eq!(removed, 15, "{p}: every entry of every shard");
            for k in keys.iter().flatten() {
                assert_eq!(cache.get_if_present(k).await.expect("get"), None, "{p}: {k} invalidated");
            }
            provider.close().await;
        });
    }
}
