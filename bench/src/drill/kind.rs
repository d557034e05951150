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
}

impl Drill {
    /// Every drill, in run order.
    pub const ALL: [Self; 5] =
        [Self::KillPinned, Self::KillRandom, Self::PauseShort, Self::PauseLong, Self::DoubleFailover];

    /// The drill's number in issue 18.
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::KillPinned | Self::KillRandom => 1,
            Self::PauseShort | Self::PauseLong => 2,
            Self::DoubleFailover => 3,
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
        !matches!(self, Self::PauseShort)
    }

    /// The drills with these numbers (1, 2, 3), in run order.
    ///
    /// # Errors
    /// A number with no drill.
    pub fn by_numbers(numbers: &[u8]) -> Result<Vec<Self>, String> {
        if let Some(n) = numbers.iter().find(|n| !Self::ALL.iter().any(|d| d.number() == **n)) {
            return Err(format!("no drill {n} (there are drills 1, 2 and 3)"));
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
        assert!(Drill::by_numbers(&[4]).is_err());
    }
}
