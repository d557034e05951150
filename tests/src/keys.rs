//! Keys that land where a test wants them.

use std::sync::OnceLock;

use slotcache_core::{SLOT_COUNT, key_slot};

/// A short hash tag for every slot: `tag_for_slot(s)` hashes to slot `s`.
#[must_use]
pub fn tag_for_slot(slot: u16) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); usize::from(SLOT_COUNT)];
        let mut missing = tags.len();
        // About 180k CRC16s fill every slot; the bound is generous.
        for n in 0u32..10_000_000 {
            let t = n.to_string();
            let s = key_slot(t.as_bytes()).index();
            if tags[s].is_empty() {
                tags[s] = t;
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        tags
    });
    &tags[usize::from(slot % SLOT_COUNT)]
}

/// A key named after `name` that hashes to `slot`: `{<tag>}:<name>`.
#[must_use]
pub fn key_for_slot(slot: u16, name: &str) -> String {
    format!("{{{}}}:{name}", tag_for_slot(slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_a_tag() {
        for s in [0, 1, 4748, 12182, 16383] {
            assert_eq!(key_slot(key_for_slot(s, "x").as_bytes()).get(), s);
        }
        assert!((0..SLOT_COUNT).all(|s| key_slot(tag_for_slot(s).as_bytes()).get() == s));
    }
}
