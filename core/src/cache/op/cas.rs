//! A compare-and-set of one entry: it applies only if the key still holds the bytes read
//! (compared by SHA-1 on the server, the storage's `CAS` script).
//!
//! A value that keeps tags registers them first (`TAG_WRITE`, which hands back each tag's
//! current token), as every write does, and then stores the envelope with those tokens: once
//! the compare-and-set has answered, nothing is left that could fail. When the entry read was
//! fresh, each token must still be the one it carried: a different one means a tag of the
//! entry was invalidated since the read, and the write is a conflict (the caller reads again).

use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::{Entry, TagToken};
use crate::cache::error::CacheError;
use crate::cache::plan::{self, Tags};
use crate::cache::scripts::{self, sha1_hex};
use crate::keys::EncodedKey;

use super::deadline::Deadline;
use super::exchange::{Command, Exchange, Results};
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::{Scope, TOKEN_LEN, token};

/// What to do if the key still holds what was read.
#[derive(Clone, Debug)]
pub enum Change {
    /// Store this entry (its tags are filled in by the write).
    Set {
        /// The envelope, without tags.
        entry: Entry,
        /// Its TTL in ms (`None`: no expiry).
        ttl_ms: Option<u64>,
        /// The tags it keeps, distinct.
        tags: Vec<Bytes>,
        /// The tokens the entry read carried, when it was fresh: the tags' tokens must not
        /// have changed since.
        expect: Option<Vec<TagToken>>,
    },
    /// Delete the key.
    Delete,
}

#[derive(Debug)]
enum Phase {
    Tags,
    Swap,
    /// Only in the [`Cas::registering_after`] test variant: the tags after the swap applied.
    TagsAfter,
    Over,
}

/// The compare-and-set.
#[derive(Debug)]
pub struct Cas {
    scope: Arc<Scope>,
    key: EncodedKey,
    expected: Bytes,
    change: Change,
    deadline: Deadline,
    phase: Phase,
    register_after: bool,
}

/// The machine of [`Cas`]: its outcome says whether it applied (`false`: a conflict).
pub type CasMachine = RoundMachine<Cas>;

impl Cas {
    /// Applies `change` to `key` if it still holds `read` (`None`: if it is still absent).
    ///
    /// # Errors
    /// An entry too large once its tags' tokens are in it: checked before anything is sent.
    pub fn machine(
        scope: Arc<Scope>,
        key: EncodedKey,
        read: Option<&Bytes>,
        change: Change,
        deadline: Deadline,
    ) -> Result<CasMachine, CacheError> {
        Self::new(scope, key, read, change, deadline).map(RoundMachine::new)
    }

    fn new(
        scope: Arc<Scope>,
        key: EncodedKey,
        read: Option<&Bytes>,
        change: Change,
        deadline: Deadline,
    ) -> Result<Self, CacheError> {
        if let Change::Set { entry, tags, .. } = &change {
            let placeholder = Bytes::from_static(&[0u8; TOKEN_LEN]);
            let mut probe = entry.clone();
            probe.tags =
                tags.iter().map(|t| TagToken { tag: t.clone(), token: placeholder.clone() }).collect();
            scope.storage.encode(&probe, scope.max_value_size)?;
        }
        let expected = read.map_or_else(Bytes::new, |s| Bytes::from(sha1_hex(s)));
        Ok(Self { scope, key, expected, change, deadline, phase: Phase::Over, register_after: false })
    }

    /// The old bug (test-only): a fresh entry's value is written first, with the tokens the
    /// entry carried, and its tags registered only after the swap applied, so a failed
    /// registration fails a call whose write happened (a caller retrying applies its function
    /// twice). A stale entry's write goes as documented.
    #[doc(hidden)]
    pub fn registering_after(
        scope: Arc<Scope>,
        key: EncodedKey,
        read: Option<&Bytes>,
        change: Change,
        deadline: Deadline,
    ) -> Result<CasMachine, CacheError> {
        let mut cas = Self::new(scope, key, read, change, deadline)?;
        if let Change::Set { entry, expect: Some(carried), .. } = &mut cas.change {
            entry.tags.clone_from(carried);
            cas.register_after = true;
        }
        Ok(RoundMachine::new(cas))
    }

    fn tags_round(&mut self, cx: &mut Ctx<'_>, after: bool) -> Result<Next<bool>, CacheError> {
        let Change::Set { tags, ttl_ms, .. } = &self.change else { return self.swap_round() };
        let plans = Tags::new(&self.scope.ns);
        let mut cmds = Vec::with_capacity(tags.len());
        for t in tags {
            let cmd = plans.write(t, &self.key, *ttl_ms, token(cx.entropy), true)?;
            cmds.push(Command::script(cmd, &scripts::TAG_WRITE));
        }
        self.phase = if after { Phase::TagsAfter } else { Phase::Tags };
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn swap_round(&mut self) -> Result<Next<bool>, CacheError> {
        let args = match &self.change {
            Change::Delete => {
                vec![self.expected.clone(), Bytes::from_static(b"del"), Bytes::new(), Bytes::new()]
            }
            Change::Set { entry, ttl_ms, .. } => {
                let stored = self.scope.storage.encode(entry, self.scope.max_value_size)?;
                let ttl = ttl_ms.map_or_else(Bytes::new, |ms| Bytes::from(ms.to_string()));
                vec![self.expected.clone(), Bytes::from_static(b"set"), stored, ttl]
            }
        };
        let script = self.scope.storage.cas_script();
        let cmd = plan::script(script, &self.key, args, true, false);
        self.phase = Phase::Swap;
        Ok(Next::Round(Exchange::new(vec![Command::script(cmd, script)])))
    }

    /// Takes the tags' tokens; `false` when one is not the token the entry read carried.
    fn take_tokens(&mut self, results: Results) -> Result<bool, CacheError> {
        let Change::Set { entry, tags, expect, .. } = &mut self.change else { return Ok(true) };
        let mut replies = results.into_iter();
        for t in tags.iter() {
            let r = replies
                .next()
                .ok_or(CacheError::UnexpectedReply { command: "tag_write", got: "no reply".into() })?;
            let token = plan::read_token_written(r.map_err(CacheError::Request)?)?;
            let carried = expect.as_ref().map(|e| e.iter().any(|c| c.tag == *t && c.token == token));
            if carried == Some(false) {
                return Ok(false);
            }
            entry.tags.push(TagToken { tag: t.clone(), token });
        }
        Ok(true)
    }
}

impl Rounds for Cas {
    type Output = bool;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, cx: &mut Ctx<'_>) -> Result<Next<bool>, CacheError> {
        match &self.change {
            Change::Set { tags, .. } if !tags.is_empty() && !self.register_after => {
                self.tags_round(cx, false)
            }
            _ => self.swap_round(),
        }
    }

    fn after_round(&mut self, cx: &mut Ctx<'_>, results: Results) -> Result<Next<bool>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Tags => {
                if self.take_tokens(results)? {
                    self.swap_round()
                } else {
                    Ok(Next::Done(false))
                }
            }
            Phase::Swap => {
                let r = results
                    .into_iter()
                    .next()
                    .ok_or(CacheError::UnexpectedReply { command: "cas", got: "no reply".into() })?;
                let applied = plan::read_int("cas", &r.map_err(CacheError::Request)?)? == 1;
                if applied && self.register_after {
                    return self.tags_round(cx, true);
                }
                Ok(Next::Done(applied))
            }
            Phase::TagsAfter => {
                for r in results {
                    plan::read_token_written(r.map_err(CacheError::Request)?)?;
                }
                Ok(Next::Done(true))
            }
            Phase::Over => {
                Err(CacheError::UnexpectedReply { command: "cas", got: "a round too many".into() })
            }
        }
    }
}
