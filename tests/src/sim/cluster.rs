//! The simulated cluster's state and command execution: nodes, who owns which slot, and the
//! path of one command (connection commands, routing, eviction, the data command or script,
//! replication). The pieces live next door: [`super::store`], [`super::commands`],
//! [`super::scripts`], [`super::replication`], [`super::eviction`], [`super::migration`],
//! [`super::admin`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use slotcache_core::topology::{Health, Node, Role, Shard};
use slotcache_core::{NodeAddr, Protocol, Rng, SLOT_COUNT, Slot, SlotRange, Topology, Value, key_slot};

use super::command_ctx::{Ctx, err, ok, parse_int};
use super::commands::{self, is_module_command, spec_of};
use super::eviction::{self, EvictionPolicy};
use super::repl_state::Repl;
use super::routing::View;
use super::script_host::{Registry, ScriptCtx, run_script, script_command, script_keys};
use super::scripts;
use super::store::Store;

/// The simulated wall clock at virtual time zero, in microseconds since the Unix epoch.
pub const EPOCH_US: u64 = 1_700_000_000_000_000;

/// How often (virtual time) primaries run their active expiry cycle.
pub const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// Work the cluster asks the simulation to do later (it owns no clock of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEv {
    /// `replica` applies `primary`'s stream up to `upto`.
    Apply {
        /// The replica.
        replica: NodeAddr,
        /// The primary it replicated when the write happened.
        primary: NodeAddr,
        /// The offset to apply up to.
        upto: u64,
    },
}

/// One simulated node.
#[derive(Debug, Clone)]
pub struct SimNode {
    /// Its address.
    pub addr: NodeAddr,
    /// Its id in `CLUSTER SHARDS`.
    pub id: String,
    /// The primary it replicates, `None` for a primary.
    pub replica_of: Option<NodeAddr>,
    /// Accepts connections and answers.
    pub up: bool,
    /// Accepts bytes but answers nothing until resumed (SIGSTOP).
    pub paused: bool,
    /// Answers every command with this error while set (e.g. `CLUSTERDOWN ...`, `LOADING ...`).
    pub fail_with: Option<String>,
    /// Answers the next N keyed commands with `fail_with_once` (after `fail_skip` more).
    pub fail_next: u32,
    /// Keyed commands `fail_next` lets through first.
    pub fail_skip: u32,
    /// The error used by `fail_next`.
    pub fail_with_once: String,
    /// Its keyspace (a replica's follows its primary's after the replication lag).
    pub data: Store,
    /// Commands received, by upper-case name.
    pub commands: BTreeMap<String, u64>,
    /// Its script cache: SHA-1s of scripts loaded by `EVAL` or `SCRIPT LOAD` on this node.
    pub script_cache: BTreeSet<String>,
    /// Its clock's offset from the simulation's, in ms (`TIME` and expiry use it).
    pub clock_skew_ms: i64,
    /// Replication state: offset, lag, frozen.
    pub repl: Repl,
    /// `maxmemory` in bytes of keys and values ([`Store::used_memory`]); 0 = no limit.
    pub maxmemory: usize,
    /// `maxmemory-policy`.
    pub policy: EvictionPolicy,
    /// Keys evicted so far.
    pub evicted: u64,
    /// Keys removed by expiry so far (lazy or active, on a primary).
    pub expired: u64,
    /// RedisJSON and RediSearch are loaded (default); without them every `JSON.*` and `FT.*`
    /// command is unknown, in scripts too.
    pub modules: bool,
}

/// A simulated cluster: nodes, who owns which slot, and slots being migrated.
#[derive(Debug, Clone)]
pub struct SimCluster {
    /// The nodes by address.
    pub nodes: BTreeMap<NodeAddr, SimNode>,
    /// Owner (primary) of each slot.
    pub owner: Vec<Option<NodeAddr>>,
    /// Slots migrating the legacy way: slot → (source, target).
    pub migrating: BTreeMap<u16, (NodeAddr, NodeAddr)>,
    /// The password every node demands, if any.
    pub password: Option<String>,
    /// Whether the nodes understand `HELLO` (false = an old RESP2-only server).
    pub hello: bool,
    /// The native scripts the nodes can run (see [`super::scripts`]).
    pub scripts: Registry,
    /// Virtual time since the simulation started (set by [`super::Sim`] before each event).
    pub clock: Duration,
    /// The nodes run without cluster support (see [`SimCluster::standalone`]).
    pub standalone: bool,
    pub(crate) rng: Rng,
    pub(crate) outbox: Vec<(Duration, ClusterEv)>,
    pub(crate) next_repl_id: u64,
    last_sweep: Duration,
}

/// The address of simulated node `i`.
#[must_use]
pub fn addr(i: u16) -> NodeAddr {
    NodeAddr::new("10.0.0.1", 7000 + i)
}

/// What executing one command produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A reply, now.
    Reply(Value),
    /// `WAIT`: the connection blocks until `replicas` replicas acknowledge its last write or
    /// `timeout` passes (`None`: forever).
    Wait {
        /// Replicas wanted.
        replicas: usize,
        /// How long to wait at most.
        timeout: Option<Duration>,
    },
}

impl SimCluster {
    /// `masters` primaries owning equal slot ranges, each with `replicas` replicas.
    /// Primaries are nodes `0..masters`, replicas follow (replica `r` of all replicas follows
    /// primary `r % masters`). Replication lag defaults to 1 ms.
    #[must_use]
    pub fn new(masters: u16, replicas: u16) -> Self {
        let mut nodes = BTreeMap::new();
        let mut owner = vec![None; SLOT_COUNT as usize];
        let per = SLOT_COUNT / masters;
        for m in 0..masters {
            let a = addr(m);
            let hi = if m == masters - 1 { SLOT_COUNT } else { (m + 1) * per };
            for s in m * per..hi {
                owner[s as usize] = Some(a.clone());
            }
            nodes.insert(a.clone(), SimNode::new(a, None, m, u64::from(m) + 1));
        }
        for r in 0..masters * replicas {
            let a = addr(masters + r);
            let p = r % masters;
            nodes.insert(a.clone(), SimNode::new(a, Some(addr(p)), masters + r, u64::from(p) + 1));
        }
        Self {
            nodes,
            owner,
            migrating: BTreeMap::new(),
            password: None,
            hello: true,
            scripts: scripts::standard(),
            clock: Duration::ZERO,
            standalone: false,
            rng: Rng::new(0x5EED),
            outbox: Vec::new(),
            next_repl_id: u64::from(masters),
            last_sweep: Duration::ZERO,
        }
    }

    /// A standalone primary (node 0, which owns every slot) with `replicas` replicas, as
    /// Valkey runs without `cluster-enabled`: every `CLUSTER` command, `READONLY` and `ASKING`
    /// answer `ERR This instance has cluster support disabled` (as Redis 7 does; Valkey 8 and
    /// later accept `READONLY`), `INFO` says `cluster_enabled:0` and lists only the replicas
    /// that are up, replicas serve reads without `READONLY` and refuse writes with `READONLY`,
    /// and nothing is ever redirected. [`SimCluster::failover`] then models an operator's
    /// `REPLICAOF NO ONE` on the replica and `REPLICAOF` on the others.
    #[must_use]
    pub fn standalone(replicas: u16) -> Self {
        let mut c = Self::new(1, replicas);
        c.standalone = true;
        c
    }

    /// Reseeds the cluster's generator (replication jitter, eviction sampling); [`super::Sim`]
    /// does it from its seed.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// The primaries, in address order.
    #[must_use]
    pub fn primaries(&self) -> Vec<NodeAddr> {
        self.nodes.values().filter(|n| n.replica_of.is_none()).map(|n| n.addr.clone()).collect()
    }

    /// The primary owning `key`'s slot.
    #[must_use]
    pub fn owner_of(&self, key: &[u8]) -> NodeAddr {
        self.owner[key_slot(key).index()].clone().expect("slot owned")
    }

    /// How many times node `a` received command `name`.
    #[must_use]
    pub fn count(&self, a: &NodeAddr, name: &str) -> u64 {
        self.nodes.get(a).and_then(|n| n.commands.get(name)).copied().unwrap_or(0)
    }

    /// How many times any node received command `name`.
    #[must_use]
    pub fn count_all(&self, name: &str) -> u64 {
        self.nodes.values().map(|n| n.commands.get(name).copied().unwrap_or(0)).sum()
    }

    /// Node `a`'s clock in microseconds since the Unix epoch (virtual time, plus its skew).
    #[must_use]
    pub fn now_us(&self, a: &NodeAddr) -> u64 {
        let skew = self.nodes.get(a).map_or(0, |n| n.clock_skew_ms) * 1000;
        let t = EPOCH_US + self.clock.as_micros() as u64;
        t.saturating_add_signed(skew)
    }

    /// Node `a`'s clock in milliseconds.
    #[must_use]
    pub fn now_ms(&self, a: &NodeAddr) -> u64 {
        self.now_us(a) / 1000
    }

    /// The string at `key` on node `a` as that node sees it now (expiry applied), for checks.
    #[must_use]
    pub fn get(&self, a: &NodeAddr, key: &[u8]) -> Option<Bytes> {
        let n = self.nodes.get(a)?;
        n.data.get_str(key, self.now_ms(a)).cloned()
    }

    /// Loads (`true`, the default) or unloads the JSON and search modules on every node.
    pub fn set_modules(&mut self, on: bool) {
        for n in self.nodes.values_mut() {
            n.modules = on;
        }
    }

    /// Sets `maxmemory` and its policy on one node.
    pub fn set_maxmemory(&mut self, a: &NodeAddr, bytes: usize, policy: EvictionPolicy) {
        if let Some(n) = self.nodes.get_mut(a) {
            n.maxmemory = bytes;
            n.policy = policy;
        }
    }

    /// Advances the cluster's clock; primaries run their active expiry cycle every
    /// [`SWEEP_EVERY`] (deletions are replicated).
    pub fn set_clock(&mut self, clock: Duration) {
        self.clock = self.clock.max(clock);
        if self.clock - self.last_sweep < SWEEP_EVERY {
            return;
        }
        self.last_sweep = self.clock;
        let primaries: Vec<NodeAddr> =
            self.nodes.values().filter(|n| n.replica_of.is_none() && n.up).map(|n| n.addr.clone()).collect();
        for p in primaries {
            let now = self.now_ms(&p);
            if let Some(n) = self.nodes.get_mut(&p) {
                n.expired += n.data.sweep(now) as u64;
            }
            self.propagate(&p);
        }
    }

    /// Takes the events the cluster wants scheduled: `(delay from now, event)`.
    pub(crate) fn take_outbox(&mut self) -> Vec<(Duration, ClusterEv)> {
        std::mem::take(&mut self.outbox)
    }

    /// `CLUSTER SHARDS` as this cluster would answer it (RESP3 maps or RESP2 flat arrays).
    #[must_use]
    pub fn shards_reply(&self, resp3: bool) -> Value {
        let protocol = if resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
        self.topology().map_or(Value::Array(Vec::new()), |t| t.to_shards_reply(protocol, false))
    }

    /// The cluster as the core's [`Topology`]: each primary's slot ranges (merged), its
    /// replicas in address order, ids, replication offsets, and health (`fail` for a node that
    /// is down). `None` when no slot is owned (the topology would be invalid).
    #[must_use]
    pub fn topology(&self) -> Option<Topology> {
        let node = |n: &SimNode, role: Role| {
            let mut node = Node::from_addr(n.addr.clone());
            node.id = Some(n.id.as_str().into());
            node.role = role;
            node.health = if n.up { Health::Online } else { Health::Failed };
            node.replication_offset = i64::try_from(n.repl.offset).ok();
            node
        };
        let mut shards = Vec::new();
        for p in self.primaries() {
            let mut slots = Vec::new();
            let mut s = 0usize;
            while s < self.owner.len() {
                if self.owner[s].as_ref() == Some(&p) {
                    let start = s;
                    while s < self.owner.len() && self.owner[s].as_ref() == Some(&p) {
                        s += 1;
                    }
                    let slot = |i: usize| Slot::new(u16::try_from(i).unwrap_or(u16::MAX));
                    if let (Some(lo), Some(hi)) = (slot(start), slot(s - 1)) {
                        slots.extend(SlotRange::new(lo, hi));
                    }
                } else {
                    s += 1;
                }
            }
            let replicas = self
                .nodes
                .values()
                .filter(|n| n.replica_of.as_ref() == Some(&p))
                .map(|n| node(n, Role::Replica))
                .collect();
            shards.push(Shard { slots, primary: node(&self.nodes[&p], Role::Primary), replicas });
        }
        Topology::from_shards(shards).ok()
    }

    /// Executes one command on node `at`; `WAIT` answers at once with the replicas that have
    /// acknowledged (use [`SimCluster::execute_outcome`] to block as Valkey does).
    pub fn execute(&mut self, at: &NodeAddr, args: &[Bytes], session: &mut Session) -> Value {
        match self.execute_outcome(at, args, session) {
            Outcome::Reply(v) => v,
            Outcome::Wait { .. } => Value::Int(self.acked(at, session.woff) as i64),
        }
    }

    /// Executes one command on node `at` for a connection with the given state.
    pub fn execute_outcome(&mut self, at: &NodeAddr, args: &[Bytes], session: &mut Session) -> Outcome {
        let name = args.first().map(|a| String::from_utf8_lossy(a).to_uppercase()).unwrap_or_default();
        let sub = args.get(1).map(|a| String::from_utf8_lossy(a).to_uppercase()).unwrap_or_default();
        let full = if matches!(name.as_str(), "CLUSTER" | "CLIENT" | "SCRIPT" | "CONFIG") {
            format!("{name} {sub}")
        } else {
            name.clone()
        };
        let Some(node) = self.nodes.get_mut(at) else { return Outcome::Reply(err("ERR no such node")) };
        *node.commands.entry(full.clone()).or_insert(0) += 1;
        let reply = |v| Outcome::Reply(v);
        // Connection-level commands first.
        match full.as_str() {
            "HELLO" => {
                if !self.hello {
                    return reply(err("ERR unknown command 'HELLO', with args beginning with: '3'"));
                }
                if let Some(pw) = &self.password {
                    let given = args
                        .iter()
                        .position(|a| a.eq_ignore_ascii_case(b"AUTH"))
                        .and_then(|i| args.get(i + 2));
                    if given.map(|g| g.as_ref()) != Some(pw.as_bytes()) {
                        return reply(err("WRONGPASS invalid username-password pair or user is disabled."));
                    }
                    session.authed = true;
                }
                session.resp3 = args.get(1).is_some_and(|v| v.as_ref() == b"3");
                return reply(Value::Map(vec![(
                    Value::Bulk(Bytes::from_static(b"server")),
                    Value::Bulk(Bytes::from_static(b"valkey")),
                )]));
            }
            "AUTH" => {
                return if self.password.as_deref().map(str::as_bytes) == args.last().map(|a| a.as_ref()) {
                    session.authed = true;
                    reply(ok())
                } else {
                    reply(err("WRONGPASS invalid username-password pair or user is disabled."))
                };
            }
            _ => {}
        }
        if self.password.is_some() && !session.authed {
            return reply(err("NOAUTH Authentication required."));
        }
        let node = self.nodes.get_mut(at).expect("checked");
        if let Some(e) = &node.fail_with {
            return reply(err(e));
        }
        if self.standalone && (name == "CLUSTER" || name == "READONLY" || name == "ASKING") {
            return reply(err("ERR This instance has cluster support disabled"));
        }
        match full.as_str() {
            "CLIENT SETNAME" => return reply(ok()),
            "READONLY" => {
                session.readonly = true;
                return reply(ok());
            }
            "READWRITE" => {
                session.readonly = false;
                return reply(ok());
            }
            "ASKING" => {
                session.asking = true;
                return reply(ok());
            }
            "PING" => return reply(Value::Simple(Bytes::from_static(b"PONG"))),
            "CLUSTER SHARDS" => return reply(self.shards_reply(session.resp3)),
            "CLUSTER MYID" => return reply(Value::Bulk(Bytes::from(node.id.clone()))),
            "WAIT" => return self.wait(at, args, session),
            "INFO" => return reply(self.info(at, args, session.resp3)),
            "CONFIG GET" | "CONFIG SET" => return reply(self.config(at, args, session.resp3)),
            "SCRIPT LOAD" | "SCRIPT EXISTS" | "SCRIPT FLUSH" => return reply(self.script_command(at, args)),
            _ => {}
        }
        if name == "SCRIPT" || name == "CONFIG" || name == "CLUSTER" {
            return reply(err(&format!(
                "ERR unknown subcommand '{}'. Try {name} HELP.",
                args.get(1).map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default()
            )));
        }
        if is_module_command(&name) && !node.modules {
            return reply(commands::unknown(args));
        }
        let is_script = name == "EVAL" || name == "EVALSHA";
        let spec = spec_of(&name);
        let (keys, write, denyoom) = if is_script {
            match script_keys(args) {
                // A script without a `#!` line (every script here) is checked as `EVAL` itself,
                // which is not a write command: a replica runs it for a `READONLY` connection,
                // and the script's own writes are refused there (`redis.call`'s check below).
                Ok(k) => (k, false, false),
                Err(e) => return reply(e),
            }
        } else {
            let Some(spec) = spec else { return reply(commands::unknown(args)) };
            match spec.keys(args) {
                Ok(k) => (k, spec.write, spec.denyoom),
                Err(e) => return reply(e),
            }
        };
        let is_replica = node.replica_of.is_some();
        if self.standalone {
            // One node serves every key: no redirects; a replica serves reads only.
            if write && is_replica {
                return reply(err("READONLY You can't write against a read only replica."));
            }
            if !keys.is_empty() && node.fail_next > 0 {
                node.fail_next -= 1;
                let e = node.fail_with_once.clone();
                return reply(err(&e));
            }
        } else if keys.is_empty() {
            // Node-local commands (DBSIZE, TIME, SCAN, FLUSHDB) and scripts without keys.
            if write && is_replica {
                return reply(err("READONLY You can't write against a read only replica."));
            }
        } else {
            if node.fail_next > 0 && node.fail_skip > 0 {
                node.fail_skip -= 1;
            } else if node.fail_next > 0 {
                node.fail_next -= 1;
                let e = node.fail_with_once.clone();
                return reply(err(&e));
            }
            let asking = std::mem::take(&mut session.asking);
            let primary = node.replica_of.clone().unwrap_or_else(|| at.clone());
            let now = self.now_ms(at);
            let view = View {
                owner: Some(&self.owner),
                migrating: &self.migrating,
                primary: &primary,
                is_replica,
                readonly: session.readonly,
                asking,
            };
            let data = &self.nodes[at].data;
            let key_refs: Vec<&[u8]> = keys.iter().map(|i| args[*i].as_ref()).collect();
            // A search index's name counts as a key that exists where the index does.
            let here = |k: &[u8]| data.peek(k, now).is_some() || data.has_index(k);
            if let Err(r) = view.check(&key_refs, write, &here) {
                return reply(r.reply());
            }
            session.asking = asking; // kept for the script's own checks below
        }
        let v = self.run(at, args, &keys, is_script, denyoom, session);
        session.asking = false;
        reply(v)
    }

    /// Runs a routed command: eviction first, then the command or script, then replication.
    fn run(
        &mut self,
        at: &NodeAddr,
        args: &[Bytes],
        keys: &[usize],
        is_script: bool,
        denyoom: bool,
        session: &mut Session,
    ) -> Value {
        let now_us = self.now_us(at);
        let now_ms = now_us / 1000;
        let Self { nodes, rng, owner, migrating, scripts, .. } = self;
        let Some(node) = nodes.get_mut(at) else { return err("ERR no such node") };
        let is_primary = node.replica_of.is_none();
        let mut oom = false;
        if is_primary && node.maxmemory > 0 {
            node.evicted += eviction::make_room(&mut node.data, node.maxmemory, node.policy, rng);
            oom = node.data.used_memory() > node.maxmemory;
        }
        let reply = if oom && denyoom {
            err(eviction::OOM)
        } else {
            if is_primary {
                for i in keys {
                    if node.data.expire_if_needed(&args[*i], now_ms) {
                        node.expired += 1;
                    }
                }
            }
            if is_script {
                let primary = node.replica_of.clone().unwrap_or_else(|| at.clone());
                let view = View {
                    owner: Some(owner),
                    migrating,
                    primary: &primary,
                    is_replica: !is_primary,
                    readonly: session.readonly,
                    asking: session.asking,
                };
                let modules = node.modules;
                let cx = ScriptCtx::new(view, &mut node.data, now_us, oom, is_primary, modules);
                run_script(scripts, &mut node.script_cache, cx, args, keys)
            } else {
                commands::exec(&mut Ctx { store: &mut node.data, now_us, resp3: session.resp3 }, args)
            }
        };
        if is_primary {
            self.propagate(at);
        } else if let Some(n) = self.nodes.get_mut(at) {
            n.data.clear_effects();
        }
        session.woff = self.repl_offset(at);
        reply
    }

    fn wait(&self, at: &NodeAddr, args: &[Bytes], session: &Session) -> Outcome {
        if args.len() != 3 {
            return Outcome::Reply(commands::arity_error("WAIT"));
        }
        if self.nodes.get(at).is_some_and(|n| n.replica_of.is_some()) {
            return Outcome::Reply(err(
                "ERR WAIT cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.",
            ));
        }
        let (Some(n), Some(t)) = (parse_int(&args[1]), parse_int(&args[2])) else {
            return Outcome::Reply(err("ERR value is not an integer or out of range"));
        };
        if t < 0 {
            return Outcome::Reply(err("ERR timeout is negative"));
        }
        let acked = self.acked(at, session.woff);
        if n <= 0 || acked >= n as usize {
            return Outcome::Reply(Value::Int(acked as i64));
        }
        let timeout = (t > 0).then(|| Duration::from_millis(t as u64));
        Outcome::Wait { replicas: n as usize, timeout }
    }

    fn script_command(&mut self, at: &NodeAddr, args: &[Bytes]) -> Value {
        let Some(node) = self.nodes.get_mut(at) else { return err("ERR no such node") };
        script_command(&mut node.script_cache, args)
    }
}

impl SimNode {
    fn new(addr: NodeAddr, replica_of: Option<NodeAddr>, i: u16, repl_id: u64) -> Self {
        Self {
            addr,
            id: format!("{i:040x}"),
            replica_of,
            up: true,
            paused: false,
            fail_with: None,
            fail_next: 0,
            fail_skip: 0,
            fail_with_once: String::new(),
            data: Store::new(),
            commands: BTreeMap::new(),
            script_cache: BTreeSet::new(),
            clock_skew_ms: 0,
            repl: Repl::with_id(repl_id),
            maxmemory: 0,
            policy: EvictionPolicy::NoEviction,
            evicted: 0,
            expired: 0,
            modules: true,
        }
    }
}

/// Per-connection server state.
#[derive(Debug, Default, Clone)]
pub struct Session {
    /// `HELLO 3` succeeded.
    pub resp3: bool,
    /// `READONLY` was sent.
    pub readonly: bool,
    /// `ASKING` was sent just before.
    pub asking: bool,
    /// Authenticated.
    pub authed: bool,
    /// The node's replication offset after this connection's last command (what `WAIT` waits
    /// for).
    pub woff: u64,
}
