//! `CONFIG GET` and `CONFIG SET` of the settings a node models: `maxmemory` and
//! `maxmemory-policy`.

use bytes::Bytes;
use slotcache_core::Value;

use super::command_ctx::{err, ok, parse_int};
use super::eviction::EvictionPolicy;
use super::glob;

/// `CONFIG GET pattern...` (`maxmemory`, `maxmemory-policy`) and `CONFIG SET` of them, on a
/// node's `maxmemory` (bytes, 0: no limit) and `policy`; `resp3`: the reply to `GET` is a map.
pub fn config(args: &[Bytes], maxmemory: &mut usize, policy: &mut EvictionPolicy, resp3: bool) -> Value {
    let set = args[1].eq_ignore_ascii_case(b"SET");
    if args.len() < 3 || (set && args.len() % 2 != 0) {
        let sub = if set { "set" } else { "get" };
        return err(&format!("ERR wrong number of arguments for 'config|{sub}' command"));
    }
    if set {
        for kv in args[2..].chunks(2) {
            let bad = || {
                err(&format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - argument couldn't be parsed into an integer",
                    String::from_utf8_lossy(&kv[0])
                ))
            };
            match kv[0].to_ascii_lowercase().as_slice() {
                b"maxmemory" => match parse_memory(&kv[1]) {
                    Some(b) => *maxmemory = b,
                    None => return bad(),
                },
                b"maxmemory-policy" => match EvictionPolicy::parse(&kv[1]) {
                    Some(p) => *policy = p,
                    None => {
                        return err(&format!(
                            "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: {}",
                            EvictionPolicy::ALL.map(EvictionPolicy::name).join(", ")
                        ));
                    }
                },
                other => {
                    return err(&format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                        String::from_utf8_lossy(other)
                    ));
                }
            }
        }
        return ok();
    }
    let params = [("maxmemory", maxmemory.to_string()), ("maxmemory-policy", policy.name().to_owned())];
    let mut pairs = Vec::new();
    for (name, value) in params {
        if args[2..].iter().any(|p| glob::matches(&p.to_ascii_lowercase(), name.as_bytes())) {
            pairs.push((Value::Bulk(Bytes::from_static(name.as_bytes())), Value::Bulk(Bytes::from(value))));
        }
    }
    if resp3 {
        Value::Map(pairs)
    } else {
        Value::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
    }
}

/// `100`, `10kb`, `5mb`, `1gb` (and `k`/`m`/`g` as powers of 1000), as Valkey reads memory.
fn parse_memory(b: &[u8]) -> Option<usize> {
    let s = String::from_utf8_lossy(b).to_lowercase();
    let units: [(&str, usize); 6] =
        [("kb", 1024), ("mb", 1 << 20), ("gb", 1 << 30), ("k", 1000), ("m", 1_000_000), ("g", 1_000_000_000)];
    for (u, mult) in units {
        if let Some(num) = s.strip_suffix(u) {
            return usize::try_from(parse_int(num.as_bytes())?).ok()?.checked_mul(mult);
        }
    }
    usize::try_from(parse_int(s.as_bytes())?).ok()
}
