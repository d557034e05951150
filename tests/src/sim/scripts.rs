//! Scripts: the simulator cannot run Lua, so each script the cache sends has a native twin here,
//! found by the SHA-1 of its source, that does what the Lua does, command by command, through
//! [`ScriptCtx::call`] (Lua's `redis.call`): each command is checked against the cluster state
//! like Valkey checks a script's commands (a key that is not local in a migrating slot fails the
//! script half-way, keeping what it already wrote), and `OOM` applies to the first write.
//!
//! To simulate a new script, add a native function and one [`Registry::register`] line in
//! [`Registry::standard`] (or register it on a cluster's `scripts` in a test). A script the
//! registry does not know answers an `ERR` that says so.

use std::collections::BTreeMap;

use bytes::Bytes;
use slotcache_core::cache::scripts::{self as core_scripts, sha1_hex};
use slotcache_core::{Slot, Value};

use super::commands::{self, Ctx, fmt_score, spec_of};
use super::routing::View;
use super::store::Store;

/// A native script: `(ctx, KEYS, ARGV)` → the script's reply, or the error it raised.
pub type NativeFn = fn(&mut ScriptCtx<'_>, &[Bytes], &[Bytes]) -> Result<Value, String>;

/// One script the simulator can run.
#[derive(Debug, Clone)]
pub struct NativeScript {
    /// A short name for traces and errors.
    pub name: &'static str,
    /// The Lua source (its SHA-1 is the key).
    pub source: String,
    /// The native twin.
    pub run: NativeFn,
}

/// Scripts by SHA-1 (lower-case hex).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_sha: BTreeMap<String, NativeScript>,
}

impl Registry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The cache's scripts (`TAG_WRITE`, `TAG_INVALIDATE`, `DEL_IF_STALE`, `CAS`, `UNLOCK`,
    /// `TAG_TOUCH`, `SET_BY_AGE`) and the JSON ones (`JSON_WRITE`, `JSON_GETDEL`,
    /// `DEL_IF_STALE_JSON`, `CAS_JSON`, `JSON_GET_TOUCH`: see [`super::json_scripts`]).
    #[must_use]
    pub fn standard() -> Self {
        let mut r = Self::new();
        r.register("tag_write", core_scripts::TAG_WRITE.source, tag_write);
        r.register("tag_invalidate", core_scripts::TAG_INVALIDATE.source, tag_invalidate);
        r.register("del_if_stale", core_scripts::DEL_IF_STALE.source, del_if_stale);
        r.register("cas", core_scripts::CAS.source, cas);
        r.register("unlock", core_scripts::UNLOCK.source, unlock);
        r.register("tag_touch", core_scripts::TAG_TOUCH.source, tag_touch);
        r.register("set_by_age", core_scripts::SET_BY_AGE.source, set_by_age);
        super::json_scripts::register_standard(&mut r);
        r
    }

    /// Adds (or replaces) a script; returns its SHA-1.
    pub fn register(&mut self, name: &'static str, source: &str, run: NativeFn) -> String {
        let sha = sha1_hex(source.as_bytes());
        self.by_sha.insert(sha.clone(), NativeScript { name, source: source.to_owned(), run });
        sha
    }

    /// The script with this SHA-1 (any case).
    #[must_use]
    pub fn get(&self, sha: &str) -> Option<&NativeScript> {
        self.by_sha.get(&sha.to_ascii_lowercase())
    }
}

/// What a native script runs against: the node's keyspace and clock, and the routing state its
/// commands are checked with.
#[derive(Debug)]
pub struct ScriptCtx<'a> {
    pub(crate) view: View<'a>,
    pub(crate) store: &'a mut Store,
    pub(crate) now_us: u64,
    /// The node was over `maxmemory` when the script started.
    pub(crate) oom: bool,
    pub(crate) wrote: bool,
    pub(crate) slot: Option<Slot>,
    pub(crate) is_primary: bool,
    /// The node has the JSON and search modules.
    pub(crate) modules: bool,
}

impl ScriptCtx<'_> {
    /// Lua's `redis.call`: runs one command; an error reply raises (returned as `Err`).
    ///
    /// # Errors
    /// The error the script raises, with its Valkey text.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Value, String> {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let name = args.first().map(|a| String::from_utf8_lossy(a).to_uppercase()).unwrap_or_default();
        let Some(spec) = spec_of(&name).filter(|_| self.modules || !commands::is_module_command(&name))
        else {
            return Err("ERR Unknown Redis command called from script".into());
        };
        let Ok(idx) = spec.keys(&args) else {
            return Err("ERR Wrong number of args calling Redis command from script".into());
        };
        if !idx.is_empty() {
            let keys: Vec<&[u8]> = idx.iter().map(|i| args[*i].as_ref()).collect();
            let (store, now_ms) = (&*self.store, self.now_us / 1000);
            let slot = self
                .view
                .check(&keys, spec.write, &|k| store.peek(k, now_ms).is_some())
                .map_err(|r| r.script_error(&name))?;
            match self.slot {
                Some(s) if s != slot => {
                    return Err(
                        "ERR Script attempted to access keys that do not hash to the same slot".into()
                    );
                }
                _ => self.slot = Some(slot),
            }
            if self.is_primary {
                for i in &idx {
                    self.store.expire_if_needed(&args[*i], now_ms);
                }
            }
        }
        if spec.denyoom && self.oom && !self.wrote {
            return Err(super::eviction::OOM.into());
        }
        let v = commands::exec(&mut Ctx { store: self.store, now_us: self.now_us, resp3: false }, &args);
        self.wrote |= spec.write;
        match v {
            Value::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
            v => Ok(v),
        }
    }

    /// `redis.call('TIME')` as Lua scripts turn it into milliseconds.
    ///
    /// # Errors
    /// Never in practice (`TIME` always answers).
    pub fn time_ms(&mut self) -> Result<u64, String> {
        match self.call(&[b"TIME"])? {
            Value::Array(v) => {
                let n = |i: usize| -> u64 {
                    v.get(i)
                        .and_then(Value::as_bytes)
                        .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
                        .unwrap_or(0)
                };
                Ok(n(0) * 1000 + n(1) / 1000)
            }
            other => Err(format!("ERR unexpected TIME reply {other:?}")),
        }
    }
}

/// The error text Valkey gives for a script that raised `msg`.
#[must_use]
pub fn script_error(msg: &str, sha: &str) -> Value {
    let coded =
        msg.split(' ').next().is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase()));
    let msg = if coded { msg.to_owned() } else { format!("ERR {msg}") };
    Value::Error(Bytes::from(format!("{msg} script: {sha}, on @user_script:1.")))
}

fn arg<'a>(v: &'a [Bytes], i: usize, what: &str) -> Result<&'a Bytes, String> {
    v.get(i).ok_or_else(|| format!("ERR user_script:1: attempt to use a nil value ({what}[{}])", i + 1))
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

/// `TAG_WRITE` (core `cache::scripts::TAG_WRITE`).
fn tag_write(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local t = redis.call('TIME'); local now = t[1] * 1000 + floor(t[2] / 1000)
    let now = cx.time_ms()?;
    // local tok = redis.call('ZRANGEBYSCORE', k, -1, -1)
    let tok = array(cx.call(&[b"ZRANGEBYSCORE", k, b"-1", b"-1"])?);
    let (token, created) = match tok.first().and_then(Value::as_bytes) {
        // if #tok == 0: token = '\0' .. ARGV[3]; created = EXISTS == 0; ZADD k -1 token
        None => {
            let token = cat(b"\0", arg(argv, 2, "ARGV")?);
            let created = cx.call(&[b"EXISTS", k])? == Value::Int(0);
            cx.call(&[b"ZADD", k, b"-1", &token])?;
            (token, created)
        }
        // else token = tok[1]
        Some(t) => (t.to_vec(), false),
    };
    // redis.call('ZREMRANGEBYSCORE', k, 0, '(' .. now)
    cx.call(&[b"ZREMRANGEBYSCORE", k, b"0", format!("({now}").as_bytes()])?;
    let member = arg(argv, 0, "ARGV")?;
    let ttl_arg = arg(argv, 1, "ARGV")?;
    if ttl_arg.is_empty() {
        // ZADD k 'inf' ARGV[1]; PERSIST k
        cx.call(&[b"ZADD", k, b"inf", member])?;
        cx.call(&[b"PERSIST", k])?;
    } else {
        // local ttl = tonumber(ARGV[2]); ZADD k now + ttl ARGV[1]
        let ttl: f64 = std::str::from_utf8(ttl_arg)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or("ERR user_script:1: attempt to perform arithmetic on local 'ttl' (a nil value)")?;
        cx.call(&[b"ZADD", k, fmt_score(now as f64 + ttl).as_bytes(), member])?;
        // local pttl = PTTL k; if created or (pttl >= 0 and pttl < ttl) then PEXPIRE k ttl
        let pttl = cx.call(&[b"PTTL", k])?.as_int().unwrap_or(-2);
        if created || (pttl >= 0 && (pttl as f64) < ttl) {
            cx.call(&[b"PEXPIRE", k, fmt_score(ttl).as_bytes()])?;
        }
    }
    // return string.sub(token, 2)
    Ok(Value::Bulk(Bytes::from(token[1..].to_vec())))
}

/// `TAG_INVALIDATE` (core `cache::scripts::TAG_INVALIDATE`).
fn tag_invalidate(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local tok = redis.call('ZRANGEBYSCORE', k, -1, -1); if #tok == 0 then return {false, {}}
    let tok = array(cx.call(&[b"ZRANGEBYSCORE", k, b"-1", b"-1"])?);
    let Some(old) = tok.first().and_then(Value::as_bytes).cloned() else {
        return Ok(Value::Array(vec![Value::Nil, Value::Array(Vec::new())]));
    };
    let now = cx.time_ms()?;
    // local members = redis.call('ZRANGEBYSCORE', k, now, 'inf', 'WITHSCORES')
    // (a script's calls speak RESP2: a flat member, score, member, score... array)
    let members = cx.call(&[b"ZRANGEBYSCORE", k, now.to_string().as_bytes(), b"inf", b"WITHSCORES"])?;
    // redis.call('ZADD', k, -1, '\0' .. ARGV[1])
    let new = cat(b"\0", arg(argv, 0, "ARGV")?);
    cx.call(&[b"ZADD", k, b"-1", &new])?;
    // redis.call('ZREM', k, unpack(tok))
    let mut zrem: Vec<&[u8]> = vec![b"ZREM", k];
    zrem.extend(tok.iter().filter_map(Value::as_bytes).map(Bytes::as_ref));
    cx.call(&zrem)?;
    // redis.call('ZREMRANGEBYSCORE', k, '(-1', 'inf')
    cx.call(&[b"ZREMRANGEBYSCORE", k, b"(-1", b"inf"])?;
    // return {string.sub(tok[1], 2), members}
    Ok(Value::Array(vec![Value::Bulk(old.slice(1..)), members]))
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

/// `TAG_TOUCH` (core `cache::scripts::TAG_TOUCH`).
fn tag_touch(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local tok = redis.call('ZRANGEBYSCORE', k, -1, -1); if #tok == 0 then return tok end
    let tok = cx.call(&[b"ZRANGEBYSCORE", k, b"-1", b"-1"])?;
    if array(tok.clone()).is_empty() {
        return Ok(tok);
    }
    let now = cx.time_ms()?;
    // local ttl = tonumber(ARGV[1])
    let ttl: f64 = std::str::from_utf8(arg(argv, 0, "ARGV")?)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or("ERR user_script:1: attempt to perform arithmetic on local 'ttl' (a nil value)")?;
    // for i = 2, #ARGV do redis.call('ZADD', k, 'GT', now + ttl, ARGV[i]) end
    let score = fmt_score(now as f64 + ttl);
    for member in argv.iter().skip(1) {
        cx.call(&[b"ZADD", k, b"GT", score.as_bytes(), member])?;
    }
    // local pttl = PTTL k; if pttl >= 0 and pttl < ttl then PEXPIRE k ttl end
    let pttl = cx.call(&[b"PTTL", k])?.as_int().unwrap_or(-2);
    if pttl >= 0 && (pttl as f64) < ttl {
        cx.call(&[b"PEXPIRE", k, fmt_score(ttl).as_bytes()])?;
    }
    Ok(tok)
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
    use slotcache_core::cache::scripts::{
        CAS, DEL_IF_STALE, SET_BY_AGE, TAG_INVALIDATE, TAG_TOUCH, TAG_WRITE, UNLOCK,
    };
    use slotcache_core::cache::{Entry, TransformId};

    use super::*;

    use crate::sim::one_node::{OneNode as M, b};

    #[test]
    fn tag_write_creates_the_token_adds_the_member_and_keeps_the_key_alive() {
        let mut m = M::new();
        let now = m.now_ms();
        // A new tag: the fresh token is used, the member is scored by its expiry, the key
        // expires with it.
        assert_eq!(m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d1", b"1000", b"T1"]), b(b"T1"));
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"\0T1"]), b(b"-1"));
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"d1"]), b((now + 1000).to_string().as_bytes()));
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(1000));
        // The tag has a token: the fresh one is ignored; a longer TTL extends the key.
        assert_eq!(m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d2", b"5000", b"T2"]), b(b"T1"));
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(5000));
        // A shorter TTL does not shorten it.
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d3", b"10", b"T3"]);
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(5000));
        // Expired members are pruned at the next write; no TTL means inf and PERSIST.
        m.advance(2000);
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d4", b"", b"T4"]);
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"d1"]), Value::Nil, "expired member pruned");
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"d2"]), b((now + 5000).to_string().as_bytes()));
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"d4"]), b(b"inf"));
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(-1));
        // EVALSHA works now that EVAL cached it.
        let r = m.run(&[b"EVALSHA", TAG_WRITE.sha1().as_bytes(), b"1", b"tag:{a}", b"d5", b"", b"x"]);
        assert_eq!(r, b(b"T1"));
        // Wrong type: the error the script raised, Valkey style.
        m.run(&[b"SET", b"tag:{s}", b"v"]);
        let Value::Error(e) = m.eval(TAG_WRITE.source, b"tag:{s}", &[b"d", b"", b"T"]) else { panic!() };
        assert!(e.starts_with(b"WRONGTYPE") && e.ends_with(b"on @user_script:1."), "{e:?}");
    }

    #[test]
    fn tag_invalidate_swaps_the_token_and_returns_live_members() {
        let mut m = M::new();
        assert_eq!(
            m.eval(TAG_INVALIDATE.source, b"tag:{a}", &[b"N"]),
            Value::Array(vec![Value::Nil, Value::Array(vec![])]),
            "no token: {{false, {{}}}}"
        );
        assert_eq!(m.run(&[b"EXISTS", b"tag:{a}"]), Value::Int(0), "nothing created");
        let now = m.now_ms();
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d1", b"1000", b"T1"]);
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d2", b"", b"T1"]);
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d3", b"10", b"T1"]);
        let ttl_before = m.run(&[b"PTTL", b"tag:{a}"]);
        m.advance(500);
        let r = m.eval(TAG_INVALIDATE.source, b"tag:{a}", &[b"T2"]);
        let score1 = b((now + 1000).to_string().as_bytes());
        let listed = Value::Array(vec![b(b"d1"), score1, b(b"d2"), b(b"inf")]);
        assert_eq!(r, Value::Array(vec![b(b"T1"), listed]), "d3 expired; members with their scores");
        // Only the new token is left; the key keeps its TTL.
        assert_eq!(m.run(&[b"ZRANGEBYSCORE", b"tag:{a}", b"-inf", b"+inf"]), Value::Array(vec![b(b"\0T2")]));
        assert_eq!(ttl_before, Value::Int(-1));
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(-1));
        let r = m.eval(TAG_INVALIDATE.source, b"tag:{a}", &[b"T3"]);
        assert_eq!(r, Value::Array(vec![b(b"T2"), Value::Array(vec![])]));
    }

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
    fn tag_touch_renews_members_and_returns_the_token() {
        let mut m = M::new();
        let now = m.now_ms();
        // No token: nothing is created, an empty reply.
        assert_eq!(m.eval(TAG_TOUCH.source, b"tag:{a}", &[b"5000", b"d1"]), Value::Array(vec![]));
        assert_eq!(m.run(&[b"EXISTS", b"tag:{a}"]), Value::Int(0));
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d1", b"1000", b"T1"]);
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d2", b"", b"T1"]);
        let got = m.eval(TAG_TOUCH.source, b"tag:{a}", &[b"5000", b"d1", b"d2", b"d3"]);
        assert_eq!(got, Value::Array(vec![b(b"\0T1")]), "the token, as ZRANGEBYSCORE returns it");
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"d1"]), b((now + 5000).to_string().as_bytes()));
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"d2"]), b(b"inf"), "never lowered");
        assert_eq!(
            m.run(&[b"ZSCORE", b"tag:{a}", b"d3"]),
            b((now + 5000).to_string().as_bytes()),
            "re-listed"
        );
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(-1), "a key without expiry keeps none");
        m.eval(TAG_WRITE.source, b"tag:{b}", &[b"d1", b"1000", b"T2"]);
        m.eval(TAG_TOUCH.source, b"tag:{b}", &[b"5000", b"d1"]);
        assert_eq!(m.run(&[b"PTTL", b"tag:{b}"]), Value::Int(5000), "the key lives as long");
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
        assert!(e.starts_with(b"ERR the simulator has no native version"), "{e:?}");
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
