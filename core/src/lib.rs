//! # slotcache-core
//!
//! The sans-IO heart of slotcache: everything a Valkey Cluster client decides, and nothing that
//! touches the world. It never opens a socket, never reads a clock, never sleeps and never
//! spawns: time, randomness and bytes come in as arguments, and what to do comes out as values.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cache;
pub mod client;
pub mod command;
pub mod config;
#[cfg(feature = "_fuzz")]
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod near;
pub mod node_addr;
mod password;
pub mod resp;
pub mod retry;
pub mod rng;
pub mod server_error;
mod shared_error;
pub mod slot;
pub mod topology;

pub use command::{CommandInfo, ResponsePolicy, Routing};
pub use keys::{EncodedKey, KeyEncoder, Namespace, NamespaceRegistry};
pub use node_addr::NodeAddr;
pub use resp::{Protocol, Value};
pub use retry::{Budget, Idempotency, RetryConfig, RetryDecision};
pub use rng::Rng;
pub use server_error::{Endpoint, ErrorAction, ServerError, ServerErrorKind};
pub use slot::{SLOT_COUNT, Slot, hash_tag, key_slot};
pub use topology::{
    RefreshConfig, RefreshPolicy, RefreshReason, SlotRange, Topology, TopologyDiff, TopologyError,
};
