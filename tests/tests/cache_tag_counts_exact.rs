//! No tag rot. Counts are exact (expired, invalidated, rewritten-without-the-tag and
//! already-deleted entries are not counted); an invalidated entry leaves its other tags (by
//! `invalidate` and by `invalidate_by_tags`); expired members are pruned; a tag's key expires with
//! its last member; setting a key again replaces its tags; `invalidate_all` removes the tag keys
//! too.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.7.

mod cache_support;

use std::time::Duration;

use bytes::Bytes;
use slotcache_rt::{Ttl, Value};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, members, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-tag-counts-exact";

on_both_providers!(
    tag_counts_stay_exact_and_tag_keys_leave_nothing_behind_on,
    LABEL,
    tag_counts_stay_exact_and_tag_keys_leave_nothing_behind,
    tag_counts_stay_exact_and_tag_keys_leave_nothing_behind_in_memory
);

fn tag_counts_stay_exact_and_tag_keys_leave_nothing_behind_on(c: impl Backend) {
    on_every_runtime("tag_counts_stay_exact_and_tag_keys_leave_nothing_behind", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "tag-rot").await;
            let name = ns("rot", rt, "a");
            let cache = string_ns(&p, &name);
            let tag_key = |t: &str| format!("tag:{{{name}:{t}}}");
            let fk = |k: &str| Bytes::from(format!("{name}:{k}"));
            let short = Ttl::After(Duration::from_millis(50));

            // Exact counts: of five entries written with `t`, two still carry it.
            cache.set_with_ttl(&s("expired"), &s("v"), short, &["t"]).await.expect("set");
            for k in ["invalidated", "untagged", "retagged", "live"] {
                cache.set(&s(k), &s("v"), &["t"]).await.expect("set");
            }
            cache.invalidate(&s("invalidated")).await.expect("invalidate");
            cache.set(&s("untagged"), &s("v2"), &[]).await.expect("rewritten without the tag");
            cache.set(&s("retagged"), &s("v2"), &["t"]).await.expect("rewritten with the tag");
            rt.sleep(Duration::from_millis(100)).await;
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("by tag"), 2, "retagged + live");
            assert_eq!(cache.get_if_present(&s("untagged")).await.expect("get"), Some(s("v2")));
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("again"), 0, "no phantom");

            // `invalidate` removes the key from all its tags.
            cache.set(&s("k1"), &s("v"), &["x", "y"]).await.expect("set");
            cache.invalidate(&s("k1")).await.expect("invalidate");
            assert!(!members(&c, &tag_key("x")).contains(&fk("k1")));
            assert!(!members(&c, &tag_key("y")).contains(&fk("k1")));

            // `invalidate_by_tags` removes what it deleted from the entry's other tags.
            cache.set(&s("k2"), &s("v"), &["x", "y", "z"]).await.expect("set");
            cache.set(&s("k3"), &s("v"), &["y"]).await.expect("set");
            assert!(members(&c, &tag_key("y")).contains(&fk("k2")));
            assert_eq!(cache.invalidate_by_tags(&["x"]).await.expect("x"), 1);
            assert_eq!(members(&c, &tag_key("y")), vec![fk("k3")], "k2 left y");
            assert!(members(&c, &tag_key("z")).is_empty(), "k2 left z");
            assert_eq!(cache.invalidate_by_tags(&["y", "z"]).await.expect("y"), 1, "k3 only");

            // Expired members are pruned by the next write to the tag; the tag key lives as
            // long as its longest-lived member, and then goes.
            cache.set_with_ttl(&s("brief"), &s("v"), short, &["p"]).await.expect("set");
            rt.sleep(Duration::from_millis(100)).await;
            cache
                .set_with_ttl(&s("other"), &s("v"), Ttl::After(Duration::from_millis(300)), &["p"])
                .await
                .expect("set");
            assert_eq!(members(&c, &tag_key("p")), vec![fk("other")], "the expired member was pruned");
            let tk = tag_key("p");
            let pttl = c.raw(tk.as_bytes(), &[b"PTTL", tk.as_bytes()]).as_int().expect("pttl");
            assert!(pttl > 0 && pttl <= 300, "tag key TTL {pttl}");
            rt.sleep(Duration::from_millis(400)).await;
            assert_eq!(c.raw(tk.as_bytes(), &[b"EXISTS", tk.as_bytes()]), Value::Int(0), "metadata expired");

            // Setting a key again replaces its tags.
            cache.set(&s("k4"), &s("v"), &["old"]).await.expect("set");
            cache.set(&s("k4"), &s("v2"), &["new"]).await.expect("set");
            assert_eq!(cache.invalidate_by_tags(&["old"]).await.expect("old"), 0);
            assert_eq!(cache.get_if_present(&s("k4")).await.expect("get"), Some(s("v2")));
            assert_eq!(cache.invalidate_by_tags(&["new"]).await.expect("new"), 1);

            // invalidate_all leaves no tag key (nor any `keytags:` key) behind.
            cache.set(&s("k5"), &s("v"), &["q", "r"]).await.expect("set");
            cache.invalidate_all().await.expect("invalidate_all");
            assert!(c.scan_keys(&format!("tag:{{{name}:*")).is_empty());
            assert!(c.scan_keys(&format!("keytags:{name}:*")).is_empty());
            assert!(c.scan_keys(&format!("{name}:*")).is_empty());
            p.close().await;
        }
    });
}
