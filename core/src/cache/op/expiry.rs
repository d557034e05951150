//! `set_expires_after`: round 1 reads the entry and its remaining TTL on the primary (a miss
//! ends it: the key did not exist); then the entry's TTL (`PEXPIRE`) and its membership in each
//! of its tags with the new TTL (`TAG_WRITE`, so the tags live as long as the entry), in the
//! order that keeps every membership at least as long-lived as the entry if the second step
//! fails: a longer life renews the tags first, a shorter one sets the TTL first. (Sent
//! together, a failed `PEXPIRE` once left an entry without expiry whose memberships expired
//! first: stale, but listed nowhere, so no invalidation could delete it.)

use std::sync::Arc;

use bytes::Bytes;

use crate::cache::error::CacheError;
use crate::cache::plan::{self, Tags};
use crate::cache::scripts;
use crate::keys::EncodedKey;

use super::deadline::Deadline;
use super::exchange::{Command, Exchange, Results};
use super::fresh::take_result;
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::{Scope, token};

#[derive(Debug)]
enum Phase {
    Read,
    /// The tags renewed; then the TTL if `expire_next`, else done.
    Tags {
        count: usize,
        expire_next: bool,
    },
    /// The TTL set; then these tags' memberships.
    Expire {
        tags_next: Vec<Bytes>,
    },
    Over,
}

/// The `set_expires_after` operation.
#[derive(Debug)]
pub struct ExpireEntry {
    scope: Arc<Scope>,
    key: EncodedKey,
    ttl_ms: u64,
    deadline: Deadline,
    phase: Phase,
}

/// The machine of [`ExpireEntry`].
pub type ExpireMachine = RoundMachine<ExpireEntry>;

impl ExpireEntry {
    /// Gives `key` of `scope`'s namespace `ttl_ms` more to live; the outcome says whether it
    /// existed.
    #[must_use]
    pub fn machine(scope: Arc<Scope>, key: EncodedKey, ttl_ms: u64, deadline: Deadline) -> ExpireMachine {
        RoundMachine::new(Self { scope, key, ttl_ms, deadline, phase: Phase::Over })
    }

    /// The round renewing the memberships in `tags`.
    fn tags_round(
        &mut self,
        cx: &mut Ctx<'_>,
        tags: &[Bytes],
        expire_next: bool,
    ) -> Result<Next<bool>, CacheError> {
        let plans = Tags::new(&self.scope.ns);
        let mut cmds = Vec::with_capacity(tags.len());
        for t in tags {
            let cmd = plans.write(t, &self.key, Some(self.ttl_ms), token(cx.entropy), true)?;
            cmds.push(Command::script(cmd, &scripts::TAG_WRITE));
        }
        self.phase = Phase::Tags { count: tags.len(), expire_next };
        Ok(Next::Round(Exchange::new(cmds)))
    }

    /// The round setting the entry's TTL, then renewing `tags_next`.
    fn expire_round(&mut self, tags_next: Vec<Bytes>) -> Next<bool> {
        self.phase = Phase::Expire { tags_next };
        Next::Round(Exchange::new(vec![plan::pexpire(&self.key, self.ttl_ms).into()]))
    }
}

impl Rounds for ExpireEntry {
    type Output = bool;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, _cx: &mut Ctx<'_>) -> Result<Next<bool>, CacheError> {
        self.phase = Phase::Read;
        let read = self.scope.storage.read(&self.key, true).into();
        let pttl = plan::pttl(&self.key).with_read_only(false).into();
        Ok(Next::Round(Exchange::new(vec![read, pttl])))
    }

    fn after_round(&mut self, cx: &mut Ctx<'_>, results: Results) -> Result<Next<bool>, CacheError> {
        let mut results = results.into_iter();
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Read => {
                let scope = &self.scope;
                let stored = take_result(&mut results, "GET")
                    .and_then(plan::read_stored)
                    .map_err(|e| scope.storage.error(&scope.name, e))?;
                let left = plan::read_int("PTTL", &take_result(&mut results, "PTTL")?)?;
                let Some(stored) = stored else { return Ok(Next::Done(false)) };
                if left == -2 {
                    return Ok(Next::Done(false)); // expired between the two reads
                }
                let tags: Vec<Bytes> =
                    scope.storage.decode(&stored)?.tags.into_iter().map(|t| t.tag).collect();
                // -1: no expiry, so any TTL shortens its life.
                let longer = u64::try_from(left).is_ok_and(|left| self.ttl_ms > left);
                if longer && !tags.is_empty() {
                    self.tags_round(cx, &tags, true)
                } else {
                    Ok(self.expire_round(tags))
                }
            }
            Phase::Tags { count, expire_next } => {
                for _ in 0..count {
                    plan::read_token_written(take_result(&mut results, "tag_write")?)?;
                }
                Ok(if expire_next { self.expire_round(Vec::new()) } else { Next::Done(true) })
            }
            Phase::Expire { tags_next } => {
                let set = plan::read_int("PEXPIRE", &take_result(&mut results, "PEXPIRE")?)? == 1;
                if set && !tags_next.is_empty() {
                    self.tags_round(cx, &tags_next, false)
                } else {
                    Ok(Next::Done(set))
                }
            }
            Phase::Over => Err(CacheError::UnexpectedReply {
                command: "set_expires_after",
                got: "a round too many".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::cache::envelope::{Entry, TagToken};
    use crate::cache::op::Step;
    use crate::cache::op::fresh::tests::{scope, timed_out};
    use crate::cache::op::testing::{Hand, bulk, pipeline, server_error, words};
    use crate::client::RequestError;
    use crate::resp::Value;

    fn machine() -> Hand<ExpireMachine> {
        let key = scope().ns.encode_key(&crate::keys::StringKeys, &"k".to_owned()).expect("valid");
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        let d = Deadline::new(Instant::now(), "set_expires_after", Duration::from_secs(1));
        Hand::new(ExpireEntry::machine(scope(), key, 5000, d))
    }

    fn two_tags() -> Bytes {
        let mut e = Entry::plain(Bytes::from_static(b"v"));
        for t in [&b"a"[..], b"b"] {
            e.tags.push(TagToken { tag: Bytes::copy_from_slice(t), token: Bytes::from_static(b"x") });
        }
        e.encode().expect("encodes")
    }

    /// A longer life: the tags first, then the TTL (a failed `PEXPIRE` leaves memberships
    /// that outlive the entry, never the reverse).
    #[test]
    fn a_longer_life_renews_each_tag_then_sets_the_ttl() {
        let mut m = machine();
        let read = pipeline(&m.start());
        assert_eq!(words(&read[0]), ["GET", "ns:k"]);
        assert_eq!(read[0].read_only_override(), Some(false), "on the primary");
        assert_eq!(words(&read[1]), ["PTTL", "ns:k"]);
        assert_eq!(read[1].read_only_override(), Some(false), "on the primary");
        let tags = pipeline(&m.reply(vec![Ok(bulk(&two_tags())), Ok(Value::Int(1000))]));
        assert_eq!(tags.iter().map(|c| words(c)[0].clone()).collect::<Vec<_>>(), ["EVALSHA", "EVALSHA"]);
        assert_eq!(words(&tags[0])[3..6], ["tag:{ns:a}", "ns:k", "5000"]);
        let expire = pipeline(&m.reply(vec![Ok(bulk(b"t1")), Ok(bulk(b"t2"))]));
        assert_eq!(words(&expire[0]), ["PEXPIRE", "ns:k", "5000"]);
        assert!(matches!(m.reply(vec![Ok(Value::Int(1))]), Step::Done(Ok(true))));
    }

    /// A shorter life (here: from none): the TTL first, then the tags; a failed `PEXPIRE`
    /// sends no tag write.
    #[test]
    fn a_shorter_life_sets_the_ttl_then_renews_each_tag() {
        let mut m = machine();
        let _ = m.start();
        let expire = pipeline(&m.reply(vec![Ok(bulk(&two_tags())), Ok(Value::Int(-1))]));
        assert_eq!(words(&expire[0]), ["PEXPIRE", "ns:k", "5000"]);
        let tags = pipeline(&m.reply(vec![Ok(Value::Int(1))]));
        assert_eq!(tags.iter().map(|c| words(c)[0].clone()).collect::<Vec<_>>(), ["EVALSHA", "EVALSHA"]);
        assert!(matches!(m.reply(vec![Ok(bulk(b"t1")), Ok(bulk(b"t2"))]), Step::Done(Ok(true))));
        let mut m = machine();
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(&two_tags())), Ok(Value::Int(9000))]);
        let step = m.reply(vec![Err(server_error("ERR injected failure"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Request(_)))), "no tag write after it: {step:?}");
    }

    #[test]
    fn a_missing_key_is_false_after_one_round() {
        let mut m = machine();
        let _ = m.start();
        assert!(matches!(m.reply(vec![Ok(Value::Nil), Ok(Value::Int(-2))]), Step::Done(Ok(false))));
    }

    #[test]
    fn the_key_expiring_in_between_is_false() {
        let mut m = machine();
        let _ = m.start();
        assert!(matches!(m.reply(vec![Ok(bulk(b"plain")), Ok(Value::Int(-2))]), Step::Done(Ok(false))));
        let mut m = machine();
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(b"plain")), Ok(Value::Int(100))]);
        assert!(matches!(m.reply(vec![Ok(Value::Int(0))]), Step::Done(Ok(false))));
    }

    #[test]
    fn errors() {
        let mut m = machine();
        let _ = m.start();
        let step = m.reply(vec![Err(server_error("WRONGTYPE x")), Ok(Value::Int(-1))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Request(RequestError::Server(_))))), "{step:?}");
        // A failed tag write fails the call (and sets no TTL).
        let mut m = machine();
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(&two_tags())), Ok(Value::Int(100))]);
        let step = m.reply(vec![Err(server_error("ERR boom")), Ok(bulk(b"t"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Request(_)))), "{step:?}");
        // Malformed: a token that is a number.
        let mut m = machine();
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(&two_tags())), Ok(Value::Int(100))]);
        let step = m.reply(vec![Ok(Value::Int(3)), Ok(bulk(b"t"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{step:?}");
        let mut m = machine();
        let _ = m.start();
        let step = m.reply(vec![Ok(bulk(b"\x00bad")), Ok(Value::Int(-1))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Corrupt { .. }))), "{step:?}");
        // Timeout.
        let mut m = machine();
        let _ = m.start();
        let step = m.reply(vec![Err(timed_out()), Err(timed_out())]);
        assert!(
            matches!(step, Step::Done(Err(CacheError::Timeout { op: "set_expires_after", .. }))),
            "{step:?}"
        );
    }

    /// A script the node does not have is sent again as EVAL.
    #[test]
    fn noscript_falls_back_to_eval() {
        let mut m = machine();
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(&two_tags())), Ok(Value::Int(100))]);
        let noscript = || Err(server_error("NOSCRIPT No matching script."));
        let again = pipeline(&m.reply(vec![noscript(), noscript()]));
        assert_eq!(again.iter().map(|c| words(c)[0].clone()).collect::<Vec<_>>(), ["EVAL", "EVAL"]);
        let expire = pipeline(&m.reply(vec![Ok(bulk(b"t1")), Ok(bulk(b"t2"))]));
        assert_eq!(words(&expire[0])[0], "PEXPIRE");
        assert!(matches!(m.reply(vec![Ok(Value::Int(1))]), Step::Done(Ok(true))));
    }
}
