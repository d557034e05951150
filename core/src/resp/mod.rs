//! RESP2 and RESP3: command encoding and incremental, bounded reply decoding.

mod value;

pub use value::Value;

/// The protocol version spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2 (`AUTH`, `CLIENT SETNAME`; no maps, doubles or push messages).
    Resp2,
    /// RESP3 (negotiated with `HELLO 3`).
    Resp3,
}
