//! What the servers' eviction setup means for the cache: each primary's `maxmemory-policy` and
//! `maxmemory`, classified as `docs/consistency.md` ("Eviction under `maxmemory`") explains.
//! The provider reads them when it connects ([`crate::cache::op::eviction::CheckEviction`]),
//! reports them, warns about risky setups and, if configured to, refuses to start.
//!
//! Every policy keeps the cache **correct** (an evicted entry is a miss, an evicted tag key
//! makes its entries stale). What differs is what happens when memory runs out:
//!
//! - `allkeys-*`: any key may be evicted; only the invalidation counts are affected.
//! - `volatile-*`: keys without a TTL are never evicted, so entries stored with `Ttl::Never`
//!   and their tag keys can fill memory; then writes fail with `OOM`.
//! - `noeviction`: writes fail with `OOM` once memory is full (reads go on).
//! - `maxmemory 0`: no limit is set, nothing is evicted and memory grows with the data.

use core::fmt;

use crate::cache::error::CacheError;
use crate::node_addr::NodeAddr;

pub use super::eviction_class::{EvictionClass, EvictionPolicy};

/// How a primary's eviction setup was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvictionSource {
    /// `CONFIG GET maxmemory-policy maxmemory`.
    Config,
    /// `INFO memory` (`maxmemory_policy`, `maxmemory`), when `CONFIG` failed (managed services
    /// often disable it).
    Info,
    /// Neither could be read.
    Nothing,
}

/// One primary's eviction setup.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PrimaryEviction {
    /// The primary.
    pub addr: NodeAddr,
    /// Its policy, when read.
    pub policy: Option<EvictionPolicy>,
    /// Its `maxmemory` in bytes (`0`: no limit), when read.
    pub maxmemory: Option<u64>,
    /// What it means for the cache.
    pub class: EvictionClass,
    /// Where it was read.
    pub read_from: EvictionSource,
    /// Why it could not be read (the `INFO` fallback's error), for [`EvictionClass::Unknown`].
    pub error: Option<CacheError>,
}

impl PrimaryEviction {
    /// A primary whose setup was read.
    #[must_use]
    pub const fn read(
        addr: NodeAddr,
        policy: EvictionPolicy,
        maxmemory: u64,
        read_from: EvictionSource,
    ) -> Self {
        let class = EvictionClass::of(&policy, maxmemory);
        Self { addr, policy: Some(policy), maxmemory: Some(maxmemory), class, read_from, error: None }
    }

    /// A primary whose setup could not be read.
    #[must_use]
    pub const fn unknown(addr: NodeAddr, error: CacheError) -> Self {
        Self {
            addr,
            policy: None,
            maxmemory: None,
            class: EvictionClass::Unknown,
            read_from: EvictionSource::Nothing,
            error: Some(error),
        }
    }
}

/// A setup worth a warning (the provider logs each with `tracing::warn!`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EvictionWarning {
    /// A `volatile-*` policy with a limit ([`EvictionClass::Volatile`]).
    Volatile {
        /// The primary.
        addr: NodeAddr,
        /// Its policy.
        policy: EvictionPolicy,
    },
    /// `noeviction` with a limit ([`EvictionClass::NoEviction`]).
    NoEviction {
        /// The primary.
        addr: NodeAddr,
    },
    /// The primaries do not all have the same policy: the cache behaves differently on each
    /// shard when memory runs out.
    Mixed {
        /// Each primary whose policy was read, with it.
        policies: Vec<(NodeAddr, EvictionPolicy)>,
    },
    /// No primary could be asked (the request failed as a whole).
    Unread {
        /// Why.
        reason: String,
    },
    /// A primary's setup could not be read, or its policy is not known to this version.
    Unknown {
        /// The primary.
        addr: NodeAddr,
        /// Why (the read's error, or the unknown policy's name).
        reason: String,
    },
}

impl fmt::Display for EvictionWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Volatile { addr, policy } => write!(
                f,
                "primary {addr} evicts with {policy}: keys without a TTL are never evicted, so entries \
                 stored with Ttl::Never and their tag keys can fill memory, then writes fail with OOM"
            ),
            Self::NoEviction { addr } => write!(
                f,
                "primary {addr} has maxmemory set with noeviction: writes fail with OOM once memory is full"
            ),
            Self::Mixed { policies } => {
                f.write_str("the primaries' eviction policies differ:")?;
                for (addr, p) in policies {
                    write!(f, " {addr}={p}")?;
                }
                Ok(())
            }
            Self::Unread { reason } => write!(f, "the primaries' eviction setup could not be read: {reason}"),
            Self::Unknown { addr, reason } => {
                write!(f, "the eviction setup of primary {addr} is not known: {reason}")
            }
        }
    }
}

/// Every primary's eviction setup, as read when the provider connected.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct EvictionReport {
    /// Each primary the client knew, in its order.
    pub primaries: Vec<PrimaryEviction>,
    /// Why no primary could be asked at all (the request failed as a whole: no topology within
    /// the budget, a timeout); `primaries` is then empty.
    pub error: Option<CacheError>,
}

impl EvictionReport {
    /// A report of no primary yet.
    #[must_use]
    pub const fn empty() -> Self {
        Self { primaries: Vec::new(), error: None }
    }

    /// The classes found, each once, in [`EvictionClass`] order ([`EvictionClass::Unknown`]
    /// when no primary could be asked).
    #[must_use]
    pub fn classes(&self) -> Vec<EvictionClass> {
        let mut out: Vec<EvictionClass> = self.primaries.iter().map(|p| p.class).collect();
        if self.error.is_some() {
            out.push(EvictionClass::Unknown);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// What deserves a warning: each `volatile-*` or `noeviction` primary with a limit, each
    /// primary not known, and policies that differ between primaries.
    #[must_use]
    pub fn warnings(&self) -> Vec<EvictionWarning> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(EvictionWarning::Unread { reason: e.to_string() });
        }
        for p in &self.primaries {
            match (p.class, &p.policy) {
                (EvictionClass::Volatile, Some(policy)) => {
                    out.push(EvictionWarning::Volatile { addr: p.addr.clone(), policy: policy.clone() });
                }
                (EvictionClass::NoEviction, _) => {
                    out.push(EvictionWarning::NoEviction { addr: p.addr.clone() })
                }
                (EvictionClass::Unknown, policy) => {
                    let reason = match (&p.error, policy) {
                        (Some(e), _) => e.to_string(),
                        (None, Some(policy)) => {
                            format!("policy {:?} is not one this version knows", policy.name())
                        }
                        (None, None) => "not read".to_owned(),
                    };
                    out.push(EvictionWarning::Unknown { addr: p.addr.clone(), reason });
                }
                _ => {}
            }
        }
        let policies: Vec<(NodeAddr, EvictionPolicy)> =
            self.primaries.iter().filter_map(|p| Some((p.addr.clone(), p.policy.clone()?))).collect();
        if policies.windows(2).any(|w| w[0].1 != w[1].1) {
            out.push(EvictionWarning::Mixed { policies });
        }
        out
    }

    /// Refuses the report if a primary's class is in `refuse`: the first such primary, as
    /// [`CacheError::EvictionRefused`]. With [`EvictionClass::Unknown`] in `refuse`, a primary
    /// that could not be read, or no primary asked at all, is refused too (with the read's
    /// error as the source).
    ///
    /// # Errors
    /// [`CacheError::EvictionRefused`].
    pub fn check(&self, refuse: &[EvictionClass]) -> Result<(), CacheError> {
        if let Some(e) = self.error.as_ref().filter(|_| refuse.contains(&EvictionClass::Unknown)) {
            return Err(CacheError::EvictionRefused {
                addr: String::new(),
                policy: String::new(),
                class: EvictionClass::Unknown,
                cause: Some(Box::new(e.clone())),
            });
        }
        match self.primaries.iter().find(|p| refuse.contains(&p.class)) {
            None => Ok(()),
            Some(p) => Err(CacheError::EvictionRefused {
                addr: p.addr.to_string(),
                policy: p.policy.as_ref().map(ToString::to_string).unwrap_or_default(),
                class: p.class,
                cause: p.error.clone().map(Box::new),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
