//! The workload in client processes of their own, each with its own provider (or naive
//! client), recording its history to a file on a clock shared across the processes
//! ([`super::Clock::from_reference`]); the test merges the files and judges the whole.
//!
//! A client is the `history_client` binary of this crate ([`client_main`]). Its protocol, one
//! line each way:
//!
//! 1. started with its [`ClientArgs`], it connects and prints `ready <pid>`;
//! 2. it waits for `go` on its standard input (end of input: it exits);
//! 3. it runs the workload ([`super::workload::run`]), writes its records as JSON lines to its
//!    file, prints `done <records>` and exits 0; any failure exits 1 with a message on stderr.
//!
//! The test side ([`Clients`]) starts the clients, waits (bounded) for every `ready`, sends
//! `go` to all at once, waits (bounded) for every exit, and kills and reaps every client still
//! running when it is dropped (a failed test leaves none behind).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use slotcache_rt::NodeAddr;

use super::naive::NaiveSubject;
use super::run::{Runner, provider_config};
use super::workload::{self, Spec, Stop};
use super::{Clock, Record, SlotcacheSubject, Subject};
use crate::conformance::Rt;
use crate::wait::wait_until;
use crate::{Error, Result};

/// Which cache a client drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// slotcache.
    Slotcache,
    /// The reference's naive protocol (negative control).
    Naive,
}

impl Kind {
    /// Its name on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Slotcache => "slotcache",
            Self::Naive => "naive",
        }
    }
}

/// What one client process runs.
#[derive(Clone, Debug)]
pub struct ClientArgs {
    /// Seed nodes (`host:port`).
    pub seeds: Vec<String>,
    /// The namespace (shared by every client of the run and the test).
    pub ns: String,
    /// The cache it drives.
    pub kind: Kind,
    /// Its runtime.
    pub rt: Rt,
    /// The shared clock's reference ([`Clock::reference`]).
    pub clock: u64,
    /// Its workers' first id ([`Spec::first_worker`]).
    pub first_worker: usize,
    /// Its workers.
    pub workers: usize,
    /// Its workers' seed.
    pub seed: u64,
    /// How long its workload lasts.
    pub run_for: Duration,
    /// Where it writes its records.
    pub out: PathBuf,
    /// Each worker starts at most one operation per this many microseconds (0: unpaced).
    pub pace_us: u64,
    /// Every this many milliseconds it prints `served <ns> ...`: when an operation on each key
    /// last succeeded ([`Spec::served`]; 0: never).
    pub report_ms: u64,
}

fn rt_named(s: &str) -> Option<Rt> {
    crate::conformance::ALL.into_iter().find(|rt| rt.name() == s)
}

impl ClientArgs {
    /// The arguments, `name=value` each.
    #[must_use]
    pub fn to_args(&self) -> Vec<String> {
        vec![
            format!("seeds={}", self.seeds.join(",")),
            format!("ns={}", self.ns),
            format!("kind={}", self.kind.name()),
            format!("rt={}", self.rt.name()),
            format!("clock={}", self.clock),
            format!("first_worker={}", self.first_worker),
            format!("workers={}", self.workers),
            format!("seed={}", self.seed),
            format!("run_ms={}", self.run_for.as_millis()),
            format!("out={}", self.out.display()),
            format!("pace_us={}", self.pace_us),
            format!("report_ms={}", self.report_ms),
        ]
    }

    /// Parses [`ClientArgs::to_args`]'s form.
    ///
    /// # Errors
    /// A missing, unknown or malformed argument.
    pub fn parse(args: impl IntoIterator<Item = String>) -> core::result::Result<Self, String> {
        let mut seeds = None;
        let (mut ns, mut kind, mut rt, mut clock, mut first, mut workers, mut seed, mut run, mut out) =
            (None, None, None, None, None, None, None, None, None);
        let (mut pace_us, mut report_ms) = (0, 0);
        for a in args {
            let (k, v) = a.split_once('=').ok_or_else(|| format!("not name=value: {a:?}"))?;
            let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{k}: {e}"));
            let size = |v: &str| v.parse::<usize>().map_err(|e| format!("{k}: {e}"));
            match k {
                "seeds" => seeds = Some(v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()),
                "ns" => ns = Some(v.to_owned()),
                "kind" => {
                    kind = Some(match v {
                        "slotcache" => Kind::Slotcache,
                        "naive" => Kind::Naive,
                        _ => return Err(format!("unknown kind {v:?}")),
                    });
                }
                "rt" => rt = Some(rt_named(v).ok_or_else(|| format!("unknown runtime {v:?}"))?),
                "clock" => clock = Some(num(v)?),
                "first_worker" => first = Some(size(v)?),
                "workers" => workers = Some(size(v)?),
                "seed" => seed = Some(num(v)?),
                "run_ms" => run = Some(Duration::from_millis(num(v)?)),
                "out" => out = Some(PathBuf::from(v)),
                "pace_us" => pace_us = num(v)?,
                "report_ms" => report_ms = num(v)?,
                _ => return Err(format!("unknown argument {k:?}")),
            }
        }
        let need = |what: &str| format!("missing {what}=");
        Ok(Self {
            seeds: seeds.ok_or_else(|| need("seeds"))?,
            ns: ns.ok_or_else(|| need("ns"))?,
            kind: kind.ok_or_else(|| need("kind"))?,
            rt: rt.ok_or_else(|| need("rt"))?,
            clock: clock.ok_or_else(|| need("clock"))?,
            first_worker: first.ok_or_else(|| need("first_worker"))?,
            workers: workers.ok_or_else(|| need("workers"))?,
            seed: seed.ok_or_else(|| need("seed"))?,
            run_for: run.ok_or_else(|| need("run_ms"))?,
            out: out.ok_or_else(|| need("out"))?,
            pace_us,
            report_ms,
        })
    }

    /// The workload's size and length.
    #[must_use]
    pub fn spec(&self) -> Spec {
        Spec {
            workers: self.workers,
            seed: self.seed,
            first_worker: self.first_worker,
            tail: Duration::ZERO,
            pace: (self.pace_us > 0).then(|| Duration::from_micros(self.pace_us)),
            ..Spec::new(self.run_for)
        }
    }
}

/// The client process: see the module documentation. Returns how many operations it recorded.
///
/// # Errors
/// Bad arguments, a failed connection, a lost parent, a failed workload or file.
pub fn client_main(args: impl IntoIterator<Item = String>) -> core::result::Result<usize, String> {
    let a = ClientArgs::parse(args)?;
    let runner = Runner::new(a.rt);
    let subject: Arc<dyn Subject> = match a.kind {
        Kind::Slotcache => Arc::new(runner.block_on(SlotcacheSubject::connect(
            a.rt.runtime(),
            provider_config(a.seeds.clone()),
            &a.ns,
        ))?),
        Kind::Naive => {
            let seeds: Vec<NodeAddr> = a
                .seeds
                .iter()
                .map(|s| NodeAddr::parse(s).ok_or_else(|| format!("bad seed {s:?}")))
                .collect::<core::result::Result<_, _>>()?;
            Arc::new(runner.block_on(NaiveSubject::connect(
                a.rt.runtime(),
                seeds,
                &a.ns,
                Duration::from_millis(1),
            ))?)
        }
    };
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready {}", std::process::id())
        .and_then(|()| stdout.flush())
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
    if line.trim() != "go" {
        return Err(format!("expected go, got {line:?} (the test went away?)"));
    }
    let mut spec = a.spec();
    let clock = Clock::from_reference(a.clock);
    let (sink, handed) = channel::<Vec<Record>>();
    spec.sink = Some(sink);
    let writer = RecordWriter::create(&a.out)?;
    let writing = std::thread::spawn(move || writer.write_all(&handed));
    let served: Arc<Vec<AtomicU64>> = Arc::new((0..spec.keys).map(|_| AtomicU64::new(0)).collect());
    spec.served = Some(served.clone());
    let halt = Arc::new(AtomicBool::new(false));
    let reporter = (a.report_ms > 0).then(|| {
        let (halt, every) = (halt.clone(), Duration::from_millis(a.report_ms));
        std::thread::spawn(move || report_served(&served, &halt, every))
    });
    let parts = runner.block_on(workload::run(a.rt, subject.clone(), &spec, clock, Stop::undisturbed()));
    halt.store(true, Ordering::Release);
    if let Some(r) = reporter {
        let _ = r.join();
    }
    let sink = spec.sink.take().ok_or("no sink")?;
    for part in parts? {
        let _ = sink.send(part);
    }
    drop(sink);
    drop(spec);
    let n = writing.join().map_err(|_| "the record writer panicked".to_owned())??;
    writeln!(stdout, "done {n}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
    Ok(n)
}

/// Prints `served <ns> ...` (one instant per key) every `every` until `halt`.
fn report_served(served: &[AtomicU64], halt: &AtomicBool, every: Duration) {
    while !halt.load(Ordering::Acquire) {
        // A reporting period, not a wait for a condition.
        std::thread::sleep(every);
        let line: Vec<String> = served.iter().map(|s| s.load(Ordering::Relaxed).to_string()).collect();
        let mut out = std::io::stdout().lock();
        if writeln!(out, "served {}", line.join(" ")).and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// Writes records as JSON lines to a temporary file as they come, renamed at the end.
struct RecordWriter {
    tmp: PathBuf,
    path: PathBuf,
    f: std::io::BufWriter<std::fs::File>,
}

impl RecordWriter {
    fn create(path: &Path) -> core::result::Result<Self, String> {
        let tmp = path.with_extension("partial");
        let f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        Ok(Self { tmp, path: path.to_path_buf(), f: std::io::BufWriter::new(f) })
    }

    /// Writes every batch until the senders are gone; returns how many records it wrote.
    fn write_all(mut self, batches: &Receiver<Vec<Record>>) -> core::result::Result<usize, String> {
        let mut n = 0;
        for batch in batches {
            for r in &batch {
                serde_json::to_writer(&mut self.f, r).map_err(|e| e.to_string())?;
                self.f.write_all(b"\n").map_err(|e| e.to_string())?;
            }
            n += batch.len();
        }
        self.f.flush().map_err(|e| e.to_string())?;
        drop(self.f);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        Ok(n)
    }
}

/// Writes `records` as JSON lines to `path` (through a temporary file, renamed at the end).
///
/// # Errors
/// The file's error.
pub fn write_records(path: &Path, records: &[Record]) -> core::result::Result<(), String> {
    let tmp = path.with_extension("partial");
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?);
    for r in records {
        serde_json::to_writer(&mut f, r).map_err(|e| e.to_string())?;
        f.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    f.flush().map_err(|e| e.to_string())?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the records [`write_records`] wrote.
///
/// # Errors
/// The file's error, or a line that is not a record.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::new(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Client processes of one run (killed and reaped when dropped, if still running).
#[derive(Debug)]
pub struct Clients {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    lines: Receiver<(usize, String)>,
    /// Each client's pid, once ready.
    pub pids: Vec<u32>,
}

impl Clients {
    /// Starts one client per `args` from the binary `exe`.
    ///
    /// # Errors
    /// A client that cannot be started (those already started are stopped).
    pub fn spawn(exe: &Path, args: &[ClientArgs]) -> Result<Self> {
        Self::spawn_with(exe, &[], args)
    }

    /// Starts one client per `args` from `exe` with `prefix` before the arguments (e.g. the
    /// subcommand of a binary that is also other things).
    ///
    /// # Errors
    /// A client that cannot be started (those already started are stopped).
    pub fn spawn_with(exe: &Path, prefix: &[&str], args: &[ClientArgs]) -> Result<Self> {
        let (tx, lines) = channel();
        let mut me = Self { children: Vec::new(), stdins: Vec::new(), lines, pids: Vec::new() };
        for (i, a) in args.iter().enumerate() {
            let mut child = Command::new(exe)
                .args(prefix)
                .args(a.to_args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| Error::new(format!("starting {}: {e}", exe.display())))?;
            me.stdins.push(child.stdin.take());
            if let Some(out) = child.stdout.take() {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines() {
                        let Ok(line) = line else { break };
                        if tx.send((i, line)).is_err() {
                            break;
                        }
                    }
                });
            }
            me.children.push(child);
        }
        Ok(me)
    }

    /// Waits until every client said `ready` (at most `timeout`); returns their pids.
    ///
    /// # Errors
    /// A client that exited or did not get ready in time.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Vec<u32>> {
        let end = Instant::now() + timeout;
        let mut pids = vec![None; self.children.len()];
        while pids.iter().any(Option::is_none) {
            if Instant::now() >= end {
                let missing: Vec<usize> = (0..pids.len()).filter(|&i| pids[i].is_none()).collect();
                return Err(Error::new(format!("clients {missing:?} not ready within {timeout:?}")));
            }
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok((i, line)) => {
                    if let Some(pid) = line.strip_prefix("ready ").and_then(|p| p.trim().parse().ok()) {
                        pids[i] = Some(pid);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    for (i, c) in self.children.iter_mut().enumerate() {
                        if let Some(status) = c.try_wait().map_err(|e| Error::new(e.to_string()))? {
                            return Err(Error::new(format!(
                                "client {i} exited before it was ready: {status} (its stderr is above)"
                            )));
                        }
                    }
                }
            }
        }
        self.pids = pids.into_iter().flatten().collect();
        Ok(self.pids.clone())
    }

    /// The lines the clients printed since the last call (client index, line), without waiting.
    pub fn lines(&mut self) -> Vec<(usize, String)> {
        self.lines.try_iter().collect()
    }

    /// Whether every client exited.
    ///
    /// # Errors
    /// A client whose state cannot be read.
    pub fn all_exited(&mut self) -> Result<bool> {
        let mut all = true;
        for c in &mut self.children {
            all &= c.try_wait().map_err(|e| Error::new(e.to_string()))?.is_some();
        }
        Ok(all)
    }

    /// Tells every client to start its workload.
    ///
    /// # Errors
    /// A client whose input is closed (it exited).
    pub fn go(&mut self) -> Result<()> {
        for (i, stdin) in self.stdins.iter_mut().enumerate() {
            let s = stdin.as_mut().ok_or_else(|| Error::new(format!("client {i} has no input")))?;
            s.write_all(b"go\n")
                .and_then(|()| s.flush())
                .map_err(|e| Error::new(format!("client {i}: {e}")))?;
        }
        Ok(())
    }

    /// Waits until every client exited (at most `timeout`), and checks each succeeded.
    ///
    /// # Errors
    /// A client still running after `timeout`, or one that failed.
    pub fn wait_done(&mut self, timeout: Duration) -> Result<()> {
        let children = &mut self.children;
        wait_until(timeout, "history clients to exit", || {
            let mut all = true;
            for c in children.iter_mut() {
                all &= c.try_wait()?.is_some();
            }
            Ok(all)
        })?;
        for (i, c) in self.children.iter_mut().enumerate() {
            let status = c.wait().map_err(|e| Error::new(format!("client {i}: {e}")))?;
            if !status.success() {
                return Err(Error::new(format!("client {i} failed: {status} (its stderr is above)")));
            }
        }
        Ok(())
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.stdins.clear();
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}
