//! Decode throughput of typical replies: `decode` against redis-protocol's zero-copy decoders
//! on the same bytes. Goal: within 10% of redis-protocol.
//!
//! Each iteration decodes a buffer of back-to-back replies (about 64 KiB) down to empty; making
//! the buffer is setup and not timed, dropping the decoded values is timed for both.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use slotcache_core::resp::{Limits, Protocol, decode, encode_command};

/// A `$1024` bulk reply.
fn bulk_1k() -> Vec<u8> {
    let mut frame = b"$1024\r\n".to_vec();
    frame.extend((0..1024).map(|i| b'a' + (i % 26) as u8));
    frame.extend_from_slice(b"\r\n");
    frame
}

/// A `*100` array of 64-byte bulk strings (the shape of an `MGET` reply).
fn array_100x64() -> Vec<u8> {
    let value: Vec<u8> = (0..64).map(|i| b'a' + (i % 26) as u8).collect();
    let mut buf = BytesMut::new();
    encode_command(&mut buf, &vec![value; 100]);
    buf.to_vec()
}

fn stream(frame: &[u8]) -> Vec<u8> {
    frame.repeat((64 * 1024 / frame.len()).max(1))
}

fn resp(c: &mut Criterion) {
    let limits = Limits::default();
    for (name, frame) in [("bulk_1k", bulk_1k()), ("array_100x64", array_100x64())] {
        let stream = stream(&frame);
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Bytes(stream.len() as u64));
        let setup = || BytesMut::from(&stream[..]);
        for (label, protocol) in [("ours_resp2", Protocol::Resp2), ("ours_resp3", Protocol::Resp3)] {
            group.bench_function(label, |b| {
                b.iter_batched(
                    setup,
                    |mut buf| {
                        while let Some(value) = decode(&mut buf, protocol, &limits).unwrap() {
                            black_box(value);
                        }
                    },
                    BatchSize::LargeInput,
                );
            });
        }
        group.bench_function("redis_protocol_resp2", |b| {
            b.iter_batched(
                setup,
                |mut buf| {
                    while let Some(frame) = redis_protocol::resp2::decode::decode_bytes_mut(&mut buf).unwrap()
                    {
                        black_box(frame);
                    }
                },
                BatchSize::LargeInput,
            );
        });
        group.bench_function("redis_protocol_resp3", |b| {
            b.iter_batched(
                setup,
                |mut buf| {
                    while let Some(frame) =
                        redis_protocol::resp3::decode::complete::decode_bytes_mut(&mut buf).unwrap()
                    {
                        black_box(frame);
                    }
                },
                BatchSize::LargeInput,
            );
        });
        group.finish();
    }
}

criterion_group!(benches, resp);
criterion_main!(benches);
