//! Hash slots: the CRC16 (XMODEM) of a key, or of its hash tag, modulo 16384.
//!
//! The rule is the cluster specification's: if the key contains a `{`, and a `}` follows it,
//! and at least one byte stands between them, only those bytes are hashed. Otherwise the whole
//! key is hashed.

use core::fmt;

/// Number of hash slots in a Valkey Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// A hash slot, always below [`SLOT_COUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(u16);

impl Slot {
    /// The slot with this number, or `None` when `n >= 16384`.
    #[must_use]
    pub const fn new(n: u16) -> Option<Self> {
        if n < SLOT_COUNT { Some(Self(n)) } else { None }
    }

    /// The slot number, `0..16384`.
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The slot number as an index into a 16384-entry table.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The part of `key` that is hashed: the bytes between the first `{` and the first `}` after it
/// when that is non-empty, otherwise the whole key.
#[must_use]
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = find_byte(key, b'{') else { return key };
    let rest = key.get(open + 1..).unwrap_or_default();
    match find_byte(rest, b'}') {
        Some(close) if close > 0 => rest.get(..close).unwrap_or(key),
        _ => key,
    }
}

/// The hash slot of `key`.
#[must_use]
pub fn key_slot(key: &[u8]) -> Slot {
    // One pass for the common key, one with no `{`: each 8-byte word is checked for `{` and then
    // fed to the CRC. The check of a word does not wait for the CRC of the one before (a chain
    // of table lookups), so the CPU overlaps the two and the check comes almost free. At the
    // first `{` the hash tag rules take over from there.
    let mut crc = crc16::State::<crc16::XMODEM>::new();
    let mut words = key.chunks_exact(8);
    let mut base = 0;
    for chunk in words.by_ref() {
        let braces = zero_bytes(word(chunk) ^ BRACE);
        if braces != 0 {
            return tagged_slot(key, base + (braces.trailing_zeros() / 8) as usize);
        }
        crc.update(chunk);
        base += 8;
    }
    let rest = words.remainder();
    if let Some(i) = rest.iter().position(|&b| b == b'{') {
        return tagged_slot(key, base + i);
    }
    crc.update(rest);
    Slot(crc.get() & (SLOT_COUNT - 1))
}

/// `key_slot` for a key whose first `{` is at `open`: the CRC of the hash tag it opens, or of
/// the whole key when it opens none (no `}` after it, or `{}`).
#[inline(never)]
fn tagged_slot(key: &[u8], open: usize) -> Slot {
    let rest = key.get(open + 1..).unwrap_or_default();
    let hashed = match find_byte(rest, b'}') {
        Some(close) if close > 0 => rest.get(..close).unwrap_or(key),
        _ => key,
    };
    Slot(crc16::State::<crc16::XMODEM>::calculate(hashed) & (SLOT_COUNT - 1))
}

/// `{` in every byte of a word.
const BRACE: u64 = u64::from_le_bytes([b'{'; 8]);

/// Eight bytes as a little-endian word (0 for a chunk of another length, which callers never
/// pass).
#[inline]
fn word(chunk: &[u8]) -> u64 {
    chunk.try_into().map_or(0, u64::from_le_bytes)
}

/// The high bit of every zero byte of `w` set (SWAR, "SIMD within a register"): `(w - 0x01..01)
/// & !w & 0x80..80`. Bytes above the first zero byte can also be flagged (the subtraction
/// borrows through it), but never bytes below it, so the lowest flagged byte is exactly the
/// first zero byte; and the result is 0 exactly when no byte is zero.
#[inline]
const fn zero_bytes(w: u64) -> u64 {
    const LO: u64 = u64::from_le_bytes([0x01; 8]);
    const HI: u64 = u64::from_le_bytes([0x80; 8]);
    w.wrapping_sub(LO) & !w & HI
}

/// The index of the first `needle` in `haystack`, eight bytes at a time (XOR with the needle
/// repeated turns matching bytes into zero bytes; see [`zero_bytes`]).
#[inline]
fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    let pattern = u64::from_le_bytes([needle; 8]);
    let mut words = haystack.chunks_exact(8);
    let mut base = 0;
    for chunk in words.by_ref() {
        let zeros = zero_bytes(word(chunk) ^ pattern);
        if zeros != 0 {
            return Some(base + (zeros.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words.remainder().iter().position(|&b| b == needle).map(|i| base + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16::State::<crc16::XMODEM>::calculate(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"123456789").get(), 0x31C3 & 16383);
    }

    #[test]
    fn spec_hash_tag_examples() {
        // From the cluster specification.
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"{}abc"), b"{}abc");
        assert_eq!(hash_tag(b"{"), b"{");
        assert_eq!(hash_tag(b"}{"), b"}{");
        assert_eq!(hash_tag(b""), b"");
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
    }

    #[test]
    fn known_server_slots() {
        // Values answered by CLUSTER KEYSLOT on a real server.
        assert_eq!(key_slot(b"foo").get(), 12182);
        assert_eq!(key_slot(b"bar").get(), 5061);
        assert_eq!(key_slot(b"{t2}").get(), 4748);
        assert_eq!(key_slot(b"index:users").get(), 3625);
    }

    /// The specification's definition, one byte at a time.
    fn naive_hash_tag(key: &[u8]) -> &[u8] {
        if let Some(open) = key.iter().position(|&b| b == b'{') {
            let rest = &key[open + 1..];
            if let Some(close) = rest.iter().position(|&b| b == b'}') {
                if close > 0 {
                    return &rest[..close];
                }
            }
        }
        key
    }

    #[test]
    fn find_byte_at_every_position() {
        // Every length across two words plus a remainder, a needle at every position, with
        // neighbours that stress the borrow (0x00, 0x7a, 0x7c, 0xfb) on either side.
        for len in 0..=20 {
            for fill in [b'a', 0x00, 0x7a, 0x7c, 0xfb, 0xff, b'}'] {
                let plain = vec![fill; len];
                assert_eq!(find_byte(&plain, b'{'), None);
                for at in 0..len {
                    let mut key = plain.clone();
                    key[at] = b'{';
                    assert_eq!(find_byte(&key, b'{'), Some(at), "len {len} fill {fill:#x}");
                    if at + 1 < len {
                        key[at + 1] = b'{';
                        assert_eq!(find_byte(&key, b'{'), Some(at), "two in a row");
                    }
                }
            }
        }
    }

    #[test]
    fn key_slot_with_a_brace_at_every_position() {
        // The one-pass path hands over to the tag rules wherever the `{` is: in a full word or
        // in the remainder, with or without a `}` after it.
        for len in 0..=20 {
            let plain: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let naive = |k: &[u8]| crc16::State::<crc16::XMODEM>::calculate(naive_hash_tag(k)) & 16383;
            assert_eq!(key_slot(&plain).get(), naive(&plain));
            for at in 0..len {
                let mut key = plain.clone();
                key[at] = b'{';
                assert_eq!(key_slot(&key).get(), naive(&key), "len {len}, '{{' at {at}");
                for close in at + 1..len {
                    let mut key = key.clone();
                    key[close] = b'}';
                    assert_eq!(key_slot(&key).get(), naive(&key), "len {len}, '{{' at {at}, '}}' at {close}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Same answer as the byte-at-a-time definition, on keys dense in braces.
        #[test]
        fn hash_tag_matches_naive(key in proptest::collection::vec(
            proptest::prop_oneof![
                3 => proptest::sample::select(vec![b'{', b'}', b'a', 0x7a, 0x7c, 0xfb, 0x00]),
                1 => proptest::num::u8::ANY,
            ],
            0..48,
        )) {
            proptest::prop_assert_eq!(hash_tag(&key), naive_hash_tag(&key));
            let crc = crc16::State::<crc16::XMODEM>::calculate(naive_hash_tag(&key)) & 16383;
            proptest::prop_assert_eq!(key_slot(&key).get(), crc);
        }

        /// Arbitrary bytes of any length up to a few words.
        #[test]
        fn hash_tag_matches_naive_any_bytes(key in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            proptest::prop_assert_eq!(hash_tag(&key), naive_hash_tag(&key));
            let crc = crc16::State::<crc16::XMODEM>::calculate(naive_hash_tag(&key)) & 16383;
            proptest::prop_assert_eq!(key_slot(&key).get(), crc);
        }
    }

    #[test]
    fn slot_bounds() {
        assert!(Slot::new(16383).is_some());
        assert!(Slot::new(16384).is_none());
    }
}
