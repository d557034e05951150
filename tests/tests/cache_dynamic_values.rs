//! Values of a dynamic shape (the reference's `(string, any)` namespaces, whose every read failed)
//! read back, through every read path.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.3.

mod cache_support;

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use slotcache_rt::{Cache, Compute, NamespaceOptions};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, s};

const LABEL: &str = "cache-dynamic-values";

on_both_providers!(
    values_of_a_dynamic_shape_read_back_on_every_path_on,
    LABEL,
    values_of_a_dynamic_shape_read_back_on_every_path,
    values_of_a_dynamic_shape_read_back_on_every_path_in_memory
);

/// A value of any shape, the Rust counterpart of the reference's `any` values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Any {
    Int(i64),
    Text(String),
    List(Vec<Self>),
    Map(BTreeMap<String, Self>),
}

fn values_of_a_dynamic_shape_read_back_on_every_path_on(c: impl Backend) {
    on_every_runtime("values_of_a_dynamic_shape_read_back_on_every_path", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "any").await;
            let cache: Cache<String, Any> =
                p.create_namespace(&ns("any", rt, "a"), NamespaceOptions::default()).expect("namespace");
            let values = [
                Any::Int(42),
                Any::Text(s("hello")),
                Any::List(vec![Any::Int(1), Any::Text(s("two"))]),
                Any::Map(BTreeMap::from([(s("k"), Any::List(vec![]))])),
            ];
            for (i, v) in values.iter().enumerate() {
                cache.set(&format!("v{i}"), v, &["any"]).await.expect("set");
            }
            for (i, v) in values.iter().enumerate() {
                assert_eq!(cache.get_if_present(&format!("v{i}")).await.expect("get").as_ref(), Some(v));
                assert_eq!(&cache.get_entry(&format!("v{i}")).await.expect("entry").expect("found").value, v);
            }
            let keys: Vec<String> = (0..4).map(|i| format!("v{i}")).collect();
            assert_eq!(cache.bulk_get(&keys).await.expect("bulk").len(), 4);
            assert_eq!(cache.values().count().await, 4);
            let v =
                cache.get(&s("loaded"), |_| async { Ok(Any::Text(s("from loader"))) }).await.expect("get");
            assert_eq!(v, Any::Text(s("from loader")));
            let v = cache.compute(&s("v0"), |_| Compute::Set(Any::Int(43))).await.expect("compute");
            assert_eq!(v, Some(Any::Int(43)));
            p.close().await;
        }
    });
}
