//! # slotcache-rt
//!
//! The runtime-agnostic async layer of slotcache. It runs the sans-IO
//! [`slotcache_core::client::Client`] in one driver task and gives callers a cloneable async
//! [`Client`] handle. A runtime crate supplies a [`Runtime`] (spawn, timers, TCP); TLS
//! ([`TlsConfig`], rustls) and everything else are shared.
//!
//! Users depend on `slotcache-tokio`, `slotcache-smol` or `slotcache-async-std`, which
//! re-export this crate's API with their runtime plugged in.

pub mod cache;
mod credentials;
mod dial;
mod driver;
mod error;
mod handle;
mod runtime;
mod tls;

pub use cache::{
    Cache, CacheStats, Compute, DefaultKey, Durability, EntryInfo, NamespaceOptions, Provider,
    ProviderConfig, QueryOptions, SearchResults,
};
pub use credentials::{Credentials, CredentialsProvider};
pub use error::{Error, TlsError};
pub use handle::{Client, Config};
pub use runtime::{AsyncStream, BoxFuture, BoxStream, Runtime};
/// Search schema, filters and sorting (see [`Cache::query`]).
pub use slotcache_core::cache::search::{
    Distance, FieldKind, Filter, FilterOp, FilterValue, GeoUnit, Knn, SearchError, SearchField, SearchSchema,
    SortBy, SortOrder, VectorAlgorithm,
};
pub use slotcache_core::cache::{CacheError, SharedError, Ttl};
pub use slotcache_core::client::{
    ClientConfig, Cmd, ConnError, ConnErrorKind, Event, Password, ReadFrom, Reply, Request, RequestError,
    RequestKind, Stats, TlsFailure,
};
pub use slotcache_core::{NodeAddr, Slot, Value, key_slot};
pub use tls::TlsConfig;
