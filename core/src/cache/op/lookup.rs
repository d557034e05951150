//! `get`'s read: the entry if it is fresh, and whether it is due for a reload (its refresh
//! time has passed). A read that fails is not the caller's failure: `get` loads instead (the
//! cache must not make the application less available), unless the provider is closed.

use std::sync::Arc;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::keys::EncodedKey;

use super::child::{self, Turn};
use super::deadline::Deadline;
use super::machine::{Ctx, Input, Machine, Step};
use super::read_fresh::{ReadFresh, ReadFreshMachine, ReadMode};

/// What `get` found.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// A fresh entry; `reload`: its refresh time has passed, reload it in the background.
    Hit {
        /// The entry.
        entry: Entry,
        /// Whether to reload it.
        reload: bool,
    },
    /// Nothing fresh (`stale`: an entry a tag invalidation made a miss): load it.
    Miss {
        /// Whether the entry was there but stale.
        stale: bool,
    },
    /// The read failed: load anyway (the error is for the log).
    Unavailable(CacheError),
}

impl Lookup {
    /// A lookup's outcome as `get` treats it: a closed provider fails the call, any other
    /// failure is [`Lookup::Unavailable`].
    ///
    /// # Errors
    /// [`CacheError::Closed`].
    pub fn or_unavailable(r: Result<Self, CacheError>) -> Result<Self, CacheError> {
        match r {
            Err(CacheError::Closed) => Err(CacheError::Closed),
            Err(e) => Ok(Self::Unavailable(e)),
            Ok(l) => Ok(l),
        }
    }
}

/// `get`'s read of one key.
#[derive(Debug)]
pub struct LookUp(ReadFreshMachine);

impl LookUp {
    /// Reads `key` of `scope`'s namespace.
    #[must_use]
    pub fn new(scope: Arc<super::scope::Scope>, key: EncodedKey, deadline: Deadline) -> Self {
        Self(ReadFresh::machine(scope, vec![key], ReadMode::ACCESSED, deadline))
    }
}

impl Machine for LookUp {
    type Output = Lookup;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<Lookup> {
        match child::resume(&mut self.0, cx, input) {
            Turn::Pass(step) => step,
            Turn::Over(r) => Step::Done(r.map(|found| {
                let found = found.into_iter().next().unwrap_or_default();
                let stale = found.is_stale();
                match found.into_fresh() {
                    Some(entry) => {
                        let reload = entry.refresh_at_ms.is_some_and(|at| cx.wall_ms >= at);
                        Lookup::Hit { entry, reload }
                    }
                    None => Lookup::Miss { stale },
                }
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use core::time::Duration;

    use super::*;
    use crate::cache::op::testing::{Hand, key, pipeline, scope};
    use crate::resp::Value;

    fn look(entry: &Entry, wall_ms: u64) -> Step<Lookup> {
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        let d = Deadline::new(Instant::now(), "get", Duration::from_secs(1));
        let mut m = Hand::new(LookUp::new(scope(), key(), d));
        m.wall_ms = wall_ms;
        let _read = pipeline(&m.start());
        m.reply(vec![Ok(Value::Bulk(entry.encode().expect("encodes")))])
    }

    /// A hit past its refresh time asks for a reload; before it, not.
    #[test]
    fn the_reload_decision() {
        let mut e = Entry::plain(bytes::Bytes::from_static(b"v"));
        e.refresh_at_ms = Some(1000);
        assert!(matches!(look(&e, 999), Step::Done(Ok(Lookup::Hit { reload: false, .. }))));
        assert!(matches!(look(&e, 1000), Step::Done(Ok(Lookup::Hit { reload: true, .. }))));
    }

    #[test]
    fn closed_fails_other_errors_load() {
        assert_eq!(Lookup::or_unavailable(Err(CacheError::Closed)), Err(CacheError::Closed));
        let e = CacheError::Codec("x".into());
        assert_eq!(Lookup::or_unavailable(Err(e.clone())), Ok(Lookup::Unavailable(e)));
    }
}
