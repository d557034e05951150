//! # slotcache-async-std
//!
//! slotcache on async-std. async-std is discontinued upstream (RUSTSEC-2025-0052; its authors
//! point to smol), so this crate is deliberately tiny: async-std runs on the same async-io
//! reactor as smol, so timers and sockets are smol's, and only spawning is async-std's.
//! Prefer `slotcache-smol` for new code.

use std::io;
use std::sync::Arc;
use std::time::Instant;

pub use slotcache_smol::{
    BoxFuture, BoxStream, Cache, CacheError, CacheStats, Client, ClientConfig, Cmd, Compute, Config,
    DefaultKey, Durability, EntryInfo, Error, Event, NamespaceOptions, NodeAddr, Password, Provider,
    ProviderConfig, ReadFrom, Reply, Request, RequestError, RequestKind, Runtime, Slot, Stats, TlsConfig,
    Ttl, Value, key_slot,
};

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

/// Connects a client on async-std and waits until the cluster answers.
///
/// # Errors
/// See [`Client::connect`].
pub async fn connect(config: Config) -> Result<Client, Error> {
    Client::connect(Arc::new(AsyncStdRuntime), config).await
}

/// Connects a cache [`Provider`] on this runtime (one shared cluster client for every
/// namespace) and pings the cluster.
///
/// # Errors
/// See [`Provider::connect`].
pub async fn provider(config: ProviderConfig) -> Result<Provider, CacheError> {
    Provider::connect(Arc::new(AsyncStdRuntime), config).await
}
