//! Conformance (every runtime): a node that answers with bad bytes.
//!
//! A fake node (a `std::net::TcpListener` served by plain threads of the test) speaks just
//! enough RESP2 to be a one-node cluster (`HELLO` refused, so the client falls back to RESP2;
//! `CLIENT SETNAME`, `PING`, and a hand-written `CLUSTER SHARDS` that gives it every slot), and
//! answers chosen commands with:
//!
//! - garbage (`hello world\r\n`: not a RESP type byte);
//! - a truncated reply, then a close (`$10\r\nabc`);
//! - an oversized bulk header (`$99999999999\r\n`, over the 512 MiB limit; the connection stays
//!   open, so a client that waited for the payload would hang).
//!
//! Shows, seeded at the fake node (the bad answer is the reply to the handshake), that
//! [`Client::connect`] returns a typed error whose detail names the decoding problem (or the
//! close mid-reply), in bounded time; and, after a good topology (the bad answer is the reply to
//! `GET`), that the request fails with a typed error (`Protocol` with the decode error, or the
//! lost connection) and the client survives: once the node answers properly again the next
//! request succeeds. No panic anywhere.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use slotcache_core::resp::{DecodeError, Protocol, encode_value};
use slotcache_core::topology::{Node, Shard, SlotRange, Topology};
use slotcache_core::{SLOT_COUNT, Slot};
use slotcache_rt::{Client, Cmd, Config, Error, NodeAddr, RequestError, Value};
use slotcache_tests::conformance::ALL;

/// What the fake node sends instead of a proper reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bad {
    Garbage,
    Truncated,
    Oversized,
}

impl Bad {
    const ALL: [Self; 3] = [Self::Garbage, Self::Truncated, Self::Oversized];

    /// The bytes sent, and whether the connection is closed after them.
    const fn bytes(self) -> (&'static [u8], bool) {
        match self {
            Self::Garbage => (b"hello world\r\n", false),
            Self::Truncated => (b"$10\r\nabc", true),
            Self::Oversized => (b"$99999999999\r\n", false),
        }
    }
}

/// How the fake node behaves; changed by the test while it runs.
#[derive(Clone, Copy, Debug)]
struct Behaviour {
    /// Bad answer to the handshake (`HELLO`) and to everything after it on that connection.
    handshake: Option<Bad>,
    /// Bad answer to `GET`.
    get: Option<Bad>,
}

/// A fake one-node cluster on a local port, served by threads of the test; stopped on drop.
struct FakeNode {
    addr: NodeAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeNode {
    fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let addr = NodeAddr::new("127.0.0.1", port);
        let behaviour = Arc::new(Mutex::new(behaviour));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (behaviour, stop, addr) = (behaviour.clone(), stop.clone(), addr.clone());
            std::thread::spawn(move || {
                let mut conns = Vec::new();
                // Bounded: the test stops it, and no test lasts a minute.
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            let (behaviour, stop, addr) = (behaviour.clone(), stop.clone(), addr.clone());
                            conns.push(std::thread::spawn(move || serve(sock, &addr, &behaviour, &stop)));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break,
                    }
                }
                for c in conns {
                    let _ = c.join();
                }
            })
        };
        Self { addr, behaviour, stop, acceptor: Some(acceptor) }
    }

    fn set(&self, b: Behaviour) {
        *self.behaviour.lock().expect("lock") = b;
    }

    fn config(&self) -> Config {
        let mut cfg = Config::new(vec![self.addr.clone()]);
        cfg.client.client_name = Some("slotcache-bad-input".into());
        cfg.client.request_timeout = Duration::from_millis(500);
        cfg
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_value(&mut out, v, Protocol::Resp2).expect("encodable");
    out.to_vec()
}

/// `CLUSTER SHARDS` of a one-node cluster: `addr` serves every slot (rendered by
/// [`Topology::to_shards_reply`]).
fn shards_reply(addr: &NodeAddr) -> Vec<u8> {
    let all =
        SlotRange::new(Slot::new(0).expect("slot"), Slot::new(SLOT_COUNT - 1).expect("slot")).expect("range");
    let primary = Node {
        id: Some("f".repeat(40).into()),
        replication_offset: Some(0),
        ..Node::from_addr(addr.clone())
    };
    let topology = Topology::from_shards(vec![Shard { slots: vec![all], primary, replicas: Vec::new() }])
        .expect("a one-node topology");
    encode(&topology.to_shards_reply(Protocol::Resp2, false))
}

/// Serves one connection until the client closes it, a bad answer closes it, or the test stops.
fn serve(sock: TcpStream, addr: &NodeAddr, behaviour: &Mutex<Behaviour>, stop: &AtomicBool) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_read_timeout(Some(Duration::from_millis(50)));
    let Ok(mut out) = sock.try_clone() else { return };
    let mut reader = BufReader::new(sock);
    let mut poisoned = None;
    while !stop.load(Ordering::Relaxed) {
        let cmd = match slotcache_tests::resp::read_value(&mut reader, 0) {
            Ok(v) => v,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue;
            }
            Err(_) => return,
        };
        let args: Vec<String> = cmd
            .as_array()
            .unwrap_or_default()
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_ascii_uppercase())
            .collect();
        let now = *behaviour.lock().expect("lock");
        let bad = match args.first().map(String::as_str) {
            Some("HELLO") => now.handshake,
            Some("GET") => now.get,
            _ => None,
        }
        .or(poisoned);
        let reply: Vec<u8> = match (bad, args.first().map(String::as_str), args.get(1).map(String::as_str)) {
            (Some(bad), ..) => {
                let (bytes, close) = bad.bytes();
                poisoned = Some(bad);
                if out.write_all(bytes).is_err() || close {
                    return;
                }
                continue;
            }
            (None, Some("HELLO"), _) => b"-ERR unknown command 'HELLO'\r\n".to_vec(),
            (None, Some("CLIENT"), _) => b"+OK\r\n".to_vec(),
            (None, Some("PING"), _) => b"+PONG\r\n".to_vec(),
            (None, Some("CLUSTER"), Some("SHARDS")) => shards_reply(addr),
            (None, Some("GET"), _) => b"$4\r\nfine\r\n".to_vec(),
            _ => b"-ERR the fake node does not know this command\r\n".to_vec(),
        };
        if out.write_all(&reply).is_err() {
            return;
        }
    }
}

#[test]
fn bad_bytes_from_a_seed_are_a_typed_error_at_connect() {
    for rt in ALL {
        let p = rt.name();
        for bad in Bad::ALL {
            let fake = FakeNode::start(Behaviour { handshake: Some(bad), get: None });
            let t = Instant::now();
            let e = rt.block_on(Client::connect(rt.runtime(), fake.config())).expect_err("bad seed");
            let took = t.elapsed();
            eprintln!("[figure] bad-input/{p}: {bad:?} at the handshake -> in {} ms: {e}", took.as_millis());
            assert!(took < Duration::from_secs(2), "{p}: {bad:?}: took {took:?}");
            let Error::Request(RequestError::NoTopology { detail, .. }) = &e else {
                panic!("{p}: {bad:?}: expected NoTopology, got {e:?}")
            };
            assert!(detail.contains(&fake.addr.to_string()), "{p}: names the node: {detail}");
            let want = match bad {
                Bad::Garbage => "invalid RESP type byte",
                Bad::Truncated => "in the middle of a reply",
                Bad::Oversized => "exceeds the limit",
            };
            assert!(detail.contains(want), "{p}: {bad:?}: {detail}");
        }
    }
}

#[test]
fn bad_replies_after_the_topology_are_typed_and_the_client_survives() {
    for rt in ALL {
        let p = rt.name();
        let fake = FakeNode::start(Behaviour { handshake: None, get: None });
        rt.block_on(async {
            let client = Client::connect(rt.runtime(), fake.config()).await.expect("connect to the fake node");
            let v = client.send(Cmd::new("GET").arg("k")).await.expect("a proper GET");
            assert_eq!(v.as_str(), Some("fine"));
            for bad in Bad::ALL {
                fake.set(Behaviour { handshake: None, get: Some(bad) });
                let t = Instant::now();
                let e = client.send(Cmd::new("GET").arg("k")).await.expect_err("bad reply");
                let took = t.elapsed();
                eprintln!("[figure] bad-input/{p}: {bad:?} reply to GET -> in {} ms: {e}", took.as_millis());
                assert!(took < Duration::from_millis(450), "{p}: {bad:?}: failed fast, not at the timeout: {took:?}");
                match (bad, &e) {
                    (Bad::Garbage, Error::Request(RequestError::Protocol { addr, error })) => {
                        assert_eq!(addr, &fake.addr);
                        assert!(matches!(error, DecodeError::InvalidPrefix { byte: b'h' }), "{p}: {e}");
                    }
                    (Bad::Oversized, Error::Request(RequestError::Protocol { addr, error })) => {
                        assert_eq!(addr, &fake.addr);
                        assert!(matches!(error, DecodeError::BulkTooLong { .. }), "{p}: {e}");
                    }
                    (
                        Bad::Truncated,
                        Error::Request(RequestError::Unreachable { .. } | RequestError::ConnectionLost { .. }),
                    ) => {
                        assert!(e.to_string().contains(&fake.addr.to_string()), "{p}: {e}");
                    }
                    (_, other) => panic!("{p}: {bad:?}: unexpected error {other:?}"),
                }
                // The node behaves again: the client, left alone, serves.
                fake.set(Behaviour { handshake: None, get: None });
                let v = client.send(Cmd::new("GET").arg("k")).await.expect("served after the bad reply");
                assert_eq!(v.as_str(), Some("fine"), "{p}");
            }
            let stats = client.stats().await.expect("stats");
            eprintln!(
                "[figure] bad-input/{p}: client stats after 3 bad replies: protocol errors {}, disconnects {}, \
                 connects {}",
                stats.protocol_errors, stats.disconnects, stats.connects
            );
            assert!(stats.protocol_errors >= 2, "{p}: {stats:?}");
            client.close().await;
        });
    }
}
