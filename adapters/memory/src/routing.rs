//! Whether a node serves a command's keys, or redirects it (`MOVED`, `ASK`, `TRYAGAIN`,
//! `CROSSSLOT`, `CLUSTERDOWN`), as Valkey's `getNodeByQuery` decides. Used for client commands
//! and, with the script's connection flags, for each command a script runs.

use std::collections::BTreeMap;

use bytes::Bytes;
use slotcache_core::{NodeAddr, Slot, Value, key_slot};

/// Why a node does not serve a command here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// Keys of several slots.
    CrossSlot,
    /// Nobody owns the slot.
    Down,
    /// Another node owns the slot.
    Moved(Slot, NodeAddr),
    /// The slot is migrating and the key is not here: ask the target.
    Ask(Slot, NodeAddr),
    /// Multi-key command on a slot half migrated.
    TryAgain,
}

impl Redirect {
    /// The error reply a client sees.
    #[must_use]
    pub fn reply(&self) -> Value {
        let s = match self {
            Self::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".to_owned(),
            Self::Down => "CLUSTERDOWN Hash slot not served".to_owned(),
            Self::Moved(s, a) => format!("MOVED {} {}:{}", s.get(), a.host(), a.port()),
            Self::Ask(s, a) => format!("ASK {} {}:{}", s.get(), a.host(), a.port()),
            Self::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".to_owned(),
        };
        Value::Error(Bytes::from(s))
    }

    /// The error a script's `redis.call` raises instead (Valkey's `scriptVerifyClusterState`).
    #[must_use]
    pub fn script_error(&self, command: &str) -> String {
        match self {
            Self::CrossSlot => format!(
                "ERR Command '{}' in script attempted to access keys that do not hash to the same slot",
                command.to_lowercase()
            ),
            Self::Down => "ERR Script attempted to access a slot not served".to_owned(),
            Self::TryAgain => format!(
                "ERR Unable to execute command '{}' in script because undeclared keys were accessed \
                 during rehashing of the slot",
                command.to_lowercase()
            ),
            Self::Moved(..) | Self::Ask(..) => {
                "ERR Script attempted to access a non local key in a cluster node script".to_owned()
            }
        }
    }
}

/// What a node knows when it routes one command.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Owner of each slot; `None`: this node owns every slot (one node, no cluster).
    pub owner: Option<&'a [Option<NodeAddr>]>,
    /// Slots migrating: slot → (source, target).
    pub migrating: &'a BTreeMap<u16, (NodeAddr, NodeAddr)>,
    /// The node's primary (itself for a primary).
    pub primary: &'a NodeAddr,
    /// The node is a replica.
    pub is_replica: bool,
    /// The connection sent `READONLY`.
    pub readonly: bool,
    /// The connection sent `ASKING` just before.
    pub asking: bool,
}

impl View<'_> {
    /// Checks that this node serves `keys` (non-empty) for a read or a `write`; `exists` tells
    /// whether a key is live here. Returns the keys' slot.
    ///
    /// # Errors
    /// The redirect the node answers instead.
    pub fn check(
        &self,
        keys: &[&[u8]],
        write: bool,
        exists: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Slot, Redirect> {
        let Some(first) = keys.first() else { return Err(Redirect::CrossSlot) };
        let slot = key_slot(first);
        if keys.iter().any(|k| key_slot(k) != slot) {
            return Err(Redirect::CrossSlot);
        }
        let owner = match self.owner {
            Some(table) => table.get(slot.index()).cloned().flatten(),
            None => Some(self.primary.clone()),
        };
        let migration = self.migrating.get(&slot.get());
        let me = self.primary;
        let owned = owner.as_ref() == Some(me) && (!self.is_replica || (self.readonly && !write));
        let importing = migration.is_some_and(|(_, dst)| dst == me) && !self.is_replica && self.asking;
        if !owned && !importing {
            return Err(owner.map_or(Redirect::Down, |o| Redirect::Moved(slot, o)));
        }
        let missing = keys.iter().filter(|k| !exists(k)).count();
        if missing == 0 {
            return Ok(slot);
        }
        if importing {
            // The target, after ASKING: a multi-key command needs all its keys there.
            return if keys.len() > 1 { Err(Redirect::TryAgain) } else { Ok(slot) };
        }
        if let Some((_, dst)) = migration.filter(|(src, _)| src == me) {
            if keys.len() > 1 && missing < keys.len() {
                return Err(Redirect::TryAgain);
            }
            return Err(Redirect::Ask(slot, dst.clone()));
        }
        Ok(slot)
    }
}
