//! Slot migrations: the legacy flow (`SETSLOT MIGRATING/IMPORTING`, `MIGRATE` key by key, ASK
//! and TRYAGAIN meanwhile) and Valkey 9's atomic `CLUSTER MIGRATESLOTS` (the slot's keys and
//! ownership move at one instant: clients see the value at the source, then `MOVED`, never
//! `ASK`). Moved keys keep their remaining TTL; both sides replicate the move.

use bytes::Bytes;
use slotcache_core::{NodeAddr, Slot, key_slot};

use super::cluster::SimCluster;

impl SimCluster {
    /// Starts migrating `slot` to `target` (legacy `SETSLOT MIGRATING/IMPORTING`).
    pub fn start_migration(&mut self, slot: Slot, target: &NodeAddr) {
        let source = self.owner[slot.index()].clone().expect("slot owned");
        self.migrating.insert(slot.get(), (source, target.clone()));
    }

    /// Moves one key of a migrating slot to the target (`MIGRATE`).
    pub fn migrate_key(&mut self, key: &[u8]) {
        let slot = key_slot(key).get();
        let Some((src, dst)) = self.migrating.get(&slot).cloned() else { return };
        self.move_key(&src, &dst, key);
        self.propagate(&src);
        self.propagate(&dst);
    }

    /// Ends a migration: the target owns the slot (`SETSLOT NODE`), remaining keys move along.
    pub fn finish_migration(&mut self, slot: Slot) {
        let Some((src, dst)) = self.migrating.remove(&slot.get()) else { return };
        self.move_slot_keys(&src, &dst, slot);
        self.owner[slot.index()] = Some(dst);
    }

    /// Valkey 9 atomic slot migration (`CLUSTER MIGRATESLOTS`): at this instant every key of
    /// `slot` moves to `target` and `target` owns the slot; until now the source served the
    /// slot, from now on it answers `MOVED`. No `ASK` is ever answered.
    pub fn migrate_slot_atomic(&mut self, slot: Slot, target: &NodeAddr) {
        let Some(src) = self.owner[slot.index()].clone() else { return };
        if &src == target {
            return;
        }
        self.migrating.remove(&slot.get());
        self.move_slot_keys(&src, target, slot);
        self.owner[slot.index()] = Some(target.clone());
    }

    /// The keys of `slot` on node `a`, expired or not.
    #[must_use]
    pub fn keys_in_slot(&self, a: &NodeAddr, slot: Slot) -> Vec<Bytes> {
        self.nodes
            .get(a)
            .map(|n| n.data.keys().filter(|k| key_slot(k) == slot).cloned().collect())
            .unwrap_or_default()
    }

    fn move_slot_keys(&mut self, src: &NodeAddr, dst: &NodeAddr, slot: Slot) {
        for k in self.keys_in_slot(src, slot) {
            self.move_key(src, dst, &k);
        }
        self.propagate(src);
        self.propagate(dst);
    }

    /// Moves one live key with its remaining TTL (an expired key is just dropped).
    fn move_key(&mut self, src: &NodeAddr, dst: &NodeAddr, key: &[u8]) {
        let (src_now, dst_now) = (self.now_ms(src), self.now_ms(dst));
        let Some(mut e) = self.nodes.get_mut(src).and_then(|n| n.data.remove(key, src_now)) else { return };
        e.expires_at = e.expires_at.map(|t| dst_now + t.saturating_sub(src_now));
        if let Some(n) = self.nodes.get_mut(dst) {
            n.data.insert(Bytes::copy_from_slice(key), e);
        }
    }
}
