//! The history's operations ([`crate::history::Op`]) as the core's machines, for one namespace
//! whose values are the history's strings stored as plain envelopes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_core::cache::Entry;
use slotcache_core::cache::op::Deadline;
use slotcache_core::cache::op::Scope;
use slotcache_core::cache::op::invalidate::InvalidateKey;
use slotcache_core::cache::op::invalidate_tags::{InvalidateTags, Variant};
use slotcache_core::cache::op::read::{ReadEntries, Reads};
use slotcache_core::cache::op::scope::distinct_tags;
use slotcache_core::cache::op::write::{Write, WriteEntries};
use slotcache_core::keys::EncodedKey;

use slotcache_core::cache::op::compute::{ComputeEntry, Computed, Decision};
use slotcache_core::cache::op::expiry::ExpireEntry;
use slotcache_core::cache::op::load::{self, Load, LoadConfig, LoadKind, LoadResult, Loaded, Prepared};
use slotcache_core::cache::op::scan::ScanAll;

use crate::history::{Op, Ret};

use super::runner::{Answering, Mapped, SimOp};

/// Builds the machine of each operation.
#[derive(Clone, Debug)]
pub struct CacheOps {
    /// The namespace.
    pub scope: Arc<Scope>,
    /// Every operation's time budget.
    pub budget: Duration,
    /// TTL of every write (`None`: no expiry).
    pub ttl_ms: Option<u64>,
    /// The `invalidate_by_tags` bug variant (test-only).
    pub invalidate_tags_variant: Variant,
    /// The reload bug variant (test-only).
    pub load_variant: load::Variant,
    /// Loads take the cluster lock for at most this long (`None`: no lock).
    pub lock_hold: Option<Duration>,
}

impl CacheOps {
    /// Operations on `scope` with a 10 s budget, no TTL, no bug.
    #[must_use]
    pub const fn new(scope: Arc<Scope>) -> Self {
        Self {
            scope,
            budget: Duration::from_secs(10),
            ttl_ms: None,
            invalidate_tags_variant: Variant::Correct,
            load_variant: load::Variant::Correct,
            lock_hold: None,
        }
    }

    /// The data key of user key `key`.
    #[must_use]
    pub fn key(&self, key: &str) -> EncodedKey {
        self.scope.ns.data_key(key.as_bytes())
    }

    fn write(&self, key: &str, value: &str, tags: &[String]) -> Write {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        Write {
            key: self.key(key),
            entry: Entry::plain(Bytes::copy_from_slice(value.as_bytes())),
            ttl_ms: self.ttl_ms,
            tags: distinct_tags(&tags),
        }
    }

    /// The machine that runs `op`, started at `now`; `None` for an operation this simulation
    /// has no machine for yet.
    #[must_use]
    pub fn machine(&self, op: &Op, now: Instant) -> Option<Box<dyn SimOp>> {
        let d = |name| Deadline::new(now, name, self.budget);
        let scope = self.scope.clone();
        Some(match op {
            Op::Set { key, value, tags } => {
                let w = self.write(key, value, tags);
                let m = WriteEntries::machine(scope, vec![w], d("set")).ok()?;
                Box::new(Mapped::new(m, |()| Ret::Done))
            }
            Op::BulkSet { items, tags } => {
                let ws = items.iter().map(|(k, v)| self.write(k, v, tags)).collect();
                let m = WriteEntries::machine(scope, ws, d("bulk_set")).ok()?;
                Box::new(Mapped::new(m, |()| Ret::Done))
            }
            Op::Invalidate { key } => {
                let m = InvalidateKey::machine(scope, self.key(key), d("invalidate"));
                Box::new(Mapped::new(m, Ret::Existed))
            }
            Op::InvalidateTags { tags } => {
                let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                let m = InvalidateTags::machine_with(
                    scope,
                    distinct_tags(&tags),
                    d("invalidate_by_tags"),
                    self.invalidate_tags_variant,
                );
                Box::new(Mapped::new(m, Ret::Count))
            }
            Op::Get { key } => {
                let m = ReadEntries::machine(scope, vec![self.key(key)], d("get_if_present"));
                Box::new(Mapped::new(m, |r: Reads| Ret::Read(first_value(r.found))))
            }
            Op::BulkGet { keys } => {
                let keys = keys.iter().map(|k| self.key(k)).collect();
                let m = ReadEntries::machine(scope, keys, d("bulk_get"));
                Box::new(Mapped::new(m, |r: Reads| {
                    Ret::Values(r.found.into_iter().map(|f| f.map(|f| text(&f.entry.payload))).collect())
                }))
            }
            Op::Compute { key, value } => {
                let m = ComputeEntry::<()>::new(scope, self.key(key), 10, d("compute"));
                let (entry, ttl_ms) = (plain(value), self.ttl_ms);
                let answer = move |_call| Ok(Decision::Set { entry: entry.clone(), ttl_ms, value: () });
                Box::new(Answering::new(
                    m,
                    answer,
                    |out: slotcache_core::cache::op::compute::ComputeOutcome<()>| match out.computed {
                        Computed::Written(()) | Computed::Kept(()) | Computed::Deleted => Ok(Ret::Done),
                    },
                ))
            }
            Op::Load { key, value } | Op::Refresh { key, value } => {
                let kind = if matches!(op, Op::Load { .. }) { LoadKind::Miss } else { LoadKind::Refresh };
                let config = LoadConfig { op_timeout: self.budget, lock_hold: self.lock_hold };
                let m = Load::new(scope, self.key(key), kind, config).with_variant(self.load_variant);
                let (entry, ttl_ms, loaded) = (plain(value), self.ttl_ms, value.clone());
                let answer = move |_call| Loaded::Value {
                    value: loaded.clone(),
                    store: Ok(Prepared { entry: entry.clone(), ttl_ms }),
                };
                Box::new(Answering::new(m, answer, move |out: load::LoadOutcome<String>| match out.result {
                    Ok(LoadResult::Found(e)) => Ok(Ret::Read(Some(text(&e.payload)))),
                    Ok(LoadResult::Loaded(v)) if kind == LoadKind::Miss => Ok(Ret::Read(Some(v))),
                    Ok(LoadResult::Loaded(_)) => {
                        Ok(Ret::Refreshed(out.kept_tags.iter().map(|t| text(t)).collect()))
                    }
                    Err(e) => Err(e.to_string()),
                }))
            }
            Op::Expire { key, ms } => {
                let m = ExpireEntry::machine(scope, self.key(key), *ms, d("set_expires_after"));
                Box::new(Mapped::new(m, Ret::Existed))
            }
            Op::InvalidateAll => {
                let ns = &self.scope.ns;
                let patterns = vec![ns.scan_pattern(), ns.tag_scan_pattern(), ns.reverse_scan_pattern()];
                Box::new(Mapped::new(ScanAll::unlink(patterns, d("invalidate_all")), Ret::Count))
            }
            Op::EstimatedSize => Box::new(Mapped::new(
                ScanAll::count(self.scope.ns.scan_pattern(), d("estimated_size")),
                Ret::Count,
            )),
            Op::GetEntry { key } => {
                let m = ReadEntries::with_ttl(scope, vec![self.key(key)], d("get_entry"));
                Box::new(Mapped::new(m, |r: Reads| {
                    Ret::Entry(r.found.into_iter().next().flatten().map(|f| {
                        let tags = f
                            .entry
                            .tags
                            .iter()
                            .map(|t| String::from_utf8_lossy(&t.tag).into_owned())
                            .collect();
                        (String::from_utf8_lossy(&f.entry.payload).into_owned(), Some(tags))
                    }))
                }))
            }
        })
    }
}

/// The value of the first key a read found, as the history's string.
fn first_value(found: Vec<Option<slotcache_core::cache::op::read::Found>>) -> Option<String> {
    found.into_iter().next().flatten().map(|f| String::from_utf8_lossy(&f.entry.payload).into_owned())
}

/// Bytes as the history's text.
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A value stored as a plain envelope.
fn plain(value: &str) -> Entry {
    Entry::plain(Bytes::copy_from_slice(value.as_bytes()))
}
