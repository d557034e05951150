//! `slotcache dev up | down | check`: a local cluster for development.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use slotcache_tests::{ClusterBuilder, install, paths, procs, wait_until};

/// Label of clusters started by `dev up` (so `dev down` can find them).
pub(crate) const DEV_LABEL: &str = "dev";

pub(crate) fn up(masters: usize, replicas: usize, node_timeout_ms: u64) -> Result<ExitCode> {
    if masters == 0 {
        bail!("--masters must be at least 1");
    }
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("installing the Ctrl-C / SIGTERM handler")?;

    let binary = install::valkey_server().context("getting valkey-server (set VALKEY_SERVER to skip)")?;
    println!(
        "valkey-server: {} ({})",
        binary.display(),
        install::server_version(&binary).unwrap_or_default()
    );
    println!(
        "starting {masters} master(s) with {replicas} replica(s) each, node timeout {node_timeout_ms} ms ..."
    );
    let t0 = Instant::now();
    let cluster = ClusterBuilder::new()
        .masters(masters)
        .replicas(replicas)
        .node_timeout(Duration::from_millis(node_timeout_ms))
        .label(DEV_LABEL)
        .without_permit()
        .start()
        .context("starting the cluster")?;
    println!("ready in {:.2} s", t0.elapsed().as_secs_f64());
    for n in cluster.nodes() {
        let role = cluster.role(n.index()).map(|r| format!("{r:?}").to_lowercase()).unwrap_or_default();
        println!(
            "  {:<16} {:<8} pid {:<8} id {}",
            n.addr().to_string(),
            role,
            n.pid().unwrap_or(0),
            &n.id()[..8]
        );
    }
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    println!("seeds: {}", seeds.join(","));
    println!("folder: {}", cluster.dir().display());
    println!("try:   slotcache slot foo bar --seeds {}", seeds[0]);
    println!("       slotcache demo --seeds {}", seeds.join(","));
    println!("stop with Ctrl-C (or `slotcache dev down` from another terminal)");
    // Stay in the foreground until a signal arrives.
    let _ = rx.recv();
    println!("stopping ...");
    let mut cluster = cluster;
    let took = cluster.stop_all();
    drop(cluster);
    println!("stopped every node in {:.2} s", took.as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn down() -> Result<ExitCode> {
    let root = paths::clusters_root();
    let mut stopped_any = false;
    // A `dev up` still in the foreground: ask it to stop (it cleans up after itself).
    for dir in std::fs::read_dir(&root).into_iter().flatten().filter_map(|e| e.ok()).map(|e| e.path()) {
        let Some((pid, _, label)) = procs::read_owner(&dir) else { continue };
        if label != DEV_LABEL || !procs::owner_alive(&dir) {
            continue;
        }
        let is_dev_up = procs::cmdline(pid).is_some_and(|c| c.contains("dev") && c.contains("up"));
        if !is_dev_up {
            continue;
        }
        println!("asking `slotcache dev up` (pid {pid}) to stop its cluster {}", dir.display());
        procs::terminate(pid)?;
        wait_until(Duration::from_secs(20), "dev up to exit", || Ok(!procs::alive(pid)))
            .with_context(|| format!("pid {pid} did not exit"))?;
        stopped_any = true;
    }
    // Anything whose owner is gone (a killed `dev up`, a killed test run).
    for r in procs::reap_leftovers(&root)? {
        println!("stopped leftover servers {:?} of {}", r.stopped, r.dir.display());
        stopped_any = true;
    }
    if !stopped_any {
        println!("nothing to stop under {}", root.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn check() -> Result<ExitCode> {
    let servers = procs::servers(None);
    let mut leftovers = 0;
    for s in &servers {
        let status = if s.owner_alive {
            format!("owned by a live process ({})", if s.label.is_empty() { "?" } else { &s.label })
        } else {
            leftovers += 1;
            "LEFTOVER: its owner is gone".to_owned()
        };
        println!("pid {:<8} {}  {status}", s.pid, s.cluster_dir.display());
    }
    if leftovers > 0 {
        println!("{leftovers} leftover server(s): stop them with `slotcache dev down`");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "no leftover server under {} ({} owned by live processes)",
        paths::clusters_root().display(),
        servers.len()
    );
    Ok(ExitCode::SUCCESS)
}
