//! The cache API: a [`Provider`] holding one cluster client, and typed [`Cache`] namespaces.
//!
//! Every protocol (which commands, how replies are read, retries and waits) is a machine of
//! `slotcache_core::cache::op`, and every typed conversion is the core's `Typed`; this module
//! runs the machines on the runtime, calls user code and spawns loads. See
//! `docs/consistency.md` for the tag protocol and what it guarantees.
//!
//! Modules depend one way: `provider` on `namespace`, the operations (`read`, `write`,
//! `compute`, `loader`, `iter`, `tags`, `search`) on `namespace`, `exec` and `random`,
//! `namespace` on `exec` and `config`, `drive` on `exec` and `random`; nothing depends on
//! `provider` or on an operation.

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

pub use config::ProviderConfig;
pub use namespace::Cache;
pub use provider::Provider;
pub use slotcache_core::cache::{
    CacheStats, Compute, DefaultKey, Durability, EntryInfo, ExpiryFn, NamespaceOptions, QueryOptions,
    SearchResults, SharedKeyEncoder,
};
#[doc(hidden)]
pub use tags::testing;
