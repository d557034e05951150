//! The cache API: a [`Provider`] holding one cluster client, and typed [`Cache`] namespaces.
//!
//! Every decision is the core's (`slotcache_core::cache`): every protocol (which commands, how
//! replies are read, retries and waits) is a machine of `op` (the loads through the typed
//! machines of `typed_loads`, iteration through `op::walk`, `flush_all` as `op::flush`),
//! every typed conversion and count is `Typed`, and the table of namespaces (closed with the
//! provider) is `namespaces`. This module runs the machines on the runtime, calls user code,
//! spawns and shares loads, and keeps the core's state behind locks. See
//! `docs/consistency.md` for the tag protocol and what it guarantees.
//!
//! Modules depend one way: `provider` on `namespace`, `config`, `exec` and `random`; the
//! operations (`read`, `write`, `compute`, `loader`, `iter`, `tags`, `search`) on `namespace`,
//! some also on `exec` (deadlines, the wall clock) and `random`; `namespace` on `exec` and
//! `config`; `drive` on `exec` and `random`; nothing depends on `provider` or on an
//! operation, and `slotcache_core` on none of them.

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
#[cfg(feature = "search")]
mod search;
mod tags;
mod write;

pub use config::ProviderConfig;
pub use namespace::Cache;
pub use provider::Provider;
pub use slotcache_core::cache::{
    CacheStats, Compute, DefaultKey, Durability, EntryInfo, EvictionClass, EvictionPolicy, EvictionReport,
    EvictionSource, EvictionWarning, ExpiryFn, NamespaceOptions, PrimaryEviction, SharedKeyEncoder,
};
#[cfg(feature = "search")]
pub use slotcache_core::cache::{QueryOptions, SearchResults};
#[doc(hidden)]
pub use tags::testing;
