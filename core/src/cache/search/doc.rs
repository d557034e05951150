//! How an entry is stored in a searchable namespace: as a JSON document (`JSON.SET k $ doc`),
//! so the search module can index its fields.
//!
//! The value (the JSON codec's bytes) must be a JSON object. Tags' tokens and the refresh time
//! travel in a reserved top-level member, written first and stripped on read:
//!
//! ```text
//! {"__slotcache":{"t":[["tag","token"],...],"r":1700000000000}, ...the value's members...}
//! ```
//!
//! The member is present only when the entry has tags or a refresh time. Reads use
//! `JSON.GET k $`, whose reply is the document wrapped in a one-element array; the stored form
//! handed around by the cache layer is that reply, byte for byte, so a compare-and-set can
//! compare its SHA-1 with what the server reads ([`CAS_JSON`]).

use bytes::Bytes;
use serde_json::{Map, Value as Json};

use crate::cache::envelope::{Entry, TagToken};
use crate::cache::error::CacheError;
use crate::cache::scripts::Script;

/// The reserved top-level member holding tag tokens and the refresh time.
pub const RESERVED_FIELD: &str = "__slotcache";

fn codec(reason: impl Into<String>) -> CacheError {
    CacheError::Codec(reason.into())
}

/// The document to store for `entry` (whose payload is the JSON codec's bytes).
///
/// # Errors
/// [`CacheError::Config`] when transformers were applied (a searchable namespace stores plain
/// JSON); [`CacheError::Codec`] when the value is not a JSON object or already has the
/// reserved member.
pub fn to_document(entry: &Entry) -> Result<Bytes, CacheError> {
    if !entry.transforms.is_empty() {
        return Err(CacheError::Config("a searchable namespace cannot use value transformers".into()));
    }
    let obj: Map<String, Json> = serde_json::from_slice(&entry.payload)
        .map_err(|e| codec(format!("a searchable namespace stores JSON objects only: {e}")))?;
    if obj.contains_key(RESERVED_FIELD) {
        return Err(codec(format!("the value has the reserved member {RESERVED_FIELD:?}")));
    }
    if entry.tags.is_empty() && entry.refresh_at_ms.is_none() {
        return Ok(entry.payload.clone());
    }
    let mut meta = Map::new();
    if !entry.tags.is_empty() {
        let tags = entry
            .tags
            .iter()
            .map(|t| {
                let tag = std::str::from_utf8(&t.tag).map_err(|_| CacheError::invalid_tag("not UTF-8"))?;
                let tok =
                    std::str::from_utf8(&t.token).map_err(|_| CacheError::invalid_tag("token not UTF-8"))?;
                Ok(Json::Array(vec![Json::String(tag.to_owned()), Json::String(tok.to_owned())]))
            })
            .collect::<Result<Vec<_>, CacheError>>()?;
        meta.insert("t".into(), Json::Array(tags));
    }
    if let Some(r) = entry.refresh_at_ms {
        meta.insert("r".into(), Json::from(r));
    }
    let meta = serde_json::to_vec(&Json::Object(meta)).map_err(|e| codec(e.to_string()))?;
    // Splice the member in first: the value's own bytes (and member order) stay as encoded.
    let body = entry.payload.as_ref();
    let open = body.iter().position(|&b| b == b'{').ok_or_else(|| codec("not an object"))?;
    let rest = &body[open + 1..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(body.len() + meta.len() + 20);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(RESERVED_FIELD.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(&meta);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Ok(Bytes::from(out))
}

/// The entry in a stored document (a `JSON.GET k $` reply `[doc]`, or a bare document).
///
/// # Errors
/// [`CacheError::Corrupt`] for a document that is not an object or has a malformed reserved
/// member.
pub fn from_stored(stored: &[u8]) -> Result<Entry, CacheError> {
    let corrupt = |what: &'static str| CacheError::Corrupt { what };
    let v: Json =
        serde_json::from_slice(stored).map_err(|_| corrupt("a stored document that is not JSON"))?;
    let v = match v {
        Json::Array(mut a) if a.len() == 1 => a.pop().unwrap_or(Json::Null),
        other => other,
    };
    let Json::Object(mut obj) = v else { return Err(corrupt("a stored document that is not an object")) };
    let mut entry = Entry::default();
    if let Some(meta) = obj.remove(RESERVED_FIELD) {
        let Json::Object(meta) = meta else { return Err(corrupt("a malformed __slotcache member")) };
        if let Some(t) = meta.get("t") {
            let Json::Array(t) = t else { return Err(corrupt("a malformed __slotcache.t")) };
            for pair in t {
                match pair.as_array().map(Vec::as_slice) {
                    Some([Json::String(tag), Json::String(tok)]) => entry.tags.push(TagToken {
                        tag: Bytes::copy_from_slice(tag.as_bytes()),
                        token: Bytes::copy_from_slice(tok.as_bytes()),
                    }),
                    _ => return Err(corrupt("a malformed __slotcache.t")),
                }
            }
        }
        if let Some(r) = meta.get("r") {
            entry.refresh_at_ms = Some(r.as_u64().ok_or_else(|| corrupt("a malformed __slotcache.r"))?);
        }
    }
    entry.payload =
        Bytes::from(serde_json::to_vec(&Json::Object(obj)).map_err(|_| corrupt("an unencodable document"))?);
    Ok(entry)
}

/// Writes a document atomically: `DEL` (the key may hold another type), `JSON.SET k $ doc`,
/// and `PEXPIRE` when a TTL is given.
///
/// `KEYS[1]` data key; `ARGV[1]` document; `ARGV[2]` TTL in ms or empty; optional `ARGV[3]`
/// (the namespace's `expire_after_update`): the TTL to use instead when the key exists (ms or
/// empty). Returns `OK`.
pub static JSON_WRITE: Script = Script::new(
    "json_write",
    r"
local ttl = ARGV[2]
if #ARGV >= 3 and redis.call('EXISTS', KEYS[1]) == 1 then
  ttl = ARGV[3]
end
redis.call('DEL', KEYS[1])
redis.call('JSON.SET', KEYS[1], '$', ARGV[1])
if ttl ~= '' then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {ok = 'OK'}
",
);

/// Reads a document and sets its remaining life (the namespace's `expire_after_read`): the
/// `JSON.GET k $` reply, or nil when there is no such key. `KEYS[1]` data key; `ARGV[1]` the
/// TTL in ms.
pub static JSON_GET_TOUCH: Script = Script::new(
    "json_get_touch",
    r"
local v = redis.call('JSON.GET', KEYS[1], '$')
if v then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return v
",
);

/// Reads a document and deletes it: `KEYS[1]` data key. Returns the `JSON.GET k $` reply, or
/// nil when there was no document (any other type is deleted and nil returned).
pub static JSON_GETDEL: Script = Script::new(
    "json_getdel",
    r"
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return false end
local v = false
if t == 'ReJSON-RL' then v = redis.call('JSON.GET', KEYS[1], '$') end
redis.call('DEL', KEYS[1])
return v
",
);

/// [`crate::cache::scripts::DEL_IF_STALE`] for documents: deletes the document if its reserved
/// member carries the tag with a token other than the tag's current one.
///
/// `KEYS[1]` data key; `ARGV[1]` tag; `ARGV[2]` the tag's **current** token (the one the
/// invalidation just swapped in). Reads `JSON.GET k $.__slotcache` and decodes it with
/// `cjson` (no substring search): the first pair `[tag, token]` of its `t` member whose tag
/// equals `ARGV[1]` decides. Deletes the document iff that pair's token is a string other than
/// `ARGV[2]`, and then returns `[{"__slotcache":<member>}]` (what [`from_stored`] reads: the
/// deleted entry's tags, for counting). Returns nil and leaves the key alone when it is absent
/// or not a document, has no reserved member or no pair for the tag (untagged, rewritten
/// without the tag), carries `ARGV[2]` (rewritten after the swap), or the member is malformed.
pub static DEL_IF_STALE_JSON: Script = Script::new(
    "del_if_stale_json",
    r#"
if redis.call('TYPE', KEYS[1])['ok'] ~= 'ReJSON-RL' then return false end
local m = redis.call('JSON.GET', KEYS[1], '$.__slotcache')
if not m then return false end
local ok, d = pcall(cjson.decode, m)
if not ok or type(d) ~= 'table' or type(d[1]) ~= 'table' then return false end
local t = d[1]['t']
if type(t) ~= 'table' then return false end
for _, pair in ipairs(t) do
  if type(pair) == 'table' and pair[1] == ARGV[1] then
    if type(pair[2]) ~= 'string' or pair[2] == ARGV[2] then return false end
    redis.call('DEL', KEYS[1])
    return '[{"__slotcache":' .. string.sub(m, 2, -2) .. '}]'
  end
end
return false
"#,
);

/// [`crate::cache::scripts::CAS`] for documents: `ARGV[1]` is the SHA-1 hex of the
/// `JSON.GET k $` reply read (empty if absent), `ARGV[2]` `set` or `del`, `ARGV[3]` the new
/// document, `ARGV[4]` TTL in ms or empty. Returns 1 when applied, 0 on conflict.
pub static CAS_JSON: Script = Script::new(
    "cas_json",
    r"
local t = redis.call('TYPE', KEYS[1])['ok']
local v = false
if t == 'ReJSON-RL' then v = redis.call('JSON.GET', KEYS[1], '$') end
if ARGV[1] == '' then
  if t ~= 'none' then return 0 end
elseif (not v) or redis.sha1hex(v) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if ARGV[2] == 'set' then
  redis.call('JSON.SET', KEYS[1], '$', ARGV[3])
  if ARGV[4] ~= '' then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
  end
end
return 1
",
);

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(payload: &str) -> Entry {
        Entry::plain(Bytes::copy_from_slice(payload.as_bytes()))
    }

    #[test]
    fn untagged_documents_are_the_value() {
        assert_eq!(to_document(&entry(r#"{"a":1}"#)).expect("doc").as_ref(), br#"{"a":1}"#);
        assert!(to_document(&entry("[1]")).is_err());
        assert!(to_document(&entry("3")).is_err());
        assert!(to_document(&entry(r#"{"__slotcache":1}"#)).is_err());
    }

    #[test]
    fn tags_and_refresh_round_trip() {
        for body in [r#"{"b":"x","a":[1,2]}"#, "{}", " { } "] {
            let mut e = entry(body);
            e.tags.push(TagToken { tag: Bytes::from_static(b"t\"1"), token: Bytes::from_static(b"abc") });
            e.refresh_at_ms = Some(42);
            let doc = to_document(&e).expect("doc");
            assert!(doc.starts_with(br#"{"__slotcache":"#), "{doc:?}");
            let wrapped = format!("[{}]", String::from_utf8_lossy(&doc));
            let back = from_stored(wrapped.as_bytes()).expect("back");
            assert_eq!(back.tags, e.tags);
            assert_eq!(back.refresh_at_ms, Some(42));
            let a: Json = serde_json::from_slice(&back.payload).expect("json");
            let b: Json = serde_json::from_str(body.trim()).expect("json");
            assert_eq!(a, b);
        }
    }

    #[test]
    fn del_if_stale_json_reply_gives_the_tags() {
        let e = from_stored(br#"[{"__slotcache":{"t":[["x","tok"]],"r":5}}]"#).expect("entry");
        assert_eq!(
            e.tags,
            vec![TagToken { tag: Bytes::from_static(b"x"), token: Bytes::from_static(b"tok") }]
        );
        assert_eq!(e.refresh_at_ms, Some(5));
    }

    #[test]
    fn malformed_documents_are_corrupt_not_panics() {
        for bad in [
            "",
            "[",
            "[1]",
            "3",
            r#"{"__slotcache":3}"#,
            r#"{"__slotcache":{"t":[[1]]}}"#,
            r#"{"__slotcache":{"r":"x"}}"#,
        ] {
            assert!(from_stored(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
