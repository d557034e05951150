//! What a near cache may hold and for how long.

use std::time::Duration;

/// The near cache's limits. Build with [`NearConfig::new`], which checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearConfig {
    /// The byte budget of every entry together (keys, values as weighed by the caller, and a
    /// fixed overhead per entry).
    pub max_bytes: usize,
    /// The longest an entry is served after its read was sent, whatever the server's PTTL: during
    /// a partition it is the only bound on staleness.
    pub max_ttl: Duration,
    /// An entry is served only while every node it depends on answered within this time.
    pub health_lease: Duration,
}

/// Why a [`NearConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NearConfigError {
    /// A budget of 0 bytes caches nothing: leave the near cache off instead.
    #[error("the near cache's byte budget is 0: leave the near cache off instead")]
    ZeroBudget,
    /// A max TTL of 0 serves nothing.
    #[error("the near cache's max TTL is 0: it would serve nothing")]
    ZeroMaxTtl,
    /// A health lease of 0 serves nothing.
    #[error("the near cache's health lease is 0: it would serve nothing")]
    ZeroHealthLease,
}

impl NearConfig {
    /// Checked limits.
    ///
    /// # Errors
    /// [`NearConfigError`] when a limit is 0.
    pub const fn new(
        max_bytes: usize,
        max_ttl: Duration,
        health_lease: Duration,
    ) -> Result<Self, NearConfigError> {
        if max_bytes == 0 {
            return Err(NearConfigError::ZeroBudget);
        }
        if max_ttl.is_zero() {
            return Err(NearConfigError::ZeroMaxTtl);
        }
        if health_lease.is_zero() {
            return Err(NearConfigError::ZeroHealthLease);
        }
        Ok(Self { max_bytes, max_ttl, health_lease })
    }
}
