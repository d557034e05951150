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
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod query;
pub mod scripts;
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod search;
pub mod stats;
pub mod storage;
pub mod transform;
pub mod ttl;
pub mod typed;
pub mod typed_loads;

#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub use codec::Json;
pub use codec::{Binary, Codec, Raw};
pub use compute::{Compute, IfAbsent};
pub use config::ProviderConfig;
pub use durability::Durability;
pub use envelope::{Entry, TagToken, TransformId};
pub use error::{CacheError, SharedError};
pub use eviction::{
    EvictionClass, EvictionPolicy, EvictionReport, EvictionSource, EvictionWarning, PrimaryEviction,
};
pub use options::{DefaultKey, ExpiryFn, NamespaceOptions, SharedKeyEncoder};
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub use query::{QueryOptions, SearchResults};
pub use stats::{CacheStats, Counters, Read};
pub use storage::Storage;
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub use transform::XChaCha20Poly1305;
#[cfg(feature = "zstd")]
#[cfg_attr(docsrs, doc(cfg(feature = "zstd")))]
pub use transform::Zstd;
pub use transform::{Transform, ValuePipeline};
pub use ttl::Ttl;
pub use typed::{EntryInfo, Typed};
