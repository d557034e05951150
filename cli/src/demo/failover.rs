//! Step 4: kill a master under traffic (SIGKILL). The client keeps serving the healthy shards,
//! follows the promoted replica, and no read ever returns a wrong value. Only on a cluster the
//! demo started itself.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use slotcache_tests::DRILL_TIMEOUT;

use super::cache::{User, user};
use super::{Ctx, out};

/// How long traffic keeps running after the promotion.
const AFTER: Duration = Duration::from_millis(1500);
/// How long after the promotion a read on the killed shard may still fail: the client learns
/// of the promotion from a MOVED or its next topology refresh (at most ~100 ms apart).
const SETTLE: Duration = Duration::from_secs(1);

/// What the readers saw.
#[derive(Default)]
struct Seen {
    /// Reads that returned the key's value.
    served: u64,
    /// Reads that found nothing: every key was written (1 h TTL) and replicated before the kill,
    /// so a miss is a lost value.
    missed: u64,
    /// Reads that returned another value.
    wrong: u64,
    /// Failed reads: when they ended (ms from the start) and whether the key is on the killed
    /// shard.
    failures: Vec<(u64, bool)>,
}

pub(super) fn run(ctx: &mut Ctx) -> Result<()> {
    out::step(4, "failover under traffic: kill a master, keep serving");
    let Some(cluster) = ctx.cluster.as_mut() else {
        out::note("skipped: the demo only kills nodes of a cluster it started itself (no --seeds)");
        return Ok(());
    };
    let provider = ctx.provider.clone().context("the cache step did not run")?;
    let rt = ctx.rt.clone();
    let users =
        rt.block_on(async { provider.create_namespace::<String, User>("demo-users", Default::default()) })?;
    let keys: Vec<String> = (0..200).map(|i| format!("traffic:{i}")).collect();
    rt.block_on(async {
        let items: Vec<(String, User)> = keys.iter().enumerate().map(|(i, k)| (k.clone(), user(i))).collect();
        users.bulk_set(&items, &[]).await
    })?;
    let victim_key = format!("demo-users:{}", keys[0]);
    let owner = cluster.owner_of_key(victim_key.as_bytes())?;
    let replica = *cluster.replicas_of(owner)?.first().context("the owner has no replica")?;
    // Every write before the kill reaches the replicas: a miss afterwards is a lost value.
    for m in cluster.masters()? {
        let _ = cluster.cmd(m, ["WAIT", "1", "2000"])?;
    }
    let on_victim: Vec<bool> = keys
        .iter()
        .map(|k| Ok(cluster.owner_of_key(format!("demo-users:{k}").as_bytes())? == owner))
        .collect::<Result<_>>()?;
    let on_victim = Arc::new(on_victim);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let (users, keys, stop, seen, on_victim) =
            (users.clone(), keys.clone(), stop.clone(), seen.clone(), on_victim.clone());
        tasks.push(rt.spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let k = i % keys.len();
                let got = users.get_if_present(&keys[k]).await;
                let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match got {
                    Ok(Some(v)) if v == user(k) => seen.served += 1,
                    Ok(Some(_)) => seen.wrong += 1,
                    Ok(None) => seen.missed += 1,
                    Err(_) => seen.failures.push((t0.elapsed().as_millis() as u64, on_victim[k])),
                }
                i += 8;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let dead = cluster.node(owner).addr();
    let killed_at = t0.elapsed();
    out::note(&format!("traffic running (8 tasks); SIGKILL master {dead} at t+{}", out::secs(killed_at)));
    cluster.kill(owner)?;
    cluster.wait_promoted(replica, DRILL_TIMEOUT)?;
    let promoted_at = t0.elapsed();
    let promoted = promoted_at - killed_at;
    out::good(&format!("{} promoted {} after the kill", cluster.node(replica).addr(), out::secs(promoted)));
    std::thread::sleep(AFTER);
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let Seen { served, missed, wrong, failures } = seen;
    // The window is fixed by the drill, not by the failures: from the kill until SETTLE after
    // the promotion, and only on the killed shard. A failure elsewhere is counted as such.
    let (from, until) = (killed_at.as_millis() as u64, (promoted_at + SETTLE).as_millis() as u64);
    let inside = |&&(at, victim): &&(u64, bool)| victim && (from..=until).contains(&at);
    let outside = failures.iter().filter(|f| !inside(f)).count();
    let failed = failures.len();
    let after_kill = |at: u64| Duration::from_millis(at.saturating_sub(from));
    let span = match (failures.iter().map(|f| f.0).min(), failures.iter().map(|f| f.0).max()) {
        (Some(a), Some(b)) => {
            format!("from +{} to +{} after the kill", out::secs(after_kill(a)), out::secs(after_kill(b)))
        }
        _ => "none".to_owned(),
    };
    let stats = rt.block_on(provider.client().stats())?;
    out::good(&format!(
        "{served} reads served the right value, {missed} missed, {wrong} wrong values, {failed} failed \
         ({span}; {outside} outside the killed shard's window: kill to {} after the promotion)",
        out::secs(SETTLE)
    ));
    out::note(&format!(
        "client: {} MOVED followed, {} topology refreshes, {} reconnects, {} retries",
        stats.moved, stats.refreshes, stats.connects, stats.retries
    ));
    if wrong > 0 {
        bail!("{wrong} reads returned a wrong value");
    }
    if missed > 0 {
        bail!("{missed} reads missed a value written and replicated before the kill");
    }
    if outside > 0 {
        bail!(
            "{outside} reads failed outside the failover window (on a healthy shard, before the kill, \
             or more than {} after the promotion)",
            out::secs(SETTLE)
        );
    }
    let v = rt.block_on(users.get_if_present(&keys[0]))?;
    if v != Some(user(0)) {
        bail!("the value did not survive the failover: {v:?}");
    }
    out::good("the killed shard serves again, and its value survived");
    ctx.summary.push(("failover: replica promoted after kill".to_owned(), out::secs(promoted)));
    ctx.summary.push((
        "failover: served / missed / failed / wrong".to_owned(),
        format!("{served} / {missed} / {failed} / {wrong}"),
    ));
    ctx.summary.push(("failover: failed reads, after the kill".to_owned(), span));
    Ok(())
}
