//! `drop_search_index`: `FT.DROPINDEX` of the namespace's index on every primary, one request
//! each (the documents stay). An index already missing is not an error.

use std::sync::Arc;

use crate::cache::error::CacheError;
use crate::cache::search::SearchError;
use crate::cache::search::refusal::{Refusal, not_supported};

use super::deadline::Deadline;
use super::fan_out::{self, Located};
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};
use super::search_index::IndexSpec;

#[derive(Debug)]
enum Phase {
    Locate,
    Drop { sent: usize },
    Over,
}

/// The `drop_search_index` operation.
#[derive(Debug)]
pub struct DropIndex {
    spec: Arc<IndexSpec>,
    deadline: Deadline,
    phase: Phase,
}

impl DropIndex {
    /// Drops `spec`'s index on every primary.
    #[must_use]
    pub const fn new(spec: Arc<IndexSpec>, deadline: Deadline) -> Self {
        Self { spec, deadline, phase: Phase::Locate }
    }

    fn step(&mut self, cx: &Ctx<'_>, input: Input) -> Result<Step<()>, CacheError> {
        match (std::mem::replace(&mut self.phase, Phase::Over), input) {
            (Phase::Locate, Input::Start | Input::Woke) => match fan_out::locate(cx, &self.deadline)? {
                Located::Wait(at) => {
                    self.phase = Phase::Locate;
                    Ok(Step::Sleep(at))
                }
                Located::Slots(slots) => {
                    let cmds = slots.iter().map(|s| self.spec.drop_cmd(*s)).collect();
                    let reqs = fan_out::requests(cmds, cx.now, &self.deadline)?;
                    self.phase = Phase::Drop { sent: slots.len() };
                    Ok(Step::Send(reqs))
                }
            },
            (Phase::Drop { sent }, Input::Replies(r)) => {
                for a in fan_out::answers(r, sent, &self.deadline)? {
                    if let Err(m) = a {
                        match Refusal::of(&m) {
                            Refusal::NoModule => return Err(not_supported()),
                            Refusal::NoIndex => {}
                            Refusal::Exists | Refusal::Other(_) => return Err(SearchError::Server(m).into()),
                        }
                    }
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
    use crate::cache::op::testing::{Hand, commands, three_shards, values, words};

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
}
