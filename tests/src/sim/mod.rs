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
//! - **Data** ([`store`], [`commands`]): strings and sorted sets with expiry on each node's
//!   clock (virtual time plus [`SimNode::clock_skew_ms`]); lazy and active expiry.
//! - **Scripts** ([`scripts`]): per-node script caches, `NOSCRIPT`, and native twins of the
//!   cache's Lua scripts, run command by command with Valkey's in-script cluster checks.
//! - **Replication** ([`replication`]): asynchronous with per-replica lag, frozen replicas,
//!   `WAIT` (blocking, per connection), lossy failover, restarts with or without data.
//! - **Eviction** ([`eviction`]): `maxmemory` and its policies, `OOM`.
//! - **Migrations** ([`migration`]): legacy (ASK/TRYAGAIN) and atomic (MOVED only).
//! - **Network faults** ([`Sim`]): slow nodes, dropped and half-open connections, silent
//!   nodes, unanswered connects, paused nodes.
//! - **Trace** ([`trace`]): an opt-in log to print for a failing seed.
//!
//! Time moves only through [`Sim::step`], [`Sim::run_for`], [`Sim::run_until`], [`Sim::wait`]
//! and [`Sim::call`].

mod admin;
mod cluster;
pub mod commands;
pub mod eviction;
pub mod glob;
mod migration;
mod net;
pub mod replication;
pub mod routing;
pub mod scripts;
pub mod store;
pub mod trace;

pub use cluster::{EPOCH_US, Outcome, SWEEP_EVERY, Session, SimCluster, SimNode, addr};
pub use eviction::EvictionPolicy;
pub use net::{Chunking, Sim};
