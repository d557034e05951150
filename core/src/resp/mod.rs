//! RESP2 and RESP3: command encoding and incremental, bounded reply decoding.
//!
//! - [`encode_command`] writes a request (an array of bulk strings) into the caller's buffer.
//! - [`decode`] takes one reply off the front of a read buffer, or says it needs more bytes.
//!   It checks [`Limits`] as soon as a header arrives, never recurses, never panics, and hands
//!   out bulk strings as zero-copy [`Bytes`](bytes::Bytes) views of the buffer.
//! - [`encode_value`] writes any [`Value`] as a server would, for simulated servers and
//!   round-trip tests.
//!
//! Why decoding is not redis-protocol's decoder behind a pre-scan: to know whether a frame is
//! complete, check depth and declared lengths without recursion, the pre-scan must already read
//! every header and skip every payload, so building the value in a second pass of the same
//! walker is cheaper than handing the frame to a second, recursive parser (see the benchmarks).
//! And redis-protocol's RESP3 frames keep maps and sets in hash containers, which loses the
//! order [`Value::Map`] promises, merges duplicate keys and rejects aggregate keys. redis-protocol
//! remains the reference: it encodes scalars in [`encode_value`], and the tests and fuzz targets
//! check [`decode`] against its decoders and [`encode_command`] against its encoder.

mod decode;
mod encode;
mod error;
#[cfg(any(test, feature = "_fuzz"))]
#[doc(hidden)]
pub mod fuzz;
mod protocol;
mod scan;
mod value;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use decode::{decode, decode_slice};
pub use encode::{encode_command, encode_value};
pub use error::{DecodeError, EncodeError, Limits, MAX_DEPTH_CEILING, MAX_NUMERIC_LINE, Syntax};
pub use protocol::{Protocol, ProtocolError, parse_protocol};
pub use value::Value;
