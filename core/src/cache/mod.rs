//! The cache layer's pure parts: how entries, tags and TTLs are laid out in the cluster, the
//! server-side scripts, and the command plans of every cache operation (commands to send and
//! how to read their replies). The async layer only sequences these plans.

pub mod codec;
pub mod compute;
pub mod config;
pub mod durability;
pub mod envelope;
pub mod error;
pub mod eviction;
pub mod eviction_class;
pub mod namespaces;
pub mod op;
pub mod options;
pub mod plan;
pub mod query;
pub mod scripts;
pub mod search;
pub mod stats;
pub mod storage;
pub mod transform;
pub mod ttl;
pub mod typed;
pub mod typed_loads;

pub use codec::{Binary, Codec, Json, Raw};
pub use compute::{Compute, IfAbsent};
pub use config::ProviderConfig;
pub use durability::Durability;
pub use envelope::{Entry, TagToken, TransformId};
pub use error::{CacheError, SharedError};
pub use eviction::{
    EvictionClass, EvictionPolicy, EvictionReport, EvictionSource, EvictionWarning, PrimaryEviction,
};
pub use options::{DefaultKey, ExpiryFn, NamespaceOptions, SharedKeyEncoder};
pub use query::{QueryOptions, SearchResults};
pub use stats::{CacheStats, Counters, Read};
pub use storage::Storage;
pub use transform::{Transform, ValuePipeline, XChaCha20Poly1305, Zstd};
pub use ttl::Ttl;
pub use typed::{EntryInfo, Typed};
