//! Forming a local cluster of child `valkey-server` (or `redis-server`) processes, querying it,
//! and stopping it on drop.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use slotcache_core::{NodeAddr, Value, key_slot};

use crate::locks::{self, ClusterPermit, PortClaim};
use crate::procs;
use crate::resp::{self, Conn};
use crate::tls::{TlsClient, TlsFiles};
use crate::topo::{self, NodeEntry, Role, Shard};
use crate::wait::{scaled, wait_until};
use crate::{Error, Result, ResultExt, bail, install, paths};

/// How long to wait for a node to answer `PING` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of each node's log attached to errors.
const LOG_TAIL: usize = 15;

/// Configures and starts a [`Cluster`].
///
/// ```no_run
/// use std::time::Duration;
/// let cluster = slotcache_tests::ClusterBuilder::new()
///     .masters(3)
///     .replicas(1)
///     .node_timeout(Duration::from_millis(1000))
///     .start()?;
/// println!("seeds: {:?}", cluster.seeds());
/// # Ok::<(), slotcache_tests::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    masters: usize,
    replicas: usize,
    node_timeout: Duration,
    args: Vec<String>,
    binary: Option<PathBuf>,
    tls: bool,
    label: String,
    form_timeout: Duration,
    permit: bool,
    host: &'static str,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClusterBuilder {
    /// 3 masters, 1 replica each, node timeout 2000 ms, valkey-server, no TLS.
    #[must_use]
    pub fn new() -> Self {
        Self {
            masters: 3,
            replicas: 1,
            node_timeout: Duration::from_millis(2000),
            args: Vec::new(),
            binary: None,
            tls: false,
            label: "cluster".to_owned(),
            form_timeout: Duration::from_secs(30),
            permit: true,
            host: "127.0.0.1",
        }
    }

    /// Binds and meets every node on the IPv6 loopback `::1` instead of `127.0.0.1`: the
    /// nodes then announce `::1` in `CLUSTER SHARDS`, `CLUSTER SLOTS` and redirects.
    #[must_use]
    pub const fn ipv6(mut self) -> Self {
        self.host = "::1";
        self
    }

    /// Number of masters (slots are split evenly between them). At least 1.
    #[must_use]
    pub const fn masters(mut self, n: usize) -> Self {
        self.masters = n;
        self
    }

    /// Replicas per master.
    #[must_use]
    pub const fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// `cluster-node-timeout`: how long a node may be unreachable before it is failed over.
    /// 1000 ms gives failovers of about 1.5 s; the server default of 15 s gives about 20 s.
    #[must_use]
    pub const fn node_timeout(mut self, d: Duration) -> Self {
        self.node_timeout = d;
        self
    }

    /// One more server argument, passed after the harness's own (so it can override them), e.g.
    /// `.arg("--loadmodule").arg("/abs/path/redisearch.so")`. Use absolute paths (gotcha G1).
    #[must_use]
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Several more server arguments, see [`ClusterBuilder::arg`].
    #[must_use]
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The server binary (default: [`install::valkey_server`], or [`install::redis_server`]
    /// for TLS clusters).
    #[must_use]
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// A TLS-only cluster (`--port 0 --tls-port P`, TLS on the cluster bus and for
    /// replication), with fresh certificates in the cluster folder. Needs a TLS-capable server:
    /// by default Debian's `redis-server`.
    #[must_use]
    pub const fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// A label for the cluster folder name (`<label>-<pid>-<n>`), for humans and `dev down`.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        self
    }

    /// How long forming may take before it fails with the nodes' logs (default 30 s, times
    /// `SLOTCACHE_TIMEOUT_SCALE`).
    #[must_use]
    pub const fn form_timeout(mut self, d: Duration) -> Self {
        self.form_timeout = d;
        self
    }

    /// Do not take one of the machine-wide cluster permits (for long-lived clusters such as
    /// `slotcache dev up`, which would otherwise starve the test suite).
    #[must_use]
    pub const fn without_permit(mut self) -> Self {
        self.permit = false;
        self
    }

    /// Starts the nodes as child processes and forms the cluster; returns once every node says
    /// `cluster_state:ok`, every node sees every other node, and every replica's link is up.
    ///
    /// Also stops and removes what a killed earlier run left behind (see
    /// [`procs::reap_leftovers`]). On failure every node is stopped and the error carries the
    /// tail of each node's log; the folder is kept.
    pub fn start(self) -> Result<Cluster> {
        if self.masters == 0 {
            bail!("a cluster needs at least one master");
        }
        let root = paths::clusters_root();
        for r in procs::reap_leftovers(&root)? {
            eprintln!(
                "slotcache-tests: reaped leftover cluster {} (stopped servers {:?})",
                r.dir.display(),
                r.stopped
            );
        }
        let permit = if self.permit {
            Some(locks::acquire_cluster_permit(scaled(Duration::from_secs(900)))?)
        } else {
            None
        };
        let binary = match &self.binary {
            Some(b) => std::path::absolute(b)?,
            None if self.tls => install::redis_server()?,
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
        let tls = if self.tls {
            let files = TlsFiles::generate(&dir.join("tls"))?;
            let client = files.client()?;
            Some((files, client))
        } else {
            None
        };
        let mut cluster = Cluster {
            spec: Spec {
                binary,
                node_timeout: self.node_timeout,
                forming_timeout: None,
                args: self.args.clone(),
                tls,
                host: self.host,
            },
            dir,
            nodes: Vec::new(),
            timings: FormTimings::default(),
            keep: false,
            _permit: permit,
        };
        let total = self.masters * (1 + self.replicas);
        match cluster.boot(self.masters, total, scaled(self.form_timeout)) {
            Ok(()) => Ok(cluster),
            Err(e) => {
                cluster.keep = true;
                Err(e
                    .context(format!(
                        "forming a {}+{}x{} cluster in {}",
                        self.masters,
                        self.masters,
                        self.replicas,
                        cluster.dir.display()
                    ))
                    .context_logs(&cluster))
            }
        }
    }
}

trait WithLogs {
    fn context_logs(self, c: &Cluster) -> Self;
}

impl WithLogs for Error {
    fn context_logs(self, c: &Cluster) -> Self {
        Self::new(format!("{self}\n{}", c.log_tails(LOG_TAIL)))
    }
}

/// How long forming took, measured from the first `exec`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FormTimings {
    /// Until every node answered `PING`.
    pub processes_up: Duration,
    /// Until every node said `cluster_state:ok` (and saw every node).
    pub state_ok: Duration,
    /// Until every replica's link was up too: the cluster was ready.
    pub ready: Duration,
}

#[derive(Debug)]
struct Spec {
    binary: PathBuf,
    node_timeout: Duration,
    /// The node timeout while the cluster forms (see [`FORMING_NODE_TIMEOUT`]), if any.
    forming_timeout: Option<Duration>,
    args: Vec<String>,
    tls: Option<(TlsFiles, TlsClient)>,
    /// The loopback address every node binds and announces.
    host: &'static str,
}

impl Spec {
    fn args(&self, port: u16, dir: &Path) -> Vec<OsString> {
        let mut a = procs::server_args(dir);
        let mut push = |s: &str| a.push(s.into());
        if self.tls.is_some() {
            push("--port");
            push("0");
            push("--tls-port");
        } else {
            push("--port");
        }
        push(&port.to_string());
        for s in ["--bind", self.host, "--dir"] {
            push(s);
        }
        push(&dir.to_string_lossy());
        for s in [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &dir.join("nodes.conf").to_string_lossy(),
            "--cluster-node-timeout",
            &self.forming_timeout.unwrap_or(self.node_timeout).as_millis().to_string(),
            "--cluster-replica-validity-factor",
            "0",
            "--cluster-allow-replica-migration",
            "no",
        ] {
            push(s);
        }
        if let Some((files, _)) = &self.tls {
            for (flag, path) in [
                ("--tls-cert-file", &files.server_cert),
                ("--tls-key-file", &files.server_key),
                ("--tls-ca-cert-file", &files.ca_cert),
            ] {
                push(flag);
                push(&path.to_string_lossy());
            }
            for s in ["--tls-cluster", "yes", "--tls-replication", "yes"] {
                push(s);
            }
        }
        for s in &self.args {
            push(s);
        }
        a
    }

    fn spawn(&self, port: u16, dir: &Path) -> Result<Child> {
        fs::create_dir_all(dir)?;
        let out = File::create(dir.join("stdout.log"))?;
        let err = out.try_clone()?;
        let child = Command::new(&self.binary)
            .args(self.args(port, dir))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        fs::write(dir.join(procs::PID_FILE), format!("{}\n", child.id()))?;
        Ok(child)
    }

    fn tls_client(&self) -> Option<&TlsClient> {
        self.tls.as_ref().map(|(_, c)| c)
    }
}

/// One node of a [`Cluster`], addressed by its index (stable for the cluster's life).
#[derive(Debug)]
pub struct Node {
    index: usize,
    host: &'static str,
    claim: PortClaim,
    id: String,
    dir: PathBuf,
    pub(crate) child: Option<Child>,
    pub(crate) paused: bool,
    pub(crate) removed: bool,
}

impl Node {
    /// The node's index in the cluster.
    #[must_use]
    pub const fn index(&self) -> usize {
        self.index
    }

    /// Its client port (the TLS port in a TLS cluster); the bus port is this + 10000.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.claim.port()
    }

    /// Its address, `127.0.0.1:port` (or `[::1]:port` in an [IPv6](ClusterBuilder::ipv6) cluster).
    #[must_use]
    pub fn addr(&self) -> NodeAddr {
        NodeAddr::new(self.host, self.port())
    }

    /// The address it binds and announces: `127.0.0.1`, or `::1`.
    #[must_use]
    pub const fn host(&self) -> &'static str {
        self.host
    }

    /// Its cluster node id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its folder (`nodes.conf`, `server.log`, `stdout.log`, `harness.pid`).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's pid while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs (it may be paused).
    #[must_use]
    pub const fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether it is stopped with `SIGSTOP`.
    #[must_use]
    pub const fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether it was removed from the cluster ([`Cluster::remove_node`]).
    #[must_use]
    pub const fn is_removed(&self) -> bool {
        self.removed
    }

    /// Running, not paused, not removed: expected to answer.
    #[must_use]
    pub const fn is_live(&self) -> bool {
        self.child.is_some() && !self.paused && !self.removed
    }

    /// The last `n` lines of its log (`server.log`, plus `stdout.log` when not empty).
    #[must_use]
    pub fn log_tail(&self, n: usize) -> String {
        let mut out = String::new();
        for name in ["stdout.log", "server.log"] {
            if let Ok(text) = fs::read_to_string(self.dir.join(name)) {
                let lines: Vec<&str> = text.lines().collect();
                for l in &lines[lines.len().saturating_sub(n)..] {
                    out.push_str("    ");
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// A running local cluster. Dropping it stops every node (`SIGTERM`, bounded wait, `SIGKILL`),
/// reaps them and removes its folder, also when a test panics (then the folder is kept with its
/// logs and its path printed).
#[derive(Debug)]
pub struct Cluster {
    spec: Spec,
    dir: PathBuf,
    pub(crate) nodes: Vec<Node>,
    timings: FormTimings,
    keep: bool,
    _permit: Option<ClusterPermit>,
}

/// The node timeout a cluster forms with when a shorter one was asked for (it is set once the
/// cluster is healthy): under a loaded machine's scheduling delays, 1 s was seen to fail masters
/// over while their replicas were being attached.
const FORMING_NODE_TIMEOUT: Duration = Duration::from_secs(5);

impl Cluster {
    /// A builder with the defaults of [`ClusterBuilder::new`].
    #[must_use]
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::new()
    }

    fn boot(&mut self, masters: usize, total: usize, timeout: Duration) -> Result<()> {
        let t0 = Instant::now();
        // Formed with a node timeout long enough that a loaded machine's slow gossip does not
        // fail masters over before their replicas are even attached; the asked-for one is set
        // once the cluster is healthy.
        let forming = self.spec.node_timeout.max(FORMING_NODE_TIMEOUT);
        self.spec.forming_timeout = Some(forming);
        let claims = locks::claim_ports(total)?;
        for claim in claims {
            self.spawn_node(claim)?;
        }
        for i in 0..total {
            self.await_start(i)?;
        }
        self.timings.processes_up = t0.elapsed();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut c = self.conn(i)?;
            c.cmd_ok(["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()])?;
            if i > 0 {
                self.conn(0)?.cmd_ok(["CLUSTER", "MEET", node.host, &node.port().to_string()])?;
            }
        }
        let per = 16384 / masters;
        for m in 0..masters {
            let lo = m * per;
            let hi = if m == masters - 1 { 16383 } else { (m + 1) * per - 1 };
            self.conn(m)?.cmd_ok(["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()])?;
        }
        let deadline = t0 + timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        wait_until(left(), "every node to know every node", || self.all_know_all())?;
        for r in masters..total {
            let m = (r - masters) % masters;
            let id = self.nodes[m].id.clone();
            self.conn(r)?.cmd_ok(["CLUSTER", "REPLICATE", &id])?;
        }
        wait_until(left(), "cluster_state:ok on every node, all nodes seen", || {
            self.health_problem(false).map(|p| p.is_none())
        })?;
        self.timings.state_ok = t0.elapsed();
        wait_until(left(), "a healthy cluster (replicas linked, roles agreed)", || self.healthy_now())?;
        for r in masters..total {
            let m = (r - masters) % masters;
            if self.master_of(r)? != Some(m) {
                bail!("node {r} replicates {:?}, expected node {m}", self.master_of(r)?);
            }
        }
        self.spec.forming_timeout = None;
        if forming != self.spec.node_timeout {
            let ms = self.spec.node_timeout.as_millis().to_string();
            for i in 0..total {
                self.conn(i)?.cmd_ok(["CONFIG", "SET", "cluster-node-timeout", &ms])?;
            }
        }
        self.timings.ready = t0.elapsed();
        Ok(())
    }

    /// Waits until node `i` (just spawned) answers `PING`, then records its id. If it could not
    /// bind its port (another process took it in the meantime), moves it to a fresh port.
    pub(crate) fn await_start(&mut self, i: usize) -> Result<()> {
        for _attempt in 0..3 {
            let node = &mut self.nodes[i];
            let addr = node.addr();
            let tls = self.spec.tls_client();
            let mut exited = None;
            let waited =
                wait_until(scaled(START_TIMEOUT), &format!("node {i} ({addr}) to answer PING"), || {
                    if let Some(child) = node.child.as_mut()
                        && let Some(status) = child.try_wait()?
                    {
                        exited = Some(status);
                        return Ok(true);
                    }
                    let mut c = Conn::connect_with(&addr, tls, Duration::from_millis(500))?;
                    Ok(c.cmd_text(["PING"])? == "PONG")
                });
            if let Err(e) = waited {
                return Err(e.context_logs(self));
            }
            let Some(status) = exited else {
                let id = self.conn(i)?.cmd_text(["CLUSTER", "MYID"])?;
                self.nodes[i].id = id;
                return Ok(());
            };
            node.child = None;
            let log = node.log_tail(50);
            if !log.contains("Address already in use") {
                return Err(Error::new(format!("node {i} ({addr}) exited at start: {status}\n{log}")));
            }
            eprintln!("slotcache-tests: port {} was taken, moving node {i} to another port", node.port());
            node.claim = locks::claim_ports(1)?.pop().ok_or_else(|| Error::new("no port"))?;
            let _ = fs::remove_dir_all(&node.dir);
            node.child = Some(self.spec.spawn(node.claim.port(), &node.dir)?);
        }
        bail!("node {i} could not bind a port in 3 attempts")
    }

    pub(crate) fn spawn_extra_node(&mut self) -> Result<usize> {
        let claim = locks::claim_ports(1)?.pop().ok_or_else(|| Error::new("no port"))?;
        let index = self.spawn_node(claim)?;
        self.await_start(index)?;
        Ok(index)
    }

    /// Starts the next node (index `self.nodes.len()`, folder `node-<index>`) on the claimed
    /// port, without waiting for it; returns its index.
    fn spawn_node(&mut self, claim: PortClaim) -> Result<usize> {
        let index = self.nodes.len();
        let dir = self.dir.join(format!("node-{index}"));
        let child = self.spec.spawn(claim.port(), &dir)?;
        self.nodes.push(Node {
            index,
            host: self.spec.host,
            claim,
            id: String::new(),
            dir,
            child: Some(child),
            paused: false,
            removed: false,
        });
        Ok(index)
    }

    pub(crate) fn respawn(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            bail!("node {i} is still running");
        }
        node.child = Some(self.spec.spawn(node.port(), &node.dir)?);
        node.paused = false;
        self.await_start(i)
    }

    pub(crate) fn node_mut(&mut self, i: usize) -> Result<&mut Node> {
        self.nodes.get_mut(i).ok_or_else(|| Error::new(format!("no node {i}")))
    }

    /// The cluster's folder (absolute).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server binary the nodes run.
    #[must_use]
    pub fn binary(&self) -> &Path {
        &self.spec.binary
    }

    /// The node timeout the nodes were started with.
    #[must_use]
    pub const fn node_timeout(&self) -> Duration {
        self.spec.node_timeout
    }

    /// How long forming took.
    #[must_use]
    pub const fn timings(&self) -> FormTimings {
        self.timings
    }

    /// Keep the folder (logs, `nodes.conf`) after drop, e.g. to look at it after a test.
    pub const fn keep_dir(&mut self) {
        self.keep = true;
    }

    /// The TLS files of a TLS cluster.
    #[must_use]
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.spec.tls.as_ref().map(|(f, _)| f)
    }

    /// The TLS client configuration of a TLS cluster.
    #[must_use]
    pub fn tls_client(&self) -> Option<&TlsClient> {
        self.spec.tls_client()
    }

    /// Every node ever started, removed ones included (indices are stable).
    #[must_use]
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `i`. Panics if there is no such node.
    #[must_use]
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// The indices of the nodes expected to answer (running, not paused, not removed).
    #[must_use]
    pub fn live(&self) -> Vec<usize> {
        self.nodes.iter().filter(|n| n.is_live()).map(Node::index).collect()
    }

    /// The addresses of the live nodes: seeds for a client.
    #[must_use]
    pub fn seeds(&self) -> Vec<NodeAddr> {
        self.nodes.iter().filter(|n| n.is_live()).map(Node::addr).collect()
    }

    /// The pids of the running servers.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }

    /// The index of the node with this port.
    #[must_use]
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// The index of the node with this id.
    #[must_use]
    pub fn index_of_id(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// The index of the node at this address.
    #[must_use]
    pub fn index_of_addr(&self, addr: &NodeAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr() == *addr)
    }

    /// A new connection to node `i` (TLS in a TLS cluster).
    pub fn conn(&self, i: usize) -> Result<Conn> {
        let node = self.nodes.get(i).ok_or_else(|| Error::new(format!("no node {i}")))?;
        Conn::connect_with(&node.addr(), self.spec.tls_client(), Conn::DEFAULT_TIMEOUT)
            .with_context(|| format!("connecting to node {i} ({})", node.addr()))
    }

    /// A new connection to any address (TLS in a TLS cluster).
    pub fn conn_to(&self, addr: &NodeAddr) -> Result<Conn> {
        Conn::connect_with(addr, self.spec.tls_client(), Conn::DEFAULT_TIMEOUT)
            .with_context(|| format!("connecting to {addr}"))
    }

    /// Sends one command to node `i` on a new connection and returns the reply (a server error
    /// is an `Ok(Value::Error)`).
    pub fn cmd<A: AsRef<[u8]>>(&self, i: usize, args: impl IntoIterator<Item = A>) -> Result<Value> {
        let mut c = self.conn(i)?;
        c.cmd(args).with_context(|| format!("node {i}"))
    }

    /// Sends one command to node `i` and demands a text reply.
    pub fn cmd_text<A: AsRef<[u8]>>(&self, i: usize, args: impl IntoIterator<Item = A>) -> Result<String> {
        self.conn(i)?.cmd_text(args)
    }

    /// `INFO <section>` of node `i`.
    pub fn info(&self, i: usize, section: &str) -> Result<String> {
        self.cmd_text(i, ["INFO", section])
    }

    /// Node `i`'s `INFO commandstats`: each command's counters by lower-case name (see
    /// [`topo::parse_commandstats`]).
    pub fn commandstats(&self, i: usize) -> Result<BTreeMap<String, topo::CommandStats>> {
        topo::parse_commandstats(&self.info(i, "commandstats")?)
    }

    /// Node `i`'s role from `INFO replication`.
    pub fn role(&self, i: usize) -> Result<Role> {
        let info = self.info(i, "replication")?;
        match topo::info_field(&info, "role") {
            Some("master") => Ok(Role::Master),
            Some("slave") => Ok(Role::Replica),
            other => bail!("node {i}: role {other:?}"),
        }
    }

    /// The node that node `i` replicates (from its `INFO replication`), `None` for a master.
    /// A master that announces another port than its own (a fault proxy's) is found by the id
    /// node `i` lists as its master.
    pub fn master_of(&self, i: usize) -> Result<Option<usize>> {
        let info = self.info(i, "replication")?;
        self.master_in(i, &info)
    }

    /// [`Cluster::master_of`] from node `i`'s `INFO replication` text, already read.
    pub(crate) fn master_in(&self, i: usize, info: &str) -> Result<Option<usize>> {
        if topo::info_field(info, "role") != Some("slave") {
            return Ok(None);
        }
        let port: u16 = topo::info_field(info, "master_port")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| Error::new(format!("node {i}: no master_port")))?;
        if let Some(m) = self.index_of_port(port) {
            return Ok(Some(m));
        }
        let me = self.cluster_nodes(i)?.into_iter().find(|e| e.has_flag("myself"));
        Ok(me.and_then(|e| e.master_id).and_then(|id| self.index_of_id(&id)))
    }

    /// `CLUSTER NODES` as seen by node `i`.
    pub fn cluster_nodes(&self, i: usize) -> Result<Vec<NodeEntry>> {
        topo::parse_cluster_nodes(&self.cmd_text(i, ["CLUSTER", "NODES"])?)
    }

    /// `CLUSTER SHARDS` as seen by node `i`.
    pub fn shards(&self, i: usize) -> Result<Vec<Shard>> {
        let v = self.cmd(i, ["CLUSTER", "SHARDS"])?;
        if let Some(e) = resp::error_text(&v) {
            bail!("node {i}: CLUSTER SHARDS: {e}");
        }
        topo::parse_cluster_shards(&v)
    }

    /// The master serving `slot` according to node `view`'s `CLUSTER SHARDS`.
    pub fn slot_owner_seen_by(&self, view: usize, slot: u16) -> Result<Option<usize>> {
        Ok(self
            .shards(view)?
            .iter()
            .find(|s| s.serves(slot))
            .and_then(Shard::master)
            .and_then(|m| self.index_of_id(&m.id)))
    }

    /// The master serving `slot`, asked of the first live node.
    pub fn slot_owner(&self, slot: u16) -> Result<Option<usize>> {
        let view = self.any_live()?;
        self.slot_owner_seen_by(view, slot)
    }

    /// The master serving `key`'s slot.
    pub fn owner_of_key(&self, key: &[u8]) -> Result<usize> {
        let slot = key_slot(key).get();
        self.slot_owner(slot)?.ok_or_else(|| Error::new(format!("no node serves slot {slot}")))
    }

    /// A key named after `name` in the first slot that master `m` serves (by the first live
    /// node's `CLUSTER NODES`).
    pub fn key_owned_by(&self, m: usize, name: &str) -> Result<String> {
        let view = self.any_live()?;
        let id = &self.nodes[m].id;
        let entries = self.cluster_nodes(view)?;
        let slot = entries
            .iter()
            .find(|e| e.id == *id)
            .and_then(|e| e.slots.first())
            .map(|&(lo, _)| lo)
            .ok_or_else(|| Error::new(format!("node {m} serves no slot")))?;
        Ok(crate::keys::key_for_slot(slot, name))
    }

    /// The live masters serving slots, by the first live node's `CLUSTER NODES`.
    pub fn masters(&self) -> Result<Vec<usize>> {
        let view = self.any_live()?;
        let mut out: Vec<usize> = self
            .cluster_nodes(view)?
            .iter()
            .filter(|e| e.role() == Role::Master && !e.slots.is_empty() && !e.troubled())
            .filter_map(|e| self.index_of_id(&e.id))
            .filter(|&i| self.nodes[i].is_live())
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// The live replicas of master `m`, by the first live node's `CLUSTER NODES`.
    pub fn replicas_of(&self, m: usize) -> Result<Vec<usize>> {
        let view = self.any_live()?;
        let id = &self.nodes[m].id;
        let mut out: Vec<usize> = self
            .cluster_nodes(view)?
            .iter()
            .filter(|e| e.master_id.as_deref() == Some(id.as_str()) && !e.troubled())
            .filter_map(|e| self.index_of_id(&e.id))
            .filter(|&i| self.nodes[i].is_live())
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    pub(crate) fn any_live(&self) -> Result<usize> {
        self.live().first().copied().ok_or_else(|| Error::new("no live node"))
    }

    fn all_know_all(&self) -> Result<bool> {
        let n = self.nodes.len();
        for i in 0..n {
            let entries = self.cluster_nodes(i)?;
            if entries.len() != n || entries.iter().any(|e| e.has_flag("handshake") || e.has_flag("noaddr")) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The first reason the cluster is not healthy, if any. `full` also checks that replica
    /// links are up and that every node agrees on every live node's role and master.
    fn health_problem(&self, full: bool) -> Result<Option<String>> {
        let live = self.live();
        let mut views: Vec<(usize, Vec<NodeEntry>)> = Vec::new();
        for &i in &live {
            let info = self.cmd_text(i, ["CLUSTER", "INFO"])?;
            if topo::info_field(&info, "cluster_state") != Some("ok") {
                return Ok(Some(format!("node {i}: cluster_state is not ok")));
            }
            let entries = self.cluster_nodes(i)?;
            for &j in &live {
                let id = &self.nodes[j].id;
                match entries.iter().find(|e| e.id == *id) {
                    None => return Ok(Some(format!("node {i} does not know node {j}"))),
                    Some(e) if e.troubled() || !e.connected => {
                        return Ok(Some(format!("node {i} sees node {j} as {} ", e.flags.join(","))));
                    }
                    Some(_) => {}
                }
            }
            views.push((i, entries));
        }
        if !full {
            return Ok(None);
        }
        for &j in &live {
            let id = &self.nodes[j].id;
            let Some((_, own)) = views.iter().find(|(i, _)| *i == j) else { continue };
            let Some(me) = own.iter().find(|e| e.id == *id) else { continue };
            for (i, v) in &views {
                let Some(e) = v.iter().find(|e| e.id == *id) else { continue };
                if e.role() != me.role() || e.master_id != me.master_id {
                    return Ok(Some(format!("node {i} disagrees with node {j} about its role")));
                }
            }
            if me.role() == Role::Replica {
                let info = self.info(j, "replication")?;
                if topo::info_field(&info, "master_link_status") != Some("up") {
                    return Ok(Some(format!("replica {j}: master link not up")));
                }
            }
        }
        // CLUSTER SHARDS shows a replica as `loading` until gossip carries its replication
        // offset; clients that pick replicas from it need `online`.
        for &i in &live {
            for shard in self.shards(i)? {
                for n in &shard.nodes {
                    let j = self.index_of_id(&n.id);
                    if j.is_some_and(|j| self.nodes[j].is_live()) && n.health != "online" {
                        return Ok(Some(format!("node {i} sees node {j:?} as {}", n.health)));
                    }
                }
            }
        }
        Ok(None)
    }

    fn healthy_now(&self) -> Result<bool> {
        match self.health_problem(true)? {
            None => Ok(true),
            Some(p) => Err(Error::new(p)),
        }
    }

    /// Waits until every live node says `cluster_state:ok` and sees every live node connected
    /// and not failing.
    pub fn wait_state_ok(&self, timeout: Duration) -> Result<Duration> {
        wait_until(scaled(timeout), "cluster_state:ok on every live node", || {
            match self.health_problem(false)? {
                None => Ok(true),
                Some(p) => Err(Error::new(p)),
            }
        })
        .map_err(|e| e.context_logs(self))
    }

    /// Waits until the cluster is healthy: [`Cluster::wait_state_ok`], plus every live
    /// replica's link up, every node agreeing on every live node's role and master, and every
    /// node's `CLUSTER SHARDS` showing every live node `online`.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<Duration> {
        wait_until(scaled(timeout), "a healthy cluster", || self.healthy_now())
            .map_err(|e| e.context_logs(self))
    }

    /// The tail of every node's log, for error messages.
    #[must_use]
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let state = match (n.removed, n.child.is_some(), n.paused) {
                (true, _, _) => "removed",
                (_, false, _) => "not running",
                (_, true, true) => "paused",
                _ => "running",
            };
            out.push_str(&format!("--- node {} ({}, {state}) {}:\n", n.index, n.addr(), n.dir.display()));
            out.push_str(&n.log_tail(lines));
        }
        out
    }

    /// Stops every node now (as drop does) and returns how long it took.
    pub fn stop_all(&mut self) -> Duration {
        let t0 = Instant::now();
        for n in &self.nodes {
            if let Some(pid) = n.pid() {
                let _ = procs::signal(pid, nix::sys::signal::Signal::SIGCONT);
                let _ = procs::signal(pid, nix::sys::signal::Signal::SIGTERM);
            }
        }
        let _ = wait_until(Duration::from_secs(5), "nodes to exit after SIGTERM", || {
            let mut all = true;
            for n in &mut self.nodes {
                if let Some(c) = n.child.as_mut() {
                    if c.try_wait()?.is_some() {
                        n.child = None;
                    } else {
                        all = false;
                    }
                }
            }
            Ok(all)
        });
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            n.paused = false;
            let _ = fs::remove_file(n.dir.join(procs::PID_FILE));
        }
        t0.elapsed()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
        let keep =
            self.keep || std::thread::panicking() || std::env::var_os("SLOTCACHE_KEEP_CLUSTERS").is_some();
        if keep {
            let _ = fs::write(self.dir.join(procs::KEPT_FILE), "kept for a post-mortem\n");
            eprintln!("slotcache-tests: cluster stopped; its folder is kept: {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
