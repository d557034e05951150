//! Tracing spans on a real cluster (3 masters + 1 replica each), on every runtime: a cache
//! `get` makes one `slotcache.cache` span with the OpenTelemetry database attributes and the
//! namespace, and its requests to the cluster are `slotcache.request` spans, children of it,
//! naming the slot and the node that answered (the slot's owner).
//!
//! A `tracing_subscriber` layer records every span (its attributes, what was recorded later,
//! its parent) when it closes; it is the process's global subscriber (the driver and the loads
//! run on other tasks and threads), installed once: this file is its own process.

mod cache_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use slotcache_tests::conformance::Rt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use cache_support::{cluster, config, eventually, ns, on_every_runtime, provider_with, s, string_ns};

const LABEL: &str = "observability-tracing";

/// A closed span.
#[derive(Clone, Debug)]
struct SpanRec {
    /// Unique in the process (span ids are reused).
    seq: u64,
    parent: Option<u64>,
    name: &'static str,
    fields: BTreeMap<String, String>,
}

impl SpanRec {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Records every span as it closes.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    closed: Arc<Mutex<Vec<SpanRec>>>,
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|p| p.extensions().get::<SpanRec>().map(|r| r.seq));
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        span.extensions_mut().insert(SpanRec { seq, parent, name: attrs.metadata().name(), fields });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(rec) = span.extensions_mut().get_mut::<SpanRec>() {
            values.record(&mut Fields(&mut rec.fields));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(rec) = span.extensions_mut().remove::<SpanRec>() {
            self.closed.lock().unwrap_or_else(PoisonError::into_inner).push(rec);
        }
    }
}

/// The spans closed so far (the global subscriber is installed by the first call).
fn closed() -> Vec<SpanRec> {
    static CLOSED: OnceLock<Arc<Mutex<Vec<SpanRec>>>> = OnceLock::new();
    let list = CLOSED.get_or_init(|| {
        let recorder = Recorder::default();
        let list = recorder.closed.clone();
        let subscriber = tracing_subscriber::registry().with(recorder);
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this process");
        list
    });
    list.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

#[test]
fn a_cache_get_is_a_cache_span_with_request_spans_naming_the_node() {
    let c = cluster(LABEL);
    let _ = closed();
    on_every_runtime("a_cache_get_is_a_cache_span_with_request_spans_naming_the_node", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider_with(rt, config(&c, "tracing")).await;
            let cache = string_ns(&p, &ns("trace", rt, "t"));
            let ns_label = cache.name().trim_end_matches(':').to_owned();
            cache.set(&s("k"), &s("v"), &[]).await.expect("set");
            let got = cache.get(&s("k"), |_| async { Ok(s("loaded")) }).await.expect("get");
            assert_eq!(got, "v", "{}: a hit", rt.name());
            let r = rt.name();
            let of_get = |spans: &[SpanRec]| -> Vec<SpanRec> {
                spans
                    .iter()
                    .filter(|sp| {
                        sp.name == "slotcache.cache"
                            && sp.field("slotcache.namespace") == Some(ns_label.as_str())
                            && sp.field("db.operation.name") == Some("get")
                    })
                    .cloned()
                    .collect()
            };
            // The spans close when their last handle is dropped (the driver drops its own before
            // it answers): wait for the cache span rather than assume the order.
            eventually(rt, Duration::from_secs(5), "the get's span to close", || {
                let n = of_get(&closed()).len();
                async move { n > 0 }
            })
            .await;
            let spans = closed();
            let gets = of_get(&spans);
            assert_eq!(gets.len(), 1, "{r}: one span per get: {gets:#?}");
            let get = &gets[0];
            assert_eq!(get.field("db.system"), Some("valkey"), "{r}: {get:#?}");
            assert_eq!(get.field("db.system.name"), Some("valkey"), "{r}");
            assert_eq!(get.field("slotcache.outcome"), Some("ok"), "{r}: {get:#?}");
            assert_eq!(get.field("error.type"), None, "{r}");

            let requests: Vec<&SpanRec> = spans
                .iter()
                .filter(|sp| sp.name == "slotcache.request" && sp.parent == Some(get.seq))
                .collect();
            assert!(!requests.is_empty(), "{r}: the get's requests are its children: {spans:#?}");
            for req in &requests {
                assert_eq!(req.field("db.system"), Some("valkey"), "{r}: {req:#?}");
                assert!(req.field("db.operation.name").is_some_and(|n| !n.is_empty()), "{r}: {req:#?}");
                assert_eq!(req.field("slotcache.outcome"), Some("ok"), "{r}: {req:#?}");
                let slot: u16 =
                    req.field("slotcache.slot").and_then(|v| v.parse().ok()).expect("the key's slot");
                let owner = c.slot_owner(slot).expect("CLUSTER NODES").expect("an owner");
                let addr = c.node(owner).addr();
                assert_eq!(req.field("server.address"), Some(addr.host()), "{r}: {req:#?}");
                assert_eq!(req.field("server.port"), Some(addr.port().to_string().as_str()), "{r}: {req:#?}");
            }
            // The set before it is a span of its own, not a parent of the get's requests.
            let sets = spans
                .iter()
                .filter(|sp| {
                    sp.name == "slotcache.cache"
                        && sp.field("slotcache.namespace") == Some(ns_label.as_str())
                        && sp.field("db.operation.name") == Some("set")
                })
                .count();
            assert_eq!(sets, 1, "{r}");
            p.close().await;
        }
    });
}
