//! # slotcache-memory
//!
//! A model of one Valkey node, in memory and sans-IO: strings, sorted sets and JSON documents
//! with expiry (lazy and active) on the clock the caller passes in, eviction under `maxmemory`,
//! a RediSearch model over the JSON documents (feature `search`, on by default), and native twins of every Lua script the cache
//! sends (checked against the Lua on a real server by the test `tags_scripts_match_twins`).
//!
//! It serves two users, so that they cannot drift apart:
//! - slotcache's **in-memory provider** (`Provider::in_memory` in `slotcache-rt` and every
//!   runtime crate): the same cache machines and the same cluster client as against Valkey,
//!   talking RESP to one [`Node`] through a [`Connection`] instead of a socket;
//! - the **deterministic simulation** of the test suite (`slotcache-tests`, `sim`), whose
//!   cluster is made of these nodes' keyspaces, commands and scripts, plus replication, routing
//!   state and network faults.
//!
//! It never reads a clock, sleeps, spawns or touches a socket (`clippy.toml` makes a slip an
//! error): every command runs at the time it is given.
//!
//! ```
//! use bytes::Bytes;
//! use slotcache_core::{NodeAddr, Value};
//! use slotcache_memory::{Node, Session};
//!
//! let mut node = Node::new(NodeAddr::new("memory", 0));
//! let mut session = Session::default();
//! let now_us = 1_700_000_000_000_000;
//! let args = |a: &[&str]| a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect::<Vec<_>>();
//! node.execute(now_us, &args(&["SET", "k", "v", "PX", "100"]), &mut session);
//! assert_eq!(node.execute(now_us, &args(&["GET", "k"]), &mut session), Value::Bulk("v".into()));
//! assert_eq!(node.execute(now_us + 100_000, &args(&["GET", "k"]), &mut session), Value::Nil);
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod command_ctx;
pub mod commands;
pub mod config;
mod conn;
pub mod eviction;
pub mod glob;
pub mod index_def;
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod json;
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod json_scripts;
mod node;
#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod one_node;
pub mod routing;
pub mod script_host;
pub mod scripts;
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod search;
pub mod store;
pub mod tag_scripts;

pub use conn::Connection;
pub use node::{Node, SWEEP_EVERY_MS, Session};
