//! `slotcache drill`: the failure drills of `slotcache-bench` (slotcache, redis-rs and fred under
//! the same load on a cluster it starts and stops), with a progress bar, the results table on
//! standard output and the full report in `--out`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use slotcache_bench::drill::{self, Drill, Options};

/// The command line's choices.
#[derive(Debug, clap::Args)]
pub(crate) struct DrillArgs {
    /// Runs of each variant of drill 1 (SIGKILL, pinned and random keys).
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Runs of each variant of the other drills.
    #[arg(long, default_value_t = 3)]
    repeat_others: usize,
    /// Which drills: 1 (SIGKILL), 2 (SIGSTOP short and past the node timeout), 3 (two failovers
    /// of one shard), 4 (atomic and legacy slot migration), 5 (rolling restart of every node),
    /// 6 (network faults through a TCP fault proxy), 7 (a node down for 60 s, peak RSS), and
    /// `durability` (the cost of the replica `WAIT` on slotcache's invalidations).
    #[arg(long, value_delimiter = ',', default_values_t = ["1", "2", "3", "4", "5", "6", "7", "durability"].map(String::from))]
    drills: Vec<String>,
    /// Primaries (each with one replica).
    #[arg(long, default_value_t = 3)]
    shards: usize,
    /// A short smoke run: drill 1 once per variant, short windows (unless --drills or
    /// --repeat say otherwise); results in target/drill-quick unless --out says otherwise.
    #[arg(long)]
    quick: bool,
    /// Where the README, CSVs and plots go (default: drills/results in the workspace, or
    /// drills/results/soak with --soak).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A soak instead of the drills: the tag history workload from client processes for this
    /// long (`90s`, `2m`, `30m`) under random faults, RSS sampled; exits 1 if a criterion fails.
    #[arg(long, value_parser = parse_duration)]
    soak: Option<std::time::Duration>,
    /// The soak's seed (default: from the clock; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// The soak's client processes.
    #[arg(long, default_value_t = 3)]
    soak_processes: usize,
    /// How often the soak samples the clients' RSS, in seconds.
    #[arg(long, default_value_t = 10)]
    soak_rss_every: u64,
    /// Test only: the soak's clients run the naive tag protocol (the checker must fail it).
    #[arg(long, hide = true)]
    soak_naive: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a duration (90s, 2m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h)")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// `slotcache history-client`: one client process of the soak (its `name=value` arguments
/// come from `slotcache drill --soak`).
#[derive(Debug, clap::Args)]
pub(crate) struct HistoryClientArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub(crate) fn history_client(a: &HistoryClientArgs) -> anyhow::Result<ExitCode> {
    slotcache_tests::history::process::client_main(a.args.clone()).map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

fn soak(a: &DrillArgs, duration: std::time::Duration, argv: &[String]) -> anyhow::Result<ExitCode> {
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::from(d.subsec_nanos()) ^ d.as_secs())
    });
    let o = drill::SoakOptions {
        duration,
        seed,
        processes: a.soak_processes.max(1),
        workers: 4,
        pace: std::time::Duration::from_millis(80),
        rss_every: std::time::Duration::from_secs(a.soak_rss_every.max(1)),
        naive: a.soak_naive,
        out: a.out.clone().unwrap_or_else(|| workspace().join("drills/results/soak")),
        exe: std::env::current_exe().context("the slotcache executable")?,
        command: format!("slotcache {}", argv.join(" ")),
    };
    let outcome = drill::run_soak(&o).context("running the soak")?;
    println!("{}", outcome.summary);
    println!("report: {}", o.out.join("README.md").display());
    Ok(if outcome.passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn workspace() -> PathBuf {
    let cli = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    cli.parent().unwrap_or(cli).to_path_buf()
}

/// `slotcache drill-worker`: one client of drill 7 (its arguments come from `slotcache drill`).
#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    #[arg(long)]
    client: String,
    #[arg(long, value_delimiter = ',', value_parser = crate::parse_addr)]
    seeds: Vec<slotcache_core::NodeAddr>,
    #[arg(long)]
    keys: PathBuf,
    #[arg(long)]
    every_us: u64,
    #[arg(long)]
    guard_ms: u64,
    #[arg(long)]
    request_ms: u64,
    #[arg(long)]
    connect_ms: u64,
    #[arg(long)]
    max_ms: u64,
}

pub(crate) fn worker(w: &WorkerArgs) -> anyhow::Result<ExitCode> {
    drill::child_main(&drill::ChildArgs {
        client: w.client.clone(),
        seeds: w.seeds.clone(),
        keys: w.keys.clone(),
        every_us: w.every_us,
        guard_ms: w.guard_ms,
        request_ms: w.request_ms,
        connect_ms: w.connect_ms,
        max_ms: w.max_ms,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The drill numbers asked for, and whether `durability` is among them.
fn selection(words: &[String]) -> anyhow::Result<(Vec<Drill>, bool)> {
    let mut numbers = Vec::new();
    let mut durability = false;
    for w in words {
        match w.trim() {
            "durability" => durability = true,
            n => numbers
                .push(n.parse::<u8>().map_err(|_| anyhow::anyhow!("no drill {n:?} (1 to 7, durability)"))?),
        }
    }
    Ok((Drill::by_numbers(&numbers).map_err(anyhow::Error::msg)?, durability))
}

pub(crate) fn run(a: &DrillArgs, argv: &[String]) -> anyhow::Result<ExitCode> {
    if a.shards == 0 {
        anyhow::bail!("--shards must be at least 1");
    }
    if let Some(d) = a.soak {
        return soak(a, d, argv);
    }
    let (drills, durability) = selection(&a.drills)?;
    let mut o = if a.quick {
        let out = a.out.clone().unwrap_or_else(|| workspace().join("target/drill-quick"));
        let mut o = Options::quick(out);
        if argv.iter().any(|x| x.starts_with("--drills")) {
            o.drills = drills;
            o.durability = durability;
        }
        if argv.iter().any(|x| x.starts_with("--repeat")) {
            o.repeat = a.repeat.max(1);
            o.repeat_others = a.repeat_others.max(1);
        }
        o
    } else {
        let out = a.out.clone().unwrap_or_else(|| workspace().join("drills/results"));
        let mut o = Options::new(out);
        o.drills = drills;
        o.durability = durability;
        o.repeat = a.repeat.max(1);
        o.repeat_others = a.repeat_others.max(1);
        o
    };
    o.shards = a.shards;
    o.worker_exe = std::env::current_exe().ok();
    o.command = format!("slotcache {}", argv.join(" "));
    eprintln!(
        "slotcache drill: {} primaries + 1 replica each; drills {}; results in {}",
        o.shards,
        o.drills.iter().map(|d| d.name()).collect::<Vec<_>>().join(", "),
        o.out.display()
    );
    let outcome = drill::run(&o).context("running the drills")?;
    println!("{}", outcome.table);
    for f in &outcome.failures {
        eprintln!("not done: {}", f.lines().next().unwrap_or_default());
    }
    println!("report: {}", o.out.join("README.md").display());
    Ok(if outcome.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
