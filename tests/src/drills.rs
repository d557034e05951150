//! Drills: things that happen to real clusters, done on purpose, each with a wait for the
//! cluster to have really done it.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use slotcache_core::Value;

use crate::cluster::Cluster;
use crate::resp;
use crate::topo::Role;
use crate::wait::{scaled, wait_until};
use crate::{Error, Result, ResultExt, bail, procs};

/// The flavour of `CLUSTER FAILOVER` sent to a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverMode {
    /// Coordinated with the master: no write is lost.
    Default,
    /// Without the master's agreement (it may be down), still with a vote of the masters.
    Force,
    /// Without any vote: the replica bumps the epoch and takes the slots.
    Takeover,
}

/// Default bound for drill waits (times `SLOTCACHE_TIMEOUT_SCALE`).
pub const DRILL_TIMEOUT: Duration = Duration::from_secs(30);

impl Cluster {
    fn running_pid(&self, i: usize) -> Result<u32> {
        self.nodes
            .get(i)
            .and_then(crate::Node::pid)
            .ok_or_else(|| Error::new(format!("node {i} is not running")))
    }

    /// Kills node `i` with `SIGKILL` and reaps it (its folder stays, so it can be restarted).
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let node = self.node_mut(i)?;
        let mut child = node.child.take().ok_or_else(|| Error::new(format!("node {i} is not running")))?;
        child.kill().context("SIGKILL")?;
        child.wait().context("reaping")?;
        node.paused = false;
        Ok(())
    }

    /// Stops node `i` gracefully (`SIGTERM`, up to 10 s, then `SIGKILL`) and reaps it.
    pub fn stop_node(&mut self, i: usize) -> Result<()> {
        let pid = self.running_pid(i)?;
        procs::signal(pid, Signal::SIGCONT)?;
        procs::signal(pid, Signal::SIGTERM)?;
        let node = self.node_mut(i)?;
        let child = node.child.as_mut().ok_or_else(|| Error::new("gone"))?;
        let graceful = wait_until(Duration::from_secs(10), "node to exit after SIGTERM", || {
            Ok(child.try_wait()?.is_some())
        });
        if graceful.is_err() {
            child.kill()?;
        }
        child.wait()?;
        node.child = None;
        node.paused = false;
        Ok(())
    }

    /// Freezes node `i` with `SIGSTOP` (it neither answers nor gossips) and waits until the
    /// kernel reports it stopped.
    pub fn pause(&mut self, i: usize) -> Result<()> {
        let pid = self.running_pid(i)?;
        procs::signal(pid, Signal::SIGSTOP)?;
        wait_until(Duration::from_secs(5), "node to be stopped", || Ok(procs::state(pid) == Some('T')))?;
        self.node_mut(i)?.paused = true;
        Ok(())
    }

    /// Wakes node `i` with `SIGCONT` and waits until it answers `PING` again.
    pub fn resume(&mut self, i: usize) -> Result<()> {
        let pid = self.running_pid(i)?;
        procs::signal(pid, Signal::SIGCONT)?;
        wait_until(Duration::from_secs(5), "node to run again", || Ok(procs::state(pid) != Some('T')))?;
        self.node_mut(i)?.paused = false;
        wait_until(scaled(Duration::from_secs(10)), "node to answer PING", || {
            Ok(self.cmd_text(i, ["PING"])? == "PONG")
        })?;
        Ok(())
    }

    /// Starts node `i` again (after [`Cluster::kill`] or [`Cluster::stop_node`]) with the same
    /// flags, port and folder: it keeps its `nodes.conf`, so it rejoins the cluster it knew (a
    /// failed-over master comes back as a replica). Returns once it answers `PING`; use
    /// [`Cluster::wait_healthy`] to wait for it to rejoin.
    pub fn restart(&mut self, i: usize) -> Result<Duration> {
        let t0 = Instant::now();
        let before = self.node_mut(i)?.id().to_owned();
        self.respawn(i)?;
        if self.nodes[i].id() != before {
            bail!("node {i} came back with id {} instead of {before}", self.nodes[i].id());
        }
        Ok(t0.elapsed())
    }

    /// Sends `CLUSTER FAILOVER [FORCE|TAKEOVER]` to replica `i` and waits until it is a master
    /// everywhere and, if its old master is live, until that one replicates it. Returns the time
    /// from the command to the end of the wait.
    pub fn failover(&self, i: usize, mode: FailoverMode) -> Result<Duration> {
        let t0 = Instant::now();
        let old = self.master_of(i)?.ok_or_else(|| Error::new(format!("node {i} is not a replica")))?;
        let mut args = vec!["CLUSTER", "FAILOVER"];
        match mode {
            FailoverMode::Default => {}
            FailoverMode::Force => args.push("FORCE"),
            FailoverMode::Takeover => args.push("TAKEOVER"),
        }
        self.conn(i)?.cmd_ok(&args)?;
        self.wait_promoted(i, DRILL_TIMEOUT)?;
        if self.nodes[old].is_live() {
            self.wait_replica_of(old, i, DRILL_TIMEOUT)?;
        }
        Ok(t0.elapsed())
    }

    /// Waits until node `i` is a master serving slots in the eyes of every live node, and every
    /// live node says `cluster_state:ok`.
    pub fn wait_promoted(&self, i: usize, timeout: Duration) -> Result<Duration> {
        let id = self.nodes[i].id().to_owned();
        wait_until(scaled(timeout), &format!("node {i} to be promoted"), || {
            if self.role(i)? != Role::Master {
                return Ok(false);
            }
            for v in self.live() {
                let entries = self.cluster_nodes(v)?;
                let Some(e) = entries.iter().find(|e| e.id == id) else { return Ok(false) };
                if e.role() != Role::Master || e.slots.is_empty() {
                    return Ok(false);
                }
                let info = self.cmd_text(v, ["CLUSTER", "INFO"])?;
                if crate::topo::info_field(&info, "cluster_state") != Some("ok") {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .map_err(|e| Error::new(format!("{e}\n{}", self.log_tails(15))))
    }

    /// Waits until node `r` replicates node `m` with its link up.
    pub fn wait_replica_of(&self, r: usize, m: usize, timeout: Duration) -> Result<Duration> {
        wait_until(scaled(timeout), &format!("node {r} to replicate node {m}"), || {
            let info = self.info(r, "replication")?;
            let up = crate::topo::info_field(&info, "master_link_status") == Some("up");
            // Its master found by port, or by id when it announces a fault proxy's port.
            Ok(up && self.master_in(r, &info)? == Some(m))
        })
        .map_err(|e| Error::new(format!("{e}\n{}", self.log_tails(15))))
    }

    /// Waits until every live node says `slot` is served by node `owner`.
    pub fn wait_slot_owner(&self, slot: u16, owner: usize, timeout: Duration) -> Result<Duration> {
        let id = self.nodes[owner].id().to_owned();
        wait_until(scaled(timeout), &format!("slot {slot} to be owned by node {owner} everywhere"), || {
            for v in self.live() {
                let entries = self.cluster_nodes(v)?;
                if !entries.iter().any(|e| e.id == id && e.serves(slot)) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// Starts a legacy (key by key) migration of `slot` from master `from` to master `to`:
    /// `SETSLOT IMPORTING` on the target, then `SETSLOT MIGRATING` on the source. While it is
    /// open, moved keys answer `ASK` and multi-key commands over moved and unmoved keys answer
    /// `TRYAGAIN`. Move keys with [`LegacyMigration::move_keys`] / [`LegacyMigration::move_all`],
    /// end with [`LegacyMigration::finish`].
    pub fn begin_legacy_migration(&self, slot: u16, from: usize, to: usize) -> Result<LegacyMigration> {
        let s = slot.to_string();
        let (from_id, to_id) = (self.nodes[from].id().to_owned(), self.nodes[to].id().to_owned());
        self.conn(to)?.cmd_ok(["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id])?;
        self.conn(from)?.cmd_ok(["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id])?;
        Ok(LegacyMigration { slot, from, to })
    }

    /// A whole legacy migration of one slot (begin, move every key, finish). Returns its time.
    pub fn migrate_slot_legacy(&self, slot: u16, from: usize, to: usize) -> Result<Duration> {
        let t0 = Instant::now();
        let m = self.begin_legacy_migration(slot, from, to)?;
        m.move_all(self)?;
        m.finish(self)?;
        Ok(t0.elapsed())
    }

    /// Valkey 9 atomic slot migration: `CLUSTER MIGRATESLOTS SLOTSRANGE lo hi NODE <to>` sent to
    /// master `from`, then waits until `CLUSTER GETSLOTMIGRATIONS` reports the job as `success`
    /// and every live node says `to` owns `lo` and `hi`. Returns the time taken.
    pub fn migrate_slots(&self, from: usize, to: usize, lo: u16, hi: u16) -> Result<Duration> {
        let t0 = Instant::now();
        let to_id = self.nodes[to].id().to_owned();
        let (los, his) = (lo.to_string(), hi.to_string());
        self.conn(from)?.cmd_ok(["CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", &los, &his, "NODE", &to_id])?;
        // Valkey lists a one-slot job as "656-656"; accept "656" too.
        let range = format!("{lo}-{hi}");
        let single = (lo == hi).then(|| lo.to_string());
        wait_until(scaled(DRILL_TIMEOUT), &format!("slot migration {range} to succeed"), || {
            let jobs = self.cmd(from, ["CLUSTER", "GETSLOTMIGRATIONS"])?;
            // Finished jobs are kept, newest first (gotcha G6): match ours by its slot ranges.
            let job = jobs.as_array().unwrap_or_default().iter().find(|j| {
                let ranges = j.field("slot_ranges").map(resp::display).unwrap_or_default();
                let tgt = j.field("target_node").and_then(Value::as_str).unwrap_or_default();
                let mut tokens = ranges.split(|c: char| !(c.is_ascii_digit() || c == '-'));
                tokens.any(|t| t == range || single.as_deref() == Some(t)) && tgt == to_id
            });
            let Some(job) = job else {
                return Err(Error::new(format!("job not listed: {}", resp::display(&jobs))));
            };
            match job.field("state").and_then(Value::as_str).unwrap_or_default() {
                "success" => Ok(true),
                s @ ("failed" | "cancelled" | "canceled") => Err(Error::new(format!(
                    "migration {s}: {}",
                    job.field("message").map(resp::display).unwrap_or_default()
                ))),
                _ => Ok(false),
            }
        })
        .map_err(|e| Error::new(format!("{e}\n{}", self.log_tails(15))))?;
        self.wait_slot_owner(lo, to, DRILL_TIMEOUT)?;
        self.wait_slot_owner(hi, to, DRILL_TIMEOUT)?;
        Ok(t0.elapsed())
    }

    /// Makes node `i` announce `port` as its client port (`CONFIG SET cluster-announce-port`,
    /// the bus port pinned to its own so the cluster bus is not moved), or its own port again
    /// with `None`; waits until every live node's `CLUSTER NODES` shows it there. Clients that
    /// follow `CLUSTER SHARDS`, `CLUSTER SLOTS` and redirects then reach it through `port` (a
    /// [`FaultProxy`](crate::proxy::FaultProxy)); so does its replica, which replicates from
    /// the announced address.
    pub fn announce_port(&self, i: usize, port: Option<u16>) -> Result<Duration> {
        let own = self.nodes[i].port();
        let (announce, bus) = match port {
            Some(p) => (p.to_string(), (u32::from(own) + 10_000).to_string()),
            None => ("0".to_owned(), "0".to_owned()),
        };
        let mut c = self.conn(i)?;
        c.cmd_ok(["CONFIG", "SET", "cluster-announce-bus-port", &bus])?;
        c.cmd_ok(["CONFIG", "SET", "cluster-announce-port", &announce])?;
        let want = port.unwrap_or(own);
        let id = self.nodes[i].id().to_owned();
        wait_until(scaled(DRILL_TIMEOUT), &format!("every node to see node {i} at port {want}"), || {
            for v in self.live() {
                let seen = self.cluster_nodes(v)?.into_iter().find(|e| e.id == id).and_then(|e| e.addr);
                if seen.map(|a| a.port()) != Some(want) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .map_err(|e| Error::new(format!("{e}\n{}", self.log_tails(15))))
    }

    /// Adds an empty master: starts a node, `CLUSTER MEET`s it and waits until every live node
    /// knows it. Give it slots with [`Cluster::migrate_slots`] or a legacy migration.
    pub fn add_master(&mut self) -> Result<usize> {
        let i = self.spawn_extra_node()?;
        let via = self.live().into_iter().find(|&j| j != i).ok_or_else(|| Error::new("no node to meet"))?;
        self.conn(via)?.cmd_ok([
            "CLUSTER",
            "MEET",
            self.nodes[i].host(),
            &self.nodes[i].port().to_string(),
        ])?;
        self.wait_state_ok(DRILL_TIMEOUT)?;
        Ok(i)
    }

    /// Adds a replica of master `m`: [`Cluster::add_master`], then `CLUSTER REPLICATE`, and waits
    /// for its link to be up and every node to agree.
    pub fn add_replica(&mut self, m: usize) -> Result<usize> {
        let i = self.add_master()?;
        self.conn(i)?.cmd_ok(["CLUSTER", "REPLICATE", self.nodes[m].id()])?;
        self.wait_replica_of(i, m, DRILL_TIMEOUT)?;
        self.wait_healthy(DRILL_TIMEOUT)?;
        Ok(i)
    }

    /// Removes node `i` from the cluster: it must serve no slots and have no replicas. Sends
    /// `CLUSTER FORGET` to every other live node, stops it, and waits until no live node lists
    /// it. Its index stays valid ([`crate::Node::is_removed`]).
    pub fn remove_node(&mut self, i: usize) -> Result<()> {
        let id = self.nodes[i].id().to_owned();
        let view =
            self.live().into_iter().find(|&j| j != i).ok_or_else(|| Error::new("no other live node"))?;
        let entries = self.cluster_nodes(view)?;
        if let Some(e) = entries.iter().find(|e| e.id == id)
            && !e.slots.is_empty()
        {
            bail!("node {i} still serves {} slots: move them away first", e.slot_count());
        }
        if let Some(r) = entries.iter().find(|e| e.master_id.as_deref() == Some(id.as_str()) && !e.troubled())
        {
            bail!("node {i} still has a replica ({}): remove it first", r.id);
        }
        for j in self.live().into_iter().filter(|&j| j != i) {
            self.conn(j)?.cmd_ok(["CLUSTER", "FORGET", &id])?;
        }
        if self.nodes[i].is_running() {
            self.stop_node(i)?;
        }
        self.node_mut(i)?.removed = true;
        wait_until(scaled(DRILL_TIMEOUT), &format!("node {i} to be forgotten everywhere"), || {
            for j in self.live() {
                if self.cluster_nodes(j)?.iter().any(|e| e.id == id) {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        Ok(())
    }
}

/// An open legacy migration of one slot (see [`Cluster::begin_legacy_migration`]).
#[derive(Clone, Debug)]
pub struct LegacyMigration {
    /// The slot.
    pub slot: u16,
    /// The source master.
    pub from: usize,
    /// The target master.
    pub to: usize,
}

impl LegacyMigration {
    /// The keys still on the source (`CLUSTER GETKEYSINSLOT`, at most `max`).
    pub fn keys_left(&self, c: &Cluster, max: usize) -> Result<Vec<Vec<u8>>> {
        let v = c.cmd(self.from, ["CLUSTER", "GETKEYSINSLOT", &self.slot.to_string(), &max.to_string()])?;
        let items =
            v.as_array().ok_or_else(|| Error::new(format!("GETKEYSINSLOT: {}", resp::display(&v))))?;
        Ok(items.iter().filter_map(|k| k.as_bytes().map(|b| b.to_vec())).collect())
    }

    /// Moves these keys to the target with `MIGRATE ... KEYS`.
    pub fn move_keys<K: AsRef<[u8]>>(&self, c: &Cluster, keys: &[K]) -> Result<()> {
        self.migrate(c, keys, false)
    }

    fn migrate<K: AsRef<[u8]>>(&self, c: &Cluster, keys: &[K], replace: bool) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let (host, port) = (c.node(self.to).host(), c.node(self.to).port().to_string());
        let mut args: Vec<&[u8]> = vec![b"MIGRATE", host.as_bytes(), port.as_bytes(), b"", b"0", b"10000"];
        if replace {
            args.push(b"REPLACE");
        }
        args.push(b"KEYS");
        args.extend(keys.iter().map(AsRef::as_ref));
        let v = c.cmd(self.from, &args)?;
        match v.as_str() {
            Some("OK" | "NOKEY") => Ok(()),
            _ => bail!("MIGRATE of slot {} to node {}: {}", self.slot, self.to, resp::display(&v)),
        }
    }

    /// Moves every key left in the slot, 100 at a time. Returns how many were moved.
    pub fn move_all(&self, c: &Cluster) -> Result<usize> {
        self.move_all_with(c, false)
    }

    /// [`LegacyMigration::move_all`] with `MIGRATE ... REPLACE`: a key the target already
    /// holds is overwritten. For a migration carried on by a promoted replica, which may hold a
    /// key whose deletion on its old primary (moved, or deleted, then written again through
    /// `ASK` on the target) it never received.
    pub fn move_all_replacing(&self, c: &Cluster) -> Result<usize> {
        self.move_all_with(c, true)
    }

    fn move_all_with(&self, c: &Cluster, replace: bool) -> Result<usize> {
        let mut moved = 0;
        let deadline = Instant::now() + scaled(Duration::from_secs(120));
        loop {
            let keys = self.keys_left(c, 100)?;
            if keys.is_empty() {
                return Ok(moved);
            }
            if Instant::now() > deadline {
                bail!("slot {} still has keys after 120 s of MIGRATE", self.slot);
            }
            self.migrate(c, &keys, replace)?;
            moved += keys.len();
        }
    }

    /// Ends the migration: `SETSLOT NODE <target>` on the target, the source, then every other
    /// live master; waits until every live node agrees.
    pub fn finish(&self, c: &Cluster) -> Result<()> {
        let left = self.keys_left(c, 1)?;
        if !left.is_empty() {
            bail!("slot {} still has keys on the source: move them first", self.slot);
        }
        let s = self.slot.to_string();
        let to_id = c.node(self.to).id().to_owned();
        let mut order = vec![self.to, self.from];
        order.extend(c.masters()?.into_iter().filter(|m| *m != self.to && *m != self.from));
        for m in order {
            c.conn(m)?.cmd_ok(["CLUSTER", "SETSLOT", &s, "NODE", &to_id])?;
        }
        c.wait_slot_owner(self.slot, self.to, DRILL_TIMEOUT)?;
        Ok(())
    }
}
