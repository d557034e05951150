//! Simulation: the client's start, before the first topology.
//!
//! - Each seed is tried once at once, then failed rounds back off (the refresh policy's
//!   backoff) instead of dialling the seeds in a loop until the requests' deadlines; a seed that
//!   comes back is still found.
//! - Credentials every seed refuses are a typed [`RequestError::Auth`] as soon as every seed has
//!   refused them (not a `NoTopology` at the deadline); while a seed has not answered, the
//!   request waits for its budget and then reports the refusal, typed.

use std::time::Duration;

use slotcache_core::ServerErrorKind;
use slotcache_core::client::{Cmd, Password, Request, RequestError};
use slotcache_tests::sim::{Sim, SimCluster, addr};

fn three_seeds() -> slotcache_core::client::ClientConfig {
    let mut cfg = Sim::config();
    cfg.seeds = vec![addr(0), addr(1), addr(2)];
    cfg
}

#[test]
fn dead_seeds_are_not_dialled_in_a_loop() {
    let mut sim = Sim::new(SimCluster::new(3, 0), three_seeds(), 94);
    for i in 0..3 {
        sim.kill(&addr(i));
    }
    let id = sim.submit(Request::command(Cmd::new("GET").arg("k")));
    let err = sim.wait(id).expect_err("no seed answers");
    assert!(matches!(err, RequestError::NoTopology { .. }), "{err:?}");
    let dials: u64 = sim.connects.values().sum();
    // One immediate round, then 200, 400, 800 ms apart within the 2 s budget.
    assert!(dials <= 8, "dialled {dials} times in {:?}: {:?}", sim.elapsed(), sim.connects);
    assert!(sim.connects.len() == 3, "every seed was tried: {:?}", sim.connects);
}

#[test]
fn many_requests_waiting_for_a_topology_do_not_shorten_the_backoff() {
    let mut sim = Sim::new(SimCluster::new(3, 0), three_seeds(), 95);
    for i in 0..3 {
        sim.kill(&addr(i));
    }
    let ids: Vec<_> = (0..200)
        .map(|i| {
            sim.run_for(Duration::from_millis(5));
            sim.submit(Request::command(Cmd::new("GET").arg(format!("k{i}"))))
        })
        .collect();
    for id in ids {
        assert!(sim.wait(id).is_err());
    }
    let dials: u64 = sim.connects.values().sum();
    assert!(dials <= 10, "200 waiting requests dialled {dials} times: {:?}", sim.connects);
}

#[test]
fn a_seed_that_comes_back_is_found() {
    let mut sim = Sim::new(SimCluster::new(3, 0), three_seeds(), 96);
    for i in 0..3 {
        sim.kill(&addr(i));
    }
    let id =
        sim.submit(Request::command(Cmd::new("SET").arg("k").arg("v")).with_timeout(Duration::from_secs(5)));
    sim.run_for(Duration::from_millis(700));
    for i in 0..3 {
        sim.cluster.nodes.get_mut(&addr(i)).expect("node").up = true;
    }
    let t = sim.elapsed();
    sim.wait(id).expect("served once the seeds are back");
    assert!(sim.elapsed() - t < Duration::from_secs(2), "found after {:?}", sim.elapsed() - t);
}

#[test]
fn credentials_every_seed_refuses_are_a_typed_auth_error_at_once() {
    let mut cluster = SimCluster::new(3, 0);
    cluster.password = Some("s3cret".into());
    let mut cfg = three_seeds();
    cfg.password = Some(Password::new("wrong"));
    let mut sim = Sim::new(cluster, cfg, 97);
    let id = sim.submit(Request::command(Cmd::new("GET").arg("k")));
    let err = sim.wait(id).expect_err("refused");
    match &err {
        RequestError::Auth { addr: node, error } => {
            assert_eq!(error.kind(), &ServerErrorKind::WrongPass, "{err}");
            assert!([addr(0), addr(1), addr(2)].contains(node), "{err}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    assert!(sim.elapsed() < Duration::from_millis(50), "failed after {:?}", sim.elapsed());
    assert_eq!(sim.cluster.count_all("HELLO"), 3, "one try per seed");
    // Later requests fail at once too, with no new round of dials.
    let dials: u64 = sim.connects.values().sum();
    let t = sim.elapsed();
    let id = sim.submit(Request::command(Cmd::new("GET").arg("k")));
    assert!(matches!(sim.wait(id), Err(RequestError::Auth { .. })));
    assert_eq!(sim.elapsed(), t, "failed at submission");
    assert_eq!(sim.connects.values().sum::<u64>(), dials);
}

#[test]
fn while_a_seed_has_not_refused_the_request_waits_and_then_reports_the_refusal() {
    let mut cluster = SimCluster::new(3, 0);
    cluster.password = Some("s3cret".into());
    let mut cfg = three_seeds();
    cfg.password = Some(Password::new("wrong"));
    let mut sim = Sim::new(cluster, cfg, 98);
    // One seed is down: it has not refused the credentials, it may yet accept them.
    sim.kill(&addr(2));
    let id = sim.submit(Request::command(Cmd::new("GET").arg("k")).with_timeout(Duration::from_millis(800)));
    let err = sim.wait(id).expect_err("refused");
    assert!(sim.elapsed() >= Duration::from_millis(800), "waited for the budget: {:?}", sim.elapsed());
    assert!(
        matches!(&err, RequestError::Auth { error, .. } if error.kind() == &ServerErrorKind::WrongPass),
        "{err:?}"
    );
}
