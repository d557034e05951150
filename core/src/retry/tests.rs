use core::time::Duration;
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::node_addr::NodeAddr;
use crate::rng::Rng;
use crate::server_error::ServerError;

/// The one real instant the tests offset from. The core never reads the clock (clippy bans
/// `Instant::now` there); tests need a base `Instant` to build others from, and only the
/// differences from it matter.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn node(port: u16) -> NodeAddr {
    NodeAddr::new("10.0.0.1", port)
}

#[test]
fn defaults_are_valid_and_fast() {
    let cfg = RetryConfig::default();
    assert_eq!(cfg.validate(), Ok(()));
    let mut rng = Rng::new(1);
    for _ in 0..200 {
        let first = backoff(1, &cfg, &mut rng);
        assert!(first >= ms(1) && first <= ms(2), "{first:?}");
    }
    // Worst case over every retry the defaults allow: far below redis-rs's 1.28 s first wait.
    let worst: Duration = (1..cfg.max_attempts)
        .map(|r| cfg.base_backoff.saturating_mul(1 << (r - 1)).min(cfg.max_backoff))
        .sum();
    assert_eq!(worst, ms(62));
    assert!(backoff(40, &cfg, &mut rng) <= cfg.max_backoff);
    assert!(backoff(u32::MAX, &cfg, &mut rng) >= cfg.max_backoff / 2);
}

#[test]
fn config_validation() {
    let ok = RetryConfig::default();
    let mut c = ok.clone();
    c.max_attempts = 0;
    assert_eq!(c.validate(), Err(RetryConfigError::ZeroAttempts));
    let mut c = ok.clone();
    c.base_backoff = Duration::ZERO;
    assert_eq!(c.validate(), Err(RetryConfigError::ZeroBaseBackoff));
    let mut c = ok.clone();
    c.max_backoff = ms(1);
    assert_eq!(c.validate(), Err(RetryConfigError::MaxBelowBase { base: ms(2), max: ms(1) }));
    let mut c = ok;
    c.max_backoff = Duration::from_secs(11);
    assert_eq!(c.validate(), Err(RetryConfigError::MaxTooLong(Duration::from_secs(11))));
}

#[test]
fn full_and_equal_jitter_bounds() {
    let mut cfg = RetryConfig::default();
    let mut rng = Rng::new(9);
    let mut saw_small = false;
    cfg.jitter = Jitter::Full;
    for retry in 1..12 {
        let cap = ms(2 << (retry - 1)).min(ms(128));
        for _ in 0..50 {
            let w = backoff(retry, &cfg, &mut rng);
            assert!(w <= cap);
            saw_small |= w < cap / 2;
        }
    }
    assert!(saw_small, "full jitter never went below half the cap");
    cfg.jitter = Jitter::Equal;
    for retry in 1..12 {
        let cap = ms(2 << (retry - 1)).min(ms(128));
        for _ in 0..50 {
            let w = backoff(retry, &cfg, &mut rng);
            assert!(w >= cap / 2 && w <= cap, "retry {retry}: {w:?}");
        }
    }
}

#[test]
fn next_retry_at_respects_deadline_and_attempts() {
    let cfg = RetryConfig::default();
    let mut rng = Rng::new(3);
    let now = t0();
    let at = next_retry_at(now, 1, now + ms(50), &cfg, &mut rng).unwrap();
    assert!(at > now && at <= now + ms(2));
    // A 1 ms budget cannot hold the 1–2 ms first wait.
    assert_eq!(next_retry_at(now, 1, now + ms(1), &cfg, &mut rng), None);
    assert_eq!(next_retry_at(now, cfg.max_attempts, now + ms(500), &cfg, &mut rng), None);
}

fn server(text: &'static str) -> ServerError {
    ServerError::new(text)
}

#[test]
fn decisions_per_failure() {
    let cfg = RetryConfig::default();
    let now = t0();
    let mut rng = (Rng::new(5), now);
    let origin = node(7000);
    fn run(failure: Failure<'_>, idem: Idempotency, rng: &mut (Rng, Instant)) -> (RetryDecision, u32) {
        let (rng, now) = (&mut rng.0, rng.1);
        let mut b = Budget::new(now + ms(100));
        let d = decide(&mut b, failure, idem, now, &RetryConfig::default(), rng);
        (d, b.attempts_used())
    }
    use Idempotency::{Idempotent, NonIdempotent};

    let moved = server("MOVED 3999 :6381");
    let (d, used) = run(Failure::Server { error: &moved, origin: &origin }, NonIdempotent, &mut rng);
    assert_eq!(d, RetryDecision::RetryNow { target: Some(node(6381)), refresh: true });
    assert_eq!(used, 2);

    let ask = server("ASK 3999 10.0.0.2:7002");
    let (d, _) = run(Failure::Server { error: &ask, origin: &origin }, NonIdempotent, &mut rng);
    assert_eq!(d, RetryDecision::Ask(NodeAddr::new("10.0.0.2", 7002)));

    for (text, refresh) in [
        ("TRYAGAIN Multiple keys request during rehashing of slot", false),
        ("LOADING Valkey is loading the dataset in memory", false),
        ("CLUSTERDOWN Hash slot not served", true),
        ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", true),
        ("READONLY You can't write against a read only replica.", true),
    ] {
        let e = ServerError::new(text);
        let (d, used) = run(Failure::Server { error: &e, origin: &origin }, NonIdempotent, &mut rng);
        let RetryDecision::RetryAt { at, refresh: r } = d else { panic!("{text}: {d:?}") };
        assert_eq!(r, refresh, "{text}");
        assert!(at > now && at <= now + ms(2), "{text}");
        // READONLY spends an attempt; transient cluster states wait without spending one.
        let expected = if text.starts_with("READONLY") { 2 } else { 1 };
        assert_eq!(used, expected, "{text}");
    }

    for text in [
        "OOM command not allowed when used memory > 'maxmemory'.",
        "NOSCRIPT No matching script.",
        "MOVED 99999 a:1",
    ] {
        let e = ServerError::new(text);
        let (d, used) = run(Failure::Server { error: &e, origin: &origin }, Idempotent, &mut rng);
        assert_eq!(d, RetryDecision::Fail(FailReason::Server), "{text}");
        assert_eq!(used, 1);
    }

    let lost_written = Failure::ConnectionLost { written: true };
    assert_eq!(run(lost_written, NonIdempotent, &mut rng).0, RetryDecision::Fail(FailReason::MaybeExecuted));
    assert_eq!(
        run(Failure::Timeout, NonIdempotent, &mut rng).0,
        RetryDecision::Fail(FailReason::MaybeExecuted)
    );
    assert!(matches!(
        run(lost_written, Idempotent, &mut rng).0,
        RetryDecision::RetryAt { refresh: true, .. }
    ));
    assert!(matches!(
        run(Failure::Timeout, Idempotent, &mut rng).0,
        RetryDecision::RetryAt { refresh: false, .. }
    ));
    let lost_unwritten = Failure::ConnectionLost { written: false };
    assert!(matches!(
        run(lost_unwritten, NonIdempotent, &mut rng).0,
        RetryDecision::RetryAt { refresh: true, .. }
    ));

    // At or past the deadline nothing is retried, not even a MOVED.
    let mut b = Budget::new(now);
    let d =
        decide(&mut b, Failure::Server { error: &moved, origin: &origin }, Idempotent, now, &cfg, &mut rng.0);
    assert_eq!(d, RetryDecision::Fail(FailReason::DeadlineExceeded));
    // A backoff that would end past the deadline.
    let mut b = Budget::new(now + Duration::from_micros(900));
    let d = decide(&mut b, Failure::Timeout, Idempotent, now, &cfg, &mut rng.0);
    assert_eq!(d, RetryDecision::Fail(FailReason::WouldPassDeadline));
    assert_eq!(b.attempts_used(), 1);
}

#[test]
fn attempts_run_out() {
    let cfg = RetryConfig { max_attempts: 3, ..RetryConfig::default() };
    let mut rng = Rng::new(8);
    let mut now = t0();
    let mut b = Budget::new(now + Duration::from_secs(5));
    let mut retries = 0;
    loop {
        match decide(
            &mut b,
            Failure::ConnectionLost { written: false },
            Idempotency::Idempotent,
            now,
            &cfg,
            &mut rng,
        ) {
            RetryDecision::RetryAt { at, .. } => {
                retries += 1;
                now = at;
            }
            RetryDecision::Fail(reason) => {
                assert_eq!(reason, FailReason::AttemptsExhausted { attempts: 3 });
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(retries, 2);
    assert_eq!(b.attempts_left(&cfg), 0);
}

#[test]
fn transient_cluster_states_retry_until_the_deadline() {
    // TRYAGAIN / CLUSTERDOWN / LOADING: the server did not run the command; retry at the capped
    // backoff for as long as the deadline allows, not just `max_attempts` times.
    let cfg = RetryConfig::default();
    let mut rng = Rng::new(3);
    let start = t0();
    let deadline = start + Duration::from_millis(1000);
    let mut b = Budget::new(deadline);
    let e = server("TRYAGAIN x");
    let origin = node(1);
    let mut now = start;
    let mut retries = 0u32;
    loop {
        match decide(
            &mut b,
            Failure::Server { error: &e, origin: &origin },
            Idempotency::NonIdempotent,
            now,
            &cfg,
            &mut rng,
        ) {
            RetryDecision::RetryAt { at, .. } => {
                assert!(at < deadline);
                retries += 1;
                now = at;
            }
            RetryDecision::Fail(reason) => {
                assert_eq!(reason, FailReason::WouldPassDeadline);
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(retries < 1000, "bounded by the deadline");
    }
    assert!(
        retries > cfg.max_attempts,
        "{retries} retries in 1 s, more than the {} attempts",
        cfg.max_attempts
    );
    assert!(now > start + Duration::from_millis(700), "kept retrying close to the deadline");
}

#[test]
fn moved_ping_pong_is_a_loop() {
    let cfg = RetryConfig { max_attempts: 50, max_redirects: 50, ..RetryConfig::default() };
    let mut rng = Rng::new(2);
    let now = t0();
    let mut b = Budget::new(now + Duration::from_secs(1));
    let (a, bb) = (node(7000), node(7001));
    let to_b = server("MOVED 42 10.0.0.1:7001");
    let to_a = server("MOVED 42 10.0.0.1:7000");
    let idem = Idempotency::Idempotent;
    // A -> B: new node.
    let d = decide(&mut b, Failure::Server { error: &to_b, origin: &a }, idem, now, &cfg, &mut rng);
    assert_eq!(d, RetryDecision::RetryNow { target: Some(bb.clone()), refresh: true });
    // B -> A: one flip back is tolerated.
    let d = decide(&mut b, Failure::Server { error: &to_a, origin: &bb }, idem, now, &cfg, &mut rng);
    assert_eq!(d, RetryDecision::RetryNow { target: Some(a.clone()), refresh: true });
    // A -> B again: a loop. No immediate follow: wait for the nodes to agree, with a refresh.
    let d = decide(&mut b, Failure::Server { error: &to_b, origin: &a }, idem, now, &cfg, &mut rng);
    let RetryDecision::RetryAt { at, refresh: true } = d else { panic!("a loop waits: {d:?}") };
    assert!(at > now && at < now + Duration::from_secs(1));
    assert_eq!(b.redirects(), 3);
    // Still looping when the deadline is near: the loop is reported.
    let late = now + Duration::from_millis(999);
    let d = decide(&mut b, Failure::Server { error: &to_b, origin: &a }, idem, late, &cfg, &mut rng);
    assert_eq!(d, RetryDecision::Fail(FailReason::RedirectLoop { slot: Slot::new(42).unwrap() }));

    // Different slots do not count against each other.
    let mut b = Budget::new(now + Duration::from_secs(1));
    for s in 0..4u16 {
        let e = ServerError::new(format!("MOVED {s} 10.0.0.1:7001"));
        let d = decide(&mut b, Failure::Server { error: &e, origin: &a }, idem, now, &cfg, &mut rng);
        assert!(matches!(d, RetryDecision::RetryNow { .. }), "{d:?}");
    }
}

#[test]
fn redirect_chain_is_capped() {
    let cfg = RetryConfig { max_attempts: 50, ..RetryConfig::default() };
    let mut rng = Rng::new(2);
    let now = t0();
    let mut b = Budget::new(now + Duration::from_secs(1));
    let mut origin = node(7000);
    for i in 1..=6u16 {
        let e = ServerError::new(format!("MOVED 9 10.0.0.1:{}", 7000 + i));
        let d = decide(
            &mut b,
            Failure::Server { error: &e, origin: &origin },
            Idempotency::Idempotent,
            now,
            &cfg,
            &mut rng,
        );
        if i <= 5 {
            assert_eq!(d, RetryDecision::RetryNow { target: Some(node(7000 + i)), refresh: true });
        } else {
            // Past the cap: no more immediate hops; wait and refresh.
            assert!(matches!(d, RetryDecision::RetryAt { refresh: true, .. }), "{d:?}");
            let late = now + Duration::from_millis(999);
            let d = decide(
                &mut b,
                Failure::Server { error: &e, origin: &origin },
                Idempotency::Idempotent,
                late,
                &cfg,
                &mut rng,
            );
            assert_eq!(d, RetryDecision::Fail(FailReason::TooManyRedirects { redirects: 7 }));
        }
        origin = node(7000 + i);
    }
}

#[derive(Clone, Debug)]
enum Step {
    Moved { slot: u16, port: u16 },
    Ask { port: u16 },
    Backoff(u8),
    Final,
    Lost(bool),
    Timeout,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u16..4, 7000u16..7004).prop_map(|(slot, port)| Step::Moved { slot, port }),
        (7000u16..7004).prop_map(|port| Step::Ask { port }),
        (0u8..5).prop_map(Step::Backoff),
        Just(Step::Final),
        any::<bool>().prop_map(Step::Lost),
        Just(Step::Timeout),
    ]
}

fn config() -> impl Strategy<Value = RetryConfig> {
    (1u32..10, 1u64..20_000, 1u64..64, any::<bool>(), 0u32..8, 0u32..3).prop_map(
        |(attempts, base_us, factor, full, redirects, revisits)| RetryConfig {
            max_attempts: attempts,
            base_backoff: Duration::from_micros(base_us),
            max_backoff: Duration::from_micros(base_us * factor),
            jitter: if full { Jitter::Full } else { Jitter::Equal },
            max_redirects: redirects,
            max_moved_revisits: revisits,
        },
    )
}

proptest! {
    #[test]
    fn attempts_and_deadline_are_never_exceeded(
        cfg in config(),
        steps in proptest::collection::vec(step(), 1..40),
        budget_ms in 0u64..300,
        seed in any::<u64>(),
        idempotent in any::<bool>(),
    ) {
        prop_assert!(cfg.validate().is_ok());
        let texts = ["TRYAGAIN x", "CLUSTERDOWN x", "LOADING x", "MASTERDOWN x", "READONLY x"];
        let mut rng = Rng::new(seed);
        let start = t0();
        let deadline = start + Duration::from_millis(budget_ms);
        let mut now = start;
        let mut budget = Budget::new(deadline);
        let mut sends = 1u32;
        // Retries of transient cluster states (and waits for looping redirects to converge) are
        // bounded by the deadline, not the attempts.
        let mut transient = 0u32;
        // Redirects followed at once.
        let mut hops = 0u32;
        let mut origin = node(7000);
        let idem = if idempotent { Idempotency::Idempotent } else { Idempotency::NonIdempotent };
        for s in steps {
            let error = match &s {
                Step::Moved { slot, port } => Some(ServerError::new(format!("MOVED {slot} :{port}"))),
                Step::Ask { port } => Some(ServerError::new(format!("ASK 1 :{port}"))),
                Step::Backoff(i) => Some(ServerError::new(texts[usize::from(*i)])),
                Step::Final => Some(ServerError::new("ERR boom")),
                _ => None,
            };
            let failure = match (&s, &error) {
                (_, Some(error)) => Failure::Server { error, origin: &origin },
                (Step::Lost(written), None) => Failure::ConnectionLost { written: *written },
                _ => Failure::Timeout,
            };
            let decision = decide(&mut budget, failure, idem, now, &cfg, &mut rng);
            match decision {
                RetryDecision::RetryNow { target, .. } => {
                    sends += 1;
                    hops += 1;
                    if let Some(t) = target {
                        origin = t;
                    }
                    now += Duration::from_micros(50);
                }
                RetryDecision::Ask(t) => {
                    sends += 1;
                    hops += 1;
                    origin = t;
                    now += Duration::from_micros(50);
                }
                RetryDecision::RetryAt { at, .. } => {
                    prop_assert!(at < deadline, "retry at {:?} not before deadline", at - start);
                    prop_assert!(at >= now);
                    sends += 1;
                    if matches!(s, Step::Backoff(i) if i < 4) || matches!(s, Step::Moved { .. } | Step::Ask { .. }) {
                        transient += 1;
                    }
                    now = at;
                }
                RetryDecision::Fail(reason) => {
                    if now >= deadline {
                        prop_assert_eq!(reason, FailReason::DeadlineExceeded);
                        break;
                    }
                    if matches!(s, Step::Final) {
                        prop_assert_eq!(reason, FailReason::Server);
                    }
                    if let (Step::Lost(true) | Step::Timeout, Idempotency::NonIdempotent) = (&s, idem) {
                        prop_assert_eq!(reason, FailReason::MaybeExecuted);
                    }
                    break;
                }
            }
            prop_assert!(!matches!(s, Step::Final));
            prop_assert!(sends <= cfg.max_attempts + transient, "{} sends > {} + {}", sends, cfg.max_attempts, transient);
            prop_assert_eq!(transient, budget.waits());
            prop_assert_eq!(sends, budget.attempts_used() + budget.waits());
            prop_assert!(hops <= cfg.max_redirects, "{} immediate hops > {}", hops, cfg.max_redirects);
        }
    }
}

#[test]
fn a_refused_connection_is_not_retried() {
    let now = t0();
    let mut b = Budget::new(now + ms(100));
    let d = decide(
        &mut b,
        Failure::Refused,
        Idempotency::Idempotent,
        now,
        &RetryConfig::default(),
        &mut Rng::new(7),
    );
    assert_eq!(d, RetryDecision::Fail(FailReason::Refused));
}
