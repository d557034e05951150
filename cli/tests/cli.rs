//! The `slotcache` command end to end: `slot`, `demo` (the main job), `dev up` + SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use slotcache_tests::{procs, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_slotcache");

/// Waits for `child` at most `secs`, killing it on timeout.
fn wait_bounded(mut child: Child, secs: u64) -> Output {
    let done = wait_until(Duration::from_secs(secs), "slotcache to exit", || Ok(child.try_wait()?.is_some()));
    if done.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(done.is_ok(), "slotcache did not exit within {secs} s");
    out
}

#[test]
fn slot_prints_hash_slots() {
    let out = Command::new(BIN).args(["slot", "foo", "bar", "{user1000}.following"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |k: &str| {
        text.lines().find(|l| l.starts_with(k)).unwrap().split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(row("foo"), "12182");
    assert_eq!(row("bar"), "5061");
    assert_eq!(row("{user1000}.following"), slotcache_core::key_slot(b"user1000").to_string());
}

#[test]
fn bad_seed_is_a_clear_error() {
    let out = Command::new(BIN).args(["slot", "foo", "--seeds", "nonsense"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("host:port"));
}

#[test]
fn demo_runs_end_to_end_and_cleans_up() {
    let child = Command::new(BIN).arg("demo").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = wait_bounded(child, 180);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "[1/4]",
        "invalidate_by_tags(\"team:red\") removed 20 entries; 20 of 40 remain",
        "bulk_get of 40 keys",
        "promoted",
        " 0 wrong values",
        "its value survived",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let demo_servers: Vec<_> = procs::servers(None).into_iter().filter(|s| s.label == "demo").collect();
    assert!(demo_servers.iter().all(|s| s.owner_alive), "the demo left servers behind: {demo_servers:?}");
}

#[test]
fn dev_up_stops_its_cluster_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["dev", "up", "--masters", "1", "--replicas", "1", "--node-timeout", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut dir = None;
    let mut seeds = String::new();
    while dir.is_none() {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) else { break };
        if let Some(s) = line.strip_prefix("seeds: ") {
            seeds = s.to_owned();
        }
        dir = line.strip_prefix("folder: ").map(PathBuf::from);
    }
    let Some(dir) = dir else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("dev up never printed its folder");
    };
    assert_eq!(seeds.split(',').count(), 2, "{seeds}");
    let pids = procs::recorded_pids(&dir);
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&p| procs::is_our_server(p, &dir)));

    // `slot --seeds` against it finds owners.
    let out = Command::new(BIN).args(["slot", "foo", "--seeds", &seeds]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(seeds.split(',').next().unwrap()));

    procs::terminate(child.id()).unwrap();
    let out = wait_bounded(child, 30);
    assert!(out.status.success());
    assert!(pids.iter().all(|&p| !procs::alive(p)), "servers stopped on SIGTERM");
    assert!(!dir.exists(), "folder removed");
}
