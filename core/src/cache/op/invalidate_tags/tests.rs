//! The machine driven by hand: the `WAIT` rules (A1), and the clean-up rules (A6): a member
//! whose delete did not complete is listed again, exactly those, with their scores.

use core::time::Duration;
use std::time::Instant;

use super::*;
use crate::NodeAddr;
use crate::cache::durability::Durability;
use crate::cache::envelope::TagToken;
use crate::cache::op::Step;
use crate::cache::op::machine::Input;
use crate::cache::op::testing::{Hand, bulk, pipeline, server_error, words};
use crate::cache::storage::Storage;
use crate::client::{ConnError, ConnErrorKind, Reply, TimeoutStage};
use crate::keys::Namespace;
use crate::resp::Value;

fn machine_for(variant: Variant, durability: Durability) -> Hand<InvalidateTagsMachine> {
    let scope = Arc::new(Scope {
        ns: Namespace::new("ns").expect("valid"),
        name: "ns:".into(),
        storage: Storage::Envelope,
        max_value_size: 1 << 20,
        durability,
        expire_after_read_ms: None,
    });
    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    let d = Deadline::new(Instant::now(), "invalidate_by_tags", Duration::from_secs(10));
    Hand::new(InvalidateTags::machine_with(scope, vec![Bytes::from_static(b"t")], d, variant))
}

fn machine(variant: Variant) -> Hand<InvalidateTagsMachine> {
    machine_for(variant, Durability::Replicas { replicas: 1, timeout: Duration::from_millis(250) })
}

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

/// The header `DEL_IF_STALE` returns for an entry with these `(tag, token)` pairs.
fn header(tags: &[(&'static [u8], &'static [u8])]) -> Value {
    let e = Entry {
        payload: Bytes::from_static(b"p"),
        tags: tags
            .iter()
            .map(|(t, k)| TagToken { tag: Bytes::from_static(t), token: Bytes::from_static(k) })
            .collect(),
        ..Entry::default()
    };
    let stored = e.encode().expect("encode");
    Value::Bulk(stored.slice(..stored.len() - 1))
}

/// Starts a machine without `WAIT`s and answers its swap of tag `t` (old token `old`) with
/// these `(member, score)` pairs; returns the machine, the deletes it sends, and the new token.
fn swapped(
    variant: Variant,
    members: &[(&str, &str)],
) -> (Hand<InvalidateTagsMachine>, Vec<Vec<String>>, String) {
    let mut m = machine_for(variant, Durability::Primary);
    let swap = pipeline(&m.start());
    assert_eq!(swap.len(), 1, "no WAIT with primary durability");
    let new = words(&swap[0])[4].clone();
    let flat = members.iter().flat_map(|(k, s)| [bulk(k.as_bytes()), bulk(s.as_bytes())]).collect();
    let dels = pipeline(&m.reply(vec![Ok(Value::Array(vec![bulk(b"old"), Value::Array(flat)]))]));
    let dels: Vec<Vec<String>> = dels.iter().map(words).collect();
    for (d, (k, _)) in dels.iter().zip(members) {
        assert_eq!(d[0], "EVALSHA");
        assert_eq!(d[1], scripts::DEL_IF_STALE.sha1());
        assert_eq!(&d[3..], [(*k).to_owned(), "t".to_owned(), new.clone()], "member, tag, the new token");
    }
    assert_eq!(dels.len(), members.len());
    (m, dels, new)
}

fn lost(addr: u16) -> RequestError {
    RequestError::ConnectionLost {
        addr: NodeAddr::new("10.0.0.1", addr),
        error: ConnError::new(ConnErrorKind::Closed, "closed"),
    }
}

/// A re-listing: `TAG_RELIST` of tag `t` with a fresh token (used only if the tag has none)
/// and these `score, member` pairs.
fn assert_relist(cmd: &crate::client::Cmd, pairs: &[&str]) {
    let w = words(cmd);
    assert_eq!(w[..4], ["EVALSHA", scripts::TAG_RELIST.sha1(), "1", "tag:{ns:t}"], "{w:?}");
    assert_eq!(w[4].len(), crate::cache::op::scope::TOKEN_LEN, "a fresh token: {w:?}");
    assert_eq!(w[5..], *pairs, "{w:?}");
}

/// Deletes that fail (an error result, a server error reply) are listed again, exactly those,
/// each with its score, in one `TAG_RELIST` per tag; then the call fails with the first error.
#[test]
fn a_partial_failure_lists_exactly_the_failed_members_again() {
    let (mut m, _, _) =
        swapped(Variant::Correct, &[("ns:a", "100"), ("ns:b", "inf"), ("ns:c", "200"), ("ns:d", "300")]);
    let step = m.reply(vec![
        Ok(header(&[(b"t", b"old")])),
        Err(lost(7000)),
        Ok(Value::Error(Bytes::from_static(b"ERR injected"))),
        Ok(Value::Nil),
    ]);
    // Nothing to count or leave (the deleted entry has no other tag): straight to the re-listing.
    let relist = pipeline(&step);
    assert_eq!(relist.len(), 1, "{relist:?}");
    assert_relist(&relist[0], &["inf", "ns:b", "200", "ns:c"]);
    let step = m.reply(vec![Ok(Value::Int(2))]);
    assert!(
        matches!(&step, Step::Done(Err(CacheError::Request(RequestError::ConnectionLost { .. })))),
        "{step:?}"
    );
}

/// A member rewritten after the swap (the script leaves it: nil) is neither counted nor listed
/// again; the happy path sends no re-listing round.
#[test]
fn a_rewritten_member_is_left_alone() {
    let (mut m, _, _) = swapped(Variant::Correct, &[("ns:a", "100")]);
    let step = m.reply(vec![Ok(Value::Nil)]);
    assert!(matches!(step, Step::Done(Ok(0))), "{step:?}");
}

/// The counts are as before: a deleted entry counts if it was still fresh (the invalidated
/// tag's old token, its other tags' current tokens); one already stale is deleted uncounted.
#[test]
fn counts_are_unchanged_on_the_happy_path() {
    let (mut m, _, _) =
        swapped(Variant::Correct, &[("ns:a", "1"), ("ns:b", "2"), ("ns:c", "3"), ("ns:e", "4")]);
    let step = m.reply(vec![
        Ok(header(&[(b"t", b"old")])),
        // Carried an older token of t (left by an earlier failed clean-up): stale, uncounted.
        Ok(header(&[(b"t", b"older")])),
        Ok(header(&[(b"t", b"old"), (b"u", b"U1")])),
        Ok(header(&[(b"t", b"old"), (b"u", b"U0")])),
    ]);
    let reads = pipeline(&step);
    assert_eq!(words(&reads[0]), ["ZRANGEBYSCORE", "tag:{ns:u}", "-1", "-1"]);
    let leave = pipeline(&m.reply(vec![Ok(Value::Array(vec![bulk(b"\0U1")]))]));
    let leave: Vec<Vec<String>> = leave.iter().map(words).collect();
    let sha = scripts::TAG_LEAVE.sha1();
    assert_eq!(
        leave,
        [["EVALSHA", sha, "1", "tag:{ns:u}", "ns:c"], ["EVALSHA", sha, "1", "tag:{ns:u}", "ns:e"]]
    );
    let step = m.reply(vec![Ok(Value::Int(1)), Ok(Value::Int(1))]);
    assert!(matches!(step, Step::Done(Ok(2))), "a and c: {step:?}");
}

/// A delete round that times out as a whole (which deletes ran is unknown) lists every member
/// again, on a renewed budget; the call fails with the timeout. The A6 variant returns at once.
#[test]
fn a_delete_round_that_timed_out_lists_every_member_again() {
    let timeout = || {
        Input::Replies(vec![Ok(Reply::Pipeline(vec![
            Err(RequestError::Timeout { stage: TimeoutStage::Reply, attempts: 1 }),
            Ok(Value::Nil),
        ]))])
    };
    let (mut m, _, _) = swapped(Variant::Correct, &[("ns:a", "100"), ("ns:b", "inf")]);
    m.now += Duration::from_secs(11);
    let relist = pipeline(&m.resume(timeout()));
    assert_relist(&relist[0], &["100", "ns:a", "inf", "ns:b"]);
    let step = m.reply(vec![Ok(Value::Int(2))]);
    assert!(matches!(step, Step::Done(Err(CacheError::Timeout { .. }))), "{step:?}");

    let (mut m, _, _) = swapped(Variant::EraseBeforeEarlyReturn, &[("ns:a", "100"), ("ns:b", "inf")]);
    let step = m.resume(timeout());
    assert!(matches!(step, Step::Done(Err(CacheError::Timeout { .. }))), "no re-listing: {step:?}");
    let (mut m, _, _) = swapped(Variant::EraseBeforeEarlyReturn, &[("ns:a", "100"), ("ns:b", "inf")]);
    let step = m.reply(vec![Err(lost(7000)), Ok(Value::Nil)]);
    assert!(matches!(step, Step::Done(Err(CacheError::Request(_)))), "no re-listing: {step:?}");
}

/// A re-listing that fails too says so: how many entries are left unlisted, and both causes.
#[test]
fn a_failed_re_listing_says_so() {
    let (mut m, _, _) = swapped(Variant::Correct, &[("ns:a", "100"), ("ns:b", "inf")]);
    let relist = pipeline(&m.reply(vec![Err(lost(7000)), Err(lost(7000))]));
    assert_eq!(relist.len(), 1);
    let step = m.reply(vec![Err(lost(7001))]);
    let Step::Done(Err(CacheError::CleanupUnlisted { unlisted, cause, relist })) = step else {
        panic!("{step:?}")
    };
    assert_eq!(unlisted, 2);
    assert!(matches!(*cause, CacheError::Request(RequestError::ConnectionLost { .. })));
    assert!(matches!(*relist, CacheError::Request(RequestError::ConnectionLost { .. })));
}

/// A swap that failed for one tag does not stop the clean-up of the others: their members
/// (erased by their swap) are still deleted.
#[test]
fn a_failed_swap_does_not_skip_the_other_tags_deletes() {
    let scope = super::super::testing::scope();
    #[allow(clippy::disallowed_methods)]
    let d = Deadline::new(Instant::now(), "invalidate_by_tags", Duration::from_secs(10));
    let tags = vec![Bytes::from_static(b"t"), Bytes::from_static(b"u")];
    let mut m = Hand::new(InvalidateTags::machine_with(scope, tags, d, Variant::Correct));
    let swap = pipeline(&m.start());
    assert_eq!(swap.len(), 2);
    let ok = Value::Array(vec![bulk(b"old"), Value::Array(vec![bulk(b"ns:a"), bulk(b"5")])]);
    let dels = pipeline(&m.reply(vec![Err(lost(7000)), Ok(ok)]));
    assert_eq!(words(&dels[0])[3..5], ["ns:a".to_owned(), "u".to_owned()]);
    let step = m.reply(vec![Ok(Value::Nil)]);
    assert!(matches!(step, Step::Done(Err(CacheError::Request(_)))), "{step:?}");
}
