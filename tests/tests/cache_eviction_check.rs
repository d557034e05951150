//! The provider reads every primary's eviction setup when it connects (`CONFIG GET
//! maxmemory-policy maxmemory`, else `INFO memory`) and reports it (`Provider::eviction`),
//! warns about risky setups, and refuses to start on the classes `refuse_eviction` lists.
//!
//! On the test cluster (3 masters, 1 replica each, no `maxmemory` at first): the report says
//! `Unlimited` for each master. Then `maxmemory-policy volatile-lru` with `maxmemory 1gb` is
//! set on every master with `CONFIG SET`: the report says `Volatile` for each master, warns,
//! and a provider refusing `volatile` fails with `EvictionRefused`; one master switched to
//! `allkeys-lru` makes the policies mixed (a warning). An ACL user denied `CONFIG` gets the
//! same report from `INFO memory`. The masters' settings are put back at the end.

mod cache_support;

use slotcache_rt::{
    CacheError, EvictionClass, EvictionPolicy, EvictionSource, EvictionWarning, Provider, Value,
};
use slotcache_tests::Cluster;
use slotcache_tests::conformance::Rt;

use cache_support::{cluster, config, exclusive, on_every_runtime, roles};

const LABEL: &str = "cache-eviction-check";
const USER: &str = "no-config";
const PASSWORD: &str = "no-config-pw";

/// The masters' `maxmemory-policy` and `maxmemory` as found, set back on drop.
struct Restore<'a> {
    cluster: &'a Cluster,
    saved: Vec<(usize, String, String)>,
}

impl<'a> Restore<'a> {
    fn new(cluster: &'a Cluster, masters: &[usize]) -> Self {
        let saved = masters
            .iter()
            .map(|&m| {
                let get = |p: &str| match cluster.cmd(m, ["CONFIG", "GET", p]).expect("CONFIG GET") {
                    Value::Array(kv) => kv[1].as_str().expect("text").to_owned(),
                    other => panic!("CONFIG GET {p}: {other:?}"),
                };
                (m, get("maxmemory-policy"), get("maxmemory"))
            })
            .collect();
        Self { cluster, saved }
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        for (m, policy, max) in &self.saved {
            let _ = self.cluster.cmd(*m, ["CONFIG", "SET", "maxmemory-policy", policy, "maxmemory", max]);
        }
    }
}

fn set(cluster: &Cluster, m: usize, policy: &str, max: &str) {
    let v =
        cluster.cmd(m, ["CONFIG", "SET", "maxmemory-policy", policy, "maxmemory", max]).expect("CONFIG SET");
    assert_eq!(v.as_str(), Some("OK"), "{v:?}");
}

async fn connect(
    rt: Rt,
    cluster: &Cluster,
    refuse: &[EvictionClass],
    user: bool,
) -> Result<Provider, CacheError> {
    let mut cfg = config(cluster, LABEL);
    cfg.refuse_eviction = refuse.to_vec();
    if user {
        cfg.username = USER.into();
        cfg.password = PASSWORD.into();
    }
    Provider::connect(rt.runtime(), cfg).await
}

#[test]
fn the_eviction_setup_is_read_reported_and_refused_on_demand() {
    let cluster = cluster(LABEL);
    let _only_me = exclusive();
    let (masters, _) = roles(&cluster);
    let _restore = Restore::new(&cluster, &masters);
    for i in cluster.live() {
        let v = cluster
            .cmd(
                i,
                [
                    "ACL",
                    "SETUSER",
                    USER,
                    "reset",
                    "on",
                    &format!(">{PASSWORD}"),
                    "~*",
                    "&*",
                    "+@all",
                    "-config",
                ],
            )
            .expect("ACL SETUSER");
        assert_eq!(v.as_str(), Some("OK"), "{v:?}");
    }
    let cluster_ref = &cluster;
    let masters_ref = &masters;
    on_every_runtime("eviction_check", |rt: Rt| async move {
        let (cluster, masters) = (cluster_ref, masters_ref);
        for &m in masters {
            set(cluster, m, "noeviction", "0");
        }
        // No limit: Unlimited everywhere, read with CONFIG, nothing to warn about; refusing
        // noeviction does not refuse it (nothing is ever refused for lack of memory).
        let p = connect(rt, cluster, &[EvictionClass::NoEviction], false).await.expect("unlimited starts");
        let r = p.eviction();
        assert_eq!(r.primaries.len(), masters.len(), "{r:?}");
        assert!(
            r.primaries
                .iter()
                .all(|p| p.class == EvictionClass::Unlimited && p.read_from == EvictionSource::Config)
        );
        assert!(r.warnings().is_empty(), "{:?}", r.warnings());
        p.close().await;

        // volatile-lru with a limit on every master.
        for &m in masters {
            set(cluster, m, "volatile-lru", "1gb");
        }
        let p = connect(rt, cluster, &[], false).await.expect("warn only by default");
        let r = p.eviction().clone();
        p.close().await;
        assert!(
            r.primaries.iter().all(|p| p.class == EvictionClass::Volatile
                && p.policy == Some(EvictionPolicy::VolatileLru)
                && p.maxmemory == Some(1 << 30)),
            "{r:?}"
        );
        let w = r.warnings();
        assert_eq!(w.len(), masters.len(), "{w:?}");
        assert!(w.iter().all(|w| matches!(w, EvictionWarning::Volatile { .. })), "{w:?}");
        match connect(rt, cluster, &[EvictionClass::Volatile], false).await {
            Err(CacheError::EvictionRefused { class: EvictionClass::Volatile, policy, .. }) => {
                assert_eq!(policy, "volatile-lru");
            }
            Err(e) => panic!("{}: another error: {e:?}", rt.name()),
            Ok(_) => panic!("{}: volatile-lru was not refused", rt.name()),
        }

        // Without CONFIG (an ACL user denied it): the same report, from INFO memory.
        let p = connect(rt, cluster, &[], true).await.expect("the user connects");
        let r = p.eviction().clone();
        p.close().await;
        assert!(
            r.primaries
                .iter()
                .all(|p| p.class == EvictionClass::Volatile && p.read_from == EvictionSource::Info),
            "{r:?}"
        );

        // One master on allkeys-lru: the policies differ.
        set(cluster, masters[0], "allkeys-lru", "1gb");
        let p = connect(rt, cluster, &[EvictionClass::NoEviction], false).await.expect("starts");
        let w = p.eviction().warnings();
        p.close().await;
        assert!(
            w.iter()
                .any(|w| matches!(w, EvictionWarning::Mixed { policies } if policies.len() == masters.len())),
            "{w:?}"
        );
        assert_eq!(
            w.iter().filter(|w| matches!(w, EvictionWarning::Volatile { .. })).count(),
            masters.len() - 1
        );
    });
    for i in cluster.live() {
        let _ = cluster.cmd(i, ["ACL", "DELUSER", USER]);
    }
}
