//! The cache layer's pure parts: how entries, tags and TTLs are laid out in the cluster, the
//! server-side scripts, and the command plans of every cache operation (commands to send and
//! how to read their replies). The async layer only sequences these plans.

pub mod envelope;
pub mod error;
pub mod plan;
pub mod scripts;
pub mod ttl;

pub use envelope::{Entry, TagToken, TransformId};
pub use error::CacheError;
pub use ttl::Ttl;
