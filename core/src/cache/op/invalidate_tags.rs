//! `invalidate_by_tags`: swap each tag's token, then delete the members that still carry the
//! old one, count the fresh ones, and take the deleted entries out of their other tags.
//!
//! Round 1, per tag: the `TAG_INVALIDATE` script, and (with [`Durability::Replicas`]) a `WAIT`
//! that **follows** it ([`Cmd::after`](crate::client::Cmd::after)): sent once the script has
//! answered, on the connection that ran it, wherever a redirection took it. A script the node
//! did not have cached is sent again as `EVAL` together with its `WAIT` (see
//! [`Exchange`]), so the acknowledgement always covers the token swap that happened.
//! Round 2: the conditional deletes. Round 3 (only when deleted entries have tags outside the
//! call): those tags' current tokens, to count only entries that were still fresh. Round 4:
//! `ZREM` of each deleted entry from its other tags. See `docs/consistency.md`.
//!
//! [`Durability::Replicas`]: crate::cache::durability::Durability::Replicas

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan::{self, Tags};
use crate::cache::scripts;
use crate::client::RequestError;

use super::deadline::Deadline;
use super::exchange::{Command, Exchange, Results};
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::{Scope, token};

/// Test-only variants of real bugs, to show that the simulation catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// The protocol as documented.
    #[default]
    Correct,
    /// Bug A1: the `WAIT` is pipelined after the `EVALSHA` instead of following the script's
    /// real execution, so a `NOSCRIPT` retry goes out after the `WAIT` has answered.
    WaitBeforeRetry,
}

#[derive(Debug)]
enum Phase {
    Swap { waits: Vec<Option<u32>> },
    Delete { doomed: Vec<(Bytes, Bytes)> },
    Count { deleted: Vec<Option<Entry>>, others: Vec<Bytes> },
    Leave { removed: u64 },
    Over,
}

/// The `invalidate_by_tags` operation.
#[derive(Debug)]
pub struct InvalidateTags {
    scope: Arc<Scope>,
    tags: Vec<Bytes>,
    deadline: Deadline,
    variant: Variant,
    phase: Phase,
    /// Each invalidated tag's token just before the swap (`None`: it had none).
    before: BTreeMap<Bytes, Option<Bytes>>,
    /// The first shard whose replicas did not all acknowledge: (acked, wanted).
    short: Option<(i64, i64)>,
    leave: Vec<Command>,
}

/// The machine of [`InvalidateTags`].
pub type InvalidateTagsMachine = RoundMachine<InvalidateTags>;

impl InvalidateTags {
    /// Invalidates `tags` (distinct, in order) of `scope`'s namespace.
    #[must_use]
    pub fn machine(scope: Arc<Scope>, tags: Vec<Bytes>, deadline: Deadline) -> InvalidateTagsMachine {
        Self::machine_with(scope, tags, deadline, Variant::Correct)
    }

    /// The same with a test-only bug variant.
    #[doc(hidden)]
    #[must_use]
    pub fn machine_with(
        scope: Arc<Scope>,
        tags: Vec<Bytes>,
        deadline: Deadline,
        variant: Variant,
    ) -> InvalidateTagsMachine {
        RoundMachine::new(Self {
            scope,
            tags,
            deadline,
            variant,
            phase: Phase::Over,
            before: BTreeMap::new(),
            short: None,
            leave: Vec::new(),
        })
    }

    fn swap_round(&mut self, cx: &mut Ctx<'_>) -> Result<Next<u64>, CacheError> {
        let plans = Tags::new(&self.scope.ns);
        let mut cmds = Vec::new();
        let mut waits = Vec::new();
        for t in &self.tags {
            let key = plans.key(t)?;
            let at = cmds.len();
            cmds.push(Command::script(
                plans.invalidate(t, token(cx.entropy), true)?,
                &scripts::TAG_INVALIDATE,
            ));
            let wait = self.scope.durability.wait_for(key.slot(), cx.topology);
            if let Some((n, ms)) = wait {
                let w = plan::wait_after(&key, n, ms);
                cmds.push(if self.variant == Variant::WaitBeforeRetry { w } else { w.after(at) }.into());
            }
            waits.push(wait.map(|(n, _)| n));
        }
        self.phase = Phase::Swap { waits };
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn after_swap(&mut self, waits: &[Option<u32>], results: Results) -> Result<Next<u64>, CacheError> {
        let mut replies = results.into_iter();
        let mut doomed = Vec::new();
        let mut seen = BTreeSet::new();
        for (tag, want) in self.tags.iter().zip(waits) {
            let r = replies
                .next()
                .unwrap_or(Err(RequestError::Internal {
                    what: "a round ended without a result for every command",
                }))
                .map_err(CacheError::Request)?;
            let old = plan::read_invalidated(r)?.map(|(old, members)| {
                for m in members {
                    if seen.insert((m.clone(), old.clone())) {
                        doomed.push((m, old.clone()));
                    }
                }
                old
            });
            self.before.insert(tag.clone(), old);
            if let Some(want) = want {
                let want = i64::from(*want);
                let acked = match replies.next().unwrap_or(Err(RequestError::Internal {
                    what: "a round ended without a result for every command",
                })) {
                    Ok(v) => plan::read_int("WAIT", &v)?,
                    // The connection that ran the swap is gone before the WAIT could run there:
                    // nothing says a replica has it.
                    Err(RequestError::ConnectionLost { .. } | RequestError::Skipped { .. }) => 0,
                    Err(e) => return Err(CacheError::Request(e)),
                };
                if acked < want {
                    self.short.get_or_insert((acked, want));
                }
            }
        }
        let storage = self.scope.storage;
        let cmds = doomed.iter().map(|(m, tok)| storage.delete_if_token(m, tok)).collect();
        self.phase = Phase::Delete { doomed };
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn after_delete(&mut self, doomed: &[(Bytes, Bytes)], results: Results) -> Result<Next<u64>, CacheError> {
        let plans = Tags::new(&self.scope.ns);
        let mut deleted = Vec::new();
        for (r, (member, _)) in results.into_iter().zip(doomed) {
            if let Some(header) = plan::read_cond_del_raw(r.map_err(CacheError::Request)?)? {
                let entry = self.scope.storage.decode(&header).ok();
                // The deleted entry leaves its other tags too (the invalidated ones are gone).
                for t in entry.iter().flat_map(|e| &e.tags).filter(|t| !self.tags.contains(&t.tag)) {
                    self.leave.push(plans.remove_member(&t.tag, member)?.into());
                }
                deleted.push(entry);
            }
        }
        let others: BTreeSet<Bytes> = deleted
            .iter()
            .flatten()
            .flat_map(|e| e.tags.iter().map(|t| &t.tag))
            .filter(|t| !self.before.contains_key(*t))
            .cloned()
            .collect();
        let others: Vec<Bytes> = others.into_iter().collect();
        let cmds =
            others.iter().map(|t| plans.read_token(t).map(Command::from)).collect::<Result<Vec<_>, _>>()?;
        self.phase = Phase::Count { deleted, others };
        Ok(Next::Round(Exchange::new(cmds)))
    }

    /// How many deleted entries were still fresh: each invalidated tag carried its token from
    /// just before the swap, each other tag its current token. An entry whose header cannot be
    /// read is counted (it carried the token). If a token read failed, every deleted entry is
    /// counted: the invalidation itself has succeeded, and failing it now would only make the
    /// caller invalidate again.
    fn after_count(&mut self, deleted: &[Option<Entry>], others: Vec<Bytes>, results: Results) -> Next<u64> {
        let mut current = self.before.clone();
        let mut all_read = true;
        for (t, r) in others.into_iter().zip(results) {
            match r.map_err(CacheError::Request).and_then(plan::read_current_token) {
                Ok(tok) => {
                    current.insert(t, tok);
                }
                Err(_) => all_read = false,
            }
        }
        let removed = if all_read {
            deleted.iter().filter(|e| e.as_ref().is_none_or(|e| is_fresh(e, &current))).count()
        } else {
            deleted.len()
        };
        self.phase = Phase::Leave { removed: removed as u64 };
        Next::Round(Exchange::new(std::mem::take(&mut self.leave)))
    }

    fn after_leave(&self, removed: u64, results: Results) -> Result<Next<u64>, CacheError> {
        for r in results {
            plan::read_int("ZREM", &r.map_err(CacheError::Request)?)?;
        }
        if let Some((acked, wanted)) = self.short {
            return Err(CacheError::NotDurable { acked, wanted });
        }
        Ok(Next::Done(removed))
    }
}

fn is_fresh(entry: &Entry, current: &BTreeMap<Bytes, Option<Bytes>>) -> bool {
    entry.tags.iter().all(|t| current.get(&t.tag).is_some_and(|c| c.as_ref() == Some(&t.token)))
}

impl Rounds for InvalidateTags {
    type Output = u64;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, cx: &mut Ctx<'_>) -> Result<Next<u64>, CacheError> {
        if self.tags.is_empty() {
            return Ok(Next::Done(0));
        }
        self.swap_round(cx)
    }

    fn after_round(&mut self, _cx: &mut Ctx<'_>, results: Results) -> Result<Next<u64>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Swap { waits } => self.after_swap(&waits, results),
            Phase::Delete { doomed } => self.after_delete(&doomed, results),
            Phase::Count { deleted, others } => Ok(self.after_count(&deleted, others, results)),
            Phase::Leave { removed } => self.after_leave(removed, results),
            Phase::Over => Err(CacheError::UnexpectedReply {
                command: "invalidate_by_tags",
                got: "a round too many".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    use crate::cache::durability::Durability;
    use crate::cache::op::Step;
    use crate::cache::op::testing::{Hand, bulk, pipeline, server_error, words};
    use crate::cache::storage::Storage;
    use crate::keys::Namespace;
    use crate::resp::Value;

    fn machine(variant: Variant) -> Hand<InvalidateTagsMachine> {
        let scope = Arc::new(Scope {
            ns: Namespace::new("ns").expect("valid"),
            name: "ns:".into(),
            storage: Storage::Envelope,
            max_value_size: 1 << 20,
            durability: Durability::Replicas { replicas: 1, timeout: Duration::from_millis(250) },
        });
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        let d = Deadline::new(Instant::now(), "invalidate_by_tags", Duration::from_secs(10));
        Hand::new(InvalidateTags::machine_with(scope, vec![Bytes::from_static(b"t")], d, variant))
    }

    use std::time::Instant;

    /// The WAIT follows the script (it runs on the connection that ran it), and after a
    /// NOSCRIPT it goes out again behind the EVAL: the acknowledgement covers the real swap.
    #[test]
    fn the_wait_follows_the_script_and_its_eval_retry() {
        let mut m = machine(Variant::Correct);
        let first = pipeline(&m.start());
        assert_eq!(words(&first[0])[0], "EVALSHA");
        assert_eq!((words(&first[1])[0].as_str(), first[1].follows()), ("WAIT", Some(0)));
        let noscript = server_error("NOSCRIPT No matching script. Please use EVAL.");
        let again = pipeline(&m.reply(vec![Err(noscript), Err(RequestError::Skipped { index: 0 })]));
        assert_eq!(words(&again[0])[0], "EVAL");
        assert_eq!((words(&again[1])[0].as_str(), again[1].follows()), ("WAIT", Some(0)));
        // The swap ran, the replica did not acknowledge: NotDurable, after the clean-up rounds.
        let swap = Value::Array(vec![bulk(b"old"), Value::Array(vec![])]);
        let mut step = m.reply(vec![Ok(swap), Ok(Value::Int(0))]);
        while let Step::Send(_) = step {
            step = m.reply(Vec::new());
        }
        assert!(matches!(step, Step::Done(Err(CacheError::NotDurable { acked: 0, wanted: 1 }))), "{step:?}");
    }

    /// The A1 variant pipelines the WAIT after the EVALSHA and does not send it again.
    #[test]
    fn the_a1_variant_sends_the_wait_before_the_retry() {
        let mut m = machine(Variant::WaitBeforeRetry);
        let first = pipeline(&m.start());
        assert_eq!(first[1].follows(), None);
        let noscript = server_error("NOSCRIPT No matching script. Please use EVAL.");
        let again = pipeline(&m.reply(vec![Err(noscript), Ok(Value::Int(1))]));
        assert_eq!(again.len(), 1, "only the EVAL: {again:?}");
    }
}
