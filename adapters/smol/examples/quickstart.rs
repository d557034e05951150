//! The README's quick start on smol, against a cluster given by URL.
//!
//! ```text
//! cargo run -p slotcache-smol --example quickstart -- redis://127.0.0.1:7000
//! ```
//!
//! A provider from the URL, a typed namespace, writes with tags (one with a TTL), a read, a
//! load through a loader, then `invalidate_by_tags` and the reads again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use slotcache_smol::{CacheError, NamespaceOptions, ProviderConfig, Ttl};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    name: String,
}

fn main() -> Result<(), CacheError> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "redis://127.0.0.1:7000".to_owned());
    smol::block_on(async {
        let provider = slotcache_smol::provider(ProviderConfig::from_url(&url)?).await?; // pings the seeds
        let users = provider.create_namespace::<String, User>("users", NamespaceOptions::default())?;
        users.invalidate_all().await?; // the same output on every run

        users.set(&"alice".into(), &User { name: "Alice".into() }, &["team:red"]).await?;
        let ttl = Ttl::After(Duration::from_secs(60));
        users.set_with_ttl(&"bob".into(), &User { name: "Bob".into() }, ttl, &["team:red"]).await?;
        println!("alice: {:?}", users.get_if_present(&"alice".into()).await?);
        // A miss: the loader runs once (single flight) and its value is stored.
        let carol =
            users.get(&"carol".into(), |k| async move { Ok(User { name: format!("{k} (loaded)") }) }).await?;
        println!("carol: {carol:?}");

        let removed = users.invalidate_by_tags(&["team:red"]).await?;
        println!("invalidate_by_tags(team:red) removed {removed} entries");
        println!("alice: {:?}", users.get_if_present(&"alice".into()).await?);
        println!("bob:   {:?}", users.get_if_present(&"bob".into()).await?);
        println!("carol: {:?}", users.get_if_present(&"carol".into()).await?);
        provider.close().await;
        Ok(())
    })
}
