//! The server-side scripts of the tag protocol and of compare-and-set.
//!
//! Each script touches keys of **one** slot only (the cluster refuses anything else), is sent
//! with `EVALSHA` and falls back to `EVAL` on `NOSCRIPT` (a node that restarted or joined has
//! an empty script cache). Times come from the server's own clock (`TIME`), so client clock
//! skew never decides whether a member has expired.
//!
//! The tag protocol (see `docs/consistency.md`): one sorted set per tag, `tag:{NS tag}`. Its
//! member `"\0" .. token` (score -1) is the tag's current **token**, a random 128-bit value;
//! every other member is the full data key of an entry written with the tag, scored by the
//! entry's expiry in server milliseconds (`+inf` for no expiry). An entry's envelope records
//! the token of each of its tags at write time; a read checks them against the current tokens.

use std::sync::OnceLock;

/// A Lua script and its SHA-1.
#[derive(Debug)]
pub struct Script {
    /// A short name for errors.
    pub name: &'static str,
    /// The Lua source.
    pub source: &'static str,
    sha: OnceLock<String>,
}

impl Script {
    pub(crate) const fn new(name: &'static str, source: &'static str) -> Self {
        Self { name, source, sha: OnceLock::new() }
    }

    /// The script's SHA-1 in lower-case hex, as `EVALSHA` wants it.
    pub fn sha1(&self) -> &str {
        self.sha.get_or_init(|| sha1_smol::Sha1::from(self.source).digest().to_string())
    }
}

/// The server's clock in ms (`server_now`, from `TIME`), and the expiry rule every script that
/// changes a tag's members ends with (Lua, prepended to their sources): the tag key lives as long as its longest-lived member. A member without
/// expiry (`+inf`) makes the key persistent; once none is left, the key gets back the expiry of
/// its longest-lived remaining member (bug A5: `PERSIST` stayed after that member left, so one
/// `Ttl::Never` entry made its tag immortal); a persistent key left with its token alone
/// expires after [`TOKEN_GRACE_MS`]. A key that has an expiry is only ever extended (to cover
/// its longest-lived member), never shortened.
macro_rules! follow_lua {
    () => {
        r"
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function follow(k, now)
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if #top == 0 then return end
  if top[2] == 'inf' then
    redis.call('PERSIST', k)
    return
  end
  local want = tonumber(top[2]) - now
  local pttl = redis.call('PTTL', k)
  if want <= 0 then
    if pttl == -1 then redis.call('PEXPIRE', k, 60000) end
  elseif pttl == -1 or pttl < want then
    redis.call('PEXPIRE', k, want)
  end
end
"
    };
}

/// How long a tag key without expiry lives once it holds its token alone (every member left):
/// 60 s, long enough for the invalidation that emptied it to finish its clean-up (see
/// [`TAG_RELIST`]). Nothing else needs the token: every later write names itself in the tag
/// and sets the key's expiry again.
pub const TOKEN_GRACE_MS: u64 = 60_000;

/// Adds a member to a tag and returns the tag's token, creating the token if the tag has none.
///
/// `KEYS[1]` tag key; `ARGV[1]` data key; `ARGV[2]` TTL in ms, or empty for no expiry;
/// `ARGV[3]` a fresh random token to use if the tag has none. Prunes members whose expiry has
/// passed, and keeps the tag key alive exactly as long as its longest-lived member requires
/// (the `follow` rule above: persistent while a member has no expiry, and no longer once none
/// has).
pub static TAG_WRITE: Script = Script::new(
    "tag_write",
    concat!(
        follow_lua!(),
        r"
local k = KEYS[1]
local now = server_now()
local tok = redis.call('ZRANGEBYSCORE', k, -1, -1)
local token
if #tok == 0 then
  token = '\0' .. ARGV[3]
  redis.call('ZADD', k, -1, token)
else
  token = tok[1]
end
redis.call('ZREMRANGEBYSCORE', k, 0, '(' .. now)
if ARGV[2] == '' then
  redis.call('ZADD', k, 'inf', ARGV[1])
else
  local ttl = tonumber(ARGV[2])
  redis.call('ZADD', k, now + ttl, ARGV[1])
end
follow(k, now)
return string.sub(token, 2)
"
    ),
);

/// Replaces a tag's token and hands back the old token with the live members and their
/// scores.
///
/// `KEYS[1]` tag key; `ARGV[1]` the new token. Returns `{old_token, {member1, score1, member2,
/// score2, ...}}` (each member's score as the server prints it: its expiry in server
/// milliseconds, or `inf`), or `{false, {}}` when the tag has no token (nothing was written
/// under it, or it all expired). Atomic: a write that read the old token can no longer produce
/// a visible entry, and a write that reads the new one is after the invalidation. The member
/// list is **erased** with the swap (the tag then lists only the new generation): a member
/// whose deletion ([`DEL_IF_STALE`]) then fails must be listed again by the caller
/// ([`TAG_RELIST`]), or no later invalidation finds it. The key keeps its expiry, unless it
/// had none: left with its token alone, it then expires after [`TOKEN_GRACE_MS`] (the
/// `follow` rule of [`TAG_WRITE`]; before, a tag that once had a member without expiry kept
/// its token forever).
///
/// The key is never emptied, not even to be re-created: the new token goes in first, then the
/// old token and every member go. In a slot being migrated the legacy way (`MIGRATING`), the
/// server checks each command of a script, and a key the script deleted is no longer local, so
/// a `DEL` followed by a `ZADD` failed half-way ("non local key"), with the tag key gone.
pub static TAG_INVALIDATE: Script = Script::new(
    "tag_invalidate",
    concat!(
        follow_lua!(),
        r"
local k = KEYS[1]
local tok = redis.call('ZRANGEBYSCORE', k, -1, -1)
if #tok == 0 then
  return {false, {}}
end
local now = server_now()
local members = redis.call('ZRANGEBYSCORE', k, now, 'inf', 'WITHSCORES')
redis.call('ZADD', k, -1, '\0' .. ARGV[1])
redis.call('ZREM', k, unpack(tok))
redis.call('ZREMRANGEBYSCORE', k, '(-1', 'inf')
follow(k, now)
return {string.sub(tok[1], 2), members}
"
    ),
);

/// Takes members out of a tag (an entry invalidated by key, or deleted by an invalidation of
/// another of its tags), then applies the expiry rule of [`TAG_WRITE`]: the last member
/// without expiry leaving gives the key back the expiry of its longest-lived remaining member.
///
/// `KEYS[1]` tag key; `ARGV` the data keys to remove. Returns how many were listed (as `ZREM`).
pub static TAG_LEAVE: Script = Script::new(
    "tag_leave",
    concat!(
        follow_lua!(),
        r"
local k = KEYS[1]
local n = redis.call('ZREM', k, unpack(ARGV))
if n > 0 then
  follow(k, server_now())
end
return n
"
    ),
);

/// Lists members in a tag again, each with the score it had: the members an invalidation
/// erased from the tag ([`TAG_INVALIDATE`]) but failed to delete, so that the next
/// invalidation of the tag finds them. `GT` never lowers the score of a member written again
/// meanwhile. Then the expiry rule of [`TAG_WRITE`] (a member without expiry makes the key
/// persistent again). A key that lost its token meanwhile (it expired, or was evicted) gets
/// the fresh one given: an entry it lists carries another token, so it stays stale, and the
/// next invalidation (which skips a tag without token) still finds it. Before, a plain `ZADD GT`
/// re-created such a key without token and without expiry.
///
/// `KEYS[1]` tag key; `ARGV[1]` a fresh random token, used only if the tag has none;
/// `ARGV[2..]` `score, member` pairs. Returns how many members were added (as `ZADD`).
pub static TAG_RELIST: Script = Script::new(
    "tag_relist",
    concat!(
        follow_lua!(),
        r"
local k = KEYS[1]
local now = server_now()
if #redis.call('ZRANGEBYSCORE', k, -1, -1) == 0 then
  redis.call('ZADD', k, -1, '\0' .. ARGV[1])
end
local n = 0
for i = 2, #ARGV, 1000 do
  n = n + redis.call('ZADD', k, 'GT', unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
follow(k, now)
return n
"
    ),
);

/// Deletes an entry that carries a tag with a token other than the tag's current one: an
/// entry no read can ever serve again (tokens never repeat), left by an invalidation of the
/// tag.
///
/// `KEYS[1]` data key; `ARGV[1]` tag; `ARGV[2]` the tag's **current** token (the one the
/// invalidation just swapped in). Parses the envelope header exactly (flags, the optional
/// refresh time, the transformer ids, `tag_count` u16 BE, then `{tag_len u16 BE, tag,
/// token_len u8, token}` per tag; see [`super::envelope`]), finds the tag by equality, and
/// deletes the entry iff it carries the tag with a token other than `ARGV[2]`. Returns the
/// deleted entry's envelope **without its payload** (prefix and header: its tags and their
/// tokens), or nil when nothing was deleted: an entry rewritten after the swap (it carries
/// `ARGV[2]`), rewritten without the tag, untagged, absent, of another envelope version, or
/// whose header does not parse is left alone. The caller reads the returned header to tell an
/// entry that was still fresh (counted) from one that was already stale (deleted as clean-up
/// only).
///
/// Because it compares with the current token rather than the one just replaced, the next
/// invalidation of the tag also deletes an entry that an earlier one failed to delete, once
/// that entry is listed in the tag again (see `invalidate_tags` in `cache::op`).
pub static DEL_IF_STALE: Script = Script::new(
    "del_if_stale",
    r"
local v = redis.call('GET', KEYS[1])
if not v or string.len(v) < 8 or string.sub(v, 1, 4) ~= '\0SC\1' then
  return false
end
local b1, b2, b3, b4 = string.byte(v, 5, 8)
local last = 8 + ((b1 * 256 + b2) * 256 + b3) * 256 + b4
if last > string.len(v) then return false end
local p = 9
if p > last then return false end
local flags = string.byte(v, p)
p = p + 1
if flags % 2 == 1 then p = p + 8 end
if p > last then return false end
p = p + 1 + string.byte(v, p)
if p + 1 > last then return false end
local c1, c2 = string.byte(v, p, p + 1)
p = p + 2
for i = 1, c1 * 256 + c2 do
  if p + 1 > last then return false end
  local l1, l2 = string.byte(v, p, p + 1)
  local tl = l1 * 256 + l2
  p = p + 2
  if p + tl > last then return false end
  local tag = string.sub(v, p, p + tl - 1)
  p = p + tl
  local kl = string.byte(v, p)
  p = p + 1
  if p + kl - 1 > last then return false end
  local tok = string.sub(v, p, p + kl - 1)
  p = p + kl
  if tag == ARGV[1] then
    if tok == ARGV[2] then return false end
    redis.call('DEL', KEYS[1])
    return string.sub(v, 1, last)
  end
end
return false
",
);

/// Compare-and-set on one key.
///
/// `KEYS[1]` data key; `ARGV[1]` SHA-1 hex of the bytes read, or empty if the key was absent;
/// `ARGV[2]` `set` or `del`; `ARGV[3]` new bytes; `ARGV[4]` TTL in ms or empty for none.
/// Returns 1 when applied, 0 when the key changed since it was read.
pub static CAS: Script = Script::new(
    "cas",
    r"
local v = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if v then return 0 end
elseif (not v) or redis.sha1hex(v) ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'del' then
  redis.call('DEL', KEYS[1])
elseif ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
",
);

/// Renews the memberships of entries that a read just gave more life (sliding expiry), and
/// returns the tag's token, as the token check's `ZRANGEBYSCORE key -1 -1` does.
///
/// `KEYS[1]` tag key; `ARGV[1]` the entries' new TTL in ms; `ARGV[2..]` their data keys. When
/// the tag has a token, each member gets the score `now + ttl` unless it has a later one
/// (`ZADD GT`: a member without expiry keeps `+inf`), then the expiry rule of [`TAG_WRITE`]
/// (the key lives as long as its longest-lived member: at least `ttl`, persistent while a
/// member has no expiry). A member that is missing is listed again: an entry whose membership
/// lapsed while reads kept it alive (or an entry already stale, which the next invalidation
/// then deletes). A tag without a token is left alone (its entries are stale).
pub static TAG_TOUCH: Script = Script::new(
    "tag_touch",
    concat!(
        follow_lua!(),
        r"
local k = KEYS[1]
local tok = redis.call('ZRANGEBYSCORE', k, -1, -1)
if #tok == 0 then
  return tok
end
local now = server_now()
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', k, 'GT', now + ttl, ARGV[i])
end
follow(k, now)
return tok
"
    ),
);

/// Stores an entry with the TTL of a new entry or of an update, whichever it is now (the
/// namespace's `expire_after_update`): `KEYS[1]` data key; `ARGV[1]` the bytes; `ARGV[2]` the
/// TTL in ms if the key does not exist, `ARGV[3]` if it does (empty: no expiry). Returns `OK`.
pub static SET_BY_AGE: Script = Script::new(
    "set_by_age",
    r"
local ttl = ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 1 then
  ttl = ARGV[3]
end
if ttl == '' then
  return redis.call('SET', KEYS[1], ARGV[1])
end
return redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
",
);

/// Releases a lock only if it still holds our token. `KEYS[1]` lock key; `ARGV[1]` token.
pub static UNLOCK: Script = Script::new(
    "unlock",
    r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
);

/// SHA-1 hex of bytes, as the server's `redis.sha1hex` computes it.
#[must_use]
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_known_vectors() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(TAG_WRITE.sha1().len(), 40);
        assert_ne!(TAG_WRITE.sha1(), TAG_INVALIDATE.sha1());
    }

    /// Every script that changes a tag's members ends with the same expiry rule, and its grace
    /// is the documented one.
    #[test]
    fn the_member_scripts_share_the_expiry_rule() {
        for s in [&TAG_WRITE, &TAG_INVALIDATE, &TAG_LEAVE, &TAG_RELIST] {
            assert!(s.source.starts_with(follow_lua!()), "{}", s.name);
            assert!(s.source.contains("follow(k, "), "{}", s.name);
        }
        assert!(follow_lua!().contains(&format!("PEXPIRE', k, {TOKEN_GRACE_MS})")));
    }
}
