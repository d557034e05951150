//! A TCP fault proxy on loopback: put between clients and one node, it forwards bytes both ways
//! and, switched at run time, adds latency, caps bandwidth, drops connections, turns the
//! connections it has into half-open ones, or stops answering altogether. No root, no `tc`:
//! plain threads and sockets on `127.0.0.1`.
//!
//! Every connection has a reader and a writer thread per direction (the readers hand chunks to
//! the writers with the time they were read, so latency delays each chunk without slowing the
//! stream). Faults:
//!
//! - [`Fault::Latency`]: every chunk from the node reaches the client this much later;
//! - [`Fault::Bandwidth`]: at most this many bytes per second per connection and direction;
//! - [`Fault::Drop`]: every connection is closed at once, and new ones right after `accept`;
//! - [`Fault::HalfOpen`]: the connections open at that moment go silent for good (bytes read
//!   both ways and thrown away, nothing written); new connections work; lifting the fault
//!   closes the silent ones (as the peer's kernel finally would);
//! - [`Fault::Blackhole`]: nothing moves on any connection, old or new (accepted, never
//!   answered; like a partition, the bytes wait in the buffers and flow when it is lifted).
//!
//! Dropping the proxy closes every connection and joins every thread (each notices within
//! [`TICK`]).

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How often blocked threads look at the stop flag and the fault.
pub const TICK: Duration = Duration::from_millis(50);

/// What the proxy does to the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything at once.
    None,
    /// Delay what the node sends by this much.
    Latency(Duration),
    /// At most this many bytes per second, per connection and direction.
    Bandwidth(u64),
    /// Close every connection, and every new one at once.
    Drop,
    /// The connections open now go silent for good; new ones work.
    HalfOpen,
    /// Nothing moves on any connection until the fault is lifted.
    Blackhole,
}

/// One proxied connection, as the registry sees it.
struct Conn {
    /// Both sockets (clones), to close from outside.
    sockets: [TcpStream; 2],
    /// Silenced by a [`Fault::HalfOpen`].
    silent: Arc<AtomicBool>,
    /// Set when it is closed (by either side or by a fault).
    closed: Arc<AtomicBool>,
}

impl Conn {
    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        for s in &self.sockets {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

struct State {
    fault: Fault,
    conns: Vec<Conn>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    stop: AtomicBool,
    state: Mutex<State>,
    /// Signalled when the fault changes (threads held by a blackhole wake up).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fault(&self) -> Fault {
        self.lock().fault
    }

    /// Waits (at most one [`TICK`]) while a blackhole holds the traffic; `true` if it still does.
    fn held(&self) -> bool {
        let st = self.lock();
        if st.fault != Fault::Blackhole || self.stop.load(Ordering::Relaxed) {
            return false;
        }
        let (st, _) = self.changed.wait_timeout(st, TICK).unwrap_or_else(PoisonError::into_inner);
        st.fault == Fault::Blackhole
    }
}

/// The proxy: listens on `127.0.0.1:<ephemeral>` and forwards to one upstream address.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("fault", &self.shared.fault())
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free loopback port, forwarding without fault.
    ///
    /// # Errors
    /// No port could be bound, or the accept thread could not start.
    pub fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            stop: AtomicBool::new(false),
            state: Mutex::new(State { fault: Fault::None, conns: Vec::new(), threads: Vec::new() }),
            changed: Condvar::new(),
        });
        let sh = shared.clone();
        let accept = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(&listener, &sh))
            .map_err(|e| Error::new(format!("fault proxy: accept thread: {e}")))?;
        Ok(Self { addr, shared, accept: Some(accept) })
    }

    /// Where clients connect.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The fault in force.
    #[must_use]
    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// Connections open now (through the proxy, not yet closed).
    #[must_use]
    pub fn connections(&self) -> usize {
        let mut st = self.shared.lock();
        st.conns.retain(|c| !c.closed.load(Ordering::Relaxed));
        st.conns.len()
    }

    /// Switches to `fault` (lifting the one before).
    pub fn set(&self, fault: Fault) {
        let mut st = self.shared.lock();
        st.conns.retain(|c| !c.closed.load(Ordering::Relaxed));
        if st.fault == Fault::HalfOpen && fault != Fault::HalfOpen {
            // Lifted: the silent connections are closed, as the peer's kernel finally would.
            for c in st.conns.iter().filter(|c| c.silent.load(Ordering::Relaxed)) {
                c.close();
            }
        }
        match fault {
            Fault::Drop => st.conns.iter().for_each(Conn::close),
            Fault::HalfOpen => st.conns.iter().for_each(|c| c.silent.store(true, Ordering::Relaxed)),
            _ => {}
        }
        st.fault = fault;
        drop(st);
        self.shared.changed.notify_all();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
        // Wakes the accept loop (it sees the stop flag and closes this connection).
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let threads = {
            let mut st = self.shared.lock();
            st.conns.iter().for_each(Conn::close);
            st.conns.clear();
            std::mem::take(&mut st.threads)
        };
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, sh: &Arc<Shared>) {
    for client in listener.incoming() {
        if sh.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(client) = client else { continue };
        if sh.fault() == Fault::Drop {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&sh.upstream, Duration::from_secs(2)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        if let Err(e) = wire(client, server, sh) {
            eprintln!("fault proxy: {e}");
        }
    }
}

/// Registers a connection and starts its four threads.
fn wire(client: TcpStream, server: TcpStream, sh: &Arc<Shared>) -> std::io::Result<()> {
    for s in [&client, &server] {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(TICK))?;
    }
    let silent = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicBool::new(false));
    let conn = Conn { sockets: [client.try_clone()?, server.try_clone()?], silent, closed };
    let mut threads = Vec::with_capacity(4);
    // Client to node, then node to client (the direction latency applies to).
    for (src, dst, to_client) in [(client.try_clone()?, server.try_clone()?, false), (server, client, true)] {
        let (tx, rx) = mpsc::channel();
        let p = Pump { sh: sh.clone(), silent: conn.silent.clone(), closed: conn.closed.clone(), to_client };
        let p2 = p.clone();
        threads.push(std::thread::Builder::new().name("fault-proxy-read".into()).spawn(move || {
            p.read(src, &tx);
        })?);
        threads.push(std::thread::Builder::new().name("fault-proxy-write".into()).spawn(move || {
            p2.write(dst, &rx);
        })?);
    }
    let mut st = sh.lock();
    st.threads.retain(|t| !t.is_finished());
    st.threads.extend(threads);
    st.conns.push(conn);
    Ok(())
}

/// One direction of one connection.
#[derive(Clone)]
struct Pump {
    sh: Arc<Shared>,
    silent: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    to_client: bool,
}

impl Pump {
    fn done(&self) -> bool {
        self.closed.load(Ordering::Relaxed) || self.sh.stop.load(Ordering::Relaxed)
    }

    /// Closes both sockets of the connection (one side ended it).
    fn end(&self, a: &TcpStream) {
        self.closed.store(true, Ordering::Relaxed);
        let _ = a.shutdown(Shutdown::Both);
    }

    fn read(&self, mut src: TcpStream, tx: &Sender<(Instant, Vec<u8>)>) {
        let mut buf = vec![0u8; 16 * 1024];
        while !self.done() {
            if self.sh.held() {
                continue;
            }
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        self.end(&src);
    }

    fn write(&self, mut dst: TcpStream, rx: &Receiver<(Instant, Vec<u8>)>) {
        while !self.done() {
            let (read_at, chunk) = match rx.recv_timeout(TICK) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            while self.sh.held() {}
            if self.silent.load(Ordering::Relaxed) {
                continue;
            }
            let ok = match self.sh.fault() {
                Fault::Latency(d) if self.to_client => {
                    // The fault itself: this chunk is due `d` after it was read.
                    std::thread::sleep((read_at + d).saturating_duration_since(Instant::now()));
                    dst.write_all(&chunk).is_ok()
                }
                Fault::Bandwidth(bps) => self.paced(&mut dst, &chunk, bps.max(1)),
                _ => dst.write_all(&chunk).is_ok(),
            };
            if !ok {
                break;
            }
        }
        self.end(&dst);
    }

    /// Writes `chunk` at `bps` bytes per second, in slices of a twentieth of a second.
    fn paced(&self, dst: &mut TcpStream, chunk: &[u8], bps: u64) -> bool {
        let slice = usize::try_from((bps / 20).max(1)).unwrap_or(usize::MAX);
        for part in chunk.chunks(slice) {
            if self.done() {
                return false;
            }
            let start = Instant::now();
            if dst.write_all(part).is_err() {
                return false;
            }
            // The cap itself: this slice's share of a second.
            let due = Duration::from_secs_f64(part.len() as f64 / bps as f64);
            std::thread::sleep(due.saturating_sub(start.elapsed()));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port; it stops with the test process.
    fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut r = s.try_clone().unwrap();
                    let mut w = s;
                    let _ = std::io::copy(&mut r, &mut w);
                });
            }
        });
        addr
    }

    fn conn(p: &FaultProxy) -> TcpStream {
        let s = TcpStream::connect(p.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
        s
    }

    /// Sends `msg` and reads the echo; `None` when nothing came within the read timeout or the
    /// connection was closed.
    fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Option<Duration> {
        let t = Instant::now();
        s.write_all(msg).ok()?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).ok()?;
        assert_eq!(got, msg);
        Some(t.elapsed())
    }

    #[test]
    fn forwards_and_adds_latency() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut s = conn(&p);
        assert!(round_trip(&mut s, b"ping").unwrap() < Duration::from_millis(150));
        p.set(Fault::Latency(Duration::from_millis(200)));
        let rtt = round_trip(&mut s, b"slow").unwrap_or(Duration::MAX);
        assert!(rtt >= Duration::from_millis(200) && rtt < Duration::from_millis(400), "{rtt:?}");
        p.set(Fault::None);
        assert!(round_trip(&mut s, b"fast").unwrap() < Duration::from_millis(150));
    }

    #[test]
    fn drops_connections_and_refuses_new_ones_until_lifted() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut s = conn(&p);
        assert!(round_trip(&mut s, b"a").is_some());
        p.set(Fault::Drop);
        assert!(round_trip(&mut s, b"b").is_none(), "the old connection is closed");
        assert!(round_trip(&mut conn(&p), b"c").is_none(), "a new one is closed at once");
        p.set(Fault::None);
        assert!(round_trip(&mut conn(&p), b"d").is_some());
    }

    #[test]
    fn half_open_silences_old_connections_only() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut old = conn(&p);
        assert!(round_trip(&mut old, b"a").is_some());
        p.set(Fault::HalfOpen);
        assert!(round_trip(&mut old, b"b").is_none(), "the old connection answers nothing");
        assert!(round_trip(&mut conn(&p), b"c").is_some(), "a new connection works");
        p.set(Fault::None);
        // Lifted: the silent connection is closed (read returns 0 or an error at once).
        let mut buf = [0u8; 1];
        assert!(!matches!(old.read(&mut buf), Ok(1)));
    }

    #[test]
    fn blackhole_holds_everything_until_lifted() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut old = conn(&p);
        assert!(round_trip(&mut old, b"a").is_some());
        p.set(Fault::Blackhole);
        old.write_all(b"held").unwrap();
        let mut buf = [0u8; 4];
        assert!(old.read_exact(&mut buf).is_err(), "no answer during the blackhole");
        let mut new = conn(&p);
        assert!(round_trip(&mut new, b"new").is_none(), "a new connection gets no answer either");
        p.set(Fault::None);
        // The held bytes flow once lifted (TCP keeps them, like a partition that heals).
        old.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        old.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"held");
    }

    #[test]
    fn caps_bandwidth() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut s = conn(&p);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        p.set(Fault::Bandwidth(20_000));
        // 8 kB at 20 kB/s each way: at least 0.3 s (0.4 s one way, the directions overlap).
        let rtt = round_trip(&mut s, &[7u8; 8000]).unwrap();
        assert!(rtt >= Duration::from_millis(300), "{rtt:?}");
        assert!(p.connections() >= 1);
        drop(p);
    }
}
