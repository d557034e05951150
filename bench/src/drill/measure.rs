//! From one client's recorded requests and the run's events to the drill's figures.

use std::time::Duration;

use super::fault::Events;
use super::load::{Outcome, Rec};
use super::ticker::{self, Gap};

/// One client's figures in one run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) requests: u64,
    pub(crate) ok: u64,
    /// Errors on the shards nothing was done to.
    pub(crate) err_healthy: u64,
    /// Errors on the shard the fault hit.
    pub(crate) err_faulty: u64,
    pub(crate) wrong: u64,
    pub(crate) stale: u64,
    /// Per shard: the longest time without a successful request, from the first fault to the
    /// end of the load, ms.
    pub(crate) stall_ms: Vec<f64>,
    /// Per shard: the same, less the time within it in which the drill's process did not run
    /// (see `ticker`): what is left is the client's own doing, ms.
    pub(crate) stall_scheduled_ms: Vec<f64>,
    /// The longest time after the fault in which the drill's process did not run, ms.
    pub(crate) unscheduled_ms: f64,
    /// The longest such time before the fault (the machine's own noise), ms, over every shard.
    pub(crate) baseline_gap_ms: f64,
    /// From the first fault until every shard serves again for good: the end of the first
    /// success on the faulty shard that started after the last error (on any shard) and after
    /// the last fault. `None`: never within the run.
    pub(crate) full_service_ms: Option<f64>,
    /// Per fault: from its end for the cluster (promotion, or `SIGCONT`) to the end of the first
    /// success on the faulty shard among requests started after the fault. `None`: never.
    pub(crate) served_after_ms: Vec<Option<f64>>,
    /// The same, less the time in between in which the drill's process did not run.
    pub(crate) served_after_scheduled_ms: Vec<Option<f64>>,
}

impl Metrics {
    /// The longest stall on a healthy shard, ms.
    pub(crate) fn stall_healthy_ms(&self, faulty: usize) -> f64 {
        self.stall_ms.iter().enumerate().filter(|(s, _)| *s != faulty).map(|(_, v)| *v).fold(0.0, f64::max)
    }

    /// The longest stall on a healthy shard less the time its process did not run, ms.
    pub(crate) fn stall_healthy_scheduled_ms(&self, faulty: usize) -> f64 {
        let v = self.stall_scheduled_ms.iter().enumerate().filter(|(s, _)| *s != faulty);
        v.map(|(_, v)| *v).fold(0.0, f64::max)
    }

    /// The longest stall on the faulty shard, ms.
    pub(crate) fn stall_faulty_ms(&self, faulty: usize) -> f64 {
        self.stall_ms.get(faulty).copied().unwrap_or(0.0)
    }

    /// Whether the client never came back to full service in the run.
    pub(crate) const fn never_recovered(&self) -> bool {
        self.full_service_ms.is_none()
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The longest time in `[from, to]` without a success ending, given sorted success ends.
fn longest_gap(ends: &[u64], from: u64, to: u64) -> u64 {
    longest_gap_less(ends, from, to, &[])
}

/// The same, each gap less the time `unscheduled` covers within it.
fn longest_gap_less(ends: &[u64], from: u64, to: u64, unscheduled: &[Gap]) -> u64 {
    let len = |a: u64, b: u64| (b - a).saturating_sub(ticker::covered(unscheduled, a, b));
    let mut last = from;
    let mut gap = 0;
    for &e in ends.iter().filter(|&&e| e > from && e <= to) {
        gap = gap.max(len(last, e));
        last = e;
    }
    gap.max(len(last.min(to), to))
}

/// The figures of one client's run: `recs` its requests, `shards` how many, `faulty` the shard
/// hit, `ev` what was done, `end` when the load stopped, `unscheduled` when the client's
/// process did not run.
pub(crate) fn measure(
    recs: &[Rec],
    shards: usize,
    faulty: usize,
    ev: &Events,
    end: Duration,
    unscheduled: &[Gap],
) -> Metrics {
    let us = |d: Duration| d.as_micros() as u64;
    let end = us(end);
    let fault = ev.first_fault().map_or(end, us);
    let last_fault = ev.last_fault().map_or(end, us);
    let mut m = Metrics {
        stall_ms: vec![0.0; shards],
        stall_scheduled_ms: vec![0.0; shards],
        unscheduled_ms: ms(ticker::longest_after(unscheduled, fault)),
        ..Metrics::default()
    };
    let mut ends: Vec<Vec<u64>> = vec![Vec::new(); shards];
    let mut last_error_end = 0;
    for r in recs {
        m.requests += 1;
        let s = usize::from(r.shard);
        match r.outcome {
            Outcome::Ok => {
                m.ok += 1;
                ends[s].push(r.end_us());
            }
            Outcome::Error => {
                if s == faulty {
                    m.err_faulty += 1;
                } else {
                    m.err_healthy += 1;
                }
                last_error_end = last_error_end.max(r.end_us());
            }
            Outcome::Wrong => m.wrong += 1,
            Outcome::Stale => m.stale += 1,
        }
    }
    for e in &mut ends {
        e.sort_unstable();
    }
    let start = recs.iter().map(|r| r.start_us).min().unwrap_or(0);
    for (s, e) in ends.iter().enumerate() {
        m.stall_ms[s] = ms(longest_gap(e, fault, end));
        m.stall_scheduled_ms[s] = ms(longest_gap_less(e, fault, end, unscheduled));
        m.baseline_gap_ms = m.baseline_gap_ms.max(ms(longest_gap(e, start, fault)));
    }
    let faulty_ok = |after: u64| {
        recs.iter()
            .filter(|r| usize::from(r.shard) == faulty && r.outcome == Outcome::Ok && r.start_us >= after)
            .map(Rec::end_us)
            .min()
    };
    let from = last_error_end.max(last_fault);
    m.full_service_ms = faulty_ok(from).map(|e| ms(e.saturating_sub(fault)));
    // Per fault: its end for the cluster and the end of the first success after it.
    let served: Vec<Option<(u64, u64)>> =
        ev.faults.iter().map(|&(f, back)| faulty_ok(us(f)).map(|e| (us(back), e))).collect();
    m.served_after_ms = served.iter().map(|s| s.map(|(back, e)| ms(e) - ms(back))).collect();
    m.served_after_scheduled_ms = served
        .iter()
        .map(|s| s.map(|(back, e)| ms(e) - ms(back) - ms(ticker::covered(unscheduled, back, e))))
        .collect();
    m
}

/// The longest time, from the first fault to the end of the load, in which no client had a
/// success on any healthy shard: a stall of the machine or of the servers, not of one client.
pub(crate) fn common_gap(clients: &[&[Rec]], faulty: usize, ev: &Events, end: Duration) -> f64 {
    let us = |d: Duration| d.as_micros() as u64;
    let end = us(end);
    let fault = ev.first_fault().map_or(end, us);
    let mut ends: Vec<u64> = clients
        .iter()
        .flat_map(|recs| recs.iter())
        .filter(|r| usize::from(r.shard) != faulty && r.outcome == Outcome::Ok)
        .map(Rec::end_us)
        .collect();
    ends.sort_unstable();
    ms(longest_gap(&ends, fault, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(start_ms: u64, lat_ms: u64, shard: u8, outcome: Outcome) -> Rec {
        Rec { start_us: start_ms * 1000, lat_us: lat_ms * 1000, shard, outcome }
    }

    fn events(fault_ms: u64, back_ms: u64) -> Events {
        Events {
            faults: vec![(Duration::from_millis(fault_ms), Duration::from_millis(back_ms))],
            ..Events::default()
        }
    }

    #[test]
    fn gaps_errors_and_recovery() {
        let mut recs = Vec::new();
        for t in (0..3000).step_by(10) {
            recs.push(rec(t, 1, 0, Outcome::Ok));
            // Shard 1 fails from 1000 to 1500 and serves again from 1600.
            let o = if (1000..1500).contains(&t) {
                Outcome::Error
            } else if (1500..1600).contains(&t) {
                continue;
            } else {
                Outcome::Ok
            };
            recs.push(rec(t, 1, 1, o));
        }
        recs.push(rec(2000, 1, 1, Outcome::Stale));
        let m = measure(&recs, 2, 1, &events(1000, 1550), Duration::from_millis(3000), &[]);
        assert_eq!(m.err_faulty, 50);
        assert_eq!(m.err_healthy, 0);
        assert_eq!(m.stale, 1);
        assert!((m.stall_ms[1] - 601.0).abs() < 1.0, "{m:?}");
        assert!(m.stall_ms[0] < 11.0);
        assert!((m.full_service_ms.unwrap() - 601.0).abs() < 1.0, "{m:?}");
        // The first success on shard 1 started after the fault ends at 1601: 51 ms after 1550.
        assert!((m.served_after_ms[0].unwrap() - 51.0).abs() < 1.0, "{m:?}");
        assert!(!m.never_recovered());
    }

    #[test]
    fn a_stall_of_every_client_at_once_is_common() {
        let a: Vec<Rec> =
            (0..30).filter(|t| !(10..20).contains(t)).map(|t| rec(t * 100, 1, 0, Outcome::Ok)).collect();
        let b: Vec<Rec> =
            (0..30).filter(|t| !(12..16).contains(t)).map(|t| rec(t * 100, 1, 0, Outcome::Ok)).collect();
        let ev = events(500, 600);
        // a stalls 1.1 s, b 0.5 s: at once only from 1.2 s to 1.6 s.
        let g = common_gap(&[&a, &b], 1, &ev, Duration::from_millis(3000));
        assert!((g - 500.0).abs() < 1.0, "{g}");
        // The faulty shard's successes do not count.
        assert!(common_gap(&[&a, &b], 0, &ev, Duration::from_millis(3000)) >= 2499.0);
    }

    #[test]
    fn a_client_stuck_to_the_end_never_recovers() {
        let mut recs = vec![rec(0, 1, 0, Outcome::Ok)];
        for t in (1000..3000).step_by(100) {
            recs.push(rec(t, 1000, 0, Outcome::Error));
        }
        let m = measure(&recs, 1, 0, &events(1000, 1500), Duration::from_millis(3000), &[]);
        assert!(m.never_recovered());
        assert_eq!(m.served_after_ms, vec![None]);
        assert!(m.stall_ms[0] >= 2000.0);
    }

    #[test]
    fn time_the_process_did_not_run_is_taken_out_of_a_stall() {
        // Shard 0 serves every 10 ms but not from 1200 to 1500 ms; the process did not run from
        // 1250 to 1450 ms.
        let mut recs: Vec<Rec> =
            (0..300).filter(|t| !(120..150).contains(t)).map(|t| rec(t * 10, 1, 0, Outcome::Ok)).collect();
        // Shard 1, the faulty one, is served again from 1400 ms (ends at 1401).
        recs.extend((140..300).map(|t| rec(t * 10, 1, 1, Outcome::Ok)));
        recs.sort_by_key(|r| r.start_us);
        let gap = [Gap { start_us: 1_250_000, len_us: 200_000 }];
        let m = measure(&recs, 2, 1, &events(1000, 1100), Duration::from_millis(3000), &gap);
        assert!((m.stall_ms[0] - 310.0).abs() < 1.0, "{m:?}");
        assert!((m.stall_scheduled_ms[0] - 110.0).abs() < 1.0, "{m:?}");
        assert!((m.stall_healthy_scheduled_ms(1) - 110.0).abs() < 1.0, "{m:?}");
        assert!((m.unscheduled_ms - 200.0).abs() < 1.0, "{m:?}");
        // Served 301 ms after the fault's end at 1100 ms, 151 ms of it unscheduled.
        assert!((m.served_after_ms[0].unwrap() - 301.0).abs() < 1.0, "{m:?}");
        assert!((m.served_after_scheduled_ms[0].unwrap() - 150.0).abs() < 1.0, "{m:?}");
        // Without the gap, nothing is taken out.
        let m = measure(&recs, 2, 1, &events(1000, 1100), Duration::from_millis(3000), &[]);
        assert!((m.stall_scheduled_ms[0] - m.stall_ms[0]).abs() < 0.001, "{m:?}");
    }
}
