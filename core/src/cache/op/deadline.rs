//! An operation's time budget: every request it sends carries what is left of it.

use core::time::Duration;
use std::time::Instant;

use crate::cache::error::CacheError;
use crate::client::RequestError;

/// An operation's deadline, with its name and budget for the timeout error.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    op: &'static str,
    budget: Duration,
}

impl Deadline {
    /// A deadline `budget` after `now` for operation `op`.
    #[must_use]
    pub fn new(now: Instant, op: &'static str, budget: Duration) -> Self {
        Self { at: now + budget, op, budget }
    }

    /// The instant it passes.
    #[must_use]
    pub const fn at(&self) -> Instant {
        self.at
    }

    /// A deadline for the same operation with the same budget, starting at `now`: for a
    /// clean-up round that must run even once the operation's own budget is spent.
    #[must_use]
    pub fn renewed(&self, now: Instant) -> Self {
        Self::new(now, self.op, self.budget)
    }

    /// The operation's timeout error.
    #[must_use]
    pub fn timeout_error(&self) -> CacheError {
        CacheError::Timeout {
            op: self.op,
            timeout_ms: u64::try_from(self.budget.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Time left, or the operation's timeout error.
    ///
    /// # Errors
    /// The deadline has passed.
    pub fn remaining(&self, now: Instant) -> Result<Duration, CacheError> {
        let left = self.at.saturating_duration_since(now);
        if left.is_zero() { Err(self.timeout_error()) } else { Ok(left) }
    }

    /// A request's error as the operation's: every request carries the operation's remaining
    /// budget as its timeout, so a request that timed out means the operation ran out of time.
    #[must_use]
    pub fn request_error(&self, e: RequestError) -> CacheError {
        match e {
            RequestError::Timeout { .. } => self.timeout_error(),
            e => CacheError::Request(e),
        }
    }
}
