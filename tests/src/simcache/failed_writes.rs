//! Property "C": a `compute` that failed with an error reply wrote nothing. The simulation's
//! injected errors ([`super::orphans::INJECTED`]) answer a command without running it, so an
//! error reply is a definite "not done" for the command it answers, and `compute` registers its
//! tags before its compare-and-set: nothing that can fail follows the write. A compute that
//! failed so must therefore never have its value read (by any read, the final read of every
//! key included). Its old bug did: the tags were registered after the compare-and-set applied,
//! and their failure failed the call, so a caller retrying applied its function twice.
//!
//! Failures that do not say whether the write ran (a timeout, a lost connection) are not
//! judged: nobody can tell them apart from a write that did not run.

use std::collections::HashMap;

use crate::history::{History, Op, Violation};

use super::orphans::INJECTED;

/// The reads of values written by a `compute` that failed with an injected error reply.
#[must_use]
pub fn violations(h: &History) -> Vec<Violation> {
    let failed: HashMap<&str, usize> = h
        .records
        .iter()
        .filter_map(|r| match (&r.op, &r.result) {
            (Op::Compute { value, .. }, Err(e)) if e.contains(INJECTED) => Some((value.as_str(), r.id)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for r in &h.records {
        for (key, v, _) in r.reads() {
            if let Some(&w) = failed.get(v) {
                out.push(Violation {
                    property: "C",
                    what: format!(
                        "read of {key} returned {v}, written by a compute that failed with an error reply"
                    ),
                    ops: vec![h.records[w].clone(), r.clone()],
                });
            }
        }
    }
    out
}
