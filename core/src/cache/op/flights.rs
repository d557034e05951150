//! In-process single flight: the decisions of the table of loads in flight, one per key.
//! Every caller of a key while its load runs joins that load; the first leads a new one; the
//! leader alone ends it. Plain data: the async layer keeps it behind a lock and stores its
//! shared futures in it.
//!
//! **A caller never joins a load older than an invalidation it must see** (bug A3: a `get`
//! that started after an invalidation returned joined a load whose loader ran before it, and
//! got the value the invalidation was meant to remove). The table numbers this process's
//! invalidations (of the namespace: by tags, by key, all) as they start
//! ([`Flights::invalidation_started`]) and remembers the highest number among those that
//! ended ([`Flights::invalidation_ended`]). A caller takes a [`Barrier`] when it starts: that
//! highest number. A load records, when it starts, how many invalidations had started. The
//! caller joins the load only if every invalidation that ended before the caller started had
//! started before the load did (its number is at most the load's count): then the load's
//! loader, called after the load started, ran after each of those invalidations was invoked,
//! and its value is not older than any of them. Otherwise the caller leads a new load, which
//! later callers join; the old one finishes on its own.
//!
//! Only this process's invalidations are known here. One made by another process (or through
//! another provider) that returned before a caller started is not: the caller may still join a
//! load whose loader ran before it, and get that value (never a value older than the load's
//! start, and only while that load runs). What the load stores is stale all the same: it is
//! stored under its lease (see [`super::load`]).

use std::collections::HashMap;

use bytes::Bytes;

/// What a caller does.
#[derive(Debug, PartialEq, Eq)]
pub enum Role<F> {
    /// A load of the key is in flight: await it.
    Join(F),
    /// Lead a new load; end it with [`Flights::finish`] and this ticket.
    Lead(u64),
}

/// What a caller saw when it started: the highest number of the invalidations that had ended
/// (0: none). Take it with [`Flights::barrier`] before anything else the caller does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Barrier(u64);

/// A running invalidation's number; end it with [`Flights::invalidation_ended`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "an invalidation must be ended"]
pub struct Invalidation(u64);

/// Test-only variants of real bugs, to show that the simulation catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// As documented.
    #[default]
    Correct,
    /// Bug A3: a caller joins any load in flight, even one that started before an
    /// invalidation that ended before the caller started.
    JoinAny,
}

#[derive(Debug)]
struct Flight<F> {
    ticket: u64,
    /// Invalidations started before the load started.
    since: u64,
    shared: F,
}

/// The loads in flight, by key; `F` is how a caller awaits one.
#[derive(Debug)]
pub struct Flights<F> {
    loads: HashMap<Bytes, Flight<F>>,
    next: u64,
    /// Invalidations started so far (the last one's number).
    started: u64,
    /// The highest number among the invalidations that ended.
    ended: u64,
    variant: Variant,
}

impl<F> Default for Flights<F> {
    fn default() -> Self {
        Self { loads: HashMap::new(), next: 0, started: 0, ended: 0, variant: Variant::Correct }
    }
}

impl<F> Flights<F> {
    /// The same table with a test-only bug variant.
    #[doc(hidden)]
    #[must_use]
    pub fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    /// An invalidation starts (before it sends anything).
    pub fn invalidation_started(&mut self) -> Invalidation {
        self.started += 1;
        Invalidation(self.started)
    }

    /// An invalidation ended, whatever its outcome (before its caller sees it): callers that
    /// start from now on join no load that started before it.
    pub fn invalidation_ended(&mut self, i: Invalidation) {
        self.ended = self.ended.max(i.0);
    }

    /// What a caller starting now must not join a load older than.
    #[must_use]
    pub const fn barrier(&self) -> Barrier {
        Barrier(self.ended)
    }
}

impl<F: Clone> Flights<F> {
    /// Joins the load of `key`, or starts one awaited through `start()`. `barrier` is what the
    /// caller took when it started: a load that started before an invalidation the barrier
    /// covers is not joined (a new one replaces it in the table).
    pub fn join_or_lead(&mut self, key: &Bytes, barrier: Barrier, start: impl FnOnce() -> F) -> (Role<F>, F) {
        let joinable = |f: &&Flight<F>| f.since >= barrier.0 || self.variant == Variant::JoinAny;
        if let Some(f) = self.loads.get(key).filter(joinable) {
            return (Role::Join(f.shared.clone()), f.shared.clone());
        }
        self.next += 1;
        let shared = start();
        let flight = Flight { ticket: self.next, since: self.started, shared: shared.clone() };
        self.loads.insert(key.clone(), flight);
        (Role::Lead(self.next), shared)
    }

    /// The load of `key` led with `ticket` is over (later callers start a new one). A ticket
    /// that no longer leads changes nothing.
    pub fn finish(&mut self, key: &Bytes, ticket: u64) {
        if self.loads.get(key).is_some_and(|f| f.ticket == ticket) {
            self.loads.remove(key);
        }
    }

    /// Loads in flight.
    #[must_use]
    pub fn len(&self) -> usize {
        self.loads.len()
    }

    /// Whether no load is in flight.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.loads.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_leads_the_others_join_the_leader_ends_it() {
        let mut f: Flights<&str> = Flights::default();
        let k = Bytes::from_static(b"k");
        let b = f.barrier();
        let (role, got) = f.join_or_lead(&k, b, || "load 1");
        let Role::Lead(ticket) = role else { panic!("{role:?}") };
        assert_eq!(got, "load 1");
        assert_eq!(f.join_or_lead(&k, b, || "load 2"), (Role::Join("load 1"), "load 1"));
        f.finish(&k, ticket);
        assert!(f.is_empty());
        let (role, got) = f.join_or_lead(&k, b, || "load 3");
        assert!(matches!(role, Role::Lead(t) if t != ticket), "{role:?}");
        // A stale ticket does not end the new load.
        f.finish(&k, ticket);
        assert_eq!((f.len(), got), (1, "load 3"));
    }

    /// A caller that starts after an invalidation ended does not join a load that started
    /// before that invalidation did (it leads a new one, which later callers join); one that
    /// started before the invalidation ended, or a load that started after the invalidation
    /// did, is joined. The A3 variant joins regardless.
    #[test]
    fn no_caller_joins_a_load_older_than_an_invalidation_it_must_see() {
        let k = Bytes::from_static(b"k");
        for variant in [Variant::Correct, Variant::JoinAny] {
            let mut f: Flights<&str> = Flights::default().with_variant(variant);
            let early = f.barrier();
            let (Role::Lead(old), _) = f.join_or_lead(&k, early, || "old") else { panic!() };
            let i = f.invalidation_started();
            // Started before the invalidation ended: may join.
            let during = f.barrier();
            assert_eq!(f.join_or_lead(&k, during, || "x").0, Role::Join("old"));
            // A load that starts while an invalidation runs...
            let j = f.invalidation_started();
            f.invalidation_ended(i);
            let after = f.barrier();
            let (role, got) = f.join_or_lead(&k, after, || "new");
            if variant == Variant::JoinAny {
                assert_eq!((role, got), (Role::Join("old"), "old"), "bug A3");
                continue;
            }
            let Role::Lead(new) = role else { panic!("{role:?}") };
            assert_eq!(got, "new", "the old load predates the invalidation");
            assert_eq!(f.join_or_lead(&k, after, || "x").0, Role::Join("new"));
            // ... is joined once that invalidation ended (it started before the load did) ...
            f.invalidation_ended(j);
            assert_eq!(f.join_or_lead(&k, f.barrier(), || "x").0, Role::Join("new"));
            // ... until one that started after it ends.
            let l = f.invalidation_started();
            assert_eq!(f.join_or_lead(&k, f.barrier(), || "x").0, Role::Join("new"));
            f.invalidation_ended(l);
            let (role, _) = f.join_or_lead(&k, f.barrier(), || "newer");
            assert!(matches!(role, Role::Lead(_)), "{role:?}");
            // The old leader's end changes nothing.
            f.finish(&k, old);
            f.finish(&k, new);
            assert_eq!(f.len(), 1, "the newest load stays");
        }
    }
}
