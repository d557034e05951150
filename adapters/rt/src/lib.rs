//! # slotcache-rt
//!
//! The runtime-agnostic async layer of slotcache. It runs the sans-IO
//! [`slotcache_core::client::Client`] in one driver task and gives callers a cloneable async
//! [`Client`] handle. A runtime crate supplies a [`Runtime`] (spawn, timers, TCP); TLS
//! ([`TlsConfig`], rustls) and everything else are shared.
//!
//! [`Provider::in_memory`] gives the same cache over an in-process node (`slotcache-memory`),
//! and [`ProviderRegistry`] names providers, with a default.
//!
//! Users depend on `slotcache-tokio`, `slotcache-smol` or `slotcache-async-std`, which
//! re-export this crate's API with their runtime plugged in.
//!
//! Cargo features (forwarded by the runtime crates; see the README's "Features"): `json` (on by
//! default), `search`, `zstd`, `encryption`, `serde`, `metrics`, `platform-verifier`,
//! `webpki-roots`.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cache;
mod credentials;
mod dial;
mod driver;
mod error;
mod handle;
mod memory;
mod observe;
mod registry;
mod runtime;
mod tls;

pub use cache::{
    Cache, CacheStats, Compute, DefaultKey, Durability, EntryInfo, EvictionClass, EvictionPolicy,
    EvictionReport, EvictionSource, EvictionWarning, NamespaceOptions, PrimaryEviction, Provider,
    ProviderConfig,
};
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub use cache::{QueryOptions, SearchResults};
pub use credentials::{Credentials, CredentialsProvider};
pub use error::{Error, TlsError};
pub use handle::{Client, Config};
pub use memory::{MemoryRuntime, MemoryServer};
pub use registry::{CacheProvider, ProviderRegistry, RegistryError};
pub use runtime::{AsyncStream, BoxFuture, BoxStream, Runtime};
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub use slotcache_core::cache::Json;
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub use slotcache_core::cache::XChaCha20Poly1305;
#[cfg(feature = "zstd")]
#[cfg_attr(docsrs, doc(cfg(feature = "zstd")))]
pub use slotcache_core::cache::Zstd;
/// Search errors (the type exists without the `search` feature: [`CacheError::Search`]).
#[cfg(not(feature = "search"))]
pub use slotcache_core::cache::error::SearchError;
/// Search schema, filters and sorting (see `Cache::query`).
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub use slotcache_core::cache::search::{
    Distance, FieldKind, Filter, FilterOp, FilterValue, GeoUnit, Knn, SearchError, SearchField, SearchSchema,
    SortBy, SortOrder, VectorAlgorithm,
};
/// Value codecs and transformers (compression, encryption), for [`NamespaceOptions`].
pub use slotcache_core::cache::{Binary, Codec, Raw, Transform, ValuePipeline};
pub use slotcache_core::cache::{CacheError, SharedError, Ttl};
pub use slotcache_core::client::{
    ClientConfig, Cmd, ConfigError, ConnError, ConnErrorKind, Event, Mode, NodeId, NodeStats, Password,
    ReadFrom, Reply, Request, RequestError, RequestKind, Stats, SubmitError, TlsFailure,
};
/// Reading configuration: connection URLs and human-readable durations.
pub use slotcache_core::config::{ConnectionUrl, DurationError, UrlError, parse_duration};
pub use slotcache_core::keys::{
    Base64Keys, BytesKeys, DecimalKeys, KeyCodecError, KeyEncoder, KeyMarshal, StringKeys,
};
pub use slotcache_core::resp::Limits;
pub use slotcache_core::retry::Jitter;
pub use slotcache_core::{NodeAddr, Protocol, RefreshConfig, RetryConfig, Slot, Value, key_slot};
pub use tls::TlsConfig;

/// Defines a runtime crate's entry points, `connect`, `provider` and `memory_provider`, on `$runtime` (an
/// expression building the crate's [`Runtime`]), so every runtime crate has the same ones.
/// Used by `slotcache-tokio`, `slotcache-smol` and `slotcache-async-std` after
/// `pub use slotcache_rt::*;`.
#[doc(hidden)]
#[macro_export]
macro_rules! runtime_entry_points {
    ($runtime:expr) => {
        /// Connects a client on this runtime and waits until the cluster answers.
        ///
        /// # Errors
        /// See [`Client::connect`].
        pub async fn connect(
            config: $crate::Config,
        ) -> ::core::result::Result<$crate::Client, $crate::Error> {
            $crate::Client::connect(::std::sync::Arc::new($runtime), config).await
        }

        /// Connects a cache [`Provider`] on this runtime (one shared cluster client for every
        /// namespace) and pings the cluster.
        ///
        /// # Errors
        /// See [`Provider::connect`].
        pub async fn provider(
            config: $crate::ProviderConfig,
        ) -> ::core::result::Result<$crate::Provider, $crate::CacheError> {
            $crate::Provider::connect(::std::sync::Arc::new($runtime), config).await
        }

        /// [`provider`] with credentials that rotate (see
        /// [`Provider::connect_with_credentials`]).
        ///
        /// # Errors
        /// See [`Provider::connect_with_credentials`].
        pub async fn provider_with_credentials(
            config: $crate::ProviderConfig,
            credentials: ::std::sync::Arc<dyn $crate::CredentialsProvider>,
            interval: ::std::time::Duration,
        ) -> ::core::result::Result<$crate::Provider, $crate::CacheError> {
            $crate::Provider::connect_with_credentials(
                ::std::sync::Arc::new($runtime),
                config,
                credentials,
                interval,
            )
            .await
        }

        /// A cache [`Provider`] on this runtime over a new in-process node of its own: the
        /// same API and semantics with no cluster (unit tests, one machine). See
        /// [`Provider::in_memory`].
        ///
        /// # Errors
        /// See [`Provider::in_memory`].
        pub async fn memory_provider(
            config: $crate::ProviderConfig,
        ) -> ::core::result::Result<$crate::Provider, $crate::CacheError> {
            $crate::Provider::in_memory(::std::sync::Arc::new($runtime), config).await
        }

        /// [`memory_provider`] on a node several providers share. See
        /// [`Provider::connect_memory`].
        ///
        /// # Errors
        /// See [`Provider::connect_memory`].
        pub async fn memory_provider_on(
            server: &$crate::MemoryServer,
            config: $crate::ProviderConfig,
        ) -> ::core::result::Result<$crate::Provider, $crate::CacheError> {
            $crate::Provider::connect_memory(::std::sync::Arc::new($runtime), server, config).await
        }
    };
}
