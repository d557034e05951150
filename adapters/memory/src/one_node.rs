//! Unit tests of the commands and scripts: one node and a connection to it, on a clock the
//! test moves.

use bytes::Bytes;
use slotcache_core::{NodeAddr, Value};

use crate::node::{Node, Session};

/// One node, a session on it, and its clock.
pub(crate) struct OneNode {
    pub(crate) c: Node,
    pub(crate) s: Session,
    now_us: u64,
}

impl OneNode {
    pub(crate) fn new() -> Self {
        Self {
            c: Node::new(NodeAddr::new("127.0.0.1", 7000)),
            s: Session::default(),
            now_us: 1_700_000_000_000_000,
        }
    }

    /// The node's clock in ms.
    pub(crate) const fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }

    /// Runs one command.
    pub(crate) fn run(&mut self, args: &[&[u8]]) -> Value {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        self.c.execute(self.now_us, &args, &mut self.s)
    }

    /// `EVAL src 1 key argv...`.
    pub(crate) fn eval(&mut self, src: &str, key: &[u8], argv: &[&[u8]]) -> Value {
        let mut a: Vec<&[u8]> = vec![b"EVAL", src.as_bytes(), b"1", key];
        a.extend_from_slice(argv);
        self.run(&a)
    }

    /// Moves the clock on by `ms`.
    pub(crate) const fn advance(&mut self, ms: u64) {
        self.now_us += ms * 1000;
    }
}

/// A bulk string reply.
pub(crate) fn b(s: &[u8]) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s))
}
