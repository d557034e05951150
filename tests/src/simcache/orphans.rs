//! The quiescent orphan check (guarantee 2's clean-up, "P2-cleanup"): once a run has healed and
//! every tag has been invalidated once more, no entry of the namespace may still carry a tag's
//! token other than that tag's current one. Such an entry is stale forever (tokens never
//! repeat) and no tag lists it any more: no later invalidation can delete it, and its bytes
//! stay until their TTL (forever without one). Bug A6 (a failed delete round that did not list
//! its survivors again) leaves exactly these.
//!
//! The check reads the simulated primaries directly: every data key of the namespace, its
//! envelope's tags and tokens, and each tag's current token in its sorted set. [`judge`] then
//! sets aside the orphans the protocol knowingly leaves (see `docs/consistency.md`), so that
//! what it reports is a clean-up that failed to stay retryable:
//!
//! - runs that evict (a tag key evicted takes its memberships with it);
//! - entries whose write overlapped an invalidation (by tag, of the key, or of everything): a
//!   write whose `SET` lands after the invalidation's delete round, or whose membership an
//!   invalidation's `ZREM` removes (guarantee 3's race), is stale and unlisted by design;
//! - entries whose data key or tag lives on a shard that failed over with loss after the
//!   write began (the failover may lose the write's membership, or bring back an entry that
//!   was deleted while its tag's list was not);
//! - entries written before an `invalidate_all` (the scan may drop the tag key and miss the
//!   entry) or before a write that failed (its outcome unknown);
//! - entries of a tag one of whose invalidations, running after the write, failed other than
//!   by an error reply (a lost reply may hide a swap whose members the call never saw), or
//!   could not list its survivors again ([`CacheError::CleanupUnlisted`], bounded by the TTL).
//!
//! [`CacheError::CleanupUnlisted`]: slotcache_core::cache::CacheError::CleanupUnlisted

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use slotcache_core::cache::Entry;
use slotcache_core::key_slot;
use slotcache_core::keys::Namespace;

use crate::history::{Op, Record, Violation};
use crate::sim::SimCluster;
use crate::sim::store::Val;

/// An entry left with a stale token that no tag lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    /// The data key.
    pub key: Bytes,
    /// The tag whose token it carries.
    pub tag: Bytes,
    /// The token it carries.
    pub carried: Bytes,
    /// The tag's current token.
    pub current: Bytes,
    /// Whether the tag lists the key.
    pub listed: bool,
    /// The entry's value (the history's unique value: which write stored it).
    pub value: String,
}

impl Orphan {
    /// As a history violation.
    #[must_use]
    pub fn violation(&self) -> Violation {
        Violation {
            property: "P2-cleanup",
            what: format!(
                "after the final invalidation of every tag, {} (value {}) still carries tag {}'s token {} \
                 (current {}, {}): a stale entry no invalidation can delete",
                String::from_utf8_lossy(&self.key),
                self.value,
                String::from_utf8_lossy(&self.tag),
                String::from_utf8_lossy(&self.carried),
                String::from_utf8_lossy(&self.current),
                if self.listed { "still listed" } else { "not listed" },
            ),
            ops: Vec::new(),
        }
    }
}

/// A tag's sorted set on its primary: its current token and its members.
fn tag_state(cluster: &SimCluster, ns: &Namespace, tag: &[u8]) -> Option<(Bytes, Vec<Bytes>)> {
    let key = ns.tag_key(tag).ok()?;
    let owner = cluster.owner_of(key.bytes());
    let now = cluster.now_ms(&owner);
    let entry = cluster.nodes.get(&owner)?.data.peek(key.bytes(), now)?;
    let Val::ZSet(m) = &entry.val else { return None };
    let token = m.keys().find(|k| k.first() == Some(&0)).map(|k| k.slice(1..))?;
    let members = m.keys().filter(|k| k.first() != Some(&0)).cloned().collect();
    Some((token, members))
}

/// Every entry of `ns` on the primaries that carries a tag's token other than its current one
/// (a tag without a token is skipped: its key was lost, which the run's faults can do).
#[must_use]
pub fn find(cluster: &SimCluster, ns: &Namespace) -> Vec<Orphan> {
    let prefix = ns.data_key(b"").bytes().clone();
    let mut tags: BTreeMap<Bytes, Option<(Bytes, Vec<Bytes>)>> = BTreeMap::new();
    let mut out = Vec::new();
    for (addr, node) in &cluster.nodes {
        if node.replica_of.is_some() || !node.up {
            continue;
        }
        let now = cluster.now_ms(addr);
        for key in node.data.keys().filter(|k| k.starts_with(&prefix)) {
            if cluster.owner_of(key) != *addr {
                continue;
            }
            let Some(stored) = node.data.get_str(key, now) else { continue };
            let Ok(entry) = Entry::decode(stored) else { continue };
            for t in &entry.tags {
                let state = tags.entry(t.tag.clone()).or_insert_with(|| tag_state(cluster, ns, &t.tag));
                let Some((current, members)) = state else { continue };
                if *current != t.token {
                    out.push(Orphan {
                        key: key.clone(),
                        tag: t.tag.clone(),
                        carried: t.token.clone(),
                        current: current.clone(),
                        listed: members.contains(key),
                        value: String::from_utf8_lossy(&entry.payload).into_owned(),
                    });
                }
            }
        }
    }
    out
}

/// The error text of the simulation's injected error replies
/// ([`super::faults::Fault::FailNext`]).
pub const INJECTED: &str = "ERR injected failure";

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// A failover that promoted a replica with only what it had applied.
#[derive(Clone, Debug)]
pub struct Lossy {
    /// When (history clock).
    pub at: u64,
    /// The slots of the shard that failed over.
    pub slots: BTreeSet<u16>,
}

/// The orphans the protocol does not excuse, as violations (see the [module docs](self)):
/// `records` is the run's history, `lossy` its lossy failovers.
#[must_use]
pub fn judge(
    ns: &Namespace,
    orphans: &[Orphan],
    records: &[Record],
    lossy: &[Lossy],
    evicting: bool,
) -> Vec<Violation> {
    if evicting {
        return Vec::new();
    }
    let mut out = Vec::new();
    for o in orphans {
        let key = String::from_utf8_lossy(&o.key);
        let Some(w) = records.iter().find(|r| r.op.writes().iter().any(|(_, v)| *v == o.value)) else {
            out.push(o.violation());
            continue;
        };
        let span = (w.invoked, w.completed);
        let excused = records.iter().any(|r| {
            let during = overlaps(span, (r.invoked, r.completed));
            let after = r.completed >= w.invoked;
            match &r.op {
                Op::InvalidateTags { tags } => {
                    let failed_unknown = r
                        .result
                        .as_ref()
                        .err()
                        .is_some_and(|e| !e.contains(INJECTED) || e.contains("could not be listed"));
                    during || (after && failed_unknown && tags.iter().any(|t| t.as_bytes() == o.tag.as_ref()))
                }
                Op::Invalidate { key: k } => during && key.ends_with(k.as_str()),
                Op::InvalidateAll => after,
                op if !op.writes().is_empty() => after && r.result.is_err() && r.invoked <= w.completed,
                _ => false,
            }
        }) || w.result.is_err()
            || lossy.iter().any(|l| {
                let tag_slot = ns.tag_key(&o.tag).map_or(u16::MAX, |k| k.slot().get());
                l.at >= w.invoked
                    && (l.slots.contains(&key_slot(&o.key).get()) || l.slots.contains(&tag_slot))
            });
        if !excused {
            let mut v = o.violation();
            v.ops.push(w.clone());
            out.push(v);
        }
    }
    out
}
