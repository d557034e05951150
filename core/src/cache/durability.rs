//! How far an invalidation must be acknowledged before it returns.

use core::time::Duration;

use crate::slot::Slot;
use crate::topology::Topology;

/// How far an invalidation must be acknowledged before it returns.
///
/// Valkey replicates asynchronously: a failover right after an invalidation can promote a
/// replica that never saw it, and the promoted replica would serve the stale value again. With
/// [`Durability::Replicas`], an invalidation (`invalidate`, `invalidate_by_tags`,
/// `invalidate_all`) returns only after `WAIT`, sent on the connection that carried the
/// invalidation once it has run, saw that many replicas of the shard acknowledge it, and fails
/// with `CacheError::NotDurable` otherwise.
///
/// How many replicas it waits for: the configured count, capped at the replicas the client's
/// latest topology **lists** for the shard, whatever their health (a replica that is still
/// loading or syncing counts: if it cannot acknowledge in time the call fails with
/// `NotDurable` rather than skipping the wait). A shard that lists no replica at all is not
/// waited for (nothing can be promoted there). Before the first topology, the configured count.
///
/// On a standalone node (see [`Mode`](crate::client::Mode)) the one shard lists the replicas
/// the primary's `INFO replication` reports as connected: a connected replica that does not
/// acknowledge (stopped, lagging) makes the call fail with `NotDurable`, while a replica that
/// disconnected is no longer listed after the next topology refresh, and so no longer waited
/// for (a cluster keeps listing a failed replica until it is forgotten).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Return as soon as the primary applied the invalidation.
    Primary,
    /// Wait for this many replicas (per shard, capped at what the shard lists), at most
    /// `timeout`.
    Replicas {
        /// Replicas that must acknowledge.
        replicas: u32,
        /// How long to wait for them.
        timeout: Duration,
    },
}

impl Default for Durability {
    fn default() -> Self {
        Self::Replicas { replicas: 1, timeout: Duration::from_millis(250) }
    }
}

impl Durability {
    /// The `WAIT` to send after an invalidation on `slot`: how many replicas and the timeout
    /// in ms, or `None` when no wait is needed (see the type's docs for the rule).
    #[must_use]
    pub fn wait_for(self, slot: Slot, topology: Option<&Topology>) -> Option<(u32, u64)> {
        let Self::Replicas { replicas, timeout } = self else { return None };
        let listed = topology.map_or(replicas, |t| u32::try_from(t.replicas(slot).len()).unwrap_or(u32::MAX));
        let want = replicas.min(listed);
        (want > 0).then(|| (want, u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1)))
    }
}

/// `"primary"`, or `{ replicas = 1, timeout = "250ms" }` (feature `serde`).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Durability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use core::fmt;

        use serde::Deserialize;
        use serde::de::{self, Visitor};

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Replicas {
            replicas: u32,
            #[serde(deserialize_with = "crate::config::de::duration")]
            timeout: Duration,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Durability;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"primary\" or { replicas = N, timeout = \"250ms\" }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Durability, E> {
                match s {
                    "primary" => Ok(Durability::Primary),
                    other => {
                        Err(E::custom(format!("{other:?} is not a durability: use \"primary\" or a table")))
                    }
                }
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Durability, A::Error> {
                let r = Replicas::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Durability::Replicas { replicas: r.replicas, timeout: r.timeout })
            }
        }
        d.deserialize_any(V)
    }
}
