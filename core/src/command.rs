//! Command metadata for routing: read or write, idempotency, where the keys are, where the
//! command goes and how replies from several nodes or slots merge.
//!
//! [`info`] looks a name up in a static table (case-insensitive, no allocation: the name is
//! upper-cased into a stack buffer and binary-searched). [`lookup`] does the same for a whole
//! argument vector and resolves container commands (`SCRIPT LOAD`, `OBJECT ENCODING`, ...).
//! [`CommandInfo::keys`] validates arity and the key layout, then yields `(arg index, key)`;
//! a malformed command is a [`CommandError`], never a panic.
//!
//! ```
//! use bytes::Bytes;
//! use slotcache_core::command::{self, Access};
//!
//! let args: Vec<Bytes> = ["mset", "a", "1", "b", "2"].map(Bytes::from).to_vec();
//! let info = command::lookup(&args)?;
//! assert_eq!(info.access(), Access::Write);
//! let keys: Vec<(usize, &[u8])> = info.keys(&args)?.collect();
//! assert_eq!(keys, [(1, &b"a"[..]), (3, &b"b"[..])]);
//! # Ok::<(), command::CommandError>(())
//! ```
//!
//! # Unknown commands
//!
//! A command missing from the table (a module command, a typo, a newer server command) gets a
//! conservative default ([`UNKNOWN`]): a **write** (never sent to a replica),
//! **non-idempotent** (never resent when its outcome is unknown), whose key, if it has any
//! argument, is **argument 1** (the position of the key in most commands). If that guess is
//! wrong the command lands on some primary, whose `MOVED` reply (or correct answer, for
//! keyless commands) is still handled safely. An unknown subcommand of a known container
//! (`CLUSTER FAILOVER`) gets the container's entry, which is equally conservative.
//!
//! # Multi-slot commands
//!
//! Commands with a [`split_policy`](CommandInfo::split_policy) may have their keys split per
//! slot ([`split_by_slot`]), sent as one sub-command per slot ([`sub_command`]) and put back
//! together ([`reassemble`]): `MGET` and `JSON.MGET` (values in key order), `DEL`, `UNLINK`,
//! `EXISTS`, `TOUCH` (sum), `MSET` (all OK). Others (`MSETNX`, `SUNION`, scripts) must have
//! their keys in one slot ([`CommandInfo::slot`] reports `CROSSSLOT` before anything is sent).

mod split;
mod table;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use thiserror::Error;

use crate::retry::Idempotency;
use crate::slot::{Slot, key_slot};

pub use split::{MergeError, SlotGroup, merge, reassemble, split_by_slot, sub_command};
pub use table::UNKNOWN;

/// Whether a command only reads (may go to a replica when replica reads are on) or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads only.
    ReadOnly,
    /// May write; always sent to a primary.
    Write,
}

/// Where the keys of a command are. Indexes count the command name as argument 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySpec {
    /// No keys.
    None,
    /// Exactly one key, at this index.
    Index(u8),
    /// Argument 1 when present, else no key (the [`UNKNOWN`] default).
    FirstIfPresent,
    /// Every argument from this index on (`MGET`, `DEL`).
    AllFrom(u8),
    /// Every argument from this index on except the last (`JSON.MGET key.. path`).
    AllFromButLast(u8),
    /// Key/value pairs from this index on (`MSET`).
    Pairs(u8),
    /// A key count at this index, then that many keys (`EVAL script numkeys key..`).
    NumKeys(u8),
}

/// How the replies of several nodes or slots combine into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponsePolicy {
    /// Array elements put back in the order of the keys (`MGET`).
    InOrder,
    /// Integers added up (`DBSIZE`, a split `DEL`).
    SumIntegers,
    /// Every reply must be `OK` (`FLUSHDB`, a split `MSET`).
    AllOk,
    /// Arrays concatenated (`KEYS`).
    Concatenate,
    /// One reply per node, kept apart (`SCAN`: the cursor is per node; `INFO`; `FT.SEARCH`,
    /// whose totals and rows the search layer merges).
    PerNode,
    /// Every node must succeed; the first reply stands for all (`SCRIPT LOAD`).
    AllSucceeded,
    /// Element-wise AND of 0/1 arrays (`SCRIPT EXISTS`).
    LogicalAnd,
    /// The first reply that is not an error.
    FirstNonError,
}

/// Where a command is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Routing {
    /// To the owner of its keys' slot; to any node when it has no key.
    BySlot,
    /// To any one node (keyless: `PING`, `CLUSTER SHARDS`).
    Any,
    /// To every primary, replies merged by the policy.
    AllPrimaries(ResponsePolicy),
    /// To every node, replicas included (the script cache is per node).
    AllNodes(ResponsePolicy),
    /// Connection state (`AUTH`, `MULTI`, `WATCH`, `ASKING`): the client sends it on the
    /// connection it chose; never routed on its own.
    Connection,
}

/// Why a command's arguments do not fit its metadata.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// No arguments at all.
    #[error("empty command")]
    Empty,
    /// The argument count does not match the command's arity.
    #[error("wrong number of arguments for '{name}': {got} (arity {arity})")]
    WrongArity {
        /// The command.
        name: &'static str,
        /// Arguments given, the name included.
        got: usize,
        /// The arity: exact when positive, minimum when negative.
        arity: i8,
    },
    /// Key/value pairs with a key missing its value.
    #[error("'{name}' needs key/value pairs")]
    UnpairedArguments {
        /// The command.
        name: &'static str,
    },
    /// The key count is not a number or exceeds the arguments.
    #[error("'{name}' has an invalid number of keys")]
    BadNumKeys {
        /// The command.
        name: &'static str,
    },
    /// The keys are in different slots and the command cannot be split.
    #[error("'{name}' keys do not hash to the same slot")]
    CrossSlot {
        /// The command.
        name: &'static str,
    },
    /// [`split_by_slot`] was asked to split a command that has no split policy.
    #[error("'{name}' cannot be split per slot")]
    NotSplittable {
        /// The command.
        name: &'static str,
    },
}

/// Metadata of one command (or container subcommand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    name: &'static str,
    access: Access,
    idempotency: Idempotency,
    arity: i8,
    keys: KeySpec,
    routing: Routing,
    split: Option<ResponsePolicy>,
    container: bool,
}

impl CommandInfo {
    /// The upper-case name (`"SCRIPT LOAD"` for a subcommand, `"?"` for [`UNKNOWN`]).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Read-only or write.
    #[must_use]
    pub const fn access(&self) -> Access {
        self.access
    }

    /// Whether the command only reads.
    #[must_use]
    pub const fn is_read_only(&self) -> bool {
        matches!(self.access, Access::ReadOnly)
    }

    /// The command's idempotency, whatever its options.
    #[must_use]
    pub const fn idempotency(&self) -> Idempotency {
        self.idempotency
    }

    /// The idempotency of this invocation: `SET .. NX` and `SET .. GET` are non-idempotent
    /// (resending after success turns the reply into "not set" or the new value), plain `SET`
    /// is idempotent.
    #[must_use]
    pub fn idempotency_of(&self, args: &[Bytes]) -> Idempotency {
        if self.name == "SET"
            && args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"NX") || a.eq_ignore_ascii_case(b"GET"))
        {
            return Idempotency::NonIdempotent;
        }
        self.idempotency
    }

    /// The arity, counting the name: exact when positive, a minimum when negative.
    #[must_use]
    pub const fn arity(&self) -> i8 {
        self.arity
    }

    /// Where the keys are.
    #[must_use]
    pub const fn key_spec(&self) -> KeySpec {
        self.keys
    }

    /// Where the command goes.
    #[must_use]
    pub const fn routing(&self) -> Routing {
        self.routing
    }

    /// How per-slot replies merge when the keys may be split per slot; `None` when they must
    /// share one slot.
    #[must_use]
    pub const fn split_policy(&self) -> Option<ResponsePolicy> {
        self.split
    }

    /// Whether this is a container whose meaning depends on a subcommand (`SCRIPT`, `OBJECT`).
    #[must_use]
    pub const fn is_container(&self) -> bool {
        self.container
    }

    /// Checks the argument count against the arity.
    pub fn check_arity(&self, args: &[Bytes]) -> Result<(), CommandError> {
        let got = args.len();
        let want = usize::from(self.arity.unsigned_abs());
        let ok = if self.arity >= 0 { got == want } else { got >= want };
        if ok { Ok(()) } else { Err(CommandError::WrongArity { name: self.name, got, arity: self.arity }) }
    }

    /// The keys of `args` (argument 0 is the command name), as `(arg index, key)`, after
    /// checking the arity and the key layout.
    pub fn keys<'a>(&self, args: &'a [Bytes]) -> Result<Keys<'a>, CommandError> {
        if args.is_empty() {
            return Err(CommandError::Empty);
        }
        self.check_arity(args)?;
        let len = args.len();
        let arity_err = || CommandError::WrongArity { name: self.name, got: len, arity: self.arity };
        let (start, end, step) = match self.keys {
            KeySpec::None => (0, 0, 1),
            KeySpec::Index(i) => {
                let i = usize::from(i);
                if len <= i {
                    return Err(arity_err());
                }
                (i, i + 1, 1)
            }
            KeySpec::FirstIfPresent => (1, len.min(2), 1),
            KeySpec::AllFrom(f) => {
                let f = usize::from(f);
                if len <= f {
                    return Err(arity_err());
                }
                (f, len, 1)
            }
            KeySpec::AllFromButLast(f) => {
                let f = usize::from(f);
                if len <= f + 1 {
                    return Err(arity_err());
                }
                (f, len - 1, 1)
            }
            KeySpec::Pairs(f) => {
                let f = usize::from(f);
                if len <= f || (len - f) % 2 != 0 {
                    return Err(CommandError::UnpairedArguments { name: self.name });
                }
                (f, len, 2)
            }
            KeySpec::NumKeys(i) => {
                let i = usize::from(i);
                let bad = || CommandError::BadNumKeys { name: self.name };
                let n = args.get(i).and_then(|a| parse_count(a)).ok_or_else(bad)?;
                let first = i + 1;
                if n > len - first.min(len) {
                    return Err(bad());
                }
                (first, first + n, 1)
            }
        };
        Ok(Keys { args, next: start, end: end.max(start), step })
    }

    /// The one slot all keys of `args` hash to: `None` for a keyless command,
    /// [`CommandError::CrossSlot`] when they differ.
    pub fn slot(&self, args: &[Bytes]) -> Result<Option<Slot>, CommandError> {
        let mut slot = None;
        for (_, key) in self.keys(args)? {
            let s = key_slot(key);
            match slot {
                None => slot = Some(s),
                Some(prev) if prev != s => return Err(CommandError::CrossSlot { name: self.name }),
                Some(_) => {}
            }
        }
        Ok(slot)
    }
}

/// The keys of a command: `(arg index, key bytes)`, in argument order.
#[derive(Clone, Debug)]
pub struct Keys<'a> {
    args: &'a [Bytes],
    next: usize,
    end: usize,
    step: usize,
}

impl<'a> Iterator for Keys<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next += self.step;
        self.args.get(i).map(|a| (i, &a[..]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.next).div_ceil(self.step);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Keys<'_> {}

/// A non-negative decimal count with no sign, spaces or overflow.
fn parse_count(a: &[u8]) -> Option<usize> {
    if a.is_empty() || a.len() > 9 || !a.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(a.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

/// Longest name looked up; longer names are unknown (no command name comes close).
const MAX_NAME: usize = 32;

/// Upper-cases `parts` joined by spaces into `buf`; `None` when too long.
fn upper<'b>(buf: &'b mut [u8; MAX_NAME], parts: &[&[u8]]) -> Option<&'b [u8]> {
    let mut n = 0;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            *buf.get_mut(n)? = b' ';
            n += 1;
        }
        let dst = buf.get_mut(n..n + part.len())?;
        dst.copy_from_slice(part);
        dst.make_ascii_uppercase();
        n += part.len();
    }
    Some(&buf[..n])
}

/// FNV-1a: names are short and trusted (the table's own), so a simple hash does.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl core::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type NameIndex =
    std::collections::HashMap<&'static [u8], &'static CommandInfo, core::hash::BuildHasherDefault<Fnv>>;

/// The entry for `name` (any case), or `None` when the table lacks it.
///
/// Every request looks its command up, so the table is indexed once by name: a hash of a few
/// bytes instead of a binary search whose probes each compare names in memory far apart.
#[must_use]
pub fn find(name: &[u8]) -> Option<&'static CommandInfo> {
    static INDEX: std::sync::OnceLock<NameIndex> = std::sync::OnceLock::new();
    let mut buf = [0; MAX_NAME];
    let upper = upper(&mut buf, &[name])?;
    let index = INDEX.get_or_init(|| table::COMMANDS.iter().map(|e| (e.name.as_bytes(), e)).collect());
    index.get(upper).copied()
}

/// The entry for `name` (any case), or [`UNKNOWN`].
#[must_use]
pub fn info(name: &[u8]) -> &'static CommandInfo {
    find(name).unwrap_or(&UNKNOWN)
}

/// The entry for a whole command, resolving container subcommands (`SCRIPT LOAD`); an unknown
/// subcommand gets its container's entry, an unknown command [`UNKNOWN`].
pub fn lookup(args: &[Bytes]) -> Result<&'static CommandInfo, CommandError> {
    let name = args.first().ok_or(CommandError::Empty)?;
    let top = info(name);
    if top.container {
        if let Some(sub) = args.get(1) {
            let mut buf = [0; MAX_NAME];
            if let Some(found) =
                upper(&mut buf, &[name, sub]).and_then(|n| table::search(table::SUBCOMMANDS, n))
            {
                return Ok(found);
            }
        }
    }
    Ok(top)
}
