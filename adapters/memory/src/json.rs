//! RedisJSON 2.x documents: the `JSON.*` commands the cache sends, on one node's [`Store`](super::store::Store), with
//! RedisJSON's reply shapes.
//!
//! - `JSON.SET k <path> <json> [NX|XX]`: a new key only at the root; replacing a document keeps
//!   the key's TTL (RedisJSON changes the value in place); `NX`/`XX` unmet answer nil.
//! - `JSON.GET k [<path>]`: a `$` path answers the JSON array of its matches (`[doc]` for
//!   `$`, `[]` when nothing matches); a legacy path (`.`, `.a.b`, or none) answers the value
//!   itself, or an error when it does not exist.
//! - `JSON.MGET k… <path>`: one reply per key, nil for a missing key or another type.
//! - `JSON.DEL k [<path>]`: the number of values deleted; the root deletes the key.
//! - `JSON.TYPE k [<path>]`.
//!
//! Paths: `$`, `$.a.b`, `.`, `.a.b`, `a.b` (members of letters, digits and `_`). Filters,
//! wildcards, array indexes and several paths per `JSON.GET` are not modelled (an `ERR`).
//! Objects keep their members in key order (see [`Val::Json`]), and output is compact.

use bytes::Bytes;
use serde_json::Value as Json;
use slotcache_core::Value;

use super::command_ctx::{Ctx, WRONGTYPE, err, ok};
use super::store::{Entry, Val, json_text as text};

/// A parsed path: whether it is a legacy path, and its member names from the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// A legacy path (`.a`): replies are the value itself, not an array of matches.
    pub legacy: bool,
    /// The members from the root (empty: the root).
    pub members: Vec<String>,
}

impl Path {
    /// Parses `$`, `$.a.b`, `.`, `.a.b` or `a.b`.
    ///
    /// # Errors
    /// The `ERR` reply for a path the node model does not have.
    pub fn parse(p: &[u8]) -> Result<Self, Value> {
        let s = std::str::from_utf8(p).map_err(|_| err("ERR invalid path"))?;
        let (legacy, rest) = if s == "$" {
            (false, "")
        } else if let Some(r) = s.strip_prefix("$.") {
            (false, r)
        } else if s == "." {
            (true, "")
        } else {
            (true, s.strip_prefix('.').unwrap_or(s))
        };
        if rest.is_empty() {
            return Ok(Self { legacy, members: Vec::new() });
        }
        let members: Vec<String> = rest.split('.').map(str::to_owned).collect();
        let ok_name = |m: &String| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !members.iter().all(ok_name) {
            return Err(err(&format!(
                "ERR invalid JSONPath '{s}' (the node model reads $, $.a.b and .a.b paths only)"
            )));
        }
        Ok(Self { legacy, members })
    }

    /// The value at this path in `doc`.
    #[must_use]
    pub fn get<'a>(&self, doc: &'a Json) -> Option<&'a Json> {
        self.members.iter().try_fold(doc, |v, m| v.as_object()?.get(m))
    }

    /// The reply for this path in `doc`: `[match]`/`[]`, or the legacy value (an error when
    /// missing).
    #[must_use]
    pub fn reply(&self, doc: &Json) -> Value {
        match (self.get(doc), self.legacy) {
            (Some(v), false) => Value::Bulk(Bytes::from(text(&Json::Array(vec![v.clone()])))),
            (None, false) => Value::Bulk(Bytes::from_static(b"[]")),
            (Some(v), true) => Value::Bulk(Bytes::from(text(v))),
            (None, true) => err(&format!("ERR Path '$.{}' does not exist", self.members.join("."))),
        }
    }
}

/// Runs a `JSON.*` command (`name` upper-case, `a` its arguments; arity already checked).
pub fn exec(cx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Value {
    match name {
        "JSON.SET" => set(cx, a),
        "JSON.GET" => get(cx, a),
        "JSON.MGET" => mget(cx, a),
        "JSON.DEL" => del(cx, a),
        "JSON.TYPE" => json_type(cx, a),
        _ => err(&format!("ERR unknown command '{name}'")),
    }
}

/// The document at `key`: `Ok(None)` when absent, the `WRONGTYPE` reply for another type.
fn doc_at<'a>(cx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Json>, Value> {
    let now = cx.now_us / 1000;
    match cx.store.get(key, now) {
        None => Ok(None),
        Some(Entry { val: Val::Json(v), .. }) => Ok(Some(v)),
        Some(_) => Err(err(WRONGTYPE)),
    }
}

fn one_path(a: &[Bytes], at: usize) -> Result<Path, Value> {
    match a.len().saturating_sub(at) {
        0 => Ok(Path { legacy: true, members: Vec::new() }),
        1 => Path::parse(&a[at]),
        _ => Err(err("ERR the node model reads JSON.GET with one path only")),
    }
}

fn set(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let path = match Path::parse(&a[1]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let new: Json = match serde_json::from_slice(&a[2]) {
        Ok(v) => v,
        Err(e) => return err(&format!("ERR {e}")),
    };
    let (mut nx, mut xx) = (false, false);
    for o in &a[3..] {
        match o.to_ascii_uppercase().as_slice() {
            b"NX" if !xx => nx = true,
            b"XX" if !nx => xx = true,
            _ => return err("ERR syntax error"),
        }
    }
    let now = cx.now_us / 1000;
    let existing = match cx.store.peek(&a[0], now).map(|e| &e.val) {
        None => None,
        Some(Val::Json(v)) => Some(v.clone()),
        Some(_) => return err(WRONGTYPE),
    };
    let Some(mut doc) = existing else {
        if !path.members.is_empty() {
            return err("ERR new objects must be created at the root");
        }
        if xx {
            return Value::Nil;
        }
        cx.store.insert(a[0].clone(), Entry::new(Val::Json(new)));
        return ok();
    };
    let Some((last, parents)) = path.members.split_last() else {
        if nx {
            return Value::Nil;
        }
        cx.store.get_mut(&a[0], now, |e| e.val = Val::Json(new));
        return ok();
    };
    let parent = parents.iter().try_fold(&mut doc, |v, m| v.as_object_mut()?.get_mut(m));
    let Some(Json::Object(obj)) = parent else { return Value::Nil };
    let present = obj.contains_key(last);
    if (nx && present) || (xx && !present) {
        return Value::Nil;
    }
    obj.insert(last.clone(), new);
    cx.store.get_mut(&a[0], now, |e| e.val = Val::Json(doc));
    ok()
}

fn get(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let path = match one_path(a, 1) {
        Ok(p) => p,
        Err(e) => return e,
    };
    match doc_at(cx, &a[0]) {
        Ok(None) => Value::Nil,
        Ok(Some(doc)) => path.reply(doc),
        Err(e) => e,
    }
}

fn mget(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let Some((path, keys)) = a.split_last() else { return err("ERR wrong number of arguments") };
    let path = match Path::parse(path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let out = keys
        .iter()
        .map(|k| match doc_at(cx, k) {
            Ok(Some(doc)) => match path.reply(doc) {
                Value::Error(_) => Value::Nil,
                v => v,
            },
            _ => Value::Nil,
        })
        .collect();
    Value::Array(out)
}

fn del(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let path = match one_path(a, 1) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let now = cx.now_us / 1000;
    let mut doc = match doc_at(cx, &a[0]) {
        Ok(None) => return Value::Int(0),
        Ok(Some(d)) => d.clone(),
        Err(e) => return e,
    };
    let Some((last, parents)) = path.members.split_last() else {
        cx.store.remove(&a[0], now);
        return Value::Int(1);
    };
    let parent = parents.iter().try_fold(&mut doc, |v, m| v.as_object_mut()?.get_mut(m));
    let removed = match parent {
        Some(Json::Object(obj)) => obj.remove(last).is_some(),
        _ => false,
    };
    if removed {
        cx.store.get_mut(&a[0], now, |e| e.val = Val::Json(doc));
    }
    Value::Int(i64::from(removed))
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_f64() => "number",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn json_type(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let path = match one_path(a, 1) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let doc = match doc_at(cx, &a[0]) {
        Ok(None) => return Value::Nil,
        Ok(Some(d)) => d,
        Err(e) => return e,
    };
    let name = |v: &Json| Value::Bulk(Bytes::from_static(type_name(v).as_bytes()));
    match (path.get(doc), path.legacy) {
        (Some(v), true) => Value::Simple(Bytes::from_static(type_name(v).as_bytes())),
        (None, true) => Value::Nil,
        (v, false) => Value::Array(v.into_iter().map(name).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::exec as run_cmd;
    use crate::store::Store;

    struct T {
        store: Store,
        now_us: u64,
    }

    impl T {
        fn run(&mut self, args: &[&str]) -> Value {
            let args: Vec<Bytes> = args.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
            run_cmd(&mut Ctx { store: &mut self.store, now_us: self.now_us, resp3: false }, &args)
        }
    }

    fn b(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn is_err(v: &Value, prefix: &str) -> bool {
        matches!(v, Value::Error(e) if e.starts_with(prefix.as_bytes()))
    }

    #[test]
    fn set_get_mget_del_and_types() {
        let mut t = T { store: Store::new(), now_us: 1_000_000_000 };
        assert_eq!(t.run(&["JSON.SET", "d", "$", r#"{"b":1,"a":{"x":"y"}}"#]), ok());
        assert_eq!(t.run(&["JSON.GET", "d", "$"]), b(r#"[{"a":{"x":"y"},"b":1}]"#));
        assert_eq!(t.run(&["JSON.GET", "d", "$.a.x"]), b(r#"["y"]"#));
        assert_eq!(t.run(&["JSON.GET", "d", "$.nope"]), b("[]"));
        assert_eq!(t.run(&["JSON.GET", "d"]), b(r#"{"a":{"x":"y"},"b":1}"#), "legacy root");
        assert_eq!(t.run(&["JSON.GET", "d", ".b"]), b("1"));
        assert!(is_err(&t.run(&["JSON.GET", "d", ".nope"]), "ERR Path"));
        assert_eq!(t.run(&["JSON.GET", "missing", "$"]), Value::Nil);
        assert_eq!(t.run(&["TYPE", "d"]), Value::Simple(Bytes::from_static(b"ReJSON-RL")));
        assert_eq!(t.run(&["JSON.TYPE", "d", "$.b"]), Value::Array(vec![b("integer")]));
        // NX / XX, members, and a new key only at the root.
        assert_eq!(t.run(&["JSON.SET", "d", "$", "{}", "NX"]), Value::Nil);
        assert_eq!(t.run(&["JSON.SET", "e", "$", "{}", "XX"]), Value::Nil);
        assert!(is_err(
            &t.run(&["JSON.SET", "e", "$.a", "1"]),
            "ERR new objects must be created at the root"
        ));
        assert_eq!(t.run(&["JSON.SET", "d", "$.c", "[1,2]"]), ok());
        assert_eq!(t.run(&["JSON.SET", "d", "$.c", "3", "NX"]), Value::Nil);
        assert_eq!(t.run(&["JSON.SET", "d", "$.q.r", "3"]), Value::Nil, "no parent");
        assert!(is_err(&t.run(&["JSON.SET", "d", "$", "{nope"]), "ERR "));
        assert!(is_err(&t.run(&["JSON.SET", "d", "$[0]", "1"]), "ERR invalid JSONPath"));
        // Wrong types both ways.
        t.run(&["SET", "s", "v"]);
        assert!(is_err(&t.run(&["JSON.GET", "s", "$"]), "WRONGTYPE"));
        assert!(is_err(&t.run(&["JSON.SET", "s", "$", "{}"]), "WRONGTYPE"));
        assert!(is_err(&t.run(&["GET", "d"]), "WRONGTYPE"));
        assert_eq!(
            t.run(&["JSON.MGET", "d", "s", "missing", "$.b"]),
            Value::Array(vec![b("[1]"), Value::Nil, Value::Nil])
        );
        // A replaced document keeps the key's TTL.
        t.run(&["PEXPIRE", "d", "1000"]);
        t.run(&["JSON.SET", "d", "$", r#"{"z":true}"#]);
        assert_eq!(t.run(&["PTTL", "d"]), Value::Int(1000));
        assert_eq!(t.run(&["JSON.DEL", "d", "$.z"]), Value::Int(1));
        assert_eq!(t.run(&["JSON.GET", "d", "$"]), b("[{}]"));
        assert_eq!(t.run(&["JSON.DEL", "d", "$"]), Value::Int(1));
        assert_eq!(t.run(&["JSON.DEL", "d", "$"]), Value::Int(0));
        assert_eq!(t.run(&["EXISTS", "d"]), Value::Int(0));
        // Expiry applies like to any key.
        t.run(&["JSON.SET", "x", "$", "{}"]);
        t.run(&["PEXPIRE", "x", "10"]);
        t.now_us += 10_000;
        assert_eq!(t.run(&["JSON.GET", "x", "$"]), Value::Nil);
        assert!(is_err(&t.run(&["JSON.GET"]), "ERR wrong number of arguments"));
        assert!(is_err(&t.run(&["JSON.MGET", "a"]), "ERR wrong number of arguments"));
    }
}
