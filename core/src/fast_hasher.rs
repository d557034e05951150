//! A fast hasher for the client's internal maps.
//!
//! Their keys are node addresses (from the cluster's own topology) and our own ids: nothing an
//! outsider chooses, so the flooding resistance of the standard `SipHash` buys nothing there,
//! and the maps sit on the path of every request. This is the multiply-rotate scheme of
//! `FxHash`, with a final rotation so that the well-mixed high bits land where the table
//! takes its bucket index.

use core::hash::{BuildHasherDefault, Hasher};

/// Builds [`FastHasher`]s: `HashMap<K, V, Fast>`.
pub(crate) type Fast = BuildHasherDefault<FastHasher>;

const K: u64 = 0xf135_7aea_2e62_a9c5;

/// Multiply-rotate hasher; see the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use core::hash::BuildHasher as _;
    use std::collections::HashSet;

    use super::*;
    use crate::node_addr::NodeAddr;

    #[test]
    fn distinct_addresses_and_ids_hash_apart() {
        let b = Fast::default();
        let addrs: HashSet<u64> = (0..2000u16)
            .map(|p| b.hash_one(NodeAddr::new("10.0.0.1", 7000 + p)))
            .chain((0..50).map(|i| b.hash_one(NodeAddr::new(format!("node-{i}.example"), 6379))))
            .collect();
        assert_eq!(addrs.len(), 2050);
        // Sequential ids spread over the low bits (the bucket index).
        let low: HashSet<u64> = (0..1024u64).map(|i| b.hash_one(i) & 1023).collect();
        assert!(low.len() > 600, "only {} of 1024 buckets used", low.len());
        assert_ne!(b.hash_one("a"), b.hash_one("a\0"));
    }
}
