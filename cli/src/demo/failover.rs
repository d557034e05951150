//! Step 4: kill a master under traffic (SIGKILL). The client keeps serving the healthy shards,
//! follows the promoted replica, and no read ever returns a wrong value. Only on a cluster the
//! demo started itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use slotcache_tests::DRILL_TIMEOUT;

use super::cache::{User, user};
use super::{Ctx, out};

/// How long traffic keeps running after the promotion.
const AFTER: Duration = Duration::from_secs(1);

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
    let _ = cluster.cmd(owner, ["WAIT", "1", "2000"])?;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, wrong) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_fail = Arc::new(AtomicU64::new(u64::MAX));
    let last_fail = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let (users, keys, stop) = (users.clone(), keys.clone(), stop.clone());
        let (ok, failed, wrong, first_fail, last_fail) =
            (ok.clone(), failed.clone(), wrong.clone(), first_fail.clone(), last_fail.clone());
        tasks.push(rt.spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let k = &keys[i % keys.len()];
                match users.get_if_present(k).await {
                    Ok(Some(v)) if v == user(i % keys.len()) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(None) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(Some(_)) => wrong.fetch_add(1, Ordering::Relaxed),
                    Err(_) => {
                        let at = t0.elapsed().as_millis() as u64;
                        first_fail.fetch_min(at, Ordering::Relaxed);
                        last_fail.fetch_max(at, Ordering::Relaxed);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
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
    let promoted = t0.elapsed() - killed_at;
    out::good(&format!("{} promoted {} after the kill", cluster.node(replica).addr(), out::secs(promoted)));
    std::thread::sleep(AFTER);
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let (ok, failed, wrong) =
        (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), wrong.load(Ordering::Relaxed));
    let window = match (first_fail.load(Ordering::Relaxed), last_fail.load(Ordering::Relaxed)) {
        (u64::MAX, _) => Duration::ZERO,
        (a, b) => Duration::from_millis(b.saturating_sub(a)),
    };
    let stats = rt.block_on(provider.client().stats())?;
    out::good(&format!(
        "{ok} reads served, {failed} failed (all inside a {} window), {wrong} wrong values",
        out::secs(window)
    ));
    out::note(&format!(
        "client: {} MOVED followed, {} topology refreshes, {} reconnects, {} retries",
        stats.moved, stats.refreshes, stats.connects, stats.retries
    ));
    if wrong > 0 {
        bail!("{wrong} reads returned a wrong value");
    }
    let v = rt.block_on(users.get_if_present(&keys[0]))?;
    if v != Some(user(0)) {
        bail!("the value did not survive the failover: {v:?}");
    }
    out::good("the killed shard serves again, and its value survived");
    ctx.summary.push(("failover: replica promoted after kill".to_owned(), out::secs(promoted)));
    ctx.summary
        .push(("failover: reads served / failed / wrong".to_owned(), format!("{ok} / {failed} / {wrong}")));
    ctx.summary.push(("failover: error window".to_owned(), out::secs(window)));
    Ok(())
}
