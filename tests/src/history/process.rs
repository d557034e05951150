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
    let spec = a.spec();
    let clock = Clock::from_reference(a.clock);
    let parts = runner.block_on(workload::run(a.rt, subject.clone(), &spec, clock, Stop::undisturbed()))?;
    let records: Vec<Record> = parts.into_iter().flatten().collect();
    write_records(&a.out, &records)?;
    writeln!(stdout, "done {}", records.len()).and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
    Ok(records.len())
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
        let (tx, lines) = channel();
        let mut me = Self { children: Vec::new(), stdins: Vec::new(), lines, pids: Vec::new() };
        for (i, a) in args.iter().enumerate() {
            let mut child = Command::new(exe)
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
