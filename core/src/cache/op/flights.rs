//! In-process single flight: the decisions of the table of loads in flight, one per key.
//! Every caller of a key while its load runs joins that load; the first leads a new one; the
//! leader alone ends it. Plain data: the async layer keeps it behind a lock and stores its
//! shared futures in it.

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

/// The loads in flight, by key; `F` is how a caller awaits one.
#[derive(Debug)]
pub struct Flights<F> {
    loads: HashMap<Bytes, (u64, F)>,
    next: u64,
}

impl<F> Default for Flights<F> {
    fn default() -> Self {
        Self { loads: HashMap::new(), next: 0 }
    }
}

impl<F: Clone> Flights<F> {
    /// Joins the load of `key`, or starts one awaited through `start()`.
    pub fn join_or_lead(&mut self, key: &Bytes, start: impl FnOnce() -> F) -> (Role<F>, F) {
        if let Some((_, f)) = self.loads.get(key) {
            return (Role::Join(f.clone()), f.clone());
        }
        self.next += 1;
        let f = start();
        self.loads.insert(key.clone(), (self.next, f.clone()));
        (Role::Lead(self.next), f)
    }

    /// The load of `key` led with `ticket` is over (later callers start a new one). A ticket
    /// that no longer leads changes nothing.
    pub fn finish(&mut self, key: &Bytes, ticket: u64) {
        if self.loads.get(key).is_some_and(|(t, _)| *t == ticket) {
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
        let (role, got) = f.join_or_lead(&k, || "load 1");
        let Role::Lead(ticket) = role else { panic!("{role:?}") };
        assert_eq!(got, "load 1");
        assert_eq!(f.join_or_lead(&k, || "load 2"), (Role::Join("load 1"), "load 1"));
        f.finish(&k, ticket);
        assert!(f.is_empty());
        let (role, got) = f.join_or_lead(&k, || "load 3");
        assert!(matches!(role, Role::Lead(t) if t != ticket), "{role:?}");
        // A stale ticket does not end the new load.
        f.finish(&k, ticket);
        assert_eq!((f.len(), got), (1, "load 3"));
    }
}
