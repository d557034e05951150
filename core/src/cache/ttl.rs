//! Time to live: one meaning for every write path, checked before anything is sent.
//!
//! TTLs are milliseconds everywhere (`PX`, `PEXPIRE`, `PTTL`); the reference mixes seconds
//! and milliseconds and sends zero or sub-second values that the server rejects or that delete
//! the key (spec sections 3.4 and 15.6). Here:
//!
//! - [`Ttl::Default`] is the namespace's default TTL (the provider's `default_ttl`, 1 h);
//! - [`Ttl::After`] must be at least 1 ms; a zero duration is refused with
//!   [`CacheError::InvalidTtl`] (an entry that expires as it is written is a caller bug), and
//!   sub-millisecond parts are rounded **up** to the next millisecond, never down to zero;
//! - [`Ttl::Never`] stores without expiry.

use core::time::Duration;

use super::error::CacheError;

/// How long an entry lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ttl {
    /// The namespace's default TTL.
    #[default]
    Default,
    /// This long (at least 1 ms).
    After(Duration),
    /// No expiry.
    Never,
}

impl From<Duration> for Ttl {
    fn from(d: Duration) -> Self {
        Self::After(d)
    }
}

/// Whole milliseconds of `d`, rounded up; `None` for zero.
fn millis_up(d: Duration) -> Option<u64> {
    if d.is_zero() {
        return None;
    }
    let ms = d.as_nanos().div_ceil(1_000_000);
    Some(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Checks a default TTL from configuration.
///
/// # Errors
/// [`CacheError::InvalidTtl`] for zero.
pub fn check_default(d: Duration) -> Result<u64, CacheError> {
    millis_up(d).ok_or(CacheError::InvalidTtl { reason: "the default TTL must be positive" })
}

/// The milliseconds of a new lifetime for an existing entry (`set_expires_after`): as
/// [`Ttl::After`], rounded up.
///
/// # Errors
/// [`CacheError::InvalidTtl`] for zero.
pub fn lifetime_ms(d: Duration) -> Result<u64, CacheError> {
    millis_up(d)
        .ok_or(CacheError::InvalidTtl { reason: "a TTL of zero would expire the entry as it is written" })
}

impl Ttl {
    /// Milliseconds to send with `PX`, `None` for no expiry.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for `After(0)`.
    pub fn resolve(self, default_ms: u64) -> Result<Option<u64>, CacheError> {
        match self {
            Self::Default => Ok(Some(default_ms)),
            Self::Never => Ok(None),
            Self::After(d) => lifetime_ms(d).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_meaning() {
        assert_eq!(Ttl::Default.resolve(3_600_000), Ok(Some(3_600_000)));
        assert_eq!(Ttl::Never.resolve(5), Ok(None));
        assert_eq!(Ttl::After(Duration::from_millis(250)).resolve(5), Ok(Some(250)));
        assert_eq!(Ttl::After(Duration::from_micros(1)).resolve(5), Ok(Some(1)), "rounded up, never to 0");
        assert_eq!(Ttl::After(Duration::from_micros(1500)).resolve(5), Ok(Some(2)));
        assert!(matches!(Ttl::After(Duration::ZERO).resolve(5), Err(CacheError::InvalidTtl { .. })));
        assert!(check_default(Duration::ZERO).is_err());
        assert_eq!(check_default(Duration::from_secs(3600)), Ok(3_600_000));
        assert_eq!(lifetime_ms(Duration::from_micros(1500)), Ok(2));
        assert!(matches!(lifetime_ms(Duration::ZERO), Err(CacheError::InvalidTtl { .. })));
    }
}
