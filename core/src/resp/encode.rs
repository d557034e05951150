//! Encoding: commands (the hot path) and whole values (replies, for test servers and the
//! in-memory node). Both are written here; the property tests check them byte for byte
//! against redis-protocol, an independent implementation.

use bytes::BytesMut;

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
/// Maps and sets keep their order. A RESP3 [`Value::Error`] is written as a simple error (`-`) when it is one UTF-8
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
    match value {
        Value::Nil => buf.extend_from_slice(b"$-1\r\n"),
        Value::Simple(s) => put_line(buf, b'+', one_line(s, "simple string")?),
        Value::Error(e) => {
            let text = one_line(e, "error")?;
            core::str::from_utf8(text).map_err(|_| EncodeError::ErrorNotUtf8)?;
            put_line(buf, b'-', text);
        }
        Value::Int(n) => put_number(buf, b':', n.is_negative(), n.unsigned_abs()),
        Value::Bulk(b) => put_blob(buf, b'$', b),
        Value::Array(items) => {
            put_header(buf, b'*', items.len());
            return items.iter().try_for_each(|item| resp2(buf, item));
        }
        other => return Err(EncodeError::NotInResp2 { kind: kind(other) }),
    }
    Ok(())
}

fn resp3(buf: &mut BytesMut, value: &Value) -> Result<(), EncodeError> {
    match value {
        Value::Nil => buf.extend_from_slice(b"_\r\n"),
        Value::Simple(s) => put_line(buf, b'+', one_line(s, "simple string")?),
        Value::Error(e) if core::str::from_utf8(e).is_ok() && !has_line_break(e) => put_line(buf, b'-', e),
        Value::Error(e) => put_blob(buf, b'!', e),
        Value::Int(n) => put_number(buf, b':', n.is_negative(), n.unsigned_abs()),
        Value::Bulk(b) => put_blob(buf, b'$', b),
        Value::Double(d) => put_line(buf, b',', double(*d).as_bytes()),
        Value::Bool(b) => buf.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Value::BigNumber(n) if is_big_number(n) => put_line(buf, b'(', n),
        Value::BigNumber(_) => return Err(EncodeError::BadBigNumber),
        Value::Verbatim { format, text } => {
            if !matches!(format.as_ref(), b"txt" | b"mkd") {
                return Err(EncodeError::VerbatimFormat);
            }
            // `=<len>\r\n<fmt>:<text>\r\n`, the length counting the format and its colon.
            put_header(buf, b'=', format.len() + 1 + text.len());
            buf.extend_from_slice(format);
            buf.extend_from_slice(b":");
            buf.extend_from_slice(text);
            buf.extend_from_slice(b"\r\n");
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
    }
    Ok(())
}

/// A RESP3 double's text: `inf`, `-inf`, `nan`, or Rust's shortest round-trip decimal
/// (`1.5`, `-0`, `100`, `0.000001`; never an exponent), which a server's `strtod` reads back
/// exactly.
fn double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_owned()
    } else if d.is_infinite() {
        if d.is_sign_negative() { "-inf" } else { "inf" }.to_owned()
    } else {
        d.to_string()
    }
}

/// Writes `<prefix><text>\r\n` (`text` has no line break).
fn put_line(buf: &mut BytesMut, prefix: u8, text: &[u8]) {
    buf.reserve(text.len() + 3);
    buf.extend_from_slice(&[prefix]);
    buf.extend_from_slice(text);
    buf.extend_from_slice(b"\r\n");
}

/// Writes `<prefix><len>\r\n<data>\r\n` (a bulk string or a blob error).
fn put_blob(buf: &mut BytesMut, prefix: u8, data: &[u8]) {
    buf.reserve(header_len(data.len()) + data.len() + 2);
    put_header(buf, prefix, data.len());
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\r\n");
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
    put_number(buf, prefix, false, n as u64);
}

/// Writes `<prefix>[-]<magnitude>\r\n` with a single copy.
fn put_number(buf: &mut BytesMut, prefix: u8, negative: bool, magnitude: u64) {
    // u64::MAX has 20 digits: prefix + sign + 20 digits + CRLF fits in 24 bytes.
    let mut tmp = [0u8; 24];
    tmp[22] = b'\r';
    tmp[23] = b'\n';
    let mut i = 22;
    let mut rest = magnitude;
    loop {
        i -= 1;
        tmp[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        tmp[i] = b'-';
    }
    i -= 1;
    tmp[i] = prefix;
    buf.extend_from_slice(&tmp[i..]);
}
