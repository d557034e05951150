//! Bounded polling: every wait in the harness is a condition checked until a deadline.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `check` every [`POLL`] until it returns `Ok(true)`, for at most `timeout`.
///
/// Returns the time it took. An `Err` from `check` counts as "not yet" (nodes may be
/// restarting); the last one is reported if the deadline passes. `what` names the condition in
/// the timeout error.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let last_err = match check() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => None,
            Err(e) => Some(e),
        };
        if start.elapsed() >= timeout {
            let mut msg = format!("timed out after {timeout:?} waiting for {what}");
            if let Some(e) = last_err {
                msg.push_str(&format!(" (last error: {e})"));
            }
            return Err(Error::new(msg));
        }
        std::thread::sleep(POLL);
    }
}

/// A multiplier for every harness timeout, from `SLOTCACHE_TIMEOUT_SCALE` (default 1; use 2 or
/// 3 on a slow or busy machine).
pub fn scaled(d: Duration) -> Duration {
    static SCALE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let s = *SCALE.get_or_init(|| {
        std::env::var("SLOTCACHE_TIMEOUT_SCALE")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 1.0)
            .unwrap_or(1.0)
    });
    d.mul_f64(s)
}
