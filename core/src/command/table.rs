//! The command table. Sorted by upper-case name (byte order) for binary search; a unit test
//! checks the order.
//!
//! Idempotency here means "running it twice leaves the same data as running it once": `SET`,
//! `DEL`, `EXPIRE`, `SADD` qualify; `INCR`, `LPUSH`, `GETDEL` (the value would be lost to the
//! caller), `SETNX`/`MSETNX`/`GETSET` (the reply decides ownership or carries the old value)
//! and scripts (`EVAL`, `FCALL`: unknown bodies) do not. Read-only script variants do.
//!
//! Search commands (`FT.*`) are marked [`Routing::AllPrimaries`]: without a coordinator each
//! shard indexes only its own keys, so index changes go to every primary (all OK) and queries
//! are answered per node ([`ResponsePolicy::PerNode`]) for the search layer to merge.

use super::{Access, CommandInfo, KeySpec, ResponsePolicy, Routing};
use crate::retry::Idempotency;

const R: Access = Access::ReadOnly;
const W: Access = Access::Write;
const I: Idempotency = Idempotency::Idempotent;
const N: Idempotency = Idempotency::NonIdempotent;

const fn c(
    name: &'static str,
    access: Access,
    idempotency: Idempotency,
    arity: i8,
    keys: KeySpec,
    routing: Routing,
) -> CommandInfo {
    CommandInfo { name, access, idempotency, arity, keys, routing, split: None, container: false }
}

impl CommandInfo {
    const fn split(mut self, policy: ResponsePolicy) -> Self {
        self.split = Some(policy);
        self
    }

    const fn container(mut self) -> Self {
        self.container = true;
        self
    }
}

/// The conservative entry for commands missing from the table: a non-idempotent write whose
/// key, if any, is argument 1 (see the [module docs](super)).
pub static UNKNOWN: CommandInfo = c("?", W, N, -1, KeySpec::FirstIfPresent, Routing::BySlot);

/// Top-level commands.
pub(super) static COMMANDS: &[CommandInfo] = &[
    c("APPEND", W, N, 3, KeySpec::Index(1), Routing::BySlot),
    c("ASKING", R, I, 1, KeySpec::None, Routing::Connection),
    c("AUTH", W, I, -2, KeySpec::None, Routing::Connection),
    c("CLIENT", W, N, -2, KeySpec::None, Routing::Connection),
    c("CLUSTER", W, N, -2, KeySpec::None, Routing::Any).container(),
    c("COMMAND", R, I, -1, KeySpec::None, Routing::Any),
    c("CONFIG", W, N, -2, KeySpec::None, Routing::Any).container(),
    c("DBSIZE", R, I, 1, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::SumIntegers)),
    c("DECR", W, N, 2, KeySpec::Index(1), Routing::BySlot),
    c("DECRBY", W, N, 3, KeySpec::Index(1), Routing::BySlot),
    c("DEL", W, I, -2, KeySpec::AllFrom(1), Routing::BySlot).split(ResponsePolicy::SumIntegers),
    c("DISCARD", W, I, 1, KeySpec::None, Routing::Connection),
    c("ECHO", R, I, 2, KeySpec::None, Routing::Any),
    c("EVAL", W, N, -3, KeySpec::NumKeys(2), Routing::BySlot),
    c("EVALSHA", W, N, -3, KeySpec::NumKeys(2), Routing::BySlot),
    c("EVALSHA_RO", R, I, -3, KeySpec::NumKeys(2), Routing::BySlot),
    c("EVAL_RO", R, I, -3, KeySpec::NumKeys(2), Routing::BySlot),
    c("EXEC", W, N, 1, KeySpec::None, Routing::Connection),
    c("EXISTS", R, I, -2, KeySpec::AllFrom(1), Routing::BySlot).split(ResponsePolicy::SumIntegers),
    c("EXPIRE", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("EXPIREAT", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("EXPIRETIME", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("FCALL", W, N, -3, KeySpec::NumKeys(2), Routing::BySlot),
    c("FCALL_RO", R, I, -3, KeySpec::NumKeys(2), Routing::BySlot),
    c("FLUSHALL", W, I, -1, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::AllOk)),
    c("FLUSHDB", W, I, -1, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::AllOk)),
    c("FT.AGGREGATE", R, I, -3, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::PerNode)),
    c("FT.ALTER", W, N, -3, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::AllOk)),
    c("FT.CREATE", W, N, -2, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::AllOk)),
    c("FT.DROPINDEX", W, N, -2, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::AllOk)),
    c("FT.INFO", R, I, -2, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::PerNode)),
    c("FT.SEARCH", R, I, -3, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::PerNode)),
    c("FT._LIST", R, I, 1, KeySpec::None, Routing::Any),
    c("FUNCTION", W, N, -2, KeySpec::None, Routing::Any).container(),
    c("GET", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("GETDEL", W, N, 2, KeySpec::Index(1), Routing::BySlot),
    c("GETEX", W, I, -2, KeySpec::Index(1), Routing::BySlot),
    c("GETRANGE", R, I, 4, KeySpec::Index(1), Routing::BySlot),
    c("GETSET", W, N, 3, KeySpec::Index(1), Routing::BySlot),
    c("HDEL", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("HELLO", W, I, -1, KeySpec::None, Routing::Connection),
    c("HEXISTS", R, I, 3, KeySpec::Index(1), Routing::BySlot),
    c("HGET", R, I, 3, KeySpec::Index(1), Routing::BySlot),
    c("HGETALL", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("HINCRBY", W, N, 4, KeySpec::Index(1), Routing::BySlot),
    c("HKEYS", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("HLEN", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("HMGET", R, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("HSCAN", R, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("HSET", W, I, -4, KeySpec::Index(1), Routing::BySlot),
    c("HVALS", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("INCR", W, N, 2, KeySpec::Index(1), Routing::BySlot),
    c("INCRBY", W, N, 3, KeySpec::Index(1), Routing::BySlot),
    c("INCRBYFLOAT", W, N, 3, KeySpec::Index(1), Routing::BySlot),
    c("INFO", R, I, -1, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::PerNode)),
    c("JSON.DEL", W, I, -2, KeySpec::Index(1), Routing::BySlot),
    c("JSON.GET", R, I, -2, KeySpec::Index(1), Routing::BySlot),
    c("JSON.MGET", R, I, -3, KeySpec::AllFromButLast(1), Routing::BySlot).split(ResponsePolicy::InOrder),
    c("JSON.SET", W, I, -4, KeySpec::Index(1), Routing::BySlot),
    c("JSON.TYPE", R, I, -2, KeySpec::Index(1), Routing::BySlot),
    c("KEYS", R, I, 2, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::Concatenate)),
    c("LLEN", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("LPOP", W, N, -2, KeySpec::Index(1), Routing::BySlot),
    c("LPUSH", W, N, -3, KeySpec::Index(1), Routing::BySlot),
    c("LRANGE", R, I, 4, KeySpec::Index(1), Routing::BySlot),
    c("MEMORY", R, I, -2, KeySpec::None, Routing::Any).container(),
    c("MGET", R, I, -2, KeySpec::AllFrom(1), Routing::BySlot).split(ResponsePolicy::InOrder),
    c("MSET", W, I, -3, KeySpec::Pairs(1), Routing::BySlot).split(ResponsePolicy::AllOk),
    c("MSETNX", W, N, -3, KeySpec::Pairs(1), Routing::BySlot),
    c("MULTI", W, I, 1, KeySpec::None, Routing::Connection),
    c("OBJECT", R, I, -2, KeySpec::None, Routing::Any).container(),
    c("PERSIST", W, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("PEXPIRE", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("PEXPIREAT", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("PEXPIRETIME", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("PING", R, I, -1, KeySpec::None, Routing::Any),
    c("PSETEX", W, I, 4, KeySpec::Index(1), Routing::BySlot),
    c("PTTL", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("READONLY", R, I, 1, KeySpec::None, Routing::Connection),
    c("READWRITE", R, I, 1, KeySpec::None, Routing::Connection),
    // Both keys must share a slot: a cross-slot RENAME is refused before it is sent.
    c("RENAME", W, N, 3, KeySpec::AllFrom(1), Routing::BySlot),
    c("RENAMENX", W, N, 3, KeySpec::AllFrom(1), Routing::BySlot),
    c("RPOP", W, N, -2, KeySpec::Index(1), Routing::BySlot),
    c("RPUSH", W, N, -3, KeySpec::Index(1), Routing::BySlot),
    c("SADD", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("SCAN", R, I, -2, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::PerNode)),
    c("SCARD", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("SCRIPT", W, N, -2, KeySpec::None, Routing::Any).container(),
    c("SELECT", W, I, 2, KeySpec::None, Routing::Connection),
    c("SET", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("SETEX", W, I, 4, KeySpec::Index(1), Routing::BySlot),
    c("SETNX", W, N, 3, KeySpec::Index(1), Routing::BySlot),
    c("SETRANGE", W, I, 4, KeySpec::Index(1), Routing::BySlot),
    c("SINTER", R, I, -2, KeySpec::AllFrom(1), Routing::BySlot),
    c("SISMEMBER", R, I, 3, KeySpec::Index(1), Routing::BySlot),
    c("SMEMBERS", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("SMISMEMBER", R, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("SREM", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("SSCAN", R, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("STRLEN", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("SUNION", R, I, -2, KeySpec::AllFrom(1), Routing::BySlot),
    c("TIME", R, I, 1, KeySpec::None, Routing::Any),
    c("TOUCH", R, I, -2, KeySpec::AllFrom(1), Routing::BySlot).split(ResponsePolicy::SumIntegers),
    c("TTL", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("TYPE", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("UNLINK", W, I, -2, KeySpec::AllFrom(1), Routing::BySlot).split(ResponsePolicy::SumIntegers),
    c("UNWATCH", W, I, 1, KeySpec::None, Routing::Connection),
    c("WAIT", W, I, 3, KeySpec::None, Routing::Connection),
    c("WATCH", W, I, -2, KeySpec::AllFrom(1), Routing::Connection),
    c("ZADD", W, N, -4, KeySpec::Index(1), Routing::BySlot),
    c("ZCARD", R, I, 2, KeySpec::Index(1), Routing::BySlot),
    c("ZRANGE", R, I, -4, KeySpec::Index(1), Routing::BySlot),
    c("ZRANGEBYSCORE", R, I, -4, KeySpec::Index(1), Routing::BySlot),
    c("ZREM", W, I, -3, KeySpec::Index(1), Routing::BySlot),
    c("ZSCORE", R, I, 3, KeySpec::Index(1), Routing::BySlot),
];

/// Subcommands of containers, named `"CONTAINER SUB"`.
pub(super) static SUBCOMMANDS: &[CommandInfo] = &[
    c("CLUSTER COUNTKEYSINSLOT", R, I, 3, KeySpec::None, Routing::Any),
    c("CLUSTER INFO", R, I, 2, KeySpec::None, Routing::Any),
    c("CLUSTER KEYSLOT", R, I, 3, KeySpec::None, Routing::Any),
    c("CLUSTER MYID", R, I, 2, KeySpec::None, Routing::Any),
    c("CLUSTER NODES", R, I, 2, KeySpec::None, Routing::Any),
    c("CLUSTER SHARDS", R, I, 2, KeySpec::None, Routing::Any),
    c("CLUSTER SLOTS", R, I, 2, KeySpec::None, Routing::Any),
    c("CONFIG GET", R, I, -3, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::PerNode)),
    c("FUNCTION DELETE", W, N, 3, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::AllOk)),
    c("FUNCTION FLUSH", W, I, -2, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::AllOk)),
    c("FUNCTION LIST", R, I, -2, KeySpec::None, Routing::Any),
    c("FUNCTION LOAD", W, N, -3, KeySpec::None, Routing::AllPrimaries(ResponsePolicy::AllSucceeded)),
    c("MEMORY USAGE", R, I, -3, KeySpec::Index(2), Routing::BySlot),
    c("OBJECT ENCODING", R, I, 3, KeySpec::Index(2), Routing::BySlot),
    c("OBJECT FREQ", R, I, 3, KeySpec::Index(2), Routing::BySlot),
    c("OBJECT IDLETIME", R, I, 3, KeySpec::Index(2), Routing::BySlot),
    c("OBJECT REFCOUNT", R, I, 3, KeySpec::Index(2), Routing::BySlot),
    c("SCRIPT EXISTS", R, I, -3, KeySpec::None, Routing::AllNodes(ResponsePolicy::LogicalAnd)),
    c("SCRIPT FLUSH", W, I, -2, KeySpec::None, Routing::AllNodes(ResponsePolicy::AllOk)),
    c("SCRIPT LOAD", W, I, 3, KeySpec::None, Routing::AllNodes(ResponsePolicy::AllSucceeded)),
];

/// Binary search of a sorted table by upper-case name.
pub(super) fn search(table: &'static [CommandInfo], upper: &[u8]) -> Option<&'static CommandInfo> {
    table.binary_search_by(|e| e.name.as_bytes().cmp(upper)).ok().map(|i| &table[i])
}
