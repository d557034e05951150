//! Native twins of the tag protocol's Lua scripts (`slotcache_core::cache::scripts`):
//! `TAG_WRITE`, `TAG_INVALIDATE`, `TAG_LEAVE`, `TAG_RELIST`, `TAG_TOUCH`, each ending with the shared
//! expiry rule (`follow`, as the Lua's), command by command through [`ScriptCtx::call`] like
//! the Lua's `redis.call`s. `tests/tests/tags_scripts_match_twins.rs` runs one sequence of them
//! on a real Valkey and here, and compares.

use bytes::Bytes;
use slotcache_core::Value;
use slotcache_core::cache::scripts::{
    TAG_INVALIDATE, TAG_LEAVE, TAG_RELIST, TAG_TOUCH, TAG_WRITE, TOKEN_GRACE_MS,
};

use super::commands::fmt_score;
use super::script_host::{Registry, ScriptCtx, arg, array, cat};

/// Registers the five twins (part of [`super::scripts::standard`]).
pub fn register_standard(r: &mut Registry) {
    r.register("tag_write", TAG_WRITE.source, tag_write);
    r.register("tag_invalidate", TAG_INVALIDATE.source, tag_invalidate);
    r.register("tag_leave", TAG_LEAVE.source, tag_leave);
    r.register("tag_relist", TAG_RELIST.source, tag_relist);
    r.register("tag_touch", TAG_TOUCH.source, tag_touch);
}

/// The Lua's `follow(k, now)`: the tag key lives as long as its longest-lived member.
fn follow(cx: &mut ScriptCtx<'_>, k: &[u8], now: u64) -> Result<(), String> {
    // local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES'); if #top == 0 then return end
    let top = array(cx.call(&[b"ZRANGE", k, b"-1", b"-1", b"WITHSCORES"])?);
    let Some(score) = top.get(1).and_then(Value::as_bytes).cloned() else { return Ok(()) };
    // if top[2] == 'inf' then PERSIST k; return end
    if score.as_ref() == b"inf" {
        cx.call(&[b"PERSIST", k])?;
        return Ok(());
    }
    // local want = tonumber(top[2]) - now
    let last: f64 = std::str::from_utf8(&score).ok().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    let want = last - now as f64;
    // local pttl = redis.call('PTTL', k)
    let pttl = cx.call(&[b"PTTL", k])?.as_int().unwrap_or(-2);
    if want <= 0.0 {
        // if pttl == -1 then PEXPIRE k 60000 end
        if pttl == -1 {
            cx.call(&[b"PEXPIRE", k, TOKEN_GRACE_MS.to_string().as_bytes()])?;
        }
    } else if pttl == -1 || (pttl as f64) < want {
        // elseif pttl == -1 or pttl < want then PEXPIRE k want end
        cx.call(&[b"PEXPIRE", k, fmt_score(want).as_bytes()])?;
    }
    Ok(())
}

/// `TAG_WRITE` (core `cache::scripts::TAG_WRITE`).
fn tag_write(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local t = redis.call('TIME'); local now = t[1] * 1000 + floor(t[2] / 1000)
    let now = cx.time_ms()?;
    // local tok = redis.call('ZRANGEBYSCORE', k, -1, -1)
    let tok = array(cx.call(&[b"ZRANGEBYSCORE", k, b"-1", b"-1"])?);
    let token = match tok.first().and_then(Value::as_bytes) {
        // if #tok == 0: token = '\0' .. ARGV[3]; ZADD k -1 token
        None => {
            let token = cat(b"\0", arg(argv, 2, "ARGV")?);
            cx.call(&[b"ZADD", k, b"-1", &token])?;
            token
        }
        // else token = tok[1]
        Some(t) => t.to_vec(),
    };
    // redis.call('ZREMRANGEBYSCORE', k, 0, '(' .. now)
    cx.call(&[b"ZREMRANGEBYSCORE", k, b"0", format!("({now}").as_bytes()])?;
    let member = arg(argv, 0, "ARGV")?;
    let ttl_arg = arg(argv, 1, "ARGV")?;
    if ttl_arg.is_empty() {
        // ZADD k 'inf' ARGV[1]
        cx.call(&[b"ZADD", k, b"inf", member])?;
    } else {
        // local ttl = tonumber(ARGV[2]); ZADD k now + ttl ARGV[1]
        let ttl: f64 = std::str::from_utf8(ttl_arg)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or("ERR user_script:1: attempt to perform arithmetic on local 'ttl' (a nil value)")?;
        cx.call(&[b"ZADD", k, fmt_score(now as f64 + ttl).as_bytes(), member])?;
    }
    // follow(k, now)
    follow(cx, k, now)?;
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
    // follow(k, now)
    follow(cx, k, now)?;
    // return {string.sub(tok[1], 2), members}
    Ok(Value::Array(vec![Value::Bulk(old.slice(1..)), members]))
}

/// `TAG_LEAVE` (core `cache::scripts::TAG_LEAVE`).
fn tag_leave(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    // local n = redis.call('ZREM', k, unpack(ARGV))
    let mut zrem: Vec<&[u8]> = vec![b"ZREM", k];
    zrem.extend(argv.iter().map(Bytes::as_ref));
    let n = cx.call(&zrem)?.as_int().unwrap_or(0);
    // if n > 0 then follow(k, now) end
    if n > 0 {
        let now = cx.time_ms()?;
        follow(cx, k, now)?;
    }
    Ok(Value::Int(n))
}

/// `TAG_RELIST` (core `cache::scripts::TAG_RELIST`).
fn tag_relist(cx: &mut ScriptCtx<'_>, keys: &[Bytes], argv: &[Bytes]) -> Result<Value, String> {
    let k = arg(keys, 0, "KEYS")?;
    let now = cx.time_ms()?;
    // if #redis.call('ZRANGEBYSCORE', k, -1, -1) == 0 then ZADD k -1 '\0' .. ARGV[1] end
    if array(cx.call(&[b"ZRANGEBYSCORE", k, b"-1", b"-1"])?).is_empty() {
        let token = cat(b"\0", arg(argv, 0, "ARGV")?);
        cx.call(&[b"ZADD", k, b"-1", &token])?;
    }
    // for i = 2, #ARGV, 1000 do n = n + ZADD k GT unpack(ARGV, i, min(i + 999, #ARGV)) end
    let mut n = 0;
    for chunk in argv.get(1..).unwrap_or_default().chunks(1000) {
        let mut zadd: Vec<&[u8]> = vec![b"ZADD", k, b"GT"];
        zadd.extend(chunk.iter().map(Bytes::as_ref));
        n += cx.call(&zadd)?.as_int().unwrap_or(0);
    }
    // follow(k, now)
    follow(cx, k, now)?;
    Ok(Value::Int(n))
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
    // follow(k, now)
    follow(cx, k, now)?;
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use slotcache_core::Value;
    use slotcache_core::cache::scripts::{TAG_INVALIDATE, TAG_LEAVE, TAG_RELIST, TAG_TOUCH, TAG_WRITE};

    use crate::one_node::{OneNode as M, b};

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

    /// Bug A5: one member without expiry made the tag key immortal, and it stayed so after that
    /// member left. Now the key follows its members: rewritten with a TTL, or taken out by
    /// `TAG_LEAVE`, the last such member gives the key back the expiry of the longest-lived
    /// member left.
    #[test]
    fn the_key_gets_its_expiry_back_when_the_last_member_without_one_leaves() {
        let mut m = M::new();
        let w = |m: &mut M, d: &[u8], ttl: &[u8]| m.eval(TAG_WRITE.source, b"tag:{a}", &[d, ttl, b"T"]);
        let pttl = |m: &mut M| m.run(&[b"PTTL", b"tag:{a}"]);
        w(&mut m, b"short", b"1000");
        w(&mut m, b"forever", b"");
        w(&mut m, b"long", b"9000");
        assert_eq!(pttl(&mut m), Value::Int(-1), "a member without expiry: persistent");
        // Rewritten with a TTL: the key expires with its longest-lived member again.
        m.advance(100);
        w(&mut m, b"forever", b"3000");
        assert_eq!(pttl(&mut m), Value::Int(8900), "long's expiry, not forever's new one");
        // Two members without expiry: one leaving keeps the key persistent; the last one
        // leaving gives it the expiry of the longest-lived member left.
        w(&mut m, b"forever", b"");
        w(&mut m, b"forever2", b"");
        assert_eq!(m.eval(TAG_LEAVE.source, b"tag:{a}", &[b"forever"]), Value::Int(1));
        assert_eq!(pttl(&mut m), Value::Int(-1));
        assert_eq!(m.eval(TAG_LEAVE.source, b"tag:{a}", &[b"forever2", b"nope"]), Value::Int(1));
        assert_eq!(pttl(&mut m), Value::Int(8900));
        // Leaving changes nothing for a key that has an expiry, nor for a member not listed.
        assert_eq!(m.eval(TAG_LEAVE.source, b"tag:{a}", &[b"long"]), Value::Int(1));
        assert_eq!(pttl(&mut m), Value::Int(8900), "never shortened");
        assert_eq!(m.eval(TAG_LEAVE.source, b"tag:{a}", &[b"nope"]), Value::Int(0));
        assert_eq!(m.eval(TAG_LEAVE.source, b"tag:{none}", &[b"x"]), Value::Int(0));
        assert_eq!(m.run(&[b"EXISTS", b"tag:{none}"]), Value::Int(0), "nothing created");
        // The last member without expiry leaving a tag left with its token alone: the grace.
        m.run(&[b"DEL", b"tag:{a}"]);
        w(&mut m, b"forever", b"");
        m.eval(TAG_LEAVE.source, b"tag:{a}", &[b"forever"]);
        assert_eq!(pttl(&mut m), Value::Int(60_000));
        assert_eq!(m.run(&[b"ZRANGEBYSCORE", b"tag:{a}", b"-1", b"-1"]), Value::Array(vec![b(b"\0T")]));
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
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(-1));
        m.advance(500);
        let r = m.eval(TAG_INVALIDATE.source, b"tag:{a}", &[b"T2"]);
        let score1 = b((now + 1000).to_string().as_bytes());
        let listed = Value::Array(vec![b(b"d1"), score1, b(b"d2"), b(b"inf")]);
        assert_eq!(r, Value::Array(vec![b(b"T1"), listed]), "d3 expired; members with their scores");
        // Only the new token is left; the key, persistent for d2, now expires after the grace
        // (A5: it stayed persistent forever).
        assert_eq!(m.run(&[b"ZRANGEBYSCORE", b"tag:{a}", b"-inf", b"+inf"]), Value::Array(vec![b(b"\0T2")]));
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(60_000));
        let r = m.eval(TAG_INVALIDATE.source, b"tag:{a}", &[b"T3"]);
        assert_eq!(r, Value::Array(vec![b(b"T2"), Value::Array(vec![])]));
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(60_000), "an expiry is kept");
        // A key with an expiry keeps it.
        m.eval(TAG_WRITE.source, b"tag:{f}", &[b"d1", b"5000", b"F1"]);
        m.advance(1000);
        m.eval(TAG_INVALIDATE.source, b"tag:{f}", &[b"F2"]);
        assert_eq!(m.run(&[b"PTTL", b"tag:{f}"]), Value::Int(4000));
    }

    /// The re-listing of members an invalidation failed to delete: `GT` keeps a later expiry,
    /// a member without expiry makes the key persistent again, and a tag that lost its token
    /// meanwhile gets the fresh one (before, `ZADD GT` re-created it without token or expiry).
    #[test]
    fn tag_relist_lists_again_with_the_scores_and_the_expiry_rule() {
        let mut m = M::new();
        let now = m.now_ms();
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d1", b"1000", b"T1"]);
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d2", b"", b"T1"]);
        let Value::Array(r) = m.eval(TAG_INVALIDATE.source, b"tag:{a}", &[b"T2"]) else { panic!() };
        let Value::Array(listed) = &r[1] else { panic!() };
        let pairs: Vec<Vec<u8>> = listed
            .chunks(2)
            .flat_map(|p| [p[1].as_bytes().expect("score"), p[0].as_bytes().expect("member")])
            .map(|x| x.to_vec())
            .collect();
        let mut argv: Vec<&[u8]> = vec![b"UNUSED"];
        argv.extend(pairs.iter().map(Vec::as_slice));
        // d1 was written again meanwhile with a later expiry: GT keeps it.
        m.eval(TAG_WRITE.source, b"tag:{a}", &[b"d1", b"7000", b"x"]);
        assert_eq!(m.eval(TAG_RELIST.source, b"tag:{a}", &argv), Value::Int(1), "d2 added, d1 updated");
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"d1"]), b((now + 7000).to_string().as_bytes()));
        assert_eq!(m.run(&[b"ZSCORE", b"tag:{a}", b"d2"]), b(b"inf"));
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(-1), "persistent again for d2");
        assert_eq!(m.run(&[b"ZRANGEBYSCORE", b"tag:{a}", b"-1", b"-1"]), Value::Array(vec![b(b"\0T2")]));
        // The key is gone by the time of the re-listing: a token (the fresh one) and an expiry.
        m.run(&[b"DEL", b"tag:{a}"]);
        let score = (now + 3000).to_string();
        assert_eq!(m.eval(TAG_RELIST.source, b"tag:{a}", &[b"T9", score.as_bytes(), b"d3"]), Value::Int(1));
        assert_eq!(m.run(&[b"ZRANGEBYSCORE", b"tag:{a}", b"-1", b"-1"]), Value::Array(vec![b(b"\0T9")]));
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(3000));
        // Members that expired meanwhile: a key without expiry takes the grace.
        m.run(&[b"DEL", b"tag:{a}"]);
        m.advance(5000);
        m.eval(TAG_RELIST.source, b"tag:{a}", &[b"T9", score.as_bytes(), b"d3"]);
        assert_eq!(m.run(&[b"PTTL", b"tag:{a}"]), Value::Int(60_000));
        // More members than one `ZADD` takes at once (chunks of 500 pairs).
        let many: Vec<(String, String)> = (0..1_200).map(|i| ("inf".to_owned(), format!("m{i}"))).collect();
        let mut argv: Vec<&[u8]> = vec![b"T"];
        argv.extend(many.iter().flat_map(|(s, k)| [s.as_bytes(), k.as_bytes()]));
        assert_eq!(m.eval(TAG_RELIST.source, b"tag:{b}", &argv), Value::Int(1_200));
        assert_eq!(m.run(&[b"ZCARD", b"tag:{b}"]), Value::Int(1_201));
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
}
