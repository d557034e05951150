//! The tag-token check every read of tagged entries makes: one pipeline reading the current
//! token of each distinct tag the entries name (on the primary), after which an entry is fresh
//! only if every tag it carries still has the token it was written with. Untagged entries cost
//! nothing more. See `docs/consistency.md`.
//!
//! [`TokenCheck`] is the round that other read machines embed; [`CheckFresh`] is the check
//! alone, for callers that already hold stored bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan::{self, Tags};
use crate::client::RequestError;
use crate::keys::Namespace;

use super::deadline::Deadline;
use super::exchange::{Command, Exchange, Results};
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::Scope;

/// Each checked tag's current token (`None`: the tag has no token).
pub type Tokens = BTreeMap<Bytes, Option<Bytes>>;

/// The distinct tags of some entries, sorted, and the round that reads their tokens.
///
/// A read that gave its entries more life (sliding expiry, [`Scope::touch_ms`]) renews their
/// memberships in the same round ([`TokenCheck::for_read`]): each tag's token is then read by
/// the `TAG_TOUCH` script, which also scores the entries' data keys by their new expiry, so an
/// entry that reads keep alive stays listed in its tags and the next invalidation finds it.
#[derive(Clone, Debug, Default)]
pub struct TokenCheck {
    tags: Vec<Bytes>,
    /// The TTL given and, per tag (in `tags`' order), the data keys to renew.
    touch: Option<(u64, Vec<Vec<Bytes>>)>,
}

impl TokenCheck {
    /// The check for these entries.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let tags: BTreeSet<Bytes> =
            entries.into_iter().flat_map(|e| e.tags.iter().map(|t| t.tag.clone())).collect();
        Self { tags: tags.into_iter().collect(), touch: None }
    }

    /// The check for entries a read found under these data keys; with `touch_ms` (the read
    /// extended them to that TTL), one that also renews their memberships.
    pub fn for_read<'a>(
        found: impl IntoIterator<Item = (&'a Bytes, &'a Entry)>,
        touch_ms: Option<u64>,
    ) -> Self {
        let Some(ttl_ms) = touch_ms else { return Self::of(found.into_iter().map(|(_, e)| e)) };
        let mut members: BTreeMap<Bytes, Vec<Bytes>> = BTreeMap::new();
        for (key, e) in found {
            for t in &e.tags {
                let m = members.entry(t.tag.clone()).or_default();
                if !m.contains(key) {
                    m.push(key.clone());
                }
            }
        }
        let (tags, members) = members.into_iter().unzip();
        Self { tags, touch: Some((ttl_ms, members)) }
    }

    /// Whether there is nothing to check (no entry is tagged).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The round: one token read per tag, on the tag's primary (a `TAG_TOUCH` when the read
    /// renews memberships).
    ///
    /// # Errors
    /// A tag that cannot be a key (it holds `}`).
    pub fn round(&self, ns: &Namespace) -> Result<Exchange, CacheError> {
        let plans = Tags::new(ns);
        let cmds = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| match &self.touch {
                Some((ms, members)) => plans
                    .touch(t, &members[i], *ms, true)
                    .map(|c| Command::script(c, &crate::cache::scripts::TAG_TOUCH)),
                None => plans.read_token(t).map(Command::from),
            })
            .collect::<Result<_, _>>()?;
        Ok(Exchange::new(cmds))
    }

    /// The current tokens, from the round's results.
    ///
    /// # Errors
    /// A failed token read, or a reply that is not a token: a read is never answered from an
    /// entry whose freshness is unknown.
    pub fn tokens(&self, results: Results) -> Result<Tokens, CacheError> {
        if results.len() != self.tags.len() {
            return Err(CacheError::UnexpectedReply {
                command: "ZRANGEBYSCORE",
                got: format!("{} replies for {} tags", results.len(), self.tags.len()),
            });
        }
        let mut current = Tokens::new();
        for (tag, r) in self.tags.iter().zip(results) {
            current.insert(tag.clone(), plan::read_current_token(r.map_err(CacheError::Request)?)?);
        }
        Ok(current)
    }
}

impl TokenCheck {
    /// The check of `entries` and the round that reads the tokens; `None` when no entry is
    /// tagged (every entry is fresh).
    ///
    /// # Errors
    /// A tag that cannot be a key.
    pub fn for_entries(
        ns: &Namespace,
        entries: &[Option<Entry>],
    ) -> Result<Option<(Self, Exchange)>, CacheError> {
        let check = Self::of(entries.iter().flatten());
        if check.is_empty() {
            return Ok(None);
        }
        let round = check.round(ns)?;
        Ok(Some((check, round)))
    }

    /// The fresh entries (stale ones become `None`) and how many were stale.
    ///
    /// # Errors
    /// A token read failed or had an unexpected reply.
    pub fn keep(
        &self,
        mut entries: Vec<Option<Entry>>,
        results: Results,
    ) -> Result<(Vec<Option<Entry>>, u64), CacheError> {
        let current = self.tokens(results)?;
        let stale = keep_fresh(&mut entries, &current, |e| e);
        Ok((entries, stale))
    }
}

/// Whether every tag of `entry` still has the token the entry carries (a tag with no token
/// makes every entry naming it stale).
#[must_use]
pub fn is_fresh(entry: &Entry, current: &Tokens) -> bool {
    entry.tags.iter().all(|t| current.get(&t.tag).is_some_and(|c| c.as_ref() == Some(&t.token)))
}

/// Keeps the fresh items: a stale one becomes `None`. Returns how many were stale.
pub fn keep_fresh<T>(items: &mut [Option<T>], current: &Tokens, entry: impl Fn(&T) -> &Entry) -> u64 {
    let mut stale = 0;
    for item in items {
        if item.as_ref().is_some_and(|i| !is_fresh(entry(i), current)) {
            *item = None;
            stale += 1;
        }
    }
    stale
}

/// Entries after the check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fresh {
    /// One per stored value, in order: `None` for a miss or a stale entry.
    pub entries: Vec<Option<Entry>>,
    /// How many entries were stale (for the statistics).
    pub stale: u64,
}

/// Decodes stored entries and drops the stale ones.
#[derive(Debug)]
pub struct CheckFresh {
    scope: Arc<Scope>,
    entries: Vec<Option<Entry>>,
    check: TokenCheck,
    deadline: Deadline,
}

/// The machine of [`CheckFresh`].
pub type CheckFreshMachine = RoundMachine<CheckFresh>;

impl CheckFresh {
    /// Checks these stored values (`None`: a miss) of `scope`'s namespace.
    ///
    /// # Errors
    /// A stored value that is not an entry of the namespace's storage: checked before anything
    /// is sent.
    pub fn machine(
        scope: Arc<Scope>,
        stored: Vec<Option<Bytes>>,
        deadline: Deadline,
    ) -> Result<CheckFreshMachine, CacheError> {
        let entries: Vec<Option<Entry>> = stored
            .iter()
            .map(|s| s.as_ref().map(|b| scope.storage.decode(b)).transpose())
            .collect::<Result<_, _>>()?;
        let check = TokenCheck::of(entries.iter().flatten());
        Ok(RoundMachine::new(Self { scope, entries, check, deadline }))
    }
}

impl Rounds for CheckFresh {
    type Output = Fresh;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, _cx: &mut Ctx<'_>) -> Result<Next<Fresh>, CacheError> {
        if self.check.is_empty() {
            return Ok(Next::Done(Fresh { entries: std::mem::take(&mut self.entries), stale: 0 }));
        }
        self.check.round(&self.scope.ns).map(Next::Round)
    }

    fn after_round(&mut self, _cx: &mut Ctx<'_>, results: Results) -> Result<Next<Fresh>, CacheError> {
        let current = self.check.tokens(results)?;
        let mut entries = std::mem::take(&mut self.entries);
        let stale = keep_fresh(&mut entries, &current, |e| e);
        Ok(Next::Done(Fresh { entries, stale }))
    }
}

/// The first result of a round, or an error when it is missing.
pub(crate) fn take_result(
    results: &mut std::vec::IntoIter<Result<crate::resp::Value, RequestError>>,
    command: &'static str,
) -> Result<crate::resp::Value, CacheError> {
    results
        .next()
        .ok_or(CacheError::UnexpectedReply { command, got: "no reply".into() })?
        .map_err(CacheError::Request)
}

#[cfg(test)]
pub(crate) mod tests {
    use core::time::Duration;
    use std::time::Instant;

    use super::*;
    use crate::cache::durability::Durability;
    use crate::cache::envelope::TagToken;
    use crate::cache::op::Step;
    use crate::cache::op::testing::{Hand, bulk, pipeline, server_error, words};
    use crate::cache::storage::Storage;
    use crate::resp::Value;

    pub(crate) fn scope() -> Arc<Scope> {
        Arc::new(Scope {
            ns: Namespace::new("ns").expect("valid"),
            name: "ns:".into(),
            storage: Storage::Envelope,
            max_value_size: 1 << 20,
            durability: Durability::Primary,
            expire_after_read_ms: None,
        })
    }

    fn tagged(payload: &'static [u8], tags: &[(&'static [u8], &'static [u8])]) -> Entry {
        let mut e = Entry::plain(Bytes::from_static(payload));
        e.tags = tags
            .iter()
            .map(|(t, k)| TagToken { tag: Bytes::from_static(t), token: Bytes::from_static(k) })
            .collect();
        e
    }

    fn stored(e: &Entry) -> Option<Bytes> {
        Some(e.encode().expect("encodes"))
    }

    /// A token reply: the tag's current token (behind its marker byte).
    pub(crate) fn token(t: &[u8]) -> Value {
        let mut b = vec![0u8];
        b.extend_from_slice(t);
        Value::Array(vec![bulk(&b)])
    }

    /// A request that ran out of time.
    pub(crate) const fn timed_out() -> RequestError {
        RequestError::Timeout { stage: crate::client::TimeoutStage::Reply, attempts: 1 }
    }

    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn machine(stored: Vec<Option<Bytes>>) -> Hand<CheckFreshMachine> {
        let d = Deadline::new(Instant::now(), "get", Duration::from_secs(1));
        Hand::new(CheckFresh::machine(scope(), stored, d).expect("decodes"))
    }

    #[test]
    fn untagged_entries_need_no_round() {
        let e = Entry::plain(Bytes::from_static(b"v"));
        let mut m = machine(vec![stored(&e), None]);
        match m.start() {
            Step::Done(Ok(f)) => assert_eq!(f, Fresh { entries: vec![Some(e), None], stale: 0 }),
            other => panic!("{other:?}"),
        }
    }

    /// One token read per distinct tag, sorted; a stale entry and one whose tag has no token
    /// are misses, counted as stale.
    #[test]
    fn stale_entries_and_tags_without_token_are_misses() {
        let a = tagged(b"1", &[(b"t", b"x")]);
        let b = tagged(b"2", &[(b"t", b"old")]);
        let c = tagged(b"3", &[(b"u", b"y"), (b"t", b"x")]);
        let mut m = machine(vec![stored(&a), stored(&b), stored(&c)]);
        let cmds = pipeline(&m.start());
        let tags: Vec<String> = cmds.iter().map(|c| words(c)[1].clone()).collect();
        assert_eq!(tags, ["tag:{ns:t}", "tag:{ns:u}"]);
        assert!(cmds.iter().all(|c| words(c)[0] == "ZRANGEBYSCORE"));
        match m.reply(vec![Ok(token(b"x")), Ok(Value::Array(vec![]))]) {
            Step::Done(Ok(f)) => assert_eq!(f, Fresh { entries: vec![Some(a), None, None], stale: 2 }),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_token_read_fails_the_read() {
        let a = tagged(b"1", &[(b"t", b"x")]);
        let mut m = machine(vec![stored(&a)]);
        let _ = m.start();
        let step = m.reply(vec![Err(server_error("ERR boom"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Request(_)))), "{step:?}");
    }

    #[test]
    fn a_malformed_token_reply_is_an_error() {
        let a = tagged(b"1", &[(b"t", b"x")]);
        let mut m = machine(vec![stored(&a)]);
        let _ = m.start();
        let step = m.reply(vec![Ok(Value::Int(3))]);
        assert!(matches!(step, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{step:?}");
        let mut m = machine(vec![stored(&a)]);
        let _ = m.start();
        let step = m.reply(vec![]);
        assert!(matches!(step, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{step:?}");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn undecodable_bytes_are_refused_before_sending() {
        let d = Deadline::new(Instant::now(), "get", Duration::from_secs(1));
        let r = CheckFresh::machine(scope(), vec![Some(Bytes::from_static(b"\x00junk"))], d);
        assert!(matches!(r, Err(CacheError::Corrupt { .. })), "{r:?}");
    }

    #[test]
    fn a_timed_out_token_read_is_the_operations_timeout() {
        let a = tagged(b"1", &[(b"t", b"x")]);
        let mut m = machine(vec![stored(&a)]);
        let _ = m.start();
        let step = m.reply(vec![Err(timed_out())]);
        assert!(matches!(step, Step::Done(Err(CacheError::Timeout { op: "get", .. }))), "{step:?}");
    }
}
