//! The classification of servers' error replies. [`ServerError`] is an error reply from a node,
//! parsed once into a [`ServerErrorKind`] and mapped to the [`ErrorAction`] a cluster client
//! takes.

#[cfg(any(test, feature = "_fuzz"))]
#[doc(hidden)]
pub mod fuzz;
mod server;
#[cfg(test)]
mod tests;

pub use server::{Endpoint, ErrorAction, ServerError, ServerErrorKind};
