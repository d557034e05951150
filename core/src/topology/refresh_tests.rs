//! Refresh policy tests, in virtual time.
//!
//! All instants are offsets from one base `Instant`. The core may not read the clock, and clippy
//! enforces that for test code too, so the base comes from `base()`, the one place allowed to.

use core::time::Duration;
use std::time::Instant;

use super::*;
use crate::Rng;

/// The origin of virtual time. Its value is irrelevant; only offsets from it matter.
#[allow(clippy::disallowed_methods)]
fn base() -> Instant {
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn policy(config: RefreshConfig) -> RefreshPolicy {
    RefreshPolicy::new(config).unwrap_or_else(|e| panic!("valid config: {e}"))
}

fn no_periodic() -> RefreshConfig {
    RefreshConfig { periodic: None, ..RefreshConfig::default() }
}

/// Runs a started refresh to completion right away.
fn run_once(p: &mut RefreshPolicy, now: Instant, ok: bool, rng: &mut Rng) {
    assert!(p.poll_start(now), "a refresh must be startable");
    p.finished(now, ok, 6, rng);
}

#[test]
fn startup_refreshes_immediately_and_alone() {
    let t0 = base();
    let mut rng = Rng::new(1);
    let mut p = policy(RefreshConfig::default());
    assert_eq!(p.next_deadline(), None, "nothing to do before a trigger");
    assert!(!p.poll_start(t0));
    p.request(t0, RefreshReason::Startup, 1, &mut rng);
    assert_eq!(p.next_deadline(), Some(t0));
    assert!(p.poll_start(t0));
    assert_eq!(p.in_flight_reason(), Some(RefreshReason::Startup));
    assert!(!p.poll_start(t0), "never two in flight");
    assert_eq!(p.next_deadline(), None, "nothing can start while one runs");
    p.finished(t0 + ms(5), true, 6, &mut rng);
    assert!(!p.in_flight());
    assert_eq!(p.started(), 1);
}

/// The storm of valkey-go#140 / rueidis#335 in miniature: 10,000 MOVEDs in one second.
fn storm(node_count: usize, seed: u64) -> (u64, Vec<Duration>) {
    let t0 = base();
    let mut rng = Rng::new(seed);
    let mut p = policy(no_periodic());
    let refresh_time = ms(3);
    let mut running: Option<Instant> = None; // finish time of the refresh in flight
    let mut starts = Vec::new();
    let mut trigger = 0u64;
    let mut now = t0;
    loop {
        let next_trigger = (trigger < 10_000).then(|| t0 + Duration::from_micros(trigger * 100));
        let next = [next_trigger, running, p.next_deadline()].into_iter().flatten().min();
        let Some(next) = next else { break };
        assert!(next >= now, "time never goes backwards");
        now = next;
        if running.is_some_and(|f| f <= now) {
            running = None;
            p.finished(now, true, node_count, &mut rng);
        }
        if next_trigger.is_some_and(|t| t <= now) {
            p.request(now, RefreshReason::Moved, node_count, &mut rng);
            trigger += 1;
        }
        if p.poll_start(now) {
            assert!(running.is_none(), "two refreshes in flight");
            running = Some(now + refresh_time);
            starts.push(now - t0);
        }
        assert!(now - t0 < Duration::from_secs(60), "the storm must end");
    }
    assert_eq!(p.next_deadline(), None, "quiet after the storm");
    assert_eq!(p.started(), u64::try_from(starts.len()).unwrap_or(0));
    (p.coalesced(), starts)
}

#[test]
fn burst_of_moved_gives_bounded_refreshes() {
    let config = no_periodic();
    let burst = Duration::from_secs(1);
    for (nodes, seed) in [(6, 1), (6, 2), (100, 3), (3000, 4)] {
        let (coalesced, starts) = storm(nodes, seed);
        let jitter = config.jitter_bound(nodes);
        // Starts lie in [first trigger, last trigger + refresh time + interval + jitter] and are
        // at least `min_interval` apart (every refresh succeeds).
        let span = burst + ms(3) + config.min_interval + jitter;
        let bound = span.as_nanos() / config.min_interval.as_nanos() + 1;
        let n = starts.len();
        assert!(n as u128 <= bound, "{nodes} nodes: {n} refreshes, bound {bound}");
        // While triggers keep coming, the gap between starts is at most interval + jitter.
        let lower = if jitter < burst {
            (burst - jitter).as_nanos() / (config.min_interval + jitter).as_nanos() + 1
        } else {
            1
        };
        assert!(n as u128 >= lower, "{nodes} nodes: {n} refreshes, a storm still refreshes ({lower})");
        for w in starts.windows(2) {
            assert!(w[1] - w[0] >= config.min_interval, "{nodes} nodes: starts {:?} too close", w);
        }
        assert_eq!(coalesced + n as u64, 10_000, "every trigger either started a refresh or coalesced");
    }
}

#[test]
fn triggers_during_a_refresh_coalesce_into_one_follow_up() {
    let t0 = base();
    let mut rng = Rng::new(9);
    let mut p = policy(no_periodic());
    p.request(t0, RefreshReason::Startup, 6, &mut rng);
    assert!(p.poll_start(t0));
    for i in 0..100 {
        p.request(t0 + ms(i / 10), RefreshReason::ConnectionLost, 6, &mut rng);
    }
    assert_eq!(p.pending_reason(), Some(RefreshReason::ConnectionLost));
    assert_eq!(p.coalesced(), 99);
    p.finished(t0 + ms(20), true, 6, &mut rng);
    let due = p.next_deadline().unwrap_or(t0);
    let jitter = RefreshConfig::default().jitter_bound(6);
    assert!(due >= t0 + ms(100) && due <= t0 + ms(100) + jitter, "follow-up waits for the interval");
    assert!(!p.poll_start(due - Duration::from_nanos(1)));
    assert!(p.poll_start(due));
    p.finished(due + ms(1), true, 6, &mut rng);
    assert_eq!(p.next_deadline(), None, "exactly one follow-up");
    assert_eq!(p.started(), 2);
}

#[test]
fn periodic_refresh_fires() {
    let t0 = base();
    let mut rng = Rng::new(5);
    let config = RefreshConfig { periodic: Some(Duration::from_secs(30)), ..RefreshConfig::default() };
    let mut p = policy(config);
    p.request(t0, RefreshReason::Startup, 1, &mut rng);
    run_once(&mut p, t0, true, &mut rng);
    let due = p.next_deadline().unwrap_or(t0);
    let (lo, hi) = (t0 + Duration::from_secs(30), t0 + Duration::from_secs(30) + Duration::from_millis(3750));
    assert!(due >= lo && due <= hi, "periodic due within period + period/8");
    assert!(!p.poll_start(lo - ms(1)));
    assert!(p.poll_start(due));
    assert_eq!(p.in_flight_reason(), Some(RefreshReason::Periodic));
    p.finished(due + ms(2), true, 6, &mut rng);
    let again = p.next_deadline().unwrap_or(t0);
    assert!(again >= due + Duration::from_secs(30), "rearmed from the last success");
}

#[test]
fn failed_refresh_backs_off_and_is_bounded() {
    let t0 = base();
    let mut rng = Rng::new(11);
    let config = no_periodic();
    let jitter = config.jitter_bound(6);
    let mut p = policy(config.clone());
    p.request(t0, RefreshReason::Startup, 6, &mut rng);
    let mut now = t0;
    let mut gaps = Vec::new();
    for k in 1..=8u32 {
        assert!(p.poll_start(now));
        now += ms(1);
        p.finished(now, false, 6, &mut rng);
        assert_eq!(p.consecutive_failures(), k);
        // A trigger during the backoff must not shorten it.
        p.request(now, RefreshReason::ClusterDown, 6, &mut rng);
        let due = p.next_deadline().unwrap_or(now);
        let gap = due - now;
        assert!(gap >= config.backoff(k) && gap <= config.backoff(k) + jitter, "failure {k}: gap {gap:?}");
        assert!(!p.poll_start(now + config.backoff(k) - Duration::from_nanos(1)));
        gaps.push(config.backoff(k));
        now = due;
    }
    assert_eq!(gaps[0], ms(50), "first retry comes sooner than the interval");
    assert_eq!(gaps[1], ms(100));
    assert_eq!(gaps[5], Duration::from_secs(1) + ms(600));
    assert_eq!(gaps[6], Duration::from_secs(2), "capped at retry_max");
    assert_eq!(gaps[7], Duration::from_secs(2));
    assert_eq!(config.backoff(u32::MAX), Duration::from_secs(2), "no overflow");
    // Success resets the backoff: the next trigger waits only for the interval.
    assert!(p.poll_start(now));
    p.finished(now, true, 6, &mut rng);
    assert_eq!(p.consecutive_failures(), 0);
    p.request(now, RefreshReason::Manual, 6, &mut rng);
    assert_eq!(p.next_deadline(), Some(now + config.min_interval));
}

#[test]
fn failure_storm_is_bounded_by_the_backoff() {
    // Every refresh fails and triggers never stop: starts follow the backoff schedule.
    let config = no_periodic();
    let t0 = base();
    let mut rng = Rng::new(21);
    let mut p = policy(config.clone());
    let window = Duration::from_secs(10);
    let mut now = t0;
    let mut n = 0u32;
    while now - t0 < window {
        p.request(now, RefreshReason::ConnectionLost, 6, &mut rng);
        if p.poll_start(now) {
            n += 1;
            p.finished(now + ms(1), false, 6, &mut rng);
        }
        now += ms(1);
    }
    // Least total time for n starts: sum over k < n of (1 ms refresh + backoff(k)).
    let mut bound = 0u32;
    let mut elapsed = Duration::ZERO;
    while elapsed < window {
        bound += 1;
        elapsed += ms(1) + config.backoff(bound);
    }
    assert!(n <= bound, "{n} refreshes in 10 s of failures, bound {bound}");
    assert!(n >= 5, "failures are still retried ({n})");
}

#[test]
fn jitter_is_bounded_and_deterministic() {
    let config = no_periodic();
    let t0 = base();
    let due_for = |seed: u64, nodes: usize| {
        let mut rng = Rng::new(seed);
        let mut p = policy(config.clone());
        p.request(t0, RefreshReason::Moved, nodes, &mut rng);
        p.next_deadline().map(|d| d - t0)
    };
    for nodes in [1, 6, 100, 1000, 100_000] {
        let bound = config.jitter_bound(nodes);
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let d = due_for(seed, nodes).unwrap_or(Duration::MAX);
            assert!(d <= bound, "{nodes} nodes: jitter {d:?} above {bound:?}");
            assert_eq!(Some(d), due_for(seed, nodes), "same seed, same jitter");
            seen.insert(d);
        }
        assert!(seen.len() > 40, "{nodes} nodes: jitter must vary with the seed");
    }
    assert_eq!(config.jitter_bound(6), ms(12));
    assert_eq!(config.jitter_bound(1000), Duration::from_secs(2));
    assert_eq!(config.jitter_bound(usize::MAX), Duration::from_secs(5));
}

#[test]
fn manual_skips_jitter_but_not_the_interval() {
    let t0 = base();
    let mut rng = Rng::new(3);
    let mut p = policy(no_periodic());
    p.request(t0, RefreshReason::Startup, 6, &mut rng);
    run_once(&mut p, t0, true, &mut rng);
    p.request(t0 + ms(10), RefreshReason::Moved, 3000, &mut rng);
    let jittered = p.next_deadline().unwrap_or(t0);
    p.request(t0 + ms(20), RefreshReason::Manual, 3000, &mut rng);
    assert_eq!(p.pending_reason(), Some(RefreshReason::Manual));
    assert_eq!(p.next_deadline(), Some(t0 + ms(100)));
    assert!(jittered >= t0 + ms(100));
}

#[test]
fn finished_without_refresh_is_ignored() {
    let t0 = base();
    let mut rng = Rng::new(4);
    let mut p = policy(RefreshConfig::default());
    p.finished(t0, false, 6, &mut rng);
    assert_eq!(p.consecutive_failures(), 0);
    assert_eq!(p.next_deadline(), None);
}

#[test]
fn random_operations_never_overlap() {
    let t0 = base();
    let mut rng = Rng::new(77);
    let mut p = policy(RefreshConfig::default());
    let mut running = false;
    let mut now = t0;
    let reasons = [
        RefreshReason::Startup,
        RefreshReason::Moved,
        RefreshReason::ConnectionLost,
        RefreshReason::ClusterDown,
        RefreshReason::ReadOnly,
        RefreshReason::Periodic,
        RefreshReason::Manual,
    ];
    for _ in 0..20_000 {
        now += Duration::from_micros(rng.below(20_000));
        match rng.below(3) {
            0 => {
                let r = reasons[usize::try_from(rng.below(7)).unwrap_or(0)];
                p.request(now, r, 6, &mut rng);
            }
            1 => {
                let started = p.poll_start(now);
                assert!(!(started && running), "two refreshes in flight");
                running |= started;
            }
            _ => {
                if running {
                    p.finished(now, rng.below(2) == 0, 6, &mut rng);
                    running = false;
                }
            }
        }
        assert_eq!(p.in_flight(), running);
        if let Some(d) = p.next_deadline() {
            assert!(!running);
            assert!(d >= t0);
        }
    }
}

#[test]
fn config_validation() {
    assert_eq!(RefreshConfig::default().validate(), Ok(()));
    let bad = |c: RefreshConfig| RefreshPolicy::new(c).err();
    let d = RefreshConfig::default;
    assert_eq!(
        bad(RefreshConfig { min_interval: Duration::ZERO, ..d() }),
        Some(RefreshConfigError::MinIntervalTooSmall)
    );
    assert_eq!(
        bad(RefreshConfig { retry_initial: Duration::ZERO, ..d() }),
        Some(RefreshConfigError::BadRetry)
    );
    assert_eq!(bad(RefreshConfig { retry_initial: ms(3000), ..d() }), Some(RefreshConfigError::BadRetry));
    assert_eq!(
        bad(RefreshConfig { periodic: Some(ms(10)), ..d() }),
        Some(RefreshConfigError::PeriodTooShort)
    );
    let long = Duration::from_secs(7200);
    assert_eq!(
        bad(RefreshConfig { max_jitter: long, ..d() }),
        Some(RefreshConfigError::TooLong("max_jitter"))
    );
    assert_eq!(
        bad(RefreshConfig { periodic: Some(Duration::from_secs(100_000)), ..d() }),
        Some(RefreshConfigError::TooLong("periodic"))
    );
    assert_eq!(bad(RefreshConfig { periodic: None, ..d() }), None);
}

#[test]
fn later_triggers_do_not_move_a_pending_deadline() {
    let t0 = base();
    let mut rng = Rng::new(8);
    let mut p = policy(no_periodic());
    p.request(t0, RefreshReason::Startup, 6, &mut rng);
    run_once(&mut p, t0, true, &mut rng);
    p.request(t0 + ms(1), RefreshReason::ClusterDown, 1000, &mut rng);
    let due = p.next_deadline();
    assert!(due.is_some_and(|d| d >= t0 + ms(100)));
    for i in 2..1000 {
        p.request(t0 + ms(i / 20), RefreshReason::Moved, 1000, &mut rng);
        assert_eq!(p.next_deadline(), due, "the jitter is drawn once per pending refresh");
    }
    assert_eq!(p.pending_reason(), Some(RefreshReason::ClusterDown));
}

/// Fuzz find (`client_ops`): a `Startup` trigger (the client still has no topology) made the
/// pending refresh `Immediate` even after a failure, cutting the backoff to nothing. A client
/// whose refresh failed at once (its only seed connection full: `QueueFull`) then asked to be
/// woken at the same instant for ever, and with seeds that refuse connections it redialled
/// them back to back.
#[test]
fn startup_triggers_do_not_cut_a_failure_backoff() {
    let t0 = base();
    let mut rng = Rng::new(21);
    let config = no_periodic();
    let mut p = policy(config.clone());
    p.request(t0, RefreshReason::Startup, 1, &mut rng);
    assert_eq!(p.next_deadline(), Some(t0), "the first load starts at once");
    let mut now = t0;
    for k in 1..=6u32 {
        assert!(p.poll_start(now));
        p.finished(now, false, 1, &mut rng);
        p.request(now, RefreshReason::Startup, 1, &mut rng);
        let due = p.next_deadline().unwrap_or(now);
        assert_eq!(due, now + config.backoff(k), "attempt {k}: the backoff holds, without jitter");
        assert!(!p.poll_start(now), "attempt {k}: no retry at the instant of the failure");
        now = due;
    }
}
