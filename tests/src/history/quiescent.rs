//! Guarantees 2–5, checked once the workers have stopped (and the cluster is healthy again).
//!
//! The steps run in this order, each recorded into the history (so guarantee 1 is checked on
//! them too):
//!
//! 0. With short TTLs in the workload ([`Spec::ttl`]): wait until every short-lived entry
//!    expired, so that none expires under the exact checks.
//! 1. **P3 (exact counts)**: `get_entry` of every key gives the fresh entries and their values;
//!    each value names its write, hence its tags. Then each tag is invalidated alone, in turn:
//!    the count returned must equal the number of keys whose fresh entry carries the tag and was
//!    not already removed by the tags invalidated before it.
//! 2. **P2 (no orphan)**: every tag has now been invalidated; every key is read again. A hit
//!    must be a value written **without** tags (and the same untagged value `get_entry` saw: a
//!    tag invalidation must not remove an untagged entry, guarantee 4).
//! 3. **P4 (replace)**: on a key of its own, set with tag `a` then `b`: invalidating `a` counts 0
//!    and leaves it; invalidating `b` counts 1 and removes it. Set with `a`, then without tags:
//!    invalidating `a` leaves it.
//! 4. **P5 (bounded metadata)**, through raw commands on the owning node:
//!    - entries with a 50 ms TTL are listed in their tag (next to a long-lived member that keeps
//!      the tag key alive); once they expired, the next tagged write prunes them (the tag lists
//!      only the two long-lived members: its `ZCARD` minus the token member is 2), and the tag
//!      key lives at least as long as its members;
//!    - a tag whose members all expired disappears by itself;
//!    - `invalidate(k)` removes `k` from every tag it had;
//!    - `invalidate_all` leaves no tag key (and no data key) of the namespace (`SCAN` of every
//!      master).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use slotcache_core::Value;
use slotcache_core::cache::Entry;

use super::check::writes_by_value;
use super::workload::Spec;
use super::{Clock, History, Op, Record, Recorder, Ret, Subject, Violation};
use crate::conformance::Rt;
use crate::{Cluster, resp};

/// The longest TTL the workers' `set_expires_after` sets.
const EXPIRE_MAX: Duration = Duration::from_millis(super::workload::EXPIRE_MAX_MS);

/// The worker id of the quiescent checks' own operations.
pub const CHECKER: usize = 1000;

/// What the quiescent checks found.
#[derive(Debug, Default)]
pub struct Report {
    /// The operations they ran (merge them into the history).
    pub records: Vec<Record>,
    /// Broken guarantees.
    pub violations: Vec<Violation>,
    /// Checks that could not be made (an operation or a raw command failed): a run with any is
    /// not a pass.
    pub unchecked: Vec<String>,
    /// Tag invalidations whose count was compared (P3 and P4).
    pub counts_checked: usize,
    /// P5 conditions checked.
    pub metadata_checked: usize,
}

struct Ctx<'a> {
    rt: Rt,
    subject: &'a dyn Subject,
    cluster: &'a Cluster,
    rec: Recorder,
    seq: u64,
    report: Report,
}

impl Ctx<'_> {
    fn value(&mut self) -> String {
        self.seq += 1;
        format!("c.{}", self.seq)
    }

    fn violation(&mut self, property: &'static str, what: String, ops: Vec<Record>) {
        self.report.violations.push(Violation { property, what, ops });
    }

    fn last(&self) -> Record {
        self.rec.last().cloned().expect("an operation was recorded")
    }

    /// A read, retried up to 5 times (100 ms apart) on errors; every attempt is recorded.
    async fn read(&mut self, op: Op) -> Option<(Ret, Record)> {
        for attempt in 0..5 {
            if attempt > 0 {
                self.rt.sleep(Duration::from_millis(100)).await;
            }
            let s = self.subject;
            let r = match &op {
                Op::Get { key } => {
                    self.rec.record(op.clone(), async { s.get(key).await.map(Ret::Read) }).await
                }
                Op::GetEntry { key } => {
                    self.rec.record(op.clone(), async { s.get_entry(key).await.map(Ret::Entry) }).await
                }
                other => unreachable!("not a read: {other}"),
            };
            if let Ok(ret) = r {
                return Some((ret, self.last()));
            }
        }
        self.report.unchecked.push(format!("{op} failed 5 times: {}", self.last()));
        None
    }

    /// One write or invalidation (not retried: a retry could change what is checked).
    async fn act(&mut self, op: Op) -> Option<Ret> {
        let s = self.subject;
        let r = match &op {
            Op::Set { key, value, tags } => {
                self.rec
                    .record(op.clone(), async { s.set(key, value, tags, None).await.map(|()| Ret::Done) })
                    .await
            }
            Op::Invalidate { key } => {
                self.rec.record(op.clone(), async { s.invalidate(key).await.map(Ret::Existed) }).await
            }
            Op::InvalidateTags { tags } => {
                self.rec.record(op.clone(), async { s.invalidate_by_tags(tags).await.map(Ret::Count) }).await
            }
            other => unreachable!("not an action: {other}"),
        };
        match r {
            Ok(ret) => Some(ret),
            Err(_) => {
                let what = format!("{op} failed: {}", self.last());
                self.report.unchecked.push(what);
                None
            }
        }
    }

    async fn set(&mut self, key: &str, tags: &[&str]) -> Option<String> {
        let value = self.value();
        let op = Op::Set {
            key: key.into(),
            value: value.clone(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };
        self.act(op).await.map(|_| value)
    }

    async fn invalidate_tag(&mut self, tag: &str) -> Option<(u64, Record)> {
        match self.act(Op::InvalidateTags { tags: vec![tag.to_owned()] }).await {
            Some(Ret::Count(n)) => Some((n, self.last())),
            _ => None,
        }
    }

    async fn get(&mut self, key: &str) -> Option<(Option<String>, Record)> {
        match self.read(Op::Get { key: key.into() }).await {
            Some((Ret::Read(v), r)) => Some((v, r)),
            _ => None,
        }
    }

    fn raw(&mut self, what: &str, r: Result<Value, String>) -> Option<Value> {
        match r {
            Ok(v) if resp::error_text(&v).is_none() => Some(v),
            Ok(v) => {
                self.report.unchecked.push(format!("{what}: {}", resp::display(&v)));
                None
            }
            Err(e) => {
                self.report.unchecked.push(format!("{what}: {e}"));
                None
            }
        }
    }

    /// The data keys a tag lists (its token member left out), by `TYPE`: a sorted set
    /// (slotcache) or a set (the reference).
    fn tag_members(&mut self, tag: &str) -> Option<BTreeSet<Vec<u8>>> {
        let key = self.subject.tag_key(tag);
        let ty = self.raw("TYPE", owner_cmd(self.cluster, &key, &[b"TYPE"]))?;
        let args: &[&[u8]] = match ty.as_str() {
            Some("none") => return Some(BTreeSet::new()),
            Some("zset") => &[b"ZRANGE", b"0", b"-1"],
            Some("set") => &[b"SMEMBERS"],
            other => {
                self.report.unchecked.push(format!("tag {tag} has type {other:?}"));
                return None;
            }
        };
        let v = self.raw("tag members", owner_cmd(self.cluster, &key, args))?;
        Some(
            v.as_array()
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m.as_bytes().map(|b| b.to_vec()))
                .filter(|m| m.first() != Some(&0))
                .collect(),
        )
    }

    /// The keys (of `keys`) that hold a stored value, fresh or not (raw `EXISTS`).
    fn stored(&mut self, keys: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for k in keys {
            if self.key_int(b"EXISTS", &self.subject.data_key(k))? == 1 {
                out.insert(k.clone());
            }
        }
        Some(out)
    }

    /// What is stored under `key`: its envelope's tags and tokens next to each tag's current
    /// token (raw `GET` and `ZRANGEBYSCORE tag -1 -1`), to explain a count.
    fn describe_stored(&self, key: &str) -> String {
        let fk = self.subject.data_key(key);
        let Ok(v) = owner_cmd(self.cluster, &fk, &[b"GET"]) else { return format!("{key}: GET failed") };
        let Some(bytes) = v.as_bytes() else { return format!("{key}: nothing stored") };
        let Ok(entry) = Entry::decode(bytes) else { return format!("{key}: undecodable") };
        let short = |b: &[u8]| b.iter().take(4).map(|x| format!("{x:02x}")).collect::<String>();
        let mut parts = Vec::new();
        for t in &entry.tags {
            let tag = String::from_utf8_lossy(&t.tag).into_owned();
            let current =
                owner_cmd(self.cluster, &self.subject.tag_key(&tag), &[b"ZRANGEBYSCORE", b"-1", b"-1"])
                    .ok()
                    .and_then(|v| v.as_array().and_then(|a| a.first().and_then(|m| m.as_bytes().cloned())))
                    .map_or_else(|| "none".to_owned(), |m| short(m.get(1..).unwrap_or_default()));
            parts.push(format!("{tag}: stored {} current {current}", short(&t.token)));
        }
        format!("{key} [{}]", parts.join(", "))
    }

    fn key_int(&mut self, cmd: &[u8], key: &[u8]) -> Option<i64> {
        let v = self.raw(&String::from_utf8_lossy(cmd), owner_cmd(self.cluster, key, &[cmd]))?;
        v.as_int()
    }
}

/// Sends `args[0] key args[1..]` to the master owning `key`.
fn owner_cmd(c: &Cluster, key: &[u8], args: &[&[u8]]) -> Result<Value, String> {
    let owner = c.owner_of_key(key).map_err(|e| e.to_string())?;
    let mut full: Vec<&[u8]> = vec![args[0], key];
    full.extend_from_slice(&args[1..]);
    c.cmd(owner, full).map_err(|e| e.to_string())
}

/// Every key matching `pattern` on every master (`SCAN ... COUNT 1000`).
///
/// # Errors
/// A node's error.
pub fn scan_masters(c: &Cluster, pattern: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for m in c.masters().map_err(|e| e.to_string())? {
        let mut conn = c.conn(m).map_err(|e| e.to_string())?;
        let mut cursor = b"0".to_vec();
        for _ in 0..100_000 {
            let v = conn
                .cmd([b"SCAN".as_slice(), &cursor, b"MATCH", pattern, b"COUNT", b"1000"])
                .map_err(|e| e.to_string())?;
            let parts = v.as_array().ok_or_else(|| format!("SCAN: {}", resp::display(&v)))?;
            let [next, keys] = parts else { return Err(format!("SCAN: {}", resp::display(&v))) };
            out.extend(
                keys.as_array().unwrap_or_default().iter().filter_map(|k| k.as_bytes().map(|b| b.to_vec())),
            );
            cursor = next.as_bytes().map(|b| b.to_vec()).unwrap_or_default();
            if cursor == b"0" {
                break;
            }
        }
    }
    Ok(out)
}

fn show(keys: &BTreeSet<Vec<u8>>) -> Vec<String> {
    keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect()
}

/// Runs the quiescent checks on `subject` after a workload whose history is `workload`, on
/// runtime `rt` (from inside its `block_on`).
pub async fn run(
    rt: Rt,
    subject: &dyn Subject,
    cluster: &Cluster,
    clock: Clock,
    spec: &Spec,
    workload: &History,
) -> Report {
    let mut cx =
        Ctx { rt, subject, cluster, rec: Recorder::new(clock, CHECKER), seq: 0, report: Report::default() };
    // Entries with a short TTL: the workers' (`spec.ttl`), or set by `set_expires_after`.
    let short = spec.ttl.into_iter().chain(subject.full_mix().then_some(EXPIRE_MAX)).max();
    if let Some(ttl) = short
        && !short_lived_expired(&cx, ttl).await
    {
        cx.report
            .unchecked
            .push(format!("entries with a TTL of at most {ttl:?} still there {ttl:?} + 10 s later"));
    }
    counts_and_orphans(&mut cx, spec, workload).await;
    replace(&mut cx).await;
    metadata(&mut cx).await;
    cx.report.records = std::mem::replace(&mut cx.rec, Recorder::new(clock, CHECKER)).into_records();
    cx.report
}

/// Waits (at most `ttl` + 10 s) until no data key of the namespace has `ttl` or less to live:
/// the workers' short-lived entries expired, so none expires under the exact checks.
async fn short_lived_expired(cx: &Ctx<'_>, ttl: Duration) -> bool {
    let (data, _) = cx.subject.scan_patterns();
    let cluster = cx.cluster;
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    eventually(cx.rt, ttl + Duration::from_secs(10), async || {
        let Ok(keys) = scan_masters(cluster, &data) else { return false };
        keys.iter().all(|k| {
            owner_cmd(cluster, k, &[b"PTTL"]).ok().and_then(|v| v.as_int()).is_some_and(|t| t < 0 || t > ms)
        })
    })
    .await
}

/// The tags the write of value `v` stored, when the history knows them: a write's own, and
/// those a `compute` or a reload reported keeping ([`Record::written_tags`]; not the
/// operation's arguments, which name no tags for them: taking those made every `compute` and
/// `refresh` that kept tags look untagged, and their entries' deletion by a tag invalidation
/// look like P3 and P4 violations); none for a load on a miss. `None` when unknown (a
/// `bulk_refresh`, a `compute` or reload that failed) or never written.
#[must_use]
pub fn stored_tags(workload: &History, writes: &HashMap<&str, usize>, v: &str) -> Option<BTreeSet<String>> {
    let w = &workload.records[*writes.get(v)?];
    (w.tags_known() || matches!(w.op, Op::Load { .. }))
        .then(|| w.written_tags_of(v).iter().cloned().collect())
}

/// P3 then P2 on the workload's keys.
async fn counts_and_orphans(cx: &mut Ctx<'_>, spec: &Spec, workload: &History) {
    let writes = writes_by_value(workload);
    let tags_of = |v: &str| stored_tags(workload, &writes, v);
    // key -> (value, tags of its write, the get_entry record)
    let mut live: BTreeMap<String, (String, BTreeSet<String>, Record)> = BTreeMap::new();
    let mut from_reports = 0;
    for key in spec.key_names() {
        let Some((ret, r)) = cx.read(Op::GetEntry { key: key.clone() }).await else { return };
        let Some(v) = ret.value_read() else { continue };
        // A value nobody wrote is reported by the P1 check; it has no tags to count. A value
        // whose write's tags are unknown: those `get_entry` reports.
        let tags = tags_of(v).unwrap_or_else(|| {
            from_reports += 1;
            match &ret {
                Ret::Entry(Some((_, Some(tags)))) => tags.iter().cloned().collect(),
                _ => BTreeSet::new(),
            }
        });
        live.insert(key, (v.to_owned(), tags, r));
    }
    if from_reports > 0 {
        eprintln!(
            "[figure] tags_history P3: {from_reports} fresh entries whose tags are taken from get_entry (write's tags unknown)"
        );
    }
    // Keys holding a stored value, fresh or not: to name what each invalidation deleted.
    let Some(mut stored) = cx.stored(&spec.key_names().into_iter().collect()) else { return };
    // What each stored entry carries (its envelope's tags and tokens, each tag's current token),
    // to explain a count.
    let described: BTreeMap<String, String> =
        stored.iter().map(|k| (k.clone(), cx.describe_stored(k))).collect();
    for tag in spec.tag_names() {
        let carrying: Vec<String> =
            live.iter().filter(|(_, (_, tags, _))| tags.contains(&tag)).map(|(k, _)| k.clone()).collect();
        // The documented exception to exact counts (docs/consistency.md, guarantee 3): a write
        // racing the removal of its key from this tag (by `invalidate` or by an invalidation of
        // another of its tags) can lose its membership. It stays correct (this invalidation
        // makes it a miss) but is neither deleted nor counted, so only members are expected.
        let tag_key = cx.subject.tag_key(&tag);
        let is_member = |k: &String| {
            owner_cmd(cx.cluster, &tag_key, &[b"ZSCORE", &cx.subject.data_key(k)]).is_ok_and(|v| !v.is_nil())
        };
        let (expected, lost): (Vec<String>, Vec<String>) = carrying.iter().cloned().partition(is_member);
        if !lost.is_empty() {
            eprintln!(
                "[figure] tags_history P3: fresh entries carrying {tag} without its membership (documented exception): {lost:?}"
            );
        }
        let Some((n, inv)) = cx.invalidate_tag(&tag).await else { return };
        cx.report.counts_checked += 1;
        let Some(after) = cx.stored(&stored) else { return };
        let deleted: Vec<&String> = stored.difference(&after).collect();
        let not_fresh: Vec<&str> = deleted
            .iter()
            .filter(|k| !expected.contains(k))
            .map(|k| described.get(*k).map_or(k.as_str(), String::as_str))
            .collect();
        let mut ops: Vec<Record> = expected.iter().map(|k| live[k].2.clone()).collect();
        // The fresh entries it deleted although the model says they do not carry the tag: their
        // read and the write of their value, in full.
        for k in deleted.iter().filter(|k| !expected.contains(k)) {
            if let Some((_, _, seen)) = live.get(*k) {
                ops.push(seen.clone());
                ops.extend(last_writes(workload, k));
            }
        }
        if n != expected.len() as u64 {
            ops.push(inv);
            cx.violation(
                "P3",
                format!(
                    "invalidate_by_tags([{tag}]) returned {n}; the fresh entries carrying {tag} were {expected:?}; \
                     it deleted {deleted:?}, of which not expected (tag: stored token, current token): {not_fresh:?}"
                ),
                ops,
            );
        }
        for k in carrying.iter() {
            live.remove(k);
        }
        stored = after;
    }
    // Every tag is invalidated: only untagged values may remain, exactly those seen above.
    for key in spec.key_names() {
        let Some((v, r)) = cx.get(&key).await else { return };
        let before = live.get(&key);
        match (v, before) {
            (Some(v), before)
                if tags_of(&v)
                    .or_else(|| before.filter(|b| b.0 == v).map(|b| b.1.clone()))
                    .is_some_and(|t| !t.is_empty()) =>
            {
                let w = writes.get(v.as_str()).map(|&i| workload.records[i].clone());
                cx.violation(
                    "P2",
                    format!("orphan: {key} = {v} was written with tags, and survived the invalidation of all of them"),
                    w.into_iter().chain([r]).collect(),
                );
            }
            (Some(v), Some((was, _, seen))) if v != *was => {
                let seen = seen.clone();
                cx.violation(
                    "P2",
                    format!("{key} changed from {was} to {v} with no writer running"),
                    vec![seen, r],
                );
            }
            (Some(v), None) => {
                cx.violation("P2", format!("{key} = {v} appeared with no writer running"), vec![r]);
            }
            (None, Some((was, _, seen))) => {
                let seen = seen.clone();
                cx.violation(
                    "P4",
                    format!("{key} = {was} was written without tags, and a tag invalidation removed it"),
                    last_writes(workload, &key).into_iter().chain([seen, r]).collect(),
                );
            }
            _ => {}
        }
    }
}

/// The last writes (and key invalidations) of `key` in the workload, oldest first: the record
/// that explains what its entry carries.
fn last_writes(workload: &History, key: &str) -> Vec<Record> {
    let mut out: Vec<Record> = workload
        .records
        .iter()
        .rev()
        .filter(|r| {
            r.op.writes().iter().any(|(k, _)| *k == key)
                || matches!(&r.op, Op::Invalidate { key: k } if k == key)
                || matches!(r.op, Op::InvalidateAll)
        })
        .take(6)
        .cloned()
        .collect();
    out.reverse();
    out
}

/// P4 on a key of its own.
async fn replace(cx: &mut Ctx<'_>) {
    let key = "p4";
    let (Some(_), Some(v2)) = (cx.set(key, &["p4a"]).await, cx.set(key, &["p4b"]).await) else { return };
    let first = cx.last();
    let Some((n, inv)) = cx.invalidate_tag("p4a").await else { return };
    cx.report.counts_checked += 1;
    let Some((got, read)) = cx.get(key).await else { return };
    if n != 0 || got.as_deref() != Some(v2.as_str()) {
        cx.violation(
            "P4",
            format!(
                "set with [p4a] then [p4b]: invalidating p4a returned {n} and left {got:?} (want 0 and {v2})"
            ),
            vec![first, inv, read],
        );
    }
    let Some((n, inv)) = cx.invalidate_tag("p4b").await else { return };
    cx.report.counts_checked += 1;
    let Some((got, read)) = cx.get(key).await else { return };
    if n != 1 || got.is_some() {
        cx.violation(
            "P4",
            format!("invalidating p4b (the current tag) returned {n} and left {got:?} (want 1 and nothing)"),
            vec![inv, read],
        );
    }
    let (Some(_), Some(v4)) = (cx.set(key, &["p4a"]).await, cx.set(key, &[]).await) else { return };
    let untagged = cx.last();
    let Some((n, inv)) = cx.invalidate_tag("p4a").await else { return };
    cx.report.counts_checked += 1;
    let Some((got, read)) = cx.get(key).await else { return };
    if n != 0 || got.as_deref() != Some(v4.as_str()) {
        cx.violation(
            "P4",
            format!("set with [p4a] then untagged: invalidating p4a returned {n} and left {got:?} (want 0 and {v4})"),
            vec![untagged, inv, read],
        );
    }
}

/// Polls `check` every 20 ms for at most `bound`; whether it held.
async fn eventually(rt: Rt, bound: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let end = Instant::now() + bound;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        rt.sleep(Duration::from_millis(20)).await;
    }
}

/// P5 through raw commands.
async fn metadata(cx: &mut Ctx<'_>) {
    let short = Duration::from_millis(50);
    let s = cx.subject;

    // Expired members are pruned by the next write to the tag. A long-lived member keeps the
    // tag key alive (otherwise the whole key expires with its short members and nothing is
    // left to prune).
    let Some(_) = cx.set("p5long", &["p5"]).await else { return };
    let keys: Vec<String> = (0..8).map(|i| format!("p5e{i}")).collect();
    let tag = vec!["p5".to_owned()];
    for k in &keys {
        let v = cx.value();
        if let Err(e) = s.set(k, &v, &tag, Some(short)).await {
            cx.report.unchecked.push(format!("set_with_ttl({k}, 50 ms, [p5]): {e}"));
            return;
        }
    }
    let Some(before) = cx.tag_members("p5") else { return };
    let wanted: BTreeSet<Vec<u8>> =
        keys.iter().chain([&"p5long".to_owned()]).map(|k| s.data_key(k)).collect();
    cx.report.metadata_checked += 1;
    if before != wanted {
        cx.violation("P5", format!("tag p5 lists {:?}, want {:?}", show(&before), show(&wanted)), vec![]);
    }
    let expired = eventually(cx.rt, Duration::from_secs(3), async || {
        for k in &keys {
            if !matches!(s.get(k).await, Ok(None)) {
                return false;
            }
        }
        true
    })
    .await;
    if !expired {
        cx.report.unchecked.push("entries with a 50 ms TTL still readable after 3 s".into());
        return;
    }
    let Some(_) = cx.set("p5keep", &["p5"]).await else { return };
    let write = cx.last();
    let Some(after) = cx.tag_members("p5") else { return };
    cx.report.metadata_checked += 1;
    let keep: BTreeSet<Vec<u8>> = [s.data_key("p5long"), s.data_key("p5keep")].into();
    if after != keep {
        cx.violation(
            "P5",
            format!("after the entries expired and a new write, tag p5 still lists {:?}", show(&after)),
            vec![write.clone()],
        );
    }
    let tag_key = s.tag_key("p5");
    let (Some(tag_ttl), Some(member_ttl)) =
        (cx.key_int(b"PTTL", &tag_key), cx.key_int(b"PTTL", &s.data_key("p5keep")))
    else {
        return;
    };
    cx.report.metadata_checked += 1;
    if tag_ttl != -1 && tag_ttl + 1000 < member_ttl {
        cx.violation(
            "P5",
            format!("tag key p5 expires in {tag_ttl} ms, before its member p5keep ({member_ttl} ms)"),
            vec![write],
        );
    }

    // A tag whose members all expired goes away by itself.
    let tag = vec!["p5x".to_owned()];
    for k in ["p5x0", "p5x1"] {
        let v = cx.value();
        if let Err(e) = s.set(k, &v, &tag, Some(short)).await {
            cx.report.unchecked.push(format!("set_with_ttl({k}, 50 ms, [p5x]): {e}"));
            return;
        }
    }
    let key = s.tag_key("p5x");
    let cluster = cx.cluster;
    let gone = eventually(cx.rt, Duration::from_millis(1500), async || {
        owner_cmd(cluster, &key, &[b"EXISTS"]).ok().and_then(|v| v.as_int()) == Some(0)
    })
    .await;
    cx.report.metadata_checked += 1;
    if !gone {
        let members = cx.tag_members("p5x").map(|m| show(&m)).unwrap_or_default();
        cx.violation(
            "P5",
            format!("tag p5x outlived all its members by 1.5 s; it lists {members:?}"),
            vec![],
        );
    }

    // invalidate(k) removes k from its tags.
    let Some(_) = cx.set("p5inv", &["p5a", "p5b"]).await else { return };
    let write = cx.last();
    let member = s.data_key("p5inv");
    for t in ["p5a", "p5b"] {
        let Some(m) = cx.tag_members(t) else { return };
        cx.report.metadata_checked += 1;
        if !m.contains(&member) {
            cx.violation(
                "P5",
                format!("tag {t} does not list p5inv right after it was written with it"),
                vec![write.clone()],
            );
        }
    }
    let Some(_) = cx.act(Op::Invalidate { key: "p5inv".into() }).await else { return };
    let inv = cx.last();
    for t in ["p5a", "p5b"] {
        let Some(m) = cx.tag_members(t) else { return };
        cx.report.metadata_checked += 1;
        if m.contains(&member) {
            cx.violation(
                "P5",
                format!("tag {t} still lists p5inv after invalidate(p5inv)"),
                vec![write.clone(), inv.clone()],
            );
        }
    }

    // invalidate_all leaves no tag key and no data key.
    if let Err(e) = s.invalidate_all().await {
        cx.report.unchecked.push(format!("invalidate_all: {e}"));
        return;
    }
    let (data, tags) = s.scan_patterns();
    for (what, pattern) in [("tag", tags), ("data", data)] {
        match scan_masters(cx.cluster, &pattern) {
            Ok(left) => {
                cx.report.metadata_checked += 1;
                if !left.is_empty() {
                    let left: BTreeSet<Vec<u8>> = left.into_iter().collect();
                    cx.violation(
                        "P5",
                        format!("invalidate_all left {} {what} keys: {:?}", left.len(), show(&left)),
                        vec![],
                    );
                }
            }
            Err(e) => cx.report.unchecked.push(format!("SCAN {}: {e}", String::from_utf8_lossy(&pattern))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: usize, op: Op, result: Result<Ret, String>) -> Record {
        Record {
            id,
            worker: 0,
            invoked: id as u64 * 10,
            completed: id as u64 * 10 + 5,
            loaded: None,
            op,
            result,
        }
    }

    /// The model of what an entry carries: a `compute` and a `refresh` store the tags they
    /// report keeping, not the (absent) tags of their arguments; a load on a miss stores none;
    /// a `bulk_refresh`'s and a failed `compute`'s tags are unknown.
    #[test]
    fn a_compute_or_refresh_stores_the_tags_it_kept() {
        let t = |s: &str| vec![s.to_owned()];
        let h = History {
            records: vec![
                rec(0, Op::Set { key: "k".into(), value: "v0".into(), tags: t("a") }, Ok(Ret::Done)),
                rec(1, Op::Compute { key: "k".into(), value: "v1".into() }, Ok(Ret::Computed(t("a")))),
                rec(
                    2,
                    Op::Refresh { key: "k".into(), value: "v2".into() },
                    Ok(Ret::Refreshed { value: "v2".into(), tags: t("a") }),
                ),
                rec(3, Op::Load { key: "k".into(), value: "v3".into() }, Ok(Ret::Read(Some("v3".into())))),
                rec(4, Op::BulkRefresh { items: vec![("k".into(), "v4".into())] }, Ok(Ret::Count(1))),
                rec(5, Op::Compute { key: "k".into(), value: "v5".into() }, Err("timeout".into())),
                rec(6, Op::Refresh { key: "k".into(), value: "v6".into() }, Ok(Ret::Reloaded("v6".into()))),
            ],
        };
        let writes = writes_by_value(&h);
        let a: BTreeSet<String> = ["a".to_owned()].into();
        assert_eq!(stored_tags(&h, &writes, "v0"), Some(a.clone()));
        assert_eq!(stored_tags(&h, &writes, "v1"), Some(a.clone()), "the compute kept a");
        assert_eq!(stored_tags(&h, &writes, "v2"), Some(a), "the refresh kept a");
        assert_eq!(stored_tags(&h, &writes, "v3"), Some(BTreeSet::new()), "a load on a miss: none");
        assert_eq!(stored_tags(&h, &writes, "v4"), None, "bulk_refresh: unknown");
        assert_eq!(stored_tags(&h, &writes, "v5"), None, "a failed compute: unknown");
        assert_eq!(stored_tags(&h, &writes, "v6"), None, "a refresh through the API: unknown");
        assert_eq!(stored_tags(&h, &writes, "zz"), None);
    }
}
