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

use crate::history::{Op, Ret};

use super::runner::{Mapped, SimOp};

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
            Op::GetEntry { key } => {
                let m = ReadEntries::with_ttl(scope, vec![self.key(key)], d("get_entry"));
                Box::new(Mapped::new(m, |r: Reads| {
                    Ret::Entry(r.found.into_iter().next().flatten().map(|f| {
                        let tags = f.entry.tags.iter().map(|t| String::from_utf8_lossy(&t.tag).into_owned()).collect();
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
