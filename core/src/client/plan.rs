//! Planning a request into sub-requests ([`Request::prepare`] gives a [`Prepared`]).
//!
//! The command table ([`crate::command`]) says where a command goes. A command whose keys
//! span slots is split per slot (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH, JSON.MGET); fan-out
//! commands go to every primary. The plan's [`Shape`] says how [`super::merge`] puts the parts'
//! replies back together.

use core::time::Duration;

use crate::command::{self, CommandError, ResponsePolicy, Routing, SlotGroup};
use crate::node_addr::NodeAddr;
use crate::retry::Idempotency;

use super::Route;
use super::error::SubmitError;
use super::request::{Cmd, Request, RequestKind};

/// How a request's sub-replies become its reply.
#[derive(Debug)]
pub(crate) enum Shape {
    /// One sub-request; its reply is the reply.
    Single,
    /// A multi-key command split per slot.
    Split { policy: ResponsePolicy, groups: Vec<SlotGroup> },
    /// A pipeline: one result per command, each command planned as one or several
    /// sub-requests ([`Part`]), in order.
    Pipeline(Vec<Part>),
    /// Every primary (or node), one result each; the addresses are filled in on expansion.
    PerNode(Vec<NodeAddr>),
    /// Every primary (or node), merged into one value per the command's policy.
    Fanout(ResponsePolicy, Vec<NodeAddr>),
}

/// How one pipeline command's sub-replies become its result.
#[derive(Debug)]
pub(crate) enum Part {
    /// One sub-request.
    One,
    /// A multi-key command split per slot: one sub-request per group, in order.
    Split { policy: ResponsePolicy, groups: Vec<SlotGroup> },
}

impl Part {
    /// Sub-requests of this part.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::One => 1,
            Self::Split { groups, .. } => groups.len(),
        }
    }
}

/// One planned sub-request.
#[derive(Debug)]
pub(crate) struct Planned {
    pub(crate) cmd: Cmd,
    pub(crate) route: Route,
    pub(crate) read_only: bool,
    pub(crate) idempotency: Idempotency,
}

/// A request's plan.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) shape: Shape,
    pub(crate) subs: Vec<Planned>,
}

fn malformed(cmd: &Cmd, e: &CommandError) -> SubmitError {
    let name = cmd.args().first().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
    match e {
        CommandError::Empty => SubmitError::Empty,
        CommandError::CrossSlot { .. } => SubmitError::CrossSlot { name },
        e => SubmitError::Malformed { name, reason: e.to_string() },
    }
}

/// The command table's entry for `cmd`, plus the caller's overrides.
fn describe(cmd: &Cmd) -> Result<(&'static command::CommandInfo, bool, Idempotency), SubmitError> {
    let info = command::lookup(cmd.args()).map_err(|e| malformed(cmd, &e))?;
    if info.routing() == Routing::Connection && cmd.slot().is_none() {
        let name = String::from_utf8_lossy(&cmd.args()[0]).into_owned();
        return Err(SubmitError::Malformed {
            name,
            reason: "acts on connection state, which a shared, pipelined connection cannot offer \
                     (inside a pipeline, give it an explicit slot: it then runs on the same \
                     connection as the pipeline's other commands for that node)"
                .into(),
        });
    }
    let read_only = cmd.read_only_override().unwrap_or_else(|| info.is_read_only());
    let idempotency = match cmd.idempotent_override() {
        Some(true) => Idempotency::Idempotent,
        Some(false) => Idempotency::NonIdempotent,
        None => info.idempotency_of(cmd.args()),
    };
    Ok((info, read_only, idempotency))
}

/// A [`Cmd::after`](super::Cmd::after) that cannot be met: outside a pipeline, or naming
/// itself or a later command.
fn check_follows(index: usize, cmd: &Cmd, in_pipeline: bool) -> Result<(), SubmitError> {
    match cmd.follows() {
        Some(i) if !in_pipeline || i >= index => Err(SubmitError::Malformed {
            name: cmd.args().first().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
            reason: format!(
                "command {index} is to follow command {i}: only an earlier command of the same \
                 pipeline can be followed"
            ),
        }),
        _ => Ok(()),
    }
}

/// Plans a request into its sub-requests and the [`Shape`] of its reply.
pub(crate) fn plan_subrequests(kind: RequestKind) -> Result<Plan, SubmitError> {
    match &kind {
        RequestKind::Pipeline(cmds) => {
            cmds.iter().enumerate().try_for_each(|(i, c)| check_follows(i, c, true))?;
        }
        RequestKind::Command(c) | RequestKind::AllPrimaries(c) | RequestKind::Node(_, c) => {
            check_follows(0, c, false)?;
        }
    }
    match kind {
        RequestKind::Command(cmd) => plan_command(cmd),
        RequestKind::Pipeline(cmds) => {
            if cmds.is_empty() {
                return Err(SubmitError::Empty);
            }
            plan_pipeline(cmds)
        }
        RequestKind::AllPrimaries(cmd) => {
            let (_, read_only, idempotency) = describe(&cmd)?;
            let route = Route::Fanout { replicas: false };
            Ok(Plan {
                shape: Shape::PerNode(Vec::new()),
                subs: vec![Planned { cmd, route, read_only, idempotency }],
            })
        }
        RequestKind::Node(addr, cmd) => {
            let (_, read_only, idempotency) = describe(&cmd)?;
            Ok(Plan {
                shape: Shape::Single,
                subs: vec![Planned { cmd, route: Route::Node(addr), read_only, idempotency }],
            })
        }
    }
}

/// Plans a pipeline: each command as one sub-request, or, for a multi-key command whose keys
/// span slots (MGET, MSET, DEL, ...), one per slot, merged back into that command's result.
///
/// A command that follows another ([`Cmd::after`]) or is followed must go to one place, so it
/// is not split (keys across slots are then refused as before); `after` indexes are rewritten
/// from pipeline positions to sub-request positions.
fn plan_pipeline(cmds: Vec<Cmd>) -> Result<Plan, SubmitError> {
    let followed: Vec<bool> = {
        let mut f = vec![false; cmds.len()];
        for j in cmds.iter().filter_map(Cmd::follows) {
            if let Some(x) = f.get_mut(j) {
                *x = true;
            }
        }
        f
    };
    let mut parts = Vec::with_capacity(cmds.len());
    let mut subs = Vec::with_capacity(cmds.len());
    let mut first_sub = Vec::with_capacity(cmds.len());
    for (i, cmd) in cmds.into_iter().enumerate() {
        first_sub.push(subs.len());
        let cmd = match cmd.follows() {
            // `check_follows` made sure j < i.
            Some(j) => {
                let flat = first_sub
                    .get(j)
                    .copied()
                    .ok_or(SubmitError::Internal { what: "follows a later command" })?;
                cmd.after(flat)
            }
            None => cmd,
        };
        if cmd.follows().is_none() && !followed[i] {
            if let Some((policy, groups, planned)) = plan_split(&cmd)? {
                subs.extend(planned);
                parts.push(Part::Split { policy, groups });
                continue;
            }
        }
        subs.push(plan_single(cmd)?);
        parts.push(Part::One);
    }
    Ok(Plan { shape: Shape::Pipeline(parts), subs })
}

/// A split command: its merge policy, its slot groups and one sub-request per group.
type Split = (ResponsePolicy, Vec<SlotGroup>, Vec<Planned>);

/// A multi-key command whose keys span slots, split per slot: its policy, groups and
/// sub-requests; `None` for any other command.
fn plan_split(cmd: &Cmd) -> Result<Option<Split>, SubmitError> {
    let (info, read_only, idempotency) = describe(cmd)?;
    let Some(policy) = info.split_policy().filter(|_| cmd.slot().is_none()) else { return Ok(None) };
    let groups = command::split_by_slot(info, cmd.args()).map_err(|e| malformed(cmd, &e))?;
    if groups.len() < 2 {
        return Ok(None);
    }
    let subs = groups
        .iter()
        .map(|g| Planned {
            cmd: Cmd::from_args(command::sub_command(info, cmd.args(), g)).with_slot(g.slot),
            route: Route::Slot(g.slot),
            read_only,
            idempotency,
        })
        .collect();
    Ok(Some((policy, groups, subs)))
}

/// Plans one command that goes to one place (also a pipeline element).
fn plan_single(cmd: Cmd) -> Result<Planned, SubmitError> {
    let (info, read_only, idempotency) = describe(&cmd)?;
    let slot = match cmd.slot() {
        Some(s) => Some(s),
        None => info.slot(cmd.args()).map_err(|e| malformed(&cmd, &e))?,
    };
    let route = slot.map_or(Route::Any, Route::Slot);
    Ok(Planned { cmd, route, read_only, idempotency })
}

fn plan_command(cmd: Cmd) -> Result<Plan, SubmitError> {
    let (info, read_only, idempotency) = describe(&cmd)?;
    if cmd.slot().is_none() {
        let fanout = match info.routing() {
            Routing::AllPrimaries(p) => Some((p, false)),
            Routing::AllNodes(p) => Some((p, true)),
            _ => None,
        };
        if let Some((policy, replicas)) = fanout {
            let shape = if policy == ResponsePolicy::PerNode {
                Shape::PerNode(Vec::new())
            } else {
                Shape::Fanout(policy, Vec::new())
            };
            let route = Route::Fanout { replicas };
            return Ok(Plan { shape, subs: vec![Planned { cmd, route, read_only, idempotency }] });
        }
        if let Some((policy, groups, subs)) = plan_split(&cmd)? {
            return Ok(Plan { shape: Shape::Split { policy, groups }, subs });
        }
    }
    Ok(Plan { shape: Shape::Single, subs: vec![plan_single(cmd)?] })
}

impl Request {
    /// Plans the request: looks its commands up in the command table, hashes their keys to
    /// slots and splits multi-key commands per slot. A pure function of the request, so it can
    /// run anywhere (in the caller's task, say), leaving less to the single owner of the
    /// [`Client`](super::Client), which then only queues and routes it.
    ///
    /// # Errors
    /// What [`Client::submit`](super::Client::submit) would refuse for the same reason: an
    /// empty or malformed command, keys in different slots where they must share one.
    pub fn prepare(self) -> Result<Prepared, SubmitError> {
        Ok(Prepared { plan: plan_subrequests(self.kind)?, timeout: self.timeout })
    }
}

/// A [`Request`] already planned by [`Request::prepare`], ready for
/// [`Client::submit_prepared`](super::Client::submit_prepared).
#[derive(Debug)]
pub struct Prepared {
    pub(crate) plan: Plan,
    pub(crate) timeout: Option<Duration>,
}

impl Prepared {
    /// The slot every part of the request goes to, when it is one (a command with keys, or a
    /// pipeline of one slot); `None` for keyless commands, fan-outs and several slots.
    #[must_use]
    pub fn slot(&self) -> Option<crate::slot::Slot> {
        let mut slots = self.plan.subs.iter().map(|p| match p.route {
            Route::Slot(s) => Some(s),
            _ => None,
        });
        let first = slots.next()??;
        slots.all(|s| s == Some(first)).then_some(first)
    }

    /// The name of the first command (`GET`, `EVALSHA`...), as sent; empty when it is not
    /// UTF-8.
    #[must_use]
    pub fn command_name(&self) -> &str {
        self.plan
            .subs
            .first()
            .and_then(|p| p.cmd.args().first())
            .map_or("", |n| core::str::from_utf8(n).unwrap_or(""))
    }

    /// Commands in the request once split per slot (the parts sent).
    #[must_use]
    pub fn parts(&self) -> usize {
        self.plan.subs.len()
    }
}
