//! The operation mix of a simulated history run: a few workers, each running one operation at
//! a time, chosen from the seed; every written value unique.

use crate::history::Op;
use crate::history::workload::{Rng, key_name};

/// The size of a simulated run.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// Concurrent workers.
    pub workers: usize,
    /// Operations each worker runs.
    pub ops_per_worker: usize,
    /// Keys `k00`, `k01`, ...
    pub keys: usize,
    /// Tags `t0`, `t1`, ...
    pub tags: usize,
}

impl Default for Mix {
    fn default() -> Self {
        Self { workers: 6, ops_per_worker: 25, keys: 12, tags: 3 }
    }
}

/// Draws each worker's next operation.
#[derive(Debug)]
pub struct Ops {
    mix: Mix,
    rng: Rng,
    seq: u64,
    keys: Vec<String>,
    tags: Vec<String>,
    search: bool,
}

impl Ops {
    /// Operations of `mix`, drawn from `seed`.
    #[must_use]
    pub fn new(mix: Mix, seed: u64) -> Self {
        let keys = (0..mix.keys).map(key_name).collect();
        let tags = (0..mix.tags).map(|i| format!("t{i}")).collect();
        Self { mix, rng: Rng::new(seed), seq: 0, keys, tags, search: false }
    }

    /// These operations with searches of a searchable namespace mixed in (about a quarter:
    /// queries, `ensure_search_index`, now and then `drop_search_index`).
    #[must_use]
    pub const fn with_search(mut self) -> Self {
        self.search = true;
        self
    }

    fn search_op(&mut self) -> Op {
        match self.rng.below(25) {
            0 => return Op::DropIndex,
            1 | 2 => return Op::EnsureIndex,
            _ => {}
        }
        let mut parts: Vec<String> = Vec::new();
        let colours = super::ops::COLOURS;
        match self.rng.below(10) {
            0..=3 => parts.push(format!("g={}", colours[self.rng.below(3)])),
            4 => parts.push(format!("g!={}", colours[self.rng.below(3)])),
            _ => {}
        }
        match self.rng.below(10) {
            0..=1 => parts.push(format!("n<={}", self.rng.below(10))),
            2..=3 => parts.push(format!("n>={}", self.rng.below(10))),
            4 => {
                let lo = self.rng.below(6);
                parts.push(format!("n>={lo} n<={}", lo + self.rng.below(5)));
            }
            _ => {}
        }
        if self.rng.below(2) == 0 {
            let field = if self.rng.below(2) == 0 { "n" } else { "g" };
            let order = if self.rng.below(2) == 0 { "asc" } else { "desc" };
            parts.push(format!("sort={field}:{order}"));
        }
        if self.rng.below(5) == 0 {
            parts.push(format!("offset={}", 1 + self.rng.below(3)));
        }
        parts.push(format!("limit={}", 3 + self.rng.below(10)));
        Op::Query { filter: parts.join(" ") }
    }

    /// The run's size.
    #[must_use]
    pub const fn mix(&self) -> Mix {
        self.mix
    }

    fn value(&mut self, worker: usize) -> String {
        self.seq += 1;
        format!("w{worker}-{}", self.seq)
    }

    fn some_tags(&mut self) -> Vec<String> {
        let n = self.rng.below(3);
        self.rng.pick(&self.tags, n)
    }

    /// The next operation of `worker`.
    pub fn next(&mut self, worker: usize) -> Op {
        if self.search && self.rng.below(4) == 0 {
            return self.search_op();
        }
        let key = self.keys[self.rng.below(self.keys.len())].clone();
        let roll = self.rng.below(100);
        match roll {
            0..=19 => Op::Get { key },
            20..=23 => Op::GetEntry { key },
            24..=27 => {
                let n = 2 + self.rng.below(3);
                Op::BulkGet { keys: self.rng.pick(&self.keys, n) }
            }
            28..=49 => {
                let tags = self.some_tags();
                Op::Set { value: self.value(worker), key, tags }
            }
            50..=56 => {
                let n = 2 + self.rng.below(3);
                let keys = self.rng.pick(&self.keys, n);
                let items = keys.into_iter().map(|k| (k, self.value(worker))).collect();
                let tags = self.some_tags();
                Op::BulkSet { items, tags }
            }
            57..=61 => Op::Compute { value: self.value(worker), key },
            62..=67 => Op::Load { value: self.value(worker), key },
            68..=70 => Op::Refresh { value: self.value(worker), key },
            71..=72 => {
                let n = 2 + self.rng.below(2);
                let keys = self.rng.pick(&self.keys, n);
                Op::BulkRefresh { items: keys.into_iter().map(|k| (k, self.value(worker))).collect() }
            }
            73..=75 => Op::Expire { key, ms: 20 + self.rng.next() % 400 },
            76..=84 => Op::Invalidate { key },
            85 => match self.rng.below(3) {
                0 => Op::EstimatedSize,
                1 => Op::Keys,
                _ => Op::Entries,
            },
            86 if self.rng.below(4) == 0 => Op::InvalidateAll,
            _ => {
                let n = 1 + self.rng.below(2);
                Op::InvalidateTags { tags: self.rng.pick(&self.tags, n) }
            }
        }
    }
}
