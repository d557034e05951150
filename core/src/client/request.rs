//! What callers submit ([`Request`], [`Cmd`]) and what they get back ([`Reply`]).

use bytes::Bytes;
use core::time::Duration;

use crate::node_addr::NodeAddr;
use crate::resp::Value;
use crate::slot::Slot;

use super::error::RequestError;

/// One command: its name and arguments, plus optional routing facts the caller already knows.
///
/// ```
/// use slotcache_core::client::Cmd;
/// let cmd = Cmd::new("SET").arg("user:1").arg("alice").arg("PX").arg(60_000u64);
/// assert_eq!(cmd.args().len(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    args: Vec<Bytes>,
    slot: Option<Slot>,
    read_only: Option<bool>,
    idempotent: Option<bool>,
    after: Option<usize>,
    blocking: bool,
}

/// Anything that can be a command argument.
pub trait ToArg {
    /// The argument's bytes.
    fn to_arg(&self) -> Bytes;
}

impl ToArg for Bytes {
    fn to_arg(&self) -> Bytes {
        self.clone()
    }
}
impl ToArg for &str {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}
impl ToArg for String {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}
impl ToArg for &[u8] {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
impl ToArg for Vec<u8> {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn to_arg(&self) -> Bytes {
                Bytes::from(self.to_string())
            }
        }
    )*};
}
int_arg!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl Cmd {
    /// A command with this name and no arguments yet.
    #[must_use]
    pub fn new(name: impl ToArg) -> Self {
        // Room for the name and a few arguments (GET k, SET k v, SET k v PX ms) in one allocation.
        let mut args = Vec::with_capacity(5);
        args.push(name.to_arg());
        Self { args, slot: None, read_only: None, idempotent: None, after: None, blocking: false }
    }

    /// A command from its whole argument vector (name first).
    #[must_use]
    pub fn from_args(args: Vec<Bytes>) -> Self {
        Self { args, slot: None, read_only: None, idempotent: None, after: None, blocking: false }
    }

    /// Appends an argument.
    #[must_use]
    pub fn arg(mut self, a: impl ToArg) -> Self {
        self.args.push(a.to_arg());
        self
    }

    /// Appends an argument in place.
    pub fn push_arg(&mut self, a: impl ToArg) {
        self.args.push(a.to_arg());
    }

    /// Routes this command to `slot` instead of deriving the slot from its keys (the cache layer
    /// computes slots when it encodes keys).
    #[must_use]
    pub const fn with_slot(mut self, slot: Slot) -> Self {
        self.slot = Some(slot);
        self
    }

    /// Overrides the command table's read-only flag (a read-only command may go to a replica).
    #[must_use]
    pub const fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// Overrides the command table's idempotency (an idempotent command may be sent again after
    /// a connection was lost with the command possibly executed).
    #[must_use]
    pub const fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// In a [pipeline](RequestKind::Pipeline): sends this command only once command `index` of
    /// the same pipeline (an earlier one) has answered without an error, and on **the very
    /// connection that answered it**, wherever redirections took that command. This is what a
    /// `WAIT` needs to cover a write: it counts the acknowledgements of its own connection's
    /// writes. If command `index` fails, this one is not sent and fails with
    /// [`RequestError::Skipped`](super::RequestError::Skipped); if that connection is gone by
    /// then, with [`RequestError::ConnectionLost`](super::RequestError::ConnectionLost). It is
    /// never sent on another connection.
    #[must_use]
    pub const fn after(mut self, index: usize) -> Self {
        self.after = Some(index);
        self
    }

    /// Sends this command on its node's **blocking lane**: one more connection per node that
    /// ordinary traffic never uses (opened when first needed, outside `connections_per_node`).
    /// For a command that holds its connection up, such as the write a `WAIT` must follow
    /// ([`Cmd::after`] puts the `WAIT` on the same connection): a `WAIT` for replicas that are
    /// slow to acknowledge then delays nothing but the commands on that lane.
    #[must_use]
    pub const fn blocking(mut self) -> Self {
        self.blocking = true;
        self
    }

    /// Whether this command goes on its node's blocking lane (see [`Cmd::blocking`]).
    #[must_use]
    pub const fn is_blocking(&self) -> bool {
        self.blocking
    }

    /// The pipeline command this one waits for (see [`Cmd::after`]).
    #[must_use]
    pub const fn follows(&self) -> Option<usize> {
        self.after
    }

    /// The arguments, the command name first.
    #[must_use]
    pub fn args(&self) -> &[Bytes] {
        &self.args
    }

    /// The explicit slot, if one was set.
    #[must_use]
    pub const fn slot(&self) -> Option<Slot> {
        self.slot
    }

    /// The explicit read-only flag, if one was set.
    #[must_use]
    pub const fn read_only_override(&self) -> Option<bool> {
        self.read_only
    }

    /// The explicit idempotency flag, if one was set.
    #[must_use]
    pub const fn idempotent_override(&self) -> Option<bool> {
        self.idempotent
    }
}

/// What a caller asks the client to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// One command routed by its keys. Multi-key commands whose keys span slots (MGET, MSET,
    /// DEL, UNLINK, EXISTS, TOUCH) are split per slot and reassembled in the caller's order.
    Command(Cmd),
    /// Several commands, each routed by its own keys; the ones for one node are pipelined on one
    /// connection and the nodes are served in parallel. Replies come back in the caller's order,
    /// each with its own result.
    Pipeline(Vec<Cmd>),
    /// The command sent to every primary; one reply per primary.
    AllPrimaries(Cmd),
    /// The command sent to one node. It is not redirected: a `MOVED` or `ASK` from that node
    /// is its reply ([`RequestError::Server`](super::RequestError::Server)), after the client
    /// patched its slot map and asked for a topology refresh.
    Node(NodeAddr, Cmd),
}

/// A request with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub kind: RequestKind,
    /// The request's whole budget, retries included. `None` uses the client's default.
    pub timeout: Option<Duration>,
}

impl Request {
    /// One command, routed by its keys.
    #[must_use]
    pub const fn command(cmd: Cmd) -> Self {
        Self { kind: RequestKind::Command(cmd), timeout: None }
    }

    /// A pipeline of commands, each routed by its keys.
    #[must_use]
    pub const fn pipeline(cmds: Vec<Cmd>) -> Self {
        Self { kind: RequestKind::Pipeline(cmds), timeout: None }
    }

    /// A command for every primary.
    #[must_use]
    pub const fn all_primaries(cmd: Cmd) -> Self {
        Self { kind: RequestKind::AllPrimaries(cmd), timeout: None }
    }

    /// A command for one node. Redirects are not followed: a `MOVED` or `ASK` from the node is
    /// the request's error, at once.
    #[must_use]
    pub const fn node(addr: NodeAddr, cmd: Cmd) -> Self {
        Self { kind: RequestKind::Node(addr, cmd), timeout: None }
    }

    /// Sets this request's timeout.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A completed request's reply; its shape follows the [`RequestKind`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// The reply to [`RequestKind::Command`] or [`RequestKind::Node`] (a split multi-key
    /// command's parts already merged).
    Value(Value),
    /// One result per command of a [`RequestKind::Pipeline`], in order.
    Pipeline(Vec<Result<Value, RequestError>>),
    /// One result per primary of a [`RequestKind::AllPrimaries`].
    PerNode(Vec<(NodeAddr, Result<Value, RequestError>)>),
}

impl Reply {
    /// The value of a [`Reply::Value`].
    #[must_use]
    pub fn into_value(self) -> Option<Value> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }
}
