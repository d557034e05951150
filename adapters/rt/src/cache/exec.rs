//! The provider's connection to the cluster, shared by every namespace: the client handle and
//! the runtime (its clock and timers) that `Exec::drive` (in `drive.rs`) runs machines on.

use std::sync::Arc;

use slotcache_core::cache::{CacheError, SharedError};

use crate::error::Error;
use crate::handle::Client;
use crate::runtime::Runtime;

pub(crate) use slotcache_core::cache::op::Deadline;

/// The provider's connection to the cluster, shared by every namespace.
#[derive(Clone, Debug)]
pub(crate) struct Exec {
    pub(crate) client: Client,
    pub(crate) rt: Arc<dyn Runtime>,
}

/// The async layer's error as the cache's, keeping its source.
pub(crate) fn to_cache_error(e: Error) -> CacheError {
    match e {
        Error::Request(r) => CacheError::Request(r),
        Error::Submit(s) => CacheError::Submit(s),
        Error::Closed => CacheError::Closed,
        Error::Config(c) => CacheError::ClientConfig(c),
        Error::Tls(t) => CacheError::Tls(SharedError::new(t)),
        Error::Credentials(c) => CacheError::Credentials(c),
    }
}

/// Wall-clock milliseconds since the Unix epoch (for refresh-after times stored in entries).
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
