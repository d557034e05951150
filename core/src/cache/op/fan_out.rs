//! Operations that address every primary (search indexes): where the primaries are, one
//! request per primary, and each answer as a value, the server's refusal text (for the
//! operation to classify), or the news that the plan was stale.
//!
//! # One request per primary, proven
//!
//! The indexes have no coordinator: each primary's index covers the documents that primary
//! holds, so a search is exact only if **every primary that holds documents answers once**.
//! The homes come from the client's topology ([`index_homes`]: one per distinct primary, named
//! by a slot it serves), and each request is **addressed to that primary** and not redirected
//! ([`Request::node`]). A primary runs an `FT.*` command on an index name only if it serves
//! the name's slot, so an answer proves that this node is the primary of that slot now, and
//! distinct addresses mean no node answers twice.
//!
//! A topology can be stale: after a failover or a resharding, or when `MOVED` replies patched
//! it slot by slot (a patched map can list the demoted primary with the slots not yet
//! redirected, and the promoted one with the others). Routing by slot and following the
//! redirects then sent two index names to one node, whose two indexes both cover its
//! documents (a page listed keys twice), or left out a primary whose named slot had moved
//! (its documents were missed). Addressed, such a node answers `MOVED` (it does not serve the
//! slot any more) or `ASK` (the slot is migrating away): the answer is [`Answer::Elsewhere`]
//! and the operation plans again from the client's topology, which the `MOVED` patched and a
//! refresh replaces, after [`POLL_INTERVAL`] and within its deadline. A node that cannot be
//! reached is planned around the same way when the topology no longer names it
//! ([`replanned`]); otherwise its error fails the operation (its documents cannot be
//! searched). `ASK` puts the slot in the operation's `avoid` set, so that node's index is named
//! by another of its slots.
//!
//! [`Routing::BySlot`] is the old fan-out (each request routed by its slot, redirects
//! followed), kept only as a test-only bug variant.

use core::time::Duration;
use std::collections::BTreeSet;
use std::time::Instant;

use crate::cache::error::CacheError;
use crate::cache::search::{IndexHome, index_homes};
use crate::client::{Cmd, Reply, Request, RequestError};
use crate::resp::Value;
use crate::server_error::{ErrorAction, ServerError};
use crate::slot::Slot;

use super::deadline::Deadline;
use super::machine::Ctx;

/// How long an operation waits before looking again (for a topology, a refreshed one after a
/// stale plan, or an index still indexing).
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How requests reach the index homes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Routing {
    /// Addressed to each home's primary, not redirected (see the [module docs](self)).
    #[default]
    ToPrimary,
    /// Test-only bug variant, the old fan-out: routed by the home's slot, redirects followed
    /// by the client, so one node can answer for two homes and a node can be left out.
    BySlot,
}

/// Where the primaries are, or when to look again.
#[derive(Debug, PartialEq, Eq)]
pub enum Located {
    /// One home per primary, sorted by slot.
    Homes(Vec<IndexHome>),
    /// No topology yet (or one without slots): look again at this instant.
    Wait(Instant),
}

/// The index homes in the client's topology ([`index_homes`], skipping the slots in `avoid`);
/// without a topology, a wait of [`POLL_INTERVAL`] (at most until the deadline).
///
/// # Errors
/// The deadline has passed and there is still no topology.
pub fn locate(cx: &Ctx<'_>, deadline: &Deadline, avoid: &BTreeSet<Slot>) -> Result<Located, CacheError> {
    let homes = cx.topology.map(|t| index_homes(t, avoid)).unwrap_or_default();
    if homes.is_empty() {
        deadline.remaining(cx.now)?;
        return Ok(Located::Wait(next_poll(cx.now, deadline)));
    }
    Ok(Located::Homes(homes))
}

/// Whether the client's topology now plans other homes than `planned` (a node that could not
/// be reached is then planned around instead of failing the operation).
#[must_use]
pub fn replanned(cx: &Ctx<'_>, planned: &[IndexHome], avoid: &BTreeSet<Slot>) -> bool {
    cx.topology.is_some_and(|t| index_homes(t, avoid) != planned)
}

/// The instant of the next look: [`POLL_INTERVAL`] from `now`, at most the deadline.
#[must_use]
pub fn next_poll(now: Instant, deadline: &Deadline) -> Instant {
    (now + POLL_INTERVAL).min(deadline.at())
}

/// One request per home and command (the command of the home's index), carrying what is left
/// of the deadline, routed as `routing` says.
///
/// # Errors
/// The deadline has passed.
pub fn requests<'h>(
    cmds: impl IntoIterator<Item = (&'h IndexHome, Cmd)>,
    routing: Routing,
    now: Instant,
    deadline: &Deadline,
) -> Result<Vec<Request>, CacheError> {
    let timeout = deadline.remaining(now)?;
    Ok(cmds
        .into_iter()
        .map(|(home, c)| {
            let c = c.with_slot(home.slot);
            match routing {
                Routing::ToPrimary => Request::node(home.primary.clone(), c),
                Routing::BySlot => Request::command(c),
            }
            .with_timeout(timeout)
        })
        .collect())
}

/// One home's answer.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// The reply.
    Value(Value),
    /// The server's refusal, for the operation to classify.
    Refused(String),
    /// The plan was stale: the node no longer serves the home's slot, or could not be reached
    /// and the topology now names other homes. Plan again (avoiding the slots in
    /// [`Elsewhere::migrating`]).
    Elsewhere(Elsewhere),
}

/// Why a plan was stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elsewhere {
    /// The slot the node answered `ASK` for: it is migrating away (name the node's index by
    /// another slot).
    pub migrating: Option<Slot>,
}

/// The answers to [`requests`] sent to `homes`: each a value, the server's refusal text, or
/// [`Answer::Elsewhere`] (see the [module docs](self)).
///
/// # Errors
/// A request that timed out (the operation's timeout), failed otherwise while the topology
/// still plans the same homes, or had a reply of another shape; a count of replies other than
/// `homes`'.
pub fn answers(
    cx: &Ctx<'_>,
    replies: Vec<Result<Reply, RequestError>>,
    homes: &[IndexHome],
    avoid: &BTreeSet<Slot>,
    deadline: &Deadline,
) -> Result<Vec<Answer>, CacheError> {
    if replies.len() != homes.len() {
        return Err(CacheError::UnexpectedReply {
            command: "fan-out",
            got: format!("{} replies for {} requests", replies.len(), homes.len()),
        });
    }
    replies
        .into_iter()
        .map(|r| match r {
            Ok(Reply::Value(Value::Error(e))) => Ok(refused(&ServerError::new(e))),
            Ok(Reply::Value(v)) => Ok(Answer::Value(v)),
            Ok(other) => Err(CacheError::UnexpectedReply { command: "fan-out", got: format!("{other:?}") }),
            Err(RequestError::Server(e)) => Ok(refused(&e)),
            Err(RequestError::Unreachable { .. } | RequestError::ConnectionLost { .. })
                if replanned(cx, homes, avoid) =>
            {
                Ok(Answer::Elsewhere(Elsewhere { migrating: None }))
            }
            Err(e) => Err(deadline.request_error(e)),
        })
        .collect()
}

/// A refusal, or [`Answer::Elsewhere`] for a redirect.
fn refused(e: &ServerError) -> Answer {
    match e.action() {
        ErrorAction::Redirect { .. } => Answer::Elsewhere(Elsewhere { migrating: None }),
        ErrorAction::Ask { slot, .. } => Answer::Elsewhere(Elsewhere { migrating: Some(slot) }),
        _ => Answer::Refused(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::op::testing::three_shards;
    use crate::node_addr::NodeAddr;

    fn slot(n: u16) -> Slot {
        Slot::new(n).expect("slot")
    }

    /// One home per distinct primary, by its lowest slot; a MOVED-patched map that lists a
    /// demoted primary with some slots and the promoted one with others has two homes (the
    /// demoted one answers MOVED when addressed), and slots in `avoid` are skipped.
    #[test]
    fn homes_per_distinct_primary() {
        let mut t = three_shards();
        let homes = index_homes(&t, &BTreeSet::new());
        assert_eq!(homes.iter().map(|h| h.slot.get()).collect::<Vec<_>>(), [0, 5461, 10923]);
        let old = homes[1].primary.clone();
        let promoted = NodeAddr::new("10.9.9.9", 7777);
        t.patch_slot(slot(5461), promoted.clone()).expect("patched");
        t.patch_slot(slot(6000), promoted.clone()).expect("patched");
        let homes = index_homes(&t, &BTreeSet::new());
        let got: Vec<(u16, &NodeAddr)> = homes.iter().map(|h| (h.slot.get(), &h.primary)).collect();
        assert_eq!(got[1..3], [(5461, &promoted), (5462, &old)]);
        let avoid = [slot(0), slot(5461)].into_iter().collect();
        let got: Vec<u16> = index_homes(&t, &avoid).iter().map(|h| h.slot.get()).collect();
        assert_eq!(got, [1, 5462, 6000, 10923]);
    }

    /// `MOVED` and `ASK` are stale plans (`ASK` names the migrating slot); other errors are
    /// refusals.
    #[test]
    fn redirects_are_stale_plans() {
        assert_eq!(
            refused(&ServerError::new("MOVED 5462 10.0.0.1:7004")),
            Answer::Elsewhere(Elsewhere { migrating: None })
        );
        assert_eq!(
            refused(&ServerError::new("ASK 7 10.0.0.1:7004")),
            Answer::Elsewhere(Elsewhere { migrating: Some(slot(7)) })
        );
        assert_eq!(
            refused(&ServerError::new("Unknown index name")),
            Answer::Refused("Unknown index name".into())
        );
    }

    /// A node that cannot be reached is planned around when the topology now names other
    /// homes (a failover was seen); otherwise its error fails the operation.
    #[test]
    fn an_unreachable_node_is_planned_around_only_when_the_topology_moved_on() {
        use crate::client::{ConnError, ConnErrorKind};
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        let now = Instant::now();
        let deadline = Deadline::new(now, "query", Duration::from_secs(1));
        let planned = index_homes(&three_shards(), &BTreeSet::new());
        let lost = || {
            let error = ConnError::new(ConnErrorKind::Refused, "refused");
            vec![
                Ok(Reply::Value(Value::Int(1))),
                Err(RequestError::Unreachable { addr: planned[1].primary.clone(), error }),
                Ok(Reply::Value(Value::Int(1))),
            ]
        };
        let mut entropy = |_: &mut [u8]| {};
        let same = three_shards();
        let cx = Ctx { now, wall_ms: 0, entropy: &mut entropy, topology: Some(&same) };
        let r = answers(&cx, lost(), &planned, &BTreeSet::new(), &deadline);
        assert!(matches!(r, Err(CacheError::Request(RequestError::Unreachable { .. }))), "{r:?}");
        let mut moved_on = three_shards();
        for n in 5461..=10922 {
            moved_on.patch_slot(slot(n), NodeAddr::new("10.0.0.1", 7004)).expect("patched");
        }
        let mut entropy = |_: &mut [u8]| {};
        let cx = Ctx { now, wall_ms: 0, entropy: &mut entropy, topology: Some(&moved_on) };
        let r = answers(&cx, lost(), &planned, &BTreeSet::new(), &deadline).expect("answers");
        assert_eq!(r[1], Answer::Elsewhere(Elsewhere { migrating: None }));
    }
}
