//! Node addresses as the cluster announces them.

use core::fmt;
use std::sync::Arc;

/// A node's address: a host (IPv4, IPv6 without brackets, or a hostname) and a port.
///
/// Cheap to clone: the host is shared.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    host: Arc<str>,
    port: u16,
}

impl NodeAddr {
    /// An address from a host and a port. An IPv6 host is given without brackets.
    #[must_use]
    pub fn new(host: impl Into<Arc<str>>, port: u16) -> Self {
        Self { host: host.into(), port }
    }

    /// The host: an IP address (IPv6 without brackets) or a hostname.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Parses `host:port`, `[v6]:port` or an unbracketed IPv6 `a:b::c:port` (split at the last
    /// colon, as `MOVED` replies write it). Returns `None` when there is no valid port.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (host, port) = s.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        Some(Self::new(host, port))
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `"host:port"` (feature `serde`).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for NodeAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::de::from_str(d, |s| {
            Self::parse(s)
                .filter(|a| !a.host().is_empty() && a.port() != 0)
                .ok_or_else(|| format!("{s:?} is not host:port"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(NodeAddr::parse("127.0.0.1:7000"), Some(NodeAddr::new("127.0.0.1", 7000)));
        assert_eq!(NodeAddr::parse("::1:7000"), Some(NodeAddr::new("::1", 7000)));
        assert_eq!(NodeAddr::parse("[::1]:7000"), Some(NodeAddr::new("::1", 7000)));
        assert_eq!(NodeAddr::parse("node-1.example:6379"), Some(NodeAddr::new("node-1.example", 6379)));
        assert_eq!(NodeAddr::parse(":7000"), Some(NodeAddr::new("", 7000)));
        assert_eq!(NodeAddr::parse("host"), None);
        assert_eq!(NodeAddr::parse("host:99999"), None);
        assert_eq!(NodeAddr::new("::1", 7000).to_string(), "[::1]:7000");
    }
}
