//! Compute returns the value it computed and wrote (never a re-read), applies sub-second TTLs in
//! milliseconds, and never reports success for a write it did not make: an unencodable value, a
//! zero TTL and a key of another type are errors that leave the entry as it was; only a real
//! concurrent change counts as a conflict, retried a bounded number of times.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider, on tokio, smol
//! and async-std. The
//! reference's weakness this shows fixed: spec §15.5.

mod cache_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slotcache_rt::{Cache, CacheError, Compute, NamespaceOptions, Ttl, Value};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, is_server_error, ns, on_both_providers, on_every_runtime, s};

const LABEL: &str = "cache-compute-checks-writes";

on_both_providers!(
    compute_returns_what_it_wrote_and_never_a_failed_write_on,
    LABEL,
    compute_returns_what_it_wrote_and_never_a_failed_write,
    compute_returns_what_it_wrote_and_never_a_failed_write_in_memory
);

/// A value whose encoding fails for 13.
#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Fragile(u32);

impl Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        if self.0 == 13 {
            return Err(serde::ser::Error::custom("unlucky number"));
        }
        ser.serialize_u32(self.0)
    }
}

fn compute_returns_what_it_wrote_and_never_a_failed_write_on(c: impl Backend) {
    on_every_runtime("compute_returns_what_it_wrote_and_never_a_failed_write", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = c.config("compute-fix");
            cfg.max_compute_retries = 3;
            let p = c.provider_with(rt, cfg).await;
            let name = ns("cmp", rt, "a");
            let cache: Cache<String, Fragile> =
                p.create_namespace(&name, NamespaceOptions::default()).expect("ns");
            let k = s("k");

            // The computed value, even when what was written is already gone when it returns
            // (1 µs rounds up to 1 ms, never down to "EX 0").
            let v = cache
                .compute_with_ttl(&k, |_| (Fragile(7), Ttl::After(Duration::from_micros(1))))
                .await
                .expect("compute");
            assert_eq!(v, Some(Fragile(7)));
            rt.sleep(Duration::from_millis(20)).await;
            assert_eq!(cache.get_if_present(&k).await.expect("get"), None, "written with PX 1, expired");
            // Sub-second TTLs in milliseconds.
            let v = cache
                .compute_with_ttl(&k, |_| (Fragile(8), Ttl::After(Duration::from_millis(400))))
                .await
                .expect("compute");
            assert_eq!(v, Some(Fragile(8)));
            let ttl = cache.get_entry(&k).await.expect("entry").expect("found").ttl.expect("ttl");
            assert!(ttl > Duration::from_millis(250) && ttl <= Duration::from_millis(400), "{ttl:?}");

            // Failed writes are errors and change nothing.
            cache.set(&k, &Fragile(1), &[]).await.expect("set");
            let e = cache.compute(&k, |_| Compute::Set(Fragile(13))).await;
            assert!(matches!(e, Err(CacheError::Codec(_))), "{e:?}");
            let e = cache.compute_with_ttl(&k, |_| (Fragile(2), Ttl::After(Duration::ZERO))).await;
            assert!(matches!(e, Err(CacheError::InvalidTtl { .. })), "{e:?}");
            let e = cache.compute_if_absent(&s("absent"), || Fragile(13)).await;
            assert!(matches!(e, Err(CacheError::Codec(_))), "{e:?}");
            assert_eq!(cache.get_if_present(&k).await.expect("get"), Some(Fragile(1)), "unchanged");
            assert_eq!(cache.get_if_present(&s("absent")).await.expect("get"), None);
            // (A sorted set: a type the in-memory node has too.)
            let other = format!("{name}:other");
            c.raw(other.as_bytes(), &[b"ZADD", other.as_bytes(), b"1", b"x"]);
            let e = cache.compute(&s("other"), |_| Compute::Set(Fragile(3))).await;
            assert!(is_server_error(&e, b"WRONGTYPE"), "{e:?}");
            assert_eq!(c.raw(other.as_bytes(), &[b"TYPE", other.as_bytes()]), Value::Simple("zset".into()));

            // A real conflict (the key changes between the read and the write) is retried: the
            // function runs again and its value is the one returned.
            let fk = format!("{name}:k");
            let runs = AtomicUsize::new(0);
            let v = cache
                .compute(&k, |cur| {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        c.raw(fk.as_bytes(), &[b"SET", fk.as_bytes(), b"100"]);
                    }
                    Compute::Set(Fragile(cur.expect("present").0 + 1))
                })
                .await
                .expect("compute");
            assert_eq!((v, runs.load(Ordering::SeqCst)), (Some(Fragile(101)), 2));
            // Always changed: `ComputeConflict` after exactly max_compute_retries attempts.
            let runs = AtomicUsize::new(0);
            let e = cache
                .compute(&k, |_| {
                    let n = runs.fetch_add(1, Ordering::SeqCst);
                    c.raw(fk.as_bytes(), &[b"SET", fk.as_bytes(), format!("{}", 200 + n).as_bytes()]);
                    Compute::Set(Fragile(0))
                })
                .await;
            assert_eq!(e, Err(CacheError::ComputeConflict { attempts: 3 }));
            assert_eq!(runs.load(Ordering::SeqCst), 3);
            p.close().await;
        }
    });
}
