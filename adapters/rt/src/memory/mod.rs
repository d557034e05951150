//! The in-memory provider: the same [`Provider`] and [`Cache`](crate::Cache) as against
//! Valkey, the same cache machines and the same cluster client, connected to an in-process
//! node ([`MemoryServer`], the `slotcache-memory` model) instead of a socket.
//!
//! Nothing is special-cased above the connection: the client dials the node through a
//! [`Runtime`] that hands out in-process streams ([`MemoryRuntime`]), finds a standalone
//! node (one primary owning every slot, no replicas), and every operation sends the commands
//! and scripts it sends to a server. That is what keeps the two providers from drifting: the
//! cache conformance tests run against both.
//!
//! Modules depend one way: this one on `server` and `stream`, `stream` on `server`.

mod server;
mod stream;

use std::io;
use std::sync::Arc;
use std::time::Instant;

use slotcache_core::cache::CacheError;
use slotcache_core::client::Mode;

pub use server::MemoryServer;
use stream::MemoryStream;

use crate::cache::{Provider, ProviderConfig};
use crate::runtime::{BoxFuture, BoxStream, Runtime};

/// A [`Runtime`] whose connections all go to one [`MemoryServer`]: spawning and timers are
/// `inner`'s; a connection to any other address is refused.
#[derive(Debug, Clone)]
pub struct MemoryRuntime {
    inner: Arc<dyn Runtime>,
    server: MemoryServer,
}

impl MemoryRuntime {
    /// `inner`'s tasks and timers, `server`'s connections.
    #[must_use]
    pub fn new(inner: Arc<dyn Runtime>, server: MemoryServer) -> Self {
        Self { inner, server }
    }
}

impl Runtime for MemoryRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        self.inner.spawn(future);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        self.inner.sleep_until(deadline)
    }

    fn connect_tcp(&self, host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
        let addr = self.server.addr();
        let result = if host == addr.host() && port == addr.port() {
            Ok(Box::new(MemoryStream::new(self.server.clone(), self.inner.clone())) as BoxStream)
        } else {
            Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("an in-memory provider reaches only its own node ({addr}), not {host}:{port}"),
            ))
        };
        Box::pin(async move { result })
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }
}

impl Provider {
    /// A provider over a new in-process node of its own: no cluster, no network, for unit
    /// tests and single-machine use, with the API and semantics of [`Provider::connect`]
    /// (TTLs, tags and their guarantees, compute, loaders, iteration, search).
    ///
    /// `config`'s cache settings apply (global `namespace` prefix, `default_ttl`, timeouts,
    /// `max_value_size`, `allow_unsafe_flushdb`...); its connection settings do not: the
    /// seeds, TLS, credentials and `mode` are replaced by the node's.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # async fn demo(rt: Arc<dyn slotcache_rt::Runtime>) -> Result<(), slotcache_rt::CacheError> {
    /// use slotcache_rt::{NamespaceOptions, Provider, ProviderConfig};
    /// let provider = Provider::in_memory(rt, ProviderConfig::default()).await?;
    /// let users = provider.create_namespace::<String, String>("users", NamespaceOptions::default())?;
    /// users.set(&"alice".to_string(), &"Alice".to_string(), &["admin"]).await?;
    /// assert_eq!(users.invalidate_by_tags(&["admin"]).await?, 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`CacheError::Config`] for invalid settings.
    pub async fn in_memory(rt: Arc<dyn Runtime>, config: ProviderConfig) -> Result<Self, CacheError> {
        Self::connect_memory(rt, &MemoryServer::new(), config).await
    }

    /// [`Provider::in_memory`] on a node several providers share (as two services share a
    /// cluster): what one writes, the other reads.
    ///
    /// # Errors
    /// [`CacheError::Config`] for invalid settings.
    pub async fn connect_memory(
        rt: Arc<dyn Runtime>,
        server: &MemoryServer,
        mut config: ProviderConfig,
    ) -> Result<Self, CacheError> {
        config.init_address = vec![server.addr().to_string()];
        config.mode = Mode::Standalone;
        config.tls = None;
        config.require_tls = false;
        config.username.clear();
        config.password.clear();
        let rt: Arc<dyn Runtime> = Arc::new(MemoryRuntime::new(rt, server.clone()));
        Self::connect(rt, config).await
    }
}
