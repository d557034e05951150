//! Randomness from the operating system, for tag tokens, lock tokens and nonces.
//!
//! Tokens must be unique across every process sharing a cluster (two processes that drew the
//! same token could make an invalidation miss entries), so they come from the OS, never from a
//! seeded generator.

use bytes::Bytes;

/// Fills `buf` with OS randomness.
pub(crate) fn fill(buf: &mut [u8]) {
    // getrandom only fails where no entropy source exists at all; nothing here can go on then.
    getrandom::fill(buf).expect("the operating system's random source is unavailable");
}

/// A fresh 128-bit token, as 32 lower-case hex digits.
pub(crate) fn token() -> Bytes {
    let mut raw = [0u8; 16];
    fill(&mut raw);
    let mut out = Vec::with_capacity(32);
    for b in raw {
        out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
        out.push(b"0123456789abcdef"[usize::from(b & 15)]);
    }
    Bytes::from(out)
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
    fn tokens_are_hex_and_distinct() {
        let a = super::token();
        let b = super::token();
        assert_eq!(a.len(), 32);
        assert!(a.iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, b);
    }
}
