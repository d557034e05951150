//! Simulation: the provider's start-up check of the eviction setup (`CheckEviction`) reads
//! every primary's `maxmemory-policy` and `maxmemory` through `CONFIG GET`, classifies each,
//! warns about `volatile-*` with a limit and about policies that differ between primaries,
//! and refuses to start only on the classes it is told to refuse.

use std::time::Duration;

use slotcache_core::cache::op::Deadline;
use slotcache_core::cache::op::eviction::CheckEviction;
use slotcache_core::cache::{CacheError, EvictionClass, EvictionPolicy, EvictionReport, EvictionWarning};
use slotcache_core::client::Cmd;
use slotcache_tests::sim::{EvictionPolicy as SimPolicy, Sim, SimCluster};

fn check(sim: &mut Sim, refuse: Vec<EvictionClass>) -> Result<EvictionReport, CacheError> {
    let deadline = Deadline::new(sim.now, "connect", Duration::from_secs(2));
    sim.drive(CheckEviction::new(refuse, deadline), 1)
}

fn sim() -> Sim {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), 11);
    sim.call(Cmd::new("PING")).expect("the cluster answers");
    sim
}

#[test]
fn every_primary_is_read_and_classified() {
    let mut sim = sim();
    let primaries = sim.cluster.primaries();
    for p in &primaries {
        sim.cluster.set_maxmemory(p, 1 << 20, SimPolicy::AllKeysLru);
    }
    let r =
        check(&mut sim, vec![EvictionClass::Volatile, EvictionClass::NoEviction]).expect("allkeys is fine");
    let seen: Vec<_> = r.primaries.iter().map(|p| (p.addr.clone(), p.class, p.maxmemory)).collect();
    let want: Vec<_> = primaries.iter().map(|a| (a.clone(), EvictionClass::AllKeys, Some(1 << 20))).collect();
    assert_eq!(seen, want);
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());

    // One primary switched to volatile-lru: warned about, and mixed.
    sim.cluster.set_maxmemory(&primaries[1], 1 << 20, SimPolicy::VolatileLru);
    let r = check(&mut sim, vec![]).expect("warn only by default");
    assert_eq!(r.primaries[1].policy, Some(EvictionPolicy::VolatileLru));
    assert_eq!(r.classes(), [EvictionClass::AllKeys, EvictionClass::Volatile]);
    let w = r.warnings();
    assert!(matches!(&w[0], EvictionWarning::Volatile { addr, .. } if *addr == primaries[1]), "{w:?}");
    assert!(matches!(&w[1], EvictionWarning::Mixed { policies } if policies.len() == 3), "{w:?}");
    // Refused when asked.
    let refused = check(&mut sim, vec![EvictionClass::Volatile]);
    match refused {
        Err(CacheError::EvictionRefused { addr, policy, class: EvictionClass::Volatile, .. }) => {
            assert_eq!((addr, policy.as_str()), (primaries[1].to_string(), "volatile-lru"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_limit_and_noeviction() {
    let mut sim = sim();
    let primaries = sim.cluster.primaries();
    // The simulated nodes start with no limit and noeviction: unlimited, nothing to warn about.
    let r = check(&mut sim, vec![EvictionClass::NoEviction]).expect("no limit is not noeviction");
    assert_eq!(r.classes(), [EvictionClass::Unlimited]);
    assert!(r.warnings().is_empty());
    sim.cluster.set_maxmemory(&primaries[0], 4096, SimPolicy::NoEviction);
    let r = check(&mut sim, vec![]).expect("warn only");
    assert!(matches!(&r.warnings()[..], [EvictionWarning::NoEviction { addr }] if *addr == primaries[0]));
    assert!(matches!(
        check(&mut sim, vec![EvictionClass::NoEviction]),
        Err(CacheError::EvictionRefused { class: EvictionClass::NoEviction, .. })
    ));
}
