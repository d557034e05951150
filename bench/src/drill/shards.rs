//! The shards as the drill sees them: which slots each one serves (fixed for the whole run:
//! failovers change a shard's nodes, never its slots), and keys pinned to them by hash tag.

use anyhow::{Context as _, bail};
use bytes::Bytes;
use slotcache_core::SLOT_COUNT;
use slotcache_tests::{Cluster, Role, key_for_slot};

use crate::workloads::Rng;

/// The slots of each shard, shard 0 being the one with the lowest slot.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// The shard of every slot.
    slot_shard: Vec<u8>,
    /// Every shard's slots.
    slots: Vec<Vec<u16>>,
}

/// A key of one task, and the shard it lands on.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) name: Bytes,
    pub(crate) shard: u8,
}

impl Layout {
    /// Reads the shards from the cluster's `CLUSTER NODES` (every slot must be served).
    pub(crate) fn read(cluster: &Cluster) -> anyhow::Result<Self> {
        let view = *cluster.live().first().context("no live node")?;
        let mut masters: Vec<Vec<(u16, u16)>> = cluster
            .cluster_nodes(view)?
            .into_iter()
            .filter(|e| e.role() == Role::Master && !e.slots.is_empty())
            .map(|e| e.slots)
            .collect();
        masters.sort_by_key(|ranges| ranges.iter().map(|r| r.0).min());
        if masters.len() > usize::from(u8::MAX) {
            bail!("{} shards: the drill handles at most 255", masters.len());
        }
        let mut slot_shard = vec![u8::MAX; usize::from(SLOT_COUNT)];
        let mut slots = Vec::new();
        for (i, ranges) in masters.iter().enumerate() {
            let mut mine = Vec::new();
            for &(lo, hi) in ranges {
                for s in lo..=hi {
                    slot_shard[usize::from(s)] = i as u8;
                    mine.push(s);
                }
            }
            slots.push(mine);
        }
        if let Some(s) = slot_shard.iter().position(|&x| x == u8::MAX) {
            bail!("slot {s} is not served");
        }
        Ok(Self { slot_shard, slots })
    }

    /// How many shards.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The first slot of shard `s` (to ask who serves it now).
    pub(crate) fn first_slot(&self, s: usize) -> u16 {
        self.slots[s][0]
    }

    /// Shard `s`'s slots as one range, if they are contiguous.
    pub(crate) fn range(&self, s: usize) -> Option<(u16, u16)> {
        let v = &self.slots[s];
        let (lo, hi) = (*v.first()?, *v.last()?);
        (usize::from(hi - lo) + 1 == v.len()).then_some((lo, hi))
    }

    /// `n` keys named after `prefix`: all on shard `pin`, or with `None` on random slots of
    /// every shard. Each on a slot of its own (drawn at random).
    pub(crate) fn keys(&self, prefix: &str, pin: Option<usize>, n: usize, rng: &mut Rng) -> Vec<Key> {
        (0..n)
            .map(|k| {
                let slot = match pin {
                    Some(s) => self.slots[s][rng.below(self.slots[s].len())],
                    None => rng.below(usize::from(SLOT_COUNT)) as u16,
                };
                let name = key_for_slot(slot, &format!("{prefix}:{k}"));
                Key { name: Bytes::from(name), shard: self.slot_shard[usize::from(slot)] }
            })
            .collect()
    }

    /// The master serving shard `s` now, and its first live replica.
    pub(crate) fn primary_and_replica(&self, cluster: &Cluster, s: usize) -> anyhow::Result<(usize, usize)> {
        let m =
            cluster.slot_owner(self.first_slot(s))?.with_context(|| format!("shard {s} has no master"))?;
        let r = *cluster
            .replicas_of(m)?
            .first()
            .with_context(|| format!("shard {s} (node {m}) has no replica"))?;
        Ok((m, r))
    }
}
