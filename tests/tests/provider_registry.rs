//! The provider registry: providers by name, a default (the first registered until another is
//! named), typed errors for a taken or unknown name and for an empty registry, and
//! `close_all`. Its providers here are in-memory ones: each has a node of its own, and
//! `connect_memory` shares one node between two providers.

use slotcache_rt::{
    CacheError, CacheProvider, MemoryServer, NamespaceOptions, Provider, ProviderConfig, ProviderRegistry,
    RegistryError,
};
use slotcache_tests::conformance::ALL;

async fn put(p: &impl CacheProvider, ns: &str, k: &str, v: &str) {
    let c = p.create_namespace::<String, String>(ns, NamespaceOptions::default()).expect("namespace");
    c.set(&k.to_string(), &v.to_string(), &[]).await.expect("set");
}

async fn read(p: &impl CacheProvider, ns: &str, k: &str) -> Result<Option<String>, CacheError> {
    let c = p.create_namespace::<String, String>(ns, NamespaceOptions::default())?;
    c.get_if_present(&k.to_string()).await
}

#[test]
fn providers_by_name_with_a_default() {
    for rt in ALL {
        rt.block_on(async move {
            let empty = ProviderRegistry::<Provider>::new();
            assert_eq!(empty.default_provider().err(), Some(RegistryError::Empty));
            assert_eq!(empty.default_name(), None);

            let memory = || Provider::in_memory(rt.runtime(), ProviderConfig::default());
            let shared = MemoryServer::new();
            let a =
                Provider::connect_memory(rt.runtime(), &shared, ProviderConfig::default()).await.expect("a");
            let b = memory().await.expect("b");
            let mut reg =
                ProviderRegistry::new().with_provider("a", a).expect("a").with_provider("b", b).expect("b");
            assert_eq!(reg.default_name(), Some("a"), "the first registered");
            assert_eq!(reg.names().collect::<Vec<_>>(), ["a", "b"]);
            let dup = reg.register("a", memory().await.expect("another"));
            assert_eq!(dup, Err(RegistryError::Duplicate("a".into())));
            assert_eq!(reg.set_default("c"), Err(RegistryError::Unknown("c".into())));
            assert_eq!(reg.default_name(), Some("a"), "unchanged by the refused name");
            assert_eq!(reg.provider("c").err(), Some(RegistryError::Unknown("c".into())));
            assert!(reg.get("c").is_none());
            let reg = reg.with_default("b").expect("b exists");
            assert_eq!(reg.default_name(), Some("b"));

            // The default is `b`, a node of its own: `a` does not see its writes.
            put(reg.default_provider().expect("default"), "n", "k", "from b").await;
            assert_eq!(
                read(reg.provider("b").expect("b"), "n", "k").await.expect("b"),
                Some("from b".into())
            );
            assert_eq!(read(reg.provider("a").expect("a"), "n", "k").await.expect("a"), None);
            // `a` shares its node with another provider, as two services share a cluster.
            let other = Provider::connect_memory(rt.runtime(), &shared, ProviderConfig::default())
                .await
                .expect("other");
            put(&other, "n", "k", "from other").await;
            assert_eq!(
                read(reg.provider("a").expect("a"), "n", "k").await.expect("a"),
                Some("from other".into())
            );

            reg.close_all().await;
            for name in ["a", "b"] {
                let e = read(reg.provider(name).expect("registered"), "n", "k").await;
                assert!(matches!(e, Err(CacheError::Closed)), "{name}: {e:?}");
            }
            other.close().await;
        });
    }
}
