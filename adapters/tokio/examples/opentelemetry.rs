//! slotcache's metrics and spans exported through OpenTelemetry, against a cluster given by URL.
//!
//! ```text
//! cargo run -p slotcache-tokio --example opentelemetry -- redis://127.0.0.1:7000
//! ```
//!
//! slotcache needs no OpenTelemetry feature of its own: its metrics go through the `metrics`
//! facade (feature `metrics`) and its spans through `tracing`, and both have bridges to an
//! OpenTelemetry SDK. This example installs them **before** connecting:
//! - metrics: `metrics-exporter-otel`'s recorder over an SDK `Meter`;
//! - spans: `tracing-opentelemetry`'s layer over an SDK tracer, with a filter that keeps
//!   slotcache's DEBUG spans (`slotcache.cache`, `slotcache.load`, `slotcache.request`, which the
//!   bridge names by their `otel.name`: the cache operation, or the command).
//!
//! The SDK here exports to memory so that the example can print what a collector would
//! receive. In a service, give the same providers an OTLP exporter (`opentelemetry-otlp`) and
//! a periodic reader instead; nothing on slotcache's side changes.

use std::error::Error;

use metrics_exporter_otel::OpenTelemetryRecorder;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use slotcache_tokio::{NamespaceOptions, ProviderConfig};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// What the OpenTelemetry SDK received: one line per metric data point, one per span.
#[derive(Debug, Default)]
pub(crate) struct Exported {
    /// `name{attributes} value` of every counter point and `name{attributes} count=N` of
    /// every histogram point, sorted.
    pub(crate) metrics: Vec<String>,
    /// `name attribute=value …` of every span (the attributes slotcache sets), in end order.
    pub(crate) spans: Vec<String>,
}

/// The SDK's pipelines, exporting to memory.
pub(crate) struct Pipelines {
    meters: SdkMeterProvider,
    metric_exporter: InMemoryMetricExporter,
    tracers: SdkTracerProvider,
    span_exporter: InMemorySpanExporter,
}

impl Pipelines {
    /// Builds both pipelines and installs them as the process's `metrics` recorder and
    /// `tracing` subscriber (once per process: a second call fails).
    pub(crate) fn install() -> Result<Self, Box<dyn Error>> {
        let metric_exporter = InMemoryMetricExporter::default();
        let meters = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metric_exporter.clone()).build())
            .build();
        metrics::set_global_recorder(OpenTelemetryRecorder::new(meters.meter("slotcache")))?;

        let span_exporter = InMemorySpanExporter::default();
        let tracers = SdkTracerProvider::builder().with_simple_exporter(span_exporter.clone()).build();
        let layer = tracing_opentelemetry::layer().with_tracer(tracers.tracer("slotcache"));
        let keep = tracing_subscriber::filter::Targets::new().with_target("slotcache", tracing::Level::DEBUG);
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(layer.with_filter(keep)),
        )?;
        Ok(Self { meters, metric_exporter, tracers, span_exporter })
    }

    /// Flushes both pipelines and returns what they exported.
    pub(crate) fn exported(&self) -> Result<Exported, Box<dyn Error>> {
        self.meters.force_flush()?;
        self.tracers.force_flush()?;
        let mut out = Exported::default();
        for resource in self.metric_exporter.get_finished_metrics()? {
            for scope in resource.scope_metrics() {
                for metric in scope.metrics() {
                    metric_lines(metric.name(), metric.data(), &mut out.metrics);
                }
            }
        }
        out.metrics.sort();
        out.metrics.dedup();
        for span in self.span_exporter.get_finished_spans()? {
            let mut line = span.name.to_string();
            for kv in &span.attributes {
                line.push_str(&format!(" {}={}", kv.key, kv.value));
            }
            out.spans.push(line);
        }
        Ok(out)
    }
}

/// `name{k=v,…}` of a data point's attributes.
fn series<'a>(name: &str, attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> String {
    let labels: Vec<String> = attributes.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
    format!("{name}{{{}}}", labels.join(","))
}

fn metric_lines(name: &str, data: &AggregatedMetrics, out: &mut Vec<String>) {
    match data {
        AggregatedMetrics::U64(MetricData::Sum(sum)) => {
            for p in sum.data_points() {
                out.push(format!("{} {}", series(name, p.attributes()), p.value()));
            }
        }
        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
            for p in h.data_points() {
                out.push(format!("{} count={}", series(name, p.attributes()), p.count()));
            }
        }
        AggregatedMetrics::F64(MetricData::Gauge(g)) => {
            for p in g.data_points() {
                out.push(format!("{} gauge", series(name, p.attributes())));
            }
        }
        _ => out.push(format!("{name} (other kind)")),
    }
}

/// A few cache operations: two tagged sets, a hit, a miss, a load, a tag invalidation.
pub(crate) async fn operate(config: ProviderConfig) -> Result<u64, Box<dyn Error>> {
    let provider = slotcache_tokio::provider(config).await?;
    let users = provider.create_namespace::<String, String>("otel-users", NamespaceOptions::default())?;
    users.invalidate_all().await?;
    users.set(&"alice".into(), &"Alice".into(), &["team:red"]).await?;
    users.set(&"bob".into(), &"Bob".into(), &["team:red"]).await?;
    let _hit = users.get_if_present(&"alice".into()).await?;
    let _miss = users.get_if_present(&"nobody".into()).await?;
    let _loaded = users.get(&"carol".into(), |k| async move { Ok(format!("loaded {k}")) }).await?;
    let removed = users.invalidate_by_tags(&["team:red"]).await?;
    provider.close().await;
    Ok(removed)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "redis://127.0.0.1:7000".to_owned());
    let pipelines = Pipelines::install()?;
    let removed = operate(ProviderConfig::from_url(&url)?).await?;
    let exported = pipelines.exported()?;
    println!("# invalidate_by_tags removed {removed} entries\n\n# metrics");
    for line in exported.metrics.iter().filter(|l| l.starts_with("slotcache_cache")) {
        println!("{line}");
    }
    println!("\n# spans ({} in all; those of the namespace's operations and loads)", exported.spans.len());
    for line in exported.spans.iter().filter(|l| l.contains("slotcache.namespace=")) {
        println!("{line}");
    }
    Ok(())
}
