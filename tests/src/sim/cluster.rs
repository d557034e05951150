//! The simulated cluster's state and command execution.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use slotcache_core::{NodeAddr, SLOT_COUNT, Slot, Value, key_slot};

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
    /// Answers the next N keyed commands with `fail_with_once`.
    pub fail_next: u32,
    /// The error used by `fail_next`.
    pub fail_with_once: String,
    /// Its keys (a replica's copy follows its primary synchronously).
    pub data: HashMap<Bytes, Bytes>,
    /// Commands received, by upper-case name.
    pub commands: BTreeMap<String, u64>,
}

/// A simulated cluster: nodes, who owns which slot, and slots being migrated.
#[derive(Debug, Clone)]
pub struct SimCluster {
    /// The nodes by address.
    pub nodes: BTreeMap<NodeAddr, SimNode>,
    /// Owner (primary) of each slot.
    pub owner: Vec<Option<NodeAddr>>,
    /// Slots migrating: slot → (source, target).
    pub migrating: HashMap<u16, (NodeAddr, NodeAddr)>,
    /// The password every node demands, if any.
    pub password: Option<String>,
    /// Whether the nodes understand `HELLO` (false = an old RESP2-only server).
    pub hello: bool,
}

/// The address of simulated node `i`.
#[must_use]
pub fn addr(i: u16) -> NodeAddr {
    NodeAddr::new("10.0.0.1", 7000 + i)
}

impl SimCluster {
    /// `masters` primaries owning equal slot ranges, each with `replicas` replicas.
    /// Primaries are nodes `0..masters`, replicas follow.
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
            nodes.insert(a.clone(), SimNode::new(a, None, m));
        }
        for r in 0..masters * replicas {
            let a = addr(masters + r);
            nodes.insert(a.clone(), SimNode::new(a, Some(addr(r % masters)), masters + r));
        }
        Self { nodes, owner, migrating: HashMap::new(), password: None, hello: true }
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

    /// Promotes `replica`: it takes its primary's slots and data; the old primary becomes its
    /// replica (and is usually also marked down by the scenario).
    pub fn failover(&mut self, replica: &NodeAddr) {
        let Some(old) = self.nodes.get(replica).and_then(|n| n.replica_of.clone()) else { return };
        for o in &mut self.owner {
            if o.as_ref() == Some(&old) {
                *o = Some(replica.clone());
            }
        }
        let others: Vec<NodeAddr> = self
            .nodes
            .values()
            .filter(|n| n.replica_of.as_ref() == Some(&old) && &n.addr != replica)
            .map(|n| n.addr.clone())
            .collect();
        for o in others {
            if let Some(n) = self.nodes.get_mut(&o) {
                n.replica_of = Some(replica.clone());
            }
        }
        if let Some(n) = self.nodes.get_mut(replica) {
            n.replica_of = None;
        }
        if let Some(n) = self.nodes.get_mut(&old) {
            n.replica_of = Some(replica.clone());
        }
    }

    /// Starts migrating `slot` to `target` (legacy `SETSLOT MIGRATING/IMPORTING`).
    pub fn start_migration(&mut self, slot: Slot, target: &NodeAddr) {
        let source = self.owner[slot.index()].clone().expect("slot owned");
        self.migrating.insert(slot.get(), (source, target.clone()));
    }

    /// Moves one key of a migrating slot to the target (`MIGRATE`).
    pub fn migrate_key(&mut self, key: &[u8]) {
        let slot = key_slot(key).get();
        let Some((src, dst)) = self.migrating.get(&slot).cloned() else { return };
        let v = self.nodes.get_mut(&src).and_then(|n| n.data.remove(key));
        if let Some(v) = v {
            self.write(&dst, Bytes::copy_from_slice(key), v);
        }
    }

    /// Ends a migration: the target owns the slot (`SETSLOT NODE`), remaining keys move along.
    pub fn finish_migration(&mut self, slot: Slot) {
        let Some((src, dst)) = self.migrating.remove(&slot.get()) else { return };
        let keys: Vec<Bytes> = self
            .nodes
            .get(&src)
            .map(|n| n.data.keys().filter(|k| key_slot(k) == slot).cloned().collect())
            .unwrap_or_default();
        for k in keys {
            if let Some(v) = self.nodes.get_mut(&src).and_then(|n| n.data.remove(&k)) {
                self.write(&dst, k, v);
            }
        }
        self.owner[slot.index()] = Some(dst);
    }

    /// Writes on a primary and its replicas.
    fn write(&mut self, primary: &NodeAddr, key: Bytes, value: Bytes) {
        for n in self.nodes.values_mut() {
            if &n.addr == primary || n.replica_of.as_ref() == Some(primary) {
                n.data.insert(key.clone(), value.clone());
            }
        }
    }

    fn delete(&mut self, primary: &NodeAddr, key: &[u8]) -> bool {
        let mut found = false;
        for n in self.nodes.values_mut() {
            if &n.addr == primary || n.replica_of.as_ref() == Some(primary) {
                found |= n.data.remove(key).is_some() && &n.addr == primary;
            }
        }
        found
    }

    /// `CLUSTER SHARDS` as this cluster would answer it (RESP3 maps or RESP2 flat arrays).
    #[must_use]
    pub fn shards_reply(&self, resp3: bool) -> Value {
        let b = |s: &str| Value::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let obj = |pairs: Vec<(&str, Value)>| {
            if resp3 {
                Value::Map(pairs.into_iter().map(|(k, v)| (b(k), v)).collect())
            } else {
                Value::Array(pairs.into_iter().flat_map(|(k, v)| [b(k), v]).collect())
            }
        };
        let mut shards = Vec::new();
        for p in self.primaries() {
            let mut ranges = Vec::new();
            let mut s = 0usize;
            while s < self.owner.len() {
                if self.owner[s].as_ref() == Some(&p) {
                    let start = s;
                    while s < self.owner.len() && self.owner[s].as_ref() == Some(&p) {
                        s += 1;
                    }
                    ranges.push(Value::Int(start as i64));
                    ranges.push(Value::Int(s as i64 - 1));
                } else {
                    s += 1;
                }
            }
            let node_obj = |n: &SimNode| {
                obj(vec![
                    ("id", b(&n.id)),
                    ("port", Value::Int(i64::from(n.addr.port()))),
                    ("ip", b(n.addr.host())),
                    ("endpoint", b(n.addr.host())),
                    ("role", b(if n.replica_of.is_some() { "replica" } else { "master" })),
                    ("replication-offset", Value::Int(100)),
                    ("health", b(if n.up { "online" } else { "fail" })),
                ])
            };
            let mut members = vec![node_obj(&self.nodes[&p])];
            for n in self.nodes.values().filter(|n| n.replica_of.as_ref() == Some(&p)) {
                members.push(node_obj(n));
            }
            shards.push(obj(vec![("slots", Value::Array(ranges)), ("nodes", Value::Array(members))]));
        }
        Value::Array(shards)
    }

    /// Executes one command on node `at` for a connection with the given flags.
    pub fn execute(&mut self, at: &NodeAddr, args: &[Bytes], session: &mut Session) -> Value {
        let err = |s: &str| Value::Error(Bytes::copy_from_slice(s.as_bytes()));
        let ok = || Value::Simple(Bytes::from_static(b"OK"));
        let name = args.first().map(|a| String::from_utf8_lossy(a).to_uppercase()).unwrap_or_default();
        let sub = args.get(1).map(|a| String::from_utf8_lossy(a).to_uppercase()).unwrap_or_default();
        let full = if name == "CLUSTER" || name == "CLIENT" { format!("{name} {sub}") } else { name.clone() };
        let Some(node) = self.nodes.get_mut(at) else { return err("ERR no such node") };
        *node.commands.entry(full.clone()).or_insert(0) += 1;
        let is_replica = node.replica_of.is_some();
        let primary = node.replica_of.clone().unwrap_or_else(|| at.clone());
        // Connection-level commands first.
        match full.as_str() {
            "HELLO" => {
                if !self.hello {
                    return err("ERR unknown command 'HELLO', with args beginning with: '3'");
                }
                if let Some(pw) = &self.password {
                    let given = args
                        .iter()
                        .position(|a| a.eq_ignore_ascii_case(b"AUTH"))
                        .and_then(|i| args.get(i + 2));
                    if given.map(|g| g.as_ref()) != Some(pw.as_bytes()) {
                        return err("WRONGPASS invalid username-password pair or user is disabled.");
                    }
                    session.authed = true;
                }
                session.resp3 = args.get(1).is_some_and(|v| v.as_ref() == b"3");
                return Value::Map(vec![(
                    Value::Bulk(Bytes::from_static(b"server")),
                    Value::Bulk(Bytes::from_static(b"valkey")),
                )]);
            }
            "AUTH" => {
                return if self.password.as_deref().map(str::as_bytes) == args.last().map(|a| a.as_ref()) {
                    session.authed = true;
                    ok()
                } else {
                    err("WRONGPASS invalid username-password pair or user is disabled.")
                };
            }
            _ => {}
        }
        if self.password.is_some() && !session.authed {
            return err("NOAUTH Authentication required.");
        }
        let node = self.nodes.get_mut(at).expect("checked");
        if let Some(e) = &node.fail_with {
            return err(e);
        }
        match full.as_str() {
            "CLIENT SETNAME" => return ok(),
            "READONLY" => {
                session.readonly = true;
                return ok();
            }
            "ASKING" => {
                session.asking = true;
                return ok();
            }
            "PING" => return Value::Simple(Bytes::from_static(b"PONG")),
            "CLUSTER SHARDS" => return self.shards_reply(session.resp3),
            "DBSIZE" => return Value::Int(node.data.len() as i64),
            _ => {}
        }
        let keys: Vec<&Bytes> = match name.as_str() {
            "GET" | "SET" | "INCR" | "DEL" | "EXISTS" | "UNLINK" if args.len() >= 2 => {
                if matches!(name.as_str(), "DEL" | "EXISTS" | "UNLINK") {
                    args[1..].iter().collect()
                } else {
                    vec![&args[1]]
                }
            }
            "MGET" => args[1..].iter().collect(),
            "MSET" => args[1..].iter().step_by(2).collect(),
            _ => return err(&format!("ERR unknown command '{name}'")),
        };
        if node.fail_next > 0 {
            node.fail_next -= 1;
            let e = node.fail_with_once.clone();
            return err(&e);
        }
        let Some(first) = keys.first() else { return err("ERR wrong number of arguments") };
        let slot = key_slot(first);
        if keys.iter().any(|k| key_slot(k) != slot) {
            return err("CROSSSLOT Keys in request don't hash to the same slot");
        }
        let asking = std::mem::take(&mut session.asking);
        let owner = self.owner[slot.index()].clone();
        let migration = self.migrating.get(&slot.get()).cloned();
        // As Valkey: a replica serves reads only on a READONLY connection, never writes; a
        // migration target serves a key only right after ASKING.
        let serving = match (&owner, &migration) {
            (Some(o), _) if *o == primary && (!is_replica || (session.readonly && !is_write(&name))) => true,
            (_, Some((_, dst))) if *dst == primary && !is_replica && asking => true,
            _ => false,
        };
        if !serving {
            let Some(o) = owner else { return err("CLUSTERDOWN Hash slot not served") };
            return err(&format!("MOVED {} {}:{}", slot.get(), o.host(), o.port()));
        }
        // Migration on the source: missing keys are redirected with ASK (multi-key: TRYAGAIN).
        if let Some((src, dst)) = &migration
            && *src == primary
        {
            let data = &self.nodes[at].data;
            let missing = keys.iter().filter(|k| !data.contains_key(**k)).count();
            if missing > 0 {
                if keys.len() > 1 && missing < keys.len() {
                    return err("TRYAGAIN Multiple keys request during rehashing of slot");
                }
                return err(&format!("ASK {} {}:{}", slot.get(), dst.host(), dst.port()));
            }
        }
        let data = &self.nodes[at].data;
        match name.as_str() {
            "GET" => data.get(&args[1]).map_or(Value::Nil, |v| Value::Bulk(v.clone())),
            "MGET" => Value::Array(
                args[1..]
                    .iter()
                    .map(|k| data.get(k).map_or(Value::Nil, |v| Value::Bulk(v.clone())))
                    .collect(),
            ),
            "EXISTS" => Value::Int(args[1..].iter().filter(|k| data.contains_key(*k)).count() as i64),
            "SET" if args.len() >= 3 => {
                self.write(&primary, args[1].clone(), args[2].clone());
                ok()
            }
            "MSET" if args.len() % 2 == 1 => {
                for kv in args[1..].chunks(2) {
                    self.write(&primary, kv[0].clone(), kv[1].clone());
                }
                ok()
            }
            "INCR" => {
                let n: i64 =
                    data.get(&args[1]).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(0)
                        + 1;
                self.write(&primary, args[1].clone(), Bytes::from(n.to_string()));
                Value::Int(n)
            }
            "DEL" | "UNLINK" => {
                let mut n = 0;
                for k in &args[1..] {
                    n += i64::from(self.delete(&primary, k));
                }
                Value::Int(n)
            }
            _ => err("ERR wrong number of arguments"),
        }
    }
}

fn is_write(name: &str) -> bool {
    matches!(name, "SET" | "MSET" | "INCR" | "DEL" | "UNLINK")
}

impl SimNode {
    fn new(addr: NodeAddr, replica_of: Option<NodeAddr>, i: u16) -> Self {
        Self {
            addr,
            id: format!("{i:040x}"),
            replica_of,
            up: true,
            paused: false,
            fail_with: None,
            fail_next: 0,
            fail_with_once: String::new(),
            data: HashMap::new(),
            commands: BTreeMap::new(),
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
}
