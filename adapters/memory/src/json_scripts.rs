//! Native twins of the cache's JSON Lua scripts (`slotcache_core::cache::search::doc`), run
//! command by command through [`ScriptCtx::call`] like the Lua's `redis.call`s, and the twin of
//! `DEL_IF_STALE_JSON` (registered by the core's source).

use bytes::Bytes;
use serde_json::Value as Json;
use slotcache_core::Value;
use slotcache_core::cache::scripts::sha1_hex;
use slotcache_core::cache::search::doc::{self, CAS_JSON, JSON_GETDEL, JSON_WRITE, RESERVED_FIELD};

use super::script_host::{Registry, ScriptCtx};

/// The registry name of the `DEL_IF_STALE_JSON` twin.
pub const DEL_IF_STALE_JSON: &str = "del_if_stale_json";

/// Registers the twins of `JSON_WRITE`, `JSON_GETDEL`, `DEL_IF_STALE_JSON` and `CAS_JSON`
/// (part of the standard registry, `scripts::standard`).
pub fn register_standard(r: &mut Registry) {
    r.register("json_write", JSON_WRITE.source, json_write);
    r.register("json_getdel", JSON_GETDEL.source, json_getdel);
    register_del_if_stale_json(r, doc::DEL_IF_STALE_JSON.source);
    r.register("cas_json", CAS_JSON.source, cas_json);
    r.register("json_get_touch", doc::JSON_GET_TOUCH.source, json_get_touch);
}

/// `JSON_GET_TOUCH`: `JSON.GET k $`, and `PEXPIRE k ARGV[1]` when there was a document.
fn json_get_touch(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    let v = cx.call(&[b"JSON.GET", k, b"$"])?;
    if !v.is_nil() {
        cx.call(&[b"PEXPIRE", k, arg(argv, 0, "ARGV")?])?;
    }
    Ok(v)
}

/// Registers the `DEL_IF_STALE_JSON` twin under the Lua `source`; returns its SHA-1.
pub fn register_del_if_stale_json(r: &mut Registry, source: &str) -> String {
    r.register(DEL_IF_STALE_JSON, source, del_if_stale_json)
}

fn arg<'a>(v: &'a [Bytes], i: usize, what: &str) -> Result<&'a Bytes, String> {
    v.get(i).ok_or_else(|| format!("ERR user_script:1: attempt to use a nil value ({what}[{}])", i + 1))
}

/// `redis.call('TYPE', k)['ok']`.
fn type_of(cx: &mut ScriptCtx<'_>, k: &[u8]) -> Result<Bytes, String> {
    match cx.call(&[b"TYPE", k])? {
        Value::Simple(t) | Value::Bulk(t) => Ok(t),
        other => Err(format!("ERR unexpected TYPE reply {other:?}")),
    }
}

/// A bulk reply as Lua sees it: a string, or `false` (nil).
fn bulk(v: Value) -> Option<Bytes> {
    match v {
        Value::Bulk(b) | Value::Simple(b) => Some(b),
        _ => None,
    }
}

/// `JSON_WRITE`: `DEL k`; `JSON.SET k $ ARGV[1]`; `PEXPIRE k ARGV[2]` unless empty; `OK`.
fn json_write(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local ttl = ARGV[2]; if #ARGV >= 3 and EXISTS KEYS[1] == 1 then ttl = ARGV[3] end
    let mut ttl = arg(argv, 1, "ARGV")?;
    if argv.len() >= 3 && cx.call(&[b"EXISTS", k])? == Value::Int(1) {
        ttl = arg(argv, 2, "ARGV")?;
    }
    // redis.call('DEL', KEYS[1])
    cx.call(&[b"DEL", k])?;
    // redis.call('JSON.SET', KEYS[1], '$', ARGV[1])
    cx.call(&[b"JSON.SET", k, b"$", arg(argv, 0, "ARGV")?])?;
    // if ttl ~= '' then redis.call('PEXPIRE', KEYS[1], ttl) end
    if !ttl.is_empty() {
        cx.call(&[b"PEXPIRE", k, ttl])?;
    }
    // return {ok = 'OK'}
    Ok(Value::Simple(Bytes::from_static(b"OK")))
}

/// `JSON_GETDEL`: the `JSON.GET k $` reply of a document (nil for none or another type, which
/// is deleted too).
fn json_getdel(cx: &mut ScriptCtx<'_>, keys: &[Bytes], _argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local t = redis.call('TYPE', KEYS[1])['ok']; if t == 'none' then return false end
    let t = type_of(cx, k)?;
    if t.as_ref() == b"none" {
        return Ok(Value::Nil);
    }
    // if t == 'ReJSON-RL' then v = redis.call('JSON.GET', KEYS[1], '$') end
    let v = if t.as_ref() == b"ReJSON-RL" { bulk(cx.call(&[b"JSON.GET", k, b"$"])?) } else { None };
    // redis.call('DEL', KEYS[1]); return v
    cx.call(&[b"DEL", k])?;
    Ok(v.map_or(Value::Nil, Value::Bulk))
}

/// `'[{"__slotcache":' .. string.sub(m, 2, -2) .. '}]'`: the deleted entry's reserved member,
/// from the `JSON.GET k $.__slotcache` reply `m`.
fn member_reply(m: &[u8]) -> Value {
    let inner = if m.len() >= 2 { &m[1..m.len() - 1] } else { &[][..] };
    let mut out = format!("[{{\"{RESERVED_FIELD}\":").into_bytes();
    out.extend_from_slice(inner);
    out.extend_from_slice(b"}]");
    Value::Bulk(Bytes::from(out))
}

/// `CAS_JSON`: applies `set`/`del` only over the document whose `JSON.GET k $` reply has the
/// SHA-1 `ARGV[1]` (empty: only over no key at all). 1 applied, 0 conflict.
fn cas_json(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local t = redis.call('TYPE', KEYS[1])['ok']
    let t = type_of(cx, k)?;
    // if t == 'ReJSON-RL' then v = redis.call('JSON.GET', KEYS[1], '$') end
    let v = if t.as_ref() == b"ReJSON-RL" { bulk(cx.call(&[b"JSON.GET", k, b"$"])?) } else { None };
    let expect = arg(argv, 0, "ARGV")?;
    if expect.is_empty() {
        // if t ~= 'none' then return 0 end
        if t.as_ref() != b"none" {
            return Ok(Value::Int(0));
        }
    } else if v.is_none_or(|v| sha1_hex(&v).as_bytes() != expect.as_ref()) {
        // elseif (not v) or redis.sha1hex(v) ~= ARGV[1] then return 0 end
        return Ok(Value::Int(0));
    }
    // redis.call('DEL', KEYS[1])
    cx.call(&[b"DEL", k])?;
    // if ARGV[2] == 'set' then JSON.SET k $ ARGV[3]; PEXPIRE k ARGV[4] unless empty
    if arg(argv, 1, "ARGV")?.as_ref() == b"set" {
        cx.call(&[b"JSON.SET", k, b"$", arg(argv, 2, "ARGV")?])?;
        let ttl = arg(argv, 3, "ARGV")?;
        if !ttl.is_empty() {
            cx.call(&[b"PEXPIRE", k, ttl])?;
        }
    }
    Ok(Value::Int(1))
}

/// `DEL_IF_STALE_JSON` (contract of the coming script): `KEYS[1]` data key, `ARGV[1]` tag,
/// `ARGV[2]` the tag's current token. Deletes the document iff its `__slotcache.t` pairs carry
/// that tag with a token other than `ARGV[2]`, and then returns what `COND_DEL_JSON` returns for
/// a deleted document (`[{"__slotcache":<member>}]`); else nil. A document without the member,
/// without the tag, or with the current token is kept; so is any other type.
fn del_if_stale_json(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    let (tag, current) = (arg(argv, 0, "ARGV")?, arg(argv, 1, "ARGV")?);
    if type_of(cx, k)?.as_ref() != b"ReJSON-RL" {
        return Ok(Value::Nil);
    }
    let path = format!("$.{RESERVED_FIELD}");
    let Some(m) = bulk(cx.call(&[b"JSON.GET", k, path.as_bytes()])?) else { return Ok(Value::Nil) };
    let members: Vec<Json> = serde_json::from_slice(&m).unwrap_or_default();
    let pairs =
        members.first().and_then(|m| m.get("t")).and_then(Json::as_array).cloned().unwrap_or_default();
    let stale = pairs.iter().any(|p| match p.as_array().map(Vec::as_slice) {
        Some([Json::String(t), Json::String(tok)]) => {
            t.as_bytes() == tag.as_ref() && tok.as_bytes() != current.as_ref()
        }
        _ => false,
    });
    if !stale {
        return Ok(Value::Nil);
    }
    cx.call(&[b"DEL", k])?;
    Ok(member_reply(&m))
}

#[cfg(test)]
mod tests {
    use slotcache_core::cache::search::doc::from_stored;

    use super::*;

    use crate::one_node::{OneNode as M, b};

    /// `JSON.GET k $`.
    fn get(m: &mut M, k: &[u8]) -> Value {
        m.run(&[b"JSON.GET", k, b"$"])
    }

    fn is_err(v: &Value, prefix: &str) -> bool {
        matches!(v, Value::Error(e) if e.starts_with(prefix.as_bytes()))
    }

    const DOC: &[u8] = br#"{"__slotcache":{"t":[["red","T1"],["blue","T2"]],"r":7},"v":"x"}"#;

    #[test]
    fn json_write_replaces_any_type_and_sets_the_ttl() {
        let mut m = M::new();
        m.run(&[b"ZADD", b"k", b"1", b"a"]);
        assert_eq!(
            m.eval(JSON_WRITE.source, b"k", &[br#"{"a":1}"#, b"500"]),
            Value::Simple(Bytes::from_static(b"OK"))
        );
        assert_eq!(get(&mut m, b"k"), b(br#"[{"a":1}]"#));
        assert_eq!(m.run(&[b"PTTL", b"k"]), Value::Int(500));
        assert_eq!(
            m.eval(JSON_WRITE.source, b"k", &[br#"{"a":2}"#, b""]),
            Value::Simple(Bytes::from_static(b"OK"))
        );
        assert_eq!(m.run(&[b"PTTL", b"k"]), Value::Int(-1), "the DEL drops the old TTL");
        // With an update TTL: used when the key exists, not when it does not.
        m.eval(JSON_WRITE.source, b"k", &[br#"{"a":3}"#, b"500", b"9000"]);
        assert_eq!(m.run(&[b"PTTL", b"k"]), Value::Int(9000));
        m.eval(JSON_WRITE.source, b"new", &[br#"{"a":3}"#, b"500", b"9000"]);
        assert_eq!(m.run(&[b"PTTL", b"new"]), Value::Int(500));
        // Invalid JSON: the script raises JSON.SET's error, after its DEL.
        assert!(is_err(&m.eval(JSON_WRITE.source, b"k", &[b"{nope", b""]), "ERR "));
        assert_eq!(m.run(&[b"EXISTS", b"k"]), Value::Int(0));
    }

    #[test]
    fn json_getdel_returns_the_document_and_deletes_any_type() {
        let mut m = M::new();
        assert_eq!(m.eval(JSON_GETDEL.source, b"k", &[]), Value::Nil);
        m.run(&[b"JSON.SET", b"k", b"$", DOC]);
        let got = m.eval(JSON_GETDEL.source, b"k", &[]);
        let Value::Bulk(stored) = &got else { panic!("{got:?}") };
        let e = from_stored(stored).expect("an entry");
        assert_eq!(e.tags.len(), 2);
        assert_eq!(e.payload.as_ref(), br#"{"v":"x"}"#);
        assert_eq!(m.run(&[b"EXISTS", b"k"]), Value::Int(0));
        m.run(&[b"SET", b"s", b"v"]);
        assert_eq!(m.eval(JSON_GETDEL.source, b"s", &[]), Value::Nil, "another type: nil ...");
        assert_eq!(m.run(&[b"EXISTS", b"s"]), Value::Int(0), "... and deleted");
    }

    #[test]
    fn cas_json_applies_only_over_the_document_read() {
        let mut m = M::new();
        assert_eq!(m.eval(CAS_JSON.source, b"k", &[b"", b"set", br#"{"a":1}"#, b""]), Value::Int(1));
        assert_eq!(m.eval(CAS_JSON.source, b"k", &[b"", b"set", br#"{"a":2}"#, b""]), Value::Int(0));
        let Value::Bulk(read) = get(&mut m, b"k") else { panic!() };
        let h = sha1_hex(&read);
        assert_eq!(m.eval(CAS_JSON.source, b"k", &[b"00", b"set", br#"{"a":2}"#, b""]), Value::Int(0));
        assert_eq!(
            m.eval(CAS_JSON.source, b"k", &[h.as_bytes(), b"set", br#"{"a":2}"#, b"100"]),
            Value::Int(1)
        );
        assert_eq!(get(&mut m, b"k"), b(br#"[{"a":2}]"#));
        assert_eq!(m.run(&[b"PTTL", b"k"]), Value::Int(100));
        assert_eq!(
            m.eval(CAS_JSON.source, b"k", &[h.as_bytes(), b"del", b"", b""]),
            Value::Int(0),
            "stale hash"
        );
        let Value::Bulk(read) = get(&mut m, b"k") else { panic!() };
        let h2 = sha1_hex(&read);
        assert_eq!(m.eval(CAS_JSON.source, b"k", &[h2.as_bytes(), b"del", b"", b""]), Value::Int(1));
        assert_eq!(m.run(&[b"EXISTS", b"k"]), Value::Int(0));
        // A key of another type is never "the document read", nor absent.
        m.run(&[b"SET", b"s", b"v"]);
        assert_eq!(m.eval(CAS_JSON.source, b"s", &[b"", b"set", b"{}", b""]), Value::Int(0));
        assert_eq!(
            m.eval(CAS_JSON.source, b"s", &[sha1_hex(b"v").as_bytes(), b"del", b"", b""]),
            Value::Int(0)
        );
    }

    #[test]
    fn del_if_stale_json_deletes_only_an_old_token_of_the_tag() {
        let mut m = M::new();
        let src = doc::DEL_IF_STALE_JSON.source;
        m.run(&[b"JSON.SET", b"k", b"$", DOC]);
        assert_eq!(m.eval(src, b"k", &[b"red", b"T1"]), Value::Nil, "the current token: kept");
        assert_eq!(m.eval(src, b"k", &[b"green", b"T1"]), Value::Nil, "another tag: kept");
        assert_eq!(m.eval(src, b"k", &[b"T1", b"zz"]), Value::Nil, "a token is not a tag");
        assert_eq!(m.run(&[b"EXISTS", b"k"]), Value::Int(1));
        let got = m.eval(src, b"k", &[b"blue", b"T3"]);
        assert_eq!(got, b(br#"[{"__slotcache":{"r":7,"t":[["red","T1"],["blue","T2"]]}}]"#));
        assert_eq!(m.run(&[b"EXISTS", b"k"]), Value::Int(0));
        m.run(&[b"JSON.SET", b"u", b"$", br#"{"v":1}"#]);
        assert_eq!(m.eval(src, b"u", &[b"red", b"T3"]), Value::Nil, "untagged: kept");
        assert_eq!(m.eval(src, b"none", &[b"red", b"T3"]), Value::Nil);
        m.run(&[b"SET", b"s", b"v"]);
        assert_eq!(m.eval(src, b"s", &[b"red", b"T3"]), Value::Nil);
        assert_eq!(m.run(&[b"EXISTS", b"s"]), Value::Int(1));
    }

    #[test]
    fn without_the_modules_the_scripts_fail_like_valkey() {
        let mut m = M::new();
        m.c.set_modules(false);
        let Value::Error(e) = m.eval(JSON_WRITE.source, b"k", &[b"{}", b""]) else { panic!() };
        assert!(e.starts_with(b"ERR Unknown Redis command called from script"), "{e:?}");
        let Value::Error(e) = m.run(&[b"JSON.GET", b"k", b"$"]) else { panic!() };
        assert!(e.starts_with(b"ERR unknown command 'JSON.GET'"), "{e:?}");
        let Value::Error(e) = m.run(&[b"FT.INFO", b"idx"]) else { panic!() };
        assert!(e.starts_with(b"ERR unknown command"), "{e:?}");
    }
}
