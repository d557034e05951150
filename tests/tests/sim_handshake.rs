//! Simulation: connection set-up. RESP3 `HELLO 3 AUTH .. SETNAME ..` in one round trip; a
//! RESP2-only server gets `AUTH` + `CLIENT SETNAME`; a wrong password is a typed auth error.

use slotcache_core::client::{Cmd, Password, RequestError};
use slotcache_tests::sim::{Sim, SimCluster};

#[test]
fn resp3_hello_carries_auth_and_name() {
    let mut cluster = SimCluster::new(3, 0);
    cluster.password = Some("s3cret".into());
    let mut cfg = Sim::config();
    cfg.password = Some(Password::new("s3cret"));
    cfg.client_name = Some("slotcache-test".into());
    let mut sim = Sim::new(cluster, cfg, 91);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("authenticated");
    assert!(sim.cluster.count_all("HELLO") >= 1);
    assert_eq!(sim.cluster.count_all("AUTH"), 0, "HELLO carried the credentials");
    assert_eq!(sim.cluster.count_all("CLIENT SETNAME"), 0, "HELLO carried the name");
}

#[test]
fn resp2_fallback_uses_auth_and_setname() {
    let mut cluster = SimCluster::new(3, 0);
    cluster.password = Some("s3cret".into());
    cluster.hello = false;
    let mut cfg = Sim::config();
    cfg.password = Some(Password::new("s3cret"));
    cfg.client_name = Some("slotcache-test".into());
    let mut sim = Sim::new(cluster, cfg, 92);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("authenticated over RESP2");
    assert!(sim.cluster.count_all("AUTH") >= 1);
    assert!(sim.cluster.count_all("CLIENT SETNAME") >= 1);
}

#[test]
fn wrong_password_is_a_typed_error() {
    let mut cluster = SimCluster::new(3, 0);
    cluster.password = Some("s3cret".into());
    let mut cfg = Sim::config();
    cfg.password = Some(Password::new("wrong"));
    let mut sim = Sim::new(cluster, cfg, 93);
    let err = sim.call(Cmd::new("GET").arg("k")).expect_err("refused");
    assert!(
        matches!(err, RequestError::NoTopology { .. } | RequestError::Auth { .. }),
        "auth failure is typed: {err:?}"
    );
    assert!(err.to_string().contains("WRONGPASS"), "the server's reason is kept: {err}");
}
