//! Provider construction, every runtime: the reference's configuration defaults (spec §2.2 and
//! the §14.1 unit tests), every invalid setting a typed `Config` error naming its field (never a
//! panic, nothing sent), a wrong seed failing fast with an error that names it, a seed list
//! with one dead seed still connecting, and the password kept out of every `Debug` output and
//! error text (an ACL user on a real cluster: right password, wrong password).

mod cache_support;

use std::time::{Duration, Instant};

use slotcache_rt::{CacheError, NamespaceOptions, Provider, ProviderConfig};
use slotcache_tests::conformance::Rt;

use cache_support::{cluster, config, ns, on_every_runtime, seeds, shared};

const LABEL: &str = "cache-provider";
const PASSWORD: &str = "S3cret-Pa55word-xyzzy";

/// The reference's defaults (§2.2, `config_test.go`), and explicit values kept as given.
#[test]
fn defaults_match_the_reference() {
    let c = ProviderConfig::new(["127.0.0.1:7000"]);
    assert_eq!(c.default_ttl, Duration::from_secs(3600));
    assert_eq!(c.operation_timeout, Duration::from_secs(2));
    assert_eq!(c.atomic_operation_timeout, Duration::from_secs(5));
    assert_eq!(c.bulk_operation_timeout, Duration::from_secs(10));
    assert_eq!(c.flush_timeout, Duration::from_secs(30));
    assert_eq!(c.search_timeout, Duration::from_secs(5));
    assert_eq!(c.max_compute_retries, 10);
    assert_eq!(c.index_prefix, "index:");
    assert!(!c.allow_unsafe_flushdb && !c.send_to_replicas && c.namespace.is_empty());
    let mut e = c;
    e.default_ttl = Duration::from_secs(7 * 60);
    e.operation_timeout = Duration::from_secs(11);
    e.atomic_operation_timeout = Duration::from_secs(3);
    e.bulk_operation_timeout = Duration::from_secs(13);
    e.flush_timeout = Duration::from_secs(17);
    e.search_timeout = Duration::from_secs(19);
    e.max_compute_retries = 99;
    e.index_prefix = "custom-prefix:".into();
    let settings = e.client_settings().expect("valid");
    assert_eq!(settings.client.request_timeout, Duration::from_secs(11));
    assert_eq!(e.default_ttl, Duration::from_secs(420), "kept as given");
    assert_eq!((e.max_compute_retries, e.index_prefix.as_str()), (99, "custom-prefix:"));
}

/// Every invalid setting is a typed error naming its field, returned by `Provider::connect`
/// before any connection is attempted (the seeds here have no server), on every runtime.
#[test]
fn invalid_settings_are_typed_errors() {
    on_every_runtime("invalid_settings_are_typed_errors", |rt: Rt| async move {
        type Edit = fn(&mut ProviderConfig);
        let cases: Vec<(&str, Edit)> = vec![
            ("init_address", |c| c.init_address.clear()),
            ("init_address", |c| c.init_address = vec!["no-port".into()]),
            ("init_address", |c| c.init_address = vec!["127.0.0.1:0".into()]),
            ("init_address", |c| c.init_address = vec![":7000".into()]),
            ("init_address", |c| c.init_address = vec!["127.0.0.1:99999".into()]),
            ("operation_timeout", |c| c.operation_timeout = Duration::ZERO),
            ("atomic_operation_timeout", |c| c.atomic_operation_timeout = Duration::from_micros(10)),
            ("bulk_operation_timeout", |c| c.bulk_operation_timeout = Duration::ZERO),
            ("flush_timeout", |c| c.flush_timeout = Duration::ZERO),
            ("search_timeout", |c| c.search_timeout = Duration::ZERO),
            ("max_compute_retries", |c| c.max_compute_retries = 0),
            ("index_prefix", |c| c.index_prefix.clear()),
            ("max_value_size", |c| c.max_value_size = 0),
            ("username", |c| c.username = "bob".into()),
        ];
        for (field, edit) in cases {
            let mut cfg = ProviderConfig::new(["127.0.0.1:1"]);
            edit(&mut cfg);
            let started = Instant::now();
            let e = Provider::connect(rt.runtime(), cfg).await;
            assert!(matches!(&e, Err(CacheError::ClientConfig(c)) if c.field() == field), "{field}: {e:?}");
            assert!(started.elapsed() < Duration::from_millis(100), "{field}: refused before connecting");
        }
        let mut cfg = ProviderConfig::new(["127.0.0.1:1"]);
        cfg.default_ttl = Duration::ZERO;
        let e = Provider::connect(rt.runtime(), cfg).await;
        assert!(matches!(e, Err(CacheError::InvalidTtl { .. })), "default_ttl: {e:?}");
        // A global prefix that cannot be a key prefix is refused when a namespace is created
        // (covered with a live provider in `live_cluster_construction`).
    });
}

/// A seed with nothing behind it fails fast (within the operation timeout) with an error naming
/// the seed, given as an address or as a host name.
#[test]
fn wrong_seed_fails_fast_naming_it() {
    on_every_runtime("wrong_seed_fails_fast_naming_it", |rt: Rt| async move {
        for seed in ["127.0.0.1:1", "localhost:1"] {
            let mut cfg = ProviderConfig::new([seed]);
            cfg.operation_timeout = Duration::from_millis(500);
            let started = Instant::now();
            let e = Provider::connect(rt.runtime(), cfg).await;
            let took = started.elapsed();
            let err = e.expect_err("no cluster there");
            assert!(took < Duration::from_secs(2), "{seed}: failed after {took:?}");
            assert!(err.to_string().contains(seed), "{seed}: the error does not name the seed: {err}");
        }
    });
}

/// With a live cluster: one dead seed among good ones still connects; a global prefix that is
/// not a valid key prefix is a typed error when a namespace is created; an ACL user's password
/// never appears in `Debug` output (config, provider, namespace) nor in the error of a wrong
/// password.
#[test]
fn live_cluster_construction() {
    let c = cluster(LABEL);
    let _g = shared();
    for i in c.live() {
        let reply = c
            .cmd(i, ["ACL", "SETUSER", "cache-user", "on", &format!(">{PASSWORD}"), "~*", "&*", "+@all"])
            .expect("ACL SETUSER");
        assert_eq!(reply, slotcache_rt::Value::Simple("OK".into()), "node {i}");
    }
    on_every_runtime("live_cluster_construction", |rt: Rt| {
        let c = c.clone();
        async move {
            // One dead seed first, the live ones after.
            let mut with_dead = vec!["127.0.0.1:1".to_owned()];
            with_dead.extend(seeds(&c));
            let mut cfg = config(&c, "dead-seed");
            cfg.init_address = with_dead;
            let p = Provider::connect(rt.runtime(), cfg).await.expect("connects past a dead seed");
            let cache = p
                .create_namespace::<String, String>(&ns("prov", rt, "a"), NamespaceOptions::default())
                .expect("ns");
            cache.set(&"k".to_owned(), &"v".to_owned(), &[]).await.expect("set");
            p.close().await;

            let mut cfg = config(&c, "bad-global");
            cfg.namespace = "bad{prefix".into();
            let p = Provider::connect(rt.runtime(), cfg).await.expect("connects");
            let e = p.create_namespace::<String, String>("users", NamespaceOptions::default());
            assert!(matches!(e, Err(CacheError::Namespace(_))), "{e:?}");
            p.close().await;

            // The right password: works, and no Debug output shows it.
            let mut cfg = config(&c, "acl");
            cfg.username = "cache-user".into();
            cfg.password = PASSWORD.into();
            let shown = format!("{cfg:?}");
            assert!(!shown.contains(PASSWORD), "{shown}");
            let p = Provider::connect(rt.runtime(), cfg.clone()).await.expect("ACL user connects");
            let cache = p
                .create_namespace::<String, String>(&ns("acl", rt, "a"), NamespaceOptions::default())
                .expect("ns");
            cache.set(&"k".to_owned(), &"v".to_owned(), &["t"]).await.expect("set as the ACL user");
            for shown in [
                format!("{p:?}"),
                format!("{p:#?}"),
                format!("{cache:?}"),
                format!("{:?}", p.config()),
                format!("{:?}", p.client()),
            ] {
                assert!(!shown.contains(PASSWORD), "{shown}");
            }
            p.close().await;

            // A wrong password: a typed error at connect, which does not show it either.
            let wrong = "Wr0ng-Pa55word-plugh";
            cfg.password = wrong.into();
            // The client retries the handshake until the operation timeout (WRONGPASS is not
            // treated as final yet), so keep that short here.
            cfg.operation_timeout = Duration::from_millis(500);
            let started = Instant::now();
            let e = Provider::connect(rt.runtime(), cfg).await.expect_err("wrong password");
            assert!(started.elapsed() < Duration::from_secs(2), "fails fast: {:?}", started.elapsed());
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains(wrong) && !shown.contains(PASSWORD), "{shown}");
            }
            assert!(
                !matches!(e, CacheError::Config(_) | CacheError::ClientConfig(_)),
                "an authentication failure, not a configuration error: {e:?}"
            );
        }
    });
}
