//! # slotcache-async-std
//!
//! slotcache on async-std. async-std is discontinued upstream (RUSTSEC-2025-0052; its authors
//! point to smol), so this crate is deliberately tiny: async-std runs on the same async-io
//! reactor as smol, so timers and sockets are smol's, and only spawning is async-std's.
//! Prefer `slotcache-smol` for new code.
//!
//! Its API is the same as the other runtime crates': everything of [`slotcache_rt`], plus
//! [`AsyncStdRuntime`], `connect` and `provider`.

use std::io;
use std::time::Instant;

pub use slotcache_rt::*;

/// The async-std [`Runtime`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        drop(async_std::task::spawn(future));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        slotcache_smol::sleep_until(deadline)
    }

    fn connect_tcp(&self, host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
        slotcache_smol::connect_tcp(host, port)
    }
}

slotcache_rt::runtime_entry_points!(AsyncStdRuntime);
