//! Property tests: arbitrary values survive `encode_value` + `decode` under any chunking, and
//! `encode_command` and `encode_value` match redis-protocol byte for byte.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use redis_protocol::resp2::types::BorrowedFrame as Frame2;
use redis_protocol::resp3::types::BorrowedFrame as Frame3;

use super::fuzz::{resp_chunked, resp_decode, same};
use super::*;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Text without CR or LF, which simple strings cannot carry.
fn line(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..max).prop_map(Bytes::from)
}

/// Every RESP2 value: nil, simple, error (UTF-8, one line), integer, bulk, array.
fn resp2_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        line(12).prop_map(Value::Simple),
        "[^\r\n]{0,12}".prop_map(|s| Value::Error(Bytes::from(s))),
        any::<i64>().prop_map(Value::Int),
        bytes(40).prop_map(Value::Bulk),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| vec(inner, 0..6).prop_map(Value::Array))
}

/// Every RESP3 value, every variant of [`Value`].
fn resp3_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        line(12).prop_map(Value::Simple),
        bytes(12).prop_map(Value::Error),
        any::<i64>().prop_map(Value::Int),
        bytes(40).prop_map(Value::Bulk),
        any::<f64>().prop_map(Value::Double),
        any::<bool>().prop_map(Value::Bool),
        "[-+]?[0-9]{1,40}".prop_map(|s| Value::BigNumber(Bytes::from(s))),
        (prop_oneof![Just("txt"), Just("mkd")], bytes(20)).prop_map(|(format, text)| Value::Verbatim {
            format: Bytes::from_static(format.as_bytes()),
            text
        }),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            vec(inner.clone(), 0..6).prop_map(Value::Set),
            vec(inner, 0..6).prop_map(Value::Push),
        ]
    })
}

fn encoded(value: &Value, protocol: Protocol) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_value(&mut buf, value, protocol).expect("generated values are representable");
    buf
}

/// Feeds `first ++ second` in chunks whose sizes cycle through `sizes`, decoding after every
/// chunk: nothing until `first` is complete, then exactly `first`, with the bytes of `second`
/// received so far left in the buffer.
fn check_chunked(
    first: &Value,
    second: &Value,
    protocol: Protocol,
    sizes: &[usize],
) -> Result<(), TestCaseError> {
    let a = encoded(first, protocol);
    let mut stream = a.to_vec();
    stream.extend_from_slice(&encoded(second, protocol));
    let limits = Limits::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut fed = 0;
    for size in sizes.iter().cycle() {
        if fed == stream.len() {
            break;
        }
        let end = (fed + size).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        while let Some(value) = decode(&mut buf, protocol, &limits).map_err(|e| {
            TestCaseError::fail(format!("decode failed with {e} after {fed} bytes of {stream:?}"))
        })? {
            got.push(value);
        }
        let expected = usize::from(fed >= a.len()) + usize::from(fed == stream.len());
        prop_assert_eq!(got.len(), expected, "frames after {} of {} bytes", fed, stream.len());
        let consumed = if got.is_empty() {
            0
        } else if got.len() == 1 {
            a.len()
        } else {
            stream.len()
        };
        prop_assert_eq!(&buf[..], &stream[consumed..fed], "leftover bytes");
    }
    prop_assert!(same(&got[0], first), "decoded {:?}, sent {:?}", got[0], first);
    prop_assert!(same(&got[1], second), "decoded {:?}, sent {:?}", got[1], second);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn resp3_round_trip_any_chunking(
        first in resp3_value(),
        second in resp3_value(),
        sizes in vec(1usize..24, 1..16),
    ) {
        check_chunked(&first, &second, Protocol::Resp3, &sizes)?;
    }

    #[test]
    fn resp2_round_trip_any_chunking(
        first in resp2_value(),
        second in resp2_value(),
        sizes in vec(1usize..24, 1..16),
    ) {
        check_chunked(&first, &second, Protocol::Resp2, &sizes)?;
    }

    #[test]
    fn round_trip_byte_at_a_time(first in resp3_value(), second in resp3_value()) {
        check_chunked(&first, &second, Protocol::Resp3, &[1])?;
    }

    #[test]
    fn fuzz_bodies_hold_on_valid_streams(value in resp3_value(), small in resp2_value(), seed in any::<u8>()) {
        for (value, protocol) in [(&value, Protocol::Resp3), (&small, Protocol::Resp2)] {
            let buf = encoded(value, protocol);
            resp_decode(&buf);
            let mut seeded = vec![seed];
            seeded.extend_from_slice(&buf);
            seeded.extend_from_slice(&buf[..buf.len() / 2]);
            resp_chunked(&seeded);
        }
    }

    #[test]
    fn encode_command_matches_redis_protocol(args in vec(vec(any::<u8>(), 0..300), 0..12)) {
        let mut ours = BytesMut::from(&b"old"[..]);
        encode_command(&mut ours, &args);
        prop_assert_eq!(&ours[..3], b"old");
        let ours = ours.split_off(3);

        let frames2: Vec<Frame2<'_>> = args.iter().map(|a| Frame2::BulkString(a)).collect();
        let mut theirs = BytesMut::new();
        let end = redis_protocol::resp2::encode::extend_encode_borrowed(&mut theirs, &Frame2::Array(&frames2), false)
            .expect("redis-protocol encodes");
        theirs.truncate(end);
        prop_assert_eq!(&ours[..], &theirs[..]);

        let frames3: Vec<Frame3<'_>> =
            args.iter().map(|a| Frame3::BlobString { data: a, attributes: None }).collect();
        let mut theirs3 = BytesMut::new();
        let end = redis_protocol::resp3::encode::complete::extend_encode_borrowed(
            &mut theirs3,
            &Frame3::Array { data: &frames3, attributes: None },
            false,
        )
        .expect("redis-protocol encodes");
        theirs3.truncate(end);
        prop_assert_eq!(&ours[..], &theirs3[..]);

        let expected = Value::Array(args.iter().map(|a| Value::Bulk(Bytes::copy_from_slice(a))).collect());
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let mut buf = ours.clone();
            prop_assert_eq!(decode(&mut buf, protocol, &Limits::default()), Ok(Some(expected.clone())));
            prop_assert!(buf.is_empty());
        }
    }

    #[test]
    fn encode_value_matches_redis_protocol(value in resp3_value(), small in resp2_value()) {
        for (value, protocol) in [(&value, Protocol::Resp3), (&small, Protocol::Resp2)] {
            let mut ours = BytesMut::from(&b"old"[..]);
            encode_value(&mut ours, value, protocol).expect("generated values are representable");
            prop_assert_eq!(&ours[..3], b"old");
            let mut theirs = BytesMut::from(&b"old"[..]);
            reference::encode(&mut theirs, value, protocol).expect("redis-protocol encodes it");
            prop_assert_eq!(&ours[..], &theirs[..], "{:?} over {:?}", value, protocol);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..64)) {
        resp_decode(&data);
        resp_chunked(&data);
    }
}
