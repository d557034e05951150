//! `slotcache drill --quick --drills 6,7,durability` end to end: the network faults through the
//! fault proxy (every variant once), a node down with each client in a worker process of its
//! own, and the durability cost; every client has its rows, the workers report memory, and no
//! server (nor worker) is left.

mod drill_support;

use std::time::Duration;

use drill_support::{CLIENTS, assert_every_client_served, run_drill};

const NET: [&str; 5] = ["net-latency", "net-bandwidth", "net-drop", "net-half-open", "net-blackhole"];

#[test]
fn network_faults_node_down_and_durability_quick() {
    // About 35 s on an idle machine; bounded generously for a loaded one.
    let (out, _printed) = run_drill(
        &["--quick", "--drills", "6,7,durability"],
        "drill-net-down-quick-test",
        Duration::from_secs(240),
    );

    let drills: Vec<&str> = NET.iter().copied().chain(["node-down"]).collect();
    assert_every_client_served(&out, &drills);
    for drill in drills {
        assert!(out.join(format!("{drill}.svg")).is_file(), "no plot for {drill}");
    }
    // Every network fault was switched on and lifted; the node-down run ended in a promotion.
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(events.lines().filter(|l| l.contains("fault lifted")).count(), 5, "{events}");
    for f in ["Latency", "Bandwidth", "Drop", "HalfOpen", "Blackhole"] {
        assert!(events.contains(f), "no {f} step: {events}");
    }
    assert_eq!(events.lines().filter(|l| l.starts_with("node-down") && l.contains("promoted")).count(), 1);

    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    // The memory table: a row per client with a peak RSS of some MiB.
    for c in CLIENTS {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| {c} | 1 | ")) && l.contains("MiB"))
            .unwrap_or_else(|| panic!("no memory row for {c}"));
        let peak: f64 = row.split("**").nth(1).unwrap().trim_end_matches(" MiB").parse().unwrap();
        assert!(peak > 1.0, "{c}: peak RSS {peak} MiB: {row}");
    }
    // The durability cost: four rows, each with invalidations done and no error.
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `invalidate")).collect();
    assert_eq!(rows.len(), 4, "{readme}");
    for r in rows {
        let cells: Vec<&str> = r.split('|').map(str::trim).collect();
        assert!(cells[3].parse::<u64>().unwrap() > 10, "{r}");
        assert_eq!(cells[7], "0", "errors: {r}");
    }
}
