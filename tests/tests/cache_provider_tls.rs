//! TLS through the cache's own configuration (`ProviderConfig`, from a `rediss://` URL), with
//! the map from announced addresses to certificate names, every runtime, on a TLS-only cluster
//! (Debian's `redis-server` 7.0, 3 masters, mutual TLS; see `conformance_tls.rs` for the
//! low-level client over the same kind of cluster).
//!
//! The servers' certificate names `localhost` and `127.0.0.1`. The configuration checks every
//! node against a **wrong** default name (`wrong.example`) except where the map names an
//! announced address (`127.0.0.1:<port>` → `localhost`):
//!
//! - with every node mapped, the cache works on every shard (writes, tagged reads, tag
//!   invalidation, a bulk read, `invalidate_all`): if the map were ignored, the default name
//!   would fail every handshake;
//! - with one node left out of the map, the operations on its keys fail with a typed TLS error
//!   naming it (`TlsFailure::NameMismatch`), and the other shards keep working.
//!
//! Needs `redis-server`; outside CI it may be skipped with `SLOTCACHE_SKIP_TLS=1`.

use std::time::Duration;

use slotcache_rt::{
    CacheError, NamespaceOptions, Provider, ProviderConfig, RequestError, TlsConfig, TlsFailure,
};
use slotcache_tests::conformance::ALL;
use slotcache_tests::{Cluster, ClusterBuilder};

/// `rediss://` with these nodes as seeds, trusting the cluster's CA, presenting the client
/// certificate, checking every node against `wrong.example` unless `mapped` names it.
fn cfg(c: &Cluster, seeds: &[usize], mapped: &[usize]) -> ProviderConfig {
    let files = c.tls_files().expect("TLS files");
    let read = |p: &std::path::Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let seeds: Vec<String> = seeds.iter().map(|&i| c.node(i).addr().to_string()).collect();
    let mut cfg = ProviderConfig::from_url(&format!("rediss://{}?client_name=cache-tls", seeds.join(",")))
        .expect("URL");
    assert!(cfg.require_tls, "rediss:// requires TLS");
    let mut tls = TlsConfig::new()
        .with_root_pem(&read(&files.ca_cert))
        .expect("CA")
        .with_client_cert_pem(&read(&files.client_cert), &read(&files.client_key))
        .expect("client certificate")
        .with_default_server_name("wrong.example");
    for &i in mapped {
        tls = tls.with_server_name(c.node(i).addr().to_string(), "localhost");
    }
    cfg.tls = Some(tls);
    cfg.operation_timeout = Duration::from_secs(2);
    cfg
}

#[test]
fn provider_over_tls_uses_the_certificate_name_map() {
    if let Some(reason) = slotcache_tests::tls::skip_reason() {
        eprintln!("SKIPPED provider_over_tls_uses_the_certificate_name_map: {reason}");
        return;
    }
    let c =
        ClusterBuilder::new().tls(true).masters(3).replicas(0).label("cache-tls").start().expect("cluster");
    let masters = c.masters().expect("masters");
    for rt in ALL {
        let p = rt.name();
        rt.block_on(async {
            // Every node mapped: the whole cache works over TLS.
            let provider =
                Provider::connect(rt.runtime(), cfg(&c, &masters, &masters)).await.expect("connects");
            let cache = provider
                .create_namespace::<String, String>(&format!("tls-{p}"), NamespaceOptions::default())
                .expect("namespace");
            let keys: Vec<String> = masters.iter().map(|&m| c.key_owned_by(m, p).expect("key")).collect();
            for k in &keys {
                cache.set(k, &format!("v-{k}"), &["t"]).await.expect("set over TLS");
            }
            for k in &keys {
                assert_eq!(cache.get_if_present(k).await.expect("get"), Some(format!("v-{k}")), "{p}");
            }
            assert_eq!(cache.bulk_get(&keys).await.expect("bulk_get").len(), 3, "{p}");
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("invalidate"), 3, "{p}");
            for k in &keys {
                cache.set(k, &s(k), &[]).await.expect("set");
            }
            // The entries and the tag's key.
            assert_eq!(cache.invalidate_all().await.expect("invalidate_all"), 4, "{p}: every primary");
            assert!(cache.bulk_get(&keys).await.expect("bulk_get").is_empty(), "{p}");
            let stats = provider.client().stats().await.expect("stats");
            assert_eq!(stats.connect_failures, 0, "{p}: {stats:?}");
            provider.close().await;

            // One node left out of the map: its keys fail with a typed TLS error naming it, the
            // others work. (The provider's first PING goes to any node: when that is the one
            // left out, connecting fails with the same error.)
            let (left_out, rest) = (masters[2], &masters[..2]);
            let refused = |e: &CacheError| match e {
                CacheError::Request(RequestError::Unreachable { addr, error }) => {
                    assert_eq!(c.index_of_addr(addr), Some(left_out), "{p}: {e}");
                    assert_eq!(error.tls_failure(), Some(TlsFailure::NameMismatch), "{p}: {error}");
                }
                other => panic!("{p}: expected a TLS refusal of the unmapped node, got {other:?}"),
            };
            let provider = match Provider::connect(rt.runtime(), cfg(&c, rest, rest)).await {
                Ok(provider) => provider,
                Err(e) => {
                    eprintln!("[figure] cache-tls/{p}: connecting met the unmapped node first: {e}");
                    return refused(&e);
                }
            };
            let cache = provider
                .create_namespace::<String, String>(&format!("tls-{p}"), NamespaceOptions::default())
                .expect("namespace");
            for (k, &m) in keys.iter().zip(&masters) {
                let r = cache.set(k, &s("w"), &[]).await;
                if m == left_out {
                    let e = r.expect_err("the unmapped node is refused");
                    eprintln!("[figure] cache-tls/{p}: the unmapped node's key: {e}");
                    refused(&e);
                } else {
                    r.expect("a mapped node works");
                }
            }
            provider.close().await;
        });
    }
}

fn s(v: &str) -> String {
    v.to_owned()
}
