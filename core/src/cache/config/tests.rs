use super::*;

/// A configuration without TLS settings.
type Config = ProviderConfig<()>;

fn field_of(r: Result<ClientSettings<()>, CacheError>) -> &'static str {
    match r {
        Err(CacheError::ClientConfig(e)) => e.field(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn defaults_match_the_reference_and_secrets_stay_hidden() {
    let mut c = Config::new(["127.0.0.1:7000"]);
    assert_eq!(c.default_ttl, Duration::from_secs(3600));
    assert_eq!(c.operation_timeout, Duration::from_secs(2));
    assert_eq!(c.max_compute_retries, 10);
    assert_eq!(c.index_prefix, "index:");
    c.password = "hunter2".into();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(c.client_settings().is_ok());
}

#[test]
fn invalid_values_are_typed_errors() {
    let mut c = Config::new(Vec::<String>::new());
    assert_eq!(field_of(c.client_settings()), "init_address");
    c.init_address = vec!["nonsense".into()];
    assert_eq!(field_of(c.client_settings()), "init_address");
    c.init_address = vec!["127.0.0.1:7000".into()];
    c.operation_timeout = Duration::ZERO;
    assert_eq!(field_of(c.client_settings()), "operation_timeout");
    c.operation_timeout = Duration::from_secs(1);
    c.max_compute_retries = 0;
    assert_eq!(field_of(c.client_settings()), "max_compute_retries");
    c.max_compute_retries = 3;
    c.username = "bob".into();
    assert_eq!(field_of(c.client_settings()), "username", "a user without a password");
}

#[test]
fn every_client_setting_is_reachable_and_checked() {
    let mut c = Config::new(["127.0.0.1:7000"]);
    c.read_from = ReadFrom::AzAffinity("use1-az1".into());
    c.protocol = Protocol::Resp2;
    c.connect_timeout = Duration::from_millis(250);
    c.connections_per_node = 4;
    c.stall_timeout = Duration::from_millis(500);
    c.max_queued_per_node = 100;
    c.max_outstanding = 1000;
    c.retry.max_attempts = 3;
    c.refresh.periodic = None;
    c.limits.max_depth = 16;
    c.mode = Mode::Standalone;
    let s = c.client_settings().unwrap().client;
    assert_eq!(s.mode, Mode::Standalone);
    assert_eq!(s.read_from, ReadFrom::AzAffinity("use1-az1".into()));
    assert_eq!(
        (s.protocol, s.connect_timeout, s.connections_per_node, s.stall_timeout),
        (Protocol::Resp2, Duration::from_millis(250), 4, Duration::from_millis(500))
    );
    assert_eq!((s.max_queued_per_node, s.max_outstanding, s.retry.max_attempts), (100, 1000, 3));
    assert_eq!((s.refresh.periodic, s.limits.max_depth), (None, 16));

    // The reference's switch still works, and an explicit policy wins over it.
    let mut r = Config::new(["h:1"]);
    r.send_to_replicas = true;
    assert_eq!(r.client_settings().unwrap().client.read_from, ReadFrom::PreferReplica);

    let check = |f: &dyn Fn(&mut Config), field: &str| {
        let mut c = Config::new(["h:1"]);
        f(&mut c);
        assert_eq!(field_of(c.client_settings()), field);
    };
    check(&|c| c.connections_per_node = 0, "connections_per_node");
    check(&|c| c.connect_timeout = Duration::ZERO, "connect_timeout");
    check(&|c| c.stall_timeout = Duration::from_secs(61), "stall_timeout");
    check(&|c| c.max_queued_per_node = 0, "max_queued_per_node");
    check(&|c| c.max_outstanding = 0, "max_outstanding");
    check(&|c| c.retry.max_attempts = 0, "retry");
    check(&|c| c.refresh.min_interval = Duration::ZERO, "refresh");
    check(&|c| c.read_from = ReadFrom::AzAffinity("".into()), "read_from");
    check(&|c| c.client_name = "a b".into(), "client_name");
    check(&|c| c.require_tls = true, "tls");
}

#[test]
fn from_url_reads_seeds_credentials_and_options() {
    let c = Config::from_url(
        "valkey://app:s%3Acret@10.0.0.1:6379,10.0.0.2?read_from=replica&connect_timeout=250ms&protocol=3\
         &client_name=svc&namespace=shop&operation_timeout=1s&max_attempts=4&mode=standalone",
    )
    .unwrap();
    assert_eq!(c.mode, Mode::Standalone);
    assert_eq!(Config::from_url("redis://h").unwrap().mode, Mode::Auto, "the default");
    assert_eq!(c.init_address, ["10.0.0.1:6379", "10.0.0.2:6379"]);
    assert_eq!((c.username.as_str(), c.password.as_str()), ("app", "s:cret"));
    assert_eq!(c.read_from, ReadFrom::PreferReplica);
    assert_eq!(c.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.protocol, Protocol::Resp3);
    assert_eq!((c.client_name.as_str(), c.namespace.as_str()), ("svc", "shop"));
    assert_eq!((c.operation_timeout, c.retry.max_attempts), (Duration::from_secs(1), 4));
    assert!(!c.require_tls);
    assert!(!format!("{c:?}").contains("s:cret"));
    let s = c.client_settings().unwrap();
    assert_eq!(s.client.password.as_ref().map(Password::expose), Some("s:cret"));

    let e = |u: &str| Config::from_url(u).unwrap_err();
    assert!(matches!(e("redis://h?colour=blue"), UrlError::UnknownOption { name } if name == "colour"));
    assert!(
        matches!(e("redis://h?default_ttl=soon"), UrlError::OptionValue { name, .. } if name == "default_ttl")
    );
    assert!(matches!(e("memcached://h"), UrlError::Scheme { .. }));
    assert!(matches!(e("redis://h?mode=sharded"), UrlError::OptionValue { name, .. } if name == "mode"));
}

/// `refuse_eviction`: empty by default (warn only), read from URLs, and `allkeys` refused.
#[test]
fn refuse_eviction_defaults_to_warn_only_and_is_checked() {
    let mut c = Config::new(["127.0.0.1:7000"]);
    assert!(c.refuse_eviction.is_empty(), "the default only warns");
    c.refuse_eviction = vec![EvictionClass::Volatile, EvictionClass::Unknown];
    assert!(c.client_settings().is_ok());
    c.refuse_eviction.push(EvictionClass::AllKeys);
    assert_eq!(field_of(c.client_settings()), "refuse_eviction");
    let c = Config::from_url("redis://h?refuse_eviction=volatile,noeviction").unwrap();
    assert_eq!(c.refuse_eviction, [EvictionClass::Volatile, EvictionClass::NoEviction]);
    assert!(format!("{c:?}").contains("refuse_eviction"));
    assert!(Config::from_url("redis://h?refuse_eviction=").unwrap().refuse_eviction.is_empty());
    let e = Config::from_url("redis://h?refuse_eviction=volatile,lru").unwrap_err();
    assert!(
        matches!(e, UrlError::OptionValue { ref name, ref value, .. } if name == "refuse_eviction" && value == "lru"),
        "{e:?}"
    );
}

#[test]
fn a_tls_url_without_tls_settings_asks_for_roots() {
    let c = Config::from_url("rediss://h:6380").unwrap();
    assert!(c.require_tls);
    let err = c.client_settings().unwrap_err();
    assert!(matches!(err, CacheError::ClientConfig(ConfigError::TlsRequired)), "{err:?}");
    assert!(err.to_string().contains("roots"), "{err}");
    let mut with_tls = c;
    with_tls.tls = Some(());
    assert!(with_tls.client_settings().unwrap().client.tls);

    // The client's settings say the same.
    let s = ClientSettings::<()>::from_url("valkeys://h:6380").unwrap();
    assert_eq!(s.validate(), Err(ConfigError::TlsRequired));
}

#[cfg(feature = "serde")]
mod files {
    use super::*;

    const TOML: &str = r#"
init_address = ["10.0.0.1:6379", "10.0.0.2:6379"]
mode = "cluster"
client_name = "my-service"
namespace = "shop"
default_ttl = "10m"
operation_timeout = "500ms"
read_from = "az:use1-az1"
protocol = 2
connect_timeout = "250ms"
connections_per_node = 2
durability = { replicas = 1, timeout = "100ms" }

[retry]
max_attempts = 4
max_backoff = "100ms"
jitter = "full"

[refresh]
periodic = "off"
min_interval = "200ms"
"#;

    #[test]
    fn a_toml_document_reads_into_a_provider_config() {
        let c: Config = toml::from_str(TOML).unwrap();
        assert_eq!(c.init_address.len(), 2);
        assert_eq!(c.mode, Mode::Cluster);
        assert_eq!(c.client_settings().unwrap().client.mode, Mode::Cluster);
        assert_eq!(
            (c.default_ttl, c.operation_timeout),
            (Duration::from_secs(600), Duration::from_millis(500))
        );
        assert_eq!(c.read_from, ReadFrom::AzAffinity("use1-az1".into()));
        assert_eq!((c.protocol, c.connections_per_node), (Protocol::Resp2, 2));
        assert_eq!(c.durability, Durability::Replicas { replicas: 1, timeout: Duration::from_millis(100) });
        assert_eq!((c.retry.max_attempts, c.retry.max_backoff), (4, Duration::from_millis(100)));
        assert_eq!(
            c.retry.base_backoff,
            RetryConfig::default().base_backoff,
            "unset fields keep their defaults"
        );
        assert_eq!((c.refresh.periodic, c.refresh.min_interval), (None, Duration::from_millis(200)));
        assert_eq!(c.index_prefix, "index:");
        assert!(c.client_settings().is_ok());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let err = |doc: &str| toml::from_str::<Config>(doc).unwrap_err().to_string();
        assert!(err("init_adress = [\"h:1\"]").contains("init_adress"));
        assert!(err("[retry]\nmax_attempt = 3").contains("max_attempt"));
        assert!(err("connect_timeout = \"250\"").contains("no unit"));
        assert!(err("read_from = \"nearby\"").contains("nearby"));
        assert!(err("protocol = 4").contains("protocol"));
        assert!(err("mode = \"sentinel\"").contains("sentinel"));
        assert!(err("durability = \"eventually\"").contains("eventually"));
        assert!(err("tls = true").contains("tls"), "TLS settings are built in code");
        assert!(err("refuse_eviction = [\"lru\"]").contains("not an eviction class"));
        let c: Config = toml::from_str("refuse_eviction = [\"volatile\", \"unknown\"]").unwrap();
        assert_eq!(c.refuse_eviction, [EvictionClass::Volatile, EvictionClass::Unknown]);
    }

    #[test]
    fn a_toml_document_reads_into_a_client_config() {
        let c: ClientConfig = toml::from_str(
            "seeds = [\"127.0.0.1:7000\", \"[::1]:7001\"]\nusername = \"app\"\npassword = \"pw\"\n\
             request_timeout = \"1s\"\nstall_timeout = \"1s\"\nread_from = \"replica\"\n\
             mode = \"Standalone\"\n\
             [limits]\nmax_depth = 8\n",
        )
        .unwrap();
        assert_eq!(c.seeds, [NodeAddr::new("127.0.0.1", 7000), NodeAddr::new("::1", 7001)]);
        assert_eq!(c.password.as_ref().map(Password::expose), Some("pw"));
        assert!(!format!("{c:?}").contains("\"pw\""));
        assert_eq!(
            (c.request_timeout, c.read_from.clone(), c.limits.max_depth),
            (Duration::from_secs(1), ReadFrom::PreferReplica, 8)
        );
        assert_eq!(c.mode, Mode::Standalone);
        assert!(c.validate().is_ok());
        assert!(
            toml::from_str::<ClientConfig>("seeds = [\"nohost\"]")
                .unwrap_err()
                .to_string()
                .contains("nohost")
        );
        assert!(toml::from_str::<ClientConfig>("colour = 1").unwrap_err().to_string().contains("colour"));
    }
}
