//! The reference's naive tag protocol (reference spec section 7 and 8), test-only: the negative
//! control of the history checker.
//!
//! Built on the raw [`slotcache_rt::Client`], under its own key prefix:
//!
//! - **set**: `SET FK value PX ttl`, then, as a separate step, one pipeline of
//!   `SADD tag:{NS t} FK` per tag and `SADD keytags:FK t...`. A short pause ([`NaiveSubject`]'s
//!   `gap`) sits between the two steps, as a scheduler or a network hiccup would in production.
//!   Re-setting a key never removes its earlier tags (they accumulate).
//! - **`bulk_set`**: every `SET` and `SADD` in one pipeline (run per node, nodes in parallel).
//! - **get**: plain `GET` (no token check: there are no tokens); **`bulk_get`**: `GET`s in one
//!   pipeline; **get with a loader**: `GET`, and on a miss the loader's value `SET` untagged.
//! - **invalidate(k)**: `SMEMBERS keytags:FK`, then `SREM` from each tag and `DEL keytags:FK`,
//!   then `DEL FK`.
//! - **`invalidate_by_tags`**: `SMEMBERS` of every tag (errors read as empty); no members: 0 and
//!   nothing deleted; otherwise one pipeline of `DEL member`, `DEL keytags:member` and
//!   `DEL tag:{NS t}`. The count is the number of distinct members found.
//! - **`invalidate_all`**: `SCAN MATCH NS*` on every primary and `DEL` of what it finds: tag and
//!   reverse sets are left behind (spec section 8).
//!
//! A write whose `SADD` lands after an invalidation's `SMEMBERS` and before its `DEL` of the tag
//! set loses its membership: the value survives every later invalidation of the tag (an orphan).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use slotcache_rt::{Client, Cmd, Config, NodeAddr, Reply, Request, RequestError, Runtime, Value};

use super::{Fut, LoaderCalled, Subject};

const DEFAULT_TTL_MS: u64 = 3_600_000;

/// The naive protocol over namespace `NS` (data keys `NS key`).
#[derive(Clone, Debug)]
pub struct NaiveSubject {
    client: Client,
    rt: Arc<dyn Runtime>,
    ns: String,
    gap: Duration,
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn check(r: Result<Value, RequestError>) -> Result<Value, String> {
    match r {
        Ok(Value::Error(e)) => Err(String::from_utf8_lossy(&e).into_owned()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

fn bulk_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()))
        .collect()
}

impl NaiveSubject {
    /// Connects a raw client to `seeds`; data keys are `name:key`, with `gap` between a write's
    /// `SET` and its `SADD`s.
    ///
    /// # Errors
    /// The connection error, as text.
    pub async fn connect(
        rt: Arc<dyn Runtime>,
        seeds: Vec<NodeAddr>,
        name: &str,
        gap: Duration,
    ) -> Result<Self, String> {
        let mut cfg = Config::new(seeds);
        cfg.client.client_name = Some("slotcache-naive-tags".into());
        let client = Client::connect(rt.clone(), cfg).await.map_err(text)?;
        Ok(Self { client, rt, ns: format!("{name}:"), gap })
    }

    /// Closes the client.
    pub async fn close(&self) {
        self.client.close().await;
    }

    fn fk(&self, key: &str) -> String {
        format!("{}{key}", self.ns)
    }

    fn tk(&self, tag: &str) -> String {
        format!("tag:{{{}{tag}}}", self.ns)
    }

    fn tag_cmds(&self, fk: &str, tags: &[String]) -> Vec<Cmd> {
        let mut cmds: Vec<Cmd> = tags.iter().map(|t| Cmd::new("SADD").arg(self.tk(t)).arg(fk)).collect();
        let mut reverse = Cmd::new("SADD").arg(format!("keytags:{fk}"));
        for t in tags {
            reverse.push_arg(t.as_str());
        }
        cmds.push(reverse);
        cmds
    }

    async fn pipeline(&self, cmds: Vec<Cmd>) -> Result<Vec<Value>, String> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        self.client.pipeline(cmds).await.map_err(text)?.into_iter().map(check).collect()
    }

    async fn send(&self, cmd: Cmd) -> Result<Value, String> {
        match self.client.send(cmd).await {
            Ok(Value::Error(e)) => Err(String::from_utf8_lossy(&e).into_owned()),
            Ok(v) => Ok(v),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Subject for NaiveSubject {
    fn name(&self) -> &'static str {
        "naive"
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        tags: &'a [String],
        ttl: Option<Duration>,
    ) -> Fut<'a, ()> {
        async move {
            let fk = self.fk(key);
            let ms = ttl.map_or(DEFAULT_TTL_MS, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
            self.send(Cmd::new("SET").arg(fk.as_str()).arg(value).arg("PX").arg(ms)).await?;
            if tags.is_empty() {
                return Ok(());
            }
            self.rt.sleep_until(self.rt.now() + self.gap).await;
            self.pipeline(self.tag_cmds(&fk, tags)).await.map(drop)
        }
        .boxed()
    }

    fn bulk_set<'a>(&'a self, items: &'a [(String, String)], tags: &'a [String]) -> Fut<'a, ()> {
        async move {
            let mut cmds = Vec::new();
            for (k, v) in items {
                let fk = self.fk(k);
                cmds.push(Cmd::new("SET").arg(fk.as_str()).arg(v.as_str()).arg("PX").arg(DEFAULT_TTL_MS));
                if !tags.is_empty() {
                    cmds.extend(self.tag_cmds(&fk, tags));
                }
            }
            self.pipeline(cmds).await.map(drop)
        }
        .boxed()
    }

    fn get<'a>(&'a self, key: &'a str) -> Fut<'a, Option<String>> {
        async move {
            let v = self.send(Cmd::new("GET").arg(self.fk(key))).await?;
            Ok(v.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()))
        }
        .boxed()
    }

    fn bulk_get<'a>(&'a self, keys: &'a [String]) -> Fut<'a, Vec<Option<String>>> {
        async move {
            let cmds = keys.iter().map(|k| Cmd::new("GET").arg(self.fk(k))).collect();
            let values = self.pipeline(cmds).await?;
            Ok(values.iter().map(|v| v.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned())).collect())
        }
        .boxed()
    }

    fn get_or_load<'a>(&'a self, key: &'a str, value: &'a str, called: LoaderCalled) -> Fut<'a, String> {
        async move {
            if let Some(v) = self.get(key).await? {
                return Ok(v);
            }
            called();
            let fk = self.fk(key);
            self.send(Cmd::new("SET").arg(fk.as_str()).arg(value).arg("PX").arg(DEFAULT_TTL_MS)).await?;
            Ok(value.to_owned())
        }
        .boxed()
    }

    fn get_entry<'a>(&'a self, key: &'a str) -> Fut<'a, Option<(String, Option<Vec<String>>)>> {
        async move { Ok(self.get(key).await?.map(|v| (v, None))) }.boxed()
    }

    fn invalidate<'a>(&'a self, key: &'a str) -> Fut<'a, bool> {
        async move {
            let fk = self.fk(key);
            let rk = format!("keytags:{fk}");
            // Errors of the tag clean-up are only logged by the reference.
            if let Ok(v) = self.send(Cmd::new("SMEMBERS").arg(rk.as_str())).await {
                let mut cmds: Vec<Cmd> = bulk_strings(&v)
                    .iter()
                    .map(|t| Cmd::new("SREM").arg(self.tk(t)).arg(fk.as_str()))
                    .collect();
                if !cmds.is_empty() {
                    cmds.push(Cmd::new("DEL").arg(rk.as_str()));
                    let _ = self.pipeline(cmds).await;
                }
            }
            let n = self.send(Cmd::new("DEL").arg(fk)).await?;
            Ok(n.as_int() == Some(1))
        }
        .boxed()
    }

    fn invalidate_by_tags<'a>(&'a self, tags: &'a [String]) -> Fut<'a, u64> {
        async move {
            if tags.is_empty() {
                return Ok(0);
            }
            let reads = tags.iter().map(|t| Cmd::new("SMEMBERS").arg(self.tk(t))).collect();
            let replies = self.client.pipeline(reads).await.map_err(text)?;
            let members: BTreeSet<String> =
                replies.into_iter().filter_map(|r| check(r).ok()).flat_map(|v| bulk_strings(&v)).collect();
            if members.is_empty() {
                return Ok(0);
            }
            let mut cmds = Vec::new();
            for m in &members {
                cmds.push(Cmd::new("DEL").arg(m.as_str()));
                cmds.push(Cmd::new("DEL").arg(format!("keytags:{m}")));
            }
            cmds.extend(tags.iter().map(|t| Cmd::new("DEL").arg(self.tk(t))));
            self.pipeline(cmds).await?;
            Ok(members.len() as u64)
        }
        .boxed()
    }

    fn invalidate_all(&self) -> Fut<'_, u64> {
        async move {
            let nodes =
                match self.client.request(Request::all_primaries(Cmd::new("PING"))).await.map_err(text)? {
                    Reply::PerNode(v) => v.into_iter().map(|(a, _)| a).collect::<Vec<_>>(),
                    other => return Err(format!("PING: {other:?}")),
                };
            let mut n = 0;
            for node in nodes {
                let mut cursor = "0".to_owned();
                loop {
                    let cmd = Cmd::new("SCAN").arg(cursor.as_str()).arg("MATCH").arg(format!("{}*", self.ns));
                    let v = self
                        .client
                        .send_to(node.clone(), cmd.arg("COUNT").arg(100u32))
                        .await
                        .map_err(text)?;
                    let parts = v.as_array().unwrap_or_default();
                    let [next, keys] = parts else { return Err(format!("SCAN: {v:?}")) };
                    for k in bulk_strings(keys) {
                        if self.send(Cmd::new("DEL").arg(k)).await?.as_int() == Some(1) {
                            n += 1;
                        }
                    }
                    cursor = next.as_str().unwrap_or("0").to_owned();
                    if cursor == "0" {
                        break;
                    }
                }
            }
            Ok(n)
        }
        .boxed()
    }

    fn data_key(&self, key: &str) -> Vec<u8> {
        self.fk(key).into_bytes()
    }

    fn tag_key(&self, tag: &str) -> Vec<u8> {
        self.tk(tag).into_bytes()
    }

    fn scan_patterns(&self) -> (Vec<u8>, Vec<u8>) {
        (format!("{}*", self.ns).into_bytes(), format!("tag:{{{}*", self.ns).into_bytes())
    }
}
