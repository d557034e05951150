use bytes::Bytes;
use proptest::prelude::*;

use super::table::{COMMANDS, SUBCOMMANDS};
use super::*;
use crate::resp::Value;

fn args(parts: &[&str]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect()
}

fn keys_of(parts: &[&str]) -> Result<Vec<(usize, Vec<u8>)>, CommandError> {
    let a = args(parts);
    let info = lookup(&a)?;
    Ok(info.keys(&a)?.map(|(i, k)| (i, k.to_vec())).collect())
}

fn k(i: usize, s: &str) -> (usize, Vec<u8>) {
    (i, s.as_bytes().to_vec())
}

#[test]
fn tables_are_sorted_and_consistent() {
    for table in [COMMANDS, SUBCOMMANDS] {
        for pair in table.windows(2) {
            assert!(
                pair[0].name.as_bytes() < pair[1].name.as_bytes(),
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
    }
    for e in COMMANDS.iter().chain(SUBCOMMANDS) {
        assert_eq!(e.name, e.name.to_ascii_uppercase());
        assert!(e.name.len() <= 32);
        let min_args = usize::from(e.arity.unsigned_abs());
        match e.keys {
            KeySpec::Index(i) => assert!(min_args > usize::from(i), "{}", e.name),
            KeySpec::AllFrom(f) | KeySpec::Pairs(f) | KeySpec::NumKeys(f) => {
                assert!(min_args > usize::from(f), "{}", e.name);
            }
            KeySpec::AllFromButLast(f) => {
                assert!(min_args > usize::from(f) + 1, "{}", e.name);
            }
            _ => {}
        }
        if e.split.is_some() {
            assert!(matches!(e.keys, KeySpec::AllFrom(_) | KeySpec::AllFromButLast(_) | KeySpec::Pairs(_)));
            assert_eq!(e.routing, Routing::BySlot, "{}", e.name);
        }
        if matches!(e.routing, Routing::AllPrimaries(_) | Routing::AllNodes(_)) {
            assert_eq!(e.keys, KeySpec::None, "{} fans out but has keys", e.name);
        }
        if e.access == Access::ReadOnly && e.routing != Routing::Connection {
            assert_eq!(e.idempotency, Idempotency::Idempotent, "{} reads but is not idempotent", e.name);
        }
    }
    for sub in SUBCOMMANDS {
        let (container, _) = sub.name.split_once(' ').unwrap();
        assert!(find(container.as_bytes()).unwrap().is_container(), "{}", sub.name);
    }
    for top in COMMANDS.iter().filter(|c| c.container) {
        let prefix = format!("{} ", top.name);
        assert!(SUBCOMMANDS.iter().any(|s| s.name.starts_with(&prefix)), "{}", top.name);
    }
}

#[test]
fn cache_commands_are_covered() {
    let names = "GET SET GETEX GETDEL SETNX PSETEX MGET MSET DEL UNLINK EXISTS TOUCH EXPIRE PEXPIRE PTTL \
                 TTL PERSIST INCR INCRBY DECR APPEND STRLEN TYPE SADD SREM SMEMBERS SCARD SISMEMBER SSCAN \
                 HSET HGET HGETALL HDEL HMGET JSON.SET JSON.GET JSON.DEL JSON.MGET EVAL EVALSHA EVAL_RO \
                 EVALSHA_RO FCALL FCALL_RO SCRIPT WATCH UNWATCH MULTI EXEC PING ECHO INFO CLUSTER READONLY \
                 READWRITE ASKING HELLO AUTH CLIENT SCAN DBSIZE FLUSHDB FLUSHALL KEYS WAIT OBJECT MEMORY";
    for name in names.split_whitespace() {
        let e = find(name.as_bytes()).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(e.name(), name);
    }
}

#[test]
fn lookup_is_case_insensitive_and_total() {
    let get = info(b"GET");
    assert!(core::ptr::eq(get, info(b"get")));
    assert!(core::ptr::eq(get, info(b"GeT")));
    assert!(get.is_read_only());
    assert!(core::ptr::eq(info(b"json.mget"), find(b"JSON.MGET").unwrap()));
    assert!(core::ptr::eq(info(b"NOSUCHCOMMAND"), &UNKNOWN));
    assert!(core::ptr::eq(info(&[b'G'; 100]), &UNKNOWN));
    assert!(core::ptr::eq(info(b"g\xffet"), &UNKNOWN));
    assert!(core::ptr::eq(info(b""), &UNKNOWN));
    assert_eq!(lookup(&[]), Err(CommandError::Empty));
    let sub = lookup(&args(&["script", "Load", "return 1"])).unwrap();
    assert_eq!(sub.name(), "SCRIPT LOAD");
    assert_eq!(sub.routing(), Routing::AllNodes(ResponsePolicy::AllSucceeded));
    let container = lookup(&args(&["CLUSTER", "FAILOVER"])).unwrap();
    assert_eq!(container.name(), "CLUSTER");
    assert_eq!((container.access(), container.idempotency()), (Access::Write, Idempotency::NonIdempotent));
    assert_eq!(lookup(&args(&["SCRIPT"])).unwrap().name(), "SCRIPT");
    assert_eq!(lookup(&args(&["GET", "ENCODING"])).unwrap().name(), "GET");
}

#[test]
fn unknown_commands_are_conservative() {
    let u = info(b"MODULE.THING");
    assert_eq!(u.access(), Access::Write);
    assert_eq!(u.idempotency(), Idempotency::NonIdempotent);
    assert_eq!(u.routing(), Routing::BySlot);
    assert_eq!(keys_of(&["MODULE.THING", "k", "v"]).unwrap(), vec![k(1, "k")]);
    assert_eq!(keys_of(&["MODULE.THING"]).unwrap(), vec![]);
}

#[test]
fn key_positions() {
    assert_eq!(keys_of(&["GET", "a"]).unwrap(), vec![k(1, "a")]);
    assert_eq!(keys_of(&["mget", "a", "b", "c"]).unwrap(), vec![k(1, "a"), k(2, "b"), k(3, "c")]);
    assert_eq!(keys_of(&["MSET", "a", "1", "b", "2"]).unwrap(), vec![k(1, "a"), k(3, "b")]);
    assert_eq!(keys_of(&["JSON.MGET", "a", "b", "$"]).unwrap(), vec![k(1, "a"), k(2, "b")]);
    assert_eq!(keys_of(&["EVAL", "s", "2", "k1", "k2", "x"]).unwrap(), vec![k(3, "k1"), k(4, "k2")]);
    assert_eq!(keys_of(&["FCALL_RO", "f", "0", "x"]).unwrap(), vec![]);
    assert_eq!(keys_of(&["OBJECT", "ENCODING", "k"]).unwrap(), vec![k(2, "k")]);
    assert_eq!(keys_of(&["MEMORY", "USAGE", "k", "SAMPLES", "5"]).unwrap(), vec![k(2, "k")]);
    assert_eq!(keys_of(&["PING"]).unwrap(), vec![]);
    assert_eq!(keys_of(&["WATCH", "a", "b"]).unwrap(), vec![k(1, "a"), k(2, "b")]);
}

#[test]
fn malformed_commands_are_typed_errors() {
    assert_eq!(keys_of(&["GET"]), Err(CommandError::WrongArity { name: "GET", got: 1, arity: 2 }));
    assert_eq!(keys_of(&["GET", "a", "b"]), Err(CommandError::WrongArity { name: "GET", got: 3, arity: 2 }));
    assert_eq!(keys_of(&["MGET"]), Err(CommandError::WrongArity { name: "MGET", got: 1, arity: -2 }));
    assert_eq!(keys_of(&["MSET", "a", "1", "b"]), Err(CommandError::UnpairedArguments { name: "MSET" }));
    for n in ["3", "-1", "abc", "", "+1", "99999999999999999999"] {
        assert_eq!(
            keys_of(&["EVAL", "s", n, "k1", "k2"]),
            Err(CommandError::BadNumKeys { name: "EVAL" }),
            "numkeys {n:?}"
        );
    }
    assert_eq!(
        keys_of(&["JSON.MGET", "a"]),
        Err(CommandError::WrongArity { name: "JSON.MGET", got: 2, arity: -3 })
    );
    assert!(info(b"GET").keys(&[]).is_err());
}

#[test]
fn set_options_change_idempotency() {
    let set = info(b"SET");
    assert_eq!(set.idempotency_of(&args(&["SET", "k", "v", "PX", "100"])), Idempotency::Idempotent);
    assert_eq!(set.idempotency_of(&args(&["SET", "k", "v", "nx"])), Idempotency::NonIdempotent);
    assert_eq!(set.idempotency_of(&args(&["SET", "k", "v", "XX", "GET"])), Idempotency::NonIdempotent);
    // A value that happens to spell NX is not an option.
    assert_eq!(set.idempotency_of(&args(&["SET", "k", "NX"])), Idempotency::Idempotent);
    assert_eq!(info(b"INCR").idempotency_of(&args(&["INCR", "k"])), Idempotency::NonIdempotent);
}

#[test]
fn fan_out_routing() {
    let p = |n: &str| info(n.as_bytes()).routing();
    assert_eq!(p("DBSIZE"), Routing::AllPrimaries(ResponsePolicy::SumIntegers));
    assert_eq!(p("FLUSHDB"), Routing::AllPrimaries(ResponsePolicy::AllOk));
    assert_eq!(p("KEYS"), Routing::AllPrimaries(ResponsePolicy::Concatenate));
    assert_eq!(p("SCAN"), Routing::AllPrimaries(ResponsePolicy::PerNode));
    assert_eq!(p("FT.SEARCH"), Routing::AllPrimaries(ResponsePolicy::PerNode));
    assert_eq!(p("FT.CREATE"), Routing::AllPrimaries(ResponsePolicy::AllOk));
    assert_eq!(p("MULTI"), Routing::Connection);
    assert_eq!(p("PING"), Routing::Any);
    assert_eq!(info(b"MGET").split_policy(), Some(ResponsePolicy::InOrder));
    assert_eq!(info(b"MSET").split_policy(), Some(ResponsePolicy::AllOk));
    assert_eq!(info(b"MSETNX").split_policy(), None);
    let exists = lookup(&args(&["SCRIPT", "EXISTS", "a"])).unwrap();
    assert_eq!(exists.routing(), Routing::AllNodes(ResponsePolicy::LogicalAnd));
}

#[test]
fn single_slot_check() {
    let mget = info(b"MGET");
    assert_eq!(mget.slot(&args(&["MGET", "{u}a", "{u}b"])).unwrap(), Some(key_slot(b"u")));
    // `foo` and `bar` are in slots 12182 and 5061.
    assert_eq!(mget.slot(&args(&["MGET", "foo", "bar"])), Err(CommandError::CrossSlot { name: "MGET" }));
    assert_eq!(info(b"PING").slot(&args(&["PING"])).unwrap(), None);
    assert!(matches!(
        split_by_slot(info(b"MSETNX"), &args(&["MSETNX", "a", "1"])),
        Err(CommandError::NotSplittable { .. })
    ));
}

fn ok() -> Value {
    Value::Simple(Bytes::from_static(b"OK"))
}

fn err(text: &'static str) -> Value {
    Value::Error(Bytes::from_static(text.as_bytes()))
}

#[test]
fn merge_policies() {
    use ResponsePolicy as P;
    assert_eq!(merge(P::SumIntegers, vec![Value::Int(2), Value::Int(3)]), Ok(Value::Int(5)));
    assert_eq!(merge(P::SumIntegers, vec![]), Ok(Value::Int(0)));
    assert_eq!(merge(P::SumIntegers, vec![Value::Int(i64::MAX), Value::Int(1)]), Err(MergeError::Overflow));
    assert_eq!(merge(P::SumIntegers, vec![ok()]), Err(MergeError::UnexpectedReply { index: 0 }));
    assert_eq!(merge(P::AllOk, vec![ok(), ok()]), Ok(ok()));
    assert!(matches!(merge(P::AllOk, vec![ok(), err("OOM x")]), Err(MergeError::Server { index: 1, .. })));
    assert_eq!(
        merge(P::Concatenate, vec![Value::Array(vec![Value::Int(1)]), Value::Array(vec![Value::Int(2)])]),
        Ok(Value::Array(vec![Value::Int(1), Value::Int(2)]))
    );
    assert_eq!(
        merge(P::PerNode, vec![err("LOADING x"), ok()]),
        Ok(Value::Array(vec![err("LOADING x"), ok()]))
    );
    assert_eq!(merge(P::FirstNonError, vec![err("LOADING x"), Value::Int(7)]), Ok(Value::Int(7)));
    assert!(matches!(
        merge(P::FirstNonError, vec![err("LOADING x")]),
        Err(MergeError::Server { index: 0, .. })
    ));
    assert_eq!(merge(P::FirstNonError, vec![]), Err(MergeError::NoReplies));
    assert_eq!(merge(P::AllSucceeded, vec![Value::Int(1), Value::Int(1)]), Ok(Value::Int(1)));
    assert_eq!(merge(P::AllSucceeded, vec![]), Err(MergeError::NoReplies));
    let arr = |v: &[i64]| Value::Array(v.iter().copied().map(Value::Int).collect());
    assert_eq!(merge(P::LogicalAnd, vec![arr(&[1, 1, 0]), arr(&[1, 0, 0])]), Ok(arr(&[1, 0, 0])));
    assert_eq!(
        merge(P::LogicalAnd, vec![arr(&[1]), arr(&[1, 0])]),
        Err(MergeError::UnexpectedReply { index: 1 })
    );
    assert_eq!(merge(P::LogicalAnd, vec![arr(&[2])]), Err(MergeError::UnexpectedReply { index: 0 }));
    let groups = split_by_slot(info(b"MGET"), &args(&["MGET", "foo", "bar"])).unwrap();
    assert_eq!(reassemble(P::InOrder, &groups, vec![]), Err(MergeError::ReplyCount { expected: 2, got: 0 }));
    assert_eq!(
        reassemble(P::InOrder, &groups, vec![arr(&[1]), arr(&[1, 2])]),
        Err(MergeError::UnexpectedReply { index: 1 })
    );
}

/// Keys that often share a slot (hash tags) mixed with arbitrary ones.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        ("[abc]", "[a-z]{0,3}").prop_map(|(t, s)| format!("{{{t}}}{s}").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

/// What a fake server answers for a key: some bytes derived from it.
fn stored(key: &[u8]) -> Value {
    if key.len() % 3 == 0 {
        Value::Nil
    } else {
        Value::Bulk(Bytes::from(key.iter().rev().copied().collect::<Vec<u8>>()))
    }
}

proptest! {
    #[test]
    fn split_and_reassemble_preserve_order_and_content(
        keys in proptest::collection::vec(key(), 1..24),
        which in 0usize..7,
    ) {
        let name = ["MGET", "DEL", "UNLINK", "EXISTS", "TOUCH", "MSET", "JSON.MGET"][which];
        let info = info(name.as_bytes());
        let mut argv = vec![Bytes::from(name)];
        for (i, key) in keys.iter().enumerate() {
            argv.push(Bytes::from(key.clone()));
            if name == "MSET" {
                argv.push(Bytes::from(format!("v{i}")));
            }
        }
        if name == "JSON.MGET" {
            argv.push(Bytes::from_static(b"$"));
        }
        let groups = split_by_slot(info, &argv).unwrap();
        // Every key exactly once, in a group of its own slot, positions ascending.
        let mut seen: Vec<usize> = groups.iter().flat_map(|g| g.positions.iter().copied()).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..keys.len()).collect::<Vec<_>>());
        let mut slots: Vec<_> = groups.iter().map(|g| g.slot).collect();
        slots.dedup();
        slots.sort();
        slots.dedup();
        prop_assert_eq!(slots.len(), groups.len());
        let mut replies = Vec::new();
        let mut rebuilt_pairs = Vec::new();
        for g in &groups {
            prop_assert!(g.positions.windows(2).all(|w| w[0] < w[1]));
            let sub = sub_command(info, &argv, g);
            prop_assert_eq!(&sub[0], &argv[0]);
            prop_assert_eq!(info.slot(&sub).unwrap(), Some(g.slot));
            let sub_keys: Vec<(usize, Vec<u8>)> = info.keys(&sub).unwrap().map(|(i, k)| (i, k.to_vec())).collect();
            prop_assert_eq!(sub_keys.len(), g.positions.len());
            for ((sub_i, k), &pos) in sub_keys.iter().zip(&g.positions) {
                prop_assert_eq!(k, &keys[pos]);
                if name == "MSET" {
                    rebuilt_pairs.push((pos, k.clone(), sub[sub_i + 1].clone()));
                }
            }
            if name == "JSON.MGET" {
                prop_assert_eq!(&sub[sub.len() - 1][..], b"$");
            }
            replies.push(match name {
                "MGET" | "JSON.MGET" => Value::Array(sub_keys.iter().map(|(_, k)| stored(k)).collect()),
                "MSET" => ok(),
                _ => Value::Int(sub_keys.iter().filter(|(_, k)| !matches!(stored(k), Value::Nil)).count() as i64),
            });
        }
        let merged = reassemble(info.split_policy().unwrap(), &groups, replies).unwrap();
        match name {
            "MGET" | "JSON.MGET" => {
                prop_assert_eq!(merged, Value::Array(keys.iter().map(|k| stored(k)).collect()));
            }
            "MSET" => {
                prop_assert_eq!(merged, ok());
                rebuilt_pairs.sort_by_key(|(pos, _, _)| *pos);
                for (pos, key, value) in rebuilt_pairs {
                    prop_assert_eq!(&key, &keys[pos]);
                    prop_assert_eq!(value, Bytes::from(format!("v{pos}")));
                }
            }
            _ => {
                let present = keys.iter().filter(|k| !matches!(stored(k), Value::Nil)).count() as i64;
                prop_assert_eq!(merged, Value::Int(present));
            }
        }
    }

    #[test]
    fn keys_never_panic(entry in 0usize..(COMMANDS.len() + SUBCOMMANDS.len() + 1), raw in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4), 0..8)) {
        let info = COMMANDS.iter().chain(SUBCOMMANDS).nth(entry).unwrap_or(&UNKNOWN);
        let argv: Vec<Bytes> = raw.into_iter().map(Bytes::from).collect();
        if let Ok(keys) = info.keys(&argv) {
            let n = keys.len();
            let got: Vec<usize> = keys.map(|(i, _)| i).collect();
            prop_assert_eq!(got.len(), n);
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(got.iter().all(|&i| i >= 1 && i < argv.len()));
        }
        let _ = lookup(&argv);
        let _ = info.slot(&argv);
        if info.split_policy().is_some() {
            if let Ok(groups) = split_by_slot(info, &argv) {
                for g in &groups {
                    let _ = sub_command(info, &argv, g);
                }
            }
        }
    }
}
