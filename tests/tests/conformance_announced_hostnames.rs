//! Conformance (real cluster, every runtime): nodes that announce hostnames, and the endpoint
//! types a managed cluster can be configured with.
//!
//! 3 masters, no replicas, on 127.0.0.1; the client is seeded with `127.0.0.1:<port>`. In turn:
//!
//! 1. `cluster-announce-hostname localhost` and `cluster-preferred-endpoint-type hostname` on
//!    every node: `CLUSTER SHARDS` gives `endpoint: localhost` and `hostname: localhost`, and
//!    redirects name `localhost:<port>`. The client learns every primary at `localhost` (the
//!    announced name, not the seed's address) and serves every shard.
//! 2. `cluster-preferred-endpoint-type unknown-endpoint`: endpoints are unknown (`""` in
//!    `CLUSTER SHARDS`), which means "the host you asked, this port"; the client uses the
//!    answering node's host.
//! 3. `hostname` again, with node 2's hostname removed: the others list it with endpoint `?`.
//!    The client skips that node (listed with `SkipReason::UnknownEndpoint`), keeps serving the
//!    other shards, and a key of node 2's slots fails with a typed error within its timeout,
//!    never a panic or a hang.

use std::time::{Duration, Instant};

use slotcache_core::topology::SkipReason;
use slotcache_rt::{Client, Cmd, Value};
use slotcache_tests::conformance::{ALL, config, keys_on, slot_owners};
use slotcache_tests::{Cluster, ClusterBuilder};

/// Sets `name value` on every node.
fn set_everywhere(c: &Cluster, name: &str, value: &str) {
    for i in c.live() {
        c.cmd(i, ["CONFIG", "SET", name, value]).expect("CONFIG SET");
    }
}

/// The `endpoint` every node's `CLUSTER SHARDS` gives for node `of`, as text (`None`: NULL).
fn endpoints_of(c: &Cluster, of: usize) -> Vec<Option<String>> {
    let id = c.node(of).id().to_owned();
    c.live()
        .into_iter()
        .map(|i| {
            let shards = c.cmd(i, ["CLUSTER", "SHARDS"]).expect("CLUSTER SHARDS");
            find_endpoint(&shards, &id).unwrap_or_else(|| Some("<missing>".into()))
        })
        .collect()
}

/// The endpoint of node `id` in a `CLUSTER SHARDS` reply (RESP2 flat maps).
fn find_endpoint(v: &Value, id: &str) -> Option<Option<String>> {
    let Value::Array(items) = v else { return None };
    // A node is a flat map: id, <id>, ..., endpoint, <endpoint>, ...
    let is_node = items
        .chunks(2)
        .any(|kv| kv[0].as_str() == Some("id") && kv.get(1).and_then(Value::as_str) == Some(id))
        && items.len() % 2 == 0;
    if is_node {
        return items.chunks(2).find(|kv| kv[0].as_str() == Some("endpoint")).map(|kv| match &kv[1] {
            Value::Nil => None,
            other => other.as_str().map(str::to_owned),
        });
    }
    items.iter().find_map(|i| find_endpoint(i, id))
}

/// Waits (bounded) until every node lists every node of `nodes` with endpoint `want`.
fn await_endpoints(c: &Cluster, nodes: &[usize], want: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen: Vec<Vec<Option<String>>> = nodes.iter().map(|&n| endpoints_of(c, n)).collect();
        if seen.iter().flatten().all(|e| e.as_deref() == want) {
            return;
        }
        assert!(Instant::now() < deadline, "endpoints never became {want:?}: {seen:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn announced_hostnames_and_endpoint_types_are_followed() {
    let c = ClusterBuilder::new().masters(3).replicas(0).label("conf-hostnames").start().expect("cluster");
    let owners = slot_owners(&c, 0).expect("owners");
    let keys: Vec<Vec<String>> = (0..3).map(|m| keys_on(&owners, m, 4, "host")).collect();
    let serves = |client: &Client, shards: &[usize], p: &'static str| {
        let (client, keys) = (client.clone(), keys.clone());
        let shards = shards.to_vec();
        async move {
            for m in shards {
                for k in &keys[m] {
                    client.send(Cmd::new("SET").arg(k.as_str()).arg(p)).await.expect("SET");
                    let v = client.send(Cmd::new("GET").arg(k.as_str())).await.expect("GET");
                    assert_eq!(v.as_str(), Some(p), "{p}: key {k} of master {m}");
                }
            }
        }
    };

    // 1. Hostnames.
    set_everywhere(&c, "cluster-announce-hostname", "localhost");
    set_everywhere(&c, "cluster-preferred-endpoint-type", "hostname");
    await_endpoints(&c, &[0, 1, 2], Some("localhost"));
    for rt in ALL {
        let p = rt.name();
        rt.block_on(async {
            let client = Client::connect(rt.runtime(), config(&c)).await.expect("connect");
            serves(&client, &[0, 1, 2], p).await;
            let t = client.topology().expect("topology");
            for n in t.primaries() {
                assert_eq!(n.addr.host(), "localhost", "{p}: {n:?}");
                assert_eq!(n.hostname.as_deref(), Some("localhost"), "{p}: {n:?}");
            }
            client.close().await;
        });
    }

    // 2. Unknown endpoints: the answering node's host.
    set_everywhere(&c, "cluster-preferred-endpoint-type", "unknown-endpoint");
    await_endpoints(&c, &[0, 1, 2], Some(""));
    for rt in ALL {
        let p = rt.name();
        rt.block_on(async {
            let client = Client::connect(rt.runtime(), config(&c)).await.expect("connect");
            serves(&client, &[0, 1, 2], p).await;
            let t = client.topology().expect("topology");
            for n in t.primaries() {
                assert_eq!(n.addr.host(), "127.0.0.1", "{p}: the seed's host: {n:?}");
            }
            client.close().await;
        });
    }

    // 3. Node 2 without a hostname: endpoint `?`.
    set_everywhere(&c, "cluster-preferred-endpoint-type", "hostname");
    c.cmd(2, ["CONFIG", "SET", "cluster-announce-hostname", ""]).expect("CONFIG SET");
    await_endpoints(&c, &[2], Some("?"));
    await_endpoints(&c, &[0, 1], Some("localhost"));
    for rt in ALL {
        let p = rt.name();
        rt.block_on(async {
            let mut cfg = config(&c);
            cfg.client.request_timeout = Duration::from_millis(500);
            // Seeded with nodes 0 and 1 only: node 2 would describe itself by its address.
            cfg.client.seeds.truncate(2);
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            serves(&client, &[0, 1], p).await;
            let t = client.topology().expect("topology");
            assert!(
                t.skipped().iter().any(|s| s.reason == SkipReason::UnknownEndpoint),
                "{p}: node 2 is skipped: {:?}",
                t.skipped()
            );
            let started = Instant::now();
            let k = &keys[2][0];
            let e = client.send(Cmd::new("GET").arg(k.as_str())).await.expect_err("no usable node");
            assert!(started.elapsed() < Duration::from_secs(2), "{p}: within its timeout: {e}");
            eprintln!("[figure] hostnames/{p}: a key of the `?` node: {e} after {:?}", started.elapsed());
            client.close().await;
        });
    }
}
