//! `invalidate_by_tags`: swap each tag's token, then delete the members that carry a stale
//! token, count the fresh ones, take the deleted entries out of their other tags, and list
//! again in their tag the members whose delete did not complete.
//!
//! Round 1, per tag: the `TAG_INVALIDATE` script (it returns the old token and the members with
//! their scores, and **erases** the member list), and (with [`Durability::Replicas`]) a `WAIT`
//! that **follows** it ([`Cmd::after`](crate::client::Cmd::after)): sent once the script has
//! answered, on the connection that ran it, wherever a redirection took it. A script the node
//! did not have cached is sent again as `EVAL` together with its `WAIT` (see
//! [`Exchange`]), so the acknowledgement always covers the token swap that happened.
//! Round 2: `DEL_IF_STALE` of each member, with the tag and its **new** token (it deletes an
//! entry carrying any other token of the tag). Round 3 (only when deleted entries have tags
//! outside the call): those tags' current tokens, to count only entries that were still fresh.
//! Round 4: `TAG_LEAVE` of each deleted entry from its other tags. Round 5 (only when a delete
//! failed): `TAG_RELIST` (`ZADD tag GT score member...`) of every member whose delete did not
//! complete, with the score the swap saw, so the next invalidation of the tag deletes it; its
//! budget is renewed ([`Deadline::renewed`]), since a delete round that timed out spent the
//! call's.
//!
//! A failure after the swap never returns early: it is kept, the remaining rounds run, and the
//! call fails with it after round 5 ([`CacheError::CleanupUnlisted`] when round 5 failed too).
//! A swap round that fails as a whole (its replies lost) leaves nothing to re-list: the swaps
//! that did run erased members this call never saw. See `docs/consistency.md`.
//!
//! [`Durability::Replicas`]: crate::cache::durability::Durability::Replicas

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan::{self, Listed, Tags};
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
    /// Bug A6: a delete round that fails returns at once, without listing again the members
    /// it did not delete: the swap erased them from the tag, so no later invalidation finds
    /// them, and their bytes leak until their TTL.
    EraseBeforeEarlyReturn,
}

/// A member found by the swap of `tag`: deleted if stale, else listed again.
#[derive(Clone, Debug)]
struct Doomed {
    tag: Bytes,
    /// The tag's token after the swap.
    current: Bytes,
    listed: Listed,
}

#[derive(Debug)]
enum Phase {
    Swap { waits: Vec<Option<u32>>, tokens: Vec<Bytes> },
    Delete { doomed: Vec<Doomed> },
    Count { deleted: Vec<Option<Entry>>, others: Vec<Bytes> },
    Leave { removed: u64 },
    Relist { sizes: Vec<u64> },
    Over,
}

fn missing() -> RequestError {
    RequestError::Internal { what: "a round ended without a result for every command" }
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
    /// The first failure after the swap: the call fails with it once the clean-up is over.
    failed: Option<CacheError>,
    /// The members whose delete did not complete, by tag, to list again.
    unlisted: BTreeMap<Bytes, Vec<Listed>>,
    /// The re-listing round's own budget.
    cleanup: Option<Deadline>,
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
            failed: None,
            unlisted: BTreeMap::new(),
            cleanup: None,
        })
    }

    /// Keeps the first failure.
    fn fail(&mut self, e: CacheError) {
        self.failed.get_or_insert(e);
    }

    /// A member to list again in its tag.
    fn unlist(&mut self, d: Doomed) {
        self.unlisted.entry(d.tag).or_default().push(d.listed);
    }

    fn swap_round(&mut self, cx: &mut Ctx<'_>) -> Result<Next<u64>, CacheError> {
        let plans = Tags::new(&self.scope.ns);
        let mut cmds = Vec::new();
        let mut waits = Vec::new();
        let mut tokens = Vec::new();
        for t in &self.tags {
            let key = plans.key(t)?;
            let at = cmds.len();
            let new = token(cx.entropy);
            let swap = Command::script(plans.invalidate(t, new.clone(), true)?, &scripts::TAG_INVALIDATE);
            tokens.push(new);
            let wait = self.scope.durability.wait_for(key.slot(), cx.topology);
            cmds.push(if wait.is_some() { swap.blocking() } else { swap });
            if let Some((n, ms)) = wait {
                let w = plan::wait_after(&key, n, ms);
                cmds.push(if self.variant == Variant::WaitBeforeRetry { w } else { w.after(at) }.into());
            }
            waits.push(wait.map(|(n, _)| n));
        }
        self.phase = Phase::Swap { waits, tokens };
        Ok(Next::Round(Exchange::new(cmds)))
    }

    /// Reads the swaps (a failed one is kept as the call's error: the others erased their
    /// members, which must still be deleted or listed again) and sends the deletes.
    fn after_swap(&mut self, waits: &[Option<u32>], tokens: Vec<Bytes>, results: Results) -> Next<u64> {
        let mut replies = results.into_iter();
        let mut doomed = Vec::new();
        let tags = self.tags.clone();
        for ((tag, want), current) in tags.into_iter().zip(waits).zip(tokens) {
            let swap = replies.next().unwrap_or(Err(missing()));
            match swap.map_err(CacheError::Request).and_then(plan::read_invalidated) {
                Ok(Some((old, listed))) => {
                    doomed.extend(listed.into_iter().map(|listed| Doomed {
                        tag: tag.clone(),
                        current: current.clone(),
                        listed,
                    }));
                    self.before.insert(tag, Some(old));
                }
                Ok(None) => {
                    self.before.insert(tag, None);
                }
                Err(e) => self.fail(e),
            }
            if let Some(want) = want {
                let want = i64::from(*want);
                let acked = match replies.next().unwrap_or(Err(missing())) {
                    Ok(v) => plan::read_int("WAIT", &v),
                    // The connection that ran the swap is gone before the WAIT could run there:
                    // nothing says a replica has it.
                    Err(RequestError::ConnectionLost { .. } | RequestError::Skipped { .. }) => Ok(0),
                    Err(e) => Err(CacheError::Request(e)),
                };
                match acked {
                    Ok(acked) if acked < want => {
                        self.short.get_or_insert((acked, want));
                    }
                    Ok(_) => {}
                    Err(e) => self.fail(e),
                }
            }
        }
        let storage = self.scope.storage;
        let cmds =
            doomed.iter().map(|d| storage.delete_if_stale(&d.listed.member, &d.tag, &d.current)).collect();
        self.phase = Phase::Delete { doomed };
        Next::Round(Exchange::new(cmds))
    }

    /// Reads the deletes: a member whose delete did not complete is kept to list again.
    fn after_delete(
        &mut self,
        cx: &mut Ctx<'_>,
        doomed: Vec<Doomed>,
        results: Results,
    ) -> Result<Next<u64>, CacheError> {
        let scope = self.scope.clone();
        let plans = Tags::new(&scope.ns);
        let mut deleted = Vec::new();
        let mut results = results.into_iter();
        for d in doomed {
            let r = results.next().unwrap_or(Err(missing()));
            match r.map_err(CacheError::Request).and_then(plan::read_deleted_raw) {
                Ok(Some(header)) => {
                    let entry = scope.storage.decode(&header).ok();
                    // The deleted entry leaves its other tags too (the invalidated ones are gone).
                    for t in entry.iter().flat_map(|e| &e.tags).filter(|t| !self.tags.contains(&t.tag)) {
                        if let Ok(cmd) = plans.remove_member(&t.tag, &d.listed.member, true) {
                            self.leave.push(Command::script(cmd, &scripts::TAG_LEAVE));
                        }
                    }
                    deleted.push(entry);
                }
                Ok(None) => {}
                Err(e) if self.variant == Variant::EraseBeforeEarlyReturn => return Err(e),
                Err(e) => {
                    self.fail(e);
                    self.unlist(d);
                }
            }
        }
        if deleted.is_empty() {
            return self.relist_or_finish(cx, 0);
        }
        let others: BTreeSet<Bytes> = deleted
            .iter()
            .flatten()
            .flat_map(|e| e.tags.iter().map(|t| &t.tag))
            .filter(|t| !self.before.contains_key(*t))
            .cloned()
            .collect();
        let (others, cmds): (Vec<Bytes>, Vec<Command>) = others
            .into_iter()
            .filter_map(|t| plans.read_token(&t).ok().map(|c| (t, Command::from(c))))
            .unzip();
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

    fn after_leave(
        &mut self,
        cx: &mut Ctx<'_>,
        removed: u64,
        results: Results,
    ) -> Result<Next<u64>, CacheError> {
        for r in results {
            if let Err(e) = r.map_err(CacheError::Request).and_then(|v| plan::read_int("tag_leave", &v)) {
                self.fail(e);
            }
        }
        self.relist_or_finish(cx, removed)
    }

    /// Round 5 when a delete did not complete, else the outcome.
    fn relist_or_finish(&mut self, cx: &mut Ctx<'_>, removed: u64) -> Result<Next<u64>, CacheError> {
        if self.unlisted.is_empty() {
            return self.finish(removed);
        }
        let plans = Tags::new(&self.scope.ns);
        let mut cmds = Vec::new();
        let mut sizes = Vec::new();
        for (tag, members) in std::mem::take(&mut self.unlisted) {
            // The tag's key was built for the swap, so it builds again.
            if let Ok(Some(cmd)) = plans.relist(&tag, &members, token(cx.entropy), true) {
                cmds.push(Command::script(cmd, &scripts::TAG_RELIST));
                sizes.push(members.len() as u64);
            }
        }
        self.cleanup = Some(self.deadline.renewed(cx.now));
        self.phase = Phase::Relist { sizes };
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn after_relist(&mut self, sizes: &[u64], results: Results) -> Result<Next<u64>, CacheError> {
        let mut lost = 0;
        let mut relist = None;
        let mut results = results.into_iter();
        for n in sizes {
            let r = results.next().unwrap_or(Err(missing()));
            if let Err(e) = r.map_err(CacheError::Request).and_then(|v| plan::read_int("tag_relist", &v)) {
                lost += n;
                relist.get_or_insert(e);
            }
        }
        match relist {
            Some(e) => Err(self.unlisted_error(lost, e)),
            None => self.finish(0),
        }
    }

    fn unlisted_error(&mut self, unlisted: u64, relist: CacheError) -> CacheError {
        let cause = self.failed.take().unwrap_or_else(|| CacheError::UnexpectedReply {
            command: "invalidate_by_tags",
            got: "members to list again without a failed delete".into(),
        });
        CacheError::CleanupUnlisted { unlisted, cause: Box::new(cause), relist: Box::new(relist) }
    }

    /// The outcome: the first failure, else `NotDurable` if a shard was short of
    /// acknowledgements, else the count.
    fn finish(&mut self, removed: u64) -> Result<Next<u64>, CacheError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
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
        self.cleanup.as_ref().unwrap_or(&self.deadline)
    }

    fn first(&mut self, cx: &mut Ctx<'_>) -> Result<Next<u64>, CacheError> {
        if self.tags.is_empty() {
            return Ok(Next::Done(0));
        }
        self.swap_round(cx)
    }

    fn after_round(&mut self, cx: &mut Ctx<'_>, results: Results) -> Result<Next<u64>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Swap { waits, tokens } => Ok(self.after_swap(&waits, tokens, results)),
            Phase::Delete { doomed } => self.after_delete(cx, doomed, results),
            Phase::Count { deleted, others } => Ok(self.after_count(&deleted, others, results)),
            Phase::Leave { removed } => self.after_leave(cx, removed, results),
            Phase::Relist { sizes } => self.after_relist(&sizes, results),
            Phase::Over => Err(CacheError::UnexpectedReply {
                command: "invalidate_by_tags",
                got: "a round too many".into(),
            }),
        }
    }

    /// A round that failed as a whole. The swap round: nothing is known of what it did, so the
    /// call fails. A later round: the failure is kept and the clean-up goes on (a failed delete
    /// round lists every member again: which deletes ran is unknown, and listing a deleted
    /// member again is harmless: the next invalidation finds it absent).
    fn round_failed(&mut self, cx: &mut Ctx<'_>, error: CacheError) -> Result<Next<u64>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Swap { .. } | Phase::Over => Err(error),
            Phase::Delete { .. } if self.variant == Variant::EraseBeforeEarlyReturn => Err(error),
            Phase::Delete { doomed } => {
                self.fail(error);
                for d in doomed {
                    self.unlist(d);
                }
                self.leave.clear();
                self.relist_or_finish(cx, 0)
            }
            Phase::Count { .. } | Phase::Leave { .. } => {
                self.fail(error);
                self.leave.clear();
                self.relist_or_finish(cx, 0)
            }
            Phase::Relist { sizes } => Err(self.unlisted_error(sizes.iter().sum(), error)),
        }
    }
}

#[cfg(test)]
mod tests;
