//! A small blocking RESP2 connection, plain or TLS: send one command, read one reply.
//!
//! The harness and the tests use it to drive cluster set-up and to see raw replies (`MOVED`,
//! `ASK`, `TRYAGAIN`) exactly as the server sends them. Replies are decoded into the core's
//! [`Value`] (RESP2 subset: `Nil`, `Simple`, `Error`, `Int`, `Bulk`, `Array`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use slotcache_core::{NodeAddr, Value};

use crate::tls::TlsClient;

/// Longest status/error/integer line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// Largest bulk string accepted.
const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Most array elements accepted.
const MAX_ARRAY: i64 = 10_000_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 32;

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// One blocking connection to one node.
pub struct Conn {
    io: BufReader<Stream>,
    addr: NodeAddr,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Conn {
    /// Connect, read and write timeout used by [`Conn::connect`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A plain-text connection with [`Conn::DEFAULT_TIMEOUT`].
    pub fn connect(addr: &NodeAddr) -> io::Result<Self> {
        Self::connect_with(addr, None, Self::DEFAULT_TIMEOUT)
    }

    /// A connection, over TLS when `tls` is given (the handshake completes before this returns),
    /// with `timeout` for connecting and for every read and write.
    pub fn connect_with(addr: &NodeAddr, tls: Option<&TlsClient>, timeout: Duration) -> io::Result<Self> {
        let sock_addr = (addr.host(), addr.port())
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address")))?;
        let tcp = TcpStream::connect_timeout(&sock_addr, timeout)?;
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        tcp.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let name = ServerName::try_from(addr.host().to_owned())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let conn = rustls::ClientConnection::new(Arc::clone(tls.config()), name)
                    .map_err(io::Error::other)?;
                let mut s = rustls::StreamOwned::new(conn, tcp);
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Stream::Tls(Box::new(s))
            }
        };
        Ok(Self { io: BufReader::new(stream), addr: addr.clone() })
    }

    /// The address this connection went to.
    #[must_use]
    pub const fn addr(&self) -> &NodeAddr {
        &self.addr
    }

    /// Whether this connection speaks TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        matches!(self.io.get_ref(), Stream::Tls(_))
    }

    /// Changes the read timeout (for blocking commands or slow drills).
    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.io.get_ref().tcp().set_read_timeout(Some(timeout))
    }

    /// Sends one command without reading the reply (pipelining: follow with
    /// [`Conn::read_reply`] once per command sent).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: impl IntoIterator<Item = A>) -> io::Result<()> {
        let buf = encode(args);
        let s = self.io.get_mut();
        s.write_all(&buf)?;
        s.flush()
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> io::Result<Value> {
        read_value(&mut self.io, 0)
    }

    /// Sends one command and reads its reply. A server error is `Ok(Value::Error(..))`: only
    /// I/O and protocol failures are `Err`.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: impl IntoIterator<Item = A>) -> io::Result<Value> {
        self.send(args)?;
        self.read_reply()
    }

    /// Sends one command and demands a string reply (simple or bulk); errors and other reply
    /// kinds become `Err`. Handy for `PING`, `CLUSTER INFO`, `CLUSTER NODES`, `INFO`.
    pub fn cmd_text<A: AsRef<[u8]>>(&mut self, args: impl IntoIterator<Item = A>) -> crate::Result<String> {
        let v = self.cmd(args).map_err(|e| crate::Error::new(format!("{}: {e}", self.addr)))?;
        match &v {
            Value::Simple(b) | Value::Bulk(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            other => Err(crate::Error::new(format!("{}: unexpected reply {}", self.addr, display(other)))),
        }
    }

    /// Sends one command and demands `+OK`.
    pub fn cmd_ok<A: AsRef<[u8]>>(&mut self, args: impl IntoIterator<Item = A>) -> crate::Result<()> {
        let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        let v = self.cmd(&args).map_err(|e| crate::Error::new(format!("{}: {e}", self.addr)))?;
        if matches!(&v, Value::Simple(b) if b.as_ref() == b"OK") {
            Ok(())
        } else {
            Err(crate::Error::new(format!(
                "{}: {} -> {}",
                self.addr,
                args.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" "),
                display(&v)
            )))
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: impl IntoIterator<Item = A>) -> Vec<u8> {
    let args: Vec<A> = args.into_iter().collect();
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in &args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.by_ref().take(MAX_LINE).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    if !line.ends_with(b"\r\n") {
        return Err(invalid("reply line without CRLF (too long or cut)"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(b: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad integer {:?}", String::from_utf8_lossy(b))))
}

/// Reads one RESP2 value from `r`.
pub fn read_value(r: &mut impl BufRead, depth: usize) -> io::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(invalid("reply nested too deeply"));
    }
    let line = read_line(r)?;
    let Some((&tag, rest)) = line.split_first() else {
        return Err(invalid("empty reply line"));
    };
    match tag {
        b'+' => Ok(Value::Simple(Bytes::copy_from_slice(rest))),
        b'-' => Ok(Value::Error(Bytes::copy_from_slice(rest))),
        b':' => Ok(Value::Int(parse_int(rest)?)),
        b'$' => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(Value::Nil);
            }
            if n > MAX_BULK {
                return Err(invalid(format!("bulk string of {n} bytes")));
            }
            let mut buf = vec![0; usize::try_from(n).map_err(invalid_len)? + 2];
            r.read_exact(&mut buf)?;
            if !buf.ends_with(b"\r\n") {
                return Err(invalid("bulk string without CRLF"));
            }
            buf.truncate(buf.len() - 2);
            Ok(Value::Bulk(Bytes::from(buf)))
        }
        b'*' => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(Value::Nil);
            }
            if n > MAX_ARRAY {
                return Err(invalid(format!("array of {n} elements")));
            }
            let n = usize::try_from(n).map_err(invalid_len)?;
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(read_value(r, depth + 1)?);
            }
            Ok(Value::Array(items))
        }
        other => Err(invalid(format!("unknown RESP2 type byte {:?}", other as char))),
    }
}

fn invalid_len(e: std::num::TryFromIntError) -> io::Error {
    invalid(e.to_string())
}

/// The text of an error reply (`MOVED 3999 127.0.0.1:7001`), or `None` for other replies.
#[must_use]
pub fn error_text(v: &Value) -> Option<String> {
    match v {
        Value::Error(e) => Some(String::from_utf8_lossy(e).into_owned()),
        _ => None,
    }
}

/// A short readable rendering of a reply, for messages and demo output.
#[must_use]
pub fn display(v: &Value) -> String {
    match v {
        Value::Nil => "(nil)".to_owned(),
        Value::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Error(b) => format!("(error) {}", String::from_utf8_lossy(b)),
        Value::Int(i) => format!("(integer) {i}"),
        Value::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Value::Array(items) => format!("[{}]", items.iter().map(display).collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}

/// A cluster redirection carried by an error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// `true` for `ASK` (one command, after `ASKING`), `false` for `MOVED` (the slot moved).
    pub ask: bool,
    /// The slot.
    pub slot: u16,
    /// Where to go.
    pub addr: NodeAddr,
}

/// Parses `MOVED <slot> <addr>` or `ASK <slot> <addr>` from an error reply.
#[must_use]
pub fn redirect(v: &Value) -> Option<Redirect> {
    let text = error_text(v)?;
    let mut parts = text.split_ascii_whitespace();
    let ask = match parts.next()? {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let slot = parts.next()?.parse().ok()?;
    let addr = NodeAddr::parse(parts.next()?)?;
    Some(Redirect { ask, slot, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> io::Result<Value> {
        read_value(&mut io::Cursor::new(bytes), 0)
    }

    #[test]
    fn encodes_commands() {
        assert_eq!(encode(["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(encode::<&str>([]), b"*0\r\n");
    }

    #[test]
    fn decodes_every_resp2_kind() {
        assert_eq!(decode(b"+OK\r\n").unwrap(), Value::Simple(Bytes::from_static(b"OK")));
        assert_eq!(decode(b"-MOVED 1 a:2\r\n").unwrap(), Value::Error(Bytes::from_static(b"MOVED 1 a:2")));
        assert_eq!(decode(b":-42\r\n").unwrap(), Value::Int(-42));
        assert_eq!(decode(b"$3\r\na\r\n\r\n").unwrap(), Value::Bulk(Bytes::from_static(b"a\r\n")));
        assert_eq!(decode(b"$-1\r\n").unwrap(), Value::Nil);
        assert_eq!(decode(b"*-1\r\n").unwrap(), Value::Nil);
        assert_eq!(
            decode(b"*2\r\n:1\r\n*1\r\n$0\r\n\r\n").unwrap(),
            Value::Array(vec![Value::Int(1), Value::Array(vec![Value::Bulk(Bytes::new())])])
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(decode(b"").is_err());
        assert!(decode(b"?x\r\n").is_err());
        assert!(decode(b":x\r\n").is_err());
        assert!(decode(b"$5\r\nab\r\n").is_err());
        assert!(decode(b"+OK\n").is_err());
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(decode(deep.as_bytes()).is_err());
    }

    #[test]
    fn parses_redirects() {
        let moved = Value::Error(Bytes::from_static(b"MOVED 3999 127.0.0.1:6381"));
        assert_eq!(
            redirect(&moved),
            Some(Redirect { ask: false, slot: 3999, addr: NodeAddr::new("127.0.0.1", 6381) })
        );
        let ask = Value::Error(Bytes::from_static(b"ASK 1 [::1]:7000"));
        assert_eq!(redirect(&ask).map(|r| (r.ask, r.addr.port())), Some((true, 7000)));
        assert_eq!(redirect(&Value::Error(Bytes::from_static(b"ERR x"))), None);
        assert_eq!(redirect(&Value::Int(1)), None);
    }
}
