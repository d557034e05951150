//! Conformance (real TLS cluster): the platform verifier trusts a CA installed as a system root.
//!
//! Nothing on the machine is modified: the test runs itself again as a child process with
//! `SSL_CERT_FILE` pointing at the cluster's CA (a temporary file), which the platform verifier
//! honours on Linux (it reads the store as `rustls-native-certs` does). In the child,
//! [`TlsConfig::with_platform_verifier`] with no custom root connects and serves; without the
//! variable the same settings are refused at once with [`TlsFailure::UnknownIssuer`].
//!
//! Needs `redis-server`; outside CI it may be skipped with `SLOTCACHE_SKIP_TLS=1`.

use std::time::Duration;

use slotcache_rt::{Client, Cmd, Error, RequestError, TlsConfig, TlsFailure};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{Rt, config};

const CHILD: &str = "SLOTCACHE_SYSTEM_ROOTS_CHILD";

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn platform_verifier_trusts_a_ca_installed_as_system_root() {
    if std::env::var_os(CHILD).is_some() {
        return; // the child runs only `child_connects_with_system_roots`
    }
    if let Some(reason) = slotcache_tests::tls::skip_reason() {
        eprintln!("SKIPPED platform_verifier_trusts_a_ca_installed_as_system_root: {reason}");
        return;
    }
    let c = ClusterBuilder::new()
        .tls(true)
        .masters(3)
        .replicas(0)
        .label("conf-sysroots")
        .start()
        .expect("cluster");
    let files = c.tls_files().expect("TLS files").clone();
    let seeds: Vec<String> = c.seeds().iter().map(ToString::to_string).collect();
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_connects_with_system_roots", "--nocapture", "--test-threads=1"])
        .env(CHILD, seeds.join(","))
        .env("SLOTCACHE_CLIENT_CERT", &files.client_cert)
        .env("SLOTCACHE_CLIENT_KEY", &files.client_key)
        .env("SSL_CERT_FILE", &files.ca_cert)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("child test");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success() && text.contains("1 passed"), "child failed");

    // Without the CA in the system store, the same settings are refused, typed, at once.
    let rt = Rt::Tokio;
    rt.block_on(async {
        let mut cfg = config(&c);
        cfg.client.request_timeout = Duration::from_secs(10);
        cfg.tls = Some(
            TlsConfig::new()
                .with_platform_verifier()
                .with_client_cert_pem(&read(&files.client_cert), &read(&files.client_key))
                .expect("client cert"),
        );
        let e = Client::connect(rt.runtime(), cfg).await.expect_err("CA not in the system store");
        match &e {
            Error::Request(RequestError::Unreachable { error, .. }) => {
                assert_eq!(error.tls_failure(), Some(TlsFailure::UnknownIssuer), "{e}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    });
}

/// Run by the test above in a child process whose `SSL_CERT_FILE` is the cluster's CA; does
/// nothing otherwise.
#[test]
fn child_connects_with_system_roots() {
    let Some(seeds) = std::env::var_os(CHILD) else { return };
    let seeds: Vec<slotcache_rt::NodeAddr> = seeds
        .to_string_lossy()
        .split(',')
        .map(|s| {
            let (h, p) = s.rsplit_once(':').expect("host:port");
            slotcache_rt::NodeAddr::new(h, p.parse().expect("port"))
        })
        .collect();
    let cert = read(std::path::Path::new(&std::env::var_os("SLOTCACHE_CLIENT_CERT").expect("cert")));
    let key = read(std::path::Path::new(&std::env::var_os("SLOTCACHE_CLIENT_KEY").expect("key")));
    let rt = Rt::Tokio;
    rt.block_on(async {
        let mut cfg = slotcache_rt::Config::new(seeds);
        cfg.tls = Some(
            TlsConfig::new().with_platform_verifier().with_client_cert_pem(&cert, &key).expect("client cert"),
        );
        let client = Client::connect(rt.runtime(), cfg).await.expect("connect with the system roots");
        let v = client.send(Cmd::new("SET").arg("sysroots").arg("1")).await.expect("set");
        assert_eq!(v.as_str(), Some("OK"));
        client.close().await;
    });
}
