//! Every cache operation that takes more than one command, or that retries, waits or decides,
//! as a step machine (see [`machine`]). The async layer drives them over the cluster client;
//! the simulation drives the same machines over a simulated cluster with faults.

pub mod bulk_load;
pub mod bulk_refresh;
pub mod cas;
pub mod child;
pub mod compute;
pub mod deadline;
pub mod exchange;
pub mod flights;
pub mod fresh;
pub mod invalidate;
pub mod invalidate_tags;
pub mod load;
pub mod lock;
pub mod lookup;
pub mod machine;
pub mod rounds;
pub mod scope;
#[cfg(test)]
pub(crate) mod testing;
pub mod write;

pub use deadline::Deadline;
pub use exchange::{Command, Exchange, Progress, Results};
pub use machine::{Ctx, Entropy, Input, Machine, Step};
pub use rounds::{Next, RoundMachine, Rounds};
pub use scope::Scope;
