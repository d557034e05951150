//! A standalone (non-cluster) server for tests: one primary and, optionally, replicas attached
//! with `--replicaof`, as child processes of the test, stopped on drop like a [`Cluster`].
//!
//! ```no_run
//! let s = slotcache_tests::Standalone::builder().replicas(1).start()?;
//! println!("primary {}, replica {}", s.addr(0), s.addr(1));
//! # Ok::<(), slotcache_tests::Error>(())
//! ```
//!
//! Node 0 is the primary, nodes `1..` its replicas. Every node lives in a folder under
//! [`paths::clusters_root`] with the harness's owner and pid files, so a killed test's servers
//! are stopped at the next start ([`procs::reap_leftovers`]) and `scripts/test-all` finds any
//! left running. It takes one of the machine-wide cluster permits.
//!
//! [`Cluster`]: crate::Cluster

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use slotcache_core::{NodeAddr, Value};

use crate::locks::{self, ClusterPermit, PortClaim};
use crate::resp::Conn;
use crate::topo;
use crate::wait::{scaled, wait_until};
use crate::{Error, Result, ResultExt, bail, install, paths, procs};

/// How long to wait for a node to answer `PING` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Configures and starts a [`Standalone`] server.
#[derive(Clone, Debug)]
pub struct StandaloneBuilder {
    replicas: usize,
    binary: Option<PathBuf>,
    label: String,
    args: Vec<String>,
}

impl Default for StandaloneBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StandaloneBuilder {
    /// One primary, no replica, [`install::valkey_server`].
    #[must_use]
    pub fn new() -> Self {
        Self { replicas: 0, binary: None, label: "standalone".to_owned(), args: Vec::new() }
    }

    /// Replicas of the primary (`--replicaof`); default none.
    #[must_use]
    pub const fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// The server binary (default [`install::valkey_server`]; [`install::redis_server`] for
    /// Debian's Redis 7).
    #[must_use]
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// A label for the folder name (`<label>-<pid>-<n>`).
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        self
    }

    /// One more server argument, after the harness's own (so it can override them).
    #[must_use]
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Starts the primary and its replicas; returns once every node answers `PING`, every
    /// replica's link is up and the primary lists every replica `online`. On failure the
    /// servers are stopped and the error carries each node's log tail; the folder is kept.
    pub fn start(self) -> Result<Standalone> {
        let root = paths::clusters_root();
        for r in procs::reap_leftovers(&root)? {
            eprintln!(
                "slotcache-tests: reaped leftover cluster {} (stopped servers {:?})",
                r.dir.display(),
                r.stopped
            );
        }
        let permit = locks::acquire_cluster_permit(scaled(Duration::from_secs(900)))?;
        let binary = match &self.binary {
            Some(b) => std::path::absolute(b)?,
            None => install::valkey_server()?,
        };
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = root.join(format!(
            "{}-{}-{}",
            self.label,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        procs::write_owner(&dir, &self.label)?;
        let mut s =
            Standalone { binary, args: self.args, dir, nodes: Vec::new(), keep: false, _permit: permit };
        match s.boot(self.replicas) {
            Ok(()) => Ok(s),
            Err(e) => {
                s.keep = true;
                Err(Error::new(format!(
                    "{}\n{}",
                    e.context(format!("starting a standalone 1+{} in {}", self.replicas, s.dir.display())),
                    s.log_tails(15)
                )))
            }
        }
    }
}

#[derive(Debug)]
struct Node {
    claim: PortClaim,
    dir: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// A running standalone primary with its replicas (node 0 is the primary). Dropping it stops
/// every node (`SIGTERM`, bounded wait, `SIGKILL`), reaps them and removes its folder (kept,
/// with its path printed, when the test panicked).
#[derive(Debug)]
pub struct Standalone {
    binary: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    nodes: Vec<Node>,
    keep: bool,
    _permit: ClusterPermit,
}

impl Standalone {
    /// A builder with the defaults of [`StandaloneBuilder::new`].
    #[must_use]
    pub fn builder() -> StandaloneBuilder {
        StandaloneBuilder::new()
    }

    fn boot(&mut self, replicas: usize) -> Result<()> {
        for claim in locks::claim_ports(1 + replicas)? {
            let index = self.nodes.len();
            let dir = self.dir.join(format!("node-{index}"));
            self.nodes.push(Node { claim, dir, child: None, paused: false });
            self.spawn(index)?;
        }
        for i in 0..self.nodes.len() {
            self.await_ping(i)?;
        }
        self.wait_replicas_online(replicas, Duration::from_secs(30))?;
        Ok(())
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let port = self.nodes[i].claim.port();
        let primary_port = self.nodes[0].claim.port();
        let dir = self.nodes[i].dir.clone();
        fs::create_dir_all(&dir)?;
        let mut args = procs::server_args(&dir);
        let mut push = |s: &str| args.push(s.into());
        for s in ["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir", &dir.to_string_lossy()] {
            push(s);
        }
        if i > 0 {
            for s in ["--replicaof", "127.0.0.1", &primary_port.to_string()] {
                push(s);
            }
        }
        for s in &self.args {
            push(s);
        }
        let out = File::create(dir.join("stdout.log"))?;
        let err = out.try_clone()?;
        let child = Command::new(&self.binary)
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        fs::write(dir.join(procs::PID_FILE), format!("{}\n", child.id()))?;
        self.nodes[i].child = Some(child);
        self.nodes[i].paused = false;
        Ok(())
    }

    fn await_ping(&mut self, i: usize) -> Result<()> {
        let addr = self.addr(i);
        let node = &mut self.nodes[i];
        let mut exited = None;
        wait_until(scaled(START_TIMEOUT), &format!("node {i} ({addr}) to answer PING"), || {
            if let Some(child) = node.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                exited = Some(status);
                return Ok(true);
            }
            let mut c = Conn::connect_with(&addr, None, Duration::from_millis(500))?;
            Ok(c.cmd_text(["PING"])? == "PONG")
        })?;
        if let Some(status) = exited {
            node.child = None;
            bail!("node {i} ({addr}) exited at start: {status}");
        }
        Ok(())
    }

    /// Waits until the primary lists `n` replicas, each `state=online`, every running replica
    /// reports `master_link_status:up`, and a write on the primary is acknowledged by `n`
    /// replicas (`WAIT n 200`): right after its initial sync a replica can be listed online
    /// before it acknowledges anything.
    pub fn wait_replicas_online(&self, n: usize, timeout: Duration) -> Result<Duration> {
        wait_until(scaled(timeout), &format!("{n} replica(s) online"), || {
            let info = self.info(0, "replication")?;
            let online =
                info.lines().filter(|l| l.starts_with("slave") && l.contains("state=online")).count();
            if online != n {
                return Ok(false);
            }
            for i in 1..self.nodes.len() {
                if self.nodes[i].child.is_some()
                    && !self.nodes[i].paused
                    && topo::info_field(&self.info(i, "replication")?, "master_link_status") != Some("up")
                {
                    return Ok(false);
                }
            }
            if n == 0 {
                return Ok(true);
            }
            let mut c = self.conn(0)?;
            c.cmd_ok(["SET", "slotcache-harness:acked", "1"])?;
            let acked = c.cmd(["WAIT", &n.to_string(), "200"])?.as_int().unwrap_or(0);
            c.cmd(["DEL", "slotcache-harness:acked"])?;
            Ok(usize::try_from(acked).is_ok_and(|a| a >= n))
        })
    }

    /// Node `i`'s address (`127.0.0.1:port`); node 0 is the primary.
    #[must_use]
    pub fn addr(&self, i: usize) -> NodeAddr {
        NodeAddr::new("127.0.0.1", self.nodes[i].claim.port())
    }

    /// The primary's address, as the one seed a client needs.
    #[must_use]
    pub fn seeds(&self) -> Vec<NodeAddr> {
        vec![self.addr(0)]
    }

    /// How many nodes (primary and replicas) were started.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: there is always a primary.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The server binary.
    #[must_use]
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The folder of every node.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Node `i`'s pid while it runs.
    #[must_use]
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes.get(i).and_then(|n| n.child.as_ref()).map(Child::id)
    }

    /// A new connection to node `i`.
    pub fn conn(&self, i: usize) -> Result<Conn> {
        Conn::connect_with(&self.addr(i), None, Conn::DEFAULT_TIMEOUT)
            .with_context(|| format!("connecting to node {i} ({})", self.addr(i)))
    }

    /// One command to node `i` on a new connection (a server error is an `Ok(Value::Error)`).
    pub fn cmd<A: AsRef<[u8]>>(&self, i: usize, args: impl IntoIterator<Item = A>) -> Result<Value> {
        self.conn(i)?.cmd(args).with_context(|| format!("node {i}"))
    }

    /// One command to node `i`, demanding a text reply.
    pub fn cmd_text<A: AsRef<[u8]>>(&self, i: usize, args: impl IntoIterator<Item = A>) -> Result<String> {
        self.conn(i)?.cmd_text(args)
    }

    /// `INFO <section>` of node `i`.
    pub fn info(&self, i: usize, section: &str) -> Result<String> {
        self.cmd_text(i, ["INFO", section])
    }

    /// How many times node `i` ran `command` (lower case, e.g. `"get"`), from
    /// `INFO commandstats`; 0 when it never ran it.
    pub fn calls(&self, i: usize, command: &str) -> Result<u64> {
        Ok(topo::parse_commandstats(&self.info(i, "commandstats")?)?.get(command).map_or(0, |s| s.calls))
    }

    /// Freezes node `i` with `SIGSTOP` (its connections stay open, it answers nothing).
    pub fn pause(&mut self, i: usize) -> Result<()> {
        let pid = self.pid(i).ok_or_else(|| Error::new(format!("node {i} is not running")))?;
        procs::signal(pid, Signal::SIGSTOP)?;
        wait_until(Duration::from_secs(5), "node to be stopped", || Ok(procs::state(pid) == Some('T')))?;
        self.nodes[i].paused = true;
        Ok(())
    }

    /// Wakes node `i` with `SIGCONT` and waits until it answers `PING`.
    pub fn resume(&mut self, i: usize) -> Result<()> {
        let pid = self.pid(i).ok_or_else(|| Error::new(format!("node {i} is not running")))?;
        procs::signal(pid, Signal::SIGCONT)?;
        wait_until(Duration::from_secs(5), "node to run again", || Ok(procs::state(pid) != Some('T')))?;
        self.nodes[i].paused = false;
        wait_until(scaled(Duration::from_secs(10)), "node to answer PING", || {
            Ok(self.cmd_text(i, ["PING"])? == "PONG")
        })?;
        Ok(())
    }

    /// Kills node `i` with `SIGKILL` and reaps it (its folder stays for [`Standalone::restart`]).
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let mut child = node.child.take().ok_or_else(|| Error::new(format!("node {i} is not running")))?;
        let _ = procs::signal(child.id(), Signal::SIGCONT);
        child.kill().context("SIGKILL")?;
        child.wait().context("reaping")?;
        node.paused = false;
        Ok(())
    }

    /// Starts node `i` again with the same flags and port; returns once it answers `PING`.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].child.is_some() {
            bail!("node {i} is still running");
        }
        self.spawn(i)?;
        self.await_ping(i)
    }

    /// The last `n` lines of every node's log.
    #[must_use]
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            out.push_str(&format!("--- node {i} ({}) {}:\n", self.addr(i), node.dir.display()));
            for name in ["stdout.log", "server.log"] {
                if let Ok(text) = fs::read_to_string(node.dir.join(name)) {
                    let lines: Vec<&str> = text.lines().collect();
                    for l in &lines[lines.len().saturating_sub(n)..] {
                        out.push_str("    ");
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    fn stop_all(&mut self) {
        let pids: Vec<u32> = self.nodes.iter().filter_map(|n| n.child.as_ref().map(Child::id)).collect();
        let _ = procs::stop_pids(&pids, Duration::from_secs(5));
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            n.paused = false;
            let _ = fs::remove_file(n.dir.join(procs::PID_FILE));
        }
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        self.stop_all();
        let keep =
            self.keep || std::thread::panicking() || std::env::var_os("SLOTCACHE_KEEP_CLUSTERS").is_some();
        if keep {
            let _ = fs::write(self.dir.join(procs::KEPT_FILE), "kept for a post-mortem\n");
            eprintln!(
                "slotcache-tests: standalone server stopped; its folder is kept: {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Why a test against Debian's `redis-server` skips itself, if it does: never in CI (there a
/// missing `redis-server` fails the test, loudly); outside CI, when `redis-server` cannot be
/// found (the reason says how to install it) or `SLOTCACHE_SKIP_TLS=1` is set (as the TLS
/// tests). `None`: run the test.
#[must_use]
pub fn redis_skip_reason() -> Option<String> {
    if install::in_ci() {
        return None;
    }
    match install::redis_server() {
        Ok(_) => crate::tls::skip_reason(),
        Err(e) => Some(format!("{e} (outside CI the test is skipped; with CI=true it fails)")),
    }
}
