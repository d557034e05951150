//! What the `cache_*` test files share: one cluster per test binary (started by the first test
//! that needs it, stopped when the last running test lets go of it), a provider per runtime,
//! bounded waits on the test's runtime, server counters, raw looks at what is stored, small helpers
//! for `String` namespaces, and a small seeded random generator.
//!
//! Each `cache_*.rs` file is its own test binary, so the statics here are per file.

#![allow(dead_code)]

use core::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::{Either, select};
use slotcache_rt::{
    Cache, CacheError, MemoryServer, NamespaceOptions, Provider, ProviderConfig, RequestError, Value,
};
use slotcache_tests::conformance::{ALL, Rt, cmdstat_calls};
use slotcache_tests::{Cluster, ClusterBuilder, Role};

/// The cluster of this test binary, while any test holds it.
static CLUSTER: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());

/// Tests that compare server-wide counters (`INFO commandstats`) or stall a node take this
/// exclusively; every other test takes it shared, so nothing else runs meanwhile. Take it
/// **after** [`cluster`], so that a test waiting for it keeps the cluster alive.
static COUNTERS: RwLock<()> = RwLock::new(());

/// How long one runtime's run of a test body may take before the test fails.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(90);

/// The binary's cluster (3 masters, 1 replica each), started on first use. Tests running at the
/// same time share it; the last one to finish stops it (so a binary never leaves servers
/// behind, even when a test panics).
pub(crate) fn cluster(label: &str) -> Arc<Cluster> {
    let mut slot = CLUSTER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = slot.upgrade() {
        return c;
    }
    let started = Instant::now();
    let c = Arc::new(ClusterBuilder::new().masters(3).replicas(1).label(label).start().expect("cluster"));
    eprintln!("[timing] {label}: cluster started in {:?}", started.elapsed());
    *slot = Arc::downgrade(&c);
    c
}

/// A shared hold on the server counters (see [`COUNTERS`]).
pub(crate) fn shared() -> RwLockReadGuard<'static, ()> {
    COUNTERS.read().unwrap_or_else(PoisonError::into_inner)
}

/// An exclusive hold on the server counters.
pub(crate) fn exclusive() -> RwLockWriteGuard<'static, ()> {
    COUNTERS.write().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `body` on tokio, smol and async-std in turn, each bounded by [`BODY_TIMEOUT`].
pub(crate) fn on_every_runtime<F, Fut>(test: &str, body: F)
where
    F: Fn(Rt) -> Fut,
    Fut: Future<Output = ()>,
{
    for rt in ALL {
        let started = Instant::now();
        let done = rt.block_on(within(rt, BODY_TIMEOUT, body(rt)));
        assert!(done.is_some(), "{test} on {}: did not finish within {BODY_TIMEOUT:?}", rt.name());
        eprintln!("[timing] {test} on {}: {:?}", rt.name(), started.elapsed());
    }
}

/// `fut`'s output, or `None` if `d` passes first (`fut` is then dropped).
pub(crate) async fn within<T>(rt: Rt, d: Duration, fut: impl Future<Output = T>) -> Option<T> {
    let fut = core::pin::pin!(fut);
    let sleep = core::pin::pin!(rt.sleep(d));
    match select(fut, sleep).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

/// Polls `check` every 10 ms until it returns true, for at most `timeout`; panics naming `what`
/// otherwise.
pub(crate) async fn eventually<F, Fut>(rt: Rt, timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(started.elapsed() < timeout, "{}: timed out after {timeout:?} waiting for {what}", rt.name());
        rt.sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `fut` until `cond` holds, then drops it (an operation cancelled at a known point);
/// panics if `fut` finishes first or `cond` takes over 10 s.
pub(crate) async fn drop_when<T>(
    rt: Rt,
    fut: impl Future<Output = T>,
    what: &str,
    mut cond: impl FnMut() -> bool,
) {
    let fut = core::pin::pin!(fut);
    let wait = core::pin::pin!(eventually(rt, Duration::from_secs(10), what, move || {
        let now = cond();
        async move { now }
    }));
    if let Either::Left(_) = select(fut, wait).await {
        panic!("{}: the operation finished before {what}", rt.name());
    }
}

/// The cluster's seeds as configuration strings.
pub(crate) fn seeds(cluster: &Cluster) -> Vec<String> {
    cluster.seeds().iter().map(ToString::to_string).collect()
}

/// The reference's configuration for this cluster, named after the test.
pub(crate) fn config(cluster: &Cluster, test: &str) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(seeds(cluster));
    cfg.client_name = format!("slotcache-{test}");
    cfg
}

/// A provider on `rt` with the default configuration.
pub(crate) async fn provider(rt: Rt, cluster: &Cluster, test: &str) -> Provider {
    provider_with(rt, config(cluster, test)).await
}

/// A provider on `rt` with this configuration.
pub(crate) async fn provider_with(rt: Rt, cfg: ProviderConfig) -> Provider {
    Provider::connect(rt.runtime(), cfg).await.expect("provider")
}

/// Where a scenario's providers connect: the binary's real cluster, or an in-process node (the
/// in-memory provider). Scenarios written against it run on both, so the two providers
/// cannot drift apart.
pub(crate) trait Backend: Clone {
    /// The default configuration, named after the test.
    fn config(&self, test: &str) -> ProviderConfig;
    /// A provider on `rt` with this configuration.
    async fn provider_with(&self, rt: Rt, cfg: ProviderConfig) -> Provider;
    /// The reply of the node holding `key` to one command (a raw look at what is stored).
    fn raw(&self, key: &[u8], args: &[&[u8]]) -> Value;
    /// The keys matching `pattern` on every primary (`SCAN`).
    fn scan_keys(&self, pattern: &str) -> Vec<Bytes>;

    /// A provider on `rt` with the default configuration, named after the test.
    async fn provider(&self, rt: Rt, test: &str) -> Provider {
        self.provider_with(rt, self.config(test)).await
    }
}

impl Backend for Arc<Cluster> {
    fn config(&self, test: &str) -> ProviderConfig {
        config(self, test)
    }

    async fn provider_with(&self, rt: Rt, cfg: ProviderConfig) -> Provider {
        provider_with(rt, cfg).await
    }

    fn raw(&self, key: &[u8], args: &[&[u8]]) -> Value {
        raw(self, key, args)
    }

    fn scan_keys(&self, pattern: &str) -> Vec<Bytes> {
        scan_keys(self, &roles(self).0, pattern)
    }
}

impl Backend for MemoryServer {
    fn config(&self, test: &str) -> ProviderConfig {
        let mut cfg = ProviderConfig::default();
        cfg.client_name = format!("slotcache-{test}");
        cfg
    }

    async fn provider_with(&self, rt: Rt, cfg: ProviderConfig) -> Provider {
        Provider::connect_memory(rt.runtime(), self, cfg).await.expect("in-memory provider")
    }

    fn raw(&self, _key: &[u8], args: &[&[u8]]) -> Value {
        self.command(args)
    }

    fn scan_keys(&self, pattern: &str) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut cursor = s("0");
        for _ in 0..10_000 {
            let v =
                self.command(&[b"SCAN", cursor.as_bytes(), b"MATCH", pattern.as_bytes(), b"COUNT", b"1000"]);
            let Value::Array(parts) = v else { panic!("SCAN: {v:?}") };
            let [Value::Bulk(next), Value::Array(keys)] = parts.as_slice() else { panic!("SCAN: {parts:?}") };
            out.extend(keys.iter().filter_map(|k| k.as_bytes().cloned()));
            cursor = String::from_utf8(next.to_vec()).expect("cursor");
            if cursor == "0" {
                return out;
            }
        }
        panic!("SCAN did not finish");
    }
}

#[allow(unused_macros)] // not every test binary runs scenarios on both providers
/// Defines two tests running scenario `$scenario` (a `fn(impl Backend)`): `$cluster` on the
/// binary's cluster (holding the counters shared), `$memory` on a new in-process node.
macro_rules! on_both_providers {
    ($scenario:ident, $label:expr, $cluster:ident, $memory:ident) => {
        #[test]
        fn $cluster() {
            let c = cache_support::cluster($label);
            let _g = cache_support::shared();
            $scenario(c);
        }

        #[test]
        fn $memory() {
            $scenario(slotcache_rt::MemoryServer::new());
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_providers;

/// A namespace name unique to this test and runtime.
pub(crate) fn ns(test: &str, rt: Rt, what: &str) -> String {
    format!("{test}-{}-{what}", rt.name())
}

/// Requests the provider's client submitted so far (to show that nothing was sent).
pub(crate) async fn requests(p: &Provider) -> u64 {
    p.client().stats().await.expect("client stats").requests
}

/// The masters and the replicas of the cluster, by index.
pub(crate) fn roles(cluster: &Cluster) -> (Vec<usize>, Vec<usize>) {
    let mut masters = Vec::new();
    let mut replicas = Vec::new();
    for i in cluster.live() {
        match cluster.role(i).expect("role") {
            Role::Master => masters.push(i),
            Role::Replica => replicas.push(i),
        }
    }
    (masters, replicas)
}

/// The sum of `command`'s calls (`INFO commandstats`) over these nodes.
pub(crate) fn calls(cluster: &Cluster, nodes: &[usize], command: &str) -> u64 {
    nodes.iter().map(|&i| cmdstat_calls(cluster, i, command).expect("INFO commandstats")).sum()
}

/// Node `i` is stopped (`SIGSTOP`, in force once this returns: the process is seen stopped)
/// until the guard is dropped (`SIGCONT`). Keep it short: other nodes mark a node that stays
/// silent for the node timeout (2 s) as failing.
pub(crate) struct Stopped(u32);

pub(crate) fn stop(cluster: &Cluster, i: usize) -> Stopped {
    let pid = cluster.node(i).pid().expect("a running node");
    slotcache_tests::procs::signal(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    let stopped = Stopped(pid);
    slotcache_tests::wait_until(Duration::from_secs(5), "the node to stop", || {
        Ok(slotcache_tests::procs::state(pid) == Some('T'))
    })
    .expect("stopped");
    stopped
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = slotcache_tests::procs::signal(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// A node's reply to one command, as text (for raw checks of what is stored).
pub(crate) fn raw(cluster: &Cluster, key: &[u8], args: &[&[u8]]) -> Value {
    let node = cluster.owner_of_key(key).expect("owner");
    cluster.cmd(node, args).expect("raw command")
}

/// A `String` from a `&str` (the cache tests' keys and values are `String`s).
pub(crate) fn s(v: &str) -> String {
    v.to_owned()
}

/// A `String` to `String` namespace with the default options.
pub(crate) fn string_ns(p: &Provider, name: &str) -> Cache<String, String> {
    p.create_namespace::<String, String>(name, NamespaceOptions::default()).expect("namespace")
}

/// Whether `e` is a server error reply with this code (`WRONGTYPE`, ...).
pub(crate) fn is_server_error(e: &Result<impl std::fmt::Debug, CacheError>, code: &[u8]) -> bool {
    matches!(e, Err(CacheError::Request(RequestError::Server(se))) if se.code() == code)
}

/// Every key matching `pattern` on the masters (raw `SCAN`, bounded).
pub(crate) fn scan_keys(c: &Cluster, masters: &[usize], pattern: &str) -> Vec<Bytes> {
    let mut out = Vec::new();
    for &m in masters {
        let mut cursor = s("0");
        for _ in 0..10_000 {
            let v = c.cmd(m, ["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]).expect("scan");
            let Value::Array(parts) = v else { panic!("SCAN: {v:?}") };
            let [Value::Bulk(next), Value::Array(keys)] = parts.as_slice() else { panic!("SCAN: {parts:?}") };
            out.extend(keys.iter().filter_map(|k| k.as_bytes().cloned()));
            cursor = String::from_utf8(next.to_vec()).expect("cursor");
            if cursor == "0" {
                break;
            }
        }
    }
    out
}

/// The members of the tag's sorted set at `tag_key` (raw `ZRANGEBYSCORE`).
pub(crate) fn members(c: &impl Backend, tag_key: &str) -> Vec<Bytes> {
    match c.raw(tag_key.as_bytes(), &[b"ZRANGEBYSCORE", tag_key.as_bytes(), b"0", b"+inf"]) {
        Value::Array(v) => v.into_iter().filter_map(|m| m.as_bytes().cloned()).collect(),
        other => panic!("{tag_key}: {other:?}"),
    }
}

/// A small xorshift generator; the seed is printed so a failing run can be replayed with
/// `SLOTCACHE_TEST_SEED`.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(what: &str) -> Self {
        let seed =
            std::env::var("SLOTCACHE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
            });
        eprintln!("[seed] {what}: SLOTCACHE_TEST_SEED={seed}");
        Self(seed)
    }

    /// A generator with this seed (for workers derived from a printed seed).
    pub(crate) fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A `refresh` of `key` whose loader has been called and is held: it returns
/// `"loaded before the invalidation"` once [`HeldReload::release`] is called (or after 5 s, so
/// that a caller wrongly waiting on it fails its assertion rather than the test's deadline).
pub(crate) struct HeldReload {
    release: smol::channel::Sender<()>,
    reload: futures_util::future::BoxFuture<'static, Result<String, CacheError>>,
}

impl HeldReload {
    /// Starts the reload and waits until its loader was called.
    pub(crate) async fn start(rt: Rt, cache: &Cache<String, String>, key: &str) -> Self {
        let (called_tx, called_rx) = smol::channel::bounded::<()>(1);
        let (release, release_rx) = smol::channel::bounded::<()>(1);
        let reload = cache.refresh(&s(key), move |_| async move {
            let _ = called_tx.send(()).await;
            let _ = within(rt, Duration::from_secs(5), release_rx.recv()).await;
            Ok(s("loaded before the invalidation"))
        });
        let reload = rt.spawn(reload);
        called_rx.recv().await.expect("the reload's loader was called");
        Self { release, reload }
    }

    /// Lets the loader return, and the reload's outcome.
    pub(crate) async fn release(self) -> Result<String, CacheError> {
        self.release.send(()).await.expect("release");
        self.reload.await
    }
}
