use proptest::prelude::*;

use super::base64url::{self, Base64Error};
use super::*;

/// The slot of `content` computed straight from CRC16/XMODEM, bypassing the hash-tag rule.
fn crc_slot(content: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(content) & 16383
}

/// A small glob matcher with the server's semantics (`*`, `?`, `[..]` with `^` and ranges,
/// `\` escapes), written independently of the escaping code it checks.
fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    match pattern.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob_match(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob_match(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some((&c, tail)) = s.split_first() else { return false };
            let (negate, mut p) = match rest.split_first() {
                Some((b'^', r)) => (true, r),
                _ => (false, rest),
            };
            let mut hit = false;
            loop {
                match p {
                    [] => break,
                    [b']', r @ ..] => {
                        p = r;
                        break;
                    }
                    [b'\\', x, r @ ..] => {
                        hit |= *x == c;
                        p = r;
                    }
                    [lo, b'-', hi, r @ ..] if *hi != b']' => {
                        let (lo, hi) = if lo <= hi { (*lo, *hi) } else { (*hi, *lo) };
                        hit |= (lo..=hi).contains(&c);
                        p = r;
                    }
                    [x, r @ ..] => {
                        hit |= *x == c;
                        p = r;
                    }
                }
            }
            hit != negate && glob_match(p, tail)
        }
        Some((b'\\', [x, rest @ ..])) => s.first() == Some(x) && glob_match(rest, &s[1..]),
        Some((&x, rest)) => s.first() == Some(&x) && glob_match(rest, &s[1..]),
    }
}

#[test]
fn reference_example_layout() {
    let ns = Namespace::new("users").unwrap();
    assert_eq!(ns, Namespace::new("users:").unwrap());
    assert_eq!(ns.ns(), b"users:");
    assert_eq!(ns.global_prefix(), b"");
    let data = ns.data_key(b"alice");
    assert_eq!(&data.bytes()[..], b"users:alice");
    assert_eq!(data.slot(), key_slot(b"users:alice"));
    assert_eq!(&ns.tag_key(b"admin").unwrap().bytes()[..], b"tag:{users:admin}");
    assert_eq!(&ns.tag_key(b"eu").unwrap().bytes()[..], b"tag:{users:eu}");
    assert_eq!(&ns.reverse_key(b"alice").bytes()[..], b"keytags:users:alice");
    assert_eq!(&ns.reverse_key_of(b"users:alice").unwrap().bytes()[..], b"keytags:users:alice");
    assert_eq!(ns.scan_pattern(), b"users:*");
    assert_eq!(ns.tag_scan_pattern(), b"tag:{users:*");
    assert_eq!(ns.reverse_scan_pattern(), b"keytags:users:*");
}

#[test]
fn global_prefix_reaches_every_kind_of_key() {
    let ns = Namespace::with_global("myapp", "users").unwrap();
    assert_eq!(ns, Namespace::with_global("myapp:", "users:").unwrap());
    assert_ne!(ns, Namespace::new("users").unwrap());
    assert_eq!(ns.global_prefix(), b"myapp:");
    assert_eq!(&ns.data_key(b"alice").bytes()[..], b"myapp:users:alice");
    let tag = ns.tag_key(b"admin").unwrap();
    assert_eq!(&tag.bytes()[..], b"myapp:tag:{users:admin}");
    assert_eq!(tag.slot().get(), crc_slot(b"users:admin"));
    assert_eq!(&ns.reverse_key(b"alice").bytes()[..], b"myapp:keytags:users:alice");
    let rev = ns.reverse_key_of(b"myapp:users:alice").unwrap();
    assert_eq!(&rev.bytes()[..], b"myapp:keytags:users:alice");
    assert!(ns.reverse_key_of(b"users:alice").is_err());
    for key in [&ns.data_key(b"alice"), &tag, &rev] {
        assert!(glob_match(b"myapp:*", key.bytes()), "{key:?}");
    }
}

#[test]
fn user_key_braces_pick_the_slot_like_the_reference() {
    let ns = Namespace::new("users").unwrap();
    let a = ns.data_key(b"{u1}:profile");
    let b = ns.data_key(b"{u1}:cart");
    assert_eq!(a.slot(), b.slot());
    assert_eq!(a.slot().get(), crc_slot(b"u1"));
    assert_eq!(ns.reverse_key(b"{u1}:profile").slot(), a.slot());
}

#[test]
fn namespace_validation() {
    assert_eq!(Namespace::new(""), Err(NamespaceError::Empty));
    assert_eq!(Namespace::with_global("app", ""), Err(NamespaceError::Empty));
    let long = "x".repeat(MAX_NAME_LEN + 1);
    assert_eq!(
        Namespace::new(&long),
        Err(NamespaceError::TooLong { part: NamePart::Namespace, len: MAX_NAME_LEN + 1 })
    );
    assert!(Namespace::new(&"x".repeat(MAX_NAME_LEN)).is_ok());
    assert_eq!(
        Namespace::with_global(&long, "users"),
        Err(NamespaceError::TooLong { part: NamePart::GlobalPrefix, len: MAX_NAME_LEN + 1 })
    );
    assert_eq!(
        Namespace::new("us\ner"),
        Err(NamespaceError::ControlByte { part: NamePart::Namespace, byte: b'\n', at: 2 })
    );
    assert_eq!(
        Namespace::new("a\u{7f}"),
        Err(NamespaceError::ControlByte { part: NamePart::Namespace, byte: 0x7f, at: 1 })
    );
    assert_eq!(Namespace::new("{users}"), Err(NamespaceError::Brace { part: NamePart::Namespace, at: 0 }));
    assert_eq!(
        Namespace::with_global("a}", "users"),
        Err(NamespaceError::Brace { part: NamePart::GlobalPrefix, at: 1 })
    );
    assert!(matches!(Namespace::new("tag"), Err(NamespaceError::Reserved(_))));
    assert!(matches!(Namespace::new("tag:"), Err(NamespaceError::Reserved(_))));
    assert!(matches!(Namespace::new("keytags:users"), Err(NamespaceError::Reserved(_))));
    assert!(matches!(Namespace::with_global("g", "keytags"), Err(NamespaceError::Reserved(_))));
    // Not reserved: cannot collide (no `{` in a namespace, so never `tag:{`).
    assert!(Namespace::new("tags").is_ok());
    assert!(Namespace::new("tag:x").is_ok());
    // Glob characters and UTF-8 are fine: patterns are escaped.
    let star = Namespace::new("a*b?[c]\\").unwrap();
    assert_eq!(star.scan_pattern(), b"a\\*b\\?\\[c\\]\\\\:*");
    assert!(Namespace::new("benutzer-ü").is_ok());
}

#[test]
fn tag_with_closing_brace_is_rejected_and_open_brace_allowed() {
    let ns = Namespace::new("users").unwrap();
    assert_eq!(ns.tag_key(b"a}b"), Err(TagError::ClosingBrace { at: 1 }));
    assert_eq!(ns.tag_key(b"}"), Err(TagError::ClosingBrace { at: 0 }));
    let open = ns.tag_key(b"a{b").unwrap();
    assert_eq!(&open.bytes()[..], b"tag:{users:a{b}");
    assert_eq!(open.slot().get(), crc_slot(b"users:a{b"));
    let empty = ns.tag_key(b"").unwrap();
    assert_eq!(&empty.bytes()[..], b"tag:{users:}");
    assert_eq!(empty.slot().get(), crc_slot(b"users:"));
}

#[test]
fn decoding_requires_the_prefix() {
    let ns = Namespace::new("users").unwrap();
    assert_eq!(ns.user_key(b"users:alice").unwrap(), b"alice");
    assert_eq!(ns.user_key(b"users:").unwrap(), b"");
    let err = ns.user_key(b"user:alice").unwrap_err();
    assert!(
        matches!(&err, KeyError::MissingPrefix { key, prefix } if key == "user:alice" && prefix == "users:")
    );
    assert!(err.to_string().contains("missing expected namespace prefix"));
    assert!(matches!(ns.decode_key(&StringKeys, b"orders:1"), Err(KeyError::MissingPrefix { .. })));
    assert!(matches!(
        ns.decode_key(&StringKeys, b"users:\xff"),
        Err(KeyError::Codec(KeyCodecError::NotUtf8))
    ));
}

#[test]
fn decimal_keys_are_canonical() {
    let d = DecimalKeys::<i64>::new();
    let ns = Namespace::new("n").unwrap();
    assert_eq!(&ns.encode_key(&d, &42).unwrap().bytes()[..], b"n:42");
    assert_eq!(&ns.encode_key(&d, &-7).unwrap().bytes()[..], b"n:-7");
    assert_eq!(d.decode(b"0").unwrap(), 0);
    assert_eq!(d.decode(b"-9223372036854775808").unwrap(), i64::MIN);
    for bad in [&b""[..], b"-", b"+1", b"042", b"-0", b"-01", b" 1", b"1 ", b"1.0", b"99999999999999999999"] {
        assert!(matches!(d.decode(bad), Err(KeyCodecError::NotDecimal(_))), "{bad:?}");
    }
    assert!(matches!(DecimalKeys::<u8>::new().decode(b"256"), Err(KeyCodecError::NotDecimal(_))));
    assert!(matches!(DecimalKeys::<u32>::new().decode(b"-1"), Err(KeyCodecError::NotDecimal(_))));
}

#[test]
fn base64url_vectors() {
    // RFC 4648 §10 vectors, without padding.
    let vectors: [(&[u8], &[u8]); 7] = [
        (b"", b""),
        (b"f", b"Zg"),
        (b"fo", b"Zm8"),
        (b"foo", b"Zm9v"),
        (b"foob", b"Zm9vYg"),
        (b"fooba", b"Zm9vYmE"),
        (b"foobar", b"Zm9vYmFy"),
    ];
    for (plain, text) in vectors {
        assert_eq!(base64url::encode(plain), text);
        assert_eq!(base64url::decode(text).unwrap(), plain);
    }
    // The URL-safe alphabet: standard base64 of fb ff is `+/8=`.
    assert_eq!(base64url::encode(&[0xfb, 0xff]), b"-_8");
    assert_eq!(base64url::decode(b"Zg=="), Err(Base64Error::InvalidByte { at: 2, byte: b'=' }));
    assert_eq!(base64url::decode(b"+/8"), Err(Base64Error::InvalidByte { at: 0, byte: b'+' }));
    assert_eq!(base64url::decode(b"Zm9vY"), Err(Base64Error::InvalidLength(5)));
    assert_eq!(base64url::decode(b"Zh"), Err(Base64Error::NonCanonical));
    assert_eq!(base64url::decode(b"Zm9"), Err(Base64Error::NonCanonical));
}

/// A marshaller for a composite key, to exercise [`Base64Keys`].
struct PairMarshal;

#[derive(Debug)]
struct Truncated;

impl core::fmt::Display for Truncated {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("truncated")
    }
}

impl std::error::Error for Truncated {}

impl KeyMarshal for PairMarshal {
    type Key = (u32, Vec<u8>);

    fn marshal(&self, key: &Self::Key, out: &mut Vec<u8>) -> Result<(), BoxError> {
        out.extend_from_slice(&key.0.to_be_bytes());
        out.extend_from_slice(&key.1);
        Ok(())
    }

    fn unmarshal(&self, bytes: &[u8]) -> Result<Self::Key, BoxError> {
        let (id, rest) = bytes.split_first_chunk::<4>().ok_or(Truncated)?;
        Ok((u32::from_be_bytes(*id), rest.to_vec()))
    }
}

#[test]
fn base64_keys_use_the_url_alphabet_and_report_marshal_errors() {
    let ns = Namespace::new("n").unwrap();
    let enc = Base64Keys(PairMarshal);
    let key = ns.encode_key(&enc, &(0xfbff_fbff, b"{x}".to_vec())).unwrap();
    assert_eq!(&key.bytes()[..], b"n:-__7_3t4fQ");
    assert_eq!(ns.decode_key(&enc, key.bytes()).unwrap(), (0xfbff_fbff, b"{x}".to_vec()));
    assert!(matches!(ns.decode_key(&enc, b"n:AAA"), Err(KeyError::Codec(KeyCodecError::Unmarshal(_)))));
    assert!(matches!(ns.decode_key(&enc, b"n:A=A"), Err(KeyError::Codec(KeyCodecError::Base64(_)))));
}

#[test]
fn registry_refuses_overlapping_namespaces() {
    let mut reg = NamespaceRegistry::new();
    let user = Namespace::new("user").unwrap();
    let admin = Namespace::new("user:admin").unwrap();
    assert_eq!(reg.register(&user), Ok(Registered::New));
    assert_eq!(reg.register(&Namespace::new("user:").unwrap()), Ok(Registered::Existing));
    assert!(matches!(reg.register(&admin), Err(RegistryError::Overlap { .. })));
    assert_eq!(reg.len(), 1);
    // `users:` does not start with `user:`.
    assert_eq!(reg.register(&Namespace::new("users").unwrap()), Ok(Registered::New));

    // The other order: the longer one first.
    let mut reg = NamespaceRegistry::new();
    reg.register(&admin).unwrap();
    let err = reg.register(&user).unwrap_err();
    assert_eq!(err, RegistryError::Overlap { new: "user:".to_owned(), existing: "user:admin:".to_owned() });
    assert!(reg.unregister(&admin));
    assert_eq!(reg.register(&user), Ok(Registered::New));
    assert!(reg.contains(&user) && !reg.is_empty());
}

#[test]
fn registry_checks_across_global_prefixes() {
    let mut reg = NamespaceRegistry::new();
    reg.register(&Namespace::with_global("app", "users").unwrap()).unwrap();
    // Data keys `app:tag:...` would alias `app:tag:{users:...}`.
    assert!(reg.register(&Namespace::new("app:tag").unwrap()).is_err());
    // Data keys `app:...` would include every key under the global prefix `app:`.
    assert!(reg.register(&Namespace::new("app").unwrap()).is_err());
    // Reverse keys `app:keytags:users:...` are data keys of `app:keytags:`.
    assert!(reg.register(&Namespace::new("app:keytags").unwrap()).is_err());
    assert_eq!(reg.register(&Namespace::with_global("other", "users").unwrap()), Ok(Registered::New));
    assert_eq!(reg.register(&Namespace::new("users").unwrap()), Ok(Registered::New));
    assert_eq!(reg.iter().count(), 3);
}

fn name() -> impl Strategy<Value = String> {
    // Valid names, rich in characters that matter: glob specials, `:`, `{`-free.
    "[a-c:*?\\[\\]\\\\ü-]{1,8}"
}

fn global() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-c:*]{1,4}"]
}

fn bytes_with_specials() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b'*'),
            Just(b'?'),
            Just(b'['),
            Just(b']'),
            Just(b'\\'),
            Just(b'^'),
            Just(b'-'),
            Just(b'{'),
            Just(b'a'),
            Just(b'b'),
            any::<u8>()
        ],
        0..10,
    )
}

proptest! {
    #[test]
    fn tag_keys_of_one_tag_share_one_slot(g in global(), n in name(), tag in bytes_with_specials()) {
        prop_assume!(!tag.contains(&b'}'));
        let Ok(ns) = Namespace::with_global(&g, &n) else { return Ok(()) };
        let first = ns.tag_key(&tag).unwrap();
        let again = Namespace::with_global(&g, &n).unwrap().tag_key(&tag).unwrap();
        prop_assert_eq!(&first, &again);
        let mut content = ns.ns().to_vec();
        content.extend_from_slice(&tag);
        prop_assert_eq!(first.slot().get(), crc_slot(&content));
        prop_assert_eq!(first.slot(), key_slot(first.bytes()));
    }

    #[test]
    fn tags_with_closing_brace_never_encode(n in name(), tag in bytes_with_specials(), at in 0usize..10) {
        let ns = Namespace::new(&n).unwrap();
        let mut tag = tag;
        let at = at.min(tag.len());
        tag.insert(at, b'}');
        let first = tag.iter().position(|&b| b == b'}').unwrap();
        prop_assert_eq!(ns.tag_key(&tag), Err(TagError::ClosingBrace { at: first }));
    }

    #[test]
    fn escaped_prefix_matches_only_keys_with_that_prefix(
        lit in bytes_with_specials(),
        cut in 0usize..12,
        flip in any::<Option<(usize, u8)>>(),
        tail in bytes_with_specials(),
    ) {
        // Keys near the literal: a prefix of it, it with one byte changed, plus any tail.
        let mut key = lit[..cut.min(lit.len())].to_vec();
        if cut >= lit.len() {
            key = lit.clone();
        }
        if let Some((i, b)) = flip {
            if !key.is_empty() {
                let i = i % key.len();
                key[i] = b;
            }
        }
        key.extend_from_slice(&tail);
        prop_assert_eq!(glob_match(&prefix_pattern(&lit), &key), key.starts_with(&lit));
        prop_assert_eq!(glob_match(&escape_glob(&lit), &key), key == lit);
        prop_assert!(glob_match(&prefix_pattern(&lit), &lit));
    }

    #[test]
    fn registered_namespaces_never_see_each_other(names in proptest::collection::vec((global(), name()), 1..8)) {
        let mut reg = NamespaceRegistry::new();
        for (g, n) in &names {
            if let Ok(ns) = Namespace::with_global(g, n) {
                let _ = reg.register(&ns);
            }
        }
        let all: Vec<&Namespace> = reg.iter().collect();
        for a in &all {
            for b in &all {
                if a == b {
                    continue;
                }
                let pats = [a.scan_pattern(), a.tag_scan_pattern(), a.reverse_scan_pattern()];
                let keys = [b.data_key(b"k"), b.tag_key(b"t").unwrap(), b.reverse_key(b"k")];
                for pat in &pats {
                    for key in &keys {
                        prop_assert!(!glob_match(pat, key.bytes()), "{:?} matches {:?}", pat, key);
                    }
                }
            }
        }
    }

    #[test]
    fn base64url_round_trips(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let text = base64url::encode(&data);
        prop_assert!(text.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'));
        prop_assert_eq!(text.len(), (data.len() * 4).div_ceil(3));
        prop_assert_eq!(base64url::decode(&text).unwrap(), data);
    }

    #[test]
    fn base64url_decode_never_panics(text in proptest::collection::vec(any::<u8>(), 0..32)) {
        if let Ok(data) = base64url::decode(&text) {
            prop_assert_eq!(base64url::encode(&data), text);
        }
    }

    #[test]
    fn typed_keys_round_trip(g in global(), n in name(), s in ".{0,12}", i in any::<i64>(), raw in proptest::collection::vec(any::<u8>(), 0..16)) {
        let ns = Namespace::with_global(&g, &n).unwrap();
        let k = ns.encode_key(&StringKeys, &s).unwrap();
        prop_assert_eq!(&ns.decode_key(&StringKeys, k.bytes()).unwrap(), &s);
        let k = ns.encode_key(&DecimalKeys::<i64>::new(), &i).unwrap();
        prop_assert_eq!(ns.decode_key(&DecimalKeys::<i64>::new(), k.bytes()).unwrap(), i);
        let k = ns.encode_key(&Base64Keys(PairMarshal), &(7, raw.clone())).unwrap();
        let uk = &k.bytes()[ns.data_prefix().len()..];
        let plain = !uk.iter().any(|b| is_glob_special(*b) || *b == b'{');
        prop_assert!(plain, "{:?}", uk);
        prop_assert_eq!(ns.decode_key(&Base64Keys(PairMarshal), k.bytes()).unwrap(), (7, raw));
        let b = Bytes::from(s.into_bytes());
        let k = ns.encode_key(&BytesKeys, &b).unwrap();
        prop_assert_eq!(ns.decode_key(&BytesKeys, k.bytes()).unwrap(), b);
    }

    #[test]
    fn name_normalisation_is_idempotent(g in global(), n in name()) {
        let a = Namespace::with_global(&g, &n);
        let b = Namespace::with_global(&g, &format!("{n}:"));
        if let (Ok(a), Ok(b)) = (&a, &b) {
            if !n.ends_with(':') {
                prop_assert_eq!(a, b);
            }
            prop_assert!(a.ns().ends_with(b":"));
            prop_assert!(a.data_prefix().starts_with(a.global_prefix()));
        }
    }
}
