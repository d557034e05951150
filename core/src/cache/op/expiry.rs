//! `set_expires_after`: round 1 reads the entry on the primary (a miss ends it: the key did
//! not exist); round 2 renews its membership in each of its tags with the new TTL
//! (`TAG_WRITE`, so the tags live as long as the entry) and sets the entry's TTL (`PEXPIRE`).

use std::sync::Arc;

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
    Expire { tags: usize },
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
        Ok(Next::Round(Exchange::new(vec![self.scope.storage.read(&self.key, true).into()])))
    }

    fn after_round(&mut self, cx: &mut Ctx<'_>, results: Results) -> Result<Next<bool>, CacheError> {
        let mut results = results.into_iter();
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Read => {
                let scope = &self.scope;
                let stored = take_result(&mut results, "GET")
                    .and_then(plan::read_stored)
                    .map_err(|e| scope.storage.error(&scope.name, e))?;
                let Some(stored) = stored else { return Ok(Next::Done(false)) };
                let entry = scope.storage.decode(&stored)?;
                let plans = Tags::new(&scope.ns);
                let mut cmds = Vec::with_capacity(entry.tags.len() + 1);
                for t in &entry.tags {
                    let cmd = plans.write(&t.tag, &self.key, Some(self.ttl_ms), token(cx.entropy), true)?;
                    cmds.push(Command::script(cmd, &scripts::TAG_WRITE));
                }
                cmds.push(plan::pexpire(&self.key, self.ttl_ms).into());
                self.phase = Phase::Expire { tags: entry.tags.len() };
                Ok(Next::Round(Exchange::new(cmds)))
            }
            Phase::Expire { tags } => {
                for _ in 0..tags {
                    plan::read_token_written(take_result(&mut results, "tag_write")?)?;
                }
                let set = plan::read_int("PEXPIRE", &take_result(&mut results, "PEXPIRE")?)?;
                Ok(Next::Done(set == 1))
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

    #[test]
    fn renews_each_tag_then_sets_the_ttl() {
        let mut m = machine();
        let read = pipeline(&m.start());
        assert_eq!(words(&read[0]), ["GET", "ns:k"]);
        assert_eq!(read[0].read_only_override(), Some(false), "on the primary");
        let cmds = pipeline(&m.reply(vec![Ok(bulk(&two_tags()))]));
        let names: Vec<String> = cmds.iter().map(|c| words(c)[0].clone()).collect();
        assert_eq!(names, ["EVALSHA", "EVALSHA", "PEXPIRE"]);
        assert_eq!(words(&cmds[0])[3..6], ["tag:{ns:a}", "ns:k", "5000"]);
        assert_eq!(words(&cmds[2]), ["PEXPIRE", "ns:k", "5000"]);
        let step = m.reply(vec![Ok(bulk(b"t1")), Ok(bulk(b"t2")), Ok(Value::Int(1))]);
        assert!(matches!(step, Step::Done(Ok(true))), "{step:?}");
    }

    #[test]
    fn a_missing_key_is_false_after_one_round() {
        let mut m = machine();
        let _ = m.start();
        assert!(matches!(m.reply(vec![Ok(Value::Nil)]), Step::Done(Ok(false))));
    }

    #[test]
    fn the_key_expiring_in_between_is_false() {
        let mut m = machine();
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(b"plain"))]);
        assert!(matches!(m.reply(vec![Ok(Value::Int(0))]), Step::Done(Ok(false))));
    }

    #[test]
    fn errors() {
        let mut m = machine();
        let _ = m.start();
        let step = m.reply(vec![Err(server_error("WRONGTYPE x"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Request(RequestError::Server(_))))), "{step:?}");
        // A failed tag write fails the call.
        let mut m = machine();
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(&two_tags()))]);
        let step = m.reply(vec![Err(server_error("ERR boom")), Ok(bulk(b"t")), Ok(Value::Int(1))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Request(_)))), "{step:?}");
        // Malformed: a token that is a number, a missing reply.
        let mut m = machine();
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(&two_tags()))]);
        let step = m.reply(vec![Ok(Value::Int(3)), Ok(bulk(b"t")), Ok(Value::Int(1))]);
        assert!(matches!(step, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{step:?}");
        let mut m = machine();
        let _ = m.start();
        let step = m.reply(vec![Ok(bulk(b"\x00bad"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Corrupt { .. }))), "{step:?}");
        // Timeout.
        let mut m = machine();
        let _ = m.start();
        let step = m.reply(vec![Err(timed_out())]);
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
        let _ = m.reply(vec![Ok(bulk(&two_tags()))]);
        let noscript = || Err(server_error("NOSCRIPT No matching script."));
        let again = pipeline(&m.reply(vec![noscript(), noscript(), Ok(Value::Int(1))]));
        assert_eq!(again.iter().map(|c| words(c)[0].clone()).collect::<Vec<_>>(), ["EVAL", "EVAL"]);
        let step = m.reply(vec![Ok(bulk(b"t1")), Ok(bulk(b"t2"))]);
        assert!(matches!(step, Step::Done(Ok(true))), "{step:?}");
    }
}
