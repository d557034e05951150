//! Guarantee 1 on a recorded history, and the consistency of every read with the writes.
//!
//! For every read *R* that returned a value *v*:
//!
//! - *v* must have been written, to *R*'s key, by a write *W* invoked before *R* completed
//!   (values are unique, so *W* is known);
//! - when `get_entry` reports the entry's tags, they must be *W*'s tags (guarantee 4: the stored
//!   entry carries exactly the tags of the write that stored it; *W*'s tags are known for
//!   writes, reloads and `compute`, [`Record::tags_known`]);
//! - **P1**: if *W* returned `Ok`, no `invalidate_by_tags` *I* of one of *W*'s tags that
//!   returned `Ok` has `W.completed < I.invoked` and `I.completed < R.invoked`; the same for an
//!   `invalidate` of *W*'s key. A write that failed has no known completion time, so it never
//!   witnesses a violation; an invalidation that failed guarantees nothing.
//! - **P1 for loaded values** (bug A3): a value a loader produced (`get` with a loader,
//!   `refresh`) is as old as the loader's call, [`Record::loaded`]: the loader read the data
//!   then, however late the value was stored, or handed to the callers that joined its load.
//!   So for *W* a load, the tag rule reads `W.loaded < I.invoked` (and `I.completed <
//!   R.invoked`): a value loaded before an invalidation of one of the tags it kept was invoked
//!   is never read by a read invoked after that invalidation returned, from the cache or by
//!   joining the load. An `invalidate` of the key keeps the completion rule for loads: a load
//!   whose store lands after an `invalidate(k)` that raced it may be read (the limit documented
//!   in `docs/consistency.md`).
//!
//! [`check_counts`] checks guarantee 3 **during** the run, as far as it holds there: with
//! writes and invalidations racing, a count may be lower than the fresh entries but never
//! higher than the entries the invalidation could delete (see its documentation for the
//! bound); the exact counts are checked at quiescence ([`super::quiescent`]).

use std::collections::{BTreeSet, HashMap};

use super::{History, Op, Record, Ret, Violation};

/// What the check looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Reads that returned a value, each checked against its write.
    pub hits_checked: usize,
    /// Hits whose write completed before some `Ok` invalidation that covers it was invoked:
    /// the reads where guarantee 1 had something to forbid (by the invalidation's timing,
    /// whether or not it completed before the read).
    pub hits_after_covering_invalidation: usize,
}

/// The write of every value in the history: value → record index.
///
/// # Panics
/// If a value was written twice (the workload's values are unique by construction).
#[must_use]
pub fn writes_by_value(h: &History) -> HashMap<&str, usize> {
    let mut out = HashMap::new();
    for r in &h.records {
        for (_, v) in r.op.writes() {
            let prev = out.insert(v, r.id);
            assert!(prev.is_none(), "value {v} written twice: a workload bug");
        }
    }
    out
}

fn distinct(tags: &[String]) -> BTreeSet<&str> {
    tags.iter().map(String::as_str).collect()
}

/// One value `v` that `r` read from `key` (with the tags it reported, if any).
#[allow(clippy::too_many_arguments)]
fn check_read(
    h: &History,
    writes: &HashMap<&str, usize>,
    by_tag: &HashMap<&str, Vec<&Record>>,
    by_key: &HashMap<&str, Vec<&Record>>,
    reported_tags: &HashMap<&str, &[String]>,
    r: &Record,
    key: &str,
    v: &str,
    reported: Option<&[String]>,
    key_rule: bool,
    out: &mut Vec<Violation>,
    fig: &mut Figures,
) {
    fig.hits_checked += 1;
    let Some(&wi) = writes.get(v) else {
        out.push(Violation {
            property: "P1",
            what: format!("read a value never written: {v}"),
            ops: vec![r.clone()],
        });
        return;
    };
    let w = &h.records[wi];
    let written_to = w.op.writes().into_iter().find(|(_, wv)| *wv == v).map(|(k, _)| k);
    if written_to != Some(key) {
        out.push(Violation {
            property: "P1",
            what: format!("read of {key} returned {v}, written to {written_to:?}"),
            ops: vec![w.clone(), r.clone()],
        });
        return;
    }
    if r.completed < w.invoked {
        out.push(Violation {
            property: "P1",
            what: format!("read of {key} returned {v} before its write was invoked"),
            ops: vec![w.clone(), r.clone()],
        });
        return;
    }
    if let Some(reported) = reported
        && w.tags_known()
        && distinct(reported) != distinct(w.written_tags_of(v))
    {
        out.push(Violation {
            property: "P4",
            what: format!(
                "get_entry({key}) reports tags {reported:?}, its write had {:?}",
                w.written_tags_of(v)
            ),
            ops: vec![w.clone(), r.clone()],
        });
    }
    // Since when the value exists, for the tag rule (a loaded value: since its loader's call)
    // and for the key rule; `None`: unknown (a write that failed).
    let done = w.ok().then_some(w.completed);
    let (tag_since, key_since) = (w.loaded.or(done), done);
    let after = |since: Option<u64>| move |i: &&&Record| since.is_some_and(|s| s < i.invoked);
    // The tags the value carries: its write's, when known; else (a `bulk_refresh`, a `compute`
    // or reload that failed) those a `get_entry` of the value reported, if any did.
    let tags = if w.tags_known() || matches!(w.op, Op::Load { .. }) {
        w.written_tags_of(v)
    } else {
        reported_tags.get(v).copied().unwrap_or_default()
    };
    let covering = distinct(tags)
        .into_iter()
        .flat_map(|t| by_tag.get(t).into_iter().flatten())
        .filter(after(tag_since))
        .chain(by_key.get(key).into_iter().flatten().filter(|_| key_rule).filter(after(key_since)))
        .filter(|i| i.invoked < r.completed);
    let mut exposed = false;
    for i in covering {
        exposed = true;
        if i.completed < r.invoked {
            let when = if w.loaded.is_some() && matches!(i.op, Op::InvalidateTags { .. }) {
                "it was loaded"
            } else {
                "its write completed"
            };
            out.push(Violation {
                property: "P1",
                what: format!(
                    "read of {key} returned {v} although {when} before {} was invoked \
                     and that completed before the read was invoked",
                    i.op
                ),
                ops: vec![w.clone(), (*i).clone(), r.clone()],
            });
            break;
        }
    }
    if exposed {
        fig.hits_after_covering_invalidation += 1;
    }
}

/// Checks guarantee 1 (and read/write consistency) on `h`.
#[must_use]
pub fn check_p1(h: &History) -> (Vec<Violation>, Figures) {
    check_p1_with(h, |_| true)
}

/// [`check_p1`], with the rule for `invalidate` of the key applied only to the reads for which
/// `key_rule` says so: a read from a replica may return a value whose key the primary already
/// deleted (replication lag, `docs/consistency.md`, "What is not guaranteed"), while the tag
/// rule holds for it (tag checks go to primaries).
#[must_use]
pub fn check_p1_with(h: &History, key_rule: impl Fn(&Record) -> bool) -> (Vec<Violation>, Figures) {
    let writes = writes_by_value(h);
    let mut by_tag: HashMap<&str, Vec<&Record>> = HashMap::new();
    let mut by_key: HashMap<&str, Vec<&Record>> = HashMap::new();
    for r in h.records.iter().filter(|r| r.ok()) {
        match &r.op {
            Op::InvalidateTags { tags } => {
                for t in distinct(tags) {
                    by_tag.entry(t).or_default().push(r);
                }
            }
            Op::Invalidate { key } => by_key.entry(key).or_default().push(r),
            _ => {}
        }
    }
    let reported_tags = reported_tags(h);
    let mut out = Vec::new();
    let mut fig = Figures::default();
    for r in &h.records {
        for (key, v, reported) in r.reads() {
            let by_key_too = key_rule(r);
            check_read(
                h,
                &writes,
                &by_tag,
                &by_key,
                &reported_tags,
                r,
                key,
                v,
                reported,
                by_key_too,
                &mut out,
                &mut fig,
            );
        }
    }
    out.extend(check_keys(h));
    (out, fig)
}

/// The tags `get_entry` reported for each value it read (the first report of each).
#[must_use]
pub fn reported_tags(h: &History) -> HashMap<&str, &[String]> {
    let mut out = HashMap::new();
    for r in &h.records {
        if let (Op::GetEntry { .. }, Ok(Ret::Entry(Some((v, Some(tags)))))) = (&r.op, &r.result) {
            out.entry(v.as_str()).or_insert(tags.as_slice());
        }
    }
    out
}

/// `keys()`: every key it yielded must have been written by a write invoked before it
/// completed (an iteration names only keys that exist).
fn check_keys(h: &History) -> Vec<Violation> {
    let mut first: HashMap<&str, u64> = HashMap::new();
    for r in &h.records {
        for (k, _) in r.op.writes() {
            let at = first.entry(k).or_insert(r.invoked);
            *at = (*at).min(r.invoked);
        }
    }
    let mut out = Vec::new();
    for r in &h.records {
        let (Op::Keys, Ok(Ret::Keys(keys))) = (&r.op, &r.result) else { continue };
        for k in keys {
            if first.get(k.as_str()).is_none_or(|&at| at > r.completed) {
                out.push(Violation {
                    property: "P1",
                    what: format!("keys() yielded {k}, which no write invoked before it completed wrote"),
                    ops: vec![r.clone()],
                });
            }
        }
    }
    out
}

/// What the in-run count check looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountFigures {
    /// `invalidate_by_tags` calls that returned a count, each compared with its bound.
    pub checked: usize,
    /// Of those, the ones whose bound was narrowed by an earlier invalidation of the same tags
    /// (the others were bounded by every key ever written with them).
    pub narrowed: usize,
}

/// A write's interval for the count bound: `(invoked, completed)`, `u64::MAX` for a write that
/// failed (its tag step may have run at any time after it was invoked).
type Span = (u64, u64, usize);

/// Whether the write `r` may have carried tag `t`: a write with it, or one whose tags are
/// unknown (a `compute` or reload that failed, a `bulk_refresh`).
fn may_tag(r: &Record, t: &str) -> bool {
    if r.tags_known() || matches!(r.op, Op::Load { .. }) {
        r.writes_tag(t)
    } else {
        matches!(r.op, Op::Compute { .. } | Op::Refresh { .. } | Op::BulkRefresh { .. })
    }
}

/// Guarantee 3 during the run: every `invalidate_by_tags(T)` that returned `Ok(n)` must have
/// `n` at most the **bound** `Σ_{t ∈ T} |Q_t|`, where `Q_t` is the set of keys with a write *W*
/// that may carry *t* and may have listed the key in *t*'s current generation when the
/// invalidation *I* swapped its token:
///
/// - *W* was invoked before *I* completed (its tag step runs inside *W*, before *I*'s swap);
/// - *W* failed (its tag step may have run at any time), or *W* completed after the invocation
///   of the last invalidation *J* of *t* that returned `Ok` and completed before *I* was
///   invoked: *J*'s swap erased *t*'s members, so a member listed at *I*'s swap was written
///   after *J*'s swap began. When some invalidation of *t* failed before *I* completed, it may
///   have listed members again (`TAG_RELIST`) after *J*: then no *J* narrows `Q_t`.
///
/// Why that bounds the count (`docs/consistency.md`, guarantee 3): *I* counts only entries it
/// deleted, and deletes only members listed in each tag at its swap (each member once per tag);
/// even when its token reads fail and every deleted entry is counted, the count stays within
/// that. Racing writes and invalidations, failovers and errors may make it lower; nothing lower
/// is checked here.
#[must_use]
pub fn check_counts(h: &History) -> (Vec<Violation>, CountFigures) {
    // Per tag: the writes that may carry it, by invocation; the tag's Ok invalidations and the
    // invocations of its failed ones.
    let mut writes: HashMap<&str, Vec<Span>> = HashMap::new();
    let mut keys_of: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut key_ids: HashMap<&str, usize> = HashMap::new();
    let mut ok_invs: HashMap<&str, Vec<&Record>> = HashMap::new();
    let mut failed_invs: HashMap<&str, Vec<u64>> = HashMap::new();
    let all_tags: BTreeSet<&str> = h
        .records
        .iter()
        .flat_map(|r| match &r.op {
            Op::InvalidateTags { tags } => tags.iter().map(String::as_str).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    for r in &h.records {
        if let Op::InvalidateTags { tags } = &r.op {
            for t in distinct(tags) {
                if r.ok() {
                    ok_invs.entry(t).or_default().push(r);
                } else {
                    failed_invs.entry(t).or_default().push(r.invoked);
                }
            }
        }
        for (k, _) in r.op.writes() {
            let n = key_ids.len();
            let id = *key_ids.entry(k).or_insert(n);
            for &t in &all_tags {
                if may_tag(r, t) {
                    let done = if r.ok() { r.completed } else { u64::MAX };
                    writes.entry(t).or_default().push((r.invoked, done, id));
                    keys_of.entry(t).or_default().insert(k);
                }
            }
        }
    }
    for w in writes.values_mut() {
        w.sort_unstable();
    }
    let longest_ok = writes
        .values()
        .flatten()
        .filter(|w| w.1 != u64::MAX)
        .map(|w| w.1.saturating_sub(w.0))
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    let mut fig = CountFigures::default();
    for i in &h.records {
        let (Op::InvalidateTags { tags }, Ok(Ret::Count(n))) = (&i.op, &i.result) else { continue };
        fig.checked += 1;
        let mut bound = 0usize;
        let mut narrowed = false;
        let mut floors = Vec::new();
        for t in distinct(tags) {
            let relisted = failed_invs.get(t).is_some_and(|f| f.iter().any(|&at| at < i.completed));
            let floor = if relisted {
                None
            } else {
                ok_invs
                    .get(t)
                    .into_iter()
                    .flatten()
                    .filter(|j| j.completed < i.invoked)
                    .max_by_key(|j| j.invoked)
                    .copied()
            };
            let since = floor.map_or(0, |j| j.invoked);
            narrowed |= floor.is_some();
            floors.extend(floor.cloned());
            let Some(ws) = writes.get(t) else { continue };
            let all = keys_of.get(t).map_or(0, BTreeSet::len);
            let end = ws.partition_point(|w| w.0 < i.completed);
            let mut seen = BTreeSet::new();
            for &(invoked, completed, key) in ws[..end].iter().rev() {
                if completed > since {
                    seen.insert(key);
                }
                // Earlier writes completed before `since`, unless they failed (checked below).
                if seen.len() == all || invoked.saturating_add(longest_ok) < since {
                    break;
                }
            }
            if seen.len() < all {
                seen.extend(ws[..end].iter().filter(|w| w.1 == u64::MAX).map(|w| w.2));
            }
            bound += seen.len();
        }
        if narrowed {
            fig.narrowed += 1;
        }
        if *n > bound as u64 {
            out.push(Violation {
                property: "P3",
                what: format!(
                    "{} returned {n}, more than the {bound} entries it could have deleted (keys written \
                     with its tags since the last invalidation of each that returned before it)",
                    i.op
                ),
                ops: floors.into_iter().chain([i.clone()]).collect(),
            });
        }
    }
    (out, fig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: usize, invoked: u64, completed: u64, op: Op, result: Result<Ret, String>) -> Record {
        Record { id, worker: 0, invoked, completed, loaded: None, op, result }
    }

    fn set(key: &str, value: &str, tags: &[&str]) -> Op {
        Op::Set { key: key.into(), value: value.into(), tags: tags.iter().map(|t| (*t).to_owned()).collect() }
    }

    #[test]
    fn a_read_after_a_covering_invalidation_is_a_violation() {
        let inv = Op::InvalidateTags { tags: vec!["a".into()] };
        let get = Op::Get { key: "k".into() };
        let h = History {
            records: vec![
                rec(0, 0, 10, set("k", "v1", &["a"]), Ok(Ret::Done)),
                rec(1, 20, 30, inv, Ok(Ret::Count(1))),
                rec(2, 40, 50, get, Ok(Ret::Read(Some("v1".into())))),
            ],
        };
        let (v, fig) = check_p1(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(fig.hits_after_covering_invalidation, 1);
        // Overlaps are allowed: the read started before the invalidation returned ...
        let mut h2 = h.clone();
        h2.records[2].invoked = 25;
        assert!(check_p1(&h2).0.is_empty());
        // ... the write completed after the invalidation started ...
        let mut h3 = h.clone();
        h3.records[0].completed = 21;
        assert!(check_p1(&h3).0.is_empty());
        // ... the invalidation failed, or the write failed (unknown completion).
        let mut h4 = h.clone();
        h4.records[1].result = Err("NotDurable".into());
        assert!(check_p1(&h4).0.is_empty());
        let mut h5 = h;
        h5.records[0].result = Err("timeout".into());
        assert!(check_p1(&h5).0.is_empty());
    }

    /// A loaded value is as old as its loader's call: a reload that called its loader before an
    /// invalidation of a tag it kept was invoked, read (from the cache or by joining its load)
    /// after that invalidation returned, is a violation, however late the reload completed. A
    /// key invalidation keeps the completion rule.
    #[test]
    fn a_loaded_value_is_as_old_as_its_loader_call() {
        let refresh = Op::Refresh { key: "k".into(), value: "v1".into() };
        let kept = Ret::Refreshed { value: "v1".into(), tags: vec!["a".into()] };
        let inv = Op::InvalidateTags { tags: vec!["a".into()] };
        let joined = Op::Refresh { key: "k".into(), value: "v2".into() };
        let mut w = rec(0, 0, 50, refresh, Ok(kept));
        w.loaded = Some(5);
        let h = History {
            records: vec![
                w,
                rec(1, 10, 20, inv, Ok(Ret::Count(1))),
                rec(2, 30, 51, joined, Ok(Ret::Refreshed { value: "v1".into(), tags: vec![] })),
                rec(3, 60, 70, Op::Get { key: "k".into() }, Ok(Ret::Read(Some("v1".into())))),
            ],
        };
        let (v, _) = check_p1(&h);
        assert_eq!(v.len(), 2, "the joiner and the later read: {v:#?}");
        // Loaded after the invalidation was invoked: allowed.
        let mut h2 = h.clone();
        h2.records[0].loaded = Some(15);
        assert!(check_p1(&h2).0.is_empty());
        // An invalidation of the key: the completion rule (the reload completed after it began).
        let mut h3 = h;
        h3.records[1].op = Op::Invalidate { key: "k".into() };
        assert!(check_p1(&h3).0.is_empty());
    }

    #[test]
    fn invalidate_of_the_key_counts_and_reads_must_match_writes() {
        let h = History {
            records: vec![
                rec(0, 0, 10, set("k", "v1", &[]), Ok(Ret::Done)),
                rec(1, 20, 30, Op::Invalidate { key: "k".into() }, Ok(Ret::Existed(true))),
                rec(2, 40, 50, Op::Get { key: "k".into() }, Ok(Ret::Read(Some("v1".into())))),
                rec(3, 40, 50, Op::Get { key: "j".into() }, Ok(Ret::Read(Some("v1".into())))),
                rec(4, 40, 50, Op::Get { key: "k".into() }, Ok(Ret::Read(Some("zz".into())))),
                rec(
                    5,
                    40,
                    50,
                    Op::GetEntry { key: "k".into() },
                    Ok(Ret::Entry(Some(("v1".into(), Some(vec!["x".into()]))))),
                ),
            ],
        };
        let (v, _) = check_p1(&h);
        let props: Vec<&str> = v.iter().map(|v| v.property).collect();
        assert_eq!(props, ["P1", "P1", "P1", "P4", "P1"], "{v:#?}");
    }

    /// The in-run count bound: keys written with the tag since the last invalidation of it
    /// that returned before; a failed invalidation (it may list members again) widens it.
    #[test]
    fn in_run_counts_are_bounded_by_what_could_be_deleted() {
        let inv = |tags: &[&str]| Op::InvalidateTags { tags: tags.iter().map(|t| (*t).to_owned()).collect() };
        let mut h = History {
            records: vec![
                rec(0, 0, 10, set("k1", "v1", &["a"]), Ok(Ret::Done)),
                rec(1, 0, 10, set("k2", "v2", &["a", "b"]), Ok(Ret::Done)),
                rec(2, 20, 30, inv(&["a"]), Ok(Ret::Count(2))),
                rec(3, 40, 50, set("k3", "v3", &["a"]), Ok(Ret::Done)),
                rec(4, 60, 70, inv(&["a"]), Ok(Ret::Count(1))),
                rec(5, 80, 90, inv(&["a", "b"]), Ok(Ret::Count(1))),
            ],
        };
        let (v, fig) = check_counts(&h);
        assert!(v.is_empty(), "{v:#?}");
        assert_eq!(fig, CountFigures { checked: 3, narrowed: 2 });
        // Counting k1 again after the first invalidation erased it: caught.
        h.records[4].result = Ok(Ret::Count(2));
        let (v, _) = check_counts(&h);
        assert_eq!(v.len(), 1, "{v:#?}");
        // A write that failed may have landed any time after its invocation.
        h.records[0].result = Err("timeout".into());
        assert!(check_counts(&h).0.is_empty());
        h.records[0].result = Ok(Ret::Done);
        // A failed invalidation of the tag before it may have listed k1 again.
        h.records.insert(3, rec(3, 35, 45, inv(&["a"]), Err("cleanup failed".into())));
        assert!(check_counts(&h).0.is_empty());
    }

    /// `keys()` names only keys some write wrote before it completed.
    #[test]
    fn keys_yields_only_written_keys() {
        let h = History {
            records: vec![
                rec(0, 0, 10, set("k", "v1", &[]), Ok(Ret::Done)),
                rec(1, 20, 30, Op::Keys, Ok(Ret::Keys(vec!["k".into()]))),
                rec(2, 40, 50, Op::Keys, Ok(Ret::Keys(vec!["k".into(), "j".into()]))),
            ],
        };
        let (v, _) = check_p1(&h);
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(v[0].what.contains("yielded j"), "{v:#?}");
    }

    /// A value whose write does not report its tags (`bulk_refresh`) is held to the tags a
    /// `get_entry` reported for it; an entry yielded by `entries()` is a read like any other.
    #[test]
    fn unknown_tags_are_taken_from_get_entry_reports() {
        let mut refresh =
            rec(0, 0, 10, Op::BulkRefresh { items: vec![("k".into(), "v1".into())] }, Ok(Ret::Count(1)));
        refresh.loaded = Some(5);
        let h = History {
            records: vec![
                refresh,
                rec(
                    1,
                    12,
                    14,
                    Op::GetEntry { key: "k".into() },
                    Ok(Ret::Entry(Some(("v1".into(), Some(vec!["a".into()]))))),
                ),
                rec(2, 20, 30, Op::InvalidateTags { tags: vec!["a".into()] }, Ok(Ret::Count(1))),
                rec(3, 40, 50, Op::Entries, Ok(Ret::Found(vec![("k".into(), "v1".into())]))),
            ],
        };
        let (v, _) = check_p1(&h);
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(v[0].ops[2].op, Op::Entries);
        // Without the report, nothing is known to cover it.
        let mut h2 = h;
        h2.records.remove(1);
        assert!(check_p1(&h2).0.is_empty());
    }
}
