//! Unit tests of the simulated commands and scripts: one primary and a connection to it.

use bytes::Bytes;
use slotcache_core::{NodeAddr, Value};

use super::{Session, SimCluster, addr};

/// One primary and a connection to it.
pub(crate) struct OneNode {
    pub(crate) c: SimCluster,
    pub(crate) s: Session,
    pub(crate) n: NodeAddr,
}

impl OneNode {
    pub(crate) fn new() -> Self {
        Self { c: SimCluster::new(1, 0), s: Session::default(), n: addr(0) }
    }

    /// The node's clock in ms.
    pub(crate) fn now_ms(&self) -> u64 {
        self.c.now_ms(&self.n)
    }

    /// Runs one command.
    pub(crate) fn run(&mut self, args: &[&[u8]]) -> Value {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        self.c.execute(&self.n, &args, &mut self.s)
    }

    /// `EVAL src 1 key argv...`.
    pub(crate) fn eval(&mut self, src: &str, key: &[u8], argv: &[&[u8]]) -> Value {
        let mut a: Vec<&[u8]> = vec![b"EVAL", src.as_bytes(), b"1", key];
        a.extend_from_slice(argv);
        self.run(&a)
    }

    /// Moves the cluster's clock on by `ms`.
    pub(crate) fn advance(&mut self, ms: u64) {
        let t = self.c.clock + std::time::Duration::from_millis(ms);
        self.c.set_clock(t);
    }
}

/// A bulk string reply.
pub(crate) fn b(s: &[u8]) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s))
}
