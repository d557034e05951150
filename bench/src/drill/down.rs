//! Drill 7 from the parent's side: a key file per client, one `drill-worker` process per
//! client (so each one's RSS is its own), the node down for the set time, and the counts the
//! workers print turned into the same figures as the other drills, plus memory.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use slotcache_tests::Cluster;

use super::child::BIN_MS;
use super::fault::{self, Events, Target};
use super::kind::Drill;
use super::load::{Outcome as ReqOutcome, Rec};
use super::preload::preload;
use super::runs::{ClientRun, Memory, RunResult, Who, bins};
use super::shards::{Key, Layout};
use super::ticker::Gap;
use super::{Options, measure};
use crate::workloads::Rng;

/// A request is started every this long, per client (open loop): 3,000 a second.
const EVERY: Duration = Duration::from_micros(333);

const fn arg_name(w: Who) -> &'static str {
    match w {
        Who::Slotcache => "slotcache",
        Who::RedisRs => "redis-rs",
        Who::Fred => "fred",
    }
}

/// The workers, killed and reaped on every way out.
struct Workers(Vec<(Who, Child)>);

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What one worker printed, line by line (a thread per worker reads its output).
fn lines_of(c: &mut Child) -> anyhow::Result<Receiver<String>> {
    let out = c.stdout.take().context("worker stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Waits (bounded by `deadline`) for a line equal to `want`, keeping the others.
fn wait_line(
    rx: &Receiver<String>,
    want: &str,
    deadline: Instant,
    kept: &mut Vec<String>,
) -> anyhow::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l == want => return Ok(()),
            Ok(l) => kept.push(l),
            Err(_) => bail!("no {want} from the worker in time"),
        }
    }
}

fn say(stdin: &mut ChildStdin, what: &str) -> anyhow::Result<()> {
    writeln!(stdin, "{what}")?;
    stdin.flush()?;
    Ok(())
}

fn write_keys(path: &Path, keys: &[Key]) -> anyhow::Result<()> {
    let mut s = String::new();
    for k in keys {
        s.push_str(&format!("{}\t{}\n", k.shard, String::from_utf8_lossy(&k.name)));
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

/// Turns a worker's lines into the figures of a client run.
fn parse(
    who: Who,
    lines: &[String],
    shards: usize,
    faulty: usize,
    ev: &Events,
    end: Duration,
) -> anyhow::Result<(ClientRun, Memory)> {
    let mut recs = Vec::new();
    let (mut ok, mut err_h, mut err_f) = (0u64, 0u64, 0u64);
    let mut mem = Memory::default();
    let mut wrong = 0;
    let mut errors = std::collections::BTreeMap::new();
    let fault_ms = ev.first_fault().map_or(u64::MAX, |f| f.as_millis() as u64);
    let mut last_rss = 0;
    let mut unscheduled = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.splitn(6, ' ').collect();
        let num = |i: usize| -> anyhow::Result<u64> { Ok(f.get(i).context("short line")?.parse()?) };
        match f[0] {
            "BIN" => {
                let (s, b, o, e) = (num(1)?, num(2)?, num(3)?, num(4)?);
                let shard = u8::try_from(s)?;
                let start_us = b * BIN_MS * 1000;
                // One record per bin and outcome: stalls and recovery times to the bin.
                if o > 0 {
                    recs.push(Rec { start_us, lat_us: BIN_MS * 1000, shard, outcome: ReqOutcome::Ok });
                }
                if e > 0 {
                    recs.push(Rec { start_us, lat_us: BIN_MS * 1000, shard, outcome: ReqOutcome::Error });
                }
                ok += o;
                if usize::from(shard) == faulty {
                    err_f += e;
                } else {
                    err_h += e;
                }
            }
            "RSS" => {
                let (t, k) = (num(1)?, num(2)?);
                if t < fault_ms {
                    mem.before_kib = k;
                } else {
                    mem.peak_kib = mem.peak_kib.max(k);
                }
                last_rss = k;
            }
            "HWM" => mem.hwm_kib = num(1)?,
            "UNSCHED" => unscheduled.push(Gap { start_us: num(1)?, len_us: num(2)? }),
            "WRONG" => wrong = num(1)?,
            "INFLIGHT" => mem.inflight_peak = num(1)?,
            "ERR" => {
                let n = num(1)?;
                let msg = l.splitn(3, ' ').nth(2).unwrap_or_default().to_owned();
                errors.insert(msg, n);
            }
            _ => {}
        }
    }
    mem.end_kib = last_rss;
    recs.sort_by_key(|r| r.start_us);
    let mut metrics = measure::measure(&recs, shards, faulty, ev, end, &unscheduled);
    metrics.ok = ok;
    metrics.err_healthy = err_h;
    metrics.err_faulty = err_f;
    metrics.wrong = wrong;
    metrics.requests = ok + err_h + err_f + wrong;
    let bins = bins(&recs, shards, end);
    Ok((ClientRun { who, metrics, bins, errors, samples: Vec::new(), memory: Some(mem) }, mem))
}

/// One run of drill 7.
pub(crate) fn run_once(
    cluster: &mut Cluster,
    layout: &Layout,
    run: usize,
    o: &Options,
) -> anyhow::Result<RunResult> {
    let drill = Drill::NodeDown;
    let exe = o.worker_exe.clone().context("drill 7 needs the slotcache binary (drill-worker)")?;
    let shards = layout.len();
    let faulty = run % shards;
    let (victim, replica) = layout.primary_and_replica(cluster, faulty)?;
    let mut rng = Rng::new((run as u64) << 8 | 7);
    let per_shard = o.tasks_per_shard * o.keys_per_task;
    let dir = std::env::temp_dir().join(format!("slotcache-drill-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut files: Vec<(Who, PathBuf)> = Vec::new();
    let mut all = Vec::new();
    for who in Who::ALL {
        let keys: Vec<Key> = (0..shards)
            .flat_map(|s| {
                layout.keys(
                    &format!("drill:node-down:{run}:{}:{s}", arg_name(who)),
                    Some(s),
                    per_shard,
                    &mut rng,
                )
            })
            .collect();
        let path = dir.join(format!("{}.keys", arg_name(who)));
        write_keys(&path, &keys)?;
        files.push((who, path));
        all.extend(keys);
    }
    preload(cluster, layout, &all.iter().collect::<Vec<_>>())?;
    let target = Target {
        victim,
        replica,
        other: victim,
        range: (0, 0),
        hot_slots: Vec::new(),
        all: Vec::new(),
        proxy: None,
        hold: o.down_for,
    };
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| format!("{}:{}", a.host(), a.port())).collect();
    let total = o.warmup + o.down_for + o.after + Duration::from_secs(30);
    let mut workers = Workers(Vec::new());
    for (who, path) in &files {
        let child = Command::new(&exe)
            .arg("drill-worker")
            .args(["--client", arg_name(*who), "--seeds", &seeds.join(",")])
            .arg("--keys")
            .arg(path)
            .args(["--every-us", &EVERY.as_micros().to_string()])
            .args(["--guard-ms", &(o.request_timeout * 2).as_millis().to_string()])
            .args(["--request-ms", &o.request_timeout.as_millis().to_string()])
            .args(["--connect-ms", &o.connect_timeout.as_millis().to_string()])
            .args(["--max-ms", &total.as_millis().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        workers.0.push((*who, child));
    }
    let mut outs = Vec::new();
    let ready_by = Instant::now() + Duration::from_secs(30);
    for (_, c) in &mut workers.0 {
        let rx = lines_of(c)?;
        wait_line(&rx, "READY", ready_by, &mut Vec::new())?;
        outs.push(rx);
    }
    let mut stdins: Vec<ChildStdin> = workers
        .0
        .iter_mut()
        .map(|(_, c)| c.stdin.take().context("worker stdin"))
        .collect::<anyhow::Result<_>>()?;
    let t0 = Instant::now();
    for s in &mut stdins {
        say(s, "GO")?;
    }
    // The load runs on its own before the fault (a timed phase of the experiment).
    std::thread::sleep(o.warmup);
    let mut ev = Events::default();
    let injected = fault::inject(cluster, drill, &target, t0, &mut ev);
    if injected.is_ok() {
        std::thread::sleep(o.after);
    }
    for s in &mut stdins {
        let _ = say(s, "STOP");
    }
    let end = t0.elapsed();
    let done_by = Instant::now() + o.request_timeout * 2 + Duration::from_secs(20);
    let mut got = Vec::new();
    for rx in &outs {
        let mut lines = Vec::new();
        let r = wait_line(rx, "END", done_by, &mut lines);
        got.push((r, lines));
    }
    drop(stdins);
    drop(workers);
    let _ = std::fs::remove_dir_all(&dir);
    let healed = fault::heal(cluster, &ev, o.node_timeout);
    injected.context("node-down: the fault")?;
    healed.context("node-down: the repair")?;
    let mut clients = Vec::new();
    for (who, (r, lines)) in Who::ALL.into_iter().zip(got) {
        r.with_context(|| format!("{} worker", who.name()))?;
        clients.push(parse(who, &lines, shards, faulty, &ev, end)?.0);
    }
    Ok(RunResult { drill, run, faulty, events: ev, end, clients, common_stall_ms: 0.0 })
}
