//! Simulation: CLUSTERDOWN for a short while (a failover in progress) is ridden out by backoff
//! and a topology refresh; a cluster that stays down gives the caller the typed error well
//! before the request deadline.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::client::{Cmd, Request, RequestError};
use slotcache_core::{ServerErrorKind, Value};
use slotcache_tests::sim::{Sim, SimCluster};

fn down(sim: &mut Sim, on: bool) {
    for n in sim.cluster.nodes.values_mut() {
        n.fail_with = on.then(|| "CLUSTERDOWN The cluster is down".to_owned());
    }
}

#[test]
fn short_clusterdown_then_recovery() {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 41);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("set");
    sim.run_for(Duration::from_secs(1));
    down(&mut sim, true);
    let id = sim.submit(Request::command(Cmd::new("GET").arg("k")));
    sim.run_for(Duration::from_millis(10));
    down(&mut sim, false);
    let v = sim.wait(id).expect("recovered").into_value().expect("value");
    assert_eq!(v, Value::Bulk(Bytes::from("v")));
    let s = sim.client.stats();
    assert!(s.clusterdown >= 1 && s.refreshes >= 2, "{s:?}");
}

#[test]
fn lasting_clusterdown_is_a_typed_error() {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 42);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("set");
    down(&mut sim, true);
    let err = sim.call(Cmd::new("GET").arg("k")).expect_err("down");
    let RequestError::Server(e) = &err else { panic!("{err:?}") };
    assert_eq!(e.kind(), &ServerErrorKind::ClusterDown);
}
