//! Pipelines holding multi-key commands whose keys span slots: planned per slot, merged back
//! into each command's result, in order.

use bytes::Bytes;

use super::merge::finish;
use super::plan::{Part, Shape, plan_subrequests};
use super::*;
use crate::slot::key_slot;

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn words(c: &Cmd) -> Vec<String> {
    c.args().iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// `a`, `b` and `c` hash to three different slots.
fn mget_abc() -> Cmd {
    assert!(
        key_slot(b"a") != key_slot(b"b")
            && key_slot(b"b") != key_slot(b"c")
            && key_slot(b"a") != key_slot(b"c")
    );
    Cmd::new("MGET").arg("a").arg("b").arg("c")
}

#[test]
fn a_cross_slot_command_in_a_pipeline_is_split_per_slot() {
    let plan = plan_subrequests(RequestKind::Pipeline(vec![
        Cmd::new("GET").arg("x"),
        mget_abc(),
        Cmd::new("DEL").arg("a").arg("b"),
        Cmd::new("SET").arg("y").arg("1"),
    ]))
    .unwrap();
    let Shape::Pipeline(parts) = &plan.shape else { panic!("{:?}", plan.shape) };
    let lens: Vec<usize> = parts.iter().map(Part::len).collect();
    assert_eq!(lens, [1, 3, 2, 1]);
    let sent: Vec<Vec<String>> = plan.subs.iter().map(|p| words(&p.cmd)).collect();
    assert_eq!(sent[0], ["GET", "x"]);
    assert_eq!(sent[1..4].concat(), ["MGET", "a", "MGET", "b", "MGET", "c"]);
    assert_eq!(sent[4..6].concat(), ["DEL", "a", "DEL", "b"]);
    assert_eq!(sent[6], ["SET", "y", "1"]);
    for p in &plan.subs[1..4] {
        assert!(matches!(p.route, Route::Slot(s) if Some(s) == p.cmd.slot()));
    }
}

#[test]
fn replies_merge_back_in_order() {
    let plan = plan_subrequests(RequestKind::Pipeline(vec![
        Cmd::new("GET").arg("x"),
        mget_abc(),
        Cmd::new("DEL").arg("a").arg("b"),
    ]))
    .unwrap();
    let results = vec![
        Ok(bulk("x")),
        Ok(Value::Array(vec![bulk("A")])),
        Ok(Value::Array(vec![Value::Nil])),
        Ok(Value::Array(vec![bulk("C")])),
        Ok(Value::Int(1)),
        Ok(Value::Int(1)),
    ];
    let Ok(Reply::Pipeline(replies)) = finish(plan.shape, results) else { panic!() };
    assert_eq!(
        replies,
        vec![Ok(bulk("x")), Ok(Value::Array(vec![bulk("A"), Value::Nil, bulk("C")])), Ok(Value::Int(2))]
    );
}

#[test]
fn a_failed_part_fails_only_its_command() {
    let plan = plan_subrequests(RequestKind::Pipeline(vec![mget_abc(), Cmd::new("GET").arg("x")])).unwrap();
    let lost = RequestError::Timeout { stage: TimeoutStage::Reply, attempts: 1 };
    let results = vec![
        Ok(Value::Array(vec![bulk("A")])),
        Err(lost.clone()),
        Ok(Value::Array(vec![bulk("C")])),
        Ok(bulk("x")),
    ];
    let Ok(Reply::Pipeline(replies)) = finish(plan.shape, results) else { panic!() };
    assert_eq!(replies, vec![Err(lost), Ok(bulk("x"))]);
}

#[test]
fn followers_keep_their_command_and_are_never_split() {
    // `after` indexes are rewritten to the followed command's sub-request.
    let plan = plan_subrequests(RequestKind::Pipeline(vec![
        mget_abc(),
        Cmd::new("SET").arg("x").arg("1"),
        Cmd::new("WAIT").arg("1").arg("0").with_slot(key_slot(b"x")).after(1),
    ]))
    .unwrap();
    assert_eq!(plan.subs[4].cmd.follows(), Some(3));
    // A skipped follower reports the pipeline position of what it followed.
    let results = vec![
        Ok(Value::Array(vec![Value::Nil])),
        Ok(Value::Array(vec![Value::Nil])),
        Ok(Value::Array(vec![Value::Nil])),
        Err(RequestError::Closed),
        Err(RequestError::Skipped { index: 3 }),
    ];
    let Ok(Reply::Pipeline(replies)) = finish(plan.shape, results) else { panic!() };
    assert_eq!(replies[2], Err(RequestError::Skipped { index: 1 }));

    // A command that follows or is followed must go to one place: keys across slots are refused.
    let followed = plan_subrequests(RequestKind::Pipeline(vec![
        mget_abc(),
        Cmd::new("WAIT").arg("1").arg("0").with_slot(key_slot(b"x")).after(0),
    ]));
    assert!(matches!(followed, Err(SubmitError::CrossSlot { .. })), "{followed:?}");
    let follows =
        plan_subrequests(RequestKind::Pipeline(vec![Cmd::new("SET").arg("x").arg("1"), mget_abc().after(0)]));
    assert!(matches!(follows, Err(SubmitError::CrossSlot { .. })), "{follows:?}");
}

#[test]
fn every_splittable_command_is_split_in_a_pipeline() {
    for cmd in [
        Cmd::new("MSET").arg("a").arg("1").arg("b").arg("2"),
        Cmd::new("UNLINK").arg("a").arg("b"),
        Cmd::new("EXISTS").arg("a").arg("b"),
        Cmd::new("TOUCH").arg("a").arg("b"),
    ] {
        let name = words(&cmd)[0].clone();
        let plan = plan_subrequests(RequestKind::Pipeline(vec![cmd])).unwrap();
        assert_eq!(plan.subs.len(), 2, "{name}");
    }
}
