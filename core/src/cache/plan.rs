//! Command plans: the commands each cache operation sends, and how their replies are read.
//!
//! Every builder returns [`Cmd`]s already routed to their key's slot, so the async layer only
//! has to send them (in one pipeline per step) and hand the replies back here.

use std::collections::HashMap;

use bytes::Bytes;

use crate::client::Cmd;
use crate::keys::{EncodedKey, Namespace};
use crate::resp::Value;
use crate::server_error::{ServerError, ServerErrorKind};
use crate::slot::key_slot;

use super::envelope::Entry;
use super::error::CacheError;
use super::scripts::{self, Script};

/// One command of a round, with the script it calls (for the `EVAL` fallback).
#[derive(Clone, Debug)]
pub struct Command {
    /// The command (`EVALSHA` for a script).
    pub cmd: Cmd,
    /// The script it runs, if it is an `EVALSHA`.
    pub script: Option<&'static Script>,
}

impl Command {
    /// The same command on its node's blocking lane ([`Cmd::blocking`]): what a `WAIT` will
    /// follow, so the `WAIT` holds up no other traffic.
    #[must_use]
    pub fn blocking(self) -> Self {
        Self { cmd: self.cmd.blocking(), ..self }
    }
}

impl From<Cmd> for Command {
    fn from(cmd: Cmd) -> Self {
        Self { cmd, script: None }
    }
}

impl Command {
    /// An `EVALSHA` of `script`.
    #[must_use]
    pub const fn script(cmd: Cmd, script: &'static Script) -> Self {
        Self { cmd, script: Some(script) }
    }
}

fn unexpected(command: &'static str, v: &Value) -> CacheError {
    let mut got = format!("{v:?}");
    got.truncate(200);
    CacheError::UnexpectedReply { command, got }
}

/// `EVALSHA` (or `EVAL` when `by_sha` is false, after a `NOSCRIPT`) of `script` on one key.
#[must_use]
pub fn script(script: &Script, key: &EncodedKey, args: Vec<Bytes>, by_sha: bool, idempotent: bool) -> Cmd {
    let mut cmd =
        if by_sha { Cmd::new("EVALSHA").arg(script.sha1()) } else { Cmd::new("EVAL").arg(script.source) };
    cmd = cmd.arg(1u8).arg(key.bytes().clone());
    for a in args {
        cmd.push_arg(a);
    }
    cmd.with_slot(key.slot()).with_idempotent(idempotent).with_read_only(false)
}

/// Whether a reply is `NOSCRIPT` (the node does not have the script cached yet).
#[must_use]
pub fn is_noscript(v: &Value) -> bool {
    matches!(v, Value::Error(e) if ServerError::new(e.clone()).kind() == &ServerErrorKind::NoScript)
}

/// Turns an `EVALSHA` into the equivalent `EVAL`.
#[must_use]
pub fn as_eval(cmd: &Cmd, script: &Script) -> Cmd {
    let mut args = cmd.args().to_vec();
    if let [name, body, ..] = args.as_mut_slice() {
        *name = Bytes::from_static(b"EVAL");
        *body = Bytes::from_static(script.source.as_bytes());
    }
    let mut out = Cmd::from_args(args).with_read_only(false);
    if let Some(slot) = cmd.slot() {
        out = out.with_slot(slot);
    }
    if let Some(i) = cmd.idempotent_override() {
        out = out.with_idempotent(i);
    }
    if cmd.is_blocking() {
        out = out.blocking();
    }
    out
}

/// `GET` of a data key.
#[must_use]
pub fn get(key: &EncodedKey) -> Cmd {
    Cmd::new("GET").arg(key.bytes().clone()).with_slot(key.slot())
}

/// `GET` forced to the primary (reads that must see the latest write: compute, tag checks).
#[must_use]
pub fn get_primary(key: &EncodedKey) -> Cmd {
    get(key).with_read_only(false)
}

/// `GETEX key PX ms`: a read that sets the entry's remaining life (sliding expiry). A write
/// for routing: it goes to the primary.
#[must_use]
pub fn getex(key: &EncodedKey, ms: u64) -> Cmd {
    Cmd::new("GETEX").arg(key.bytes().clone()).arg("PX").arg(ms).with_slot(key.slot())
}

/// `SET key bytes [PX ttl]`.
#[must_use]
pub fn set(key: &EncodedKey, stored: Bytes, ttl_ms: Option<u64>) -> Cmd {
    let cmd = Cmd::new("SET").arg(key.bytes().clone()).arg(stored);
    let cmd = match ttl_ms {
        Some(ms) => cmd.arg("PX").arg(ms),
        None => cmd,
    };
    cmd.with_slot(key.slot())
}

/// `GETDEL key`: removes an entry and returns what it held (to clean up its tags).
#[must_use]
pub fn getdel(key: &EncodedKey) -> Cmd {
    Cmd::new("GETDEL").arg(key.bytes().clone()).with_slot(key.slot()).with_idempotent(true)
}

/// `PEXPIRE key ms`.
#[must_use]
pub fn pexpire(key: &EncodedKey, ms: u64) -> Cmd {
    Cmd::new("PEXPIRE").arg(key.bytes().clone()).arg(ms).with_slot(key.slot())
}

/// `PERSIST key`.
#[must_use]
pub fn persist(key: &EncodedKey) -> Cmd {
    Cmd::new("PERSIST").arg(key.bytes().clone()).with_slot(key.slot())
}

/// `PTTL key`.
#[must_use]
pub fn pttl(key: &EncodedKey) -> Cmd {
    Cmd::new("PTTL").arg(key.bytes().clone()).with_slot(key.slot())
}

/// `WAIT replicas timeout`, pinned to `key`'s slot so it runs on the connection that carried
/// the write before it (it must be in the same pipeline).
#[must_use]
pub fn wait_after(key: &EncodedKey, replicas: u32, timeout_ms: u64) -> Cmd {
    Cmd::new("WAIT").arg(replicas).arg(timeout_ms).with_slot(key.slot()).with_read_only(false)
}

/// Reads a `GET`/`GETDEL` reply: `None` for a miss.
///
/// # Errors
/// A server error (for example `WRONGTYPE`) or a reply of another shape.
pub fn read_stored(v: Value) -> Result<Option<Bytes>, CacheError> {
    match v {
        Value::Nil => Ok(None),
        Value::Bulk(b) | Value::Simple(b) => Ok(Some(b)),
        Value::Error(e) => Err(CacheError::Request(crate::client::RequestError::Server(ServerError::new(e)))),
        other => Err(unexpected("GET", &other)),
    }
}

/// Reads an `OK` reply.
///
/// # Errors
/// Anything else.
pub fn read_ok(command: &'static str, v: &Value) -> Result<(), CacheError> {
    match v {
        Value::Simple(s) if s.as_ref() == b"OK" => Ok(()),
        Value::Error(e) => {
            Err(CacheError::Request(crate::client::RequestError::Server(ServerError::new(e.clone()))))
        }
        other => Err(unexpected(command, other)),
    }
}

/// Reads an integer reply.
///
/// # Errors
/// A server error or another shape.
pub fn read_int(command: &'static str, v: &Value) -> Result<i64, CacheError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Error(e) => {
            Err(CacheError::Request(crate::client::RequestError::Server(ServerError::new(e.clone()))))
        }
        other => other.as_int().ok_or_else(|| unexpected(command, other)),
    }
}

/// The tag part of a namespace's plans.
#[derive(Debug)]
pub struct Tags<'a> {
    ns: &'a Namespace,
}

impl<'a> Tags<'a> {
    /// Tag plans of this namespace.
    #[must_use]
    pub const fn new(ns: &'a Namespace) -> Self {
        Self { ns }
    }

    /// The tag's key, `tag:{NS tag}`.
    ///
    /// # Errors
    /// A tag that holds `}`.
    pub fn key(&self, tag: &[u8]) -> Result<EncodedKey, CacheError> {
        Ok(self.ns.tag_key(tag)?)
    }

    /// Adds `member` to `tag` and returns the tag's token (script `TAG_WRITE`).
    ///
    /// # Errors
    /// A tag that holds `}`.
    pub fn write(
        &self,
        tag: &[u8],
        member: &EncodedKey,
        ttl_ms: Option<u64>,
        fresh_token: Bytes,
        by_sha: bool,
    ) -> Result<Cmd, CacheError> {
        let ttl = ttl_ms.map_or_else(Bytes::new, |ms| Bytes::from(ms.to_string()));
        let args = vec![member.bytes().clone(), ttl, fresh_token];
        Ok(script(&scripts::TAG_WRITE, &self.key(tag)?, args, by_sha, true))
    }

    /// Reads a tag's current token (from the primary).
    ///
    /// # Errors
    /// A tag that holds `}`.
    pub fn read_token(&self, tag: &[u8]) -> Result<Cmd, CacheError> {
        let key = self.key(tag)?;
        Ok(Cmd::new("ZRANGEBYSCORE")
            .arg(key.bytes().clone())
            .arg("-1")
            .arg("-1")
            .with_slot(key.slot())
            .with_read_only(false))
    }

    /// Reads a tag's current token and renews `members` in it for `ttl_ms` more (script
    /// `TAG_TOUCH`, for reads that extend their entries); the reply reads as
    /// [`Tags::read_token`]'s.
    ///
    /// # Errors
    /// A tag that holds `}`.
    pub fn touch(&self, tag: &[u8], members: &[Bytes], ttl_ms: u64, by_sha: bool) -> Result<Cmd, CacheError> {
        let mut args = Vec::with_capacity(members.len() + 1);
        args.push(Bytes::from(ttl_ms.to_string()));
        args.extend(members.iter().cloned());
        Ok(script(&scripts::TAG_TOUCH, &self.key(tag)?, args, by_sha, true))
    }

    /// Replaces a tag's token (script `TAG_INVALIDATE`).
    ///
    /// # Errors
    /// A tag that holds `}`.
    pub fn invalidate(&self, tag: &[u8], new_token: Bytes, by_sha: bool) -> Result<Cmd, CacheError> {
        Ok(script(&scripts::TAG_INVALIDATE, &self.key(tag)?, vec![new_token], by_sha, false))
    }

    /// Lists members in a tag again, each with the score it had (script `TAG_RELIST`): the
    /// members an invalidation erased from the tag (`TAG_INVALIDATE`) but failed to delete.
    /// `fresh_token` becomes the tag's token only if it has none. `None` when there is nothing
    /// to list.
    ///
    /// # Errors
    /// A tag that holds `}`.
    pub fn relist(
        &self,
        tag: &[u8],
        members: &[Listed],
        fresh_token: Bytes,
        by_sha: bool,
    ) -> Result<Option<Cmd>, CacheError> {
        if members.is_empty() {
            return Ok(None);
        }
        let mut args = Vec::with_capacity(1 + 2 * members.len());
        args.push(fresh_token);
        for m in members {
            args.push(m.score.clone());
            args.push(m.member.clone());
        }
        Ok(Some(script(&scripts::TAG_RELIST, &self.key(tag)?, args, by_sha, true)))
    }

    /// Removes a data key from a tag (script `TAG_LEAVE`, which also gives the tag key back an
    /// expiry once no member without expiry is left).
    ///
    /// # Errors
    /// A tag that holds `}`.
    pub fn remove_member(&self, tag: &[u8], member: &Bytes, by_sha: bool) -> Result<Cmd, CacheError> {
        Ok(script(&scripts::TAG_LEAVE, &self.key(tag)?, vec![member.clone()], by_sha, true))
    }
}

/// Deletes `member` if it carries `tag` with a token other than `current` (script
/// `DEL_IF_STALE`).
#[must_use]
pub fn del_if_stale(member: &Bytes, tag: &Bytes, current: &Bytes, by_sha: bool) -> Cmd {
    let key = EncodedKey::new(member.clone());
    script(&scripts::DEL_IF_STALE, &key, vec![tag.clone(), current.clone()], by_sha, true)
}

/// Reads a `DEL_IF_STALE` reply: the deleted entry's tags (an [`Entry`] with an empty payload),
/// or `None` when nothing was deleted.
///
/// # Errors
/// A server error, another shape, or a header that does not decode.
pub fn read_deleted(v: Value) -> Result<Option<Entry>, CacheError> {
    read_deleted_raw(v)?.map(|header| Entry::decode(&header)).transpose()
}

/// Reads a `DEL_IF_STALE` (or `DEL_IF_STALE_JSON`) reply as the bytes it returned, or `None`
/// when nothing was deleted; the storage mode decides how to decode them.
///
/// # Errors
/// A server error or another shape.
pub fn read_deleted_raw(v: Value) -> Result<Option<Bytes>, CacheError> {
    match v {
        Value::Nil | Value::Int(0) => Ok(None),
        Value::Bulk(header) => Ok(Some(header)),
        Value::Error(e) => Err(CacheError::Request(crate::client::RequestError::Server(ServerError::new(e)))),
        other => Err(unexpected("del_if_stale", &other)),
    }
}

/// Reads a `TAG_WRITE` reply: the tag's token.
///
/// # Errors
/// A server error or another shape.
pub fn read_token_written(v: Value) -> Result<Bytes, CacheError> {
    match v {
        Value::Bulk(b) | Value::Simple(b) => Ok(b),
        Value::Error(e) => Err(CacheError::Request(crate::client::RequestError::Server(ServerError::new(e)))),
        other => Err(unexpected("tag_write", &other)),
    }
}

/// Reads a token query: `None` when the tag has no token.
///
/// # Errors
/// A server error or another shape.
pub fn read_current_token(v: Value) -> Result<Option<Bytes>, CacheError> {
    match v {
        Value::Array(items) | Value::Set(items) => match items.into_iter().next() {
            None => Ok(None),
            Some(Value::Bulk(b)) if b.first() == Some(&0) => Ok(Some(b.slice(1..))),
            Some(other) => Err(unexpected("ZRANGEBYSCORE", &other)),
        },
        Value::Error(e) => Err(CacheError::Request(crate::client::RequestError::Server(ServerError::new(e)))),
        other => Err(unexpected("ZRANGEBYSCORE", &other)),
    }
}

/// A member of a tag as `TAG_INVALIDATE` listed it: the data key and its score (the entry's
/// expiry in server milliseconds, or `inf`), as the server printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The full data key.
    pub member: Bytes,
    /// Its score, verbatim (fit for `ZADD`).
    pub score: Bytes,
}

/// Reads a `TAG_INVALIDATE` reply: the old token and the live members with their scores, or
/// `None` when the tag had no token.
///
/// # Errors
/// A server error or another shape (an odd-length member list, a member or score that is not
/// a string).
pub fn read_invalidated(v: Value) -> Result<Option<(Bytes, Vec<Listed>)>, CacheError> {
    let Value::Array(mut items) = v else {
        if let Value::Error(e) = v {
            return Err(CacheError::Request(crate::client::RequestError::Server(ServerError::new(e))));
        }
        return Err(unexpected("tag_invalidate", &v));
    };
    if items.len() != 2 {
        return Err(unexpected("tag_invalidate", &Value::Array(items)));
    }
    let members = items.pop().unwrap_or(Value::Nil);
    let old = items.pop().unwrap_or(Value::Nil);
    let Value::Bulk(old) = old else { return Ok(None) };
    let Value::Array(flat) = members else { return Err(unexpected("tag_invalidate", &members)) };
    if flat.len() % 2 != 0 {
        return Err(unexpected("tag_invalidate", &Value::Array(flat)));
    }
    let mut listed = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        match (m, s) {
            (Value::Bulk(member), Value::Bulk(score) | Value::Simple(score)) => {
                listed.push(Listed { member, score });
            }
            (m, _) => return Err(unexpected("tag_invalidate", &m)),
        }
    }
    Ok(Some((old, listed)))
}

/// Whether an entry's tag tokens all match the current ones (`current[tag]` = `None` when the
/// tag has no token: every entry that names the tag is then stale).
#[must_use]
pub fn is_fresh(entry: &Entry, current: &HashMap<Bytes, Option<Bytes>>) -> bool {
    entry.tags.iter().all(|t| current.get(&t.tag).is_some_and(|c| c.as_ref() == Some(&t.token)))
}

/// The slot of a full data key (for grouping members).
#[must_use]
pub fn member_slot(member: &[u8]) -> crate::slot::Slot {
    key_slot(member)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::envelope::TagToken;

    #[test]
    fn script_calls_are_routed_and_fall_back_to_eval() {
        let ns = Namespace::new("users").expect("ns");
        let tags = Tags::new(&ns);
        let member = ns.data_key(b"alice");
        let cmd = tags.write(b"admin", &member, Some(1000), Bytes::from_static(b"tok"), true).expect("cmd");
        assert_eq!(cmd.args()[0].as_ref(), b"EVALSHA");
        assert_eq!(cmd.args()[3].as_ref(), b"tag:{users:admin}");
        assert_eq!(cmd.slot(), Some(key_slot(b"tag:{users:admin}")));
        let eval = as_eval(&cmd, &scripts::TAG_WRITE);
        assert_eq!(eval.args()[0].as_ref(), b"EVAL");
        assert_eq!(eval.args()[1].as_ref(), scripts::TAG_WRITE.source.as_bytes());
        assert_eq!(eval.slot(), cmd.slot());
        assert!(tags.write(b"bad}tag", &member, None, Bytes::new(), true).is_err());
    }

    /// The token read of every freshness check is a known, idempotent read: a lost connection
    /// sends it again instead of failing the read (it was once missing from the command table,
    /// so it went out as an unknown write that is never resent).
    #[test]
    fn the_token_read_is_a_known_idempotent_read() {
        let ns = Namespace::new("users").expect("ns");
        let cmd = Tags::new(&ns).read_token(b"admin").expect("cmd");
        let info = crate::command::lookup(cmd.args()).expect("known");
        assert_eq!(info.name(), "ZRANGEBYSCORE");
        assert_eq!(info.idempotency_of(cmd.args()), crate::retry::Idempotency::Idempotent);
    }

    #[test]
    fn replies_are_read_or_typed_errors() {
        assert_eq!(read_stored(Value::Nil).expect("nil"), None);
        assert!(read_stored(Value::Error(Bytes::from_static(b"WRONGTYPE x"))).is_err());
        assert_eq!(
            read_current_token(Value::Array(vec![Value::Bulk(Bytes::from_static(b"\0abc"))])).expect("token"),
            Some(Bytes::from_static(b"abc"))
        );
        assert_eq!(read_current_token(Value::Array(vec![])).expect("none"), None);
        let b = |s: &'static [u8]| Value::Bulk(Bytes::from_static(s));
        let inv = Value::Array(vec![
            b(b"old"),
            Value::Array(vec![b(b"users:a"), b(b"inf"), b(b"users:b"), b(b"17")]),
        ]);
        let (old, members) = read_invalidated(inv).expect("read").expect("had a token");
        assert_eq!(old.as_ref(), b"old");
        let listed = |m: &'static [u8], s: &'static [u8]| Listed {
            member: Bytes::from_static(m),
            score: Bytes::from_static(s),
        };
        assert_eq!(members, vec![listed(b"users:a", b"inf"), listed(b"users:b", b"17")]);
        let odd = Value::Array(vec![b(b"old"), Value::Array(vec![b(b"users:a")])]);
        assert!(read_invalidated(odd).is_err(), "a member without its score");
        let ns = Namespace::new("users").expect("ns");
        let fresh = || Bytes::from_static(b"T");
        let cmd = Tags::new(&ns).relist(b"x", &members, fresh(), false).expect("cmd").expect("members");
        let words: Vec<&[u8]> = cmd.args().iter().map(AsRef::as_ref).collect();
        let src = scripts::TAG_RELIST.source.as_bytes();
        assert_eq!(
            words,
            vec![&b"EVAL"[..], src, b"1", b"tag:{users:x}", b"T", b"inf", b"users:a", b"17", b"users:b"]
        );
        assert_eq!(Tags::new(&ns).relist(b"x", &[], fresh(), true).expect("cmd"), None);
        assert_eq!(
            read_invalidated(Value::Array(vec![Value::Nil, Value::Array(vec![])])).expect("read"),
            None
        );
        assert!(read_invalidated(Value::Int(3)).is_err());
        assert_eq!(read_deleted(Value::Int(0)).expect("kept"), None);
        let e = Entry {
            payload: Bytes::from_static(b"payload"),
            tags: vec![TagToken { tag: Bytes::from_static(b"a"), token: Bytes::from_static(b"1") }],
            ..Entry::default()
        };
        let stored = e.encode().expect("encode");
        let header = stored.slice(..stored.len() - e.payload.len());
        let got = read_deleted(Value::Bulk(header)).expect("read").expect("deleted");
        assert_eq!((got.tags, got.payload.len()), (e.tags, 0));
        assert!(read_deleted(Value::Int(1)).is_err());
        assert_eq!(read_deleted(Value::Nil).expect("nothing deleted"), None);
        assert!(read_deleted(Value::Error(Bytes::from_static(b"ERR x"))).is_err());
    }

    #[test]
    fn freshness_needs_every_token_current() {
        let e = Entry {
            tags: vec![
                TagToken { tag: Bytes::from_static(b"a"), token: Bytes::from_static(b"1") },
                TagToken { tag: Bytes::from_static(b"b"), token: Bytes::from_static(b"2") },
            ],
            ..Entry::default()
        };
        let mut cur = HashMap::new();
        cur.insert(Bytes::from_static(b"a"), Some(Bytes::from_static(b"1")));
        cur.insert(Bytes::from_static(b"b"), Some(Bytes::from_static(b"2")));
        assert!(is_fresh(&e, &cur));
        cur.insert(Bytes::from_static(b"b"), Some(Bytes::from_static(b"3")));
        assert!(!is_fresh(&e, &cur), "an invalidated tag makes the entry stale");
        cur.insert(Bytes::from_static(b"b"), None);
        assert!(!is_fresh(&e, &cur), "a vanished tag makes the entry stale");
        assert!(is_fresh(&Entry::default(), &HashMap::new()), "untagged entries need no check");
    }
}
