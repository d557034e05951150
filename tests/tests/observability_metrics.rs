//! Metrics (feature `metrics`) on a real cluster (3 masters + 1 replica each), on every runtime,
//! read back through `metrics-util`'s `DebuggingRecorder` (installed once: this file is its
//! own process, and a recorder is global):
//!
//! - per namespace and operation: a hit and a miss of `get_if_present` and of `get`, a load
//!   and a load error, each under its namespace and operation, agreeing with `Cache::stats`,
//!   and one duration per operation call under its outcome;
//! - per node: requests sent with the low-level client add up to what was sent, node by node;
//! - a `MOVED` after a slot migration counted on the node that answered it (and the retry on
//!   the new owner), the topology refresh it triggers counted, the slot-map age gauge present
//!   and small after it.
//!
//! The recorder's snapshot resets counters and drains histograms, so each snapshot holds what
//! happened since the previous one: the counts below are exact.

mod cache_support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use slotcache_rt::{CacheError, Cmd, key_slot};
use slotcache_tests::conformance::Rt;

use cache_support::{cluster, config, eventually, ns, on_every_runtime, provider_with, roles, s, string_ns};

const LABEL: &str = "observability-metrics";

/// The process's recorder, installed by the first caller.
fn snapshotter() -> &'static Snapshotter {
    static SNAP: OnceLock<Snapshotter> = OnceLock::new();
    SNAP.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        recorder.install().expect("the only recorder of this process");
        snap
    })
}

/// One metric: its name and labels, sorted.
type Key = (String, BTreeMap<String, String>);

/// What happened since the last snapshot: counters, gauges, histogram samples.
#[derive(Debug, Default)]
struct Seen {
    counters: BTreeMap<Key, u64>,
    gauges: BTreeMap<Key, f64>,
    histograms: BTreeMap<Key, Vec<f64>>,
}

impl Seen {
    fn take() -> Self {
        let mut seen = Self::default();
        for (ck, _, _, value) in snapshotter().snapshot().into_vec() {
            let (kind, key) = ck.into_parts();
            let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            let k = (key.name().to_owned(), labels);
            match (kind, value) {
                (MetricKind::Counter, DebugValue::Counter(n)) => *seen.counters.entry(k).or_default() += n,
                (MetricKind::Gauge, DebugValue::Gauge(g)) => drop(seen.gauges.insert(k, g.into_inner())),
                (MetricKind::Histogram, DebugValue::Histogram(h)) => {
                    seen.histograms.entry(k).or_default().extend(h.into_iter().map(|f| f.into_inner()));
                }
                _ => {}
            }
        }
        seen
    }

    /// The counter `name` with exactly these labels (0 when never incremented).
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters.get(&key(name, labels)).copied().unwrap_or(0)
    }

    /// The sum of counter `name` over every label set.
    fn counter_sum(&self, name: &str) -> u64 {
        self.counters.iter().filter(|((n, _), _)| n == name).map(|(_, v)| v).sum()
    }

    /// Samples of histogram `name` with exactly these labels.
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.histograms.get(&key(name, labels)).map_or(0, Vec::len)
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    (name.to_owned(), labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

#[test]
fn metrics_count_cache_operations_nodes_and_the_topology() {
    let c = cluster(LABEL);
    let _ = snapshotter();
    let (masters, _) = roles(&c);
    on_every_runtime("metrics_count_cache_operations_nodes_and_the_topology", |rt: Rt| {
        let (c, masters) = (c.clone(), masters.clone());
        async move {
            let mut cfg = config(&c, "metrics");
            // No periodic refresh: the slot migration below is met by a MOVED, not a timer.
            cfg.refresh.periodic = None;
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("obs", rt, "m"));
            let ns_label = cache.name().trim_end_matches(':').to_owned();
            let labels = |op: &'static str| [("namespace", ns_label.clone()), ("operation", op.to_owned())];
            drop(Seen::take());

            // Per namespace and operation.
            assert_eq!(cache.get_if_present(&s("absent")).await.expect("read"), None);
            cache.set(&s("k1"), &s("v1"), &[]).await.expect("set");
            assert_eq!(cache.get_if_present(&s("k1")).await.expect("read"), Some(s("v1")));
            let loaded = cache.get(&s("k2"), |k| async move { Ok(format!("loaded-{k}")) }).await;
            assert_eq!(loaded.expect("loaded"), "loaded-k2");
            let hit = cache.get(&s("k2"), |_| async { Err(CacheError::NotFound) }).await;
            assert_eq!(hit.expect("a hit, the loader not called"), "loaded-k2");
            let failed = cache.get(&s("k3"), |_| async { Err(CacheError::NotFound) }).await;
            assert!(matches!(failed, Err(CacheError::NotFound)), "{}: {failed:?}", rt.name());
            let seen = Seen::take();
            let with = |op: &'static str, extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
                let mut l: Vec<(String, String)> =
                    labels(op).iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                l.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
                l
            };
            let get = |name: &str, l: Vec<(String, String)>| {
                let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                (seen.counter(name, &l), seen.samples(name, &l))
            };
            let r = rt.name();
            assert_eq!(get("slotcache_cache_hits_total", with("get_if_present", &[])).0, 1, "{r}: {seen:#?}");
            assert_eq!(get("slotcache_cache_misses_total", with("get_if_present", &[])).0, 1, "{r}");
            assert_eq!(get("slotcache_cache_hits_total", with("get", &[])).0, 1, "{r}");
            assert_eq!(get("slotcache_cache_misses_total", with("get", &[])).0, 2, "{r}");
            assert_eq!(get("slotcache_cache_loads_total", with("get", &[("outcome", "ok")])).0, 1, "{r}");
            assert_eq!(get("slotcache_cache_loads_total", with("get", &[("outcome", "error")])).0, 1, "{r}");
            assert_eq!(get("slotcache_cache_load_duration_seconds", with("get", &[("outcome", "ok")])).1, 1);
            let d = "slotcache_cache_operation_duration_seconds";
            assert_eq!(get(d, with("get_if_present", &[("outcome", "ok")])).1, 2, "{r}");
            assert_eq!(get(d, with("set", &[("outcome", "ok")])).1, 1, "{r}");
            assert_eq!(get(d, with("get", &[("outcome", "ok")])).1, 2, "{r}");
            assert_eq!(get(d, with("get", &[("outcome", "error")])).1, 1, "{r}");
            // The namespace's own counters say the same.
            let st = cache.stats();
            assert_eq!((st.hits, st.misses, st.loads, st.load_failures), (2, 3, 1, 1), "{r}");
            assert_eq!(seen.counter_sum("slotcache_cache_hits_total"), st.hits, "{r}");
            assert_eq!(seen.counter_sum("slotcache_cache_misses_total"), st.misses, "{r}");

            // Per node: commands sent with the low-level client, i + 1 to master number i.
            let client = p.client();
            let mut sent = 0;
            for (i, &m) in masters.iter().enumerate() {
                let k = c.key_owned_by(m, &format!("obs-node-{}-{i}", rt.name())).expect("a key");
                for _ in 0..=i {
                    client.send(Cmd::new("SET").arg(k.as_str()).arg("v")).await.expect("SET");
                    sent += 1;
                }
            }
            let seen = Seen::take();
            for (i, &m) in masters.iter().enumerate() {
                let node = c.node(m).addr().to_string();
                let got = seen.counter("slotcache_node_requests_total", &[("node", &node)]);
                assert_eq!(got, i as u64 + 1, "{r}: requests to {node}: {:#?}", seen.counters);
                assert!(
                    seen.gauges.contains_key(&key("slotcache_node_pending_requests", &[("node", &node)])),
                    "{r}: no pending gauge for {node}"
                );
            }
            assert_eq!(seen.counter_sum("slotcache_node_requests_total"), sent, "{r}: {:#?}", seen.counters);
            assert_eq!(seen.counter_sum("slotcache_node_errors_total"), 0, "{r}");

            // A MOVED after the key's slot moved, then the refresh it asks for.
            let k = c.key_owned_by(masters[0], &format!("obs-moved-{}", rt.name())).expect("a key");
            client.send(Cmd::new("SET").arg(k.as_str()).arg("before")).await.expect("SET");
            let slot = key_slot(k.as_bytes()).get();
            let from = c.slot_owner(slot).expect("owner").expect("an owner");
            let to = masters.iter().copied().find(|&m| m != from).expect("another master");
            c.migrate_slots(from, to, slot, slot).expect("slot migration");
            let quiet = Seen::take().counter("slotcache_topology_refreshes_total", &[("outcome", "ok")]);
            assert_eq!(quiet, 0, "{}: a refresh with nothing to trigger it", rt.name());
            let got = client.send(Cmd::new("GET").arg(k.as_str())).await.expect("GET after the migration");
            assert_eq!(got.as_str(), Some("before"), "{r}: {got:?}");
            let mut seen = Seen::take();
            let (from_addr, to_addr) = (c.node(from).addr().to_string(), c.node(to).addr().to_string());
            assert_eq!(
                seen.counter("slotcache_node_moved_total", &[("node", &from_addr)]),
                1,
                "{r}: {seen:#?}"
            );
            assert_eq!(seen.counter_sum("slotcache_node_moved_total"), 1, "{r}");
            assert_eq!(seen.counter("slotcache_node_requests_total", &[("node", &from_addr)]), 1, "{r}");
            assert_eq!(seen.counter("slotcache_node_requests_total", &[("node", &to_addr)]), 1, "{r}");
            let mut refreshes = seen.counter("slotcache_topology_refreshes_total", &[("outcome", "ok")]);
            eventually(rt, Duration::from_secs(10), "the refresh after the MOVED to be counted", || {
                seen = Seen::take();
                refreshes += seen.counter("slotcache_topology_refreshes_total", &[("outcome", "ok")]);
                let done = refreshes >= 1;
                async move { done }
            })
            .await;
            let age = key("slotcache_slot_map_age_seconds", &[]);
            eventually(rt, Duration::from_secs(5), "the slot-map age gauge", || {
                let g = Seen::take().gauges.get(&age).copied();
                async move { g.is_some_and(|a| (0.0..30.0).contains(&a)) }
            })
            .await;
            // Put the slot back for the next runtime's run.
            c.migrate_slots(to, from, slot, slot).expect("slot migration back");
            p.close().await;
        }
    });
}
