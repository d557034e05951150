use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

fn json<V: Serialize + DeserializeOwned>(value: &V) -> String {
    let mut out = Vec::new();
    Json.encode(value, &mut out).expect("encode");
    String::from_utf8(out).expect("json is UTF-8")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    z: bool,
    a: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Person {
    name: String,
    age: u32,
    email: Option<String>,
    score: f64,
    tags: Vec<String>,
    inner: Inner,
    counts: BTreeMap<String, i64>,
}

fn person() -> Person {
    Person {
        name: "Ada <&>".into(),
        age: 36,
        email: None,
        score: 99.5,
        tags: vec!["x".into(), "y".into()],
        inner: Inner { z: true, a: vec![1, 2] },
        counts: [("b".to_owned(), 2), ("a".to_owned(), 1), ("B".to_owned(), 3)].into_iter().collect(),
    }
}

// Expected bytes below are Go's `encoding/json` output (Encoder with SetEscapeHTML(false), the
// trailing newline trimmed), checked against Go 1.27.

#[test]
fn json_strings_match_go() {
    let mut controls: String = (0u8..0x20).map(char::from).collect();
    controls.push('\u{7f}');
    let cases: &[(&str, &str)] = &[
        ("hello", r#""hello""#),
        ("", r#""""#),
        (r#"<a href="x">&amp;</a>"#, r#""<a href=\"x\">&amp;</a>""#),
        (
            &controls,
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\
             \\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\
             \\u001d\\u001e\\u001f\u{7f}\"",
        ),
        ("\u{2028}\u{2029}", r#""\u2028\u2029""#),
        ("a\u{2028}b\u{2029}c", r#""a\u2028b\u2029c""#),
        ("é日本🎉", "\"é日本🎉\""),
        (r#"back\slash/"q""#, r#""back\\slash/\"q\"""#),
        ("nul\0byte", r#""nul\u0000byte""#),
    ];
    for &(value, expected) in cases {
        assert_eq!(json(&value.to_owned()), expected, "{value:?}");
        let back: String = Json.decode(expected.as_bytes()).expect("decode");
        assert_eq!(back, value);
    }
    // The 7 bytes of the reference's example.
    assert_eq!(json(&"hello".to_owned()).as_bytes(), b"\"hello\"");
}

#[test]
fn json_f64_matches_go() {
    let cases: &[(u64, &str)] = &[
        (0, "0"),
        (9223372036854775808, "-0"),
        (4607182418800017408, "1"),
        (13830554455654793216, "-1"),
        (4636737291354636288, "100"),
        (4591870180066957722, "0.1"),
        (4599075939470750516, "0.30000000000000004"),
        (4599676419421066581, "0.3333333333333333"),
        (4683220299150161609, "123456.789"),
        (4906019910204099648, "100000000000000000000"),
        (4921056587992461136, "1e+21"),
        (4923652838987019132, "1.5e+21"),
        (4517329193108106637, "0.000001"),
        (4502148214488346440, "1e-7"),
        (4504762867522569078, "1.5e-7"),
        (4457293557087583675, "1e-10"),
        (1, "5e-324"),
        (9218868437227405311, "1.7976931348623157e+308"),
        (18320042176257495811, "-1.25e+300"),
        (4845873199050653696, "9007199254740992"),
        (6103021453049119613, "1e+100"),
        (4537999922764202797, "0.000025"),
        (4921056587992461135, "999999999999999900000"),
        (4936209963552724370, "1e+22"),
        // Ties between two shortest candidates go to the even digit, as in Go (Rust's `{}` would
        // write ...0.3).
        (4834473200541171713, "1653600000000000.2"),
        (14059884571811117697, "-2163433603792544.2"),
    ];
    for &(bits, expected) in cases {
        let f = f64::from_bits(bits);
        assert_eq!(json(&f), expected, "{f:e}");
        let back: f64 = Json.decode(expected.as_bytes()).expect("decode");
        assert_eq!(back.to_bits(), f.to_bits(), "{expected}");
    }
}

#[test]
fn json_f32_matches_go() {
    let cases: &[(u32, &str)] = &[
        (1036831949, "0.1"),
        (1066192077, "1.1"),
        (1266679808, "16777216"),
        (2139095039, "3.4028235e+38"),
        (869711765, "1e-7"),
        (1649989415, "1e+21"),
        (1621981420, "100000000000000000000"),
        (1078530000, "3.14159"),
        (897988541, "0.000001"),
        (897988540, "9.999999e-7"),
        (3388403010, "-2022824.2"),
        (1187865248, "26289.312"),
        (1209389928, "153421.62"),
    ];
    for &(bits, expected) in cases {
        let f = f32::from_bits(bits);
        assert_eq!(json(&f), expected, "{f:e}");
        let back: f32 = Json.decode(expected.as_bytes()).expect("decode");
        assert_eq!(back.to_bits(), f.to_bits(), "{expected}");
    }
}

#[test]
fn json_other_values_match_go() {
    assert_eq!(json(&i64::MIN), "-9223372036854775808");
    assert_eq!(json(&i64::MAX), "9223372036854775807");
    assert_eq!(json(&u64::MAX), "18446744073709551615");
    assert_eq!(json(&true), "true");
    assert_eq!(json(&Vec::<i32>::new()), "[]");
    assert_eq!(json(&vec!["a".to_owned(), "b".to_owned()]), r#"["a","b"]"#);
    assert_eq!(
        json(&person()),
        r#"{"name":"Ada <&>","age":36,"email":null,"score":99.5,"tags":["x","y"],"inner":{"z":true,"a":[1,2]},"counts":{"B":3,"a":1,"b":2}}"#
    );
    // Known difference: Go sorts integer keys as text (`{"10":2,"2":1}`).
    assert_eq!(json(&BTreeMap::from([(2, 1), (10, 2)])), r#"{"2":1,"10":2}"#);
    // Known difference: Go refuses NaN; serde_json writes null, which does not read back.
    assert_eq!(json(&f64::NAN), "null");
    assert!(matches!(Json.decode(b"null"), Err::<f64, _>(CacheError::Codec(_))));
}

#[test]
fn json_reads_go_output() {
    let go = br#"{"name":"Ada <&>","age":36,"email":null,"score":99.5,"tags":["x","y"],"inner":{"z":true,"a":[1,2]},"counts":{"B":3,"a":1,"b":2}}"#;
    assert_eq!(Json.decode(go), Ok(person()));
    // Go's Encoder ends with a newline; the reference trims it, but either reads.
    let back: String = Json.decode(b"\"a\\u2028\\b\"\n").expect("decode");
    assert_eq!(back, "a\u{2028}\u{8}");
}

#[test]
fn json_errors_are_typed_and_leave_out_alone() {
    for bad in [&b""[..], b"{", b"\"open", b"\"hi\" x", b"\xff", b"[1,2", b"nul"] {
        match Json.decode(bad) {
            Err::<String, _>(CacheError::Codec(msg)) => assert!(msg.starts_with("json: "), "{msg}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(matches!(Json.decode(b"42"), Err::<Person, _>(CacheError::Codec(_))));
    // 200 nested arrays: over serde_json's recursion limit, an error rather than a stack overflow.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(matches!(Json.decode(deep.as_bytes()), Err::<serde_json::Value, _>(CacheError::Codec(_))));
    // Map keys must be strings in JSON; the partial output is taken back.
    let mut out = b"prefix".to_vec();
    let bad = HashMap::from([(vec![1u8], 1)]);
    assert!(matches!(Json.encode(&bad, &mut out), Err(CacheError::Codec(_))));
    assert_eq!(out, b"prefix");
}

#[test]
fn binary_round_trips_and_rejects_bad_input() {
    let mut out = b"prefix".to_vec();
    Binary.encode(&person(), &mut out).expect("encode");
    assert_eq!(out.get(..6), Some(&b"prefix"[..]));
    assert_eq!(Binary.decode(out.get(6..).expect("tail")), Ok(person()));
    assert_eq!(Codec::<Person>::name(&Binary), "postcard");

    let mut bytes = Vec::new();
    Binary.encode(&person(), &mut bytes).expect("encode");
    for cut in 0..bytes.len() {
        assert!(matches!(Binary.decode(&bytes[..cut]), Err::<Person, _>(CacheError::Codec(_))), "{cut}");
    }
    bytes.push(0);
    match Binary.decode(&bytes) {
        Err::<Person, _>(CacheError::Codec(msg)) => assert!(msg.contains("trailing"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // A declared length far beyond the input is an error, not a huge allocation.
    assert!(matches!(
        Binary.decode(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err::<Vec<u64>, _>(CacheError::Codec(_))
    ));
    // Not self-describing: `deserialize_any` types fail cleanly.
    assert!(matches!(Binary.decode(&[0]), Err::<serde_json::Value, _>(CacheError::Codec(_))));
}

#[test]
fn raw_is_the_identity() {
    for value in [&b""[..], b"\0", b"a\0b\0", b"\xff\xfe", b"\0SC\x01"] {
        let mut out = Vec::new();
        Raw.encode(&value.to_vec(), &mut out).expect("encode");
        assert_eq!(out, value);
        assert_eq!(Raw.decode(value), Ok(value.to_vec()));
        let mut out = Vec::new();
        Raw.encode(&Bytes::copy_from_slice(value), &mut out).expect("encode");
        assert_eq!(out, value);
        assert_eq!(Raw.decode(value), Ok(Bytes::copy_from_slice(value)));
    }
    let mut out = Vec::new();
    Raw.encode(&"héllo\0".to_owned(), &mut out).expect("encode");
    assert_eq!(out, "héllo\0".as_bytes());
    assert_eq!(Raw.decode(&out), Ok("héllo\0".to_owned()));
    match Raw.decode(b"ok\xffno") {
        Err::<String, _>(CacheError::Codec(msg)) => assert!(msg.contains("offset 2"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(Codec::<String>::name(&Raw), "raw");
    assert_eq!(Codec::<String>::name(&Json), "json");
}

#[test]
fn two_mib_values() {
    let text: String = "0123456789abcdef\u{2028}".repeat(2 << 20 >> 4);
    let mut out = Vec::new();
    Json.encode(&text, &mut out).expect("encode");
    assert_eq!(Json.decode(&out), Ok(text.clone()));
    out.clear();
    Binary.encode(&text, &mut out).expect("encode");
    assert_eq!(Binary.decode(&out), Ok(text.clone()));
    out.clear();
    Raw.encode(&text, &mut out).expect("encode");
    assert_eq!(Raw.decode(&out), Ok(text));
}

fn arb_person() -> impl Strategy<Value = Person> {
    (
        any::<String>(),
        any::<u32>(),
        proptest::option::of(any::<String>()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        proptest::collection::vec(any::<String>(), 0..4),
        (any::<bool>(), proptest::collection::vec(any::<u16>(), 0..8)),
        proptest::collection::btree_map(any::<String>(), any::<i64>(), 0..4),
    )
        .prop_map(|(name, age, email, score, tags, (z, a), counts)| Person {
            name,
            age,
            email,
            score,
            tags,
            inner: Inner { z, a },
            counts,
        })
}

proptest! {
    #[test]
    fn json_round_trips(p in arb_person()) {
        let mut out = Vec::new();
        Json.encode(&p, &mut out).expect("encode");
        let raw_separator = out.windows(3).any(|w| w == b"\xe2\x80\xa8" || w == b"\xe2\x80\xa9");
        prop_assert!(!raw_separator, "U+2028 and U+2029 are escaped");
        let back: Person = Json.decode(&out).expect("decode");
        prop_assert_eq!(back.score.to_bits(), p.score.to_bits());
        prop_assert_eq!(back, p);
    }

    #[test]
    fn json_floats_round_trip_exactly(f in any::<f64>().prop_filter("finite", |f| f.is_finite()),
                                      g in any::<f32>().prop_filter("finite", |f| f.is_finite())) {
        let back: f64 = Json.decode(json(&f).as_bytes()).expect("decode");
        prop_assert_eq!(back.to_bits(), f.to_bits());
        let back: f32 = Json.decode(json(&g).as_bytes()).expect("decode");
        prop_assert_eq!(back.to_bits(), g.to_bits());
    }

    #[test]
    fn binary_round_trips(p in arb_person()) {
        let mut out = Vec::new();
        Binary.encode(&p, &mut out).expect("encode");
        prop_assert_eq!(Binary.decode(&out), Ok(p));
    }

    #[test]
    fn raw_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256), text in any::<String>()) {
        let mut out = Vec::new();
        Raw.encode(&bytes, &mut out).expect("encode");
        prop_assert_eq!(Raw.decode(&out), Ok(bytes));
        let mut out = Vec::new();
        Raw.encode(&text, &mut out).expect("encode");
        prop_assert_eq!(Raw.decode(&out), Ok(text));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = Codec::<Person>::decode(&Json, &bytes);
        let _ = Codec::<serde_json::Value>::decode(&Json, &bytes);
        let _ = Codec::<Person>::decode(&Binary, &bytes);
        let _ = Codec::<Vec<String>>::decode(&Binary, &bytes);
        let _ = Codec::<String>::decode(&Raw, &bytes);
    }
}
