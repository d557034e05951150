//! Fuzz target bodies for the RESP layer (re-exported by `crate::fuzzing`; also run by the unit
//! tests). Each asserts invariants and panics when one breaks, which is what a fuzzer reports.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::RangeFrame as Range2;
use redis_protocol::resp3::types::{RangeFrame as Range3, VerbatimStringFormat};

use super::{DecodeError, Limits, Protocol, Syntax, Value, decode, decode_slice, encode_value};

/// Limits small enough for a fuzzer to hit every one of them.
const TIGHT: Limits = Limits { max_depth: 3, max_bulk_len: 16, max_array_len: 8 };

/// Both protocols under default and tight limits.
fn configurations() -> impl Iterator<Item = (Protocol, Limits)> {
    [Protocol::Resp2, Protocol::Resp3].into_iter().flat_map(|p| [(p, Limits::default()), (p, TIGHT)])
}

/// `resp_decode`: decoding never panics; `decode` and `decode_slice` agree; a frame consumes
/// at most the input; a decoded value re-encodes (where the protocol can carry it) to bytes
/// that decode to the same value; and redis-protocol's decoder agrees with ours on every frame
/// we accept.
pub fn resp_decode(data: &[u8]) {
    for (protocol, limits) in configurations() {
        let sliced = decode_slice(data, protocol, &limits);
        let mut buf = BytesMut::from(data);
        let zero_copy = decode(&mut buf, protocol, &limits);
        match (sliced, zero_copy) {
            (Ok(Some((value, used))), Ok(Some(again))) => {
                assert!(used > 0 && used <= data.len(), "consumed {used} of {}", data.len());
                assert_eq!(buf.len(), data.len() - used, "decode consumed a different length");
                assert!(same(&value, &again), "decode and decode_slice disagree");
                assert_round_trip(&value, protocol, &limits);
                assert_redis_protocol_agrees(data, &value, used, protocol);
            }
            (Ok(None), Ok(None)) => assert_eq!(buf.len(), data.len(), "Ok(None) consumed bytes"),
            (Err(e), Err(f)) => {
                assert_eq!(e, f, "decode and decode_slice fail differently");
                assert_ne!(e, DecodeError::from(Syntax::Inconsistent), "walker disagrees with itself");
                assert_eq!(buf.len(), data.len(), "an error consumed bytes");
            }
            (a, b) => panic!("decode_slice gave {a:?}, decode gave {b:?}"),
        }
    }
}

/// `resp_chunked`: the first byte seeds chunk sizes; feeding the rest in those chunks gives
/// the same values, the same final error or the same leftover bytes as feeding it whole.
pub fn resp_chunked(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else { return };
    for (protocol, limits) in configurations() {
        let whole = feed(stream, core::iter::repeat(stream.len().max(1)), protocol, &limits);
        let chunked = feed(stream, chunk_sizes(seed), protocol, &limits);
        assert_eq!(whole.values.len(), chunked.values.len(), "different number of frames");
        for (a, b) in whole.values.iter().zip(&chunked.values) {
            assert!(same(a, b), "chunking changed a frame: {a:?} vs {b:?}");
        }
        assert_eq!(whole.end, chunked.end, "chunking changed how the stream ends");
    }
}

/// What feeding a stream produced.
struct Outcome {
    values: Vec<Value>,
    end: Result<Bytes, DecodeError>,
}

/// Feeds `stream` in chunks of the given sizes, decoding after each chunk.
fn feed(stream: &[u8], sizes: impl Iterator<Item = usize>, protocol: Protocol, limits: &Limits) -> Outcome {
    let mut buf = BytesMut::new();
    let mut values = Vec::new();
    let mut rest = stream;
    for size in sizes {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        rest = tail;
        buf.extend_from_slice(chunk);
        loop {
            match decode(&mut buf, protocol, limits) {
                Ok(Some(value)) => values.push(value),
                Ok(None) => break,
                Err(e) => return Outcome { values, end: Err(e) },
            }
        }
    }
    Outcome { values, end: Ok(buf.freeze()) }
}

/// Chunk sizes drawn from `seed`: all ones when `seed % 32 == 0`, else 1..=`seed % 32 + 1`.
fn chunk_sizes(seed: u8) -> impl Iterator<Item = usize> {
    let span = u64::from(seed % 32) + 1;
    let mut rng = crate::rng::Rng::new(u64::from(seed));
    core::iter::from_fn(move || {
        let size = 1 + rng.next_u64() % span;
        Some(usize::try_from(size).unwrap_or(1))
    })
}

fn assert_round_trip(value: &Value, protocol: Protocol, limits: &Limits) {
    let mut out = BytesMut::new();
    if encode_value(&mut out, value, protocol).is_err() {
        assert!(out.is_empty(), "a failed encode left bytes behind");
        return;
    }
    match decode_slice(&out, protocol, limits) {
        Ok(Some((back, used))) => {
            assert_eq!(used, out.len(), "re-encoded frame decoded short: {out:?}");
            assert!(same(value, &back), "round trip changed {value:?} into {back:?}");
        }
        other => panic!("re-encoding {value:?} as {out:?} decoded to {other:?}"),
    }
}

/// redis-protocol is the reference: on a frame we accept it must find the same boundary and,
/// where its frame model can say it (no maps or sets, whose order it drops), the same value.
fn assert_redis_protocol_agrees(data: &[u8], value: &Value, used: usize, protocol: Protocol) {
    let bytes = Bytes::copy_from_slice(data);
    match protocol {
        Protocol::Resp2 => match redis_protocol::resp2::decode::decode_range(data) {
            Ok(Some((frame, amt))) => {
                assert_eq!(amt, used, "redis-protocol found another RESP2 frame boundary");
                let theirs = from_range2(&bytes, &frame);
                assert!(same(value, &theirs), "RESP2: we say {value:?}, redis-protocol {theirs:?}");
            }
            other => panic!("redis-protocol rejects a RESP2 frame we accept: {data:?}: {other:?}"),
        },
        Protocol::Resp3 => {
            // redis-protocol rejects some valid RESP3 (`$-1`, aggregate map keys, verbatim
            // formats other than txt/mkd), so only frames it accepts are compared.
            if let Ok(Some((frame, amt))) = redis_protocol::resp3::decode::complete::decode_range(data) {
                assert_eq!(amt, used, "redis-protocol found another RESP3 frame boundary");
                if let Some(theirs) = from_range3(&bytes, &frame) {
                    assert!(same(value, &theirs), "RESP3: we say {value:?}, redis-protocol {theirs:?}");
                }
            }
        }
    }
}

fn slice(buf: &Bytes, (start, end): (usize, usize)) -> Bytes {
    buf.get(start..end).map_or_else(Bytes::new, |s| buf.slice_ref(s))
}

fn from_range2(buf: &Bytes, frame: &Range2) -> Value {
    match frame {
        Range2::SimpleString(s) => Value::Simple(slice(buf, *s)),
        Range2::Error(s) => Value::Error(slice(buf, *s)),
        Range2::Integer(n) => Value::Int(*n),
        Range2::BulkString(s) => Value::Bulk(slice(buf, *s)),
        Range2::Array(items) => Value::Array(items.iter().map(|f| from_range2(buf, f)).collect()),
        Range2::Null => Value::Nil,
    }
}

/// `None` for frames whose order redis-protocol loses (maps, sets) or that we never produce.
fn from_range3(buf: &Bytes, frame: &Range3) -> Option<Value> {
    let seq = |items: &[Range3]| items.iter().map(|f| from_range3(buf, f)).collect::<Option<Vec<_>>>();
    Some(match frame {
        Range3::BlobString { data, .. } => Value::Bulk(slice(buf, *data)),
        Range3::BlobError { data, .. } | Range3::SimpleError { data, .. } => Value::Error(slice(buf, *data)),
        Range3::SimpleString { data, .. } => Value::Simple(slice(buf, *data)),
        Range3::Boolean { data, .. } => Value::Bool(*data),
        Range3::Null => Value::Nil,
        Range3::Number { data, .. } => Value::Int(*data),
        Range3::Double { data, .. } => Value::Double(*data),
        Range3::BigNumber { data, .. } => Value::BigNumber(slice(buf, *data)),
        Range3::VerbatimString { data, format, .. } => Value::Verbatim {
            format: Bytes::from_static(match format {
                VerbatimStringFormat::Text => b"txt",
                VerbatimStringFormat::Markdown => b"mkd",
            }),
            text: slice(buf, *data),
        },
        Range3::Array { data, .. } => Value::Array(seq(data)?),
        Range3::Push { data, .. } => Value::Push(seq(data)?),
        _ => return None,
    })
}

/// Structural equality in which a NaN double equals a NaN double.
pub fn same(a: &Value, b: &Value) -> bool {
    let all = |x: &[Value], y: &[Value]| x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y));
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::Push(x), Value::Push(y)) => all(x, y),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, v), (l, w))| same(k, l) && same(v, w))
        }
        _ => a == b,
    }
}
