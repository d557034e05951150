//! # slotcache-async-std
//!
//! slotcache on async-std. async-std is discontinued upstream (RUSTSEC-2025-0052; its authors
//! point to smol), so this crate is deliberately tiny: async-std runs on the same async-io
//! reactor as smol, so timers and sockets are smol's, and only spawning is async-std's.
//! Prefer `slotcache-smol` for new code.
//!
//! Its API is the same as the other runtime crates': everything of [`slotcache_rt`], plus
//! [`AsyncStdRuntime`], `connect` and `provider`.
//!
//! ```no_run
//! use slotcache_async_std::{CacheError, NamespaceOptions, ProviderConfig};
//!
//! fn main() -> Result<(), CacheError> {
//!     async_std::task::block_on(async {
//!         let config = ProviderConfig::from_url("redis://127.0.0.1:7000")?;
//!         let provider = slotcache_async_std::provider(config).await?;
//!         let users = provider.create_namespace::<String, String>("users", NamespaceOptions::default())?;
//!         users.set(&"alice".into(), &"Alice".into(), &["team:red"]).await?;
//!         // On a miss, one call of the loader (a database query), shared by concurrent callers.
//!         let bob = users.get(&"bob".into(), |id| async move { Ok(format!("{id} from the database")) }).await?;
//!         let removed = users.invalidate_by_tags(&["team:red"]).await?; // on every shard, for every client
//!         provider.close().await;
//!         # let _ = (bob, removed);
//!         Ok(())
//!     })
//! }
//! ```

use std::io;
use std::time::Instant;

pub use slotcache_rt::*;

/// The async-std [`Runtime`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        drop(async_std::task::spawn(future));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        slotcache_smol::sleep_until(deadline)
    }

    fn connect_tcp(&self, host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
        slotcache_smol::connect_tcp(host, port)
    }
}

slotcache_rt::runtime_entry_points!(AsyncStdRuntime);
