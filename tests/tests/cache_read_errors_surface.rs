//! Errors surface. A key of another type, a corrupt entry or a tag key of another type is an error,
//! never a miss: `get_if_present`, `get_entry` and `bulk_get` fail, and `bulk_get_with` does not
//! call its loader (which would overwrite what is there); tagged writes and invalidations fail when
//! a tag's key is unusable.
//!
//! On a real cluster (3 masters + 1 replica each), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.9.

mod cache_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use slotcache_rt::{CacheError, Value};
use slotcache_tests::conformance::Rt;

use cache_support::{cluster, is_server_error, ns, on_every_runtime, provider, raw, s, shared, string_ns};

const LABEL: &str = "cache-read-errors-surface";

#[test]
fn read_and_tag_errors_are_errors_never_misses() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("read_and_tag_errors_are_errors_never_misses", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "errors").await;
            let name = ns("err", rt, "a");
            let cache = string_ns(&p, &name);
            cache.set(&s("good"), &s("v"), &[]).await.expect("set");
            let list = format!("{name}:list");
            raw(&c, list.as_bytes(), &[b"RPUSH", list.as_bytes(), b"x"]);
            let corrupt = format!("{name}:corrupt");
            raw(&c, corrupt.as_bytes(), &[b"SET", corrupt.as_bytes(), b"\0not an envelope"]);
            let garbage = format!("{name}:garbage");
            raw(&c, garbage.as_bytes(), &[b"SET", garbage.as_bytes(), b"{not json"]);

            let e = cache.get_if_present(&s("list")).await;
            assert!(is_server_error(&e, b"WRONGTYPE"), "{e:?}");
            let e = cache.get_entry(&s("list")).await;
            assert!(is_server_error(&e, b"WRONGTYPE"), "{e:?}");
            assert!(matches!(cache.get_if_present(&s("corrupt")).await, Err(CacheError::Corrupt { .. })));
            assert!(matches!(cache.get_if_present(&s("garbage")).await, Err(CacheError::Codec(_))));

            let loads = Arc::new(AtomicUsize::new(0));
            for bad in ["list", "corrupt", "garbage"] {
                let keys = [s("good"), s(bad), s("missing")];
                let e = cache.bulk_get(&keys).await;
                assert!(e.is_err(), "{bad}: {e:?}");
                let l = loads.clone();
                let e = cache
                    .bulk_get_with(&keys, move |ks| async move {
                        l.fetch_add(1, Ordering::SeqCst);
                        Ok(ks.into_iter().map(|k| (k, s("loaded"))).collect())
                    })
                    .await;
                assert!(e.is_err(), "{bad}: {e:?}");
            }
            assert_eq!(loads.load(Ordering::SeqCst), 0, "no loader call over a read error");
            assert_eq!(raw(&c, list.as_bytes(), &[b"TYPE", list.as_bytes()]), Value::Simple("list".into()));

            // A tag whose key holds something else: the tagged write and the invalidation fail.
            let tk = format!("tag:{{{name}:broken}}");
            raw(&c, tk.as_bytes(), &[b"SET", tk.as_bytes(), b"not a sorted set"]);
            let e = cache.set(&s("t"), &s("v"), &["broken"]).await;
            assert!(e.is_err(), "{e:?}");
            assert_eq!(cache.get_if_present(&s("t")).await.expect("get"), None, "no value without its tag");
            assert!(cache.invalidate_by_tags(&["broken"]).await.is_err());
            assert!(cache.invalidate_by_tags(&["fine", "broken"]).await.is_err());
            p.close().await;
        }
    });
}
