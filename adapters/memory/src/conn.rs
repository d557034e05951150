//! One client connection to a [`Node`], in bytes: what the client writes goes in, the node's
//! RESP replies come out, in order. Sans-IO: the caller moves the bytes and passes the time.

use bytes::{Bytes, BytesMut};
use slotcache_core::resp::{DecodeError, Limits, decode, encode_value};
use slotcache_core::{Protocol, Value};

use crate::command_ctx::err;
use crate::node::{Node, Session};

/// One connection's state: its unparsed input and its session (protocol).
#[derive(Debug, Default)]
pub struct Connection {
    input: BytesMut,
    session: Session,
    limits: Limits,
}

impl Connection {
    /// A new connection (RESP2 until `HELLO 3`).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `bytes` the client wrote, runs every command they complete on `node` at `now_us`
    /// (microseconds since the Unix epoch), and appends the replies to `out`.
    ///
    /// # Errors
    /// The client sent something that is not RESP: the connection must be closed (a server
    /// answers a protocol error and closes it).
    pub fn receive(
        &mut self,
        node: &mut Node,
        now_us: u64,
        bytes: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), DecodeError> {
        self.input.extend_from_slice(bytes);
        while let Some(frame) = decode(&mut self.input, Protocol::Resp3, &self.limits)? {
            let reply = match command_args(frame) {
                Some(args) => node.execute(now_us, &args, &mut self.session),
                None => err("ERR Protocol error: expected an array of bulk strings"),
            };
            let protocol = if self.session.resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
            if encode_value(out, &reply, protocol).is_err() {
                // A reply RESP2 cannot carry (every command here builds its RESP2 shape).
                let fallback = err("ERR the reply cannot be written in RESP2");
                let _ = encode_value(out, &fallback, protocol);
            }
        }
        Ok(())
    }
}

/// A command's arguments: an array of bulk (or simple) strings.
fn command_args(frame: Value) -> Option<Vec<Bytes>> {
    match frame {
        Value::Array(items) if !items.is_empty() => items
            .into_iter()
            .map(|v| match v {
                Value::Bulk(b) | Value::Simple(b) => Some(b),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}
