//! Which deployment the seeds belong to: a cluster, or one standalone node.

/// Which deployment the seeds belong to: a Valkey/Redis Cluster, or one standalone node
/// (a primary and, optionally, its replicas).
///
/// In files and URLs: `"auto"`, `"cluster"`, `"standalone"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Detected from the answering node (the default): a node that answers `CLUSTER SHARDS`
    /// (or `CLUSTER SLOTS`) is a cluster node; one that answers `ERR This instance has cluster
    /// support disabled` is standalone, and its `INFO` gives the primary and the replicas.
    /// Detected on every topology refresh, so it costs one extra round trip per refresh on a
    /// standalone node and nothing on a cluster.
    #[default]
    Auto,
    /// A cluster only: a standalone seed is refused with
    /// [`RequestError::ModeMismatch`](super::RequestError::ModeMismatch).
    Cluster,
    /// A standalone node only: the topology comes from `INFO` (no `CLUSTER` command is sent,
    /// and no `READONLY`); a seed running in cluster mode (`cluster_enabled:1`) is refused with
    /// [`RequestError::ModeMismatch`](super::RequestError::ModeMismatch), since routing every
    /// slot to one node of a cluster would miss the other shards' keys.
    ///
    /// On a standalone node (detected or chosen) every slot belongs to the one primary, so
    /// fan-outs to every primary reach it and nothing is redirected; multi-key commands are
    /// still split per slot, and unsplittable ones still refuse keys of several slots, so the
    /// same code runs on both deployments. `INFO` names no availability zone, so
    /// [`ReadFrom::AzAffinity`](super::ReadFrom::AzAffinity) reads go to the primary; an ACL user denied `INFO` gets the
    /// answering node alone as the topology. Database 0 only.
    Standalone,
}

impl Mode {
    /// The spelling of files and URLs: `auto`, `cluster`, `standalone`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cluster => "cluster",
            Self::Standalone => "standalone",
        }
    }
}

impl core::fmt::Display for Mode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a mode could not be read (see [`Mode`]'s `FromStr`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a mode: use auto, cluster or standalone")]
pub struct ModeError(pub String);

/// `auto`, `cluster` or `standalone` (ASCII case-insensitive).
impl core::str::FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cluster" => Ok(Self::Cluster),
            "standalone" => Ok(Self::Standalone),
            _ => Err(ModeError(s.to_owned())),
        }
    }
}

/// `"auto"`, `"cluster"` or `"standalone"` (feature `serde`).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::de::from_str(d, str::parse::<Self>)
    }
}
