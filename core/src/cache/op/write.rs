//! Writing entries (`set`, `set_with_ttl`, `bulk_set`, loaders' stores): round 1 registers
//! every tag membership and hands back each tag's token (`TAG_WRITE`); round 2 stores the
//! values with those tokens in their envelopes. One round when nothing is tagged.
//!
//! A loaded value is stored under its **lease** ([`Write::lease`]): the tokens its tags had
//! before its loader was called. Those tokens go into its envelope, never the ones round 1
//! hands back, so a value loaded before an invalidation of one of its tags is stale by
//! construction, however the store races the invalidation; and when round 1 already shows a
//! token other than the lease's, the value is not stored at all ([`Stored::superseded`]).

use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::{Entry, TagToken};
use crate::cache::error::CacheError;
use crate::cache::plan::{self, Tags};
use crate::cache::scripts;
use crate::keys::EncodedKey;

use super::deadline::Deadline;
use super::exchange::{Command, Exchange, Results};
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::{Scope, TOKEN_LEN, token};

/// One entry to write.
#[derive(Clone, Debug)]
pub struct Write {
    /// Its key.
    pub key: EncodedKey,
    /// Its envelope, without tags (their tokens are filled in by the write).
    pub entry: Entry,
    /// Its TTL in ms (`None`: no expiry).
    pub ttl_ms: Option<u64>,
    /// The TTL to give it instead when the key exists already (the namespace's
    /// `expire_after_update`); `None`: `ttl_ms` either way.
    pub on_update: Option<Option<u64>>,
    /// Its tags, distinct.
    pub tags: Vec<Bytes>,
    /// For a loaded value, its lease: the token each of `tags` had (in the same order) before
    /// the loader was called. The envelope carries these, not the current tokens, and the value
    /// is not stored if a tag's token is no longer its lease's (an invalidation ran since: the
    /// value may predate it). `None`: a value the caller holds now, stored with the current
    /// tokens.
    pub lease: Option<Vec<Bytes>>,
}

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Loaded values not stored because an invalidation of one of their tags ran after their
    /// lease was read (their loader may have read the data before it changed).
    pub superseded: usize,
}

/// The longer of a TTL and an update's TTL (`None`: no expiry, the longest).
#[must_use]
pub fn longest(ttl_ms: Option<u64>, on_update: Option<Option<u64>>) -> Option<u64> {
    match on_update {
        None => ttl_ms,
        Some(u) => ttl_ms.zip(u).map(|(a, b)| a.max(b)),
    }
}

#[derive(Debug)]
enum Phase {
    Tags,
    Store,
    Over,
}

/// The write operation.
#[derive(Debug)]
pub struct WriteEntries {
    scope: Arc<Scope>,
    writes: Vec<Write>,
    deadline: Deadline,
    phase: Phase,
    superseded: usize,
}

/// The machine of [`WriteEntries`].
pub type WriteMachine = RoundMachine<WriteEntries>;

impl WriteEntries {
    /// Writes `writes` into `scope`'s namespace.
    ///
    /// # Errors
    /// An entry that will be too large once its tags' tokens are in it, an invalid tag, or a
    /// lease without one token per tag: checked before anything is sent.
    pub fn machine(
        scope: Arc<Scope>,
        writes: Vec<Write>,
        deadline: Deadline,
    ) -> Result<WriteMachine, CacheError> {
        // With the tags' tokens (of the length every writer draws) the envelope may cross the
        // size limit although the payload did not.
        let placeholder = Bytes::from_static(&[0u8; TOKEN_LEN]);
        let plans = Tags::new(&scope.ns);
        for w in &writes {
            let mut probe = w.entry.clone();
            probe.tags =
                w.tags.iter().map(|t| TagToken { tag: t.clone(), token: placeholder.clone() }).collect();
            let size = probe.encoded_len();
            if size > scope.max_value_size {
                return Err(CacheError::TooLarge { size, limit: scope.max_value_size });
            }
            for t in &w.tags {
                plans.key(t)?;
            }
            if w.lease.as_ref().is_some_and(|l| l.len() != w.tags.len()) {
                return Err(CacheError::UnexpectedReply {
                    command: "write",
                    got: format!(
                        "a lease of {:?} tokens for {} tags",
                        w.lease.as_ref().map(Vec::len),
                        w.tags.len()
                    ),
                });
            }
        }
        Ok(RoundMachine::new(Self { scope, writes, deadline, phase: Phase::Over, superseded: 0 }))
    }

    fn store_round(&mut self) -> Result<Next<Stored>, CacheError> {
        if self.writes.is_empty() {
            return Ok(Next::Done(Stored { superseded: self.superseded }));
        }
        let storage = self.scope.storage;
        let mut cmds = Vec::with_capacity(self.writes.len());
        for w in &self.writes {
            let stored = storage.encode(&w.entry, self.scope.max_value_size)?;
            cmds.push(storage.store(&w.key, stored, w.ttl_ms, w.on_update));
        }
        self.phase = Phase::Store;
        Ok(Next::Round(Exchange::new(cmds)))
    }
}

impl Rounds for WriteEntries {
    type Output = Stored;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, cx: &mut Ctx<'_>) -> Result<Next<Stored>, CacheError> {
        if self.writes.iter().all(|w| w.tags.is_empty()) {
            return self.store_round();
        }
        let plans = Tags::new(&self.scope.ns);
        let mut cmds = Vec::new();
        for w in &self.writes {
            for t in &w.tags {
                // The membership lives as long as the entry may: the longer of its two TTLs.
                let cmd = plans.write(t, &w.key, longest(w.ttl_ms, w.on_update), token(cx.entropy), true)?;
                cmds.push(Command::script(cmd, &scripts::TAG_WRITE));
            }
        }
        self.phase = Phase::Tags;
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn after_round(&mut self, _cx: &mut Ctx<'_>, results: Results) -> Result<Next<Stored>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Tags => {
                let mut tokens = results.into_iter();
                let mut kept = Vec::with_capacity(self.writes.len());
                for mut w in std::mem::take(&mut self.writes) {
                    let mut held = true;
                    for (i, t) in w.tags.iter().enumerate() {
                        let r = tokens.next().ok_or(CacheError::UnexpectedReply {
                            command: "tag_write",
                            got: "no reply".into(),
                        })?;
                        let current = plan::read_token_written(r.map_err(CacheError::Request)?)?;
                        // A loaded value carries its lease's token, whatever the current one is.
                        let token = match w.lease.as_ref().and_then(|l| l.get(i)) {
                            Some(leased) => {
                                held &= *leased == current;
                                leased.clone()
                            }
                            None => current,
                        };
                        w.entry.tags.push(TagToken { tag: t.clone(), token });
                    }
                    if held {
                        kept.push(w);
                    } else {
                        self.superseded += 1;
                    }
                }
                self.writes = kept;
                self.store_round()
            }
            Phase::Store => {
                // Every reply is checked; the first failure is reported (others may have landed).
                let mut first_error = None;
                for r in results {
                    if let Err(e) = r.map_err(CacheError::Request).and_then(|v| plan::read_ok("SET", &v)) {
                        first_error.get_or_insert(e);
                    }
                }
                match first_error {
                    None => Ok(Next::Done(Stored { superseded: self.superseded })),
                    Some(e) => Err(self.scope.storage.error(&self.scope.name, e)),
                }
            }
            Phase::Over => {
                Err(CacheError::UnexpectedReply { command: "write", got: "a round too many".into() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::time::Instant;

    use super::*;
    use crate::cache::op::fresh::tests::scope;
    use crate::cache::op::testing::{Hand, bulk, pipeline, words};
    use crate::resp::Value;

    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn machine(on_update: Option<Option<u64>>, tags: &[&'static [u8]]) -> Hand<WriteMachine> {
        let key = scope().ns.encode_key(&crate::keys::StringKeys, &"k".to_owned()).expect("valid");
        let tags = tags.iter().map(|t| Bytes::from_static(t)).collect();
        let w = Write {
            key,
            entry: Entry::plain(Bytes::from_static(b"v")),
            ttl_ms: Some(1000),
            on_update,
            tags,
            lease: None,
        };
        let d = Deadline::new(Instant::now(), "set", Duration::from_secs(1));
        Hand::new(WriteEntries::machine(scope(), vec![w], d).expect("fits"))
    }

    /// Without an update TTL a write is a plain `SET PX`; with one, the `SET_BY_AGE` script
    /// gets both TTLs, and a tag membership lives as long as the longer.
    #[test]
    fn an_update_ttl_is_chosen_on_the_server() {
        let mut m = machine(None, &[]);
        assert_eq!(words(&pipeline(&m.start())[0]), ["SET", "ns:k", "v", "PX", "1000"]);
        let mut m = machine(Some(Some(60_000)), &[b"t"]);
        let tag = pipeline(&m.start());
        assert_eq!(words(&tag[0])[3..6], ["tag:{ns:t}", "ns:k", "60000"]);
        let store = pipeline(&m.reply(vec![Ok(bulk(b"tok"))]));
        let w = words(&store[0]);
        assert_eq!(w[1], scripts::SET_BY_AGE.sha1());
        assert_eq!((w[3].as_str(), &w[5..]), ("ns:k", &["1000".to_owned(), "60000".to_owned()][..]));
        let step = m.reply(vec![Ok(Value::Simple(Bytes::from_static(b"OK")))]);
        assert!(matches!(step, crate::cache::op::Step::Done(Ok(Stored { superseded: 0 }))), "{step:?}");
        // An update without expiry: an empty TTL, and members that never expire.
        let mut m = machine(Some(None), &[b"t"]);
        assert_eq!(words(&pipeline(&m.start())[0])[5], "", "the tag write's TTL");
        let store = pipeline(&m.reply(vec![Ok(bulk(b"tok"))]));
        assert_eq!(words(&store[0])[6], "", "the update's TTL");
        assert_eq!(longest(Some(5), Some(Some(3))), Some(5));
        assert_eq!(longest(Some(5), None), Some(5));
        assert_eq!(longest(None, Some(Some(3))), None);
    }
}
