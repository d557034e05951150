//! The examples do what their docs say, on a real cluster (3 masters + 1 replica each): the
//! axum service (`adapters/tokio/examples/axum_service.rs`) answers HTTP requests with one
//! database query for a burst of concurrent reads of one user and drops the rosters a write
//! changes; the OpenTelemetry example (`adapters/tokio/examples/opentelemetry.rs`) hands the
//! SDK the cache metrics and one span per cache operation with its database attributes; the
//! custom transport (`core/examples/custom_transport.rs`, the core's client over
//! blocking sockets) stores, reads across slots and sees `MOVED` from every primary but the owner.
//!
//! The examples' own code is compiled into this test (`#[path]` modules), not a copy of it.

mod cache_support;

#[path = "../../adapters/tokio/examples/axum_service.rs"]
#[allow(dead_code)] // its `main` and what only `main` uses
mod axum_service;

#[path = "../../adapters/tokio/examples/opentelemetry.rs"]
#[allow(dead_code)]
mod opentelemetry_example;

#[path = "../../core/examples/custom_transport.rs"]
#[allow(dead_code)]
mod custom_transport;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use slotcache_tests::conformance::Rt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use axum_service::{AppState, Database, Stats, Updated, User};
use cache_support::{cluster, config, shared};

const LABEL: &str = "examples-against-a-cluster";

/// One HTTP/1.1 request on a new connection: the status and the body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect to the service");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let status =
        answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// A `200` answer's JSON body.
async fn json<T: DeserializeOwned>(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> T {
    let (status, text) = http(addr, method, path, body).await;
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

fn names(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.name.as_str()).collect()
}

#[test]
fn axum_service_caches_loads_and_invalidates_on_writes() {
    let c = cluster(LABEL);
    let _g = shared();
    Rt::Tokio.block_on(async move {
        let provider = slotcache_tokio::provider(config(&c, "example-axum")).await.expect("provider");
        let db = Arc::new(Database::with(axum_service::sample_users()));
        let state = AppState::new(&provider, db).expect("namespaces");
        state.users.invalidate_all().await.expect("a fresh users namespace");
        state.teams.invalidate_all().await.expect("a fresh teams namespace");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move { axum::serve(listener, axum_service::app(state)).await });

        // A burst of concurrent reads of one user: one load. (A second one is possible only if
        // a request's miss was read just before the first load stored and had left the table of
        // loads in flight when that request joined; never one per request.)
        let burst: Vec<_> =
            (0..20).map(|_| tokio::spawn(json::<User>(addr, "GET", "/users/1", None))).collect();
        for r in burst {
            assert_eq!(r.await.expect("request").name, "Alice");
        }
        let stats: Stats = json(addr, "GET", "/stats", None).await;
        assert!((1..=2).contains(&stats.database_queries), "20 concurrent reads: {stats:?}");
        assert_eq!(stats.user_hits + stats.user_misses, 20, "{stats:?}");
        eprintln!("20 concurrent GET /users/1: {stats:?}");
        let before = stats.database_queries;
        let alice: User = json(addr, "GET", "/users/1", None).await;
        assert_eq!((alice.id, alice.team.as_str()), (1, "red"));
        assert_eq!(http(addr, "GET", "/users/99", None).await.0, 404, "an unknown user");

        let red: Vec<User> = json(addr, "GET", "/teams/red", None).await;
        assert_eq!(names(&red), ["Alice", "Bob"]);
        let again: Vec<User> = json(addr, "GET", "/teams/red", None).await;
        assert_eq!(again, red);
        let stats: Stats = json(addr, "GET", "/stats", None).await;
        assert_eq!(stats.database_queries, before + 2, "a hit, then 99 and the red roster once: {stats:?}");

        // Alice moves to blue: her entry and the red roster (tagged user:1) go; blue's was not cached.
        let updated: Updated = json(addr, "PUT", "/users/1", Some(r#"{"name":"Alice","team":"blue"}"#)).await;
        assert_eq!(updated.rosters_invalidated, 1, "{updated:?}");
        let alice: User = json(addr, "GET", "/users/1", None).await;
        assert_eq!(alice.team, "blue", "reloaded after the write");
        let red: Vec<User> = json(addr, "GET", "/teams/red", None).await;
        assert_eq!(names(&red), ["Bob"]);
        let blue: Vec<User> = json(addr, "GET", "/teams/blue", None).await;
        assert_eq!(names(&blue), ["Alice", "Carol"]);
        // Carol changes her name: the blue roster (cached now, tagged team:blue and user:3) goes.
        let updated: Updated =
            json(addr, "PUT", "/users/3", Some(r#"{"name":"Caroline","team":"blue"}"#)).await;
        assert_eq!(updated.rosters_invalidated, 1, "{updated:?}");
        let blue: Vec<User> = json(addr, "GET", "/teams/blue", None).await;
        assert_eq!(names(&blue), ["Alice", "Caroline"]);

        server.abort();
        provider.close().await;
    });
}

#[test]
fn custom_transport_routes_splits_and_sees_moved() {
    let c = cluster(LABEL);
    let _g = shared();
    let seeds = c.seeds();
    let lines = std::thread::spawn(move || custom_transport::demo(seeds).map_err(|e| e.to_string()))
        .join()
        .expect("the example's thread")
        .expect("the example");
    let text = lines.join("\n");
    eprintln!("{text}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("SET ") && l.ends_with(" OK")).count(), 4, "{text}");
    assert!(
        lines.iter().any(|l| l.starts_with("MGET ") && l.ends_with("[value 0, value 1, value 2, value 3]")),
        "{text}"
    );
    let gets: Vec<_> = lines.iter().filter(|l| l.starts_with("GET ")).collect();
    assert_eq!(gets.iter().filter(|l| l.ends_with(" value 0")).count(), 1, "only the owner answers: {text}");
    assert_eq!(gets.len(), 3, "one answer per primary: {text}");
    assert_eq!(gets.iter().filter(|l| l.contains("MOVED 10778 ")).count(), 2, "{text}");
}

#[test]
fn opentelemetry_sdk_receives_the_metrics_and_the_spans() {
    let c = cluster(LABEL);
    let _g = shared();
    let pipelines = opentelemetry_example::Pipelines::install().expect("the recorder and the subscriber");
    let removed = Rt::Tokio
        .block_on(async move {
            opentelemetry_example::operate(config(&c, "example-otel")).await.map_err(|e| e.to_string())
        })
        .expect("the operations");
    assert_eq!(removed, 2, "two entries tagged team:red");
    let exported = pipelines.exported().expect("flushed");
    let text = format!("{:#?}", exported);
    let metric = |line: &str| exported.metrics.iter().any(|m| m == line);
    assert!(metric("slotcache_cache_hits_total{namespace=otel-users,operation=get_if_present} 1"), "{text}");
    assert!(
        metric("slotcache_cache_misses_total{namespace=otel-users,operation=get_if_present} 1"),
        "{text}"
    );
    assert!(metric("slotcache_cache_loads_total{namespace=otel-users,operation=get,outcome=ok} 1"), "{text}");
    assert!(exported.metrics.iter().any(|m| m.starts_with("slotcache_node_requests_total{node=")), "{text}");
    let spans = |op: &str| {
        exported
            .spans
            .iter()
            .filter(|s| s.starts_with(&format!("{op} ")) && s.contains("slotcache.namespace=otel-users"))
            .count()
    };
    assert_eq!(spans("set"), 2, "{text}");
    assert_eq!(spans("invalidate_by_tags"), 1, "{text}");
    let request =
        |s: &&String| s.starts_with("SET ") && s.contains("slotcache.slot=") && s.contains("server.port=");
    assert!(exported.spans.iter().any(|s| request(&s)), "a request span per SET: {text}");
}
