//! Simulation: a multi-key request on a slot that is half migrated gets TRYAGAIN; the client
//! backs off (milliseconds, not seconds) and the request succeeds once the migration ends. The
//! server did not run the command, so the client keeps retrying (at the capped backoff) until
//! the request's deadline; if the condition outlasts it, the caller gets the typed TRYAGAIN
//! error just before the deadline, never after it.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::client::{Cmd, Request, RequestError};
use slotcache_core::{ServerErrorKind, Value, key_slot};
use slotcache_tests::sim::{Sim, SimCluster};

fn setup(seed: u64) -> Sim {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), seed);
    sim.call(Cmd::new("SET").arg("{t}a").arg("1")).expect("set");
    sim.call(Cmd::new("SET").arg("{t}b").arg("2")).expect("set");
    let source = sim.cluster.owner_of(b"{t}");
    let target = sim.cluster.primaries().into_iter().find(|p| *p != source).expect("target");
    sim.cluster.start_migration(key_slot(b"{t}"), &target);
    sim.cluster.migrate_key(b"{t}a");
    sim
}

#[test]
fn tryagain_is_retried_until_the_migration_ends() {
    let mut sim = setup(31);
    let id = sim.submit(Request::command(Cmd::new("MGET").arg("{t}a").arg("{t}b")));
    sim.run_for(Duration::from_millis(8));
    assert!(!sim.completed.contains_key(&id), "still retrying");
    sim.cluster.finish_migration(key_slot(b"{t}"));
    let v = sim.wait(id).expect("mget succeeds after the migration").into_value().expect("value");
    assert_eq!(v, Value::Array(vec![Value::Bulk(Bytes::from("1")), Value::Bulk(Bytes::from("2"))]));
    assert!(sim.client.stats().tryagain >= 1);
}

#[test]
fn endless_tryagain_is_a_typed_error_within_the_deadline() {
    let mut sim = setup(32);
    let start = sim.now;
    let id = sim.submit(Request::command(Cmd::new("MGET").arg("{t}a").arg("{t}b")));
    let err = sim.wait(id).expect_err("never completes");
    let RequestError::Server(e) = &err else { panic!("typed server error expected, got {err:?}") };
    assert_eq!(e.kind(), &ServerErrorKind::TryAgain);
    let took = sim.now - start;
    assert!(took <= Duration::from_secs(2), "never past the 2 s deadline: {took:?}");
    assert!(took > Duration::from_millis(1500), "kept retrying while the deadline allowed: {took:?}");
    assert!(sim.client.stats().tryagain > 10, "{:?}", sim.client.stats());
}
