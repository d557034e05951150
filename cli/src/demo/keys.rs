//! Step 2: keys spread over slots, and the node owning each.

use std::collections::BTreeMap;

use anyhow::Result;
use slotcache_core::{hash_tag, key_slot};

use super::{Ctx, out};

pub(super) fn run(ctx: &Ctx, nkeys: usize) -> Result<()> {
    out::step(2, "keys -> hash slots (CRC16 mod 16384) -> owning master");
    let mut keys: Vec<String> = (1..=nkeys).map(|n| format!("user:{n}")).collect();
    keys.push("{user:42}:profile".to_owned());
    keys.push("{user:42}:cart".to_owned());
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    out::note(&format!("{:<20} {:>5}  owner", "key", "slot"));
    for k in &keys {
        let slot = key_slot(k.as_bytes()).get();
        let owner = ctx.topology.owner(slot).map_or_else(|| "(unserved)".to_owned(), |a| a.to_string());
        out::note(&format!("{k:<20} {slot:>5}  {owner}"));
        *per_node.entry(owner).or_default() += 1;
    }
    let spread: Vec<String> = per_node.iter().map(|(n, c)| format!("{n}: {c}")).collect();
    out::good(&format!("{} keys spread over {} masters ({})", keys.len(), per_node.len(), spread.join(", ")));
    out::note(&format!(
        "keys sharing a hash tag share a slot: {{user:42}}:profile and {{user:42}}:cart both hash {:?} -> slot {}",
        String::from_utf8_lossy(hash_tag(b"{user:42}:profile")),
        key_slot(b"{user:42}:cart")
    ));
    Ok(())
}
