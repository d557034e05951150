//! Step 4: kill the master that owns the demo key (SIGKILL); its replica takes over and the
//! value is still readable. Only on a cluster the demo started itself.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use slotcache_tests::{DRILL_TIMEOUT, resp};

use super::routing::GREETING;
use super::{Ctx, out};

/// How long the demo keeps trying to read while the shard has no master.
const READ_DEADLINE: Duration = Duration::from_secs(30);

pub(super) fn run(ctx: &mut Ctx) -> Result<()> {
    out::step(4, "failover: kill the owning master, watch its replica take over");
    let Some(cluster) = ctx.cluster.as_mut() else {
        out::note("skipped: the demo only kills nodes of a cluster it started itself (no --seeds)");
        return Ok(());
    };
    let key = ctx.greeting_key.clone();
    let owner = cluster.owner_of_key(key.as_bytes())?;
    let replica = *cluster.replicas_of(owner)?.first().context("the owner has no replica")?;
    // Make sure the replica has every write before the master dies.
    let acked = cluster.cmd(owner, ["WAIT", "1", "2000"])?;
    if acked.as_int() != Some(1) {
        out::warn(&format!("WAIT 1: {} (the replica may lag)", resp::display(&acked)));
    }
    let (dead, heir) = (cluster.node(owner).addr(), cluster.node(replica).addr());
    out::note(&format!(
        "SIGKILL master {dead} (pid {}); its replica {heir} should take over after the node timeout ({} ms)",
        cluster.node(owner).pid().unwrap_or(0),
        cluster.node_timeout().as_millis()
    ));
    let t0 = Instant::now();
    cluster.kill(owner)?;
    // Seeds without the dead node: a client keeps trying the others.
    ctx.client.set_seeds(cluster.seeds());

    let mut failures = 0u32;
    let mut last_error = String::new();
    let first_read = loop {
        match ctx.client.exec(&["GET", key.as_str()]) {
            Ok((v, _)) if v.as_str() == Some(GREETING) => break t0.elapsed(),
            Ok((v, _)) => note_failure(&mut failures, &mut last_error, t0, &resp::display(&v)),
            Err(e) => note_failure(&mut failures, &mut last_error, t0, &e.to_string()),
        }
        if t0.elapsed() > READ_DEADLINE {
            bail!("still no read {READ_DEADLINE:?} after the kill; last error: {last_error}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    cluster.wait_promoted(replica, DRILL_TIMEOUT)?;
    let promoted = t0.elapsed();
    out::good(&format!(
        "{heir} is the master now (promoted and cluster_state:ok everywhere {} after the kill)",
        out::secs(promoted)
    ));
    out::good(&format!(
        "first successful read {} after the kill, {failures} failed attempt(s) while the shard had no master",
        out::secs(first_read)
    ));
    let (v, hops) = ctx.client.exec(&["GET", key.as_str()])?;
    for h in &hops {
        out::hop(&h.addr.to_string(), &format!("GET {key}"), &resp::display(&h.reply));
    }
    if v.as_str() != Some(GREETING) {
        bail!("the value did not survive: {}", resp::display(&v));
    }
    out::good("the value survived the failover");

    let t1 = Instant::now();
    cluster.restart(owner)?;
    cluster.wait_replica_of(owner, replica, DRILL_TIMEOUT)?;
    out::good(&format!(
        "restarted {dead}: it rejoined as a replica of {heir} in {}",
        out::secs(t1.elapsed())
    ));

    ctx.summary.push(("failover: replica promoted after kill".to_owned(), out::secs(promoted)));
    ctx.summary.push(("failover: first successful read".to_owned(), out::secs(first_read)));
    ctx.summary.push(("failover: failed reads meanwhile".to_owned(), failures.to_string()));
    Ok(())
}

fn note_failure(failures: &mut u32, last: &mut String, t0: Instant, what: &str) {
    *failures += 1;
    // Print each new kind of failure once, not every attempt.
    let kind: String = what.split(':').take(2).collect::<Vec<_>>().join(":");
    if kind != *last {
        out::note(&format!("t+{:>5.2} s  read failed: {what}", t0.elapsed().as_secs_f64()));
        last.clone_from(&kind);
    }
}
