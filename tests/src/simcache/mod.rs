//! The whole cache in the deterministic simulation: the core's cache-operation machines
//! (`slotcache_core::cache::op`) driven over the simulated cluster ([`crate::sim`]) by the same
//! rules as the async layer's driver, many operations interleaved, every one recorded in a
//! [`crate::history::History`] on the virtual clock so the tag history checker can judge it.
//!
//! - [`runner`]: runs machines as concurrent tasks on one simulated client;
//! - [`ops`]: the history's operations as machines of one namespace;
//! - [`flight`]: the process's single flight of loads, and its invalidations marked in it;
//! - [`failed_writes`]: a `compute` that failed with an error reply wrote nothing.

pub mod failed_writes;
pub mod faults;
pub mod flight;
pub mod ops;
pub mod orphans;
pub mod runner;
pub mod scenario;
pub mod seeds;
pub mod workload;

pub use ops::CacheOps;
pub use runner::{Runner, SimEntropy, SimOp};
