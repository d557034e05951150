//! Fuzz target bodies, for the shims in `fuzz/fuzz_targets/` (internal: behind the private
//! `_fuzz` feature, not part of the API).
//!
//! Layout, so that each new target is a two-line change here:
//! - every target `fuzz/fuzz_targets/<name>.rs` calls `slotcache_core::fuzzing::<name>(data)`,
//!   a `pub fn <name>(data: &[u8])` that panics when an invariant breaks;
//! - the body lives beside the code it exercises, in a `fuzz` module of that subsystem
//!   (`resp/fuzz.rs`), compiled under `cfg(any(test, feature = "_fuzz"))` so that unit tests
//!   run it too and it can reach `pub(crate)` items;
//! - it is re-exported below, one `pub use` per subsystem, in alphabetical order.

pub use crate::cache::op::fuzz::cache_ops;
pub use crate::client::fuzz::{client_ops, client_topology};
pub use crate::resp::fuzz::{resp_chunked, resp_decode};
pub use crate::server_error::fuzz::redirect_parse;
pub use crate::topology::fuzz::topology_parse;
