//! Scripts: the node model (the simulator's and the in-memory provider's) cannot run Lua, so
//! each script the cache sends has a native twin here, found by the SHA-1 of its source, that
//! does what the Lua does, command by command, through [`ScriptCtx::call`] (Lua's
//! `redis.call`): each command is checked against the cluster state like Valkey checks a
//! script's commands (a key that is not local in a migrating slot fails the script half-way,
//! keeping what it already wrote), and `OOM` applies to the first write.
//!
//! To simulate a new script, add a native function and one [`Registry::register`] line in
//! [`standard`] (or register it on a cluster's `scripts` in a test). A script the registry
//! does not know answers an `ERR` that says so. What a twin runs in (the registry,
//! [`ScriptCtx`]) is [`super::script_host`].

use bytes::Bytes;
use slotcache_core::Value;
use slotcache_core::cache::scripts::{self as core_scripts, sha1_hex};

#[cfg(feature = "search")]
use super::json_scripts;
use super::script_host::{Registry, ScriptCtx, arg};

/// The registry of the cache's scripts (the tag ones, `TAG_WRITE`, `TAG_INVALIDATE`,
/// `TAG_LEAVE`, `TAG_RELIST`, `TAG_TOUCH`: see [`super::tag_scripts`]; `DEL_IF_STALE`, `CAS`,
/// `UNLOCK`, `SET_BY_AGE`) and the JSON ones (`JSON_WRITE`, `JSON_GETDEL`, `DEL_IF_STALE_JSON`,
/// `CAS_JSON`, `JSON_GET_TOUCH`: see [`super::json_scripts`]).
#[must_use]
pub fn standard() -> Registry {
    let mut r = Registry::new();
    super::tag_scripts::register_standard(&mut r);
    r.register("del_if_stale", core_scripts::DEL_IF_STALE.source, del_if_stale);
    r.register("cas", core_scripts::CAS.source, cas);
    r.register("unlock", core_scripts::UNLOCK.source, unlock);
    r.register("set_by_age", core_scripts::SET_BY_AGE.source, set_by_age);
    #[cfg(feature = "search")]
    json_scripts::register_standard(&mut r);
    r
}

/// `DEL_IF_STALE` (core `cache::scripts::DEL_IF_STALE`).
fn del_if_stale(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local v = redis.call('GET', KEYS[1])
    let Value::Bulk(v) = cx.call(&[b"GET", k])? else { return Ok(Value::Nil) };
    // if not v or len(v) < 8 or sub(v, 1, 4) ~= '\0SC\1' then return false
    if v.len() < 8 || &v[..4] != b"\0SC\x01" {
        return Ok(Value::Nil);
    }
    // last = 8 + big-endian u32 of bytes 5..8; if last > len(v) then return false
    let last = 8 + u32::from_be_bytes([v[4], v[5], v[6], v[7]]) as usize;
    if last > v.len() {
        return Ok(Value::Nil);
    }
    let (tag, current) = (arg(argv, 0, "ARGV")?, arg(argv, 1, "ARGV")?);
    match stale_tag(&v[8..last], tag, current) {
        Some(true) => {
            cx.call(&[b"DEL", k])?;
            Ok(Value::Bulk(v.slice(..last)))
        }
        _ => Ok(Value::Nil),
    }
}

/// Walks an envelope header as `DEL_IF_STALE`'s Lua does: `Some(stale)` for the first tag
/// equal to `tag` (stale: its token is not `current`), `None` when the tag is absent or the
/// header is cut short.
fn stale_tag(h: &[u8], tag: &[u8], current: &[u8]) -> Option<bool> {
    let mut p = 0usize;
    let take = |p: &mut usize, n: usize| -> Option<&[u8]> {
        let s = h.get(*p..p.checked_add(n)?)?;
        *p += n;
        Some(s)
    };
    // flags; the refresh time when flags is odd; the transformer ids
    let flags = take(&mut p, 1)?[0];
    if flags % 2 == 1 {
        p += 8;
    }
    let n = usize::from(take(&mut p, 1)?[0]);
    p += n;
    let c = take(&mut p, 2)?;
    for _ in 0..u16::from_be_bytes([c[0], c[1]]) {
        let l = take(&mut p, 2)?;
        let t = take(&mut p, usize::from(u16::from_be_bytes([l[0], l[1]])))?;
        let kl = usize::from(take(&mut p, 1)?[0]);
        let tok = take(&mut p, kl)?;
        if t == tag {
            return Some(tok != current);
        }
    }
    None
}

/// `CAS` (core `cache::scripts::CAS`).
fn cas(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local v = redis.call('GET', KEYS[1])
    let v = match cx.call(&[b"GET", k])? {
        Value::Bulk(b) => Some(b),
        _ => None,
    };
    let expect = arg(argv, 0, "ARGV")?;
    // if ARGV[1] == '' then if v then return 0 end
    // elseif (not v) or redis.sha1hex(v) ~= ARGV[1] then return 0 end
    if expect.is_empty() {
        if v.is_some() {
            return Ok(Value::Int(0));
        }
    } else if v.is_none_or(|v| sha1_hex(&v).as_bytes() != expect.as_ref()) {
        return Ok(Value::Int(0));
    }
    // if ARGV[2] == 'del' then DEL elseif ARGV[4] == '' then SET else SET .. PX ARGV[4]
    if arg(argv, 1, "ARGV")?.as_ref() == b"del" {
        cx.call(&[b"DEL", k])?;
    } else {
        let new = arg(argv, 2, "ARGV")?;
        let px = arg(argv, 3, "ARGV")?;
        if px.is_empty() {
            cx.call(&[b"SET", k, new])?;
        } else {
            cx.call(&[b"SET", k, new, b"PX", px])?;
        }
    }
    Ok(Value::Int(1))
}

/// `UNLOCK` (core `cache::scripts::UNLOCK`).
fn unlock(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
    if cx.call(&[b"GET", k])?.as_bytes() == Some(arg(argv, 0, "ARGV")?) {
        return cx.call(&[b"DEL", k]);
    }
    Ok(Value::Int(0))
}

/// `SET_BY_AGE` (core `cache::scripts::SET_BY_AGE`).
fn set_by_age(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local ttl = ARGV[2]; if EXISTS KEYS[1] == 1 then ttl = ARGV[3] end
    let mut ttl = arg(argv, 1, "ARGV")?;
    if cx.call(&[b"EXISTS", k])? == Value::Int(1) {
        ttl = arg(argv, 2, "ARGV")?;
    }
    let v = arg(argv, 0, "ARGV")?;
    if ttl.is_empty() {
        return cx.call(&[b"SET", k, v]);
    }
    cx.call(&[b"SET", k, v, b"PX", ttl])
}

#[cfg(test)]
mod tests {
    use slotcache_core::Value;
    use slotcache_core::cache::envelope::TagToken;
    use slotcache_core::cache::scripts::{CAS, DEL_IF_STALE, SET_BY_AGE, UNLOCK};
    use slotcache_core::cache::{Entry, TransformId};

    use super::*;

    use crate::one_node::{OneNode as M, b};

    fn stored(tags: &[(&[u8], &[u8])], refresh: Option<u64>, transforms: Vec<TransformId>) -> Vec<u8> {
        let e = Entry {
            payload: Bytes::from_static(b"payload"),
            tags: tags
                .iter()
                .map(|(t, k)| TagToken { tag: Bytes::copy_from_slice(t), token: Bytes::copy_from_slice(k) })
                .collect(),
            refresh_at_ms: refresh,
            transforms,
        };
        e.encode().expect("encode").to_vec()
    }

    /// The contract of `DEL_IF_STALE`: delete iff the entry carries the tag with a token other
    /// than the current one; return the header; leave everything else alone.
    #[test]
    fn del_if_stale_deletes_only_entries_carrying_another_token_of_the_tag() {
        let mut m = M::new();
        let del =
            |m: &mut M, key: &[u8], tag: &[u8], cur: &[u8]| m.eval(DEL_IF_STALE.source, key, &[tag, cur]);
        // Carries the old token of tag a (and b): deleted, header returned without the payload.
        let v = stored(&[(b"b", b"B1"), (b"a", b"OLD")], Some(7), vec![TransformId::Zstd]);
        m.run(&[b"SET", b"k", &v]);
        assert_eq!(del(&mut m, b"k", b"a", b"NEW"), b(&v[..v.len() - b"payload".len()]));
        assert_eq!(m.run(&[b"EXISTS", b"k"]), Value::Int(0));
        // An even older token is stale too (tokens never repeat).
        m.run(&[b"SET", b"k", &stored(&[(b"a", b"OLDER")], None, vec![])]);
        assert!(matches!(del(&mut m, b"k", b"a", b"NEW"), Value::Bulk(_)));
        // Rewritten after the swap (carries the current token): kept.
        m.run(&[b"SET", b"k", &stored(&[(b"a", b"NEW")], None, vec![])]);
        assert_eq!(del(&mut m, b"k", b"a", b"NEW"), Value::Nil);
        // Rewritten without the tag: kept, even if another tag's token looks stale, and even if
        // the tag's name or the token appear inside other fields.
        m.run(&[b"SET", b"k", &stored(&[(b"ab", b"OLD"), (b"x", b"a")], None, vec![])]);
        assert_eq!(del(&mut m, b"k", b"a", b"NEW"), Value::Nil);
        assert_eq!(m.run(&[b"EXISTS", b"k"]), Value::Int(1));
        // Untagged envelope, bare value, absent key, truncated header: kept, nil.
        m.run(&[b"SET", b"k", &stored(&[], Some(1), vec![])]);
        assert_eq!(del(&mut m, b"k", b"a", b"NEW"), Value::Nil);
        m.run(&[b"SET", b"raw", b"a OLD"]);
        assert_eq!(del(&mut m, b"raw", b"a", b"NEW"), Value::Nil);
        assert_eq!(del(&mut m, b"absent", b"a", b"NEW"), Value::Nil);
        let mut cut = stored(&[(b"a", b"OLD")], None, vec![]);
        cut.truncate(12);
        m.run(&[b"SET", b"cut", &cut]);
        assert_eq!(del(&mut m, b"cut", b"a", b"NEW"), Value::Nil);
        let mut lying = stored(&[(b"a", b"OLD")], None, vec![]);
        lying[13] = 0xFF; // the tag's length runs past the header
        m.run(&[b"SET", b"lying", &lying]);
        assert_eq!(del(&mut m, b"lying", b"a", b"NEW"), Value::Nil);
        assert_eq!(m.run(&[b"EXISTS", b"cut"]), Value::Int(1));
    }

    #[test]
    fn cas_applies_only_over_the_bytes_read() {
        let mut m = M::new();
        assert_eq!(m.eval(CAS.source, b"k", &[b"", b"set", b"v1", b""]), Value::Int(1), "absent as expected");
        assert_eq!(m.eval(CAS.source, b"k", &[b"", b"set", b"v2", b""]), Value::Int(0), "no longer absent");
        let h1 = sha1_hex(b"v1");
        assert_eq!(m.eval(CAS.source, b"k", &[h1.as_bytes(), b"set", b"v2", b"100"]), Value::Int(1));
        assert_eq!(m.run(&[b"GET", b"k"]), b(b"v2"));
        assert_eq!(m.run(&[b"PTTL", b"k"]), Value::Int(100));
        assert_eq!(m.eval(CAS.source, b"k", &[h1.as_bytes(), b"del", b"", b""]), Value::Int(0), "stale hash");
        let h2 = sha1_hex(b"v2");
        assert_eq!(m.eval(CAS.source, b"k", &[h2.as_bytes(), b"del", b"", b""]), Value::Int(1));
        assert_eq!(m.run(&[b"EXISTS", b"k"]), Value::Int(0));
    }

    #[test]
    fn set_by_age_gives_updates_their_ttl() {
        let mut m = M::new();
        assert_eq!(m.eval(SET_BY_AGE.source, b"k", &[b"v1", b"1000", b"9000"]), Value::Simple("OK".into()));
        assert_eq!(m.run(&[b"PTTL", b"k"]), Value::Int(1000), "created");
        m.eval(SET_BY_AGE.source, b"k", &[b"v2", b"1000", b"9000"]);
        assert_eq!(m.run(&[b"PTTL", b"k"]), Value::Int(9000), "updated");
        m.eval(SET_BY_AGE.source, b"k", &[b"v3", b"1000", b""]);
        assert_eq!((m.run(&[b"GET", b"k"]), m.run(&[b"PTTL", b"k"])), (b(b"v3"), Value::Int(-1)));
    }

    #[test]
    fn unlock_releases_only_our_lock() {
        let mut m = M::new();
        m.run(&[b"SET", b"lock", b"me", b"PX", b"1000"]);
        assert_eq!(m.eval(UNLOCK.source, b"lock", &[b"you"]), Value::Int(0));
        assert_eq!(m.eval(UNLOCK.source, b"lock", &[b"me"]), Value::Int(1));
        assert_eq!(m.eval(UNLOCK.source, b"lock", &[b"me"]), Value::Int(0));
    }

    #[test]
    fn script_cache_noscript_unknown_scripts_and_crossslot() {
        let mut m = M::new();
        let sha = UNLOCK.sha1().as_bytes();
        let Value::Error(e) = m.run(&[b"EVALSHA", sha, b"1", b"k", b"x"]) else { panic!() };
        assert_eq!(e.as_ref(), b"NOSCRIPT No matching script. Please use EVAL.");
        assert_eq!(m.run(&[b"SCRIPT", b"EXISTS", sha]), Value::Array(vec![Value::Int(0)]));
        assert_eq!(m.run(&[b"SCRIPT", b"LOAD", UNLOCK.source.as_bytes()]), b(sha));
        assert_eq!(m.run(&[b"EVALSHA", sha, b"1", b"k", b"x"]), Value::Int(0));
        assert_eq!(m.run(&[b"SCRIPT", b"FLUSH"]), Value::Simple(Bytes::from_static(b"OK")));
        assert!(
            matches!(m.run(&[b"EVALSHA", sha, b"1", b"k", b"x"]), Value::Error(e) if e.starts_with(b"NOSCRIPT"))
        );
        let Value::Error(e) = m.run(&[b"EVAL", b"return 1", b"0"]) else { panic!() };
        assert!(e.starts_with(b"ERR the node model has no native version"), "{e:?}");
        let Value::Error(e) = m.run(&[b"EVAL", UNLOCK.source.as_bytes(), b"2", b"a", b"b", b"x"]) else {
            panic!()
        };
        assert!(e.starts_with(b"CROSSSLOT"), "{e:?}");
        let Value::Error(e) = m.run(&[b"EVAL", UNLOCK.source.as_bytes(), b"3", b"a"]) else { panic!() };
        assert!(e.starts_with(b"ERR Number of keys can't be greater"), "{e:?}");
        // A registered script that touches a key of another slot fails like Valkey.
        fn touch_other(cx: &mut ScriptCtx<'_>, _: &[Bytes], _: &[Bytes]) -> Result<Value, String> {
            cx.call(&[b"GET", b"a"])?;
            cx.call(&[b"GET", b"b"])
        }
        let src = "return redis.call('GET', 'a') .. redis.call('GET', 'b')";
        m.c.scripts.register("touch_other", src, touch_other);
        let Value::Error(e) = m.run(&[b"EVAL", src.as_bytes(), b"0"]) else { panic!() };
        assert!(
            e.starts_with(b"ERR Script attempted to access keys that do not hash to the same slot"),
            "{e:?}"
        );
    }
}
