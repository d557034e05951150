//! The value encoder slotcache used before it wrote its own: redis-protocol's frames, with the
//! aggregate headers written here (redis-protocol keeps maps and sets in hash containers, which
//! would lose their order). An independent reference for the property tests (`proptests.rs`)
//! and the benchmark (`benches/resp_encode.rs` includes this file). Test code: it expects the
//! values `encode_value` accepts and says only whether redis-protocol refused a frame.

use bytes::BytesMut;
use redis_protocol::resp2::types::BorrowedFrame as Frame2;
use redis_protocol::resp3::types::{BorrowedFrame as Frame3, VerbatimStringFormat};

use super::{Protocol, Value};

/// Appends `value` as redis-protocol encodes it; `Err` for a value it cannot encode.
pub(crate) fn encode(buf: &mut BytesMut, value: &Value, protocol: Protocol) -> Result<(), ()> {
    match protocol {
        Protocol::Resp2 => resp2(buf, value),
        Protocol::Resp3 => resp3(buf, value),
    }
}

fn header(buf: &mut BytesMut, prefix: char, n: usize) {
    buf.extend_from_slice(format!("{prefix}{n}\r\n").as_bytes());
}

fn resp2(buf: &mut BytesMut, value: &Value) -> Result<(), ()> {
    let frame = match value {
        Value::Nil => Frame2::Null,
        Value::Simple(s) => Frame2::SimpleString(s),
        Value::Error(e) => Frame2::Error(core::str::from_utf8(e).map_err(drop)?),
        Value::Int(n) => Frame2::Integer(*n),
        Value::Bulk(b) => Frame2::BulkString(b),
        Value::Array(items) => {
            header(buf, '*', items.len());
            return items.iter().try_for_each(|item| resp2(buf, item));
        }
        _ => return Err(()),
    };
    let end = redis_protocol::resp2::encode::extend_encode_borrowed(buf, &frame, false).map_err(drop)?;
    // extend_encode* grows the buffer by an estimate that can over-count digits: cut at `end`.
    buf.truncate(end);
    Ok(())
}

fn resp3(buf: &mut BytesMut, value: &Value) -> Result<(), ()> {
    let frame = match value {
        Value::Nil => Frame3::Null,
        Value::Simple(s) => Frame3::SimpleString { data: s, attributes: None },
        Value::Error(e) => match core::str::from_utf8(e) {
            Ok(text) if !e.iter().any(|&b| b == b'\r' || b == b'\n') => {
                Frame3::SimpleError { data: text, attributes: None }
            }
            _ => Frame3::BlobError { data: e, attributes: None },
        },
        Value::Int(n) => Frame3::Number { data: *n, attributes: None },
        Value::Bulk(b) => Frame3::BlobString { data: b, attributes: None },
        Value::Double(d) => Frame3::Double { data: *d, attributes: None },
        Value::Bool(b) => Frame3::Boolean { data: *b, attributes: None },
        Value::BigNumber(n) => Frame3::BigNumber { data: n, attributes: None },
        Value::Verbatim { format, text } => {
            let format = match format.as_ref() {
                b"txt" => VerbatimStringFormat::Text,
                b"mkd" => VerbatimStringFormat::Markdown,
                _ => return Err(()),
            };
            Frame3::VerbatimString { data: text, format, attributes: None }
        }
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            let prefix = match value {
                Value::Set(_) => '~',
                Value::Push(_) => '>',
                _ => '*',
            };
            header(buf, prefix, items.len());
            return items.iter().try_for_each(|item| resp3(buf, item));
        }
        Value::Map(pairs) => {
            header(buf, '%', pairs.len());
            return pairs.iter().try_for_each(|(k, v)| {
                resp3(buf, k)?;
                resp3(buf, v)
            });
        }
        #[allow(unreachable_patterns, reason = "Value is non-exhaustive where the bench includes this file")]
        _ => return Err(()),
    };
    let end =
        redis_protocol::resp3::encode::complete::extend_encode_borrowed(buf, &frame, false).map_err(drop)?;
    buf.truncate(end);
    Ok(())
}
