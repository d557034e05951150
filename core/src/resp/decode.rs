//! Incremental, bounded, zero-copy reply decoding.

use bytes::{Bytes, BytesMut};

use super::Protocol;
use super::error::{DecodeError, Limits, Syntax};
use super::scan::{Agg, Leaf, Sink, Skip, Span, walk};
use super::value::Value;

/// Decodes the first frame in `buf`.
///
/// - `Ok(Some(value))`: exactly that frame's bytes have been split off the front of `buf`;
///   the strings in `value` are [`Bytes`] views of them, not copies.
/// - `Ok(None)`: the frame is not complete yet; `buf` is untouched. Read more and call again.
/// - `Err(e)`: the stream is invalid or breaks `limits`; `buf` is untouched. Limits are checked
///   as soon as the header that breaks them arrives, not once the payload has been buffered.
///
/// Never panics, whatever the bytes. RESP3 attributes (`|`) are skipped and the frame they
/// annotate is returned; push frames become [`Value::Push`]; the RESP2 nulls `$-1` and `*-1`
/// become [`Value::Nil`] (they are accepted on RESP3 connections too); blob errors (`!`) and
/// simple errors (`-`) become [`Value::Error`]. On a RESP2 connection RESP3-only type bytes are
/// [`DecodeError::InvalidPrefix`].
///
/// Each call walks the buffered part of the frame again, so a huge aggregate trickling in through
/// many small reads costs time quadratic in its number of elements; bulk payloads are skipped
/// by length and cost nothing to re-walk.
///
/// ```
/// use bytes::BytesMut;
/// use slotcache_core::resp::{Limits, Protocol, Value, decode};
///
/// let mut buf = BytesMut::from(&b"$5\r\nhel"[..]);
/// assert_eq!(decode(&mut buf, Protocol::Resp2, &Limits::default()), Ok(None));
/// buf.extend_from_slice(b"lo\r\n:1\r\n");
/// let value = decode(&mut buf, Protocol::Resp2, &Limits::default()).unwrap();
/// assert_eq!(value, Some(Value::Bulk("hello".into())));
/// assert_eq!(&buf[..], b":1\r\n");
/// ```
pub fn decode(buf: &mut BytesMut, protocol: Protocol, limits: &Limits) -> Result<Option<Value>, DecodeError> {
    let Some(len) = walk(buf, protocol, limits, &mut Skip)? else {
        return Ok(None);
    };
    if len > buf.len() {
        return Err(Syntax::Inconsistent.into());
    }
    let frame = buf.split_to(len).freeze();
    build(&frame, protocol, limits).map(Some)
}

/// Decodes the first frame in `buf`, returning it and the number of bytes it took.
///
/// Same contract as [`decode`], but for a borrowed slice: the frame's bytes are copied once
/// into a [`Bytes`] that the value's strings share.
pub fn decode_slice(
    buf: &[u8],
    protocol: Protocol,
    limits: &Limits,
) -> Result<Option<(Value, usize)>, DecodeError> {
    let Some(len) = walk(buf, protocol, limits, &mut Skip)? else {
        return Ok(None);
    };
    let frame = Bytes::copy_from_slice(buf.get(..len).ok_or(Syntax::Inconsistent)?);
    Ok(Some((build(&frame, protocol, limits)?, len)))
}

/// Builds the value of `frame`, which the pre-scan found to be exactly one complete frame.
fn build(frame: &Bytes, protocol: Protocol, limits: &Limits) -> Result<Value, DecodeError> {
    let mut builder = Builder { frame, stack: Vec::new(), done: None, bad_span: false };
    let len = walk(frame, protocol, limits, &mut builder)?;
    match (len, builder.done) {
        (Some(len), Some(value)) if len == frame.len() && !builder.bad_span => Ok(value),
        _ => Err(Syntax::Inconsistent.into()),
    }
}

/// An aggregate under construction.
enum Partial {
    Seq(Agg, Vec<Value>),
    Map(Vec<(Value, Value)>, Option<Value>),
    Attribute,
}

/// The sink that turns walker events into a [`Value`].
struct Builder<'a> {
    frame: &'a Bytes,
    stack: Vec<Partial>,
    done: Option<Value>,
    bad_span: bool,
}

impl Builder<'_> {
    fn bytes(&mut self, (start, end): Span) -> Bytes {
        if start <= end && end <= self.frame.len() {
            self.frame.slice(start..end)
        } else {
            self.bad_span = true;
            Bytes::new()
        }
    }

    fn push(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.done = Some(value),
            Some(Partial::Seq(_, items)) => items.push(value),
            Some(Partial::Map(pairs, key)) => match key.take() {
                None => *key = Some(value),
                Some(k) => pairs.push((k, value)),
            },
            Some(Partial::Attribute) => {}
        }
    }
}

impl Sink for Builder<'_> {
    fn leaf(&mut self, leaf: Leaf) {
        let value = match leaf {
            Leaf::Nil => Value::Nil,
            Leaf::Simple(s) => Value::Simple(self.bytes(s)),
            Leaf::Error(s) => Value::Error(self.bytes(s)),
            Leaf::Int(n) => Value::Int(n),
            Leaf::Bulk(s) => Value::Bulk(self.bytes(s)),
            Leaf::Double(d) => Value::Double(d),
            Leaf::Bool(b) => Value::Bool(b),
            Leaf::BigNumber(s) => Value::BigNumber(self.bytes(s)),
            Leaf::Verbatim { format, text } => {
                Value::Verbatim { format: self.bytes(format), text: self.bytes(text) }
            }
        };
        self.push(value);
    }

    fn open(&mut self, agg: Agg, entries: usize) {
        // The frame is complete, so `entries` is backed by at least 3 bytes each.
        self.stack.push(match agg {
            Agg::Map => Partial::Map(Vec::with_capacity(entries), None),
            Agg::Attribute => Partial::Attribute,
            Agg::Array | Agg::Set | Agg::Push => Partial::Seq(agg, Vec::with_capacity(entries)),
        });
    }

    fn close(&mut self) {
        let value = match self.stack.pop() {
            Some(Partial::Seq(Agg::Set, items)) => Value::Set(items),
            Some(Partial::Seq(Agg::Push, items)) => Value::Push(items),
            Some(Partial::Seq(_, items)) => Value::Array(items),
            Some(Partial::Map(pairs, _)) => Value::Map(pairs),
            Some(Partial::Attribute) | None => return,
        };
        self.push(value);
    }
}
