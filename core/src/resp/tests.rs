//! Unit tests of the RESP layer: every frame type in both protocols, nulls, errors, attributes,
//! pushes, every limit, deep nesting and garbage.

use bytes::{Bytes, BytesMut};

use super::fuzz::{resp_chunked, resp_decode, same};
use super::*;

const R2: Protocol = Protocol::Resp2;
const R3: Protocol = Protocol::Resp3;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn bulk(s: &str) -> Value {
    Value::Bulk(b(s))
}

/// Decodes `input` as one whole frame with default limits, through both entry points.
fn one(input: &[u8], protocol: Protocol) -> Result<Value, DecodeError> {
    with_limits(input, protocol, &Limits::default())
}

fn with_limits(input: &[u8], protocol: Protocol, limits: &Limits) -> Result<Value, DecodeError> {
    let mut buf = BytesMut::from(input);
    let zero_copy = decode(&mut buf, protocol, limits);
    let sliced = decode_slice(input, protocol, limits);
    match (zero_copy, sliced) {
        (Ok(Some(v)), Ok(Some((w, used)))) => {
            assert!(buf.is_empty(), "{input:?} left {buf:?}");
            assert_eq!(used, input.len());
            assert!(same(&v, &w), "{v:?} vs {w:?}");
            Ok(v)
        }
        (Err(e), Err(f)) => {
            assert_eq!(e, f);
            assert_eq!(&buf[..], input, "an error must leave the buffer untouched");
            Err(e)
        }
        (a, b) => panic!("{input:?}: decode {a:?}, decode_slice {b:?}"),
    }
}

fn malformed(reason: Syntax) -> Result<Value, DecodeError> {
    Err(DecodeError::Malformed { reason })
}

#[test]
fn resp2_scalars() {
    for p in [R2, R3] {
        assert_eq!(one(b"+OK\r\n", p), Ok(Value::Simple(b("OK"))));
        assert_eq!(one(b"+\r\n", p), Ok(Value::Simple(b(""))));
        assert_eq!(one(b"-ERR bad\r\n", p), Ok(Value::Error(b("ERR bad"))));
        assert_eq!(one(b":42\r\n", p), Ok(Value::Int(42)));
        assert_eq!(one(b":-9223372036854775808\r\n", p), Ok(Value::Int(i64::MIN)));
        assert_eq!(one(b":+7\r\n", p), Ok(Value::Int(7)));
        assert_eq!(one(b"$5\r\nhello\r\n", p), Ok(bulk("hello")));
        assert_eq!(one(b"$0\r\n\r\n", p), Ok(bulk("")));
        assert_eq!(one(b"$4\r\na\r\nb\r\n", p), Ok(bulk("a\r\nb")), "binary-safe payload");
        assert_eq!(one(b"+a\rb\r\n", p), Ok(Value::Simple(b("a\rb"))), "lone CR inside a line");
    }
}

#[test]
fn resp2_aggregates() {
    for p in [R2, R3] {
        assert_eq!(one(b"*0\r\n", p), Ok(Value::Array(vec![])));
        assert_eq!(
            one(b"*3\r\n$1\r\na\r\n:1\r\n*1\r\n+x\r\n", p),
            Ok(Value::Array(vec![bulk("a"), Value::Int(1), Value::Array(vec![Value::Simple(b("x"))])]))
        );
        assert_eq!(
            one(b"*2\r\n*0\r\n*0\r\n", p),
            Ok(Value::Array(vec![Value::Array(vec![]), Value::Array(vec![])]))
        );
    }
}

#[test]
fn nil_forms() {
    for p in [R2, R3] {
        assert_eq!(one(b"$-1\r\n", p), Ok(Value::Nil));
        assert_eq!(one(b"*-1\r\n", p), Ok(Value::Nil));
        assert_eq!(one(b"*2\r\n$-1\r\n*-1\r\n", p), Ok(Value::Array(vec![Value::Nil, Value::Nil])));
    }
    assert_eq!(one(b"_\r\n", R3), Ok(Value::Nil));
    assert_eq!(one(b"_\r\n", R2), Err(DecodeError::InvalidPrefix { byte: b'_' }));
    assert_eq!(one(b"_x\r\n", R3), malformed(Syntax::BadNull));
    assert_eq!(one(b"!-1\r\n", R3), malformed(Syntax::BadLength));
    assert_eq!(one(b"%-1\r\n", R3), malformed(Syntax::BadLength));
    assert_eq!(one(b"$-2\r\n", R2), malformed(Syntax::BadLength));
}

#[test]
fn resp3_scalars() {
    assert_eq!(one(b",1.5\r\n", R3), Ok(Value::Double(1.5)));
    assert_eq!(one(b",-2e3\r\n", R3), Ok(Value::Double(-2000.0)));
    assert_eq!(one(b",inf\r\n", R3), Ok(Value::Double(f64::INFINITY)));
    assert_eq!(one(b",-inf\r\n", R3), Ok(Value::Double(f64::NEG_INFINITY)));
    assert!(matches!(one(b",nan\r\n", R3), Ok(Value::Double(d)) if d.is_nan()));
    assert_eq!(one(b",1.2.3\r\n", R3), malformed(Syntax::BadDouble));
    assert_eq!(one(b"#t\r\n", R3), Ok(Value::Bool(true)));
    assert_eq!(one(b"#f\r\n", R3), Ok(Value::Bool(false)));
    assert_eq!(one(b"#x\r\n", R3), malformed(Syntax::BadBoolean));
    let big = b"(-3492890328409238509324850943850943825024385\r\n";
    assert_eq!(one(big, R3), Ok(Value::BigNumber(Bytes::copy_from_slice(&big[1..big.len() - 2]))));
    assert_eq!(one(b"(12\r\n", R3), Ok(Value::BigNumber(b("12"))));
    assert_eq!(one(b"(12a\r\n", R3), malformed(Syntax::BadBigNumber));
    assert_eq!(one(b"(\r\n", R3), malformed(Syntax::BadBigNumber));
    assert_eq!(one(b"!9\r\nERR oops!\r\n", R3), Ok(Value::Error(b("ERR oops!"))));
    assert_eq!(
        one(b"=15\r\ntxt:Some string\r\n", R3),
        Ok(Value::Verbatim { format: b("txt"), text: b("Some string") })
    );
    assert_eq!(one(b"=4\r\nmkd:\r\n", R3), Ok(Value::Verbatim { format: b("mkd"), text: b("") }));
    assert_eq!(one(b"=3\r\ntxt\r\n", R3), malformed(Syntax::BadVerbatim));
    assert_eq!(one(b"=5\r\ntxt-x\r\n", R3), malformed(Syntax::BadVerbatim));
    for (input, byte) in
        [(&b",1\r\n"[..], b','), (b"#t\r\n", b'#'), (b"(1\r\n", b'('), (b"!1\r\nx\r\n", b'!')]
    {
        assert_eq!(one(input, R2), Err(DecodeError::InvalidPrefix { byte }));
    }
}

#[test]
fn resp3_aggregates() {
    let map = one(b"%2\r\n+b\r\n:2\r\n+a\r\n:1\r\n", R3).unwrap();
    assert_eq!(
        map,
        Value::Map(vec![(Value::Simple(b("b")), Value::Int(2)), (Value::Simple(b("a")), Value::Int(1))]),
        "maps keep the order received"
    );
    assert_eq!(map.field("a"), Some(&Value::Int(1)));
    assert_eq!(
        one(b"%2\r\n+k\r\n:1\r\n+k\r\n:2\r\n", R3).unwrap(),
        Value::Map(vec![(Value::Simple(b("k")), Value::Int(1)), (Value::Simple(b("k")), Value::Int(2))]),
        "duplicate keys are kept"
    );
    assert_eq!(
        one(b"%1\r\n*1\r\n:1\r\n_\r\n", R3),
        Ok(Value::Map(vec![(Value::Array(vec![Value::Int(1)]), Value::Nil)])),
        "aggregate keys are allowed"
    );
    assert_eq!(one(b"%0\r\n", R3), Ok(Value::Map(vec![])));
    assert_eq!(one(b"~2\r\n:2\r\n:1\r\n", R3), Ok(Value::Set(vec![Value::Int(2), Value::Int(1)])));
    assert_eq!(one(b"~0\r\n", R3), Ok(Value::Set(vec![])));
    for input in [&b"%1\r\n+a\r\n+b\r\n"[..], b"~1\r\n+a\r\n", b">1\r\n+a\r\n", b"|1\r\n+a\r\n+b\r\n+c\r\n"] {
        assert_eq!(one(input, R2), Err(DecodeError::InvalidPrefix { byte: input[0] }));
    }
}

#[test]
fn push_frames() {
    let input = b">3\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n:7\r\n";
    assert_eq!(
        one(input, R3),
        Ok(Value::Push(vec![bulk("invalidate"), Value::Array(vec![bulk("key")]), Value::Int(7)]))
    );
    assert_eq!(one(b">0\r\n", R3), Ok(Value::Push(vec![])));
}

#[test]
fn attributes_are_skipped() {
    let annotated = b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n:9543892\r\n";
    assert_eq!(one(annotated, R3), Ok(Value::Array(vec![Value::Int(2039123), Value::Int(9543892)])));
    assert_eq!(one(b"|0\r\n:1\r\n", R3), Ok(Value::Int(1)), "empty attribute");
    assert_eq!(one(b"|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n#t\r\n", R3), Ok(Value::Bool(true)), "chained");
    assert_eq!(
        one(b"*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n", R3),
        Ok(Value::Array(vec![Value::Int(1), Value::Int(2)])),
        "an attribute inside an array annotates the element after it"
    );
    let mut buf = BytesMut::from(&b"|1\r\n+a\r\n+b\r\n"[..]);
    assert_eq!(decode(&mut buf, R3, &Limits::default()), Ok(None), "attribute without its frame");
    assert_eq!(buf.len(), 12);
}

#[test]
fn errors_as_values() {
    assert_eq!(one(b"-MOVED 3999 127.0.0.1:6381\r\n", R2), Ok(Value::Error(b("MOVED 3999 127.0.0.1:6381"))));
    assert_eq!(one(b"-\xff\xfe\r\n", R2), Ok(Value::Error(Bytes::from_static(b"\xff\xfe"))));
    assert_eq!(
        one(b"*2\r\n-ERR a\r\n!5\r\nERR b\r\n", R3),
        Ok(Value::Array(vec![Value::Error(b("ERR a")), Value::Error(b("ERR b"))]))
    );
}

#[test]
fn incomplete_then_complete() {
    let frames: [&[u8]; 6] = [
        b"*2\r\n$3\r\nfoo\r\n%1\r\n+a\r\n,1.25\r\n",
        b"$3\r\nfoo\r\n",
        b":123\r\n",
        b"=8\r\ntxt:abcd\r\n",
        b"|1\r\n+a\r\n+b\r\n>1\r\n#f\r\n",
        b"_\r\n",
    ];
    for frame in frames {
        let full = one(frame, R3).unwrap();
        for cut in 0..frame.len() {
            let mut buf = BytesMut::from(&frame[..cut]);
            assert_eq!(decode(&mut buf, R3, &Limits::default()), Ok(None), "{frame:?} cut at {cut}");
            assert_eq!(&buf[..], &frame[..cut], "Ok(None) must not consume");
            buf.extend_from_slice(&frame[cut..]);
            buf.extend_from_slice(b"+next\r\n");
            assert_eq!(decode(&mut buf, R3, &Limits::default()), Ok(Some(full.clone())));
            assert_eq!(&buf[..], b"+next\r\n");
        }
    }
}

#[test]
fn bulk_strings_are_views_of_the_buffer() {
    let mut buf = BytesMut::from(&b"*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n"[..]);
    let start = buf.as_ptr() as usize;
    let Ok(Some(Value::Array(items))) = decode(&mut buf, R2, &Limits::default()) else { panic!() };
    let Value::Bulk(hello) = &items[0] else { panic!() };
    assert_eq!(hello.as_ptr() as usize, start + 8, "zero-copy slice of the read buffer");
}

#[test]
fn limit_bulk_too_long_is_immediate() {
    let limits = Limits::default();
    let big = limits.max_bulk_len + 1;
    let header = format!("${big}\r\n");
    assert_eq!(
        one(header.as_bytes(), R2),
        Err(DecodeError::BulkTooLong { len: big, limit: limits.max_bulk_len })
    );
    assert_eq!(
        one(b"$999999999999\r\n", R3),
        Err(DecodeError::BulkTooLong { len: 999_999_999_999, limit: limits.max_bulk_len })
    );
    let small = Limits { max_bulk_len: 3, ..Limits::default() };
    assert_eq!(with_limits(b"$3\r\nabc\r\n", R2, &small), Ok(bulk("abc")));
    assert_eq!(with_limits(b"!4\r\n", R3, &small), Err(DecodeError::BulkTooLong { len: 4, limit: 3 }));
    assert_eq!(with_limits(b"=8\r\n", R3, &small), Err(DecodeError::BulkTooLong { len: 8, limit: 3 }));
    assert_eq!(with_limits(b"*1\r\n$4\r\n", R2, &small), Err(DecodeError::BulkTooLong { len: 4, limit: 3 }));
    assert_eq!(one(b"$99999999999999999999999\r\n", R2), malformed(Syntax::BadLength), "u64 overflow");
}

#[test]
fn limit_array_too_long_is_immediate() {
    let small = Limits { max_array_len: 2, ..Limits::default() };
    assert!(with_limits(b"*2\r\n:1\r\n:2\r\n", R2, &small).is_ok());
    for input in [&b"*3\r\n"[..], b"%3\r\n", b"~3\r\n", b">3\r\n", b"|3\r\n"] {
        assert_eq!(with_limits(input, R3, &small), Err(DecodeError::ArrayTooLong { len: 3, limit: 2 }));
    }
    let header = format!("*{}\r\n", Limits::default().max_array_len + 1);
    assert!(matches!(one(header.as_bytes(), R2), Err(DecodeError::ArrayTooLong { .. })));
}

#[test]
fn limit_line_too_long() {
    let small = Limits { max_bulk_len: 4, ..Limits::default() };
    assert_eq!(with_limits(b"+abcd\r\n", R2, &small), Ok(Value::Simple(b("abcd"))));
    assert_eq!(with_limits(b"+abcdef", R2, &small), Err(DecodeError::LineTooLong { limit: 4 }));
    let mut buf = BytesMut::from(&b"-abcd\r"[..]);
    assert_eq!(decode(&mut buf, R2, &small), Ok(None), "still waiting for the LF");
    assert_eq!(with_limits(b"(123456\r\n", R3, &small), Err(DecodeError::LineTooLong { limit: 4 }));
    let long_int = [&b":"[..], &[b'1'; MAX_NUMERIC_LINE + 2]].concat();
    assert_eq!(one(&long_int, R2), Err(DecodeError::LineTooLong { limit: MAX_NUMERIC_LINE }));
    let long_header = [&b"$"[..], &[b'0'; MAX_NUMERIC_LINE + 2]].concat();
    assert_eq!(one(&long_header, R2), Err(DecodeError::LineTooLong { limit: MAX_NUMERIC_LINE }));
    let mut buf = BytesMut::from(&long_int[..MAX_NUMERIC_LINE]);
    assert_eq!(decode(&mut buf, R2, &Limits::default()), Ok(None), "under the limit: wait");
}

#[test]
fn limit_depth() {
    let limits = Limits { max_depth: 2, ..Limits::default() };
    assert!(with_limits(b"*1\r\n*1\r\n:1\r\n", R2, &limits).is_ok());
    assert_eq!(with_limits(b"*1\r\n*1\r\n*1\r\n", R2, &limits), Err(DecodeError::TooDeep { limit: 2 }));
    assert_eq!(with_limits(b"*1\r\n*1\r\n*0\r\n", R2, &limits), Err(DecodeError::TooDeep { limit: 2 }));
    assert_eq!(
        with_limits(b"*1\r\n|1\r\n%1\r\n", R3, &limits),
        Err(DecodeError::TooDeep { limit: 2 }),
        "attributes and maps nest too"
    );
    let flat = Limits { max_depth: 0, ..Limits::default() };
    assert_eq!(with_limits(b":1\r\n", R2, &flat), Ok(Value::Int(1)));
    assert_eq!(with_limits(b"*0\r\n", R2, &flat), Err(DecodeError::TooDeep { limit: 0 }));
}

#[test]
fn deep_nesting_without_stack_overflow() {
    let deep = b"*1\r\n".repeat(100_000);
    // Incomplete, but over the limit: an error at once.
    assert_eq!(one(&deep, R2), Err(DecodeError::TooDeep { limit: 64 }));
    assert_eq!(one(&deep, R3), Err(DecodeError::TooDeep { limit: 64 }));
    let unbounded = Limits { max_depth: usize::MAX, ..Limits::default() };
    assert_eq!(
        with_limits(&deep, R2, &unbounded),
        Err(DecodeError::TooDeep { limit: MAX_DEPTH_CEILING }),
        "max_depth is capped"
    );
    // The deepest value the ceiling allows decodes, compares, prints and drops.
    let mut at_ceiling = b"*1\r\n".repeat(MAX_DEPTH_CEILING);
    at_ceiling.extend_from_slice(b":1\r\n");
    let value = with_limits(&at_ceiling, R3, &unbounded).unwrap();
    assert!(format!("{value:?}").len() > MAX_DEPTH_CEILING);
    let mut out = BytesMut::new();
    encode_value(&mut out, &value, R3).unwrap();
    assert_eq!(&out[..], &at_ceiling[..]);
}

#[test]
fn grammar_errors() {
    assert_eq!(one(b"?\r\n", R3), Err(DecodeError::InvalidPrefix { byte: b'?' }));
    assert_eq!(one(b"HELLO 3\r\n", R3), Err(DecodeError::InvalidPrefix { byte: b'H' }));
    assert_eq!(one(b"$3\r\nabcd\r\n", R2), malformed(Syntax::MissingCrlf));
    assert_eq!(one(b"$3\r\nabc\rx", R2), malformed(Syntax::MissingCrlf));
    assert_eq!(one(b"$x\r\n", R2), malformed(Syntax::BadLength));
    assert_eq!(one(b"$\r\n", R2), malformed(Syntax::BadLength));
    assert_eq!(one(b"$+3\r\nabc\r\n", R2), malformed(Syntax::BadLength));
    assert_eq!(one(b":12a\r\n", R2), malformed(Syntax::BadInteger));
    assert_eq!(one(b":\r\n", R2), malformed(Syntax::BadInteger));
    assert_eq!(one(b":9223372036854775808\r\n", R2), malformed(Syntax::BadInteger));
    assert_eq!(one(b"*1\r\n:x\r\n", R2), malformed(Syntax::BadInteger));
    for (input, byte) in
        [(&b"$?\r\n"[..], b'$'), (b"*?\r\n", b'*'), (b"%?\r\n", b'%'), (b";4\r\n", b';'), (b".\r\n", b'.')]
    {
        assert_eq!(one(input, R3), Err(DecodeError::Unsupported { byte }));
    }
    assert_eq!(one(b"$?\r\n", R2), malformed(Syntax::BadLength));
}

#[test]
fn error_messages_are_clear() {
    let cases = [
        (DecodeError::InvalidPrefix { byte: b'x' }, "invalid RESP type byte 'x'"),
        (DecodeError::TooDeep { limit: 64 }, "RESP aggregates nest deeper than the limit of 64"),
        (DecodeError::BulkTooLong { len: 9, limit: 3 }, "RESP bulk string of 9 bytes exceeds the limit of 3"),
        (
            DecodeError::Malformed { reason: Syntax::MissingCrlf },
            "malformed RESP: payload not followed by CRLF",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
    assert_eq!(EncodeError::NotInResp2 { kind: "map" }.to_string(), "map values cannot be sent over RESP2");
}

#[test]
fn consecutive_frames_in_one_buffer() {
    let mut buf = BytesMut::from(&b"+OK\r\n:1\r\n$1\r\nx\r\n*1\r\n"[..]);
    let limits = Limits::default();
    assert_eq!(decode(&mut buf, R2, &limits), Ok(Some(Value::Simple(b("OK")))));
    assert_eq!(decode(&mut buf, R2, &limits), Ok(Some(Value::Int(1))));
    assert_eq!(decode(&mut buf, R2, &limits), Ok(Some(bulk("x"))));
    assert_eq!(decode(&mut buf, R2, &limits), Ok(None));
    assert_eq!(&buf[..], b"*1\r\n");
    assert_eq!(decode_slice(b":5\r\n:6\r\n", R2, &limits), Ok(Some((Value::Int(5), 4))));
    assert_eq!(decode_slice(b"", R2, &limits), Ok(None));
}

#[test]
fn encode_command_format() {
    let mut buf = BytesMut::from(&b"prefix"[..]);
    encode_command(&mut buf, &["SET", "key", ""]);
    assert_eq!(&buf[..], b"prefix*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n");
    let mut buf = BytesMut::new();
    encode_command::<&[u8]>(&mut buf, &[]);
    assert_eq!(&buf[..], b"*0\r\n");
    let long = vec![b'x'; 1234];
    let mut buf = BytesMut::new();
    encode_command(&mut buf, &[&long]);
    assert_eq!(&buf[..12], b"*1\r\n$1234\r\nx");
    assert_eq!(buf.len(), 4 + 7 + 1234 + 2);
}

#[test]
fn encode_value_forms() {
    let enc = |v: &Value, p| {
        let mut buf = BytesMut::new();
        encode_value(&mut buf, v, p).map(|()| buf.freeze())
    };
    assert_eq!(enc(&Value::Nil, R2).unwrap(), "$-1\r\n");
    assert_eq!(enc(&Value::Nil, R3).unwrap(), "_\r\n");
    assert_eq!(enc(&Value::Error(b("ERR x")), R3).unwrap(), "-ERR x\r\n");
    assert_eq!(enc(&Value::Error(b("ERR\r\nx")), R3).unwrap(), "!6\r\nERR\r\nx\r\n");
    assert_eq!(enc(&Value::Double(1.5), R3).unwrap(), ",1.5\r\n");
    assert_eq!(enc(&Value::Bool(true), R3).unwrap(), "#t\r\n");
    let map = Value::Map(vec![(bulk("b"), Value::Int(1)), (bulk("a"), Value::Int(2))]);
    assert_eq!(enc(&map, R3).unwrap(), "%2\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n:2\r\n");
    assert_eq!(enc(&Value::Push(vec![Value::Bool(false)]), R3).unwrap(), ">1\r\n#f\r\n");
    let nested_map = Value::Array(vec![Value::Int(1), map]);
    assert_eq!(enc(&nested_map, R2), Err(EncodeError::NotInResp2 { kind: "map" }));
    let mut buf = BytesMut::from(&b"keep"[..]);
    assert!(encode_value(&mut buf, &nested_map, R2).is_err());
    assert_eq!(&buf[..], b"keep", "a failed encode leaves the buffer as it was");
    assert_eq!(enc(&Value::Simple(b("a\nb")), R2), Err(EncodeError::LineBreak { kind: "simple string" }));
    assert_eq!(enc(&Value::Error(Bytes::from_static(b"\xff")), R2), Err(EncodeError::ErrorNotUtf8));
    assert_eq!(enc(&Value::BigNumber(b("1x")), R3), Err(EncodeError::BadBigNumber));
    // redis-protocol's length estimate over-counts the digits of 10^15 - 1 (found by fuzzing).
    for n in [999_999_999_999_999, -9_999_999_999_999_999, 999_999_999_999_999_999] {
        let text = format!(":{n}\r\n");
        assert_eq!(enc(&Value::Int(n), R2).unwrap(), text.as_bytes());
        assert_eq!(enc(&Value::Int(n), R3).unwrap(), text.as_bytes());
    }
    let verbatim = Value::Verbatim { format: b("abc"), text: b("t") };
    assert_eq!(enc(&verbatim, R3), Err(EncodeError::VerbatimFormat));
}

#[test]
fn garbage_never_panics() {
    let mut rng = crate::rng::Rng::new(0x5EED);
    let alphabet = b"+-:$*_,#(!=%~>|;.?\r\n0123456789-tfabc";
    let limits = [Limits::default(), Limits { max_depth: 2, max_bulk_len: 8, max_array_len: 4 }];
    for round in 0..20_000 {
        let len = (rng.next_u64() % 48) as usize;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng.next_u64();
                if round % 4 == 0 { r as u8 } else { alphabet[(r % alphabet.len() as u64) as usize] }
            })
            .collect();
        for p in [R2, R3] {
            for l in &limits {
                let _ = decode_slice(&data, p, l);
            }
        }
        resp_decode(&data);
        resp_chunked(&data);
    }
}

#[test]
fn fuzz_bodies_on_seed_like_inputs() {
    let inputs: [&[u8]; 8] = [
        b"\x00*2\r\n$3\r\nfoo\r\n:1\r\n+OK\r\n",
        b"\x05%2\r\n+a\r\n,nan\r\n+b\r\n(123\r\n",
        b"\x11|1\r\n+a\r\n+b\r\n>2\r\n+message\r\n$1\r\nx\r\n",
        b"\x03=7\r\nxyz:abc\r\n!3\r\nbad\r\n",
        b"\x01$-1\r\n*-1\r\n_\r\n#t\r\n",
        b"\x02$99999999999\r\n",
        b"\x07*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        b"\x09,1e300\r\n,-0\r\n,5e-324\r\n",
    ];
    for input in inputs {
        resp_decode(input);
        resp_decode(&input[1..]);
        resp_chunked(input);
    }
    assert!(same(&Value::Double(f64::NAN), &Value::Double(f64::NAN)));
    assert!(!same(&Value::Double(0.0), &Value::Double(1.0)));
}

#[test]
fn fast_and_general_number_paths_agree() {
    // Up to 19 digits take the walker's fast path, longer lines the general one.
    let unlimited = Limits { max_bulk_len: usize::MAX, ..Limits::default() };
    for zeros in 0..=22 {
        let header = format!("${}3\r\nabc\r\n", "0".repeat(zeros));
        assert_eq!(with_limits(header.as_bytes(), R2, &unlimited), Ok(bulk("abc")), "{header:?}");
        let int = format!(":-{}42\r\n", "0".repeat(zeros));
        assert_eq!(with_limits(int.as_bytes(), R3, &unlimited), Ok(Value::Int(-42)), "{int:?}");
    }
    assert_eq!(one(b":9223372036854775807\r\n", R2), Ok(Value::Int(i64::MAX)));
    assert_eq!(one(b":-9223372036854775807\r\n", R2), Ok(Value::Int(-i64::MAX)));
    assert_eq!(one(b":-9223372036854775808\r\n", R2), Ok(Value::Int(i64::MIN)));
    assert_eq!(one(b":-9223372036854775809\r\n", R2), malformed(Syntax::BadInteger));
    assert_eq!(
        with_limits(b"$18446744073709551615\r\n", R2, &Limits::default()),
        Err(DecodeError::BulkTooLong {
            len: usize::try_from(u64::MAX).unwrap_or(usize::MAX),
            limit: Limits::default().max_bulk_len
        })
    );
    assert_eq!(one(b"$18446744073709551616\r\n", R2), malformed(Syntax::BadLength));
    assert_eq!(one(b"$-1\r\n", R2), Ok(Value::Nil), "not a fast-path count");
    assert_eq!(one(b"$3\r\nabcX\n", R2), malformed(Syntax::MissingCrlf), "fast path checks the CRLF");
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nabc\r\n$3\r\nab"[..]);
    assert_eq!(decode(&mut buf, R2, &Limits::default()), Ok(None), "fast path waits for the payload");
}

#[test]
fn large_flat_array() {
    let mut input = b"*5000\r\n".to_vec();
    for i in 0..5000 {
        input.extend_from_slice(format!("${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
    }
    let Ok(Value::Array(items)) = one(&input, R3) else { panic!("not an array") };
    assert_eq!(items.len(), 5000);
    assert!(items.iter().enumerate().all(|(i, v)| v.as_int() == Some(i as i64)));
}
