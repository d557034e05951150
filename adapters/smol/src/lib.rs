//! # slotcache-smol
//!
//! slotcache on the smol runtime. Everything but the runtime glue comes from
//! [`slotcache_rt`] and is re-exported here.
//!
//! ```no_run
//! smol::block_on(async {
//!     use slotcache_smol::{Cmd, Config, NodeAddr};
//!     let client = slotcache_smol::connect(Config::new(vec![NodeAddr::new("127.0.0.1", 7000)])).await?;
//!     let v = client.send(Cmd::new("GET").arg("greeting")).await?;
//!     println!("{v:?}");
//!     Ok::<_, slotcache_smol::Error>(())
//! });
//! ```
//!
//! The cache: a provider, a typed namespace, a tagged write, a read through a loader, a tag
//! invalidation.
//!
//! ```no_run
//! use slotcache_smol::{CacheError, NamespaceOptions, ProviderConfig};
//!
//! fn main() -> Result<(), CacheError> {
//!     smol::block_on(async {
//!         let config = ProviderConfig::from_url("redis://127.0.0.1:7000")?;
//!         let provider = slotcache_smol::provider(config).await?;
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

/// The smol [`Runtime`]: tasks on smol's global executor, timers and sockets on async-io.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        smol::spawn(future).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        sleep_until(deadline)
    }

    fn connect_tcp(&self, host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
        connect_tcp(host, port)
    }
}

/// An async-io timer (shared with the async-std adapter, which runs on the same reactor).
#[must_use]
pub fn sleep_until(deadline: Instant) -> BoxFuture<()> {
    Box::pin(async move {
        smol::Timer::at(deadline).await;
    })
}

/// An async-io TCP connection with `TCP_NODELAY` (shared with the async-std adapter).
#[must_use]
pub fn connect_tcp(host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
    Box::pin(async move {
        let stream = smol::net::TcpStream::connect((host.as_str(), port)).await?;
        stream.set_nodelay(true)?;
        Ok(Box::new(stream) as BoxStream)
    })
}

slotcache_rt::runtime_entry_points!(SmolRuntime);
