//! The drill report: `README.md` (tables, goals, settings, date, commit, load average),
//! `summary.csv` (one line per run and client), `timeline.csv` (100 ms bins per run, client and
//! shard), `errors.csv` (the first errors of each run in full), `events.csv`, and one SVG
//! timeline per drill (its first run).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::Options;
use super::durability::{self, Cell};
use super::kind::Drill;
use super::plot;
use super::runs::{BIN, Meta, RunResult, Who};

/// A healthy shard without a success for longer than this counts as stalled.
pub(crate) const STALL_LIMIT_MS: f64 = 250.0;
/// The goal for serving again after a promotion.
pub(crate) const SERVED_GOAL_MS: f64 = 200.0;

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { f64::midpoint(v[n / 2 - 1], v[n / 2]) })
}

fn worst(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} ms"))
}

fn med_worst(v: &[f64]) -> String {
    match (median(v.to_vec()), worst(v)) {
        (Some(m), Some(w)) => format!("{m:.0} / {w:.0} ms"),
        _ => "–".to_owned(),
    }
}

/// One client's figures over the runs of one drill.
#[derive(Clone, Debug, Default)]
struct Agg {
    runs: usize,
    requests: u64,
    err_healthy: u64,
    runs_err_healthy: usize,
    err_faulty: Vec<f64>,
    stall_healthy: Vec<f64>,
    stall_faulty: Vec<f64>,
    baseline: Vec<f64>,
    /// Per run, aligned with `stall_healthy`: see `RunResult::common_stall_ms`.
    common: Vec<f64>,
    /// Per run, aligned with `stall_healthy`: the same stall less the time the client's process
    /// did not run.
    stall_scheduled: Vec<f64>,
    /// Per run: the longest time after the fault in which the client's process did not run.
    unscheduled: Vec<f64>,
    /// Aligned with `served`: the same less the time the client's process did not run.
    served_scheduled: Vec<f64>,
    full: Vec<f64>,
    served: Vec<f64>,
    never: usize,
    served_never: usize,
    wrong: u64,
    stale: u64,
}

/// A drill and one client's figures over its runs.
type DrillAgg = (Drill, Agg);

fn aggregate(results: &[RunResult], d: Drill, who: Who) -> Agg {
    let mut a = Agg::default();
    for r in results.iter().filter(|r| r.drill == d) {
        let Some(c) = r.clients.iter().find(|c| c.who == who) else { continue };
        let m = &c.metrics;
        a.runs += 1;
        a.requests += m.requests;
        a.err_healthy += m.err_healthy;
        a.runs_err_healthy += usize::from(m.err_healthy > 0);
        a.err_faulty.push(m.err_faulty as f64);
        a.stall_healthy.push(m.stall_healthy_ms(r.faulty));
        a.stall_faulty.push(m.stall_faulty_ms(r.faulty));
        a.baseline.push(m.baseline_gap_ms);
        a.common.push(r.common_stall_ms);
        a.stall_scheduled.push(m.stall_healthy_scheduled_ms(r.faulty));
        a.unscheduled.push(m.unscheduled_ms);
        match m.full_service_ms {
            Some(v) => a.full.push(v),
            None => a.never += 1,
        }
        for (s, sched) in m.served_after_ms.iter().zip(&m.served_after_scheduled_ms) {
            match (s, sched) {
                (Some(v), Some(w)) => {
                    a.served.push(*v);
                    a.served_scheduled.push(*w);
                }
                _ => a.served_never += 1,
            }
        }
        a.wrong += m.wrong;
        a.stale += m.stale;
    }
    a
}

fn drill_table(results: &[RunResult], d: Drill) -> String {
    let back = d.back();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| client | runs | requests | errors on healthy shards (runs with any) | errors on the faulty shard, median per run | longest stall, healthy shards, median / worst | longest stall, faulty shard, median / worst | time to full service after the fault, median / worst | serving again after the {back}, median / worst | never recovered | wrong values | stale reads | noise, worst: longest gap before the fault / of every client at once after it / its process not running after it |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for who in Who::ALL {
        let a = aggregate(results, d, who);
        if a.runs == 0 {
            continue;
        }
        let served_never =
            if a.served_never > 0 { format!(" ({} never)", a.served_never) } else { String::new() };
        let _ = writeln!(
            s,
            "| {} | {} | {} | **{}** ({}) | {} | {} | {} | {} | {}{} | **{} of {}** | **{}** | {} | {} / {} / {} |",
            who.name(),
            a.runs,
            a.requests,
            a.err_healthy,
            a.runs_err_healthy,
            median(a.err_faulty.clone()).map_or_else(|| "–".into(), |v| format!("{v:.0}")),
            med_worst(&a.stall_healthy),
            med_worst(&a.stall_faulty),
            med_worst(&a.full),
            med_worst(&a.served),
            served_never,
            a.never,
            a.runs,
            a.wrong,
            a.stale,
            fmt_ms(worst(&a.baseline)),
            fmt_ms(worst(&a.common)),
            fmt_ms(worst(&a.unscheduled)),
        );
    }
    s
}

/// The goals of issue 18, per client over every drill run.
fn goals(results: &[RunResult], drills: &[Drill]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| goal | {} |", Who::ALL.map(Who::name).join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(Who::ALL.len()));
    let aggs: Vec<Vec<(Drill, Agg)>> =
        Who::ALL.iter().map(|&w| drills.iter().map(|&d| (d, aggregate(results, d, w))).collect()).collect();
    let yes = |ok: bool| if ok { "**met**" } else { "**missed**" };
    let mut row = |goal: &str, f: &dyn Fn(&[DrillAgg]) -> String| {
        let cells: Vec<String> = aggs.iter().map(|a| f(a)).collect();
        let _ = writeln!(s, "| {goal} | {} |", cells.join(" | "));
    };
    // In the rolling restart every shard is restarted in turn: none is healthy.
    let healthy = |d: &Drill| *d != Drill::RollingRestart;
    row("0 errors on healthy shards (every drill but 5, where every shard is restarted)", &|a| {
        let n: u64 = a.iter().filter(|(d, _)| healthy(d)).map(|(_, g)| g.err_healthy).sum();
        let runs: usize = a.iter().filter(|(d, _)| healthy(d)).map(|(_, g)| g.runs_err_healthy).sum();
        format!("{}: {n} errors, in {runs} runs", yes(n == 0))
    });
    row(&format!("no healthy shard stalled: no gap over {STALL_LIMIT_MS:.0} ms (every drill but 5)"), &|a| {
        let a: Vec<&DrillAgg> = a.iter().filter(|(d, _)| healthy(d)).collect();
        let w = a.iter().flat_map(|(_, g)| g.stall_healthy.iter().copied()).reduce(f64::max);
        let runs = a.iter().flat_map(|(_, g)| g.stall_healthy.iter().zip(&g.common).zip(&g.stall_scheduled));
        let over: Vec<(f64, f64, f64)> =
            runs.filter(|((v, _), _)| **v > STALL_LIMIT_MS).map(|((v, c), s)| (*v, *c, *s)).collect();
        // While no client is served on any healthy shard, the machine or the servers stall, not
        // one client; while the client's process does not run, the machine stalls it. Both are
        // counted against the goal, and said apart.
        let shared = over.iter().filter(|(_, c, _)| *c > STALL_LIMIT_MS).count();
        let unscheduled = over.iter().filter(|(_, _, s)| *s <= STALL_LIMIT_MS).count();
        format!(
            "{}: worst {}, {} runs over ({shared} of them while every client stalled over {STALL_LIMIT_MS:.0} ms at once; \
             {unscheduled} within {STALL_LIMIT_MS:.0} ms once the time its process did not run is taken out)",
            yes(over.is_empty()),
            fmt_ms(w),
            over.len()
        )
    });
    row(&format!("the killed shard serving again within {SERVED_GOAL_MS:.0} ms of promotion"), &|a| {
        let v: Vec<f64> =
            a.iter().filter(|(d, _)| d.promotes()).flat_map(|(_, g)| g.served.iter().copied()).collect();
        let never: usize = a.iter().filter(|(d, _)| d.promotes()).map(|(_, g)| g.served_never).sum();
        let over = v.iter().filter(|x| **x > SERVED_GOAL_MS).count() + never;
        if v.len() + never == 0 {
            return "not run".to_owned();
        }
        let sched = a
            .iter()
            .filter(|(d, _)| d.promotes())
            .flat_map(|(_, g)| g.served.iter().zip(&g.served_scheduled));
        let unscheduled = sched.filter(|(v, w)| **v > SERVED_GOAL_MS && **w <= SERVED_GOAL_MS).count();
        format!(
            "{}: median {}, worst {}, {over} of {} over ({unscheduled} of them within {SERVED_GOAL_MS:.0} ms once \
             the time its process did not run is taken out)",
            yes(over == 0),
            fmt_ms(median(v.clone())),
            fmt_ms(worst(&v)),
            v.len() + never
        )
    });
    row("0 runs never recovering (drill 1)", &|a| {
        let (n, runs) = a
            .iter()
            .filter(|(d, _)| d.number() == 1)
            .fold((0, 0), |(n, r), (_, g)| (n + g.never, r + g.runs));
        if runs == 0 { "not run".to_owned() } else { format!("{}: {n} of {runs}", yes(n == 0)) }
    });
    row("0 runs never recovering (every drill)", &|a| {
        let (n, runs) = a.iter().fold((0, 0), |(n, r), (_, g)| (n + g.never, r + g.runs));
        format!("{}: {n} of {runs}", yes(n == 0 && runs > 0))
    });
    row("0 wrong values in every drill", &|a| {
        let n: u64 = a.iter().map(|(_, g)| g.wrong).sum();
        let stale: u64 = a.iter().map(|(_, g)| g.stale).sum();
        format!("{}: {n} wrong ({stale} stale reads, see below)", yes(n == 0))
    });
    s
}

fn error_kinds(results: &[RunResult], d: Drill) -> String {
    let mut s = String::new();
    for who in Who::ALL {
        let mut kinds: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for r in results.iter().filter(|r| r.drill == d) {
            for c in r.clients.iter().filter(|c| c.who == who) {
                for (k, n) in &c.errors {
                    *kinds.entry(k.as_str()).or_default() += n;
                }
            }
        }
        let mut v: Vec<(&str, u64)> = kinds.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        let list: Vec<String> =
            v.iter().take(4).map(|(k, n)| format!("{n}× `{}`", k.replace('`', "'"))).collect();
        let more = if v.len() > 4 { format!(" and {} other kinds", v.len() - 4) } else { String::new() };
        let _ = writeln!(
            s,
            "- {}: {}{more}",
            who.name(),
            if list.is_empty() { "no errors".to_owned() } else { list.join(", ") }
        );
    }
    s
}

/// Drill 7: each worker process's memory.
fn memory_table(results: &[RunResult], d: Drill) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| client | run | RSS before the fault | highest RSS sample after it | RSS at the end | peak RSS of the process (`VmHWM`) | most requests in flight at once |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    for r in results.iter().filter(|r| r.drill == d) {
        for c in &r.clients {
            let Some(m) = c.memory else { continue };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | **{}** | {} |",
                c.who.name(),
                r.run + 1,
                mib(m.before_kib),
                mib(m.peak_kib),
                mib(m.end_kib),
                mib(m.hwm_kib),
                m.inflight_peak
            );
        }
    }
    s
}

fn events_line(r: &RunResult) -> String {
    r.events.steps.iter().map(|(t, l)| format!("{:.3} s {l}", t.as_secs_f64())).collect::<Vec<_>>().join("; ")
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\"").replace('\n', " "))
}

/// A time for a CSV cell, ms; `never` for none.
fn csv_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "never".into(), |v| format!("{v:.1}"))
}

fn summary_csv(results: &[RunResult]) -> String {
    let mut s = String::from(
        "drill,run,client,faulty_shard,requests,ok,errors_healthy,errors_faulty,wrong,stale,stall_healthy_ms,stall_faulty_ms,baseline_gap_ms,full_service_ms,served_after_ms,never_recovered,end_ms,stall_healthy_scheduled_ms,unscheduled_ms,served_after_scheduled_ms\n",
    );
    for r in results {
        for c in &r.clients {
            let m = &c.metrics;
            let served = |v: &[Option<f64>]| v.iter().map(|&v| csv_ms(v)).collect::<Vec<_>>().join(";");
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{:.1},{:.1},{:.1},{},{},{},{},{:.1},{:.1},{}",
                r.drill.name(),
                r.run + 1,
                c.who.name(),
                r.faulty,
                m.requests,
                m.ok,
                m.err_healthy,
                m.err_faulty,
                m.wrong,
                m.stale,
                m.stall_healthy_ms(r.faulty),
                m.stall_faulty_ms(r.faulty),
                m.baseline_gap_ms,
                csv_ms(m.full_service_ms),
                served(&m.served_after_ms),
                m.never_recovered(),
                r.end.as_millis(),
                m.stall_healthy_scheduled_ms(r.faulty),
                m.unscheduled_ms,
                served(&m.served_after_scheduled_ms),
            );
        }
    }
    s
}

fn timeline_csv(results: &[RunResult]) -> String {
    let mut s = String::from("drill,run,client,shard,bin_start_ms,ok,errors,wrong,stale\n");
    for r in results {
        for c in &r.clients {
            for (shard, bins) in c.bins.iter().enumerate() {
                for (i, b) in bins.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "{},{},{},{shard},{},{},{},{},{}",
                        r.drill.name(),
                        r.run + 1,
                        c.who.name(),
                        i as u128 * BIN.as_millis(),
                        b[0],
                        b[1],
                        b[2],
                        b[3]
                    );
                }
            }
        }
    }
    s
}

fn errors_csv(results: &[RunResult]) -> String {
    let mut s = String::from("drill,run,client,shard,start_ms,latency_ms,error\n");
    for r in results {
        for c in &r.clients {
            for (start, lat, shard, msg) in &c.samples {
                let _ = writeln!(
                    s,
                    "{},{},{},{shard},{:.1},{:.1},{}",
                    r.drill.name(),
                    r.run + 1,
                    c.who.name(),
                    *start as f64 / 1000.0,
                    *lat as f64 / 1000.0,
                    csv_field(msg)
                );
            }
        }
    }
    s
}

fn events_csv(results: &[RunResult]) -> String {
    let mut s = String::from("drill,run,faulty_shard,t_ms,event\n");
    for r in results {
        for (t, l) in &r.events.steps {
            let _ = writeln!(
                s,
                "{},{},{},{},{}",
                r.drill.name(),
                r.run + 1,
                r.faulty,
                t.as_millis(),
                csv_field(l)
            );
        }
    }
    s
}

/// The drill tables alone (what `slotcache drill` prints and the top README embeds).
fn tables(o: &Options, results: &[RunResult]) -> String {
    let mut s = String::new();
    for &d in &o.drills {
        let _ = writeln!(s, "**{}**\n", d.title());
        s.push_str(&drill_table(results, d));
        s.push('\n');
        if d == Drill::NodeDown {
            s.push_str(&memory_table(results, d));
            s.push('\n');
        }
    }
    s
}

fn durability_section(o: &Options, meta: &Meta, cells: &[Cell]) -> String {
    let mut s = String::new();
    if cells.is_empty() {
        return s;
    }
    let _ = writeln!(s, "## Durability cost (slotcache only)\n");
    let _ = writeln!(
        s,
        "`invalidate` and `invalidate_by_tags` with `Durability::Primary` (no wait) and with the \
         default `Durability::Replicas` (a `WAIT` for one replica, at most 250 ms, after the \
         change, on the node's blocking lane), on this run's cluster ({} primaries with 1 replica \
         each, on the same machine), measured by `{}` at commit `{}`. Per row: a provider of its \
         own, {} tasks for {:.0} s, each writing what it then invalidates (untimed) and timing \
         the invalidation alone: the percentiles are the invalidation's, the throughput is \
         invalidations per second of the whole loop (its untimed writes included). redis-rs and \
         fred have no cache layer, so nothing to compare.\n",
        o.shards,
        o.command,
        meta.commit,
        durability::TASKS,
        o.durability_window.as_secs_f64(),
    );
    s.push_str(&durability::table(cells));
    s.push('\n');
    s
}

fn readme(o: &Options, meta: &Meta, results: &[RunResult], cells: &[Cell], failures: &[String]) -> String {
    let mut s = String::new();
    let ts = crate::report::timestamp(meta.started);
    let la = |l: [f64; 3]| format!("{:.2} / {:.2} / {:.2}", l[0], l[1], l[2]);
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(s, "# Drill results\n");
    let _ = writeln!(
        s,
        "Written by `{}` on {ts}, at commit `{}`, in {:.0} s. Machine: {} ({cores} cores, shared with \
         other builds and test runs: the figures are noisy), load average (1 / 5 / 15 min) {} at the \
         start and {} at the end. Server: {}. {} cluster(s) formed.\n",
        o.command,
        meta.commit,
        meta.elapsed.as_secs_f64(),
        crate::report::cpu_model(),
        la(meta.load_start),
        la(meta.load_end),
        meta.server_version,
        meta.clusters_formed,
    );
    if o.quick {
        let _ =
            writeln!(s, "**A `--quick` smoke run: one run per drill, short windows; not a measurement.**\n");
    }
    let _ = writeln!(s, "## Goals (issue 18), every drill run together\n");
    s.push_str(&goals(results, &o.drills));
    let _ = writeln!(
        s,
        "\nA **wrong value** is a read that returned a value never written to its key, or nothing \
         (every key is written and acknowledged by a replica before the load starts). A **stale \
         read** returned an older value than the last write the client acknowledged: a write lost \
         with a killed or paused primary (asynchronous replication), or an older write applied \
         after a newer one; it is counted apart, not as a wrong value.\n"
    );
    let _ = writeln!(s, "## Setup\n");
    let _ = writeln!(
        s,
        "- Cluster: {} primaries with 1 replica each, `cluster-node-timeout` {} ms, \
         `cluster-require-full-coverage no` (the healthy shards keep serving while one has no \
         primary, so what they see is the client's doing). Formed by the test harness \
         (`slotcache-tests`), reused between runs (killed nodes restarted, the cluster healthy \
         again before the next run) and formed anew when a run leaves it broken.\n\
         - Load, the same for the three clients, all three at once in one process (tokio, 2 worker \
         threads): per client {} tasks ({} per shard; in drill 1b each task's keys are spread over \
         every shard), {} keys per task, one request per task every {} ms at most, half `SET` of a \
         new unique value, half `GET` checked against what was written. Every request's start, \
         latency, shard and outcome is recorded; the drill's own guard ends a request after {} ms.\n\
         - Runs: {} per variant of drill 1, {} per other drill; {} ms of load before the fault and {} ms \
         after its last step. Run *n* hits shard *n* mod {}.\n\
         - **Longest stall**: per shard, the longest time without a successful request from the fault \
         to the end of the load. **Time to full service**: from the fault to the end of the first success \
         on the faulty shard that started after the last error on any shard (and after the last \
         fault). **Serving again after the promotion**: from the moment the replica itself reports \
         `role:master` (polled every 5 ms; for drill 2a: `SIGCONT`) to the end of the first success on the \
         faulty shard among requests started after the fault; negative when a client was served \
         before the poll saw the role change. **Never recovered**: no such success before the load \
         ended ({} ms after the last step of the fault). **Noise**: the longest gap between \
         successes before the fault, and the longest time after it in which none of the three \
         clients was served on any healthy shard (the machine or the servers stalled, not one \
         client), and the longest time after it in which the client's own process did not run: a \
         plain thread of that process sleeps 2 ms at a time and records every wake-up {} ms late or \
         more (the scheduler ran something else). A stall over the goal is said apart when, with \
         that time taken out, it is within the goal; it still counts as a miss.\n",
        o.shards,
        o.node_timeout.as_millis(),
        o.tasks_per_shard * o.shards,
        o.tasks_per_shard,
        o.keys_per_task,
        o.pace.as_millis(),
        (o.request_timeout * 2).as_millis(),
        o.repeat,
        o.repeat_others,
        o.warmup.as_millis(),
        o.after.as_millis(),
        o.shards,
        o.after.as_millis(),
        super::ticker::LATE.as_millis(),
    );
    let rt = o.request_timeout.as_millis();
    let ct = o.connect_timeout.as_millis();
    let _ = writeln!(s, "Client settings (comparable budgets; everything else at each client's defaults):\n");
    let _ = writeln!(s, "| client | request budget | connect budget | retries and reconnection |");
    let _ = writeln!(s, "|---|---|---|---|");
    let _ = writeln!(
        s,
        "| slotcache (tokio) | `request_timeout` {rt} ms (whole budget, retries included) | `connect_timeout` {ct} ms | defaults |"
    );
    let _ = writeln!(
        s,
        "| redis-rs 1.8.1 (cluster-async, tokio) | `response_timeout` {rt} ms (also its overall budget, retries included) | `connection_timeout` {ct} ms | defaults |"
    );
    let _ = writeln!(
        s,
        "| fred 10.1.0 (tokio) | `default_command_timeout` {rt} ms | `connection_timeout` and `internal_command_timeout` {ct} ms | `ReconnectPolicy::new_exponential(0, 100, 30_000, 2)` from fred's examples (without a policy fred does not reconnect) |\n"
    );
    let _ = writeln!(s, "## Drills\n");
    for &d in &o.drills {
        let _ = writeln!(s, "### {}\n", d.title());
        let _ = writeln!(s, "{}\n", d.note());
        s.push_str(&drill_table(results, d));
        if d == Drill::NodeDown {
            let _ = writeln!(
                s,
                "\nMemory of each worker process (`/proc/self/statm` sampled every 100 ms; the \
                 worker's own counters are of fixed size, and the requests in flight are bounded \
                 by the drill's guard of {} ms whatever the client does):\n",
                (o.request_timeout * 2).as_millis()
            );
            s.push_str(&memory_table(results, d));
        }
        let _ = writeln!(s, "\nErrors by kind (digits replaced by `#`):\n");
        s.push_str(&error_kinds(results, d));
        if let Some(r) = results.iter().find(|r| r.drill == d) {
            let _ = writeln!(
                s,
                "\nTimeline of run {} (faulty shard {}): [{}.svg]({}.svg). Steps: {}.\n",
                r.run + 1,
                r.faulty,
                d.name(),
                d.name(),
                events_line(r)
            );
        }
    }
    s.push_str(&durability_section(o, meta, cells));
    if !failures.is_empty() {
        let _ = writeln!(s, "## Runs that could not be done\n");
        for f in failures {
            let _ = writeln!(s, "- {}", f.lines().next().unwrap_or_default());
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "## Files\n\n- `summary.csv`: one line per run and client.\n- `timeline.csv`: successes, errors, \
         wrong values and stale reads per {} ms bin, per run, client and shard.\n- `errors.csv`: the \
         first errors of each task in full.\n- `events.csv`: every step of every fault.\n- `<drill>.svg`: \
         the timeline of each drill's first run.",
        BIN.as_millis()
    );
    s
}

fn write_file(dir: &Path, name: &str, text: &str, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    files.push(p);
    Ok(())
}

/// Writes every file into `o.out`; returns the drill tables and the files.
pub(crate) fn write(
    o: &Options,
    meta: &Meta,
    results: &[RunResult],
    cells: &[Cell],
    failures: &[String],
) -> anyhow::Result<(String, Vec<PathBuf>)> {
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let mut files = Vec::new();
    write_file(&o.out, "README.md", &readme(o, meta, results, cells, failures), &mut files)?;
    write_file(&o.out, "summary.csv", &summary_csv(results), &mut files)?;
    write_file(&o.out, "timeline.csv", &timeline_csv(results), &mut files)?;
    write_file(&o.out, "errors.csv", &errors_csv(results), &mut files)?;
    write_file(&o.out, "events.csv", &events_csv(results), &mut files)?;
    for &d in &o.drills {
        if let Some(r) = results.iter().find(|r| r.drill == d) {
            write_file(&o.out, &format!("{}.svg", d.name()), &plot::svg(r), &mut files)?;
        }
    }
    let mut table = tables(o, results);
    let _ = writeln!(table, "**Goals**\n");
    table.push_str(&goals(results, &o.drills));
    if !cells.is_empty() {
        let _ = writeln!(table, "\n**Durability cost**\n");
        table.push_str(&durability::table(cells));
    }
    Ok((table, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_worst() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![1.0, 2.0]), Some(1.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(worst(&[1.0, 5.0, 2.0]), Some(5.0));
        assert_eq!(med_worst(&[]), "–");
    }
}
