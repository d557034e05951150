//! `invalidate(key)`: round 1 takes the entry (`GETDEL`, or the document twin), followed, with
//! [`Durability::Replicas`](crate::cache::durability::Durability::Replicas), by a `WAIT` on the
//! connection that ran it; round 2 removes the key from the tags its old envelope names (`TAG_LEAVE`, which
//! gives a tag key back an expiry once no member without expiry is left).

use std::sync::Arc;

use crate::cache::error::CacheError;
use crate::cache::plan::{self, Tags};
use crate::cache::scripts;
use crate::client::RequestError;
use crate::keys::EncodedKey;
use crate::resp::Value;

use super::deadline::Deadline;
use super::exchange::{Command, Exchange, Results};
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::Scope;

#[derive(Debug)]
enum Phase {
    Take { want: Option<u32> },
    Leave { existed: bool },
    Over,
}

/// The `invalidate` operation.
#[derive(Debug)]
pub struct InvalidateKey {
    scope: Arc<Scope>,
    key: EncodedKey,
    deadline: Deadline,
    phase: Phase,
    short: Option<(i64, i64)>,
}

/// The machine of [`InvalidateKey`].
pub type InvalidateKeyMachine = RoundMachine<InvalidateKey>;

impl InvalidateKey {
    /// Invalidates `key` of `scope`'s namespace; the outcome says whether it existed.
    #[must_use]
    pub fn machine(scope: Arc<Scope>, key: EncodedKey, deadline: Deadline) -> InvalidateKeyMachine {
        RoundMachine::new(Self { scope, key, deadline, phase: Phase::Over, short: None })
    }
}

impl Rounds for InvalidateKey {
    type Output = bool;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, cx: &mut Ctx<'_>) -> Result<Next<bool>, CacheError> {
        let take = self.scope.storage.take(&self.key);
        let wait = self.scope.durability.wait_for(self.key.slot(), cx.topology);
        let mut cmds = vec![if wait.is_some() { take.blocking() } else { take }];
        if let Some((n, ms)) = wait {
            cmds.push(Command::from(plan::wait_after(&self.key, n, ms).after(0)));
        }
        self.phase = Phase::Take { want: wait.map(|(n, _)| n) };
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn after_round(&mut self, _cx: &mut Ctx<'_>, results: Results) -> Result<Next<bool>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Take { want } => {
                let mut replies = results.into_iter();
                let old = plan::read_stored(
                    replies.next().unwrap_or(Ok(Value::Nil)).map_err(CacheError::Request)?,
                )?;
                if let Some(want) = want {
                    let acked = match replies.next().unwrap_or(Err(RequestError::Internal {
                        what: "a round ended without a result for every command",
                    })) {
                        Ok(v) => plan::read_int("WAIT", &v)?,
                        Err(RequestError::ConnectionLost { .. } | RequestError::Skipped { .. }) => 0,
                        Err(e) => return Err(CacheError::Request(e)),
                    };
                    if acked < i64::from(want) {
                        self.short = Some((acked, i64::from(want)));
                    }
                }
                let mut cmds = Vec::new();
                // A corrupt entry has no tags we can read; deleting it was still right.
                if let Some(entry) = old.as_ref().and_then(|o| self.scope.storage.decode(o).ok()) {
                    let plans = Tags::new(&self.scope.ns);
                    for t in &entry.tags {
                        let cmd = plans.remove_member(&t.tag, self.key.bytes(), true)?;
                        cmds.push(Command::script(cmd, &scripts::TAG_LEAVE));
                    }
                }
                self.phase = Phase::Leave { existed: old.is_some() };
                Ok(Next::Round(Exchange::new(cmds)))
            }
            Phase::Leave { existed } => {
                for r in results {
                    plan::read_int("tag_leave", &r.map_err(CacheError::Request)?)?;
                }
                match self.short {
                    Some((acked, wanted)) => Err(CacheError::NotDurable { acked, wanted }),
                    None => Ok(Next::Done(existed)),
                }
            }
            Phase::Over => {
                Err(CacheError::UnexpectedReply { command: "invalidate", got: "a round too many".into() })
            }
        }
    }
}
