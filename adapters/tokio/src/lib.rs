//! # slotcache-tokio
//!
//! slotcache on the tokio runtime. Everything but the runtime glue comes from
//! [`slotcache_rt`] and is re-exported here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), slotcache_tokio::Error> {
//! use slotcache_tokio::{Cmd, Config, NodeAddr};
//! let seeds = vec![NodeAddr::new("127.0.0.1", 7000)];
//! let client = slotcache_tokio::connect(Config::new(seeds)).await?;
//! client.send(Cmd::new("SET").arg("greeting").arg("hello")).await?;
//! let v = client.send(Cmd::new("GET").arg("greeting")).await?;
//! assert_eq!(v.as_str(), Some("hello"));
//! # Ok(()) }
//! ```
//!
//! The cache: a provider, a typed namespace, a tagged write, a read through a loader, a tag
//! invalidation.
//!
//! ```no_run
//! use slotcache_tokio::{CacheError, NamespaceOptions, ProviderConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), CacheError> {
//!     let config = ProviderConfig::from_url("redis://127.0.0.1:7000")?;
//!     let provider = slotcache_tokio::provider(config).await?;
//!     let users = provider.create_namespace::<String, String>("users", NamespaceOptions::default())?;
//!     users.set(&"alice".into(), &"Alice".into(), &["team:red"]).await?;
//!     // On a miss, one call of the loader (a database query), shared by concurrent callers.
//!     let bob = users.get(&"bob".into(), |id| async move { Ok(format!("{id} from the database")) }).await?;
//!     let removed = users.invalidate_by_tags(&["team:red"]).await?; // on every shard, for every client
//!     provider.close().await;
//!     # let _ = (bob, removed);
//!     Ok(())
//! }
//! ```

use std::io;
use std::time::Instant;

pub use slotcache_rt::*;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The tokio [`Runtime`]. Must be used from inside a tokio runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        drop(tokio::spawn(future));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn connect_tcp(&self, host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream.compat()) as BoxStream)
        })
    }

    /// tokio's clock, so `tokio::time::pause` drives slotcache's timers in tests.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

slotcache_rt::runtime_entry_points!(TokioRuntime);
