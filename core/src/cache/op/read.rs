//! Reads by key (`get_if_present`, `bulk_get`, `get_entry`, `probe_entry`): round 1 reads
//! every key in one pipeline (each with its `PTTL` for `get_entry`); round 2, only when
//! something found is tagged, checks its tags against their current tokens on the primary
//! ([`TokenCheck`]). A stale entry is a miss.
//!
//! In a namespace with sliding expiry ([`Scope::expire_after_read_ms`]) every read but
//! `probe_entry` is a `GETEX key PX ms`, and round 2 renews the tagged entries' memberships:
//! the same round trips.
//!
//! One read per key, not `MGET`: `MGET` reads a key holding another type as missing, which
//! would hide the error and let a loader overwrite it.

use std::sync::Arc;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan;
use crate::keys::EncodedKey;

use super::deadline::Deadline;
use super::exchange::{Exchange, Results};
use super::fresh::{TokenCheck, keep_fresh, take_result};
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::Scope;

/// An entry a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The entry.
    pub entry: Entry,
    /// Its remaining time to live in ms: `None` when it never expires, or when the read did
    /// not ask ([`ReadEntries::machine`]). A key that expired between the two reads reports 0.
    pub ttl_ms: Option<u64>,
}

/// What a read found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// One per key, in order: `None` for a miss (absent, or stale).
    pub found: Vec<Option<Found>>,
    /// How many entries were stale (for the statistics).
    pub stale: u64,
}

#[derive(Debug)]
enum Phase {
    Read,
    Check { found: Vec<Option<Found>>, check: TokenCheck },
    Over,
}

/// The read operation.
#[derive(Debug)]
pub struct ReadEntries {
    scope: Arc<Scope>,
    keys: Vec<EncodedKey>,
    ttl: bool,
    /// Extend what it finds (sliding expiry), if the namespace says so.
    touch: bool,
    deadline: Deadline,
    phase: Phase,
}

/// The machine of [`ReadEntries`].
pub type ReadMachine = RoundMachine<ReadEntries>;

/// One of the read's constructors ([`ReadEntries::machine`], [`ReadEntries::with_ttl`],
/// [`ReadEntries::probe`]).
pub type ReadHow = fn(Arc<Scope>, Vec<EncodedKey>, Deadline) -> ReadMachine;

impl ReadEntries {
    /// Reads `keys` of `scope`'s namespace (fresh entries only), extending them when the
    /// namespace has sliding expiry.
    #[must_use]
    pub fn machine(scope: Arc<Scope>, keys: Vec<EncodedKey>, deadline: Deadline) -> ReadMachine {
        RoundMachine::new(Self { scope, keys, ttl: false, touch: true, deadline, phase: Phase::Over })
    }

    /// The same, with each entry's remaining time to live (after the extension).
    #[must_use]
    pub fn with_ttl(scope: Arc<Scope>, keys: Vec<EncodedKey>, deadline: Deadline) -> ReadMachine {
        RoundMachine::new(Self { scope, keys, ttl: true, touch: true, deadline, phase: Phase::Over })
    }

    /// The read of `get_entry` (`counted`, a read like any other: [`ReadEntries::with_ttl`]) or
    /// `probe_entry` ([`ReadEntries::probe`]: it extends nothing).
    #[must_use]
    pub fn for_entry(counted: bool) -> ReadHow {
        if counted { Self::with_ttl } else { Self::probe }
    }

    /// [`ReadEntries::with_ttl`] that never extends anything (`probe_entry`).
    #[must_use]
    pub fn probe(scope: Arc<Scope>, keys: Vec<EncodedKey>, deadline: Deadline) -> ReadMachine {
        RoundMachine::new(Self { scope, keys, ttl: true, touch: false, deadline, phase: Phase::Over })
    }

    /// One key's results: the stored entry (size-checked, decoded) and its TTL.
    fn found(
        &self,
        results: &mut std::vec::IntoIter<Result<crate::resp::Value, crate::client::RequestError>>,
    ) -> Result<Option<Found>, CacheError> {
        let scope = &self.scope;
        let stored = take_result(results, "GET")
            .and_then(plan::read_stored)
            .map_err(|e| scope.storage.error(&scope.name, e))?;
        let ttl_ms = if self.ttl {
            // -1: no expiry; -2 (expired in between): gone soon, reported as zero.
            match plan::read_int("PTTL", &take_result(results, "PTTL")?)? {
                -1 => None,
                ms => Some(u64::try_from(ms).unwrap_or(0)),
            }
        } else {
            None
        };
        let Some(stored) = stored else { return Ok(None) };
        if stored.len() > scope.max_value_size {
            return Err(CacheError::TooLarge { size: stored.len(), limit: scope.max_value_size });
        }
        Ok(Some(Found { entry: scope.storage.decode(&stored)?, ttl_ms }))
    }
}

impl Rounds for ReadEntries {
    type Output = Reads;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, _cx: &mut Ctx<'_>) -> Result<Next<Reads>, CacheError> {
        let mut cmds = Vec::with_capacity(self.keys.len() * if self.ttl { 2 } else { 1 });
        for k in &self.keys {
            cmds.push(self.scope.read(k, false, self.touch));
            if self.ttl {
                // After a `GETEX` (on the primary), the TTL it set is the primary's.
                let pttl = plan::pttl(k);
                let touching = self.scope.touch_ms(self.touch).is_some();
                cmds.push(if touching { pttl.with_read_only(false) } else { pttl }.into());
            }
        }
        self.phase = Phase::Read;
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn after_round(&mut self, _cx: &mut Ctx<'_>, results: Results) -> Result<Next<Reads>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Read => {
                let want = self.keys.len() * if self.ttl { 2 } else { 1 };
                if results.len() != want {
                    return Err(CacheError::UnexpectedReply {
                        command: "GET",
                        got: format!("{} replies for {want} commands", results.len()),
                    });
                }
                let mut results = results.into_iter();
                let found =
                    (0..self.keys.len()).map(|_| self.found(&mut results)).collect::<Result<Vec<_>, _>>()?;
                let pairs =
                    self.keys.iter().zip(&found).filter_map(|(k, f)| Some((k.bytes(), &f.as_ref()?.entry)));
                let check = TokenCheck::for_read(pairs, self.scope.touch_ms(self.touch));
                if check.is_empty() {
                    return Ok(Next::Done(Reads { found, stale: 0 }));
                }
                let round = check.round(&self.scope.ns)?;
                self.phase = Phase::Check { found, check };
                Ok(Next::Round(round))
            }
            Phase::Check { mut found, check } => {
                let current = check.tokens(results)?;
                let stale = keep_fresh(&mut found, &current, |f| &f.entry);
                Ok(Next::Done(Reads { found, stale }))
            }
            Phase::Over => {
                Err(CacheError::UnexpectedReply { command: "read", got: "a round too many".into() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::cache::envelope::TagToken;
    use crate::cache::op::Step;
    use crate::cache::op::fresh::tests::{scope, timed_out, token};
    use crate::cache::op::testing::{Hand, bulk, pipeline, server_error, words};
    use crate::cache::storage::Storage;
    use crate::resp::Value;

    fn key(k: &str) -> EncodedKey {
        scope().ns.encode_key(&crate::keys::StringKeys, &k.to_owned()).expect("valid")
    }

    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn deadline() -> Deadline {
        Deadline::new(Instant::now(), "get_if_present", Duration::from_secs(1))
    }

    fn tagged(payload: &'static [u8], tok: &'static [u8]) -> Bytes {
        let mut e = Entry::plain(Bytes::from_static(payload));
        e.tags = vec![TagToken { tag: Bytes::from_static(b"t"), token: Bytes::from_static(tok) }];
        e.encode().expect("encodes")
    }

    fn done(step: Step<Reads>) -> Reads {
        match step {
            Step::Done(Ok(r)) => r,
            other => panic!("expected an outcome, got {other:?}"),
        }
    }

    #[test]
    fn an_untagged_hit_and_a_miss_take_one_round() {
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a"), key("b")], deadline()));
        let cmds = pipeline(&m.start());
        assert_eq!(words(&cmds[0]), ["GET", "ns:a"]);
        assert_eq!(words(&cmds[1]), ["GET", "ns:b"]);
        let r = done(m.reply(vec![Ok(bulk(b"v")), Ok(Value::Nil)]));
        assert_eq!(r.found[0].as_ref().map(|f| f.entry.payload.clone()), Some(Bytes::from_static(b"v")));
        assert_eq!(r.found[1], None);
    }

    /// A stale tagged entry is a miss; a fresh one a hit.
    #[test]
    fn a_stale_tagged_entry_is_a_miss() {
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a"), key("b")], deadline()));
        let _ = m.start();
        let check = pipeline(&m.reply(vec![Ok(bulk(&tagged(b"1", b"x"))), Ok(bulk(&tagged(b"2", b"y")))]));
        assert_eq!(check.len(), 1, "one token read for the one tag");
        assert_eq!(words(&check[0])[..2], ["ZRANGEBYSCORE", "tag:{ns:t}"]);
        let r = done(m.reply(vec![Ok(token(b"x"))]));
        assert!(r.found[0].is_some() && r.found[1].is_none());
        assert_eq!(r.stale, 1);
    }

    #[test]
    fn a_tag_without_token_makes_a_miss() {
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a")], deadline()));
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(&tagged(b"1", b"x")))]);
        let r = done(m.reply(vec![Ok(Value::Array(vec![]))]));
        assert_eq!((r.found, r.stale), (vec![None], 1));
    }

    #[test]
    fn with_ttl_reads_pttl_too() {
        let mut m = Hand::new(ReadEntries::with_ttl(scope(), vec![key("a"), key("b"), key("c")], deadline()));
        let cmds = pipeline(&m.start());
        assert_eq!(words(&cmds[1]), ["PTTL", "ns:a"]);
        let r = done(m.reply(vec![
            Ok(bulk(b"1")),
            Ok(Value::Int(-1)),
            Ok(bulk(b"2")),
            Ok(Value::Int(1500)),
            Ok(bulk(b"3")),
            Ok(Value::Int(-2)),
        ]));
        let ttls: Vec<Option<u64>> = r.found.iter().map(|f| f.as_ref().and_then(|f| f.ttl_ms)).collect();
        assert_eq!(ttls, [None, Some(1500), Some(0)]);
    }

    fn sliding(storage: Storage) -> Arc<Scope> {
        let mut s = (*scope()).clone();
        s.expire_after_read_ms = Some(5000);
        s.storage = storage;
        Arc::new(s)
    }

    /// Sliding expiry: the read is a `GETEX` (on the primary), the token check renews the
    /// memberships of the tagged entries found, in the same two rounds; `probe` extends nothing.
    #[test]
    fn a_sliding_read_extends_what_it_finds_and_its_memberships() {
        let mut m =
            Hand::new(ReadEntries::machine(sliding(Storage::Envelope), vec![key("a"), key("b")], deadline()));
        let cmds = pipeline(&m.start());
        assert_eq!(words(&cmds[0]), ["GETEX", "ns:a", "PX", "5000"]);
        let check = pipeline(&m.reply(vec![Ok(bulk(&tagged(b"1", b"x"))), Ok(bulk(&tagged(b"2", b"x")))]));
        assert_eq!(check.len(), 1, "one script for the one tag");
        let w = words(&check[0]);
        assert_eq!(w[0], "EVALSHA");
        assert_eq!(w[1], crate::cache::scripts::TAG_TOUCH.sha1());
        assert_eq!(w[3..], ["tag:{ns:t}", "5000", "ns:a", "ns:b"]);
        let r = done(m.reply(vec![Ok(token(b"x"))]));
        assert!(r.found.iter().all(Option::is_some), "the script's reply is a token read's");
        // An untagged hit: one round.
        let mut m = Hand::new(ReadEntries::machine(sliding(Storage::Envelope), vec![key("a")], deadline()));
        let _ = m.start();
        assert!(done(m.reply(vec![Ok(bulk(b"v"))])).found[0].is_some());
        // get_entry extends before its PTTL; probe_entry extends nothing and reads tokens plainly.
        let mut m = Hand::new(ReadEntries::with_ttl(sliding(Storage::Envelope), vec![key("a")], deadline()));
        let cmds = pipeline(&m.start());
        assert_eq!((words(&cmds[0])[0].as_str(), words(&cmds[1])[0].as_str()), ("GETEX", "PTTL"));
        assert_eq!(cmds[1].read_only_override(), Some(false), "the PTTL the GETEX set, on the primary");
        let mut m = Hand::new(ReadEntries::probe(sliding(Storage::Envelope), vec![key("a")], deadline()));
        assert_eq!(words(&pipeline(&m.start())[0]), ["GET", "ns:a"]);
        let check = pipeline(&m.reply(vec![Ok(bulk(&tagged(b"1", b"x"))), Ok(Value::Int(100))]));
        assert_eq!(words(&check[0])[0], "ZRANGEBYSCORE");
    }

    #[cfg(feature = "search")]
    #[test]
    fn sliding_expiry_of_documents_uses_the_json_get_touch_script() {
        let mut m = Hand::new(ReadEntries::machine(sliding(Storage::Document), vec![key("a")], deadline()));
        let w = words(&pipeline(&m.start())[0]);
        assert_eq!(w[1], crate::cache::search::doc::JSON_GET_TOUCH.sha1());
        assert_eq!(w[3..], ["ns:a", "5000"]);
    }

    #[test]
    fn a_server_error_is_an_error_not_a_miss() {
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a")], deadline()));
        let _ = m.start();
        let step = m.reply(vec![Err(server_error("WRONGTYPE Operation against a key"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Request(_)))), "{step:?}");
    }

    #[cfg(feature = "search")]
    #[test]
    fn a_document_namespace_without_the_json_module_says_so() {
        let mut s = (*scope()).clone();
        s.storage = Storage::Document;
        let mut m = Hand::new(ReadEntries::machine(Arc::new(s), vec![key("a")], deadline()));
        assert_eq!(words(&pipeline(&m.start())[0])[0], "JSON.GET");
        let step = m.reply(vec![Err(server_error("ERR unknown command 'JSON.GET'"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::SearchNotSupported(_)))), "{step:?}");
    }

    #[test]
    fn malformed_replies_are_errors() {
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a")], deadline()));
        let _ = m.start();
        let step = m.reply(vec![Ok(Value::Int(7))]);
        assert!(matches!(step, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{step:?}");
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a")], deadline()));
        let _ = m.start();
        let step = m.reply(vec![]);
        assert!(matches!(step, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{step:?}");
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a")], deadline()));
        let _ = m.start();
        let step = m.reply(vec![Ok(bulk(b"\x00junk"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Corrupt { .. }))), "{step:?}");
    }

    #[test]
    fn an_oversized_value_is_too_large() {
        let mut s = (*scope()).clone();
        s.max_value_size = 2;
        let mut m = Hand::new(ReadEntries::machine(Arc::new(s), vec![key("a")], deadline()));
        let _ = m.start();
        let step = m.reply(vec![Ok(bulk(b"abc"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::TooLarge { size: 3, limit: 2 }))), "{step:?}");
    }

    #[test]
    fn timeouts() {
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a")], deadline()));
        let _ = m.start();
        let step = m.reply(vec![Err(timed_out())]);
        assert!(matches!(step, Step::Done(Err(CacheError::Timeout { .. }))), "{step:?}");
        // A deadline already passed: nothing is sent.
        let mut m = Hand::new(ReadEntries::machine(scope(), vec![key("a")], deadline()));
        m.now += Duration::from_secs(2);
        assert!(matches!(m.start(), Step::Done(Err(CacheError::Timeout { .. }))));
    }
}
