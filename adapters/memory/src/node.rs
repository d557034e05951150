//! One standalone Valkey node (cluster support disabled, no replicas) as a value: every
//! command a connection sends, from the handshake to the cache's scripts, run against the
//! node's keyspace at the time the caller passes in.
//!
//! What a command goes through, in Valkey's order: the connection commands (`HELLO`, `AUTH`,
//! `CLIENT`, `PING`, `INFO`, `CONFIG`, `SCRIPT`, `WAIT`, `MEMORY USAGE`, and `CLUSTER`/`READONLY`
//! refused as a standalone node refuses them); then, for data commands and scripts, keys of
//! several slots refused with `CROSSSLOT` as a cluster refuses them, the
//! active expiry cycle when it is due, eviction under `maxmemory` (`OOM` for a write that may
//! grow memory when nothing more can go), the lazy expiry of the command's keys, and the
//! command ([`crate::commands`]) or the script's native twin ([`crate::scripts`]).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use slotcache_core::{NodeAddr, Rng, Value};

use crate::command_ctx::{Ctx, err, ok};
use crate::commands::{self, is_module_command, spec_of};
use crate::eviction::{self, EvictionPolicy};
use crate::routing::View;
use crate::script_host::{Registry, ScriptCtx, run_script, script_command, script_keys};
use crate::store::Store;
use crate::{config, scripts};

/// How often, in the node's milliseconds, expired keys nobody reads are removed.
pub const SWEEP_EVERY_MS: u64 = 100;

/// Per-connection server state.
#[derive(Debug, Default, Clone)]
pub struct Session {
    /// `HELLO 3` succeeded: replies are RESP3.
    pub resp3: bool,
}

/// One standalone node: its keyspace, script cache, memory limit and counters.
#[derive(Debug, Clone)]
pub struct Node {
    addr: NodeAddr,
    store: Store,
    /// The native twins of the scripts this node can run, by the SHA-1 of their source
    /// ([`scripts::standard`]: every script of the cache). Register more to run other scripts.
    pub scripts: Registry,
    script_cache: BTreeSet<String>,
    modules: bool,
    maxmemory: usize,
    policy: EvictionPolicy,
    rng: Rng,
    evicted: u64,
    expired: u64,
    next_sweep_ms: u64,
}

impl Node {
    /// An empty node that calls itself `addr` (in `INFO`), with the JSON and search modules,
    /// no `maxmemory`, and `noeviction`.
    #[must_use]
    pub fn new(addr: NodeAddr) -> Self {
        Self {
            addr,
            store: Store::new(),
            scripts: scripts::standard(),
            script_cache: BTreeSet::new(),
            modules: true,
            maxmemory: 0,
            policy: EvictionPolicy::NoEviction,
            rng: Rng::new(0x5107_cac4e),
            evicted: 0,
            expired: 0,
            next_sweep_ms: 0,
        }
    }

    /// Turns the JSON and search modules on or off (off: every `JSON.*` and `FT.*` is an
    /// unknown command, as on a server without them).
    pub const fn set_modules(&mut self, on: bool) {
        self.modules = on;
    }

    /// Sets `maxmemory` (bytes of keys and values, 0: no limit) and its policy, as
    /// `CONFIG SET` does.
    pub const fn set_maxmemory(&mut self, bytes: usize, policy: EvictionPolicy) {
        self.maxmemory = bytes;
        self.policy = policy;
    }

    /// The keyspace (expired keys not yet removed included; its accessors hide them).
    #[must_use]
    pub const fn store(&self) -> &Store {
        &self.store
    }

    /// Keys evicted under `maxmemory` so far.
    #[must_use]
    pub const fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Runs one command (`args`, its name first) for a connection in state `session`, at
    /// `now_us` (microseconds since the Unix epoch; it must not go backwards), and returns the
    /// reply, errors included, as the server would send it.
    pub fn execute(&mut self, now_us: u64, args: &[Bytes], session: &mut Session) -> Value {
        let Some(first) = args.first() else { return err("ERR empty command") };
        let name = String::from_utf8_lossy(first).to_uppercase();
        let sub = args.get(1).map(|a| String::from_utf8_lossy(a).to_uppercase()).unwrap_or_default();
        match (name.as_str(), sub.as_str()) {
            ("HELLO", _) => return hello(args, session),
            ("AUTH", _) => {
                return err(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                );
            }
            ("CLIENT", "SETNAME" | "SETINFO") => return ok(),
            ("PING", _) => return Value::Simple(Bytes::from_static(b"PONG")),
            ("CLUSTER" | "READONLY" | "READWRITE" | "ASKING", _) => {
                return err("ERR This instance has cluster support disabled");
            }
            ("INFO", _) => return self.info(args, session.resp3),
            ("CONFIG", "GET" | "SET") => {
                return config::config(args, &mut self.maxmemory, &mut self.policy, session.resp3);
            }
            ("SCRIPT", _) => return script_command(&mut self.script_cache, args),
            ("WAIT", _) => return wait(args),
            ("MEMORY", "USAGE") => return self.memory_usage(now_us, args),
            ("CLIENT" | "CONFIG" | "MEMORY", _) => {
                return err(&format!("ERR unknown subcommand '{}'. Try {name} HELP.", sub.to_lowercase()));
            }
            _ => {}
        }
        if is_module_command(&name) && !self.modules {
            return commands::unknown(args);
        }
        let is_script = name == "EVAL" || name == "EVALSHA";
        let (keys, denyoom) = if is_script {
            match script_keys(args) {
                Ok(k) => (k, false),
                Err(e) => return e,
            }
        } else {
            let Some(spec) = spec_of(&name) else { return commands::unknown(args) };
            match spec.keys(args) {
                Ok(k) => (k, spec.denyoom),
                Err(e) => return e,
            }
        };
        let view = View {
            owner: None,
            migrating: &BTreeMap::new(),
            primary: &self.addr,
            is_replica: false,
            readonly: false,
            asking: false,
        };
        if !keys.is_empty() {
            // Keys of several slots are refused as a cluster refuses them (code tested here
            // then runs unchanged on a cluster).
            let key_refs: Vec<&[u8]> = keys.iter().map(|i| args[*i].as_ref()).collect();
            if let Err(r) = view.check(&key_refs, false, &|_| true) {
                return r.reply();
            }
        }
        let now_ms = now_us / 1000;
        if now_ms >= self.next_sweep_ms {
            self.expired += self.store.sweep(now_ms) as u64;
            self.next_sweep_ms = now_ms + SWEEP_EVERY_MS;
        }
        let mut oom = false;
        if self.maxmemory > 0 {
            self.evicted += eviction::make_room(&mut self.store, self.maxmemory, self.policy, &mut self.rng);
            oom = self.store.used_memory() > self.maxmemory;
        }
        let reply = if oom && denyoom {
            err(eviction::OOM)
        } else {
            for i in &keys {
                if self.store.expire_if_needed(&args[*i], now_ms) {
                    self.expired += 1;
                }
            }
            if is_script {
                let cx = ScriptCtx::new(view, &mut self.store, now_us, oom, true, self.modules);
                run_script(&self.scripts, &mut self.script_cache, cx, args, &keys)
            } else {
                commands::exec(&mut Ctx { store: &mut self.store, now_us, resp3: session.resp3 }, args)
            }
        };
        // No replicas: nothing reads the record of changed keys.
        self.store.clear_effects();
        reply
    }

    fn memory_usage(&self, now_us: u64, args: &[Bytes]) -> Value {
        let Some(key) = args.get(2) else { return commands::arity_error("memory|usage") };
        self.store.usage(key, now_us / 1000).map_or(Value::Nil, |n| Value::Int(n as i64))
    }

    /// `INFO`: what a standalone primary without replicas says (the fields the client's
    /// standalone topology and the cache's eviction check read).
    fn info(&self, args: &[Bytes], resp3: bool) -> Value {
        let want: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
        let all = want.is_empty() || want.iter().any(|w| w == "all" || w == "default" || w == "everything");
        let show = |s: &str| all || want.iter().any(|w| w == s);
        let mut out = String::new();
        if show("server") {
            out += "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.0.0\r\n";
            out += &format!("run_id:{:040x}\r\ntcp_port:{}\r\n\r\n", 0x5107_cac4e_u64, self.addr.port());
        }
        if show("replication") {
            out += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n";
            out += &format!("master_replid:{:040x}\r\nmaster_repl_offset:0\r\n\r\n", 1);
        }
        if show("memory") {
            out += &format!(
                "# Memory\r\nused_memory:{}\r\nmaxmemory:{}\r\nmaxmemory_policy:{}\r\n\r\n",
                self.store.used_memory(),
                self.maxmemory,
                self.policy.name()
            );
        }
        if show("stats") {
            out +=
                &format!("# Stats\r\nevicted_keys:{}\r\nexpired_keys:{}\r\n\r\n", self.evicted, self.expired);
        }
        if show("cluster") {
            out += "# Cluster\r\ncluster_enabled:0\r\n\r\n";
        }
        if show("keyspace") {
            out += "# Keyspace\r\n";
            if !self.store.is_empty() {
                let (keys, expires) = (self.store.len(), self.store.volatile_count());
                out += &format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        if resp3 {
            Value::Verbatim { format: Bytes::from_static(b"txt"), text: Bytes::from(out) }
        } else {
            Value::Bulk(Bytes::from(out))
        }
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`: switches the connection's protocol.
fn hello(args: &[Bytes], session: &mut Session) -> Value {
    let resp3 = match args.get(1).map(AsRef::as_ref) {
        None => session.resp3,
        Some(b"3") => true,
        Some(b"2") => false,
        Some(_) => return err("NOPROTO unsupported protocol version"),
    };
    if args.iter().any(|a| a.eq_ignore_ascii_case(b"AUTH")) {
        return err("WRONGPASS invalid username-password pair or user is disabled.");
    }
    session.resp3 = resp3;
    let pairs = [
        ("server", Value::Bulk(Bytes::from_static(b"valkey"))),
        ("version", Value::Bulk(Bytes::from_static(b"9.0.0"))),
        ("proto", Value::Int(if resp3 { 3 } else { 2 })),
        ("mode", Value::Bulk(Bytes::from_static(b"standalone"))),
        ("role", Value::Bulk(Bytes::from_static(b"master"))),
    ];
    let pairs = pairs.into_iter().map(|(k, v)| (Value::Bulk(Bytes::from_static(k.as_bytes())), v));
    if resp3 { Value::Map(pairs.collect()) } else { Value::Array(pairs.flat_map(|(k, v)| [k, v]).collect()) }
}

/// `WAIT numreplicas timeout`: no replica ever acknowledges (there are none), at once.
fn wait(args: &[Bytes]) -> Value {
    if args.len() != 3 {
        return commands::arity_error("WAIT");
    }
    let (Some(_), Some(t)) =
        (crate::command_ctx::parse_int(&args[1]), crate::command_ctx::parse_int(&args[2]))
    else {
        return err("ERR value is not an integer or out of range");
    };
    if t < 0 {
        return err("ERR timeout is negative");
    }
    Value::Int(0)
}
