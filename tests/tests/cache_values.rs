//! Values and keys on a real cluster and on the in-memory provider (`..._in_memory`), every
//! runtime: the reference's integration cases (spec §14.3: empty, one-byte, 2 MiB, unicode and
//! NUL-containing values; keys with spaces, unicode and punctuation; struct round trips), the
//! three codecs (JSON with the reference's bytes, Binary, Raw), the zstd and XChaCha20-Poly1305
//! transformer chains, an encrypted value read without the key or with another key (a typed
//! error, never garbage), and the value size limit (a typed `TooLarge` before anything is sent,
//! and on reads of what another writer stored).

mod cache_support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use slotcache_core::cache::codec::{Binary, Codec, Json, Raw};
use slotcache_core::cache::transform::{Transform, XChaCha20Poly1305, Zstd};
use slotcache_rt::{Cache, CacheError, NamespaceOptions, Value};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, Rng, ns, on_both_providers, on_every_runtime, requests, s};

const LABEL: &str = "cache-values";

on_both_providers!(value_edge_cases_json_on, LABEL, value_edge_cases_json, value_edge_cases_json_in_memory);
on_both_providers!(
    value_edge_cases_raw_bytes_on,
    LABEL,
    value_edge_cases_raw_bytes,
    value_edge_cases_raw_bytes_in_memory
);
on_both_providers!(special_keys_on, LABEL, special_keys, special_keys_in_memory);
on_both_providers!(structs_and_codecs_on, LABEL, structs_and_codecs, structs_and_codecs_in_memory);
on_both_providers!(transform_chains_on, LABEL, transform_chains, transform_chains_in_memory);
on_both_providers!(value_size_limit_on, LABEL, value_size_limit, value_size_limit_in_memory);
const MIB: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    email: Option<String>,
    score: f64,
    roles: Vec<String>,
    attrs: BTreeMap<String, i64>,
    nested: Option<Box<Self>>,
}

fn profile(i: u64) -> Profile {
    Profile {
        id: i,
        name: format!("Zoë 李 Дмитрий 🎉 #{i}"),
        email: i.is_multiple_of(2).then(|| format!("u{i}@example.com")),
        score: i as f64 * 1.5 + 0.25,
        roles: vec!["admin".into(), "<eu> & \"quoted\"".into()],
        attrs: BTreeMap::from([("a".into(), -1), ("z".into(), i64::MAX)]),
        nested: Some(Box::new(Profile {
            id: i + 1,
            name: "inner\u{2028}line".into(),
            email: None,
            score: 1e21,
            roles: vec![],
            attrs: BTreeMap::new(),
            nested: None,
        })),
    }
}

fn opts<V>(codec: Arc<dyn Codec<V>>, transforms: Vec<Arc<dyn Transform>>) -> NamespaceOptions<String, V>
where
    V: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    NamespaceOptions::<String, V> { codec, transforms, ..Default::default() }
}

fn raw_opts(transforms: Vec<Arc<dyn Transform>>) -> NamespaceOptions<String, Vec<u8>> {
    opts::<Vec<u8>>(Arc::new(Raw), transforms)
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(n);
    out
}

fn stored(c: &impl Backend, key: &str) -> Bytes {
    match c.raw(key.as_bytes(), &[b"GET", key.as_bytes()]) {
        Value::Bulk(b) => b,
        other => panic!("{key}: {other:?}"),
    }
}

/// Value edge cases with the default JSON codec: empty, one byte, 2 MiB, unicode (emoji, CJK,
/// Cyrillic, mixed), NUL bytes, and controls, each read back exactly; the JSON bytes are the
/// reference's.
fn value_edge_cases_json_on(c: impl Backend) {
    on_every_runtime("value_edge_cases_json", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "values-json").await;
            let name = ns("json", rt, "v");
            let cache: Cache<String, String> =
                p.create_namespace(&name, NamespaceOptions::default()).expect("namespace");
            let big: String = "0123456789abcdef".repeat(2 * MIB / 16);
            let cases = [
                ("empty", s("")),
                ("one", s("x")),
                ("big", big),
                ("emoji", s("🎉🚀👍🏽")),
                ("cjk", s("日本語の文字列 中文")),
                ("cyrillic", s("Привет, мир")),
                ("mixed", s("a é 日 🎉 \u{2028} <>&")),
                ("nul", s("before\0after\0")),
                ("controls", s("\t\n\r\u{1}\u{7f}\"\\")),
            ];
            for (k, v) in &cases {
                cache.set(&s(k), v, &[]).await.expect("set");
            }
            for (k, v) in &cases {
                assert_eq!(cache.get_if_present(&s(k)).await.expect("get").as_ref(), Some(v), "{k}");
            }
            let got =
                cache.bulk_get(&cases.iter().map(|(k, _)| s(k)).collect::<Vec<_>>()).await.expect("bulk");
            assert_eq!(got.len(), cases.len());
            // The reference's exact bytes: quoted, no HTML escaping, NUL as \u0000.
            assert_eq!(stored(&c, &format!("{name}:one")).as_ref(), b"\"x\"");
            assert_eq!(stored(&c, &format!("{name}:empty")).as_ref(), b"\"\"");
            assert_eq!(stored(&c, &format!("{name}:nul")).as_ref(), b"\"before\\u0000after\\u0000\"");
            assert_eq!(stored(&c, &format!("{name}:mixed")).as_ref(), "\"a é 日 🎉 \\u2028 <>&\"".as_bytes());
            p.close().await;
        }
    });
}

/// Raw bytes: empty, one NUL byte, values starting with NUL (which must be enveloped to stay
/// unambiguous), 2 MiB of random bytes; untagged values not starting with NUL are stored as is.
fn value_edge_cases_raw_bytes_on(c: impl Backend) {
    on_every_runtime("value_edge_cases_raw_bytes", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut rng = Rng::new("raw bytes");
            let p = c.provider(rt, "values-raw").await;
            let name = ns("raw", rt, "v");
            let cache = p.create_namespace(&name, raw_opts(vec![])).expect("namespace");
            let cases: Vec<(&str, Vec<u8>)> = vec![
                ("empty", vec![]),
                ("nul", vec![0]),
                ("nuls", vec![0, 0, 0, b'S', b'C', 1]),
                ("magic", b"\0SC\x01\0\0\0\0garbage-looking".to_vec()),
                ("text", b"plain \0 inside".to_vec()),
                ("big", random_bytes(&mut rng, 2 * MIB)),
            ];
            for (k, v) in &cases {
                cache.set(&s(k), v, &[]).await.expect("set");
            }
            for (k, v) in &cases {
                assert_eq!(cache.get_if_present(&s(k)).await.expect("get").as_ref(), Some(v), "{k}");
            }
            assert_eq!(stored(&c, &format!("{name}:text")).as_ref(), b"plain \0 inside", "stored as is");
            assert_eq!(stored(&c, &format!("{name}:empty")).as_ref(), b"");
            assert!(stored(&c, &format!("{name}:nul")).starts_with(b"\0SC"), "a leading NUL is enveloped");
            // Tagged, through bulk operations too.
            let items: Vec<(String, Vec<u8>)> =
                cases.iter().map(|(k, v)| (format!("t-{k}"), v.clone())).collect();
            cache.bulk_set(&items, &["bin"]).await.expect("bulk set");
            let got = cache
                .bulk_get(&items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
                .await
                .expect("bulk");
            for (k, v) in &items {
                assert_eq!(got.get(k), Some(v), "{k}");
            }
            assert_eq!(cache.invalidate_by_tags(&["bin"]).await.expect("by tag"), items.len() as u64);
            p.close().await;
        }
    });
}

/// Keys with spaces, unicode, `a:b:c:d`, `path/to/resource`, `config.setting.value`,
/// `items[0].name`, glob characters, braces (which pick the hash slot) and an empty key: each
/// round-trips through set/get, bulk operations and iteration (which decodes keys back).
fn special_keys_on(c: impl Backend) {
    on_every_runtime("special_keys", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "keys").await;
            let cache: Cache<String, String> =
                p.create_namespace(&ns("keys", rt, "k"), NamespaceOptions::default()).expect("namespace");
            let keys = [
                "with spaces here",
                "ключ 鍵 🔑",
                "a:b:c:d",
                "path/to/resource",
                "config.setting.value",
                "items[0].name",
                "glob*?[]\\chars",
                "{user1}:profile",
                "{user1}:settings",
                "",
                "tab\tand\nnewline",
            ];
            for (i, k) in keys.iter().enumerate() {
                cache.set(&s(k), &format!("value {i}"), &["keys"]).await.expect("set");
            }
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(
                    cache.get_if_present(&s(k)).await.expect("get"),
                    Some(format!("value {i}")),
                    "{k:?}"
                );
            }
            let all: Vec<String> = keys.iter().map(|k| s(k)).collect();
            assert_eq!(cache.bulk_get(&all).await.expect("bulk").len(), keys.len());
            let listed: HashSet<String> = cache.keys().map(|k| k.expect("key")).collect().await;
            assert_eq!(listed, all.iter().cloned().collect::<HashSet<_>>());
            assert_eq!(cache.invalidate_by_tags(&["keys"]).await.expect("by tag"), keys.len() as u64);
            p.close().await;
        }
    });
}

/// Struct round trips with each codec (JSON, Binary), through set/get, bulk and compute; a
/// value written with one codec and read with another is a typed codec error, never garbage.
fn structs_and_codecs_on(c: impl Backend) {
    on_every_runtime("structs_and_codecs", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "codecs").await;
            let json_name = ns("codec", rt, "json");
            let bin_name = ns("codec", rt, "bin");
            let json: Cache<String, Profile> =
                p.create_namespace(&json_name, opts(Arc::new(Json), vec![])).expect("ns");
            let bin: Cache<String, Profile> =
                p.create_namespace(&bin_name, opts(Arc::new(Binary), vec![])).expect("ns");
            for cache in [&json, &bin] {
                for i in 0..5 {
                    cache.set(&format!("p{i}"), &profile(i), &[]).await.expect("set");
                }
                for i in 0..5 {
                    assert_eq!(cache.get_if_present(&format!("p{i}")).await.expect("get"), Some(profile(i)));
                }
                let items: Vec<(String, Profile)> = (10..20).map(|i| (format!("p{i}"), profile(i))).collect();
                cache.bulk_set(&items, &["bulk"]).await.expect("bulk set");
                let got = cache
                    .bulk_get(&items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
                    .await
                    .expect("bulk");
                assert_eq!(got.len(), 10);
                assert_eq!(got[&s("p13")], profile(13));
                let v = cache
                    .compute(&s("p0"), |cur| {
                        let mut p = cur.cloned().expect("present");
                        p.score += 1.0;
                        slotcache_rt::Compute::Set(p)
                    })
                    .await
                    .expect("compute");
                assert_eq!(v.expect("set").score, profile(0).score + 1.0);
            }
            // JSON holds the reference's bytes (fields in order, no HTML escaping, Go floats).
            let text = String::from_utf8(stored(&c, &format!("{json_name}:p1")).to_vec()).expect("utf-8");
            assert!(
                text.starts_with(
                    "{\"id\":1,\"name\":\"Zoë 李 Дмитрий 🎉 #1\",\"email\":null,\"score\":1.75,"
                ),
                "{text}"
            );
            assert!(
                text.contains("\"<eu> & \\\"quoted\\\"\"")
                    && text.contains("1e+21")
                    && text.contains("\\u2028"),
                "{text}"
            );
            // Binary is smaller and not JSON.
            let b = stored(&c, &format!("{bin_name}:p1"));
            assert!(b.len() < text.len() && b.first() != Some(&b'{'), "{} bytes", b.len());
            // Read with the wrong codec: a typed error (a second provider, since one provider
            // refuses to open a namespace again with other options).
            let other = c.provider(rt, "codecs-wrong").await;
            let as_json: Cache<String, Profile> =
                other.create_namespace(&bin_name, opts(Arc::new(Json), vec![])).expect("ns");
            assert!(matches!(as_json.get_if_present(&s("p1")).await, Err(CacheError::Codec(_))));
            let as_text: Cache<String, String> =
                other.create_namespace(&json_name, NamespaceOptions::default()).expect("ns");
            assert!(matches!(as_text.get_if_present(&s("p1")).await, Err(CacheError::Codec(_))));
            other.close().await;
            p.close().await;
        }
    });
}

/// Transformer chains: zstd, XChaCha20-Poly1305, and both, on empty, small, NUL-containing and
/// 256 KiB values (tagged and not). Compressed values are smaller; encrypted ones never hold the
/// plaintext; a reader without the key, or with another key, gets a typed transformer error.
fn transform_chains_on(c: impl Backend) {
    on_every_runtime("transform_chains", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut rng = Rng::new("transform chains");
            let key = [7u8; 32];
            let zstd: Arc<dyn Transform> = Arc::new(Zstd::default());
            let enc: Arc<dyn Transform> = Arc::new(XChaCha20Poly1305::new(&key));
            let p = c.provider(rt, "chains").await;
            let reader = c.provider(rt, "chains-reader").await;
            // 256 KiB: large enough to span many frames and packets, small enough that the
            // unoptimised test build encrypts it quickly (2 MiB values: see the edge cases).
            let compressible = b"the same sentence again and again. ".repeat(256 * 1024 / 35);
            let secret = b"top secret plaintext \0 with a NUL".to_vec();
            let noise = random_bytes(&mut rng, 256 * 1024);
            let chains: Vec<(&str, Vec<Arc<dyn Transform>>)> = vec![
                ("zstd", vec![zstd.clone()]),
                ("enc", vec![enc.clone()]),
                ("zstd-enc", vec![zstd.clone(), enc.clone()]),
            ];
            for (label, chain) in chains {
                let name = ns("chain", rt, label);
                let cache = p.create_namespace(&name, raw_opts(chain.clone())).expect("namespace");
                let empty = Vec::new();
                let one = vec![0u8];
                let cases: Vec<(&str, &Vec<u8>)> = vec![
                    ("empty", &empty),
                    ("one", &one),
                    ("secret", &secret),
                    ("big", &compressible),
                    ("noise", &noise),
                ];
                for (k, v) in &cases {
                    cache.set(&s(k), v, &[]).await.expect("set");
                    cache.set(&format!("tagged-{k}"), v, &["t"]).await.expect("tagged set");
                }
                for (k, v) in &cases {
                    assert_eq!(
                        cache.get_if_present(&s(k)).await.expect("get").as_ref(),
                        Some(*v),
                        "{label} {k}"
                    );
                    assert_eq!(
                        cache.get_if_present(&format!("tagged-{k}")).await.expect("get").as_ref(),
                        Some(*v),
                        "{label} {k}"
                    );
                }
                let big = stored(&c, &format!("{name}:big"));
                assert!(big.starts_with(b"\0SC"), "{label}: the chain is recorded in the envelope");
                if label.starts_with("zstd") {
                    assert!(big.len() < compressible.len() / 10, "{label}: {} bytes", big.len());
                } else {
                    assert!(big.len() > compressible.len(), "{label}: encryption alone does not compress");
                }
                if label.contains("enc") {
                    let sec = stored(&c, &format!("{name}:secret"));
                    assert!(!sec.windows(10).any(|w| w == &secret[..10]), "{label}: plaintext visible");
                    // Without the key: a typed error naming the transformer.
                    let no_key = reader.create_namespace(&name, raw_opts(vec![zstd.clone()])).expect("ns");
                    let e = no_key.get_if_present(&s("secret")).await;
                    assert!(
                        matches!(e, Err(CacheError::Transform { name: "xchacha20poly1305", .. })),
                        "{label}: {e:?}"
                    );
                    let e = no_key.bulk_get(&[s("secret")]).await;
                    assert!(matches!(e, Err(CacheError::Transform { .. })), "{label}: {e:?}");
                    // With another key: authentication fails, a typed error.
                    let other_key: Arc<dyn Transform> = Arc::new(XChaCha20Poly1305::new(&[8u8; 32]));
                    let wrong = c.provider(rt, "chains-wrong-key").await;
                    let chain: Vec<Arc<dyn Transform>> = chain
                        .iter()
                        .map(|t| if t.name() == "zstd" { t.clone() } else { other_key.clone() })
                        .collect();
                    let wrong_key = wrong.create_namespace(&name, raw_opts(chain)).expect("ns");
                    let e = wrong_key.get_if_present(&s("tagged-secret")).await;
                    assert!(
                        matches!(&e, Err(CacheError::Transform { reason, .. }) if reason.contains("authentication")),
                        "{label}: {e:?}"
                    );
                    wrong.close().await;
                }
            }
            reader.close().await;
            p.close().await;
        }
    });
}

/// `max_value_size`: a value over the limit is `TooLarge` before anything is sent (set, a
/// tagged set whose envelope alone crosses the limit, bulk_set, compute), nothing is stored;
/// a value stored by a writer with a larger limit is `TooLarge` for a reader with a smaller one.
fn value_size_limit_on(c: impl Backend) {
    on_every_runtime("value_size_limit", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = c.config("limit");
            cfg.max_value_size = MIB;
            let p = c.provider_with(rt, cfg).await;
            let name = ns("limit", rt, "v");
            let cache = p.create_namespace(&name, raw_opts(vec![])).expect("namespace");
            let too_big = vec![1u8; MIB + 1];
            let just_under = vec![2u8; MIB - 10];

            let before = requests(&p).await;
            let e = cache.set(&s("big"), &too_big, &[]).await;
            assert!(matches!(e, Err(CacheError::TooLarge { size, limit: MIB }) if size == MIB + 1), "{e:?}");
            let e = cache.set(&s("big"), &too_big, &["t"]).await;
            assert!(matches!(e, Err(CacheError::TooLarge { .. })), "{e:?}");
            // The payload fits, the tag header pushes the stored bytes over: still refused
            // before the tag step is sent.
            let e = cache.set(&s("edge"), &just_under, &["a-tag-long-enough-to-cross"]).await;
            assert!(matches!(e, Err(CacheError::TooLarge { .. })), "{e:?}");
            let e = cache.bulk_set(&[(s("ok"), vec![1]), (s("big"), too_big.clone())], &["t"]).await;
            assert!(matches!(e, Err(CacheError::TooLarge { .. })), "{e:?}");
            assert_eq!(requests(&p).await, before, "nothing was sent");

            let e = cache.compute(&s("big"), |_| slotcache_rt::Compute::Set(too_big.clone())).await;
            assert!(matches!(e, Err(CacheError::TooLarge { .. })), "{e:?}");
            assert_eq!(cache.get_if_present(&s("ok")).await.expect("get"), None, "no part of the bulk set");
            assert_eq!(cache.get_if_present(&s("big")).await.expect("get"), None);
            assert_eq!(cache.get_if_present(&s("edge")).await.expect("get"), None);
            cache.set(&s("edge"), &just_under, &[]).await.expect("under the limit untagged");

            // Read: a larger writer's value is refused by this reader, typed.
            let big_writer = c.provider(rt, "limit-writer").await;
            let w = big_writer.create_namespace(&name, raw_opts(vec![])).expect("namespace");
            w.set(&s("written-big"), &too_big, &[]).await.expect("set under the default limit");
            let e = cache.get_if_present(&s("written-big")).await;
            assert!(matches!(e, Err(CacheError::TooLarge { .. })), "{e:?}");
            let e = cache.bulk_get(&[s("written-big")]).await;
            assert!(matches!(e, Err(CacheError::TooLarge { .. })), "{e:?}");
            big_writer.close().await;
            p.close().await;
        }
    });
}
