//! Your own I/O under slotcache-core: the whole cluster client over blocking `std::net` sockets,
//! with std and slotcache-core alone (no async runtime).
//!
//! ```text
//! cargo run -p slotcache-cli -- dev up    # a local 3+3 cluster; prints its seeds; Ctrl-C stops it
//! cargo run -p slotcache-core --example custom_transport -- 127.0.0.1:<seed port>
//! ```
//!
//! The core's [`Client`] decides everything: the first topology (from `CLUSTER SHARDS`), the
//! handshake on each connection (`HELLO 3`, with a fall back to RESP2), which node serves a
//! key's slot, splitting a multi-key command per slot and merging the replies, following
//! `MOVED` and `ASK`, retries and their backoff, timeouts, refreshes of the topology. This
//! program is only the I/O: it opens the connections the client asks for, writes the bytes it
//! hands out, feeds back the bytes that arrive (one reader thread per connection, over a
//! channel), and sleeps until the instant the client names. The async adapters
//! (slotcache-rt) run the same loop on tokio, smol or async-std.
//!
//! It stores four keys (printing each key's slot and the node that answered), reads them back
//! with one `MGET` that the client splits over their slots, then sends a `GET` to every primary
//! at once: the owner answers, the others say `MOVED` (which a routed request follows by
//! itself).

// The core's clippy.toml bans sockets, clocks, threads and sleeps in the core (it is sans-IO);
// this program is the I/O layer the core leaves to its user, so it uses them on purpose.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::error::Error;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Instant;

use slotcache_core::client::{
    Client, ClientConfig, Cmd, ConnError, ConnErrorKind, ConnId, Input, Output, Reply, Request, RequestError,
    RequestId,
};
use slotcache_core::{NodeAddr, key_slot};

/// What a connection's reader thread reports.
enum Io {
    Received(ConnId, Vec<u8>),
    Lost(ConnId, ConnError),
}

/// A finished request: its result, and the node that answered.
type Done = (Result<Reply, RequestError>, Option<NodeAddr>);

/// The core's client with blocking sockets around it.
pub(crate) struct BlockingClient {
    client: Client,
    conns: HashMap<ConnId, TcpStream>,
    io_tx: Sender<Io>,
    io_rx: Receiver<Io>,
    done: HashMap<RequestId, Done>,
}

impl BlockingClient {
    /// A client of the cluster these seeds belong to (nothing is connected yet).
    pub(crate) fn new(seeds: Vec<NodeAddr>) -> Result<Self, Box<dyn Error>> {
        let client = Client::new(ClientConfig::new(seeds), Instant::now())?;
        let (io_tx, io_rx) = mpsc::channel();
        Ok(Self { client, conns: HashMap::new(), io_tx, io_rx, done: HashMap::new() })
    }

    /// Runs `request` to its end: the reply and the node that gave it.
    pub(crate) fn run(&mut self, request: Request) -> Result<(Reply, Option<NodeAddr>), Box<dyn Error>> {
        let id = self.client.submit(Instant::now(), request)?;
        loop {
            let wake = self.drain();
            if let Some((result, node)) = self.done.remove(&id) {
                return Ok((result?, node));
            }
            self.wait(wake);
        }
    }

    /// Does what the client asks until it has nothing left: returns when it wants to wake up.
    fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.client.poll_output() {
                Output::Connect { conn, addr } => self.connect(conn, &addr),
                Output::Transmit { conn, data } => {
                    let written = self.conns.get_mut(&conn).map(|s| s.write_all(&data));
                    if let Some(Err(e)) = written {
                        self.conns.remove(&conn);
                        let lost = ConnError::new(ConnErrorKind::Io, e.to_string());
                        self.client.handle_input(Instant::now(), Input::Disconnected(conn, lost));
                    }
                }
                Output::Close { conn } => {
                    if let Some(s) = self.conns.remove(&conn) {
                        let _ = s.shutdown(Shutdown::Both); // its reader thread ends
                    }
                }
                Output::Completed { id, result, node } => {
                    let node = node.and_then(|n| self.client.node_addr(n).cloned());
                    self.done.insert(id, (result, node));
                }
                Output::Wait(wake) => return wake,
                _ => {} // events (topology changes, push messages): not used here
            }
        }
    }

    /// Opens `conn` to `addr` and starts its reader thread; tells the client how it went.
    fn connect(&mut self, conn: ConnId, addr: &NodeAddr) {
        let opened = TcpStream::connect((addr.host(), addr.port())).and_then(|s| {
            s.set_nodelay(true)?;
            Ok((s.try_clone()?, s))
        });
        let input = match opened {
            Ok((mut reader, writer)) => {
                self.conns.insert(conn, writer);
                let tx = self.io_tx.clone();
                thread::spawn(move || {
                    let mut buf = vec![0; 16 * 1024];
                    let lost = loop {
                        match reader.read(&mut buf) {
                            Ok(0) => break ConnError::new(ConnErrorKind::Closed, "closed by the peer"),
                            Ok(n) if tx.send(Io::Received(conn, buf[..n].to_vec())).is_ok() => {}
                            Ok(_) => return, // the program is gone
                            Err(e) => break ConnError::new(ConnErrorKind::Io, e.to_string()),
                        }
                    };
                    let _ = tx.send(Io::Lost(conn, lost));
                });
                Input::Connected(conn)
            }
            Err(e) => Input::ConnectFailed(conn, ConnError::new(ConnErrorKind::Refused, e.to_string())),
        };
        self.client.handle_input(Instant::now(), input);
    }

    /// Waits for bytes or a lost connection, or until `wake` (then tells the client the time
    /// has come).
    fn wait(&mut self, wake: Option<Instant>) {
        let io = match wake {
            Some(at) => self.io_rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => self.io_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let now = Instant::now();
        match io {
            // Connections the client has closed are forgotten: what their threads still send is not.
            Ok(Io::Received(conn, bytes)) if self.conns.contains_key(&conn) => {
                self.client.handle_input(now, Input::Received(conn, &bytes));
            }
            Ok(Io::Lost(conn, e)) if self.conns.remove(&conn).is_some() => {
                self.client.handle_input(now, Input::Disconnected(conn, e));
            }
            Ok(_) => {}
            Err(_) => self.client.handle_input(now, Input::Timeout),
        }
    }

    /// Closes every connection.
    pub(crate) fn close(&mut self) {
        self.client.close();
        self.drain();
    }
}

/// A reply's text (bulk strings and simple strings), or how it looks.
fn text(reply: &Reply) -> String {
    match reply {
        Reply::Value(v) => match v.as_array() {
            Some(items) => {
                let items: Vec<_> = items.iter().map(|i| i.as_str().unwrap_or("(nil)").to_owned()).collect();
                format!("[{}]", items.join(", "))
            }
            None => v.as_str().map_or_else(|| format!("{v:?}"), str::to_owned),
        },
        other => format!("{other:?}"),
    }
}

const KEYS: [&str; 4] = ["user:1", "user:3", "{team:red}:name", "{team:red}:size"];

/// The program: what it prints, line by line.
pub(crate) fn demo(seeds: Vec<NodeAddr>) -> Result<Vec<String>, Box<dyn Error>> {
    let mut client = BlockingClient::new(seeds)?;
    let mut lines = Vec::new();
    for (i, key) in KEYS.into_iter().enumerate() {
        let set = Cmd::new("SET").arg(key).arg(format!("value {i}"));
        let (reply, node) = client.run(Request::command(set))?;
        let node = node.map_or_else(|| "?".to_owned(), |n| n.to_string());
        lines.push(format!(
            "SET {key:<16} slot {:>5}  {node:<16} {}",
            key_slot(key.as_bytes()),
            text(&reply)
        ));
    }
    // One command over three slots: split per slot, sent to each owner, merged in key order.
    let (values, _) = client.run(Request::command(KEYS.into_iter().fold(Cmd::new("MGET"), Cmd::arg)))?;
    lines.push(format!("MGET {}  {}", KEYS.join(" "), text(&values)));
    // Asked of every primary at once (a fan-out is not redirected): only the slot's owner
    // has the key; the others answer MOVED with its address.
    let (per_node, _) = client.run(Request::all_primaries(Cmd::new("GET").arg(KEYS[0])))?;
    if let Reply::PerNode(answers) = per_node {
        for (node, answer) in answers {
            let answer = answer.map_or_else(|e| e.to_string(), |v| text(&Reply::Value(v)));
            lines.push(format!("GET {} at {node:<16} {answer}", KEYS[0]));
        }
    }
    client.close();
    Ok(lines)
}

/// The seed is the program's argument, `127.0.0.1:7000` without one.
fn main() -> Result<(), Box<dyn Error>> {
    let seed = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7000".to_owned());
    let seed = NodeAddr::parse(&seed).ok_or_else(|| format!("{seed:?} is not host:port"))?;
    for line in demo(vec![seed])? {
        println!("{line}");
    }
    Ok(())
}
