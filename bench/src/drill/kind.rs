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
    /// 6: 200 ms added to every reply of one primary (through the fault proxy).
    NetLatency,
    /// 6: the primary's connections capped at 16 KiB/s each way.
    NetBandwidth,
    /// 6: every connection to the primary closed, and new ones at once, while the fault lasts.
    NetDrop,
    /// 6: the primary's open connections go silent for good (half-open); new ones work.
    NetHalfOpen,
    /// 6: the primary accepts and never replies (nothing moves on any connection).
    NetBlackhole,
    /// 7: a primary killed and its shard left without one for 60 s (no failover), under
    /// open-loop load, each client in a process of its own (peak RSS).
    NodeDown,
}

impl Drill {
    /// Every drill, in run order.
    pub const ALL: [Self; 14] = [
        Self::KillPinned,
        Self::KillRandom,
        Self::PauseShort,
        Self::PauseLong,
        Self::DoubleFailover,
        Self::MigrateAtomic,
        Self::MigrateLegacy,
        Self::RollingRestart,
        Self::NetLatency,
        Self::NetBandwidth,
        Self::NetDrop,
        Self::NetHalfOpen,
        Self::NetBlackhole,
        Self::NodeDown,
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
            Self::NetLatency
            | Self::NetBandwidth
            | Self::NetDrop
            | Self::NetHalfOpen
            | Self::NetBlackhole => 6,
            Self::NodeDown => 7,
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
            Self::NetLatency => "net-latency",
            Self::NetBandwidth => "net-bandwidth",
            Self::NetDrop => "net-drop",
            Self::NetHalfOpen => "net-half-open",
            Self::NetBlackhole => "net-blackhole",
            Self::NodeDown => "node-down",
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
            Self::NetLatency => "6a. Network: 200 ms added to every reply of a primary (fault proxy)",
            Self::NetBandwidth => {
                "6b. Network: a primary's connections capped at 16 KiB/s each way (fault proxy)"
            }
            Self::NetDrop => "6c. Network: every connection to a primary dropped, new ones too (fault proxy)",
            Self::NetHalfOpen => {
                "6d. Network: a primary's open connections turn half-open, new ones work (fault proxy)"
            }
            Self::NetBlackhole => "6e. Network: a primary accepts and never replies (fault proxy)",
            Self::NodeDown => {
                "7. A primary down for 60 s under open-loop load, no failover (each client in its own process)"
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
            Self::NetLatency
            | Self::NetBandwidth
            | Self::NetDrop
            | Self::NetHalfOpen
            | Self::NetBlackhole => {
                "The clients reach the faulty shard's primary through the drill's TCP fault proxy \
                 (`slotcache_tests::proxy`, on loopback): the node announces the proxy's port \
                 (`CONFIG SET cluster-announce-port`), so `CLUSTER SHARDS`, `CLUSTER SLOTS` and \
                 `MOVED` point there, and its replica replicates through it too. The fault lasts \
                 the time given in the setup, then is lifted (a half-open connection is then \
                 closed, as the peer's kernel finally would). The cluster bus is not proxied: no \
                 failover. \"Serving again\" runs from the lift (negative: served during the \
                 fault); time to full service from the fault."
            }
            Self::NodeDown => {
                "The primary is killed and its replica may not fail over (`cluster-replica-no-failover \
                 yes`) until the time is up; then `CLUSTER FAILOVER FORCE` promotes it and the old \
                 primary is restarted as its replica. Each client runs in a process of its own \
                 (`slotcache drill-worker`) under an open-loop load: a request started every period \
                 whatever the ones before are doing, so requests to the dead shard pile up as far as \
                 the client lets them. Requests are counted in 10 ms bins (stalls and times to the \
                 bin); the RSS table below gives each process's memory."
            }
        }
    }

    /// Whether the clients reach the faulty primary through the fault proxy (drill 6).
    #[must_use]
    pub const fn proxied(self) -> bool {
        self.number() == 6
    }

    /// Whether each task spreads its keys over every shard (instead of one).
    #[must_use]
    pub const fn random_keys(self) -> bool {
        matches!(self, Self::KillRandom)
    }

    /// Whether the drill promotes a replica (and so measures serving again after a promotion).
    #[must_use]
    pub const fn promotes(self) -> bool {
        matches!(
            self,
            Self::KillPinned | Self::KillRandom | Self::PauseLong | Self::DoubleFailover | Self::NodeDown
        )
    }

    /// What ends the fault for the cluster (the point "serving again" is measured from).
    #[must_use]
    pub const fn back(self) -> &'static str {
        match self {
            Self::PauseShort => "SIGCONT",
            Self::MigrateAtomic | Self::MigrateLegacy => "end of the migration",
            Self::RollingRestart => "end of each failover",
            Self::NetLatency
            | Self::NetBandwidth
            | Self::NetDrop
            | Self::NetHalfOpen
            | Self::NetBlackhole => "lift of the fault",
            _ => "promotion",
        }
    }

    /// The drills with these numbers (1, 2, 3), in run order.
    ///
    /// # Errors
    /// A number with no drill.
    pub fn by_numbers(numbers: &[u8]) -> Result<Vec<Self>, String> {
        if let Some(n) = numbers.iter().find(|n| !Self::ALL.iter().any(|d| d.number() == **n)) {
            return Err(format!("no drill {n} (there are drills 1 to 7)"));
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
        assert_eq!(Drill::by_numbers(&[6]).unwrap().len(), 5);
        assert_eq!(Drill::by_numbers(&[7]).unwrap(), vec![Drill::NodeDown]);
        assert!(Drill::by_numbers(&[8]).is_err());
    }
}
