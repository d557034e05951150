//! A node's replication state: its offset and history (PSYNC2's replication ids), its lag as a
//! replica, and, as a primary, the backlog of [`Effect`]s its replicas apply. The cluster
//! holds one per node; [`super::replication`] moves effects along.

use std::time::Duration;

use super::store::Effect;

/// A node's replication state.
#[derive(Debug, Clone, Default)]
pub struct Repl {
    /// `master_repl_offset` of a primary; the applied offset of a replica.
    pub offset: u64,
    /// The history this offset belongs to (a promotion or a data-losing restart starts a new
    /// one).
    pub id: u64,
    /// The history this node continued at promotion, and the offset where it left it (PSYNC2's
    /// replid2 / second_replid_offset): a replica of that history at or below it can resume.
    pub prev: Option<(u64, u64)>,
    /// How long a replica takes to apply a write (one way).
    pub lag: Duration,
    /// Extra random lag per write, up to this (from the cluster's seeded generator).
    pub lag_jitter: Duration,
    /// A frozen replica applies nothing until thawed.
    pub frozen: bool,
    /// Recent effects, `(offset after it, effect)`, for replicas to apply.
    backlog: Vec<(u64, Effect)>,
    /// The offset just before the backlog's first entry.
    base: u64,
}

/// Effects kept for partial resynchronisation.
const BACKLOG: usize = 100_000;

impl Repl {
    /// A fresh state of history `id`, lag 1 ms.
    #[must_use]
    pub fn with_id(id: u64) -> Self {
        Self { id, lag: Duration::from_millis(1), ..Self::default() }
    }

    /// Appends `e` to the stream: the offset grows by its size; the oldest effects beyond
    /// the backlog's length are dropped.
    pub(crate) fn push(&mut self, e: Effect) {
        self.offset += e.size();
        self.backlog.push((self.offset, e));
        if self.backlog.len() > BACKLOG {
            let cut = self.backlog.len() - BACKLOG;
            self.base = self.backlog[cut - 1].0;
            self.backlog.drain(..cut);
        }
    }

    /// Starts history `id` at the current offset, with an empty backlog.
    pub(crate) fn restart_history(&mut self, id: u64) {
        self.id = id;
        self.prev = None;
        self.backlog.clear();
        self.base = self.offset;
    }

    /// Whether a replica of history `id` at `offset` can resume from this primary's backlog.
    pub(crate) fn can_resume(&self, id: u64, offset: u64) -> bool {
        let same = id == self.id || self.prev.is_some_and(|(p, end)| p == id && offset <= end);
        same && offset <= self.offset && offset >= self.base
    }

    /// The effects after offset `from` up to `upto`, in order; `None` when `from` is older
    /// than the backlog (the replica needs a full copy).
    pub(crate) fn since(&self, from: u64, upto: u64) -> Option<Vec<Effect>> {
        if from < self.base {
            return None;
        }
        Some(self.backlog.iter().filter(|(o, _)| *o > from && *o <= upto).map(|(_, e)| e.clone()).collect())
    }
}
