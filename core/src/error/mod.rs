//! Errors the core classifies. [`ServerError`] is an error reply from a node, parsed once into
//! a [`ServerErrorKind`] and mapped to the [`ErrorAction`] a cluster client takes.

mod server;
#[cfg(test)]
mod tests;

pub use server::{Endpoint, ErrorAction, ServerError, ServerErrorKind};
