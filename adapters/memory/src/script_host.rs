//! What a native script twin runs in: the registry of twins by the SHA-1 of their Lua source,
//! the context their commands run against ([`ScriptCtx::call`], Lua's `redis.call`, checked
//! against the cluster state like Valkey checks a script's commands), and Valkey's text for a
//! script's error. The twins themselves are in [`super::scripts`] and [`super::json_scripts`].

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use slotcache_core::cache::scripts::sha1_hex;
use slotcache_core::{Slot, Value};

use super::command_ctx::{Ctx, err, parse_int};
use super::commands::{self, spec_of};
use super::routing::View;
use super::store::Store;

/// A native script: `(ctx, KEYS, ARGV)` → the script's reply, or the error it raised.
pub type NativeFn = fn(&mut ScriptCtx<'_>, &[Bytes], &[Bytes]) -> Result<Value, String>;

/// One script the node model can run.
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
    view: View<'a>,
    store: &'a mut Store,
    now_us: u64,
    /// The node was over `maxmemory` when the script started.
    oom: bool,
    wrote: bool,
    slot: Option<Slot>,
    is_primary: bool,
    /// The node has the JSON and search modules.
    modules: bool,
}

impl<'a> ScriptCtx<'a> {
    /// A script's context on a node: its routing `view`, keyspace and clock (µs since the Unix
    /// epoch); `oom`: the node was over `maxmemory` when the script started (its first write
    /// that may grow memory fails); `is_primary`: its reads expire keys lazily; `modules`:
    /// `JSON.*` and `FT.*` exist.
    #[must_use]
    pub const fn new(
        view: View<'a>,
        store: &'a mut Store,
        now_us: u64,
        oom: bool,
        is_primary: bool,
        modules: bool,
    ) -> Self {
        Self { view, store, now_us, oom, wrote: false, slot: None, is_primary, modules }
    }
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

/// Lua's `ARGV[i + 1]` (or `KEYS`): the argument, or the error Lua raises for a nil.
pub fn arg<'a>(v: &'a [Bytes], i: usize, what: &str) -> Result<&'a Bytes, String> {
    v.get(i).ok_or_else(|| format!("ERR user_script:1: attempt to use a nil value ({what}[{}])", i + 1))
}

/// An array reply's items (nothing for any other reply), as Lua sees a table.
#[must_use]
pub fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

/// Lua's `a .. b` on byte strings.
#[must_use]
pub fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

/// The indexes of an `EVAL`/`EVALSHA`'s keys in `args`.
///
/// # Errors
/// Valkey's reply to a malformed key count.
pub fn script_keys(args: &[Bytes]) -> Result<Vec<usize>, Value> {
    if args.len() < 3 {
        return Err(commands::arity_error(&String::from_utf8_lossy(&args[0])));
    }
    let Some(n) = parse_int(&args[2]) else {
        return Err(err("ERR value is not an integer or out of range"));
    };
    let Ok(n) = usize::try_from(n) else { return Err(err("ERR Number of keys can't be negative")) };
    if n > args.len() - 3 {
        return Err(err("ERR Number of keys can't be greater than number of args"));
    }
    Ok((3..3 + n).collect())
}

/// `EVAL` / `EVALSHA` (`args`, its keys at `keys`) on a node that serves the script's keys:
/// `EVAL` adds the script to the node's `script_cache`, `EVALSHA` of a script not in it
/// answers `NOSCRIPT`; the twin registered for the script runs in `cx`.
pub fn run_script(
    registry: &Registry,
    script_cache: &mut BTreeSet<String>,
    mut cx: ScriptCtx<'_>,
    args: &[Bytes],
    keys: &[usize],
) -> Value {
    let by_sha = args[0].eq_ignore_ascii_case(b"EVALSHA");
    let sha = if by_sha {
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        if !script_cache.contains(&sha) {
            return err("NOSCRIPT No matching script. Please use EVAL.");
        }
        sha
    } else {
        let sha = sha1_hex(&args[1]);
        script_cache.insert(sha.clone());
        sha
    };
    let Some(script) = registry.get(&sha) else {
        return err(&format!(
            "ERR the node model has no native version of script {sha} (register one in its slotcache_memory::script_host::Registry)"
        ));
    };
    let key_args: Vec<Bytes> = keys.iter().map(|i| args[*i].clone()).collect();
    let argv = &args[3 + keys.len()..];
    match (script.run)(&mut cx, &key_args, argv) {
        Ok(v) => v,
        Err(msg) => script_error(&msg, &sha),
    }
}

/// `SCRIPT LOAD source`, `SCRIPT EXISTS sha...` and `SCRIPT FLUSH [ASYNC|SYNC]` on a node's
/// script cache (SHA-1s in lower-case hex).
pub fn script_command(script_cache: &mut BTreeSet<String>, args: &[Bytes]) -> Value {
    let sub = args.get(1).map(|a| a.to_ascii_uppercase()).unwrap_or_default();
    match sub.as_slice() {
        b"LOAD" if args.len() == 3 => {
            let sha = sha1_hex(&args[2]);
            script_cache.insert(sha.clone());
            Value::Bulk(Bytes::from(sha))
        }
        b"EXISTS" if args.len() >= 3 => Value::Array(
            args[2..]
                .iter()
                .map(|s| {
                    let sha = String::from_utf8_lossy(s).to_ascii_lowercase();
                    Value::Int(i64::from(script_cache.contains(&sha)))
                })
                .collect(),
        ),
        b"FLUSH" if args.len() <= 3 => {
            let mode_ok = args
                .get(2)
                .is_none_or(|m| m.eq_ignore_ascii_case(b"ASYNC") || m.eq_ignore_ascii_case(b"SYNC"));
            if !mode_ok {
                return err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
            }
            script_cache.clear();
            super::command_ctx::ok()
        }
        _ => commands::arity_error(&format!("script|{}", String::from_utf8_lossy(&sub).to_lowercase())),
    }
}
