//! The data commands on one node's [`Store`](super::store::Store), with Valkey's reply shapes and error texts.
//!
//! Routing (MOVED/ASK), authentication, replication, eviction and scripts are the caller's
//! business (a [`Node`](crate::Node), or the simulation's cluster); this module only runs a
//! command that reached its node.

use bytes::Bytes;
use slotcache_core::Value;

use super::command_ctx::{Ctx, WRONGTYPE, err, ok, parse_int};
use super::glob;
use super::store::{Entry, Val};

const NOT_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";
const NOT_FLOAT: &str = "ERR value is not a valid float";

fn bulk(s: impl Into<Bytes>) -> Value {
    Value::Bulk(s.into())
}

/// What the cluster needs to know about a command before running it.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Upper-case name.
    pub name: &'static str,
    /// Valkey's arity: exact count if positive, minimum count if negative (name included).
    pub arity: i32,
    /// Index of the first key (0: no keys).
    pub first_key: usize,
    /// Index of the last key (-1: the last argument, -2: the one before it).
    pub last_key: i32,
    /// Distance between keys.
    pub step: usize,
    /// Changes data (refused on replicas, counted for replication).
    pub write: bool,
    /// May grow memory (refused with `OOM` over `maxmemory`).
    pub denyoom: bool,
}

const fn spec(name: &'static str, arity: i32, keys: (usize, i32, usize), write: bool, denyoom: bool) -> Spec {
    Spec { name, arity, first_key: keys.0, last_key: keys.1, step: keys.2, write, denyoom }
}

const ONE: (usize, i32, usize) = (1, 1, 1);
const ALL: (usize, i32, usize) = (1, -1, 1);
const NONE: (usize, i32, usize) = (0, 0, 0);

/// The data commands the node model runs.
pub static SPECS: &[Spec] = &[
    spec("DBSIZE", 1, NONE, false, false),
    spec("DEL", -2, ALL, true, false),
    spec("EXISTS", -2, ALL, false, false),
    spec("EXPIRE", -3, ONE, true, false),
    spec("FLUSHDB", -1, NONE, true, false),
    spec("GET", 2, ONE, false, false),
    spec("GETDEL", 2, ONE, true, false),
    spec("GETEX", -2, ONE, true, false),
    spec("INCR", 2, ONE, true, true),
    spec("MGET", -2, ALL, false, false),
    spec("MSET", -3, (1, -1, 2), true, true),
    spec("PERSIST", 2, ONE, true, false),
    spec("PEXPIRE", -3, ONE, true, false),
    spec("PTTL", 2, ONE, false, false),
    spec("SCAN", -2, NONE, false, false),
    spec("SET", -3, ONE, true, true),
    spec("TIME", 1, NONE, false, false),
    spec("TTL", 2, ONE, false, false),
    spec("TYPE", 2, ONE, false, false),
    spec("UNLINK", -2, ALL, true, false),
    spec("ZADD", -4, ONE, true, true),
    spec("ZCARD", 2, ONE, false, false),
    spec("ZRANGE", -4, ONE, false, false),
    spec("ZRANGEBYSCORE", -4, ONE, false, false),
    spec("ZREM", -3, ONE, true, false),
    spec("ZREMRANGEBYSCORE", 4, ONE, true, false),
    spec("ZSCORE", 3, ONE, false, false),
    // RedisJSON ([`super::json`]).
    spec("JSON.DEL", -2, ONE, true, false),
    spec("JSON.GET", -2, ONE, false, false),
    spec("JSON.MGET", -3, (1, -2, 1), false, false),
    spec("JSON.SET", -4, ONE, true, true),
    spec("JSON.TYPE", -2, ONE, false, false),
    // RediSearch ([`super::search`]): the index name is routed like a key.
    spec("FT.CREATE", -2, ONE, true, true),
    spec("FT.DROPINDEX", -2, ONE, true, false),
    spec("FT.INFO", 2, ONE, false, false),
    spec("FT.SEARCH", -3, ONE, false, false),
];

/// Whether `name` (upper-case) is a module command (`JSON.*`, `FT.*`): unknown on a node
/// without the modules.
#[must_use]
pub fn is_module_command(name: &str) -> bool {
    name.starts_with("JSON.") || name.starts_with("FT.")
}

/// The spec of a data command, by upper-case name.
#[must_use]
pub fn spec_of(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// The `wrong number of arguments` error for a command.
#[must_use]
pub fn arity_error(name: &str) -> Value {
    err(&format!("ERR wrong number of arguments for '{}' command", name.to_lowercase()))
}

impl Spec {
    /// Checks the argument count and returns the keys' indexes in `args`.
    ///
    /// # Errors
    /// The `wrong number of arguments` reply.
    pub fn keys(&self, args: &[Bytes]) -> Result<Vec<usize>, Value> {
        let n = args.len() as i32;
        let arity_ok = if self.arity >= 0 { n == self.arity } else { n >= -self.arity };
        if !arity_ok || (self.step == 2 && (args.len() - 1) % 2 != 0) {
            return Err(arity_error(self.name));
        }
        if self.first_key == 0 {
            return Ok(Vec::new());
        }
        let last = if self.last_key < 0 {
            args.len().saturating_sub(self.last_key.unsigned_abs() as usize)
        } else {
            self.last_key as usize
        };
        Ok((self.first_key..=last).step_by(self.step).collect())
    }
}

/// Runs data command `args` (name first, any case). Unknown names answer `ERR unknown command`.
pub fn exec(cx: &mut Ctx<'_>, args: &[Bytes]) -> Value {
    let Some(first) = args.first() else { return err("ERR empty command") };
    let name = String::from_utf8_lossy(first).to_uppercase();
    let Some(spec) = spec_of(&name) else { return unknown(args) };
    if let Err(e) = spec.keys(args) {
        return e;
    }
    let now = cx.now_ms();
    let a = &args[1..];
    #[cfg(feature = "search")]
    if name.starts_with("JSON.") {
        return super::json::exec(cx, &name, a);
    }
    #[cfg(feature = "search")]
    if name.starts_with("FT.") {
        return super::search::exec(cx, &name, a);
    }
    match name.as_str() {
        "GET" => match cx.store.get(&a[0], now) {
            None => Value::Nil,
            Some(Entry { val: Val::Str(v), .. }) => bulk(v.clone()),
            Some(_) => err(WRONGTYPE),
        },
        "SET" => set(cx, a),
        "GETDEL" => match cx.store.peek(&a[0], now).map(|e| &e.val) {
            None => Value::Nil,
            Some(Val::Str(_)) => match cx.store.remove(&a[0], now) {
                Some(Entry { val: Val::Str(v), .. }) => bulk(v),
                _ => Value::Nil,
            },
            Some(_) => err(WRONGTYPE),
        },
        "GETEX" => getex(cx, a),
        "DEL" | "UNLINK" => Value::Int(a.iter().filter(|k| cx.store.remove(k, now).is_some()).count() as i64),
        "EXISTS" => Value::Int(a.iter().filter(|k| cx.store.peek(k, now).is_some()).count() as i64),
        "MGET" => Value::Array(
            a.iter()
                .map(|k| match cx.store.get(k, now) {
                    Some(Entry { val: Val::Str(v), .. }) => bulk(v.clone()),
                    _ => Value::Nil,
                })
                .collect(),
        ),
        "MSET" => {
            for kv in a.chunks(2) {
                cx.store.insert(kv[0].clone(), Entry::new(Val::Str(kv[1].clone())));
            }
            ok()
        }
        "PEXPIRE" | "EXPIRE" => expire(cx, &name, a),
        "PERSIST" => Value::Int(i64::from(
            cx.store.peek(&a[0], now).is_some_and(|e| e.expires_at.is_some())
                && cx.store.get_mut(&a[0], now, |e| e.expires_at = None).is_some(),
        )),
        "PTTL" | "TTL" => match cx.store.peek(&a[0], now) {
            None => Value::Int(-2),
            Some(Entry { expires_at: None, .. }) => Value::Int(-1),
            Some(Entry { expires_at: Some(t), .. }) => {
                let ms = t.saturating_sub(now) as i64;
                Value::Int(if name == "TTL" { (ms + 500) / 1000 } else { ms })
            }
        },
        "TYPE" => Value::Simple(Bytes::from_static(
            cx.store.peek(&a[0], now).map_or("none", |e| e.val.type_name()).as_bytes(),
        )),
        "INCR" => incr(cx, &a[0]),
        "ZADD" => zadd(cx, a),
        "ZREM" => match cx.store.peek(&a[0], now).map(|e| &e.val) {
            None => Value::Int(0),
            Some(Val::ZSet(_)) => Value::Int(
                cx.store
                    .get_mut(&a[0], now, |e| match &mut e.val {
                        Val::ZSet(m) => a[1..].iter().filter(|x| m.remove(*x).is_some()).count() as i64,
                        Val::Str(_) => 0,
                        #[cfg(feature = "search")]
                        Val::Json(_) => 0,
                    })
                    .unwrap_or(0),
            ),
            Some(_) => err(WRONGTYPE),
        },
        "ZRANGE" => zrange(cx, a),
        "ZRANGEBYSCORE" => zrangebyscore(cx, a),
        "ZREMRANGEBYSCORE" => {
            let (Some(min), Some(max)) = (Bound::parse(&a[1]), Bound::parse(&a[2])) else {
                return err("ERR min or max is not a float");
            };
            match cx.store.peek(&a[0], now).map(|e| &e.val) {
                None => Value::Int(0),
                Some(Val::ZSet(_)) => Value::Int(
                    cx.store
                        .get_mut(&a[0], now, |e| match &mut e.val {
                            Val::ZSet(m) => {
                                let before = m.len();
                                m.retain(|_, s| !(min.below(*s) && max.above(*s)));
                                (before - m.len()) as i64
                            }
                            Val::Str(_) => 0,
                            #[cfg(feature = "search")]
                            Val::Json(_) => 0,
                        })
                        .unwrap_or(0),
                ),
                Some(_) => err(WRONGTYPE),
            }
        }
        "ZSCORE" => match cx.store.get(&a[0], now).map(|e| &e.val) {
            None => Value::Nil,
            Some(Val::ZSet(m)) => m.get(&a[1]).map_or(Value::Nil, |s| score(*s, cx.resp3)),
            Some(_) => err(WRONGTYPE),
        },
        "ZCARD" => match cx.store.peek(&a[0], now).map(|e| &e.val) {
            None => Value::Int(0),
            Some(Val::ZSet(m)) => Value::Int(m.len() as i64),
            Some(_) => err(WRONGTYPE),
        },
        "TIME" => Value::Array(vec![
            bulk((cx.now_us / 1_000_000).to_string()),
            bulk((cx.now_us % 1_000_000).to_string()),
        ]),
        "DBSIZE" => Value::Int(cx.store.len() as i64),
        "FLUSHDB" => match a.first().map(|m| m.to_ascii_uppercase()) {
            None => {
                cx.store.flush();
                ok()
            }
            Some(m) if m == b"ASYNC" || m == b"SYNC" => {
                cx.store.flush();
                ok()
            }
            Some(_) => err(SYNTAX),
        },
        "SCAN" => scan(cx, a),
        _ => unknown(args),
    }
}

/// The `unknown command` error, with the arguments Valkey quotes.
#[must_use]
pub fn unknown(args: &[Bytes]) -> Value {
    let name = args.first().map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default();
    let rest: String =
        args.iter().skip(1).take(10).map(|a| format!("'{}' ", String::from_utf8_lossy(a))).collect();
    err(&format!("ERR unknown command '{name}', with args beginning with: {rest}"))
}

/// Parses a score: a float, `inf`, `+inf`, `-inf` (any case); never NaN.
#[must_use]
pub fn parse_score(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.trim() != s {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// A score as Valkey prints it (`inf`, `-inf`, integers without a fraction).
#[must_use]
pub fn fmt_score(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.fract() == 0.0 && f.abs() < 1e17 {
        return format!("{}", f as i64);
    }
    format!("{f}")
}

fn score(f: f64, resp3: bool) -> Value {
    if resp3 { Value::Double(f) } else { bulk(fmt_score(f)) }
}

/// One end of a score range: `5`, `(5` (exclusive), `-inf`, `+inf`.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The score.
    pub value: f64,
    /// Whether the end itself is excluded.
    pub exclusive: bool,
}

impl Bound {
    /// Parses a range end.
    #[must_use]
    pub fn parse(b: &[u8]) -> Option<Self> {
        match b.split_first() {
            Some((b'(', rest)) => Some(Self { value: parse_score(rest)?, exclusive: true }),
            _ => Some(Self { value: parse_score(b)?, exclusive: false }),
        }
    }

    /// `self` as a minimum admits `s`.
    #[must_use]
    pub fn below(&self, s: f64) -> bool {
        if self.exclusive { s > self.value } else { s >= self.value }
    }

    /// `self` as a maximum admits `s`.
    #[must_use]
    pub fn above(&self, s: f64) -> bool {
        if self.exclusive { s < self.value } else { s <= self.value }
    }
}

/// Parses an expiry amount into an absolute instant in ms; `Err` is the reply.
fn expiry_at(cx: &Ctx<'_>, unit: &[u8], amount: &[u8], command: &str) -> Result<u64, Value> {
    let n = parse_int(amount).ok_or_else(|| err(NOT_INT))?;
    let invalid = || err(&format!("ERR invalid expire time in '{command}' command"));
    if n <= 0 {
        return Err(invalid());
    }
    let n = n as u64;
    let now = cx.now_ms();
    match unit.to_ascii_uppercase().as_slice() {
        b"EX" => n.checked_mul(1000).and_then(|ms| ms.checked_add(now)).ok_or_else(invalid),
        b"PX" => n.checked_add(now).ok_or_else(invalid),
        b"EXAT" => n.checked_mul(1000).ok_or_else(invalid),
        b"PXAT" => Ok(n),
        _ => Err(err(SYNTAX)),
    }
}

fn set(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expires: Option<u64> = None;
    let mut i = 2;
    while i < a.len() {
        let o = a[i].to_ascii_uppercase();
        match o.as_slice() {
            b"NX" if !xx => nx = true,
            b"XX" if !nx => xx = true,
            b"GET" => get = true,
            b"KEEPTTL" if expires.is_none() => keepttl = true,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if expires.is_none() && !keepttl && i + 1 < a.len() => {
                match expiry_at(cx, &o, &a[i + 1], "set") {
                    Ok(t) => expires = Some(t),
                    Err(e) => return e,
                }
                i += 1;
            }
            _ => return err(SYNTAX),
        }
        i += 1;
    }
    let now = cx.now_ms();
    let old = cx.store.peek(&a[0], now).cloned();
    let old_str = match &old {
        Some(Entry { val: Val::Str(v), .. }) => Some(v.clone()),
        Some(_) if get => return err(WRONGTYPE),
        _ => None,
    };
    let reply_skip = || if get { old_str.clone().map_or(Value::Nil, bulk) } else { Value::Nil };
    if (nx && old.is_some()) || (xx && old.is_none()) {
        return reply_skip();
    }
    let expires_at = if keepttl { old.as_ref().and_then(|e| e.expires_at) } else { expires };
    cx.store.insert(a[0].clone(), Entry { val: Val::Str(a[1].clone()), expires_at, access: 0 });
    if get { old_str.map_or(Value::Nil, bulk) } else { ok() }
}

fn getex(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let now = cx.now_ms();
    // None: leave the TTL; Some(None): persist; Some(Some(t)): expire at t.
    let mut change: Option<Option<u64>> = None;
    let mut i = 1;
    while i < a.len() {
        let o = a[i].to_ascii_uppercase();
        match o.as_slice() {
            b"PERSIST" if change.is_none() => change = Some(None),
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if change.is_none() && i + 1 < a.len() => {
                match expiry_at(cx, &o, &a[i + 1], "getex") {
                    Ok(t) => change = Some(Some(t)),
                    Err(e) => return e,
                }
                i += 1;
            }
            _ => return err(SYNTAX),
        }
        i += 1;
    }
    let v = match cx.store.get(&a[0], now).map(|e| &e.val) {
        None => return Value::Nil,
        Some(Val::Str(v)) => v.clone(),
        Some(_) => return err(WRONGTYPE),
    };
    match change {
        None => {}
        Some(Some(t)) if t <= now => {
            cx.store.remove(&a[0], now);
        }
        Some(t) => {
            cx.store.get_mut(&a[0], now, |e| e.expires_at = t);
        }
    }
    bulk(v)
}

fn expire(cx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Value {
    let Some(n) = parse_int(&a[1]) else { return err(NOT_INT) };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for o in &a[2..] {
        match o.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => return err(&format!("ERR Unsupported option {}", String::from_utf8_lossy(o))),
        }
    }
    if nx && (xx || gt || lt) {
        return err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return err("ERR GT and LT options at the same time are not compatible");
    }
    let now = cx.now_ms();
    let ms = if name == "EXPIRE" { n.checked_mul(1000) } else { Some(n) };
    let Some(when) = ms.and_then(|ms| ms.checked_add(now as i64)) else {
        return err(&format!("ERR invalid expire time in '{}' command", name.to_lowercase()));
    };
    let Some(cur) = cx.store.peek(&a[0], now).map(|e| e.expires_at) else { return Value::Int(0) };
    let skip = match cur {
        Some(c) => nx || (gt && when <= c as i64) || (lt && when >= c as i64),
        None => xx || gt,
    };
    if skip {
        return Value::Int(0);
    }
    if when <= now as i64 {
        cx.store.remove(&a[0], now);
    } else {
        cx.store.get_mut(&a[0], now, |e| e.expires_at = Some(when as u64));
    }
    Value::Int(1)
}

fn incr(cx: &mut Ctx<'_>, key: &Bytes) -> Value {
    let now = cx.now_ms();
    let cur = match cx.store.peek(key, now) {
        None => 0,
        Some(Entry { val: Val::Str(v), .. }) => match parse_int(v) {
            Some(n) => n,
            None => return err(NOT_INT),
        },
        Some(_) => return err(WRONGTYPE),
    };
    let Some(n) = cur.checked_add(1) else { return err("ERR increment or decrement would overflow") };
    let v = Val::Str(Bytes::from(n.to_string()));
    if cx.store.get_mut(key, now, |e| e.val = v.clone()).is_none() {
        cx.store.insert(key.clone(), Entry::new(v));
    }
    Value::Int(n)
}

fn zadd(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) = (false, false, false, false, false, false);
    let mut i = 1;
    while i < a.len() {
        match a[i].to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            b"CH" => ch = true,
            b"INCR" => incr = true,
            _ => break,
        }
        i += 1;
    }
    let rest = &a[i..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        return err(SYNTAX);
    }
    if nx && xx {
        return err("ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && rest.len() != 2 {
        return err("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::new();
    for p in rest.chunks(2) {
        let Some(s) = parse_score(&p[0]) else { return err(NOT_FLOAT) };
        pairs.push((s, p[1].clone()));
    }
    let now = cx.now_ms();
    let exists = match cx.store.peek(&a[0], now).map(|e| &e.val) {
        None => false,
        Some(Val::ZSet(_)) => true,
        Some(_) => return err(WRONGTYPE),
    };
    if !exists {
        if xx {
            return if incr { Value::Nil } else { Value::Int(0) };
        }
        cx.store.insert(a[0].clone(), Entry::new(Val::ZSet(Default::default())));
    }
    let resp3 = cx.resp3;
    cx.store
        .get_mut(&a[0], now, |e| {
            let Val::ZSet(m) = &mut e.val else { return err(WRONGTYPE) };
            let (mut added, mut changed) = (0i64, 0i64);
            let mut last = None;
            for (s, member) in pairs {
                match m.get(&member).copied() {
                    Some(cur) => {
                        if nx {
                            continue;
                        }
                        let new = if incr { cur + s } else { s };
                        if new.is_nan() {
                            return err("ERR resulting score is not a number (NaN)");
                        }
                        if (gt && new <= cur) || (lt && new >= cur) {
                            continue;
                        }
                        if new != cur {
                            changed += 1;
                            m.insert(member, new);
                        }
                        last = Some(new);
                    }
                    None => {
                        if xx {
                            continue;
                        }
                        m.insert(member, s);
                        added += 1;
                        last = Some(s);
                    }
                }
            }
            if incr {
                last.map_or(Value::Nil, |f| score(f, resp3))
            } else {
                Value::Int(added + if ch { changed } else { 0 })
            }
        })
        .unwrap_or(Value::Int(0))
}

fn zrangebyscore(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let (Some(min), Some(max)) = (Bound::parse(&a[1]), Bound::parse(&a[2])) else {
        return err("ERR min or max is not a float");
    };
    let mut withscores = false;
    let (mut offset, mut count) = (0i64, -1i64);
    let mut i = 3;
    while i < a.len() {
        match a[i].to_ascii_uppercase().as_slice() {
            b"WITHSCORES" => withscores = true,
            b"LIMIT" if i + 2 < a.len() => {
                let (Some(o), Some(c)) = (parse_int(&a[i + 1]), parse_int(&a[i + 2])) else {
                    return err(NOT_INT);
                };
                (offset, count) = (o, c);
                i += 2;
            }
            _ => return err(SYNTAX),
        }
        i += 1;
    }
    let now = cx.now_ms();
    let resp3 = cx.resp3;
    let m = match cx.store.get(&a[0], now).map(|e| &e.val) {
        None => return Value::Array(Vec::new()),
        Some(Val::ZSet(m)) => m,
        Some(_) => return err(WRONGTYPE),
    };
    if offset < 0 {
        return Value::Array(Vec::new());
    }
    let mut hits: Vec<(f64, &Bytes)> =
        m.iter().filter(|(_, s)| min.below(**s) && max.above(**s)).map(|(k, s)| (*s, k)).collect();
    hits.sort_by(|x, y| x.0.total_cmp(&y.0).then_with(|| x.1.cmp(y.1)));
    let take = if count < 0 { usize::MAX } else { count as usize };
    let mut out = Vec::new();
    for (s, k) in hits.into_iter().skip(offset as usize).take(take) {
        match (withscores, resp3) {
            (false, _) => out.push(bulk(k.clone())),
            (true, true) => out.push(Value::Array(vec![bulk(k.clone()), Value::Double(s)])),
            (true, false) => {
                out.push(bulk(k.clone()));
                out.push(bulk(fmt_score(s)));
            }
        }
    }
    Value::Array(out)
}

/// `ZRANGE key start stop [WITHSCORES]`: by rank only (no `BYSCORE`, `REV`, `LIMIT`), ranks
/// from the end when negative, in (score, member) order.
fn zrange(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let (Some(start), Some(stop)) = (parse_int(&a[1]), parse_int(&a[2])) else { return err(NOT_INT) };
    let withscores = match &a[3..] {
        [] => false,
        [w] if w.eq_ignore_ascii_case(b"WITHSCORES") => true,
        _ => return err(SYNTAX),
    };
    let (now, resp3) = (cx.now_ms(), cx.resp3);
    let m = match cx.store.get(&a[0], now).map(|e| &e.val) {
        None => return Value::Array(Vec::new()),
        Some(Val::ZSet(m)) => m,
        Some(_) => return err(WRONGTYPE),
    };
    let mut all: Vec<(f64, &Bytes)> = m.iter().map(|(k, s)| (*s, k)).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0).then_with(|| x.1.cmp(y.1)));
    let len = all.len() as i64;
    let rank = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (from, to) = (rank(start), rank(stop).min(len - 1));
    let mut out = Vec::new();
    if from <= to {
        for (s, k) in &all[from as usize..=to as usize] {
            match (withscores, resp3) {
                (false, _) => out.push(bulk((*k).clone())),
                (true, true) => out.push(Value::Array(vec![bulk((*k).clone()), Value::Double(*s)])),
                (true, false) => {
                    out.push(bulk((*k).clone()));
                    out.push(bulk(fmt_score(*s)));
                }
            }
        }
    }
    Value::Array(out)
}

fn scan(cx: &Ctx<'_>, a: &[Bytes]) -> Value {
    let Some(cursor) = std::str::from_utf8(&a[0]).ok().and_then(|s| s.parse::<u64>().ok()) else {
        return err("ERR invalid cursor");
    };
    let (mut pattern, mut count, mut ty) = (None, 10usize, None);
    let mut i = 1;
    while i < a.len() {
        let Some(v) = a.get(i + 1) else { return err(SYNTAX) };
        match a[i].to_ascii_uppercase().as_slice() {
            b"MATCH" => pattern = Some(v.clone()),
            b"COUNT" => match parse_int(v) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return err(SYNTAX),
                None => return err(NOT_INT),
            },
            b"TYPE" => ty = Some(String::from_utf8_lossy(v).to_lowercase()),
            _ => return err(SYNTAX),
        }
        i += 2;
    }
    let now = cx.now_ms();
    let (next, keys) = cx.store.scan(cursor, count, now);
    let keys = keys
        .into_iter()
        .filter(|k| pattern.as_ref().is_none_or(|p| glob::matches(p, k)))
        .filter(|k| {
            ty.as_deref().is_none_or(|t| cx.store.peek(k, now).is_some_and(|e| e.val.type_name() == t))
        })
        .map(bulk)
        .collect();
    Value::Array(vec![bulk(next.to_string()), Value::Array(keys)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    struct T {
        store: Store,
        now_us: u64,
        resp3: bool,
    }

    impl T {
        fn new() -> Self {
            Self { store: Store::new(), now_us: 1_000_000_000, resp3: false }
        }
        fn run(&mut self, cmd: &str) -> Value {
            let args: Vec<Bytes> = cmd.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
            exec(&mut Ctx { store: &mut self.store, now_us: self.now_us, resp3: self.resp3 }, &args)
        }
        fn advance_ms(&mut self, ms: u64) {
            self.now_us += ms * 1000;
        }
    }

    fn b(s: &str) -> Value {
        bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn is_err(v: &Value, prefix: &str) -> bool {
        matches!(v, Value::Error(e) if e.starts_with(prefix.as_bytes()))
    }

    #[test]
    fn set_options_and_expiry_follow_the_clock() {
        let mut t = T::new();
        assert_eq!(t.run("SET k v PX 100"), ok());
        assert_eq!(t.run("PTTL k"), Value::Int(100));
        assert_eq!(t.run("TTL k"), Value::Int(0));
        t.advance_ms(99);
        assert_eq!(t.run("GET k"), b("v"));
        t.advance_ms(1);
        assert_eq!(t.run("GET k"), Value::Nil, "expired at the instant");
        assert_eq!(t.run("PTTL k"), Value::Int(-2));
        assert_eq!(t.run("SET k v NX"), ok());
        assert_eq!(t.run("SET k w NX"), Value::Nil);
        assert_eq!(t.run("SET k w XX GET"), b("v"));
        assert_eq!(t.run("SET z w XX"), Value::Nil);
        assert_eq!(t.run("SET k v EX 10"), ok());
        assert_eq!(t.run("SET k v2 KEEPTTL"), ok());
        assert_eq!(t.run("PTTL k"), Value::Int(10_000));
        assert_eq!(t.run("SET k v3"), ok());
        assert_eq!(t.run("PTTL k"), Value::Int(-1), "SET clears the TTL");
        assert!(is_err(&t.run("SET k v PX 0"), "ERR invalid expire time in 'set'"));
        assert!(is_err(&t.run("SET k v PX x"), "ERR value is not an integer"));
        assert!(is_err(&t.run("SET k v NX XX"), "ERR syntax error"));
        assert!(is_err(&t.run("SET k v EX 1 KEEPTTL"), "ERR syntax error"));
        assert!(is_err(&t.run("SET k"), "ERR wrong number of arguments for 'set'"));
        assert_eq!(t.run("GETDEL k"), b("v3"));
        assert_eq!(t.run("GETDEL k"), Value::Nil);
    }

    #[test]
    fn expire_flags_persist_and_getex() {
        let mut t = T::new();
        t.run("SET k v");
        assert_eq!(t.run("PEXPIRE k 1000 XX"), Value::Int(0), "XX needs a TTL");
        assert_eq!(t.run("PEXPIRE k 1000 GT"), Value::Int(0), "no TTL counts as infinite");
        assert_eq!(t.run("PEXPIRE k 1000 LT"), Value::Int(1));
        assert_eq!(t.run("PEXPIRE k 2000 NX"), Value::Int(0));
        assert_eq!(t.run("PEXPIRE k 2000 GT"), Value::Int(1));
        assert_eq!(t.run("PEXPIRE k 500 GT"), Value::Int(0));
        assert_eq!(t.run("EXPIRE k 5"), Value::Int(1));
        assert_eq!(t.run("PTTL k"), Value::Int(5000));
        assert!(is_err(&t.run("PEXPIRE k 5 NX XX"), "ERR NX and XX"));
        assert!(is_err(&t.run("PEXPIRE k 5 GT LT"), "ERR GT and LT"));
        assert_eq!(t.run("PERSIST k"), Value::Int(1));
        assert_eq!(t.run("PERSIST k"), Value::Int(0));
        assert_eq!(t.run("GETEX k PX 50"), b("v"));
        assert_eq!(t.run("PTTL k"), Value::Int(50));
        assert_eq!(t.run("GETEX k PERSIST"), b("v"));
        assert_eq!(t.run("PTTL k"), Value::Int(-1));
        assert_eq!(t.run("PEXPIRE k -1"), Value::Int(1), "a past expiry deletes");
        assert_eq!(t.run("EXISTS k"), Value::Int(0));
        assert_eq!(t.run("PEXPIRE k 10"), Value::Int(0), "missing key");
    }

    #[test]
    fn sorted_sets_and_wrongtype() {
        let mut t = T::new();
        assert_eq!(t.run("ZADD z -1 \0tok 5 a inf b"), Value::Int(3));
        assert_eq!(t.run("ZADD z NX 7 a 1 c"), Value::Int(1));
        assert_eq!(t.run("ZADD z XX CH 6 a 9 nope"), Value::Int(1));
        assert_eq!(t.run("ZADD z GT CH 2 a"), Value::Int(0));
        assert_eq!(t.run("ZADD z LT CH 2 a"), Value::Int(1));
        assert!(is_err(&t.run("ZADD z NX XX 1 a"), "ERR XX and NX"));
        assert!(is_err(&t.run("ZADD z GT LT 1 a"), "ERR GT, LT"));
        assert!(is_err(&t.run("ZADD z abc a"), "ERR value is not a valid float"));
        assert!(is_err(&t.run("ZADD z nan a"), "ERR value is not a valid float"));
        assert!(is_err(&t.run("ZADD z 1 a 2"), "ERR syntax error"));
        assert_eq!(t.run("ZADD z INCR 3 a"), b("5"));
        assert_eq!(
            t.run("ZRANGEBYSCORE z -1 -1"),
            Value::Array(vec![b("\0tok")]),
            "the token query of the tag protocol"
        );
        assert_eq!(t.run("ZRANGEBYSCORE z (1 +inf"), Value::Array(vec![b("a"), b("b")]));
        assert_eq!(t.run("ZRANGEBYSCORE z 1 inf WITHSCORES LIMIT 1 1"), Value::Array(vec![b("a"), b("5")]));
        assert_eq!(t.run("ZRANGEBYSCORE z -inf (5"), Value::Array(vec![b("\0tok"), b("c")]));
        assert!(is_err(&t.run("ZRANGEBYSCORE z x 1"), "ERR min or max is not a float"));
        // By rank: the longest-lived member of a tag is its last.
        assert_eq!(t.run("ZRANGE z -1 -1 WITHSCORES"), Value::Array(vec![b("b"), b("inf")]));
        assert_eq!(t.run("ZRANGE z 0 1"), Value::Array(vec![b("\0tok"), b("c")]));
        assert_eq!(t.run("ZRANGE z -10 10"), Value::Array(vec![b("\0tok"), b("c"), b("a"), b("b")]));
        assert_eq!(t.run("ZRANGE z 3 1"), Value::Array(vec![]));
        assert_eq!(t.run("ZRANGE nope -1 -1 WITHSCORES"), Value::Array(vec![]));
        assert!(is_err(&t.run("ZRANGE z 0 x"), "ERR value is not an integer"));
        assert_eq!(t.run("ZSCORE z b"), b("inf"));
        t.resp3 = true;
        assert_eq!(t.run("ZSCORE z a"), Value::Double(5.0));
        assert_eq!(t.run("ZCARD z"), Value::Int(4));
        assert_eq!(t.run("ZREMRANGEBYSCORE z (-1 inf"), Value::Int(3));
        assert_eq!(t.run("ZREM z \0tok x"), Value::Int(1));
        assert_eq!(t.run("EXISTS z"), Value::Int(0), "an emptied sorted set is deleted");
        t.run("SET s v");
        assert!(is_err(&t.run("ZADD s 1 a"), "WRONGTYPE"));
        assert!(is_err(&t.run("ZRANGEBYSCORE s 1 2"), "WRONGTYPE"));
        t.run("ZADD z 1 a");
        assert!(is_err(&t.run("GET z"), "WRONGTYPE"));
        assert!(is_err(&t.run("INCR z"), "WRONGTYPE"));
        assert_eq!(t.run("MGET z s"), Value::Array(vec![Value::Nil, b("v")]));
        assert_eq!(t.run("TYPE z"), Value::Simple(Bytes::from_static(b"zset")));
        assert!(is_err(&t.run("INCR s"), "ERR value is not an integer"));
        assert_eq!(t.run("INCR n"), Value::Int(1));
        assert_eq!(t.run("DEL z s n nope"), Value::Int(3));
    }

    #[test]
    fn scan_time_dbsize_flushdb() {
        let mut t = T::new();
        for i in 0..30 {
            t.run(&format!("SET k{i} v"));
        }
        t.run("SET other v");
        let mut cursor = "0".to_owned();
        let mut seen = 0;
        loop {
            let Value::Array(r) = t.run(&format!("SCAN {cursor} MATCH k* COUNT 4")) else { panic!() };
            let Value::Array(keys) = &r[1] else { panic!() };
            seen += keys.len();
            cursor = String::from_utf8(r[0].as_bytes().expect("cursor").to_vec()).expect("utf8");
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen, 30);
        assert_eq!(t.run("DBSIZE"), Value::Int(31));
        assert_eq!(t.run("TIME"), Value::Array(vec![b("1000"), b("0")]));
        assert_eq!(t.run("FLUSHDB"), ok());
        assert_eq!(t.run("DBSIZE"), Value::Int(0));
        assert!(is_err(&t.run("SCAN x"), "ERR invalid cursor"));
    }
}
