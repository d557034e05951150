//! The simulated process's single flight: loads (`get` with a loader, `refresh`) go through the
//! core's table of loads in flight (`slotcache_core::cache::op::flights`) as in the async layer,
//! and the process's invalidations are marked in it while they run, so the history checker
//! judges which load a caller may join.
//!
//! - [`Led`]: the load a caller leads; its outcome is shared with the callers that joined it;
//! - [`Joined`]: a caller that joined a load in flight: it returns that load's outcome;
//! - [`Marked`]: an invalidation, marked in the table from its start to its end.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_core::cache::op::flights::{Flights, Invalidation};
use slotcache_core::cache::op::{Ctx, Input, Step};

use crate::history::Ret;

use super::runner::SimOp;

/// A load's outcome, shared by its leader with the callers that joined it (`None` until it
/// ends).
pub type Shared = Rc<RefCell<Option<Result<Ret, String>>>>;

/// The process's table of loads in flight.
pub type Table = Rc<RefCell<Flights<Shared>>>;

/// The load a caller leads.
pub struct Led {
    /// The load.
    pub load: Box<dyn SimOp>,
    /// Where its outcome goes for the callers that joined it.
    pub shared: Shared,
    /// The table it ends in.
    pub table: Table,
    /// Its key.
    pub key: Bytes,
    /// Its ticket.
    pub ticket: u64,
}

impl SimOp for Led {
    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Result<Ret, String>> {
        let step = self.load.resume(cx, input);
        if let Step::Done(out) = &step {
            let out = match out {
                Ok(r) => r.clone(),
                Err(e) => Err(e.to_string()),
            };
            *self.shared.borrow_mut() = Some(out);
            self.table.borrow_mut().finish(&self.key, self.ticket);
        }
        step
    }

    fn loaded_at(&self) -> Option<Instant> {
        self.load.loaded_at()
    }
}

/// A caller that joined a load in flight: it waits for the load's outcome (polling every
/// millisecond of virtual time) and returns it as its own operation's result.
pub struct Joined {
    /// The load's outcome.
    pub shared: Shared,
    /// Whether the caller is a `refresh` (else a `get` with a loader).
    pub refresh: bool,
}

impl SimOp for Joined {
    fn resume(&mut self, cx: &mut Ctx<'_>, _input: Input) -> Step<Result<Ret, String>> {
        let Some(out) = self.shared.borrow().clone() else {
            return Step::Sleep(cx.now + Duration::from_millis(1));
        };
        Step::Done(Ok(out.and_then(|ret| match (ret, self.refresh) {
            (Ret::Read(Some(value)), true) => Ok(Ret::Refreshed { value, tags: Vec::new() }),
            (Ret::Refreshed { value, .. }, false) => Ok(Ret::Read(Some(value))),
            (ret @ (Ret::Read(Some(_)) | Ret::Refreshed { .. }), _) => Ok(ret),
            (other, _) => Err(format!("a load ended with {other:?}")),
        })))
    }
}

/// An invalidation, marked in the table of loads in flight while it runs.
pub struct Marked {
    /// The invalidation.
    pub op: Box<dyn SimOp>,
    /// The table.
    pub table: Table,
    /// Its mark, until it ends.
    pub mark: Option<Invalidation>,
}

impl SimOp for Marked {
    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Result<Ret, String>> {
        let step = self.op.resume(cx, input);
        if matches!(step, Step::Done(_))
            && let Some(mark) = self.mark.take()
        {
            self.table.borrow_mut().invalidation_ended(mark);
        }
        step
    }
}
