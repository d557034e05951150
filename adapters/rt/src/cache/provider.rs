//! The provider: one cluster client shared by every namespace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use slotcache_core::cache::EvictionReport;
use slotcache_core::cache::namespaces::Namespaces;
use slotcache_core::cache::op::eviction::CheckEviction;
use slotcache_core::cache::op::flush::{FlushAll, Maximum, SetMaximum};
use slotcache_core::cache::ttl::check_default;
use slotcache_core::cache::{CacheError, NamespaceOptions};
use slotcache_core::client::Cmd;

use super::config::ProviderConfig;
use super::exec::{Deadline, Exec, to_cache_error};
use super::namespace::{Cache, Inner};
use super::random;
use crate::credentials::CredentialsProvider;
use crate::handle::Client;
use crate::runtime::Runtime;

/// A Valkey Cluster cache provider: one shared cluster client, many typed namespaces.
///
/// ```no_run
/// # async fn demo(rt: std::sync::Arc<dyn slotcache_rt::Runtime>) -> Result<(), slotcache_rt::CacheError> {
/// use slotcache_rt::{NamespaceOptions, Provider, ProviderConfig};
/// let provider = Provider::connect(rt, ProviderConfig::new(["127.0.0.1:7000"])).await?;
/// let users = provider.create_namespace::<String, String>("users", NamespaceOptions::default())?;
/// users.set(&"alice".to_string(), &"Alice".to_string(), &["admin"]).await?;
/// assert_eq!(users.get_if_present(&"alice".to_string()).await?, Some("Alice".to_string()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Provider {
    exec: Exec,
    config: Arc<ProviderConfig>,
    namespaces: Arc<Mutex<Namespaces>>,
    eviction: Arc<EvictionReport>,
}

impl core::fmt::Debug for Provider {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Provider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Provider {
    /// Validates `config`, connects, and pings the cluster: when no seed answers, fails fast
    /// with an error naming the seeds. Then reads every primary's eviction setup
    /// ([`Provider::eviction`]), logs a `tracing` warning for each risky one, and refuses to
    /// start if a primary's class is in `config.refuse_eviction` (default: none, warn only).
    ///
    /// # Errors
    /// [`CacheError::Config`] for invalid settings; the connection error;
    /// [`CacheError::EvictionRefused`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # async fn example(rt: Arc<dyn slotcache_rt::Runtime>) -> Result<(), slotcache_rt::CacheError> {
    /// use slotcache_rt::{Provider, ProviderConfig};
    ///
    /// // A runtime crate's `provider(config)` does this with its runtime (`slotcache_tokio::provider`).
    /// let config = ProviderConfig::from_url("redis://10.0.0.1:6379,10.0.0.2:6379")?;
    /// let provider = Provider::connect(rt, config).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(rt: Arc<dyn Runtime>, config: ProviderConfig) -> Result<Self, CacheError> {
        Self::connect_as(rt, config, None).await
    }

    /// [`Provider::connect`] with credentials that rotate: `credentials` is asked now (its
    /// answer replaces the user and password of `config`), then every `interval`, and live
    /// connections are re-authenticated without dropping a request (the whole model:
    /// [`CredentialsProvider`]).
    ///
    /// # Errors
    /// [`CacheError::Credentials`] when the provider fails now; what [`Provider::connect`]
    /// returns.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use slotcache_rt::{CacheError, CredentialsProvider, Runtime};
    /// # async fn example(rt: Arc<dyn Runtime>, tokens: Arc<dyn CredentialsProvider>) -> Result<(), CacheError> {
    /// use std::time::Duration;
    /// use slotcache_rt::{Provider, ProviderConfig};
    ///
    /// // `tokens` answers with the current user and password (a token file, a secrets manager...).
    /// let config = ProviderConfig::from_url("redis://10.0.0.1:6379")?;
    /// let every = Duration::from_secs(300);
    /// let provider = Provider::connect_with_credentials(rt, config, tokens, every).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with_credentials(
        rt: Arc<dyn Runtime>,
        config: ProviderConfig,
        credentials: Arc<dyn CredentialsProvider>,
        interval: Duration,
    ) -> Result<Self, CacheError> {
        Self::connect_as(rt, config, Some((credentials, interval))).await
    }

    async fn connect_as(
        rt: Arc<dyn Runtime>,
        config: ProviderConfig,
        credentials: Option<(Arc<dyn CredentialsProvider>, Duration)>,
    ) -> Result<Self, CacheError> {
        check_default(config.default_ttl)?;
        let mut settings = config.client_settings()?;
        settings.client.rng_seed = random::seed();
        let client = match credentials {
            Some((c, interval)) => Client::start_with_credentials(rt.clone(), settings, c, interval).await,
            None => Client::start(rt.clone(), settings),
        }
        .map_err(to_cache_error)?;
        if let Err(e) = client.send(Cmd::new("PING")).await {
            client.close().await;
            return Err(to_cache_error(e));
        }
        let exec = Exec { client, rt };
        let d = Deadline::new(exec.rt.now(), "connect", config.operation_timeout);
        let eviction = match exec.drive(CheckEviction::new(config.refuse_eviction.clone(), d)).await {
            Ok(report) => report,
            Err(e) => {
                exec.client.close().await;
                return Err(e);
            }
        };
        for w in eviction.warnings() {
            tracing::warn!(warning = %w, "slotcache: eviction setup");
        }
        Ok(Self { exec, config: Arc::new(config), namespaces: Arc::default(), eviction: Arc::new(eviction) })
    }

    /// Every primary's eviction setup as read when the provider connected (`CONFIG GET
    /// maxmemory-policy maxmemory`, else `INFO memory`): policy, `maxmemory` and what it means
    /// for the cache ([`EvictionClass`](slotcache_core::cache::EvictionClass)); a primary whose
    /// setup could not be read is `Unknown`. See "Eviction under `maxmemory`" in
    /// `docs/consistency.md`. Not refreshed: a later `CONFIG SET` or a new primary is not seen.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
    /// for warning in provider.eviction().warnings() {
    ///     eprintln!("eviction setup: {warning}");
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn eviction(&self) -> &EvictionReport {
        &self.eviction
    }

    /// The shared cluster client (for commands the cache does not cover).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(provider: slotcache_rt::Provider) -> Result<(), Box<dyn std::error::Error>> {
    /// use slotcache_rt::Cmd;
    ///
    /// // Any command, routed by its key like the cache's own.
    /// provider.client().send(Cmd::new("INCR").arg("page:views")).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.exec.client
    }

    /// The provider's configuration.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
    /// let timeout = provider.config().operation_timeout;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// A typed cache over namespace `name`.
    ///
    /// `users` and `users:` are the same namespace. Asking again with the same types and
    /// options returns the same cache; other types or options are an error, and so is a
    /// namespace whose prefix overlaps another's (`user:` and `user:admin:` would see each
    /// other's keys in `invalidate_all` and iteration).
    ///
    /// # Errors
    /// [`CacheError::Closed`], [`CacheError::Namespace`], [`CacheError::NamespaceConflict`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
    /// use slotcache_rt::NamespaceOptions;
    ///
    /// let users = provider.create_namespace::<String, String>("users", NamespaceOptions::default())?;
    /// let visits = provider.create_namespace::<u64, u32>("visits", NamespaceOptions::default())?;
    /// # Ok(()) }
    /// ```
    pub fn create_namespace<K, V>(
        &self,
        name: &str,
        options: NamespaceOptions<K, V>,
    ) -> Result<Cache<K, V>, CacheError>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        let mut namespaces = self.namespaces.lock().map_err(|_| CacheError::Closed)?;
        namespaces.get_or_make(&self.config, name, options, |typed| {
            let (exec, config) = (self.exec.clone(), self.config.clone());
            let obs = crate::observe::NamespaceObs::new(typed.name());
            let inner = Inner {
                exec,
                config,
                typed,
                flights: Mutex::default(),
                #[cfg(feature = "search")]
                known: Mutex::default(),
                obs,
            };
            Cache { inner: Arc::new(inner) }
        })
    }

    /// `FLUSHDB` on every primary: deletes **every key of the cluster**, not just this
    /// application's. Refused unless `allow_unsafe_flushdb` is set; bounded by `flush_timeout`.
    ///
    /// # Errors
    /// [`CacheError::UnsafeFlush`] when not allowed; the first primary's error (the others
    /// may have flushed), or the timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
    /// // Only with `allow_unsafe_flushdb` set in the configuration: a test cluster of one's own.
    /// provider.flush_all().await?;
    /// # Ok(()) }
    /// ```
    pub async fn flush_all(&self) -> Result<(), CacheError> {
        let d = Deadline::new(self.exec.rt.now(), "flush_all", self.config.flush_timeout);
        self.exec.drive(FlushAll::new(self.config.allow_unsafe_flushdb, d)).await
    }

    /// The memory limit of the cluster's primaries (`CONFIG GET maxmemory` on each): `None`
    /// when a primary has none (`maxmemory 0`), else the smallest one, in bytes per primary
    /// (after [`Provider::set_maximum`], every primary's). Server-wide, not per namespace: the
    /// limit covers every key of every application on the node.
    ///
    /// # Errors
    /// A primary's error (an ACL user without `CONFIG`), or `operation_timeout`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
    /// match provider.maximum().await? {
    ///     Some(bytes) => println!("maxmemory {bytes} bytes per primary"),
    ///     None => println!("no memory limit"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn maximum(&self) -> Result<Option<u64>, CacheError> {
        let d = Deadline::new(self.exec.rt.now(), "maximum", self.config.operation_timeout);
        self.exec.drive(Maximum::new(d)).await
    }

    /// Sets `maxmemory` to `limit` bytes (`None`: no limit) on **every primary**, for every
    /// application of the cluster; refused unless `allow_unsafe_flushdb` says this application
    /// owns the cluster. Not persisted (no `CONFIG REWRITE`): a restarted node keeps its
    /// configuration file's value, and replicas keep theirs (a replica promoted later has its
    /// own). What happens at the limit is the servers' `maxmemory-policy`.
    ///
    /// # Errors
    /// [`CacheError::UnsafeSetMaximum`] when not allowed; the first primary's error (the others
    /// may have applied it), or `operation_timeout`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
    /// // Only with `allow_unsafe_flushdb` set: the cluster is this application's alone.
    /// provider.set_maximum(Some(512 << 20)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_maximum(&self, limit: Option<u64>) -> Result<(), CacheError> {
        let d = Deadline::new(self.exec.rt.now(), "set_maximum", self.config.operation_timeout);
        self.exec.drive(SetMaximum::new(self.config.allow_unsafe_flushdb, limit, d)).await
    }

    /// Closes the shared client: every namespace of this provider stops working, and their
    /// pending operations fail with [`CacheError::Closed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
    /// provider.close().await; // every namespace of this provider is closed too
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) {
        if let Ok(mut n) = self.namespaces.lock() {
            n.close();
        }
        self.exec.client.close().await;
    }
}
