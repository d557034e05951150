//! A stand-in for the slotcache client until it lands: sends a command to a node and follows
//! `MOVED`/`ASK` by hand, recording every hop so the demo can show them.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use slotcache_core::{NodeAddr, Value};
use slotcache_tests::{Conn, resp};

/// Most redirects followed for one command.
const MAX_HOPS: usize = 5;

/// One request sent and the reply it got.
pub(super) struct Hop {
    pub(super) addr: NodeAddr,
    pub(super) reply: Value,
}

/// Connections by address, and the seeds to start from.
pub(super) struct RawClient {
    seeds: Vec<NodeAddr>,
    conns: HashMap<NodeAddr, Conn>,
}

impl RawClient {
    pub(super) fn new(seeds: Vec<NodeAddr>) -> Self {
        Self { seeds, conns: HashMap::new() }
    }

    pub(super) fn set_seeds(&mut self, seeds: Vec<NodeAddr>) {
        self.seeds = seeds;
    }

    fn send(&mut self, addr: &NodeAddr, asking: bool, args: &[&str]) -> Result<Value> {
        if !self.conns.contains_key(addr) {
            let c = Conn::connect(addr).map_err(|e| anyhow!("{addr}: {e}"))?;
            self.conns.insert(addr.clone(), c);
        }
        let conn = self.conns.get_mut(addr).ok_or_else(|| anyhow!("no connection"))?;
        let result = (|| {
            if asking {
                conn.cmd(["ASKING"])?;
            }
            conn.cmd(args)
        })();
        result.map_err(|e| {
            self.conns.remove(addr);
            anyhow!("{addr}: {e}")
        })
    }

    /// Sends `args` to `start` and follows redirects. Returns the final reply and every hop.
    pub(super) fn exec_via(&mut self, start: &NodeAddr, args: &[&str]) -> Result<(Value, Vec<Hop>)> {
        let mut hops = Vec::new();
        let mut addr = start.clone();
        let mut asking = false;
        for _ in 0..MAX_HOPS {
            let reply = self.send(&addr, asking, args)?;
            let next = resp::redirect(&reply);
            hops.push(Hop { addr: addr.clone(), reply: reply.clone() });
            match next {
                Some(r) => {
                    asking = r.ask;
                    addr = r.addr;
                }
                None => return Ok((reply, hops)),
            }
        }
        Err(anyhow!("more than {MAX_HOPS} redirects for {}", args.join(" ")))
    }

    /// Sends `args` starting from the first seed that answers, following redirects.
    pub(super) fn exec(&mut self, args: &[&str]) -> Result<(Value, Vec<Hop>)> {
        let mut last = anyhow!("no seeds");
        for seed in self.seeds.clone() {
            match self.exec_via(&seed, args) {
                Ok(r) => return Ok(r),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Deletes the demo's keys from a cluster it did not start (errors ignored).
    pub(super) fn cleanup(&mut self, keys: &[&str]) {
        for k in keys {
            let _ = self.exec(&["DEL", k]);
        }
    }
}
