//! Runs cache-operation machines as concurrent tasks over one simulated client.
//!
//! The loop is the async layer's driver loop (`adapters/rt/src/cache/drive.rs`), made
//! deterministic: a task's `Send` becomes submitted requests, and the task resumes once all
//! of them completed; a `Sleep` resumes it at that virtual instant; randomness comes from the
//! simulation's seed. Tasks resume in task order whenever several are ready at once.

use core::convert::Infallible;
use std::time::{Duration, Instant};

use slotcache_core::Rng;
use slotcache_core::cache::op::{Ctx, Entropy, Input, Machine, Step};
use slotcache_core::client::RequestId;

use crate::history::{Op, Record, Ret};
use crate::sim::Sim;

/// Randomness from the simulation's seed.
#[derive(Debug)]
pub struct SimEntropy(Rng);

impl SimEntropy {
    /// Entropy from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(Rng::new(seed))
    }
}

impl Entropy for SimEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A machine whose outcome is recorded as a history [`Ret`] (or an error's text).
pub trait SimOp {
    /// Resumes the operation.
    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Result<Ret, String>>;

    /// For a load: when its loader was called ([`Record::loaded`]).
    fn loaded_at(&self) -> Option<Instant> {
        None
    }
}

/// A [`Machine`] with the function that turns its outcome into a [`Ret`].
pub struct Mapped<M, F> {
    machine: M,
    map: F,
}

impl<M, F> Mapped<M, F> {
    /// Records `machine`'s output with `map`.
    pub const fn new(machine: M, map: F) -> Self {
        Self { machine, map }
    }
}

impl<M, F> SimOp for Mapped<M, F>
where
    M: Machine<Call = Infallible, Answer = Infallible>,
    F: FnMut(M::Output) -> Ret,
{
    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Result<Ret, String>> {
        match self.machine.resume(cx, input) {
            Step::Done(Ok(out)) => Step::Done(Ok(Ok((self.map)(out)))),
            Step::Done(Err(e)) => Step::Done(Ok(Err(e.to_string()))),
            Step::Send(r) => Step::Send(r),
            Step::Sleep(at) => Step::Sleep(at),
            Step::Call(never) => match never {},
        }
    }
}

/// A [`Machine`] that calls user code (a compute closure, a loader), with the function that
/// answers its calls (deterministic stand-ins for user code: at once, or after a latency, as a
/// loader reading a database takes) and the one that records its outcome (or the error its
/// outcome carries).
pub struct Answering<M: Machine, A, F> {
    machine: M,
    answer: A,
    map: F,
    latency: Duration,
    loader: bool,
    pending: Option<M::Call>,
    called: Option<Instant>,
}

impl<M: Machine, A, F> Answering<M, A, F> {
    /// Runs `machine`, answering its calls at once with `answer`, recording its output with
    /// `map`.
    pub const fn new(machine: M, answer: A, map: F) -> Self {
        Self { machine, answer, map, latency: Duration::ZERO, loader: false, pending: None, called: None }
    }

    /// The same for a load: its call is a loader answered `latency` after it was made (one
    /// that takes that long), and its value is as old as the call ([`SimOp::loaded_at`]).
    #[must_use]
    pub const fn loader(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self.loader = true;
        self
    }
}

impl<M, A, F> SimOp for Answering<M, A, F>
where
    M: Machine,
    A: FnMut(M::Call) -> M::Answer,
    F: FnMut(M::Output) -> Result<Ret, String>,
{
    fn loaded_at(&self) -> Option<Instant> {
        self.called.filter(|_| self.loader)
    }

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Result<Ret, String>> {
        let mut input: Input<M::Answer> = match (input, self.pending.take()) {
            // The latency of a call passed: its answer.
            (Input::Woke, Some(c)) => Input::Answer((self.answer)(c)),
            (Input::Start, _) => Input::Start,
            (Input::Replies(r), _) => Input::Replies(r),
            (Input::Woke, None) => Input::Woke,
            (Input::Answer(never), _) => match never {},
        };
        // Calls are answered at once (or after the latency); bounded so a machine that only
        // ever calls cannot spin.
        for _ in 0..1_000 {
            match self.machine.resume(cx, input) {
                Step::Call(c) => {
                    self.called.get_or_insert(cx.now);
                    if self.latency > Duration::ZERO {
                        self.pending = Some(c);
                        return Step::Sleep(cx.now + self.latency);
                    }
                    input = Input::Answer((self.answer)(c));
                }
                Step::Done(Ok(out)) => return Step::Done(Ok((self.map)(out))),
                Step::Done(Err(e)) => return Step::Done(Ok(Err(e.to_string()))),
                Step::Send(r) => return Step::Send(r),
                Step::Sleep(at) => return Step::Sleep(at),
            }
        }
        Step::Done(Ok(Err("the machine made 1,000 calls in a row".into())))
    }
}

enum Wait {
    Start,
    Replies(Vec<RequestId>),
    Until(Instant),
}

struct Task {
    worker: usize,
    op: Op,
    invoked: u64,
    machine: Box<dyn SimOp>,
    wait: Wait,
}

/// Concurrent cache operations on one simulated client.
pub struct Runner {
    /// The simulation (cluster, network, client).
    pub sim: Sim,
    entropy: SimEntropy,
    /// Wall-clock milliseconds at virtual time zero (entries store wall times).
    wall_base_ms: u64,
    tasks: Vec<Option<Task>>,
    finished: Vec<Record>,
}

impl core::fmt::Debug for Runner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Runner")
            .field("tasks", &self.running())
            .field("finished", &self.finished.len())
            .finish()
    }
}

impl Runner {
    /// A runner over `sim`, its randomness from `seed`.
    #[must_use]
    pub fn new(sim: Sim, seed: u64) -> Self {
        Self {
            sim,
            entropy: SimEntropy::new(seed),
            wall_base_ms: 1_700_000_000_000,
            tasks: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// Virtual nanoseconds since the start (the history's clock).
    #[must_use]
    pub fn clock(&self) -> u64 {
        u64::try_from(self.sim.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Starts operation `op` of `worker`, run by `machine`; it first runs on the next
    /// [`Runner::step`].
    pub fn spawn(&mut self, worker: usize, op: Op, machine: Box<dyn SimOp>) {
        let task = Task { worker, op, invoked: self.clock(), machine, wait: Wait::Start };
        match self.tasks.iter().position(Option::is_none) {
            Some(i) => self.tasks[i] = Some(task),
            None => self.tasks.push(Some(task)),
        }
    }

    /// Tasks still running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.tasks.iter().flatten().count()
    }

    /// Workers whose operation finished since the last call, with their records.
    pub fn take_finished(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.finished)
    }

    /// Whether `worker` has an operation running.
    #[must_use]
    pub fn is_busy(&self, worker: usize) -> bool {
        self.tasks.iter().flatten().any(|t| t.worker == worker)
    }

    /// Resumes every task that can go on, until none can without time passing.
    fn resume_ready(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.tasks.len() {
                let Some(task) = self.tasks[i].as_mut() else { continue };
                let input = match &task.wait {
                    Wait::Start => Input::Start,
                    Wait::Until(at) if *at <= self.sim.now => Input::Woke,
                    Wait::Replies(ids) if ids.iter().all(|id| self.sim.completed.contains_key(id)) => {
                        Input::Replies(
                            ids.iter().map(|id| self.sim.completed.remove(id).expect("checked")).collect(),
                        )
                    }
                    _ => continue,
                };
                progressed = true;
                let now = self.sim.now;
                let wall_ms = self.wall_base_ms + u64::try_from(self.sim.elapsed().as_millis()).unwrap_or(0);
                let topology = self.sim.client.topology().cloned();
                let mut cx = Ctx { now, wall_ms, entropy: &mut self.entropy, topology: topology.as_ref() };
                match task.machine.resume(&mut cx, input) {
                    Step::Done(out) => {
                        let result = out.unwrap_or_else(|e| Err(e.to_string()));
                        let task = self.tasks[i].take().expect("present");
                        let completed = self.clock();
                        let loaded = task.machine.loaded_at().map(|at| {
                            let ago = self.sim.now.saturating_duration_since(at).as_nanos();
                            completed.saturating_sub(u64::try_from(ago).unwrap_or(u64::MAX))
                        });
                        self.finished.push(Record {
                            id: 0,
                            worker: task.worker,
                            invoked: task.invoked,
                            completed,
                            loaded,
                            op: task.op,
                            result,
                        });
                    }
                    Step::Send(requests) => {
                        let ids = requests.into_iter().map(|r| self.sim.submit(r)).collect();
                        task.wait = Wait::Replies(ids);
                    }
                    Step::Sleep(at) => task.wait = Wait::Until(at),
                    Step::Call(never) => match never {},
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Runs tasks and the simulation for at most `limit` of virtual time, stopping early once
    /// some task finished; `false` when nothing is left to run.
    pub fn step(&mut self, limit: Duration) -> bool {
        self.resume_ready();
        if self.running() == 0 {
            return false;
        }
        let before = self.finished.len();
        if before > 0 {
            return true;
        }
        let wake = self
            .tasks
            .iter()
            .flatten()
            .filter_map(|t| match t.wait {
                Wait::Until(at) => Some(at),
                _ => None,
            })
            .min();
        let end = wake.map_or(self.sim.now + limit, |w| w.min(self.sim.now + limit));
        let span = end.saturating_duration_since(self.sim.now);
        let Self { sim, tasks, .. } = self;
        sim.run_until(span, |s| {
            tasks.iter().flatten().any(|t| match &t.wait {
                Wait::Replies(ids) => ids.iter().all(|id| s.completed.contains_key(id)),
                _ => false,
            })
        });
        self.resume_ready();
        true
    }
}
