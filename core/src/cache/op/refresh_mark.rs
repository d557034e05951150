//! `set_refreshable_after`: round 1 reads the entry and its TTL on the primary (a miss ends it:
//! the key did not exist); round 2 stores it again with its refresh time set, by
//! compare-and-set against the bytes read (`CAS`, or `CAS_JSON` for documents), keeping the
//! TTL. The outcome is whether the key existed and did not change meanwhile.

use core::time::Duration;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::error::CacheError;
use crate::cache::plan;
use crate::cache::scripts::sha1_hex;
use crate::keys::EncodedKey;

use super::deadline::Deadline;
use super::exchange::{Command, Exchange, Results};
use super::fresh::take_result;
use super::machine::Ctx;
use super::rounds::{Next, RoundMachine, Rounds};
use super::scope::Scope;

#[derive(Debug)]
enum Phase {
    Read,
    Swap,
    Over,
}

/// The `set_refreshable_after` operation.
#[derive(Debug)]
pub struct MarkRefreshable {
    scope: Arc<Scope>,
    key: EncodedKey,
    after_ms: u64,
    deadline: Deadline,
    phase: Phase,
}

/// The machine of [`MarkRefreshable`].
pub type MarkRefreshableMachine = RoundMachine<MarkRefreshable>;

impl MarkRefreshable {
    /// Marks `key` of `scope`'s namespace for a reload `after` from the wall clock's now (in
    /// whole milliseconds, at most `u64::MAX`).
    #[must_use]
    pub fn machine(
        scope: Arc<Scope>,
        key: EncodedKey,
        after: Duration,
        deadline: Deadline,
    ) -> MarkRefreshableMachine {
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        RoundMachine::new(Self { scope, key, after_ms, deadline, phase: Phase::Over })
    }

    fn swap_round(&mut self, cx: &Ctx<'_>, results: Results) -> Result<Next<bool>, CacheError> {
        let scope = &self.scope;
        let mut results = results.into_iter();
        let stored = take_result(&mut results, "GET")
            .and_then(plan::read_stored)
            .map_err(|e| scope.storage.error(&scope.name, e))?;
        let pttl = plan::read_int("PTTL", &take_result(&mut results, "PTTL")?)?;
        let Some(stored) = stored else { return Ok(Next::Done(false)) };
        let mut entry = scope.storage.decode(&stored)?;
        entry.refresh_at_ms = Some(cx.wall_ms.saturating_add(self.after_ms));
        // Keep the TTL it has (none: -1; gone meanwhile: -2, and the swap will miss).
        let ttl = if pttl > 0 { Bytes::from(pttl.to_string()) } else { Bytes::new() };
        let form = scope.storage.encode(&entry, scope.max_value_size)?;
        let args = vec![Bytes::from(sha1_hex(&stored)), Bytes::from_static(b"set"), form, ttl];
        let script = scope.storage.cas_script();
        let cmd = plan::script(script, &self.key, args, true, false);
        self.phase = Phase::Swap;
        Ok(Next::Round(Exchange::new(vec![Command::script(cmd, script)])))
    }
}

impl Rounds for MarkRefreshable {
    type Output = bool;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, _cx: &mut Ctx<'_>) -> Result<Next<bool>, CacheError> {
        let cmds = vec![self.scope.storage.read(&self.key, true).into(), plan::pttl(&self.key).into()];
        self.phase = Phase::Read;
        Ok(Next::Round(Exchange::new(cmds)))
    }

    fn after_round(&mut self, cx: &mut Ctx<'_>, results: Results) -> Result<Next<bool>, CacheError> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Read => self.swap_round(cx, results),
            Phase::Swap => {
                let v = take_result(&mut results.into_iter(), "cas")?;
                Ok(Next::Done(plan::read_int("cas", &v)? == 1))
            }
            Phase::Over => Err(CacheError::UnexpectedReply {
                command: "set_refreshable_after",
                got: "a round too many".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::time::Instant;

    use super::*;
    use crate::cache::envelope::Entry;
    use crate::cache::op::Step;
    use crate::cache::op::fresh::tests::{scope, timed_out};
    use crate::cache::op::testing::{Hand, bulk, pipeline, server_error, words};
    use crate::cache::scripts;
    use crate::resp::Value;

    fn machine_with(scope: Arc<Scope>) -> Hand<MarkRefreshableMachine> {
        let key = scope.ns.encode_key(&crate::keys::StringKeys, &"k".to_owned()).expect("valid");
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        let d = Deadline::new(Instant::now(), "set_refreshable_after", Duration::from_secs(1));
        Hand::new(MarkRefreshable::machine(scope, key, Duration::from_secs(30), d))
    }

    #[test]
    fn swaps_in_the_entry_with_its_refresh_time_keeping_the_ttl() {
        let mut m = machine_with(scope());
        let read = pipeline(&m.start());
        assert_eq!(words(&read[0]), ["GET", "ns:k"]);
        assert_eq!(words(&read[1]), ["PTTL", "ns:k"]);
        let cas = pipeline(&m.reply(vec![Ok(bulk(b"v")), Ok(Value::Int(9000))]));
        let w = words(&cas[0]);
        assert_eq!((w[0].as_str(), w[1].as_str()), ("EVALSHA", scripts::CAS.sha1()));
        assert_eq!(w[4], sha1_hex(b"v"));
        assert_eq!(w[5], "set");
        let stored = Entry::decode(&cas[0].args()[6]).expect("an envelope");
        assert_eq!(stored.refresh_at_ms, Some(m.wall_ms + 30_000));
        assert_eq!(stored.payload.as_ref(), b"v");
        assert_eq!(w[7], "9000");
        assert!(matches!(m.reply(vec![Ok(Value::Int(1))]), Step::Done(Ok(true))));
    }

    #[test]
    fn no_ttl_and_a_lost_race() {
        let mut m = machine_with(scope());
        let _ = m.start();
        let cas = pipeline(&m.reply(vec![Ok(bulk(b"v")), Ok(Value::Int(-1))]));
        assert_eq!(words(&cas[0])[7], "", "no TTL to keep");
        // The entry changed since it was read: not marked.
        assert!(matches!(m.reply(vec![Ok(Value::Int(0))]), Step::Done(Ok(false))));
    }

    #[test]
    fn a_missing_key_is_false() {
        let mut m = machine_with(scope());
        let _ = m.start();
        assert!(matches!(m.reply(vec![Ok(Value::Nil), Ok(Value::Int(-2))]), Step::Done(Ok(false))));
    }

    #[test]
    fn an_entry_too_large_with_its_mark_is_refused() {
        let mut s = (*scope()).clone();
        s.max_value_size = 4;
        let mut m = machine_with(Arc::new(s));
        let _ = m.start();
        let step = m.reply(vec![Ok(bulk(b"vvv")), Ok(Value::Int(-1))]);
        assert!(matches!(step, Step::Done(Err(CacheError::TooLarge { .. }))), "{step:?}");
    }

    #[test]
    fn errors() {
        let mut m = machine_with(scope());
        let _ = m.start();
        let step = m.reply(vec![Ok(bulk(b"v")), Err(server_error("ERR boom"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Request(_)))), "{step:?}");
        let mut m = machine_with(scope());
        let _ = m.start();
        let step = m.reply(vec![Ok(bulk(b"v")), Ok(bulk(b"soon"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{step:?}");
        let mut m = machine_with(scope());
        let _ = m.start();
        let _ = m.reply(vec![Ok(bulk(b"v")), Ok(Value::Int(-1))]);
        let step = m.reply(vec![Ok(Value::Nil)]);
        assert!(matches!(step, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{step:?}");
        let mut m = machine_with(scope());
        let _ = m.start();
        let step = m.reply(vec![Err(timed_out()), Ok(Value::Int(1))]);
        assert!(matches!(step, Step::Done(Err(CacheError::Timeout { .. }))), "{step:?}");
    }
}
