//! The eviction policies and what each means for the cache ([`EvictionClass`]), apart from the
//! report ([`crate::cache::eviction`]) so that the cache's error type can name a class.

use core::fmt;

/// A primary's `maxmemory-policy`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionPolicy {
    /// `noeviction`.
    NoEviction,
    /// `allkeys-lru`.
    AllKeysLru,
    /// `allkeys-lfu`.
    AllKeysLfu,
    /// `allkeys-random`.
    AllKeysRandom,
    /// `volatile-lru`.
    VolatileLru,
    /// `volatile-lfu`.
    VolatileLfu,
    /// `volatile-random`.
    VolatileRandom,
    /// `volatile-ttl`.
    VolatileTtl,
    /// A policy this version does not know, as the server named it.
    Other(String),
}

impl EvictionPolicy {
    /// The policy named `name` (as `CONFIG GET` and `INFO` write it; case-insensitive).
    #[must_use]
    pub fn parse(name: &str) -> Self {
        match name.trim().to_ascii_lowercase().as_str() {
            "noeviction" => Self::NoEviction,
            "allkeys-lru" => Self::AllKeysLru,
            "allkeys-lfu" => Self::AllKeysLfu,
            "allkeys-random" => Self::AllKeysRandom,
            "volatile-lru" => Self::VolatileLru,
            "volatile-lfu" => Self::VolatileLfu,
            "volatile-random" => Self::VolatileRandom,
            "volatile-ttl" => Self::VolatileTtl,
            _ => Self::Other(name.trim().to_owned()),
        }
    }

    /// The server's name of the policy.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::NoEviction => "noeviction",
            Self::AllKeysLru => "allkeys-lru",
            Self::AllKeysLfu => "allkeys-lfu",
            Self::AllKeysRandom => "allkeys-random",
            Self::VolatileLru => "volatile-lru",
            Self::VolatileLfu => "volatile-lfu",
            Self::VolatileRandom => "volatile-random",
            Self::VolatileTtl => "volatile-ttl",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a primary's eviction setup means for the cache (see the module's docs).
///
/// In configuration files and URLs: `"unlimited"`, `"allkeys"`, `"volatile"`, `"noeviction"`,
/// `"unknown"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EvictionClass {
    /// `maxmemory 0`: no limit, nothing is evicted; memory grows with the data.
    Unlimited,
    /// An `allkeys-*` policy with a limit: any key may be evicted. Every guarantee holds; only
    /// invalidation counts can be lower (an evicted entry is not counted).
    AllKeys,
    /// A `volatile-*` policy with a limit: keys without a TTL are never evicted, so entries
    /// stored with `Ttl::Never` and their tag keys can fill memory, and writes then fail with
    /// `OOM`.
    Volatile,
    /// `noeviction` with a limit: writes fail with `OOM` once memory is full; reads go on.
    NoEviction,
    /// Not known: neither `CONFIG GET` nor `INFO memory` could be read, or the policy is one
    /// this version does not know.
    Unknown,
}

impl EvictionClass {
    /// Every class.
    pub const ALL: [Self; 5] =
        [Self::Unlimited, Self::AllKeys, Self::Volatile, Self::NoEviction, Self::Unknown];

    /// The class of `policy` with this `maxmemory` (`0`: no limit).
    #[must_use]
    pub const fn of(policy: &EvictionPolicy, maxmemory: u64) -> Self {
        match policy {
            EvictionPolicy::Other(_) => Self::Unknown,
            _ if maxmemory == 0 => Self::Unlimited,
            EvictionPolicy::NoEviction => Self::NoEviction,
            EvictionPolicy::AllKeysLru | EvictionPolicy::AllKeysLfu | EvictionPolicy::AllKeysRandom => {
                Self::AllKeys
            }
            EvictionPolicy::VolatileLru
            | EvictionPolicy::VolatileLfu
            | EvictionPolicy::VolatileRandom
            | EvictionPolicy::VolatileTtl => Self::Volatile,
        }
    }

    /// The name used in configuration files and URLs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unlimited => "unlimited",
            Self::AllKeys => "allkeys",
            Self::Volatile => "volatile",
            Self::NoEviction => "noeviction",
            Self::Unknown => "unknown",
        }
    }

    /// The class named `name` (see [`EvictionClass::name`]).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for EvictionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `"volatile"`, `"noeviction"`, ... (feature `serde`).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for EvictionClass {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
            serde::de::Error::custom(format!(
                "{s:?} is not an eviction class: use one of {}",
                names.join(", ")
            ))
        })
    }
}
