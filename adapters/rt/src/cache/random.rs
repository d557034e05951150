//! Randomness from the operating system, for tag tokens, lock tokens and nonces ([`fill`] is
//! the entropy source the driver hands the core machines, and the value transformers').
//!
//! Tokens must be unique across every process sharing a cluster (two processes that drew the
//! same token could make an invalidation miss entries), so they come from the OS, never from a
//! seeded generator.

/// Fills `buf` with OS randomness.
pub(crate) fn fill(buf: &mut [u8]) {
    // getrandom only fails where no entropy source exists at all; nothing here can go on then.
    getrandom::fill(buf).expect("the operating system's random source is unavailable");
}

/// A random 64-bit seed (for the core's jitter generator).
pub(crate) fn seed() -> u64 {
    let mut raw = [0u8; 8];
    fill(&mut raw);
    u64::from_le_bytes(raw)
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_randomness_differs_between_draws() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        super::fill(&mut a);
        super::fill(&mut b);
        assert_ne!(a, b);
    }
}
