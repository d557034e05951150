//! Which drill: what is done to the cluster, and how the load picks its keys.

/// One drill (a numbered drill of issue 18 may have several variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Drill {
    /// 1: `SIGKILL` of a primary; every task's keys on one shard.
    KillPinned,
    /// 1: `SIGKILL` of a primary; every task's keys spread over every shard.
    KillRandom,
    /// 2: `SIGSTOP` of a primary for 5 s, shorter than the node timeout (no failover).
    PauseShort,
    /// 2: `SIGSTOP` of a primary past the node timeout: its replica is promoted, then `SIGCONT`
    /// and the old primary comes back as a replica.
    PauseLong,
    /// 3: `SIGKILL` of a primary, and as soon as its replica is promoted and the old primary is
    /// back as its replica, `SIGKILL` of the new primary (a second failover of the same shard).
    DoubleFailover,
    /// 4: atomic slot migration (`CLUSTER MIGRATESLOTS`) of the whole shard to another primary
    /// (and back after the run).
    MigrateAtomic,
    /// 4: legacy migration (`SETSLOT MIGRATING/IMPORTING`, `MIGRATE`, `ASK`) of the slots the
    /// load uses on the shard, one by one (and back after the run).
    MigrateLegacy,
    /// 5: every node restarted, one at a time: per shard the replica, then `CLUSTER FAILOVER` to
    /// it, then the old primary.
    RollingRestart,
}

impl Drill {
    /// Every drill, in run order.
    pub const ALL: [Self; 8] = [
        Self::KillPinned,
        Self::KillRandom,
        Self::PauseShort,
        Self::PauseLong,
        Self::DoubleFailover,
        Self::MigrateAtomic,
        Self::MigrateLegacy,
        Self::RollingRestart,
    ];

    /// The drill's number in issue 18.
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::KillPinned | Self::KillRandom => 1,
            Self::PauseShort | Self::PauseLong => 2,
            Self::DoubleFailover => 3,
            Self::MigrateAtomic | Self::MigrateLegacy => 4,
            Self::RollingRestart => 5,
        }
    }

    /// Short name (file names, CSV).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::KillPinned => "kill-pinned",
            Self::KillRandom => "kill-random",
            Self::PauseShort => "pause-5s",
            Self::PauseLong => "pause-failover",
            Self::DoubleFailover => "double-failover",
            Self::MigrateAtomic => "migrate-atomic",
            Self::MigrateLegacy => "migrate-legacy",
            Self::RollingRestart => "rolling-restart",
        }
    }

    /// One line for humans.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::KillPinned => "1a. SIGKILL of a primary, tasks pinned to shards",
            Self::KillRandom => "1b. SIGKILL of a primary, every task on random keys of every shard",
            Self::PauseShort => "2a. SIGSTOP of a primary for 5 s (node timeout 15 s: no failover)",
            Self::PauseLong => {
                "2b. SIGSTOP of a primary past the node timeout (failover), then SIGCONT (back as a replica)"
            }
            Self::DoubleFailover => {
                "3. Two failovers of one shard in a row (SIGKILL, promotion, SIGKILL again)"
            }
            Self::MigrateAtomic => {
                "4a. Atomic slot migration (CLUSTER MIGRATESLOTS) of a whole shard under load"
            }
            Self::MigrateLegacy => "4b. Legacy migration (MIGRATE, ASK) of the slots under load, one by one",
            Self::RollingRestart => {
                "5. Rolling restart of every node, one at a time (replica, CLUSTER FAILOVER, old primary)"
            }
        }
    }

    /// What the reader of this drill's table should know.
    #[must_use]
    pub const fn note(self) -> &'static str {
        match self {
            Self::KillPinned => {
                "Every task's keys are on one shard: whatever the healthy shards see is the client's doing."
            }
            Self::KillRandom => {
                "Every task's keys are spread over every shard and a task waits for each request: a \
                 client that holds requests to the dead shard for long holds its tasks, and the \
                 healthy shards' traffic stalls with them."
            }
            Self::PauseShort => {
                "The node timeout is raised to 15 s on every node for this drill (and set back after): \
                 the primary is stopped for 5 s and nobody fails it over."
            }
            Self::PauseLong => {
                "The primary is stopped until its replica is promoted, then woken: it comes back as a \
                 replica. Writes it acknowledges between waking and learning of its demotion are lost."
            }
            Self::DoubleFailover => {
                "The killed primary is restarted, becomes the new primary's replica, and as soon as its \
                 link is up the new primary is killed: writes not yet replicated to it are lost (stale \
                 reads, the same for every client). Times to full service run from the first kill."
            }
            Self::MigrateAtomic | Self::MigrateLegacy => {
                "The faulty shard's slots move to the next shard's primary (and back after the run): \
                 the clients must follow `MOVED` (and `ASK`). \"Serving again\" is negative when a \
                 client served the shard's keys throughout."
            }
            Self::RollingRestart => {
                "Every shard goes through it in turn, so the \"healthy\" shards are restarted too (one \
                 at a time, replica first, then a `CLUSTER FAILOVER` and the old primary); the \
                 \"faulty\" shard is the run's first. Time to full service runs from the first \
                 failover to the first success after the last."
            }
        }
    }

    /// Whether each task spreads its keys over every shard (instead of one).
    #[must_use]
    pub const fn random_keys(self) -> bool {
        matches!(self, Self::KillRandom)
    }

    /// Whether the drill promotes a replica (and so measures serving again after a promotion).
    #[must_use]
    pub const fn promotes(self) -> bool {
        matches!(self, Self::KillPinned | Self::KillRandom | Self::PauseLong | Self::DoubleFailover)
    }

    /// What ends the fault for the cluster (the point "serving again" is measured from).
    #[must_use]
    pub const fn back(self) -> &'static str {
        match self {
            Self::PauseShort => "SIGCONT",
            Self::MigrateAtomic | Self::MigrateLegacy => "end of the migration",
            Self::RollingRestart => "end of each failover",
            _ => "promotion",
        }
    }

    /// The drills with these numbers (1, 2, 3), in run order.
    ///
    /// # Errors
    /// A number with no drill.
    pub fn by_numbers(numbers: &[u8]) -> Result<Vec<Self>, String> {
        if let Some(n) = numbers.iter().find(|n| !Self::ALL.iter().any(|d| d.number() == **n)) {
            return Err(format!("no drill {n} (there are drills 1 to 5)"));
        }
        Ok(Self::ALL.into_iter().filter(|d| numbers.contains(&d.number())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_select_variants() {
        assert_eq!(Drill::by_numbers(&[1]).unwrap(), vec![Drill::KillPinned, Drill::KillRandom]);
        assert_eq!(Drill::by_numbers(&[3, 2]).unwrap().len(), 3);
        assert_eq!(Drill::by_numbers(&[4]).unwrap(), vec![Drill::MigrateAtomic, Drill::MigrateLegacy]);
        assert!(Drill::by_numbers(&[6]).is_err());
    }
}
