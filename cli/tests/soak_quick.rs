//! `slotcache drill --soak 2m` end to end: three paced history client processes under random
//! faults; every criterion must pass (0 violations, every fault recovered, RSS flat), the
//! report and CSVs be written, and no server be left running.

mod drill_support;

use std::time::Duration;

use drill_support::run_drill;

#[test]
fn soak_of_two_minutes_passes_and_cleans_up() {
    // Two minutes of workload, then the checks: bounded generously for a loaded machine.
    let (out, stdout) = run_drill(&["--soak", "2m"], "soak-quick-test", Duration::from_secs(240));
    for f in ["README.md", "faults.csv", "rss.csv"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    assert!(stdout.contains("soak: PASSED"), "{stdout}");
    assert_eq!(stdout.matches("**PASS**").count(), 3, "three criteria passed:\n{stdout}");
    let faults = std::fs::read_to_string(out.join("faults.csv")).unwrap();
    assert!(faults.lines().count() >= 3, "at least two faults in two minutes:\n{faults}");
    let rss = std::fs::read_to_string(out.join("rss.csv")).unwrap();
    assert!(rss.lines().count() >= 10, "an RSS sample every 10 s:\n{rss}");
}
