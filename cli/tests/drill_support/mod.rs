//! Runs `slotcache drill` as a user would, bounded, and checks that it left no server running.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use slotcache_tests::{procs, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_slotcache");

/// The three clients, as the report names them.
#[allow(dead_code)]
pub(crate) const CLIENTS: [&str; 3] = ["slotcache", "redis-rs 1.8.1", "fred 10.1.0"];

/// Runs `slotcache drill <args> --out <dir>` (a fresh `dir` under the test's temporary directory),
/// waits at most `limit` for it to exit successfully, asserts that no server it started is
/// still running, and returns the output directory and what it printed.
#[allow(dead_code)]
pub(crate) fn run_drill(args: &[&str], dir: &str, limit: Duration) -> (PathBuf, String) {
    let (out, stdout, stderr, ok) = run_drill_status(args, dir, limit);
    assert!(ok, "drill failed:\n{stdout}\n{stderr}");
    (out, stdout)
}

/// [`run_drill`] without requiring success: the output directory, what it printed on standard
/// output and error, and whether it exited successfully (it must exit within `limit` and leave
/// no server either way).
#[allow(dead_code)]
pub(crate) fn run_drill_status(args: &[&str], dir: &str, limit: Duration) -> (PathBuf, String, String, bool) {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let _ = std::fs::remove_dir_all(&out);
    let mut child = Command::new(BIN)
        .arg("drill")
        .args(args)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = wait_until(limit, "slotcache drill to exit", || Ok(child.try_wait()?.is_some()));
    if done.is_err() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(done.is_ok(), "slotcache drill did not exit within {limit:?}:\n{stdout}\n{stderr}");

    // No server of this run is left, whatever the drill did to them.
    let left: Vec<_> = procs::servers(None)
        .into_iter()
        .filter(|s| procs::read_owner(&s.cluster_dir).is_some_and(|(owner, _, _)| owner == pid))
        .collect();
    assert!(left.is_empty(), "servers left running: {left:?}");
    (out, stdout, stderr, output.status.success())
}

/// Asserts that `summary.csv` in `out` has a line for the first run of each drill and client,
/// and that every client served more than 100 requests in it.
#[allow(dead_code)] // not every test that includes this module uses it
pub(crate) fn assert_every_client_served(out: &Path, drills: &[&str]) {
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    for drill in drills {
        for c in CLIENTS {
            let line = summary
                .lines()
                .find(|l| l.starts_with(&format!("{drill},1,{c},")))
                .unwrap_or_else(|| panic!("no summary line for {drill} / {c}:\n{summary}"));
            let ok: u64 = line.split(',').nth(5).unwrap().parse().unwrap();
            assert!(ok > 100, "{c} served only {ok} requests in {drill}: {line}");
        }
    }
}
