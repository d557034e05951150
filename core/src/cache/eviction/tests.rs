use super::*;

fn node(port: u16) -> NodeAddr {
    NodeAddr::new("10.0.0.1", port)
}

fn primary(port: u16, policy: &str, maxmemory: u64) -> PrimaryEviction {
    PrimaryEviction::read(node(port), EvictionPolicy::parse(policy), maxmemory, EvictionSource::Config)
}

#[test]
fn policies_parse_and_classify() {
    for (name, class) in [
        ("noeviction", EvictionClass::NoEviction),
        ("allkeys-lru", EvictionClass::AllKeys),
        ("ALLKEYS-LFU", EvictionClass::AllKeys),
        ("allkeys-random", EvictionClass::AllKeys),
        ("volatile-lru", EvictionClass::Volatile),
        ("volatile-lfu", EvictionClass::Volatile),
        ("volatile-random", EvictionClass::Volatile),
        ("volatile-ttl", EvictionClass::Volatile),
        ("future-policy", EvictionClass::Unknown),
    ] {
        let p = EvictionPolicy::parse(name);
        assert_eq!(EvictionClass::of(&p, 1 << 30), class, "{name}");
        assert_eq!(p.name(), name.to_ascii_lowercase());
        let unlimited = if class == EvictionClass::Unknown { class } else { EvictionClass::Unlimited };
        assert_eq!(EvictionClass::of(&p, 0), unlimited, "{name} without maxmemory");
    }
    for c in EvictionClass::ALL {
        assert_eq!(EvictionClass::parse(c.name()), Some(c));
    }
    assert_eq!(EvictionClass::parse(" Volatile "), Some(EvictionClass::Volatile));
    assert_eq!(EvictionClass::parse("lru"), None);
}

#[test]
fn warnings_name_each_risky_primary_and_mixed_policies() {
    let all_lru = EvictionReport {
        primaries: vec![primary(7000, "allkeys-lru", 100), primary(7001, "allkeys-lru", 100)],
        error: None,
    };
    assert!(all_lru.warnings().is_empty());
    assert_eq!(all_lru.classes(), [EvictionClass::AllKeys]);
    let unlimited = EvictionReport { primaries: vec![primary(7000, "noeviction", 0)], error: None };
    assert!(unlimited.warnings().is_empty(), "no limit: nothing to warn about");

    let risky = EvictionReport {
        primaries: vec![
            primary(7000, "volatile-lru", 100),
            primary(7001, "noeviction", 100),
            PrimaryEviction::unknown(node(7002), CacheError::Closed),
        ],
        error: None,
    };
    let w = risky.warnings();
    assert!(
        matches!(&w[0], EvictionWarning::Volatile { addr, policy: EvictionPolicy::VolatileLru } if addr.port() == 7000)
    );
    assert!(matches!(&w[1], EvictionWarning::NoEviction { addr } if addr.port() == 7001));
    assert!(matches!(&w[2], EvictionWarning::Unknown { addr, .. } if addr.port() == 7002));
    assert!(matches!(&w[3], EvictionWarning::Mixed { policies } if policies.len() == 2), "{w:?}");
    assert_eq!(w.len(), 4);
    assert!(w[0].to_string().contains("Ttl::Never"), "{}", w[0]);
    assert!(w[3].to_string().contains("volatile-lru") && w[3].to_string().contains("noeviction"));
    assert_eq!(risky.classes(), [EvictionClass::Volatile, EvictionClass::NoEviction, EvictionClass::Unknown]);
}

#[test]
fn check_refuses_the_chosen_classes_only() {
    let r = EvictionReport {
        primaries: vec![primary(7000, "allkeys-lru", 100), primary(7001, "volatile-ttl", 100)],
        error: None,
    };
    assert!(r.check(&[]).is_ok(), "default: warn only");
    assert!(r.check(&[EvictionClass::NoEviction, EvictionClass::Unknown]).is_ok());
    match r.check(&[EvictionClass::Volatile]) {
        Err(CacheError::EvictionRefused { addr, policy, class: EvictionClass::Volatile, cause: None }) => {
            assert_eq!((addr.as_str(), policy.as_str()), ("10.0.0.1:7001", "volatile-ttl"));
        }
        other => panic!("{other:?}"),
    }
    // Unknown is refused only when asked for; then with the read's error as the source.
    let unread = EvictionReport {
        primaries: vec![PrimaryEviction::unknown(node(7000), CacheError::Closed)],
        error: None,
    };
    assert!(unread.check(&[EvictionClass::Volatile]).is_ok());
    let e = unread.check(&[EvictionClass::Unknown]).unwrap_err();
    assert!(std::error::Error::source(&e).is_some(), "keeps why: {e:?}");
    let nothing = EvictionReport { primaries: vec![], error: Some(CacheError::Closed) };
    assert!(nothing.check(&[EvictionClass::Volatile]).is_ok());
    assert!(matches!(
        nothing.check(&[EvictionClass::Unknown]),
        Err(CacheError::EvictionRefused { class: EvictionClass::Unknown, cause: Some(_), .. })
    ));
    assert!(matches!(&nothing.warnings()[..], [EvictionWarning::Unread { .. }]));
}
