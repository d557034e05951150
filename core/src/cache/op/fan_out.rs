//! Operations that address every primary (search indexes): where the primaries are, one
//! request per primary, and each answer as a value or the server's refusal text (for the
//! operation to classify). A timeout or a lost connection fails the operation.

use core::time::Duration;
use std::time::Instant;

use crate::cache::error::CacheError;
use crate::cache::search::index_slots;
use crate::client::{Cmd, Reply, Request, RequestError};
use crate::resp::Value;
use crate::slot::Slot;

use super::deadline::Deadline;
use super::machine::Ctx;

/// How long an operation waits before looking again (for a topology, or an index still
/// indexing).
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Where the primaries are, as one slot each ([`index_slots`]), or when to look again.
#[derive(Debug, PartialEq, Eq)]
pub enum Located {
    /// One slot per primary, sorted.
    Slots(Vec<Slot>),
    /// No topology yet (or one without slots): look again at this instant.
    Wait(Instant),
}

/// The primaries as the client's topology lists them; without a topology, a wait of
/// [`POLL_INTERVAL`] (at most until the deadline).
///
/// # Errors
/// The deadline has passed and there is still no topology.
pub fn locate(cx: &Ctx<'_>, deadline: &Deadline) -> Result<Located, CacheError> {
    let slots = cx.topology.map(index_slots).unwrap_or_default();
    if slots.is_empty() {
        deadline.remaining(cx.now)?;
        return Ok(Located::Wait(next_poll(cx.now, deadline)));
    }
    Ok(Located::Slots(slots))
}

/// The instant of the next look: [`POLL_INTERVAL`] from `now`, at most the deadline.
#[must_use]
pub fn next_poll(now: Instant, deadline: &Deadline) -> Instant {
    (now + POLL_INTERVAL).min(deadline.at())
}

/// One request per command (each routed by its slot), carrying what is left of the deadline.
///
/// # Errors
/// The deadline has passed.
pub fn requests(cmds: Vec<Cmd>, now: Instant, deadline: &Deadline) -> Result<Vec<Request>, CacheError> {
    let timeout = deadline.remaining(now)?;
    Ok(cmds.into_iter().map(|c| Request::command(c).with_timeout(timeout)).collect())
}

/// The answers to [`requests`] of `sent` commands: each a value, or the server's refusal
/// text.
///
/// # Errors
/// A request that timed out (the operation's timeout), failed otherwise, or had a reply of
/// another shape; a count of replies other than `sent`.
pub fn answers(
    replies: Vec<Result<Reply, RequestError>>,
    sent: usize,
    deadline: &Deadline,
) -> Result<Vec<Result<Value, String>>, CacheError> {
    if replies.len() != sent {
        return Err(CacheError::UnexpectedReply {
            command: "fan-out",
            got: format!("{} replies for {sent} requests", replies.len()),
        });
    }
    replies
        .into_iter()
        .map(|r| match r {
            Ok(Reply::Value(Value::Error(e))) => Ok(Err(String::from_utf8_lossy(&e).into_owned())),
            Ok(Reply::Value(v)) => Ok(Ok(v)),
            Ok(other) => Err(CacheError::UnexpectedReply { command: "fan-out", got: format!("{other:?}") }),
            Err(RequestError::Server(e)) => Ok(Err(e.to_string())),
            Err(e) => Err(deadline.request_error(e)),
        })
        .collect()
}
