//! Step 3: a write through the wrong node follows `MOVED` to the owner; then it is read back,
//! from the owner and from its replica.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use slotcache_core::key_slot;
use slotcache_tests::{Conn, resp, wait_until};

use super::{Ctx, out};

pub(super) const GREETING: &str = "hello from slotcache";

pub(super) fn run(ctx: &mut Ctx) -> Result<()> {
    out::step(3, "routing: write through the wrong node, follow MOVED, read back");
    let key = ctx.greeting_key.clone();
    let slot = key_slot(key.as_bytes()).get();
    let owner = ctx.topology.owner(slot).context("no master serves the demo key's slot")?;
    let wrong = ctx
        .topology
        .layout()
        .into_iter()
        .map(|(_, m, _)| m)
        .find(|m| *m != owner)
        .unwrap_or_else(|| owner.clone());
    out::note(&format!("{key:?} hashes to slot {slot}, owned by {owner}; sending it to {wrong}"));

    let set = ["SET", key.as_str(), GREETING];
    let (reply, hops) = ctx.client.exec_via(&wrong, &set).context("SET through the wrong node")?;
    for h in &hops {
        out::hop(&h.addr.to_string(), &set.join(" "), &resp::display(&h.reply));
    }
    if reply.as_str() != Some("OK") {
        bail!("SET failed: {}", resp::display(&reply));
    }
    if hops.len() > 1 {
        out::good(&format!("followed {} redirect(s) to the owner", hops.len() - 1));
    }
    let get = ["GET", key.as_str()];
    let (reply, hops) = ctx.client.exec_via(&owner, &get)?;
    let last = hops.last().map(|h| h.addr.to_string()).unwrap_or_default();
    out::hop(&last, &get.join(" "), &resp::display(&reply));
    if reply.as_str() != Some(GREETING) {
        bail!("read back {} instead of {GREETING:?}", resp::display(&reply));
    }

    // The owner's replica has it too (replication is asynchronous: wait for it, bounded).
    let shard = ctx.topology.shard_of(slot).context("no shard")?;
    let replica = shard
        .nodes
        .iter()
        .filter(|n| n.role == slotcache_tests::Role::Replica && n.health == "online")
        .find_map(crate::seeds::node_addr);
    if let Some(replica) = replica {
        let mut c = Conn::connect(&replica)?;
        c.cmd_ok(["READONLY"])?;
        let took = wait_until(Duration::from_secs(5), "the replica to have the key", || {
            Ok(c.cmd(get)?.as_str() == Some(GREETING))
        })?;
        out::hop(&replica.to_string(), "READONLY; GET slotcache-demo:greeting", &format!("{GREETING:?}"));
        out::good(&format!("replica {replica} had the value within {:.0} ms", took.as_secs_f64() * 1000.0));
    }
    Ok(())
}
