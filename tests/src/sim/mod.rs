//! A simulated Valkey Cluster, driven through the sans-IO client with virtual time, that models
//! what breaks caches.
//!
//! Deterministic: one seed fixes latencies, reply chunking, the client's jitter, replication
//! jitter and eviction sampling, so a failing scenario replays exactly (no wall clock, no OS
//! randomness, no hash-map order reaches behaviour). The simulated servers speak real RESP
//! (encoded and decoded with the core's codec) and answer the way Valkey does: `MOVED` for slots
//! they do not own, `ASK` and `TRYAGAIN` during a migration, `CLUSTERDOWN`, `LOADING`,
//! `READONLY`, `CLUSTER SHARDS` describing their current view.
//!
//! What it models:
//! - **Data** ([`store`], [`commands`], from the `slotcache-memory` crate, which the
//!   in-memory provider runs too): strings, sorted sets and JSON documents ([`json`])
//!   with expiry on each node's clock (virtual time plus [`SimNode::clock_skew_ms`]); lazy and
//!   active expiry. What every command runs with is [`command_ctx`].
//! - **Search** ([`search`]): per-node RediSearch indexes ([`index_def`]) over the node's JSON
//!   documents (`FT.CREATE`/`INFO`/`DROPINDEX`/`SEARCH`); [`SimCluster::set_modules`] turns
//!   the modules off (every `JSON.*`/`FT.*` is then an unknown command).
//! - **Scripts** ([`scripts`]): per-node script caches, `NOSCRIPT`, and native twins of the
//!   cache's Lua scripts, run command by command with Valkey's in-script cluster checks
//!   ([`script_host`]; the JSON scripts' twins are in [`json_scripts`]).
//! - **Replication** ([`replication`], each node's state in [`repl_state`]): asynchronous with
//!   per-replica lag, frozen replicas, `WAIT` (blocking, per connection), lossy failover,
//!   restarts with or without data.
//! - **Eviction** ([`eviction`]): `maxmemory` and its policies, `OOM`.
//! - **Migrations** (`SimCluster` migration methods): legacy (ASK/TRYAGAIN) and atomic (MOVED only).
//! - **Network faults** ([`Sim`]): slow nodes, dropped and half-open connections, silent
//!   nodes, unanswered connects, paused nodes.
//! - **Trace** ([`trace`]): an opt-in log to print for a failing seed.
//!
//! # Cheat sheet
//!
//! - **Build**: [`SimCluster::new`]`(masters, replicas)`, tune it ([`SimCluster::set_replication_lag`],
//!   [`SimCluster::randomize_replication_lag`], [`SimCluster::set_maxmemory`],
//!   [`SimNode::clock_skew_ms`], [`SimCluster::scripts`] to register a native script), then
//!   [`Sim::new`]`(cluster, Sim::config(), seed)`.
//! - **Advance time**: only through [`Sim::step`], [`Sim::run_for`], [`Sim::run_until`],
//!   [`Sim::wait`] and [`Sim::call`] / [`Sim::call_node`]; [`Sim::elapsed`] is virtual time.
//!   [`Sim::drive`] runs one cache-operation machine of the core to its outcome.
//! - **Inject faults**: nodes: [`Sim::kill`], [`Sim::crash_primary`], [`Sim::restart`],
//!   [`Sim::pause`]/[`Sim::resume`], [`SimNode::fail_with`]/[`SimNode::fail_next`];
//!   replication: [`SimCluster::freeze_replica`], [`SimCluster::failover`] (lossy),
//!   [`SimCluster::manual_failover`] (lossless); migrations: [`SimCluster::start_migration`],
//!   [`SimCluster::migrate_key`], [`SimCluster::finish_migration`],
//!   [`SimCluster::migrate_slot_atomic`]; network: [`Sim::slow_node`], [`Sim::drop_connections`],
//!   [`Sim::half_open`], [`Sim::silence`], [`Sim::drop_connects`], [`Sim::chunking`],
//!   [`Sim::latency`].
//! - **Read results**: [`Sim::completed`], [`Sim::events`], [`Sim::connects`], the client's own
//!   stats; the servers' side with [`SimCluster::get`] (a node's view, expiry applied),
//!   [`SimNode::data`], [`SimCluster::count`], [`SimCluster::repl_offset`],
//!   [`SimCluster::acked`], [`SimNode::evicted`]; `INFO`, `CONFIG GET`, `SCAN`, `TIME` through
//!   the client.
//! - **Trace**: [`Sim::enable_trace`] before the scenario, [`Sim::trace_dump`] in the failure
//!   message, [`Sim::note`] to mark phases.

mod admin;
mod cluster;
mod drive;
mod migration;
mod net;
pub mod repl_state;
pub mod replication;
pub mod trace;

// One node's model (keyspace, commands, scripts, JSON, search, eviction) is the
// `slotcache-memory` crate, shared with the in-memory provider: one model, not two.
pub use slotcache_memory::{
    command_ctx, commands, config, eviction, glob, index_def, json, json_scripts, routing, script_host,
    scripts, search, store, tag_scripts,
};

pub use cluster::{ClusterEv, EPOCH_US, Outcome, SWEEP_EVERY, Session, SimCluster, SimNode, addr};
pub use eviction::EvictionPolicy;
pub use net::{Chunking, Sim};
