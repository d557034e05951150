//! Which shards each client process served since when, from the `served` lines the clients
//! print (one instant per key, on the run's clock).

/// The latest `served` report of every client process.
pub(crate) struct Served {
    /// The shard of each key (by index).
    key_shard: Vec<usize>,
    shards: usize,
    latest: Vec<Vec<u64>>,
}

impl Served {
    pub(crate) fn new(key_shard: Vec<usize>, shards: usize, processes: usize) -> Self {
        Self { key_shard, shards, latest: vec![Vec::new(); processes] }
    }

    /// Takes in one line of process `p` (other lines are ignored).
    pub(crate) fn take_line(&mut self, p: usize, line: &str) {
        if let (Some(rest), Some(slot)) = (line.strip_prefix("served "), self.latest.get_mut(p)) {
            *slot = rest.split_whitespace().map(|n| n.parse().unwrap_or(0)).collect();
        }
    }

    /// Whether every process succeeded on a key of every shard (that has keys) after `since`.
    pub(crate) fn all_served_after(&self, since: u64) -> bool {
        self.latest.iter().all(|keys| {
            (0..self.shards).all(|s| {
                let mut mine = self.key_shard.iter().enumerate().filter(|(_, ks)| **ks == s).peekable();
                mine.peek().is_none() || mine.any(|(i, _)| keys.get(i).is_some_and(|&t| t > since))
            })
        })
    }
}
