//! Search and query over the search module, on **every** shard.
//!
//! The Redis Stack modules (RediSearch 2.x + RedisJSON) and valkey-search have no coordinator
//! in the builds this project tests with: an index lives on one shard and indexes that shard's
//! documents only, and its name is routed like a key (an `FT.*` command sent to a node that
//! does not own the name's slot is answered `MOVED`). So each primary gets **its own index**,
//! named `<index_prefix><namespace>{<tag>}` where `<tag>` hashes to a slot that primary owns
//! ([`index_tag`], [`index_homes`]); searches go to every distinct primary, addressed to it
//! (see `cache::op::fan_out`), and the pages are merged here ([`reply::merge`]).
//!
//! Pure parts only (sans-IO): the schema and its `FT.CREATE` ([`schema`]), filters and the query
//! string with full escaping ([`query`]), reply parsing and the cluster-wide merge ([`reply`]),
//! and the JSON document an entry is stored as ([`doc`]).

pub mod doc;
pub mod query;
pub mod refusal;
pub mod reply;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use crate::node_addr::NodeAddr;
use crate::slot::{SLOT_COUNT, Slot, key_slot};
use crate::topology::Topology;

pub use query::{Filter, FilterOp, FilterValue, GeoUnit, Knn, SortBy, SortOrder};
pub use reply::{Hit, ShardPage};
pub use schema::{Distance, FieldKind, SearchField, SearchSchema, VectorAlgorithm};

pub use crate::cache::error::SearchError;

/// A short hash tag whose slot is `slot`: `{tag}` in an index name routes it to that slot's
/// owner. The same slot always gives the same tag.
#[must_use]
pub fn index_tag(slot: Slot) -> &'static str {
    static TABLE: OnceLock<Vec<String>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = vec![String::new(); usize::from(SLOT_COUNT)];
        let mut left = t.len();
        // About 170 000 candidates cover every slot; the bound only guards the loop.
        for n in 0u32..4_000_000 {
            let s = n.to_string();
            let i = key_slot(s.as_bytes()).index();
            if t[i].is_empty() {
                t[i] = s;
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        t
    });
    table.get(slot.index()).map_or("", String::as_str)
}

/// The index name for the shard that owns `slot`: `<index_prefix><namespace>{<tag>}`, with
/// the namespace's trailing `:` removed.
#[must_use]
pub fn index_name(index_prefix: &str, data_prefix: &[u8], slot: Slot) -> Vec<u8> {
    let ns = data_prefix.strip_suffix(b":").unwrap_or(data_prefix);
    let mut out = Vec::with_capacity(index_prefix.len() + ns.len() + 8);
    out.extend_from_slice(index_prefix.as_bytes());
    out.extend_from_slice(ns);
    out.push(b'{');
    out.extend_from_slice(index_tag(slot).as_bytes());
    out.push(b'}');
    out
}

/// Where one primary keeps a namespace's index: the primary's address and the slot that
/// names its index (one that primary serves, so the index name is routed to it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexHome {
    /// The slot whose tag names the index ([`index_name`]).
    pub slot: Slot,
    /// The primary that serves `slot` and holds the index.
    pub primary: NodeAddr,
}

/// The indexes' homes in `topology`: one per **distinct primary** (a primary listed by several
/// shards counts once), named by the lowest slot it serves that is not in `avoid` (slots found
/// migrating away), sorted by slot. Primaries that serve no slot (or none outside `avoid`) are
/// left out. Empty only for a topology in which no primary serves a slot.
#[must_use]
pub fn index_homes(topology: &Topology, avoid: &BTreeSet<Slot>) -> Vec<IndexHome> {
    let mut by_primary: BTreeMap<&NodeAddr, Slot> = BTreeMap::new();
    for shard in topology.shards() {
        let Some(lowest) = shard.slots.iter().flat_map(|r| r.slots()).find(|s| !avoid.contains(s)) else {
            continue;
        };
        by_primary.entry(&shard.primary.addr).and_modify(|s| *s = (*s).min(lowest)).or_insert(lowest);
    }
    let mut homes: Vec<IndexHome> =
        by_primary.into_iter().map(|(p, slot)| IndexHome { slot, primary: p.clone() }).collect();
    homes.sort_unstable();
    homes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_a_tag_that_hashes_to_it() {
        for n in 0..SLOT_COUNT {
            let s = Slot::new(n).expect("slot");
            let tag = index_tag(s);
            assert!(!tag.is_empty(), "slot {n}");
            assert_eq!(key_slot(format!("{{{tag}}}").as_bytes()), s);
        }
        let s = Slot::new(7).expect("slot");
        let name = index_name("index:", b"users:", s);
        assert!(name.starts_with(b"index:users{"));
        assert_eq!(key_slot(&name), s);
    }
}
