//! The near cache driven by a small model of two tracking servers over FIFO connections, by
//! thousands of seeds: requests and replies, pushes that overtake replies on other
//! connections, writes by other clients, local writes, FLUSHDB (null pushes), migrations
//! (the source's push, MOVED until the client refreshes), lost connections. Every hit must
//! return a version no older than what the client has been told about (a push delivered, its
//! own write), and once every connection is drained, exactly the servers' current version.
//! Each classic bug variant must be caught.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::rng::Rng;
use crate::slot::{Slot, key_slot};
use crate::topology::SlotRange;

const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];
const TOKEN: &str = "tok";
const NODES: u32 = 2;

/// A version of a key and, for a tagged read, of the token.
type Value = (u64, Option<u64>);

enum Req {
    Read { id: u64, key: &'static str },
}

enum Msg {
    Reply { id: u64, version: u64 },
    Moved { id: u64 },
    Push { key: &'static str, version: u64 },
    Null { versions: Vec<(&'static str, u64)> },
}

#[derive(Default)]
struct Server {
    owned: HashSet<&'static str>,
    tracked: HashSet<&'static str>,
    requests: VecDeque<Req>,
    channel: VecDeque<Msg>,
}

struct Pending {
    ticket: Ticket,
    link: Link,
    token_link: Option<Link>,
    tagged: bool,
    key_version: Option<u64>,
    token_version: Option<u64>,
    failed: bool,
}

struct World {
    rng: Rng,
    now: Instant,
    cache: NearCache<Value>,
    servers: Vec<Server>,
    generation: Vec<u64>,
    versions: HashMap<&'static str, u64>,
    /// The client's view of each key's owner.
    view: HashMap<&'static str, u32>,
    /// The newest version the client was told of (a push delivered, its own write).
    told: HashMap<&'static str, u64>,
    pending: HashMap<u64, Pending>,
    /// Which pending read each request id belongs to, and whether it reads the token.
    requests: HashMap<u64, (u64, bool)>,
    next_id: u64,
    hits: u64,
}

fn slot(key: &str) -> Slot {
    key_slot(key.as_bytes())
}

fn range(key: &str) -> SlotRange {
    SlotRange::new(slot(key), slot(key)).expect("range")
}

impl World {
    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn new(seed: u64, variant: Variant) -> Self {
        let now = Instant::now();
        let config =
            NearConfig::new(1 << 16, Duration::from_secs(3600), Duration::from_secs(3600)).expect("valid");
        let mut w = Self {
            rng: Rng::new(seed),
            now,
            cache: NearCache::new(config).with_variant(variant),
            servers: (0..NODES).map(|_| Server::default()).collect(),
            generation: vec![1; NODES as usize],
            versions: HashMap::new(),
            view: HashMap::new(),
            told: HashMap::new(),
            pending: HashMap::new(),
            requests: HashMap::new(),
            next_id: 0,
            hits: 0,
        };
        for node in 0..NODES {
            w.cache.connected(w.link(node), now);
        }
        for (i, key) in KEYS.iter().chain([TOKEN].iter()).enumerate() {
            let node = u32::try_from(i).expect("few keys") % NODES;
            w.servers[node as usize].owned.insert(key);
            w.view.insert(key, node);
            w.versions.insert(key, 0);
            w.cache.route(range(key), Some(node));
        }
        w
    }

    fn link(&self, node: u32) -> Link {
        Link { node, generation: self.generation[node as usize] }
    }

    fn owner(&self, key: &str) -> u32 {
        let owner = self.servers.iter().position(|s| s.owned.contains(key)).expect("owned");
        u32::try_from(owner).expect("few nodes")
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::try_from(self.rng.below(items.len() as u64)).expect("small")]
    }

    fn check_hit(&self, key: &str, (kv, tv): Value, tagged: bool) -> Result<(), String> {
        let told = |k: &str| self.told.get(k).copied().unwrap_or(0);
        if kv < told(key) {
            return Err(format!("hit {key} version {kv}, but the client was told of {}", told(key)));
        }
        if tagged && tv.unwrap_or(0) < told(TOKEN) {
            return Err(format!("hit {key} under token {tv:?}, but the client was told of {}", told(TOKEN)));
        }
        Ok(())
    }

    fn get(&mut self, key: &'static str, tagged: bool) -> Result<(), String> {
        if let Lookup::Hit(v) = self.cache.lookup(key.as_bytes(), self.now) {
            let v = *v;
            self.hits += 1;
            return self.check_hit(key, v, v.1.is_some());
        }
        let node = self.view[key];
        let mut read = Read {
            key: Bytes::from_static(key.as_bytes()),
            slot: slot(key),
            link: self.link(node),
            deps: Vec::new(),
            sent_at: self.now,
        };
        let tok_node = self.view[TOKEN];
        if tagged {
            read.deps.push(Dep {
                key: Bytes::from_static(TOKEN.as_bytes()),
                slot: slot(TOKEN),
                link: self.link(tok_node),
            });
        }
        let Some(ticket) = self.cache.begin(read) else { return Ok(()) };
        let read_id = self.next_id;
        self.next_id += 3;
        let (kid, tid) = (read_id + 1, read_id + 2);
        self.servers[node as usize].requests.push_back(Req::Read { id: kid, key });
        self.requests.insert(kid, (read_id, false));
        if tagged {
            self.servers[tok_node as usize].requests.push_back(Req::Read { id: tid, key: TOKEN });
            self.requests.insert(tid, (read_id, true));
        }
        let (link, token_link) = (self.link(node), tagged.then(|| self.link(tok_node)));
        self.pending.insert(
            read_id,
            Pending {
                ticket,
                link,
                token_link,
                tagged,
                key_version: None,
                token_version: None,
                failed: false,
            },
        );
        Ok(())
    }

    fn serve(&mut self, node: u32) {
        let s = &mut self.servers[node as usize];
        let Some(Req::Read { id, key }) = s.requests.pop_front() else { return };
        if s.owned.contains(key) {
            s.tracked.insert(key);
            s.channel.push_back(Msg::Reply { id, version: self.versions[key] });
        } else {
            s.channel.push_back(Msg::Moved { id });
        }
    }

    fn write(&mut self, key: &'static str, local: bool) {
        let version = self.versions[key] + 1;
        self.versions.insert(key, version);
        if local {
            self.cache.local_write(key.as_bytes());
            self.told.insert(key, version);
        }
        let owner = self.owner(key) as usize;
        if self.servers[owner].tracked.remove(key) {
            self.servers[owner].channel.push_back(Msg::Push { key, version });
        }
    }

    fn flushdb(&mut self, node: u32) {
        let s = &mut self.servers[node as usize];
        let owned: Vec<&'static str> = s.owned.iter().copied().collect();
        s.tracked.clear();
        let mut versions = Vec::new();
        for key in owned {
            let v = self.versions[key] + 1;
            self.versions.insert(key, v);
            versions.push((key, v));
        }
        self.servers[node as usize].channel.push_back(Msg::Null { versions });
    }

    /// The key's slot moves to the other node: the source deletes it (a push if tracked),
    /// the target has the same version. The client learns it at its next refresh.
    fn migrate(&mut self, key: &'static str) {
        let from = self.owner(key);
        let to = (from + 1) % NODES;
        let s = &mut self.servers[from as usize];
        s.owned.remove(key);
        if s.tracked.remove(key) {
            s.channel.push_back(Msg::Push { key, version: self.versions[key] });
        }
        self.servers[to as usize].owned.insert(key);
    }

    fn refresh(&mut self) {
        for key in KEYS.iter().chain([TOKEN].iter()) {
            let owner = self.owner(key);
            if self.view[key] != owner {
                self.view.insert(key, owner);
                self.cache.route(range(key), Some(owner));
            }
        }
    }

    /// The connection to `node` is lost and a new one opened: replies and pushes in flight on
    /// it are gone, and so is the server's tracking of it.
    fn reconnect(&mut self, node: u32) {
        let old = self.link(node);
        let s = &mut self.servers[node as usize];
        s.channel.clear();
        s.requests.clear();
        s.tracked.clear();
        self.cache.disconnected(old);
        self.generation[node as usize] += 1;
        self.cache.connected(self.link(node), self.now);
        // Reads with a request on the lost connection fail (the adapter answers them with the
        // connection's loss).
        let lost: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.link == old || p.token_link == Some(old))
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            let p = self.pending.remove(&id).expect("pending");
            self.cache.abandon(p.ticket);
        }
    }

    fn deliver(&mut self, node: u32) {
        let Some(msg) = self.servers[node as usize].channel.pop_front() else { return };
        match msg {
            Msg::Push { key, version } => {
                self.cache.invalidated(&[key]);
                let told = self.told.entry(key).or_insert(0);
                *told = (*told).max(version);
            }
            Msg::Null { versions } => {
                self.cache.flushed(self.link(node));
                // The client can only know of the keys it routes to that node: a key that moved
                // there is still served from its old owner until that owner's push or the
                // client's refresh (staleness bounded by those, not by this push).
                for (key, v) in versions.into_iter().filter(|(k, _)| self.view[k] == node) {
                    let told = self.told.entry(key).or_insert(0);
                    *told = (*told).max(v);
                }
            }
            Msg::Reply { id, version } => self.answered(id, Some(version)),
            Msg::Moved { id } => self.answered(id, None),
        }
    }

    fn answered(&mut self, id: u64, version: Option<u64>) {
        let Some((read_id, token)) = self.requests.remove(&id) else { return };
        let Some(p) = self.pending.get_mut(&read_id) else { return };
        match (version, token) {
            (None, _) => p.failed = true,
            (Some(v), false) => p.key_version = Some(v),
            (Some(v), true) => p.token_version = Some(v),
        }
        let done = p.failed || (p.key_version.is_some() && (!p.tagged || p.token_version.is_some()));
        if !done {
            return;
        }
        let p = self.pending.remove(&read_id).expect("pending");
        if p.failed {
            // The other half may still come: it finds no pending read and is dropped.
            self.cache.abandon(p.ticket);
            return;
        }
        let value = (p.key_version.expect("read"), p.token_version);
        let _ = self.cache.commit(p.ticket, value, 16, Pttl::Persistent, self.now);
    }

    fn quiescent_check(&mut self) -> Result<(), String> {
        for _ in 0..1_000 {
            let busy: Vec<u32> = (0..NODES)
                .filter(|n| {
                    let s = &self.servers[*n as usize];
                    !s.requests.is_empty() || !s.channel.is_empty()
                })
                .collect();
            let Some(&node) = busy.first() else { break };
            self.serve(node);
            self.deliver(node);
        }
        self.refresh();
        for key in KEYS {
            if let Lookup::Hit(&(kv, tv)) = self.cache.lookup(key.as_bytes(), self.now) {
                if kv != self.versions[key] || tv.is_some_and(|t| t != self.versions[TOKEN]) {
                    return Err(format!(
                        "quiescent: hit {key} = ({kv}, {tv:?}), the servers hold ({}, {})",
                        self.versions[key], self.versions[TOKEN]
                    ));
                }
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), String> {
        self.now += Duration::from_millis(1);
        let node = u32::try_from(self.rng.below(u64::from(NODES))).expect("few nodes");
        let key = self.pick(&KEYS);
        match self.rng.below(100) {
            0..30 => {
                let tagged = self.rng.below(2) == 0;
                self.get(key, tagged)?;
            }
            30..50 => self.serve(node),
            50..70 => self.deliver(node),
            70..78 => self.write(key, false),
            78..82 => self.write(TOKEN, false),
            82..86 => self.write(key, true),
            86..88 => self.flushdb(node),
            88..90 => self.migrate(key),
            90..95 => self.refresh(),
            95..97 => self.reconnect(node),
            _ => self.quiescent_check()?,
        }
        Ok(())
    }
}

/// The first failing seed among `seeds`, with what failed.
fn first_failure(seeds: u64, variant: Variant) -> Option<(u64, String)> {
    let mut hits = 0;
    for seed in 1..=seeds {
        let mut w = World::new(seed, variant);
        for _ in 0..300 {
            if let Err(e) = w.step() {
                return Some((seed, e));
            }
        }
        if let Err(e) = w.quiescent_check() {
            return Some((seed, e));
        }
        hits += w.hits;
    }
    assert!(hits > seeds, "the model served hits ({hits} over {seeds} seeds)");
    println!("{seeds} seeds, 300 steps each: {hits} hits checked, 0 stale");
    None
}

#[test]
fn two_thousand_seeds_serve_nothing_stale() {
    assert_eq!(first_failure(2_000, Variant::Correct), None);
}

#[test]
fn insert_after_invalidation_is_caught() {
    let found = first_failure(2_000, Variant::InsertAfterInvalidation);
    println!("caught: {found:?}");
    assert!(
        found.is_some_and(|(_, e)| e.contains("told")),
        "the variant must be caught serving what a push replaced"
    );
}

#[test]
fn null_push_ignored_is_caught() {
    let found = first_failure(2_000, Variant::NullPushIgnored);
    println!("caught: {found:?}");
    assert!(found.is_some(), "the variant must be caught");
}
