//! A simulated Valkey Cluster, driven through the sans-IO client with virtual time.
//!
//! Deterministic: one seed fixes latencies, reply chunking and the client's jitter, so a failing
//! scenario replays exactly. The simulated servers speak real RESP (encoded and decoded with the
//! core's codec) and answer the way Valkey does: `MOVED` for slots they do not own, `ASK` and
//! `TRYAGAIN` during a migration, `CLUSTERDOWN`, `LOADING`, `READONLY`, and `CLUSTER SHARDS`
//! describing their current view.
//!
//! Every behaviour shown here is also shown against a real cluster in the conformance suite.

mod cluster;
mod net;

pub use cluster::{Session, SimCluster, SimNode, addr};
pub use net::{Chunking, Sim};
