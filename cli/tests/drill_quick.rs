//! `slotcache drill --quick` end to end: it forms its own cluster, runs drill 1 (SIGKILL, tasks
//! pinned and on random keys) against slotcache, redis-rs and fred, writes the report, and
//! leaves no server running.

mod drill_support;

use std::time::Duration;

use drill_support::{CLIENTS, assert_every_client_served, run_drill};

#[test]
fn drill_quick_writes_every_file_for_every_client_and_cleans_up() {
    // About 20 s on an idle machine; bounded generously for a loaded one.
    let (out, stdout) = run_drill(&["--quick"], "drill-quick-test", Duration::from_secs(180));

    for f in [
        "README.md",
        "summary.csv",
        "timeline.csv",
        "errors.csv",
        "events.csv",
        "kill-pinned.svg",
        "kill-random.svg",
    ] {
        let p = out.join(f);
        assert!(p.is_file(), "missing {}", p.display());
    }
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    for c in CLIENTS {
        assert!(stdout.contains(&format!("| {c} | 1 |")), "no row for {c} in the printed table:\n{stdout}");
        assert!(readme.contains(&format!("| {c} | 1 |")), "no row for {c} in README.md");
    }
    assert!(readme.contains("at commit `"), "README.md names no commit");
    assert!(readme.contains("load average"), "README.md gives no load average");

    // Every client served requests in both runs, and each run had a promotion.
    assert_every_client_served(&out, &["kill-pinned", "kill-random"]);
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(events.lines().filter(|l| l.contains("promoted")).count(), 2, "{events}");
    let svg = std::fs::read_to_string(out.join("kill-pinned.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.matches("<polyline").count() >= 9,
        "a panel per client, a line per shard"
    );
}
