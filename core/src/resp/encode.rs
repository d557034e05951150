//! Encoding: commands (hand-written, the hot path) and whole values (through redis-protocol).

use bytes::BytesMut;
use redis_protocol::resp2::types::BorrowedFrame as Frame2;
use redis_protocol::resp3::types::{BorrowedFrame as Frame3, VerbatimStringFormat};

use super::Protocol;
use super::error::EncodeError;
use super::scan::is_big_number;
use super::value::Value;

/// Appends a command to `buf` in the request format: a RESP array of bulk strings, one per
/// argument (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n` for `["GET", "k"]`).
///
/// Reserves the exact size once, then writes; the bytes are identical to redis-protocol's
/// encoding of the same array.
///
/// ```
/// use bytes::BytesMut;
/// use slotcache_core::resp::encode_command;
///
/// let mut buf = BytesMut::new();
/// encode_command(&mut buf, &["GET", "k"]);
/// assert_eq!(&buf[..], b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
/// ```
pub fn encode_command<A: AsRef<[u8]>>(buf: &mut BytesMut, args: &[A]) {
    let size = args.iter().fold(header_len(args.len()), |size, arg| {
        let len = arg.as_ref().len();
        size.saturating_add(header_len(len)).saturating_add(len).saturating_add(2)
    });
    buf.reserve(size);
    put_header(buf, b'*', args.len());
    for arg in args {
        let arg = arg.as_ref();
        put_header(buf, b'$', arg.len());
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

/// Appends `value` to `buf` as `protocol` writes it, the way a server would send it.
///
/// Scalars are written by redis-protocol's encoders; aggregate headers (`*3\r\n`, `%2\r\n`) are
/// written here, because redis-protocol keeps maps and sets in hash containers and would lose
/// their order. A RESP3 [`Value::Error`] is written as a simple error (`-`) when it is one UTF-8
/// line, otherwise as a blob error (`!`). [`Value::Nil`] is `$-1` in RESP2 and `_` in RESP3.
///
/// RESP2 has no maps, sets, doubles, booleans, big numbers, verbatim strings or pushes: those
/// are [`EncodeError::NotInResp2`] rather than silently flattened, so a test server must build
/// the RESP2 shape it means to send. On error `buf` is left as it was.
///
/// Recursive: meant for values a program built or [`decode`](super::decode) returned.
pub fn encode_value(buf: &mut BytesMut, value: &Value, protocol: Protocol) -> Result<(), EncodeError> {
    let start = buf.len();
    let result = match protocol {
        Protocol::Resp2 => resp2(buf, value),
        Protocol::Resp3 => resp3(buf, value),
    };
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn resp2(buf: &mut BytesMut, value: &Value) -> Result<(), EncodeError> {
    let frame = match value {
        Value::Nil => Frame2::Null,
        Value::Simple(s) => Frame2::SimpleString(one_line(s, "simple string")?),
        Value::Error(e) => {
            let text = one_line(e, "error")?;
            Frame2::Error(core::str::from_utf8(text).map_err(|_| EncodeError::ErrorNotUtf8)?)
        }
        Value::Int(n) => Frame2::Integer(*n),
        Value::Bulk(b) => Frame2::BulkString(b),
        Value::Array(items) => {
            put_header(buf, b'*', items.len());
            return items.iter().try_for_each(|item| resp2(buf, item));
        }
        other => return Err(EncodeError::NotInResp2 { kind: kind(other) }),
    };
    let end = redis_protocol::resp2::encode::extend_encode_borrowed(buf, &frame, false);
    trim_to(buf, end)
}

fn resp3(buf: &mut BytesMut, value: &Value) -> Result<(), EncodeError> {
    let frame = match value {
        Value::Nil => Frame3::Null,
        Value::Simple(s) => Frame3::SimpleString { data: one_line(s, "simple string")?, attributes: None },
        Value::Error(e) => match core::str::from_utf8(e) {
            Ok(text) if !has_line_break(e) => Frame3::SimpleError { data: text, attributes: None },
            _ => Frame3::BlobError { data: e, attributes: None },
        },
        Value::Int(n) => Frame3::Number { data: *n, attributes: None },
        Value::Bulk(b) => Frame3::BlobString { data: b, attributes: None },
        Value::Double(d) => Frame3::Double { data: *d, attributes: None },
        Value::Bool(b) => Frame3::Boolean { data: *b, attributes: None },
        Value::BigNumber(n) if is_big_number(n) => Frame3::BigNumber { data: n, attributes: None },
        Value::BigNumber(_) => return Err(EncodeError::BadBigNumber),
        Value::Verbatim { format, text } => {
            let format = match format.as_ref() {
                b"txt" => VerbatimStringFormat::Text,
                b"mkd" => VerbatimStringFormat::Markdown,
                _ => return Err(EncodeError::VerbatimFormat),
            };
            Frame3::VerbatimString { data: text, format, attributes: None }
        }
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            let prefix = match value {
                Value::Set(_) => b'~',
                Value::Push(_) => b'>',
                _ => b'*',
            };
            put_header(buf, prefix, items.len());
            return items.iter().try_for_each(|item| resp3(buf, item));
        }
        Value::Map(pairs) => {
            put_header(buf, b'%', pairs.len());
            return pairs.iter().try_for_each(|(k, v)| {
                resp3(buf, k)?;
                resp3(buf, v)
            });
        }
    };
    let end = redis_protocol::resp3::encode::complete::extend_encode_borrowed(buf, &frame, false);
    trim_to(buf, end)
}

/// Cuts `buf` at the end offset redis-protocol's `extend_encode*` returns. It extends the
/// buffer by its `encode_len` estimate first, which counts digits with a floating-point
/// `log10` and so over-counts for integers such as 999999999999999 (`10^k - 1`, `k >= 15`):
/// without this, a NUL byte would follow the frame.
fn trim_to(
    buf: &mut BytesMut,
    end: Result<usize, redis_protocol::error::RedisProtocolError>,
) -> Result<(), EncodeError> {
    match end {
        Ok(end) if end <= buf.len() => {
            buf.truncate(end);
            Ok(())
        }
        _ => Err(EncodeError::Encoder),
    }
}

/// The name of a value's kind, for errors.
const fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Simple(_) => "simple string",
        Value::Error(_) => "error",
        Value::Int(_) => "integer",
        Value::Bulk(_) => "bulk string",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Set(_) => "set",
        Value::Double(_) => "double",
        Value::Bool(_) => "boolean",
        Value::BigNumber(_) => "big number",
        Value::Verbatim { .. } => "verbatim string",
        Value::Push(_) => "push",
    }
}

fn has_line_break(text: &[u8]) -> bool {
    text.iter().any(|&b| b == b'\r' || b == b'\n')
}

fn one_line<'a>(text: &'a [u8], kind: &'static str) -> Result<&'a [u8], EncodeError> {
    if has_line_break(text) { Err(EncodeError::LineBreak { kind }) } else { Ok(text) }
}

/// Bytes taken by `<prefix><n>\r\n`.
const fn header_len(n: usize) -> usize {
    let mut digits = 1;
    let mut rest = n / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    digits + 3
}

/// Writes `<prefix><n>\r\n` with a single copy.
fn put_header(buf: &mut BytesMut, prefix: u8, n: usize) {
    // u64::MAX has 20 digits: prefix + 20 digits + CRLF fits in 23 bytes.
    let mut tmp = [0u8; 24];
    tmp[22] = b'\r';
    tmp[23] = b'\n';
    let mut i = 22;
    let mut rest = n as u64;
    loop {
        i -= 1;
        tmp[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    i -= 1;
    tmp[i] = prefix;
    buf.extend_from_slice(&tmp[i..]);
}
