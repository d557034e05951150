//! The cache API: a [`Provider`] holding one cluster client, and typed [`Cache`] namespaces.
//!
//! Every plan (which commands, how replies are read) comes from `slotcache_core::cache`; this
//! module sequences them on the runtime. See `docs/consistency.md` for the tag protocol and
//! what it guarantees.

mod compute;
mod config;
mod drive;
mod exec;
mod iter;
mod loader;
mod namespace;
mod provider;
mod random;
mod read;
mod search;
mod tags;
mod write;

pub use compute::Compute;
pub use config::{Durability, ProviderConfig};
pub use namespace::{Cache, CacheStats, DefaultKey, ExpiryFn, NamespaceOptions, SharedKeyEncoder};
pub use provider::Provider;
pub use read::EntryInfo;
pub use search::{QueryOptions, SearchResults};
#[doc(hidden)]
pub use tags::testing;
