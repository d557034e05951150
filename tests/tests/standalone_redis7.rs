//! A standalone Debian `redis-server` 7 (`/usr/bin/redis-server`, as the TLS suites use) with
//! one replica attached by `--replicaof`, on every runtime: the cache API with the mode
//! detected and set explicitly, replica reads and `WAIT` durability (see `server_support`).
//! Redis 7, unlike Valkey 9, refuses `READONLY` on a standalone node: the refusal is ignored
//! in the detected mode, and not sent at all with `mode = standalone`.
//!
//! Needs `redis-server` (`scripts/test-all` installs it): with `CI=true` a missing one fails
//! the test; elsewhere the test is skipped with a printed notice (as with
//! `SLOTCACHE_SKIP_TLS=1`).

mod server_support;

use slotcache_tests::{Standalone, install};

#[test]
fn the_cache_on_a_standalone_redis_7_with_a_replica_on_every_runtime() {
    if let Some(reason) = slotcache_tests::standalone::redis_skip_reason() {
        eprintln!("SKIPPED the_cache_on_a_standalone_redis_7_with_a_replica_on_every_runtime: {reason}");
        return;
    }
    let redis =
        install::redis_server().expect("redis-server (CI must have it: apt-get install redis-server)");
    let version = install::server_version(&redis).expect("version");
    assert!(version.starts_with("Redis server v=7."), "{version}");
    let mut s =
        Standalone::builder().binary(redis).replicas(1).label("sa-redis7").start().expect("standalone redis");
    server_support::run_suite(&mut s, "redis7");
}
