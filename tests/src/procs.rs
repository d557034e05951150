//! Processes: signals, `/proc` checks, the harness's own pid files, and reaping what a killed
//! test process left behind.
//!
//! Every cluster folder holds an `owner` file (pid and start time of the process that made it)
//! and, per node, `node-*/harness.pid`. A leftover is a cluster folder whose owner is gone; its
//! servers are stopped only if `/proc/<pid>/cmdline` still mentions that folder, so a reused pid
//! is never hit. No process is ever looked up by name.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Result, ResultExt, paths, wait};

/// The settings of every server the harness starts, cluster node or standalone: in the
/// foreground, no persistence, replicas pinged every second (a replica reports a replication
/// offset of 0, "loading" in `CLUSTER SHARDS`, until its master sends it something; the default
/// 10 s period makes that slow), the process title left as the command line (whose directory
/// tells our servers apart: [`is_our_server`]), `DEBUG` from loopback, the log in
/// `dir/server.log`.
#[must_use]
pub fn server_args(dir: &Path) -> Vec<OsString> {
    let log = dir.join("server.log");
    let mut args: Vec<OsString> = [
        "--daemonize",
        "no",
        "--appendonly",
        "no",
        "--save",
        "",
        "--repl-diskless-sync-delay",
        "0",
        "--repl-ping-replica-period",
        "1",
        "--set-proc-title",
        "no",
        "--enable-debug-command",
        "local",
        "--logfile",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    args.push(log.into_os_string());
    args
}

/// Name of the per-cluster owner file.
pub const OWNER_FILE: &str = "owner";
/// Name of the per-node pid file.
pub const PID_FILE: &str = "harness.pid";
/// Marker left in a cluster folder kept after a failure (logs for a post-mortem).
pub const KEPT_FILE: &str = "kept";

/// Sends `sig` to `pid`. A process that is already gone is not an error.
pub fn signal(pid: u32, sig: Signal) -> Result<()> {
    let raw = i32::try_from(pid).context("pid")?;
    match kill(Pid::from_raw(raw), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(crate::Error::new(format!("kill -{sig} {pid}: {e}"))),
    }
}

/// Sends `SIGTERM` to `pid` (a polite request to stop).
pub fn terminate(pid: u32) -> Result<()> {
    signal(pid, Signal::SIGTERM)
}

/// The process state letter from `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, ...), `None` if gone.
#[must_use]
pub fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_ascii_whitespace().next()?.chars().next()
}

/// Whether `pid` is a live process (zombies and dead ones are not).
#[must_use]
pub fn alive(pid: u32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X' && s != 'x')
}

/// The start time of `pid` (clock ticks since boot, field 22 of `/proc/<pid>/stat`).
#[must_use]
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields after the comm: state is field 3, so start time (22) is index 19 here.
    after.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The command line of `pid`, arguments joined by spaces.
#[must_use]
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).split('\0').filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "))
}

/// Writes the owner file of a new cluster folder: this process's pid, start time and a label.
pub fn write_owner(dir: &Path, label: &str) -> Result<()> {
    let pid = std::process::id();
    let st = start_time(pid).unwrap_or(0);
    fs::write(dir.join(OWNER_FILE), format!("{pid} {st} {label}\n")).context("writing the owner file")
}

/// The owner recorded in a cluster folder: pid, start time, label.
#[must_use]
pub fn read_owner(dir: &Path) -> Option<(u32, u64, String)> {
    let s = fs::read_to_string(dir.join(OWNER_FILE)).ok()?;
    let mut it = s.split_ascii_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next().unwrap_or("").to_owned()))
}

/// Whether the owner recorded in `dir` is still running (same pid and same start time).
#[must_use]
pub fn owner_alive(dir: &Path) -> bool {
    read_owner(dir).is_some_and(|(pid, st, _)| alive(pid) && start_time(pid) == Some(st))
}

/// The pids recorded in the node pid files of a cluster folder.
#[must_use]
pub fn recorded_pids(cluster_dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(cluster_dir) else { return Vec::new() };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_to_string(e.path().join(PID_FILE)).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// Whether `pid` is alive and its command line mentions `dir` (so it is one of our servers of
/// that cluster, not a process that reused the pid).
#[must_use]
pub fn is_our_server(pid: u32, dir: &Path) -> bool {
    alive(pid) && cmdline(pid).is_some_and(|c| c.contains(&*dir.to_string_lossy()))
}

/// Stops processes: `SIGCONT` + `SIGTERM`, up to `grace` for them to exit, then `SIGKILL` and up
/// to 5 s more. Returns the pids still alive at the end (normally none).
pub fn stop_pids(pids: &[u32], grace: Duration) -> Vec<u32> {
    for &p in pids {
        let _ = signal(p, Signal::SIGCONT);
        let _ = signal(p, Signal::SIGTERM);
    }
    if wait::wait_until(grace, "servers to exit", || Ok(pids.iter().all(|&p| !alive(p)))).is_ok() {
        return Vec::new();
    }
    for &p in pids {
        if alive(p) {
            let _ = signal(p, Signal::SIGKILL);
        }
    }
    let _ = wait::wait_until(Duration::from_secs(5), "killed servers to exit", || {
        Ok(pids.iter().all(|&p| !alive(p)))
    });
    pids.iter().copied().filter(|&p| alive(p)).collect()
}

/// What [`reap_leftovers`] found in one abandoned cluster folder.
#[derive(Clone, Debug)]
pub struct Reaped {
    /// The cluster folder (removed afterwards unless it was kept for a post-mortem).
    pub dir: PathBuf,
    /// Servers of that folder that were still running and have been stopped.
    pub stopped: Vec<u32>,
}

/// Stops the servers of every cluster folder under `root` whose owner process is gone, and
/// removes those folders (folders marked as kept after a failure stay for a day).
///
/// Runs at every cluster start; safe alongside other live harness processes, whose folders are
/// left alone.
pub fn reap_leftovers(root: &Path) -> Result<Vec<Reaped>> {
    let Ok(entries) = fs::read_dir(root) else { return Ok(Vec::new()) };
    let mut reaped = Vec::new();
    for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()) {
        if owner_alive(&dir) {
            continue;
        }
        if read_owner(&dir).is_none() && age(&dir.join(".")) < Duration::from_secs(60) {
            continue; // being created right now: the owner file comes next
        }
        let ours: Vec<u32> = recorded_pids(&dir).into_iter().filter(|&p| is_our_server(p, &dir)).collect();
        let left = stop_pids(&ours, Duration::from_secs(3));
        if !left.is_empty() {
            return Err(crate::Error::new(format!(
                "leftover servers {left:?} of {} survived SIGKILL",
                dir.display()
            )));
        }
        let kept = dir.join(KEPT_FILE);
        if !kept.exists() || age(&kept) > Duration::from_secs(24 * 3600) {
            let _ = fs::remove_dir_all(&dir);
        }
        if !ours.is_empty() || !dir.exists() {
            reaped.push(Reaped { dir, stopped: ours });
        }
    }
    Ok(reaped)
}

fn age(p: &Path) -> Duration {
    fs::metadata(p).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).unwrap_or(Duration::MAX)
}

/// Live processes whose command line mentions `root` (by default [`paths::clusters_root`]): the
/// servers this harness started that are still running. Zombies do not count.
#[must_use]
pub fn running_servers(root: Option<&Path>) -> Vec<(u32, String)> {
    let root = root.map_or_else(paths::clusters_root, Path::to_path_buf);
    // Servers are started with `--dir <root>/<cluster>/node-N`: match that, not a name.
    let needle = format!("--dir {}/", root.to_string_lossy());
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let mut found: Vec<(u32, String)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter_map(|pid| cmdline(pid).filter(|c| c.contains(&needle)).map(|c| (pid, c)))
        .collect();
    found.sort_unstable();
    found
}

/// A running server started by this harness, as found by [`servers`].
#[derive(Clone, Debug)]
pub struct Server {
    /// Its pid.
    pub pid: u32,
    /// Its cluster folder (the parent of its `--dir`).
    pub cluster_dir: PathBuf,
    /// Whether the process that started it still runs: `false` means a leftover.
    pub owner_alive: bool,
    /// The owner's label (`dev` for `slotcache dev up`), when recorded.
    pub label: String,
}

/// The running servers under `root` (default [`paths::clusters_root`]) with their cluster folder
/// and whether their owner is alive. Servers whose owner is gone are leftovers.
#[must_use]
pub fn servers(root: Option<&Path>) -> Vec<Server> {
    running_servers(root)
        .into_iter()
        .map(|(pid, cmd)| {
            let dir = cmd
                .split_once("--dir ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .map(PathBuf::from)
                .and_then(|d| d.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            let owner = read_owner(&dir);
            Server {
                pid,
                owner_alive: owner_alive(&dir),
                label: owner.map(|(_, _, l)| l).unwrap_or_default(),
                cluster_dir: dir,
            }
        })
        .collect()
}
