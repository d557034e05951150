//! slotcache's metrics in Prometheus' text format, against a cluster given by URL.
//!
//! ```text
//! cargo run -p slotcache-tokio --example observability -- redis://127.0.0.1:7000
//! ```
//!
//! It installs the Prometheus recorder (no HTTP server: `metrics-exporter-prometheus` with its
//! default features off) **before** connecting, runs a few cache operations (hits, misses, a
//! load, a failing load, a tag invalidation) and prints what a scrape would return. In a
//! service, serve `handle.render()` on your own `/metrics` route, or turn on the exporter's
//! `http-listener` feature and use `PrometheusBuilder::install`.

use std::error::Error;

use metrics_exporter_prometheus::PrometheusBuilder;
use slotcache_tokio::{CacheError, NamespaceOptions, ProviderConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "redis://127.0.0.1:7000".to_owned());
    // First: handles registered before a recorder is installed record nothing.
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let provider = slotcache_tokio::provider(ProviderConfig::from_url(&url)?).await?;
    let users = provider.create_namespace::<String, String>("users", NamespaceOptions::default())?;
    users.invalidate_all().await?; // the same figures on every run
    users.set(&"alice".into(), &"Alice".into(), &["team:red"]).await?;
    users.set(&"bob".into(), &"Bob".into(), &["team:red"]).await?;
    let _hit = users.get_if_present(&"alice".into()).await?;
    let _miss = users.get_if_present(&"nobody".into()).await?;
    let _loaded = users.get(&"carol".into(), |k| async move { Ok(format!("loaded {k}")) }).await?;
    let _hit = users.get(&"carol".into(), |_| async { Err(CacheError::NotFound) }).await?;
    let failed = users.get(&"dave".into(), |_| async { Err(CacheError::NotFound) }).await;
    assert!(failed.is_err(), "the loader failed");
    let removed = users.invalidate_by_tags(&["team:red"]).await?;
    println!("# invalidate_by_tags removed {removed} entries\n");

    print!("{}", prometheus.render());
    provider.close().await;
    Ok(())
}
