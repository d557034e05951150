//! `drop_search_index`: `FT.DROPINDEX` of the namespace's index on every primary, one request
//! each, addressed to the primary (the documents stay). An index already missing is not an
//! error; a primary that answers `MOVED` or `ASK` (the plan was stale, see
//! [`fan_out`]) makes the machine plan again and drop on every home of the new
//! plan, within the deadline.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cache::error::CacheError;
use crate::cache::search::refusal::{Refusal, not_supported};
use crate::cache::search::{IndexHome, SearchError};
use crate::slot::Slot;

use super::deadline::Deadline;
use super::fan_out::{self, Answer, Located, Routing};
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};
use super::search_index::IndexSpec;

#[derive(Debug)]
enum Phase {
    Locate,
    Drop { homes: Vec<IndexHome> },
    Over,
}

/// The `drop_search_index` operation.
#[derive(Debug)]
pub struct DropIndex {
    spec: Arc<IndexSpec>,
    deadline: Deadline,
    phase: Phase,
    avoid: BTreeSet<Slot>,
}

impl DropIndex {
    /// Drops `spec`'s index on every primary.
    #[must_use]
    pub const fn new(spec: Arc<IndexSpec>, deadline: Deadline) -> Self {
        Self { spec, deadline, phase: Phase::Locate, avoid: BTreeSet::new() }
    }

    fn step(&mut self, cx: &Ctx<'_>, input: Input) -> Result<Step<()>, CacheError> {
        match (std::mem::replace(&mut self.phase, Phase::Over), input) {
            (Phase::Locate, Input::Start | Input::Woke) => {
                match fan_out::locate(cx, &self.deadline, &self.avoid)? {
                    Located::Wait(at) => {
                        self.phase = Phase::Locate;
                        Ok(Step::Sleep(at))
                    }
                    Located::Homes(homes) => {
                        let cmds = homes.iter().map(|h| (h, self.spec.drop_cmd(h.slot)));
                        let reqs = fan_out::requests(cmds, Routing::ToPrimary, cx.now, &self.deadline)?;
                        self.phase = Phase::Drop { homes };
                        Ok(Step::Send(reqs))
                    }
                }
            }
            (Phase::Drop { homes }, Input::Replies(r)) => {
                let mut stale = false;
                for a in fan_out::answers(cx, r, &homes, &self.avoid, &self.deadline)? {
                    match a {
                        Answer::Value(_) => {}
                        Answer::Elsewhere(e) => {
                            stale = true;
                            self.avoid.extend(e.migrating);
                        }
                        Answer::Refused(m) => match Refusal::of(&m) {
                            Refusal::NoModule => return Err(not_supported()),
                            Refusal::NoIndex => {}
                            Refusal::Exists | Refusal::Other(_) => return Err(SearchError::Server(m).into()),
                        },
                    }
                }
                if stale {
                    self.deadline.remaining(cx.now)?;
                    self.phase = Phase::Locate;
                    return Ok(Step::Sleep(fan_out::next_poll(cx.now, &self.deadline)));
                }
                Ok(Step::Done(Ok(())))
            }
            (_, input) => Ok(unexpected_input("drop_search_index", &input)),
        }
    }
}

impl Machine for DropIndex {
    type Output = ();
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<()> {
        self.step(cx, input).unwrap_or_else(|e| Step::Done(Err(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::op::search_index::tests::{deadline, name, spec};
    use crate::cache::op::testing::{Hand, addressed, commands, three_shards, values, words};

    fn machine() -> Hand<DropIndex> {
        let mut m = Hand::new(DropIndex::new(spec(), deadline(10)));
        m.topology = Some(three_shards());
        m
    }

    /// `FT.DROPINDEX` on every primary; an index already gone is fine.
    #[test]
    fn drops_every_primary_s_index() {
        let mut m = machine();
        let sent = commands(&m.start());
        let got: Vec<(String, Vec<u8>)> =
            sent.iter().map(|c| (words(c)[0].clone(), c.args()[1].to_vec())).collect();
        assert_eq!(
            got,
            [
                ("FT.DROPINDEX".to_owned(), name(0)),
                ("FT.DROPINDEX".to_owned(), name(5461)),
                ("FT.DROPINDEX".to_owned(), name(10923))
            ]
        );
        let done = m.resume(values(vec![
            Ok(crate::resp::Value::Int(1)),
            Err("Unknown index name"),
            Err("idx: no such index"),
        ]));
        assert!(matches!(done, Step::Done(Ok(()))), "{done:?}");
    }

    /// No module, or another refusal: typed errors.
    #[test]
    fn refusals() {
        let mut m = machine();
        let _ = m.start();
        let done = m.resume(values(vec![Err("ERR unknown command 'FT.DROPINDEX'"); 3]));
        assert!(matches!(done, Step::Done(Err(CacheError::SearchNotSupported(_)))), "{done:?}");
        let mut m = machine();
        let _ = m.start();
        let done = m.resume(values(vec![
            Err("ERR busy"),
            Ok(crate::resp::Value::Int(1)),
            Ok(crate::resp::Value::Int(1)),
        ]));
        assert!(matches!(done, Step::Done(Err(CacheError::Search(SearchError::Server(_))))), "{done:?}");
    }

    /// Addressed to each primary; a `MOVED` plans again and drops on the new plan's homes.
    #[test]
    fn a_stale_plan_is_dropped_again() {
        let mut m = machine();
        assert_eq!(addressed(&m.start()), [Some(7000), Some(7001), Some(7002)]);
        let one = || Ok(crate::resp::Value::Int(1));
        let wait = m.resume(values(vec![one(), Err("MOVED 5461 10.0.0.1:7004"), one()]));
        let Step::Sleep(at) = wait else { panic!("expected a sleep, got {wait:?}") };
        m.now = at;
        let mut t = three_shards();
        for n in 5461..=10922 {
            t.patch_slot(Slot::new(n).expect("slot"), crate::node_addr::NodeAddr::new("10.0.0.1", 7004))
                .expect("patched");
        }
        m.topology = Some(t);
        let again = m.resume(Input::Woke);
        assert_eq!(addressed(&again), [Some(7000), Some(7004), Some(7002)]);
        let done = m.resume(values(vec![one(), one(), Err("Unknown index name")]));
        assert!(matches!(done, Step::Done(Ok(()))), "{done:?}");
    }
}
