//! Reading entries and telling stale ones apart: round 1 reads every key (one command per
//! key, never `MGET`, which would hide a key of another type as a miss); round 2, only when
//! something read is tagged, reads the current token of every distinct tag on its primary.
//!
//! A minimal read for the loaders and `compute`; the read family's own machines may replace
//! it.

use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan;
use crate::keys::EncodedKey;

use super::deadline::Deadline;
use super::exchange::{Exchange, Results};
use super::fresh::{TokenCheck, is_fresh};
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::Scope;

/// How a read goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadMode {
    /// Read the primary (a read-modify-write must see the latest write).
    pub primary: bool,
    /// Check each stored entry against the size limit, and report a document namespace on a
    /// cluster without the JSON module as such (the reads callers see).
    pub checked: bool,
    /// Extend what is found when the namespace has sliding expiry
    /// ([`Scope::expire_after_read_ms`]): the read of a caller's `get`.
    pub touch: bool,
}

impl ReadMode {
    /// A read callers see: replicas allowed, checked.
    pub const SERVED: Self = Self { primary: false, checked: true, touch: false };
    /// The read of a caller's `get` or `bulk_get_with`: [`ReadMode::SERVED`] that extends what
    /// it finds in a namespace with sliding expiry.
    pub const ACCESSED: Self = Self { primary: false, checked: true, touch: true };
    /// `compute`'s read: on the primary, unchecked.
    pub const PRIMARY: Self = Self { primary: true, checked: false, touch: false };
}

/// What was found under one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The stored bytes (`None`: no such key).
    pub stored: Option<Bytes>,
    /// The entry they hold, stale or not.
    pub entry: Option<Entry>,
    /// Whether the entry is fresh: every tag still has the token it carries.
    pub fresh: bool,
}

impl Found {
    /// The entry, if it is fresh.
    #[must_use]
    pub fn fresh_entry(&self) -> Option<&Entry> {
        self.entry.as_ref().filter(|_| self.fresh)
    }

    /// The entry, if it is fresh.
    #[must_use]
    pub fn into_fresh(self) -> Option<Entry> {
        self.entry.filter(|_| self.fresh)
    }

    /// Whether an entry was there but a tag invalidation made it a miss.
    #[must_use]
    pub const fn is_stale(&self) -> bool {
        self.entry.is_some() && !self.fresh
    }
}

/// How many of `found` are stale.
#[must_use]
pub fn stale_count(found: &[Found]) -> u64 {
    found.iter().filter(|f| f.is_stale()).count() as u64
}

#[derive(Debug)]
enum Phase {
    Stored,
    Tokens { check: TokenCheck },
    Over,
}

/// Reading entries, fresh or not.
#[derive(Debug)]
pub struct ReadFresh {
    scope: Arc<Scope>,
    keys: Vec<EncodedKey>,
    mode: ReadMode,
    deadline: Deadline,
    found: Vec<Found>,
    phase: Phase,
}

/// The machine of [`ReadFresh`]: its outcome is one [`Found`] per key, in order.
pub type ReadFreshMachine = RoundMachine<ReadFresh>;

impl ReadFresh {
    /// Reads `keys` of `scope`'s namespace.
    #[must_use]
    pub fn machine(
        scope: Arc<Scope>,
        keys: Vec<EncodedKey>,
        mode: ReadMode,
        deadline: Deadline,
    ) -> ReadFreshMachine {
        RoundMachine::new(Self { scope, keys, mode, deadline, found: Vec::new(), phase: Phase::Over })
    }

    fn read_stored(
        &self,
        r: Result<crate::resp::Value, crate::client::RequestError>,
    ) -> Result<Option<Bytes>, CacheError> {
        let stored = r.map_err(CacheError::Request).and_then(plan::read_stored);
        if !self.mode.checked {
            return stored;
        }
        let stored = stored.map_err(|e| self.scope.storage.error(&self.scope.name, e))?;
        if let Some(s) = &stored {
            if s.len() > self.scope.max_value_size {
                return Err(CacheError::TooLarge { size: s.len(), limit: self.scope.max_value_size });
            }
        }
        Ok(stored)
    }

    fn after_stored(&mut self, results: Results) -> Result<Next<Vec<Found>>, CacheError> {
        let mut found = Vec::with_capacity(results.len());
        for r in results {
            let stored = self.read_stored(r)?;
            let entry = stored.as_ref().map(|s| self.scope.storage.decode(s)).transpose()?;
            let fresh = entry.as_ref().is_some_and(|e| e.tags.is_empty());
            found.push(Found { stored, entry, fresh });
        }
        let pairs = self.keys.iter().zip(&found).filter_map(|(k, f)| Some((k.bytes(), f.entry.as_ref()?)));
        let check = TokenCheck::for_read(pairs, self.scope.touch_ms(self.mode.touch));
        self.found = found;
        if check.is_empty() {
            return Ok(Next::Done(std::mem::take(&mut self.found)));
        }
        let round = check.round(&self.scope.ns)?;
        self.phase = Phase::Tokens { check };
        Ok(Next::Round(round))
    }

    fn after_tokens(&mut self, check: &TokenCheck, results: Results) -> Result<Next<Vec<Found>>, CacheError> {
        let current = check.tokens(results)?;
        let mut found = std::mem::take(&mut self.found);
        for f in &mut found {
            f.fresh = f.entry.as_ref().is_some_and(|e| is_fresh(e, &current));
        }
        Ok(Next::Done(found))
    }
}

impl Rounds for ReadFresh {
    type Output = Vec<Found>;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, _cx: &mut Ctx<'_>) -> Result<Next<Vec<Found>>, CacheError> {
        let (scope, mode) = (&self.scope, self.mode);
        let cmds = self.keys.iter().map(|k| scope.read(k, mode.primary, mode.touch)).collect();
        self.phase = Phase::Stored;
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn after_round(&mut self, _cx: &mut Ctx<'_>, results: Results) -> Result<Next<Vec<Found>>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Stored => self.after_stored(results),
            Phase::Tokens { check } => self.after_tokens(&check, results),
            Phase::Over => {
                Err(CacheError::UnexpectedReply { command: "read", got: "a round too many".into() })
            }
        }
    }
}
