//! Every cache operation that takes more than one command, or that retries, waits or decides,
//! as a step machine (see [`machine`]). The async layer drives them over the cluster client;
//! the simulation drives the same machines over a simulated cluster with faults.

pub mod bulk_load;
pub mod bulk_refresh;
pub mod cas;
pub mod child;
pub mod compute;
pub mod deadline;
pub mod eviction;
pub mod exchange;
pub mod expiry;
#[cfg(feature = "search")]
pub mod fan_out;
pub mod flights;
pub mod flush;
pub mod fresh;
#[cfg(any(test, feature = "_fuzz"))]
pub mod fuzz;
pub mod invalidate;
pub mod invalidate_tags;
pub mod iterate;
pub mod load;
pub mod lock;
pub mod lookup;
pub mod machine;
pub mod read;
pub mod read_fresh;
pub mod refresh_mark;
pub mod rounds;
pub mod scan;
pub mod scope;
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod search_drop;
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod search_index;
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod search_query;
#[cfg(test)]
pub(crate) mod testing;
pub mod walk;
pub mod write;

pub use deadline::Deadline;
pub use exchange::{Command, Exchange, Progress, Results};
pub use machine::{Ctx, Entropy, Input, Machine, Step};
pub use rounds::{Next, RoundMachine, Rounds};
pub use scope::Scope;
