//! Search and query on tokio: a searchable namespace (a schema), documents written with
//! `bulk_set`, filtered and sorted queries over every primary, a full-text search.
//!
//! ```text
//! cargo run -p slotcache-tokio --example search -- redis://127.0.0.1:7000
//! ```
//!
//! The cluster needs the JSON and search modules on every primary (tested with RedisJSON 2.8.3
//! and RediSearch 2.10.5, see docs/search.md); without them the example says so and exits
//! (`CacheError::SearchNotSupported`).

use std::error::Error;

use serde::{Deserialize, Serialize};
use slotcache_tokio::{
    CacheError, Filter, FilterOp, NamespaceOptions, ProviderConfig, QueryOptions, SearchSchema, SortBy,
    SortOrder,
};

/// A searchable namespace stores JSON documents: values serialize to JSON objects.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    name: String,
    role: String,
    age: u32,
    bio: String,
}

fn user(name: &str, role: &str, age: u32, bio: &str) -> (String, User) {
    let u = User { name: name.into(), role: role.into(), age, bio: bio.into() };
    (name.to_lowercase(), u)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "redis://127.0.0.1:7000".to_owned());
    let provider = slotcache_tokio::provider(ProviderConfig::from_url(&url)?).await?;

    let schema = SearchSchema::new()
        .tag("role", true) // TAG, sortable
        .numeric("age", true) // NUMERIC, sortable
        .text("bio", false); // TEXT (full-text search)
    let users = provider
        .create_namespace::<String, User>("people", NamespaceOptions::default().with_search(schema))?;

    match run(&users).await {
        Err(CacheError::SearchNotSupported(why)) => {
            println!(
                "no search on this cluster ({why}): it needs the JSON and search modules, see docs/search.md"
            );
        }
        other => other?,
    }
    provider.close().await;
    Ok(())
}

async fn run(users: &slotcache_tokio::Cache<String, User>) -> Result<(), CacheError> {
    users.invalidate_all().await?; // the same output on every run
    let docs = vec![
        user("Alice", "admin", 41, "writes async Rust"),
        user("Bob", "user", 29, "runs the cluster"),
        user("Carol", "admin", 35, "tunes Valkey and Rust services"),
        user("Dave", "guest", 52, "reads the docs"),
    ];
    // One round trip per node; the keys land on different primaries, each primary's index
    // finds its own, and every query asks every primary.
    users.bulk_set(&docs, &["staff"]).await?;

    let admins = users
        .query(
            &QueryOptions::new()
                .filter(Filter::eq("role", "admin"))
                .sort(SortBy { field: "age".into(), order: SortOrder::Desc })
                .page(0, 10),
        )
        .await?;
    println!("admins, oldest first ({} in all):", admins.total);
    for (key, u) in &admins.items {
        println!("  {key}: {} ({})", u.name, u.age);
    }

    let over_30 =
        users.query(&QueryOptions::new().filter(Filter::new("age", FilterOp::Ge(30.0))).page(0, 10)).await?;
    println!("age >= 30: {} documents", over_30.total);

    let rust = users.search("rust", &QueryOptions::new()).await?;
    let names: Vec<&str> = rust.items.iter().map(|(_, u)| u.name.as_str()).collect();
    println!("full text \"rust\": {names:?}");

    let removed = users.invalidate_by_tags(&["staff"]).await?;
    println!(
        "invalidate_by_tags(staff) removed {removed}; a query now finds {}",
        users.query(&QueryOptions::new()).await?.total
    );
    Ok(())
}
