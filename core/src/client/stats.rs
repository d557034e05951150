//! Counters the client keeps.

/// Counters since the client was created; see [`Client::stats`](super::Client::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests submitted.
    pub requests: u64,
    /// Requests completed with an error.
    pub failed: u64,
    /// Requests outstanding now.
    pub outstanding: u64,
    /// Connections open or opening now.
    pub connections: u64,
    /// Connections opened (reconnects included).
    pub connects: u64,
    /// Connection attempts that failed or timed out.
    pub connect_failures: u64,
    /// Established connections lost.
    pub disconnects: u64,
    /// `MOVED` replies followed.
    pub moved: u64,
    /// `ASK` replies followed.
    pub ask: u64,
    /// `TRYAGAIN` replies.
    pub tryagain: u64,
    /// `CLUSTERDOWN` replies.
    pub clusterdown: u64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Requests that ran out of time.
    pub timeouts: u64,
    /// Topology refreshes started.
    pub refreshes: u64,
    /// Topology refreshes that succeeded (their topology applied, changed or not).
    pub refresh_successes: u64,
    /// Topology refreshes that failed.
    pub refresh_failures: u64,
    /// Topologies applied that differed from the one before.
    pub topology_changes: u64,
    /// Malformed replies (each closed its connection).
    pub protocol_errors: u64,
    /// Connections closed because a reply no request waited for any more was overdue (see
    /// [`ClientConfig::stall_timeout`](super::ClientConfig::stall_timeout)).
    pub stalled: u64,
}
