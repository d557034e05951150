use proptest::prelude::*;

use super::*;
use crate::Rng;
use crate::cache::Entry;

const KEY: [u8; KEY_LEN] = [7; KEY_LEN];

/// Test randomness (the real caller passes the OS generator).
fn random(seed: u64) -> impl FnMut(&mut [u8]) {
    let mut rng = Rng::new(seed);
    move |buf: &mut [u8]| buf.iter_mut().for_each(|b| *b = rng.next_u64().to_le_bytes()[0])
}

fn no_random(_: &mut [u8]) {
    panic!("this transformer needs no randomness");
}

fn aead() -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&KEY)
}

fn pipeline(ts: Vec<Arc<dyn Transform>>) -> ValuePipeline {
    ValuePipeline::new(ts)
}

fn zstd_aead() -> ValuePipeline {
    pipeline(vec![Arc::new(Zstd::default()), Arc::new(aead())])
}

fn transform_error(r: Result<impl core::fmt::Debug, CacheError>) -> (&'static str, String) {
    match r {
        Err(CacheError::Transform { name, reason }) => (name, reason),
        other => panic!("expected a transformer error, got {other:?}"),
    }
}

/// A 2 MiB value that compresses somewhat (text with varying numbers).
fn two_mib() -> Vec<u8> {
    let mut rng = Rng::new(1);
    let mut v = Vec::with_capacity(2 << 20);
    while v.len() < 2 << 20 {
        v.extend_from_slice(format!("{{\"id\":{},\"n\":\"\0\"}}", rng.below(1_000_000)).as_bytes());
    }
    v.truncate(2 << 20);
    v
}

// ---- zstd ----

#[test]
fn zstd_round_trips_edge_values() {
    let z = Zstd::default();
    assert_eq!((z.level(), z.max_decompressed()), (3, 64 << 20));
    for value in [Vec::new(), vec![0], b"a\0b\0\0".to_vec(), vec![0; 100_000], two_mib()] {
        let packed = z.apply(&value, &mut no_random).expect("compress");
        assert_eq!(packed.get(..4), Some(&[0x28, 0xb5, 0x2f, 0xfd][..]), "a zstd frame");
        assert_eq!(z.reverse(&packed).expect("decompress"), value);
    }
}

#[test]
fn zstd_levels_out_of_range_are_clamped() {
    for level in [i32::MIN, -200_000, 0, 23, i32::MAX] {
        let z = Zstd::new(level);
        assert_eq!(z.reverse(&z.apply(b"abcabcabc", &mut no_random).expect("c")).expect("d"), b"abcabcabc");
    }
}

#[test]
fn zstd_corruption_is_an_error() {
    let z = Zstd::default();
    let packed = z.apply(b"a value worth compressing, compressing, compressing", &mut no_random).expect("c");
    for i in 0..packed.len() {
        for bit in [0x01, 0x80] {
            let mut bad = packed.clone();
            bad[i] ^= bit;
            assert!(z.reverse(&bad).is_err(), "byte {i} bit {bit:#x} went unnoticed");
        }
    }
    for cut in 0..packed.len() {
        assert!(z.reverse(&packed[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(transform_error(z.reverse(b"not zstd at all")).0, "zstd");
}

/// A zstd frame with no declared size: `blocks` RLE blocks of 128 KiB each from one byte.
fn rle_bomb(blocks: usize) -> Vec<u8> {
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]; // magic; no size, no checksum; 128 KiB window
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = (128 * 1024) << 3 | 1 << 1 | last; // RLE block of 128 KiB
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(b'A');
    }
    f
}

#[test]
fn zstd_decompression_is_capped() {
    // The default cap: 64 MiB; this 2 KiB frame expands to 64 MiB + 128 KiB.
    let bomb = rle_bomb(513);
    assert!(bomb.len() < 4096);
    let (name, reason) = transform_error(Zstd::default().reverse(&bomb));
    assert_eq!(name, "zstd");
    assert!(reason.contains("exceeds the cap"), "{reason}");
    // Exactly at the cap is fine.
    let at_cap = Zstd::default().reverse(&rle_bomb(512)).expect("64 MiB");
    assert_eq!(at_cap.len(), 64 << 20);
    // A configured cap.
    let small = Zstd::new(3).with_max_decompressed(1 << 20);
    assert!(transform_error(small.reverse(&rle_bomb(9))).1.contains("exceeds the cap"));
    assert_eq!(small.reverse(&rle_bomb(8)).expect("1 MiB").len(), 1 << 20);
    // Values over the cap are refused when written, since they could not be read.
    let (name, reason) = transform_error(small.apply(&vec![0; (1 << 20) + 1], &mut no_random));
    assert_eq!(name, "zstd");
    assert!(reason.contains("could never be read back"), "{reason}");
}

#[test]
fn zstd_refuses_windows_beyond_the_cap() {
    // A frame declaring a 128 MiB window (one empty raw block): zstd's own limit allows it, but
    // no value under the 64 MiB cap needs it.
    let huge_window = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, 0x01, 0x00, 0x00];
    assert_eq!(transform_error(Zstd::default().reverse(&huge_window)).0, "zstd");
    let uncapped = Zstd::default().with_max_decompressed(usize::MAX);
    assert_eq!(uncapped.reverse(&huge_window).expect("within zstd's limit"), b"");
    // The same frame with a 1 KiB window is a valid, empty frame.
    let small_window = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00];
    assert_eq!(Zstd::default().reverse(&small_window).expect("empty frame"), b"");
}

// ---- XChaCha20-Poly1305 ----

#[test]
fn aead_matches_libsodium() {
    // crypto_aead_xchacha20poly1305_ietf_encrypt (libsodium, via PyNaCl), no associated data.
    let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
    let nonce: Vec<u8> = (0x40..0x58).collect();
    let mut fill = |buf: &mut [u8]| buf.copy_from_slice(&nonce);
    let t = XChaCha20Poly1305::new(&key);
    let sealed = t.apply(b"slotcache value\0<&>", &mut fill).expect("seal");
    let expected = "404142434445464748494a4b4c4d4e4f5051525354555657\
                    82601c80389197329e3201b29adbf8550e614cf30d188a105c9608a2ff79ec77264157";
    assert_eq!(hex(&sealed), expected);
    assert_eq!(t.reverse(&sealed).expect("open"), b"slotcache value\0<&>");
    let empty = t.apply(b"", &mut fill).expect("seal");
    assert_eq!(hex(&empty[NONCE_LEN..]), "1dac8f73146d1e9da796cb7f7221a5df");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn aead_detects_every_flipped_byte_truncation_and_wrong_key() {
    let t = aead();
    let sealed = t.apply(b"secret\0value", &mut random(3)).expect("seal");
    assert_eq!(sealed.len(), 12 + NONCE_LEN + TAG_LEN);
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        let (name, reason) = transform_error(t.reverse(&bad));
        assert_eq!(name, "xchacha20poly1305");
        assert!(reason.contains("authentication failed"), "{reason}");
    }
    for cut in 0..sealed.len() {
        assert!(transform_error(t.reverse(&sealed[..cut])).1.contains("authentication failed"));
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(t.reverse(&longer).is_err());
    let other = XChaCha20Poly1305::new(&[8; KEY_LEN]);
    assert!(transform_error(other.reverse(&sealed)).1.contains("authentication failed"));
    assert_eq!(t.reverse(&sealed).expect("open"), b"secret\0value");
}

#[test]
fn aead_uses_fresh_nonces_and_hides_the_key() {
    let t = aead();
    let mut rng = random(9);
    let a = t.apply(b"same", &mut rng).expect("seal");
    let b = t.apply(b"same", &mut rng).expect("seal");
    assert_ne!(a, b);
    assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
    let shown = format!("{t:?} {:?}", zstd_aead());
    assert_eq!(
        shown,
        "XChaCha20Poly1305 { key: \"<redacted>\" } \
         ValuePipeline { transforms: [\"zstd\", \"xchacha20poly1305\"], max_value_size: 536870912 }"
    );
    match XChaCha20Poly1305::from_slice(&[7; 31]) {
        Err(CacheError::Config(msg)) => assert!(msg.contains("32 bytes, not 31") && !msg.contains('7')),
        other => panic!("{other:?}"),
    }
    let from_slice = XChaCha20Poly1305::from_slice(&KEY).expect("32 bytes");
    assert_eq!(from_slice.reverse(&a).expect("same key"), b"same");
}

// ---- the pipeline ----

#[test]
fn an_empty_pipeline_passes_bytes_through() {
    let p = ValuePipeline::default();
    let (payload, ids) = p.encode(b"\"hello\"".to_vec(), &mut no_random).expect("encode");
    assert_eq!((&payload[..], ids.as_slice()), (&b"\"hello\""[..], &[][..]));
    let back = p.decode(&payload, &[]).expect("decode");
    assert_eq!(back.as_ptr(), payload.as_ptr(), "no copy");
}

#[test]
fn chains_round_trip_through_the_envelope() {
    let cases: Vec<(ValuePipeline, Vec<TransformId>)> = vec![
        (pipeline(vec![Arc::new(Zstd::default())]), vec![TransformId::Zstd]),
        (pipeline(vec![Arc::new(aead())]), vec![TransformId::ChaCha20Poly1305]),
        (zstd_aead(), vec![TransformId::Zstd, TransformId::ChaCha20Poly1305]),
    ];
    for (p, expected_ids) in cases {
        for value in [Vec::new(), vec![0], b"\0\0nul\0".to_vec(), two_mib()] {
            let (payload, ids) = p.encode(value.clone(), &mut random(5)).expect("encode");
            assert_eq!(ids, expected_ids);
            let stored = Entry { payload, transforms: ids, ..Entry::default() }.encode().expect("envelope");
            let entry = Entry::decode(&stored).expect("envelope");
            assert_eq!(p.decode(&entry.payload, &entry.transforms).expect("decode"), value);
        }
    }
}

#[test]
fn the_recorded_chain_is_reversed_not_the_configured_one() {
    let (payload, ids) = zstd_aead().encode(b"value".to_vec(), &mut random(1)).expect("encode");
    // Configured in the other order: the recorded order still decides.
    let swapped = pipeline(vec![Arc::new(aead()), Arc::new(Zstd::default())]);
    assert_eq!(swapped.decode(&payload, &ids).expect("decode"), &b"value"[..]);
    // Without the key: a typed error naming the missing transformer.
    let zstd_only = pipeline(vec![Arc::new(Zstd::default())]);
    let (name, reason) = transform_error(zstd_only.decode(&payload, &ids));
    assert_eq!(name, "xchacha20poly1305");
    assert!(reason.contains("no key configured"), "{reason}");
    assert_eq!(transform_error(ValuePipeline::default().decode(&payload, &ids)).0, "xchacha20poly1305");
    // With another key.
    let other_key = pipeline(vec![Arc::new(Zstd::default()), Arc::new(XChaCha20Poly1305::new(&[1; 32]))]);
    assert!(transform_error(other_key.decode(&payload, &ids)).1.contains("authentication failed"));
    // A chain recorded wrongly is an error, not a misread.
    assert!(swapped.decode(&payload, &[TransformId::Zstd]).is_err());
    assert!(swapped.decode(&payload, &[TransformId::ChaCha20Poly1305, TransformId::Zstd]).is_err());
}

#[test]
fn values_written_before_transformers_stay_readable() {
    let plain = Bytes::from_static(b"\"written before compression\"");
    assert_eq!(zstd_aead().decode(&plain, &[]).expect("as is"), plain);
}

#[test]
fn sizes_are_checked_both_ways() {
    let p = ValuePipeline::default().with_max_value_size(10);
    assert_eq!(p.encode(vec![1; 10], &mut no_random).expect("at the limit").0.len(), 10);
    assert_eq!(p.encode(vec![1; 11], &mut no_random), Err(CacheError::TooLarge { size: 11, limit: 10 }));
    assert_eq!(
        p.decode(&Bytes::from(vec![1; 11]), &[TransformId::Zstd]),
        Err(CacheError::TooLarge { size: 11, limit: 10 }),
        "checked before any transformer runs"
    );
    // The limit applies to the stored size: 1000 zeros compress under it.
    let z = pipeline(vec![Arc::new(Zstd::default())]).with_max_value_size(64);
    let (payload, ids) = z.encode(vec![0; 1000], &mut no_random).expect("compressed");
    assert!(payload.len() <= 64);
    assert_eq!(z.decode(&payload, &ids).expect("decode").len(), 1000);
    // Encryption adds 40 bytes, which count.
    let e = pipeline(vec![Arc::new(aead())]).with_max_value_size(50);
    assert_eq!(e.encode(vec![0; 11], &mut random(1)), Err(CacheError::TooLarge { size: 51, limit: 50 }));
}

#[test]
fn chains_are_bounded() {
    let long = pipeline((0..=MAX_CHAIN).map(|_| Arc::new(Zstd::default()) as Arc<dyn Transform>).collect());
    assert!(matches!(long.encode(vec![1], &mut no_random), Err(CacheError::Config(_))));
    let recorded = [TransformId::Zstd; MAX_CHAIN + 1];
    assert!(matches!(long.decode(&Bytes::from_static(b"x"), &recorded), Err(CacheError::Corrupt { .. })));
    assert_eq!(transform_name(TransformId::Zstd), "zstd");
    assert_eq!(transform_name(TransformId::ChaCha20Poly1305), aead().name());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn zstd_round_trips(value in proptest::collection::vec(any::<u8>(), 0..4096), level in -5i32..=9) {
        let z = Zstd::new(level);
        prop_assert_eq!(z.reverse(&z.apply(&value, &mut no_random).expect("c")).expect("d"), value);
    }

    #[test]
    fn aead_round_trips(value in proptest::collection::vec(any::<u8>(), 0..4096), seed in any::<u64>()) {
        let sealed = aead().apply(&value, &mut random(seed)).expect("seal");
        prop_assert_eq!(sealed.len(), value.len() + NONCE_LEN + TAG_LEN);
        prop_assert_eq!(aead().reverse(&sealed).expect("open"), value);
    }

    #[test]
    fn pipeline_chains_round_trip(value in proptest::collection::vec(any::<u8>(), 0..4096),
                                  which in 0usize..3, seed in any::<u64>()) {
        let p = match which {
            0 => pipeline(vec![Arc::new(Zstd::default())]),
            1 => pipeline(vec![Arc::new(aead())]),
            _ => zstd_aead(),
        };
        let (payload, ids) = p.encode(value.clone(), &mut random(seed)).expect("encode");
        prop_assert_eq!(p.decode(&payload, &ids).expect("decode"), value);
    }

    #[test]
    fn tampering_is_always_detected(value in proptest::collection::vec(any::<u8>(), 0..512),
                                    pos in any::<prop::sample::Index>(), bit in 0u8..8, seed in any::<u64>()) {
        let p = zstd_aead();
        let (payload, ids) = p.encode(value, &mut random(seed)).expect("encode");
        let mut bad = payload.to_vec();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        let (name, _) = transform_error(p.decode(&Bytes::from(bad), &ids));
        prop_assert_eq!(name, "xchacha20poly1305");
    }

    #[test]
    fn decode_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..256),
                           chain in proptest::collection::vec(any::<bool>(), 0..4)) {
        let recorded: Vec<TransformId> = chain
            .into_iter()
            .map(|z| if z { TransformId::Zstd } else { TransformId::ChaCha20Poly1305 })
            .collect();
        let _ = zstd_aead().decode(&Bytes::from(payload), &recorded);
    }
}
