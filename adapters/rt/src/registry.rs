//! Providers by name, with a default: the [`CacheProvider`] abstraction and the
//! [`ProviderRegistry`] an application wires its caches from (the reference framework's
//! `WithCacheProvider("valkey-cluster", provider)` and `WithDefaultCacheProvider(...)`).

use core::future::Future;

use slotcache_core::cache::{CacheError, NamespaceOptions};

use crate::cache::{Cache, Provider};

/// What a cache provider gives an application: typed namespaces, and a close.
///
/// [`Provider`] implements it, whether it is connected to Valkey ([`Provider::connect`]) or
/// in memory ([`Provider::in_memory`]): both give the same [`Cache`]. Code that takes
/// `impl CacheProvider` (or a [`ProviderRegistry`]) can also be handed a wrapper of the
/// application's own.
pub trait CacheProvider: Send + Sync + 'static {
    /// A typed cache over namespace `name` (see [`Provider::create_namespace`]).
    ///
    /// # Errors
    /// [`CacheError::Closed`], [`CacheError::Namespace`], [`CacheError::NamespaceConflict`].
    fn create_namespace<K, V>(
        &self,
        name: &str,
        options: NamespaceOptions<K, V>,
    ) -> Result<Cache<K, V>, CacheError>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static;

    /// Closes the provider: its namespaces stop working (see [`Provider::close`]).
    fn close(&self) -> impl Future<Output = ()> + Send;
}

impl CacheProvider for Provider {
    fn create_namespace<K, V>(
        &self,
        name: &str,
        options: NamespaceOptions<K, V>,
    ) -> Result<Cache<K, V>, CacheError>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        Self::create_namespace(self, name, options)
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        Self::close(self)
    }
}

/// Why the registry refused a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A provider is already registered under this name.
    #[error("a cache provider named {0:?} is already registered")]
    Duplicate(String),
    /// No provider is registered under this name.
    #[error("no cache provider named {0:?} is registered")]
    Unknown(String),
    /// No provider is registered at all, so there is no default.
    #[error("no cache provider is registered")]
    Empty,
}

/// Cache providers by name, one of them the default.
///
/// The first provider registered is the default until [`ProviderRegistry::set_default`]
/// names another. Names are exact (case-sensitive).
///
/// ```no_run
/// # async fn demo(rt: std::sync::Arc<dyn slotcache_rt::Runtime>) -> Result<(), Box<dyn std::error::Error>> {
/// use slotcache_rt::{CacheProvider, NamespaceOptions, Provider, ProviderConfig, ProviderRegistry};
/// let cluster = Provider::connect(rt.clone(), ProviderConfig::new(["10.0.0.1:6379"])).await?;
/// let local = Provider::in_memory(rt, ProviderConfig::default()).await?;
/// let providers = ProviderRegistry::new()
///     .with_provider("valkey-cluster", cluster)?
///     .with_provider("memory", local)?
///     .with_default("valkey-cluster")?;
/// let users = providers.default_provider()?;
/// let users = users.create_namespace::<String, String>("users", NamespaceOptions::default())?;
/// let scratch = providers.provider("memory")?;
/// let scratch = scratch.create_namespace::<String, u64>("scratch", NamespaceOptions::default())?;
/// providers.close_all().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ProviderRegistry<P = Provider> {
    providers: Vec<(String, P)>,
    default: usize,
}

impl<P> Default for ProviderRegistry<P> {
    fn default() -> Self {
        Self { providers: Vec::new(), default: 0 }
    }
}

impl<P: CacheProvider> ProviderRegistry<P> {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `provider` as `name` (the default if it is the first).
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] when the name is taken (the registry is unchanged).
    pub fn register(&mut self, name: impl Into<String>, provider: P) -> Result<(), RegistryError> {
        let name = name.into();
        if self.position(&name).is_some() {
            return Err(RegistryError::Duplicate(name));
        }
        self.providers.push((name, provider));
        Ok(())
    }

    /// [`ProviderRegistry::register`], by value (to build a registry in one expression).
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`].
    pub fn with_provider(mut self, name: impl Into<String>, provider: P) -> Result<Self, RegistryError> {
        self.register(name, provider)?;
        Ok(self)
    }

    /// Makes the provider registered as `name` the default.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`] (the default is unchanged).
    pub fn set_default(&mut self, name: &str) -> Result<(), RegistryError> {
        self.default = self.position(name).ok_or_else(|| RegistryError::Unknown(name.to_owned()))?;
        Ok(())
    }

    /// [`ProviderRegistry::set_default`], by value.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`].
    pub fn with_default(mut self, name: &str) -> Result<Self, RegistryError> {
        self.set_default(name)?;
        Ok(self)
    }

    /// The provider registered as `name`.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`].
    pub fn provider(&self, name: &str) -> Result<&P, RegistryError> {
        self.get(name).ok_or_else(|| RegistryError::Unknown(name.to_owned()))
    }

    /// The provider registered as `name`, if any.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&P> {
        self.position(name).map(|i| &self.providers[i].1)
    }

    /// The default provider.
    ///
    /// # Errors
    /// [`RegistryError::Empty`] when nothing is registered.
    pub fn default_provider(&self) -> Result<&P, RegistryError> {
        self.providers.get(self.default).map(|(_, p)| p).ok_or(RegistryError::Empty)
    }

    /// The default provider's name (`None` when nothing is registered).
    #[must_use]
    pub fn default_name(&self) -> Option<&str> {
        self.providers.get(self.default).map(|(n, _)| n.as_str())
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.iter().map(|(n, _)| n.as_str())
    }

    /// Closes every registered provider, in registration order.
    pub async fn close_all(&self) {
        for (_, p) in &self.providers {
            p.close().await;
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|(n, _)| n == name)
    }
}
