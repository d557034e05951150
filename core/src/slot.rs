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

/// The hash slot of `key`.
#[must_use]
pub fn key_slot(key: &[u8]) -> Slot {
    let crc = crc16::State::<crc16::XMODEM>::calculate(hash_tag(key));
    Slot(crc & (SLOT_COUNT - 1))
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

    #[test]
    fn slot_bounds() {
        assert!(Slot::new(16383).is_some());
        assert!(Slot::new(16384).is_none());
    }
}
