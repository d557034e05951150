//! Before the load: every key written with its first value, acknowledged by a replica.

use anyhow::bail;
use slotcache_tests::Cluster;

use super::load;
use super::shards::{Key, Layout};

/// Writes sequence 0 of every key through each shard's primary, and waits until a replica has
/// it: a read that finds nothing is then a wrong value, whatever fails over.
pub(crate) fn preload(cluster: &Cluster, layout: &Layout, keys: &[&Key]) -> anyhow::Result<()> {
    for s in 0..layout.len() {
        let (m, _) = layout.primary_and_replica(cluster, s)?;
        let mut conn = cluster.conn(m)?;
        for k in keys.iter().filter(|k| usize::from(k.shard) == s) {
            let v = load::value(&k.name, 0);
            conn.cmd_ok([b"SET".as_slice(), k.name.as_ref(), v.as_ref()])?;
        }
        let acks = conn.cmd(["WAIT", "1", "5000"])?;
        if acks.as_int() != Some(1) {
            bail!("shard {s}: the replica did not acknowledge the preload ({acks:?})");
        }
    }
    Ok(())
}
