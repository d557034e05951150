//! The soak's pass criteria, its README and CSVs.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;

use super::{Measured, RECOVERY_BOUND, SoakOptions, SoakOutcome, rss};

/// RSS growth allowed over the last half: this share of the process's mean RSS ...
const RSS_SHARE: f64 = 0.05;
/// ... or this many KiB, whichever is larger.
const RSS_FLOOR_KIB: f64 = 4096.0;

/// Whether a violation is a wrong value: a read of a value never written, written to another
/// key, or read before its write.
fn wrong_value(what: &str) -> bool {
    what.starts_with("read a value never written")
        || what.contains(", written to ")
        || what.contains("before its write was invoked")
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2}", d.as_secs_f64()))
}

/// Judges the criteria, writes `README.md`, `faults.csv` and `rss.csv` to `o.out`.
pub(crate) fn write(o: &SoakOptions, m: &Measured) -> anyhow::Result<SoakOutcome> {
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let out = &m.outcome;
    let violations = out.violations();
    let wrong = violations.iter().filter(|v| wrong_value(&v.what)).count();
    let unchecked = out.quiescent.unchecked.len();
    let c1 = violations.is_empty() && wrong == 0 && unchecked == 0;
    let recovered = m.faults.iter().filter(|f| f.recovered()).count();
    let c2 = !m.faults.is_empty() && recovered == m.faults.len();
    let mut s = String::new();
    let date = humantime_date(m.started);
    let _ =
        writeln!(s, "# Soak ({})\n", if o.naive { "negative control: naive protocol" } else { "slotcache" });
    let _ = writeln!(
        s,
        "`{}` on {date} at commit `{}`; load average at the start {:?}, at the end {:?}. Workload {:.0} s \
         (asked {:?}), seed {}, {} client processes x {} workers, each worker at most one operation per \
         {:?} ({:.0} operations/s per process at most); 3 primaries + 1 replica each, node timeout 1 s.\n",
        o.command,
        m.commit,
        m.load_start,
        crate::run::loadavg(),
        m.run_secs,
        o.duration,
        o.seed,
        o.processes,
        o.workers,
        o.pace,
        o.workers as f64 / o.pace.as_secs_f64(),
    );
    let h = &out.history;
    let _ = writeln!(s, "## Criteria\n");
    let _ = writeln!(
        s,
        "1. **{}** 0 checker violations and 0 wrong values: {} violations ({} wrong values), {} quiescent checks \
         not made. Checked: {} operations ({} per process: {:?}), {} reads, {} hits checked, {} hits after a \
         covering invalidation, {} invalidations, {} failed operations, {} in-run counts checked, {} quiescent \
         counts, {} metadata checks.",
        pass(c1),
        violations.len(),
        wrong,
        unchecked,
        h.len(),
        if m.ops.is_empty() { 0 } else { m.ops.iter().sum::<usize>() / m.ops.len() },
        m.ops,
        h.reads_ok(),
        out.fig.hits_checked,
        out.fig.hits_after_covering_invalidation,
        h.invalidations_ok(),
        h.errors(),
        out.count_fig.checked,
        out.quiescent.counts_checked,
        out.quiescent.metadata_checked,
    );
    let _ = writeln!(
        s,
        "2. **{}** every fault recovered: {recovered} of {} (healthy cluster, then every process served \
         every shard, within {RECOVERY_BOUND:?} of the fault's start).",
        pass(c2),
        m.faults.len()
    );
    let half_min = m.run_secs / 120.0;
    let mut c3 = true;
    let mut rows = String::new();
    for (p, pid) in m.pids.iter().enumerate() {
        let (slope, mean, n) = rss::last_half_slope(&m.rss, p, m.run_secs);
        let allowed = (mean * RSS_SHARE).max(RSS_FLOOR_KIB);
        let growth = slope * half_min;
        let ok = n >= 2 && growth <= allowed;
        c3 &= ok;
        let _ = writeln!(
            rows,
            "| {p} | {pid} | {n} | {mean:.0} | {slope:.1} | {growth:.0} | {allowed:.0} | {} |",
            pass(ok)
        );
    }
    let _ = writeln!(
        s,
        "3. **{}** RSS flat over the last half: per process, the least-squares slope of its RSS over the \
         samples of the last half (every {:?}) times the half's length must stay within {:.0} % of its mean \
         RSS or {RSS_FLOOR_KIB:.0} KiB, whichever is larger (allocator and runtime caches move by a few MiB; a \
         leak of one 100-byte record per operation would add about 0.3 MiB per minute per process). The \
         clients stream their history to a file as they go, so the history itself does not grow their RSS.\n",
        pass(c3),
        o.rss_every,
        RSS_SHARE * 100.0
    );
    let _ = writeln!(
        s,
        "| process | pid | samples | mean KiB | slope KiB/min | growth over last half KiB | allowed KiB | |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    s.push_str(&rows);
    let _ = writeln!(s, "\n## Faults\n");
    let _ =
        writeln!(s, "| # | at s | fault | shard | healthy after s | served after s | recovered | error |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let mut csv = "n,at_s,fault,shard,healthy_after_s,served_after_s,recovered,error\n".to_owned();
    for (i, f) in m.faults.iter().enumerate() {
        let err = f.error.clone().unwrap_or_default().replace(['\n', '|', ','], " ");
        let cells = [
            (i + 1).to_string(),
            format!("{:.1}", f.at.as_secs_f64()),
            f.kind.name().to_string(),
            f.shard.to_string(),
            secs(f.healthy_after),
            secs(f.served_after),
            f.recovered().to_string(),
            err,
        ];
        let _ = writeln!(s, "| {} |", cells.join(" | "));
        let _ = writeln!(csv, "{}", cells.join(","));
    }
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for f in &m.faults {
        match kinds.iter_mut().find(|(k, _)| *k == f.kind.name()) {
            Some((_, n)) => *n += 1,
            None => kinds.push((f.kind.name(), 1)),
        }
    }
    let _ = writeln!(
        s,
        "\nBy kind: {}. Every node is reached through a TCP fault proxy of its own (it announces the \
         proxy's port), so the network faults (`net-*`, as in drill 6, each held {} s) hit the \
         shard's primary for the clients and for its replica.\n",
        kinds.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
        super::faults::NET_HOLD.as_secs()
    );
    let per_kind: Vec<String> =
        h.per_kind().iter().map(|(k, (n, failed))| format!("{k} {n} ({failed} failed)")).collect();
    let _ = writeln!(s, "## Operations\n\n{}\n", per_kind.join(", "));
    for v in violations.iter().take(8) {
        let _ = writeln!(s, "- violation {}: {}", v.property, v.what);
    }
    for u in &out.quiescent.unchecked {
        let _ = writeln!(s, "- unchecked: {u}");
    }
    let _ = writeln!(s, "\nFiles: `faults.csv`, `rss.csv` (seconds since the start, KiB per process).");
    let mut rss_csv = format!(
        "t_s,{}\n",
        (0..m.pids.len()).map(|p| format!("process_{p}_kib")).collect::<Vec<_>>().join(",")
    );
    for (t, row) in &m.rss {
        let _ = writeln!(rss_csv, "{t:.1},{}", row.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
    }
    std::fs::write(o.out.join("README.md"), &s)?;
    std::fs::write(o.out.join("faults.csv"), csv)?;
    std::fs::write(o.out.join("rss.csv"), rss_csv)?;
    let passed = c1 && c2 && c3;
    let _ = writeln!(s, "\nsoak: {}", if passed { "PASSED" } else { "FAILED" });
    Ok(SoakOutcome { passed, summary: s })
}

const fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// The date of `t` (UTC, to the second), from the system's `date`.
fn humantime_date(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    crate::run::command_line(
        std::path::Path::new("date"),
        &["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d %H:%M:%S UTC"],
    )
}
