//! Nothing is left running: not after a panicking test, not after a test process killed with
//! SIGKILL (its leftovers are reaped by the next harness start, found by the harness's own pid
//! files).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use slotcache_tests::{ClusterBuilder, procs, wait_until};

/// Every cluster start reaps leftovers under this workspace's cluster folder: the tests of this
/// file take turns so another test's start cannot reap the leftovers one test is watching.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_panicking_test_leaves_no_server_running() {
    let _serial = serial();
    let mut seen: Option<(Vec<u32>, PathBuf)> = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let c = ClusterBuilder::new().masters(1).replicas(1).label("panics").start().unwrap();
        let pids = c.pids();
        assert_eq!(pids.len(), 2);
        assert!(pids.iter().all(|&p| procs::is_our_server(p, c.dir())));
        seen = Some((pids, c.dir().to_path_buf()));
        // A panic that skips the panic hook (no backtrace noise); Drop runs during the unwind.
        std::panic::resume_unwind(Box::new("deliberate panic with a running cluster"));
    }));
    assert!(result.is_err());
    let (pids, dir) = seen.unwrap();
    for p in &pids {
        assert!(!procs::alive(*p), "server {p} still alive after the panic");
    }
    // The folder is kept for a post-mortem, marked as such, with the logs.
    assert!(dir.join(procs::KEPT_FILE).is_file());
    assert!(dir.join("node-0").join("server.log").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Not a test on its own: the body of the child process of
/// `a_killed_test_process_is_reaped_by_the_next_start`.
#[test]
#[ignore = "runs only as the child process of another test"]
fn leftover_child() {
    if std::env::var_os("SLOTCACHE_LEFTOVER_CHILD").is_none() {
        return;
    }
    let c = ClusterBuilder::new().masters(1).replicas(1).label("leftover").start().unwrap();
    println!("\nLEFTOVER-READY {}", c.dir().display());
    // Block until the parent kills us (or closes our stdin by going away).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn a_killed_test_process_is_reaped_by_the_next_start() {
    let _serial = serial();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["leftover_child", "--exact", "--ignored", "--nocapture", "--test-threads", "1"])
        .env("SLOTCACHE_LEFTOVER_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, dir)) = line.split_once("LEFTOVER-READY ") {
                let _ = tx.send(PathBuf::from(dir));
            }
        }
    });
    let dir = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(dir) => dir,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child never formed its cluster: {e}");
        }
    };
    let pids = procs::recorded_pids(&dir);
    assert_eq!(pids.len(), 2, "pid files in {}", dir.display());
    assert!(pids.iter().all(|&p| procs::is_our_server(p, &dir)));

    // SIGKILL: no Drop runs, the servers are orphaned.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!procs::owner_alive(&dir));
    assert!(pids.iter().all(|&p| procs::alive(p)), "the servers outlive their killed parent");
    let running = procs::running_servers(None);
    assert!(pids.iter().all(|p| running.iter().any(|(q, _)| q == p)));

    // The next harness start stops them (SIGTERM, then SIGKILL) and removes their folder.
    let c = ClusterBuilder::new().masters(1).replicas(0).label("after-leftover").start().unwrap();
    wait_until(Duration::from_secs(10), "leftover servers to be gone", || {
        Ok(pids.iter().all(|&p| !procs::alive(p)))
    })
    .unwrap();
    assert!(!dir.exists(), "{} removed", dir.display());
    let running = procs::running_servers(None);
    assert!(pids.iter().all(|p| running.iter().all(|(q, _)| q != p)));
    // The new cluster's own servers are ours and alive.
    assert!(c.pids().iter().all(|&p| procs::is_our_server(p, c.dir())));
}
