//! The clients under test, behind one small trait the workloads are written against.

use core::future::Future;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

use slotcache_core::cache::codec::Raw;
use slotcache_rt::cache::{Cache, NamespaceOptions, Provider, ProviderConfig};
use slotcache_rt::{Cmd, NodeAddr, Value};

/// What the workloads need from a client. Each task owns a clone (redis-rs wants `&mut`).
pub(crate) trait BenchClient: Clone + Send + Sync + 'static {
    /// `GET key`; whether it found a value.
    fn get(&mut self, key: &Bytes) -> impl Future<Output = anyhow::Result<bool>> + Send;
    /// `GET key`: the value itself (the drills check every value they read).
    fn get_value(&mut self, key: &Bytes) -> impl Future<Output = anyhow::Result<Option<Bytes>>> + Send;
    /// `SET key value`.
    fn set(&mut self, key: &Bytes, value: &Bytes) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// `MGET keys...` across slots, values in the caller's order; how many were found.
    fn mget(&mut self, keys: &[Bytes]) -> impl Future<Output = anyhow::Result<usize>> + Send;
    /// The cache layer's `set` of `key` with `tags`.
    fn tag_set(
        &mut self,
        _key: &Bytes,
        _value: &Bytes,
        _tags: &[&str],
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { bail!("this client has no cache layer") }
    }
    /// The cache layer's `bulk_set` of `keys`, each to `value`, all with `tag`.
    fn tag_bulk_set(
        &mut self,
        _keys: &[Bytes],
        _value: &Bytes,
        _tag: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { bail!("this client has no cache layer") }
    }
    /// The cache layer's `invalidate_by_tags` of `tag`; how many entries it removed.
    fn invalidate_tag(&mut self, _tag: &str) -> impl Future<Output = anyhow::Result<u64>> + Send {
        async { bail!("this client has no cache layer") }
    }
}

/// Which client a cell runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ClientKind {
    /// slotcache on tokio (2 worker threads).
    SlotcacheTokio,
    /// slotcache on smol's global executor.
    SlotcacheSmol,
    /// slotcache on async-std.
    SlotcacheAsyncStd,
    /// redis-rs cluster-async (multiplexed connection per node), tokio.
    RedisRs,
    /// fred, tokio, clustered, default settings.
    Fred,
    /// `redis-benchmark --cluster -P 16`.
    RedisBenchmarkP16,
    /// `redis-benchmark --cluster`, one request per round trip per connection.
    RedisBenchmarkP1,
}

impl ClientKind {
    /// Every client, in report order.
    pub(crate) const ALL: [Self; 7] = [
        Self::SlotcacheTokio,
        Self::SlotcacheSmol,
        Self::SlotcacheAsyncStd,
        Self::RedisRs,
        Self::Fred,
        Self::RedisBenchmarkP16,
        Self::RedisBenchmarkP1,
    ];

    /// Short name (command line, result files).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::SlotcacheTokio => "slotcache-tokio",
            Self::SlotcacheSmol => "slotcache-smol",
            Self::SlotcacheAsyncStd => "slotcache-async-std",
            Self::RedisRs => "redis-rs",
            Self::Fred => "fred",
            Self::RedisBenchmarkP16 => "redis-benchmark-P16",
            Self::RedisBenchmarkP1 => "redis-benchmark",
        }
    }

    /// Parses [`ClientKind::name`].
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether this is `redis-benchmark` (a separate program, GET and SET only).
    pub(crate) const fn is_redis_benchmark(self) -> bool {
        matches!(self, Self::RedisBenchmarkP16 | Self::RedisBenchmarkP1)
    }

    /// Whether this is slotcache (on any runtime).
    pub(crate) const fn is_slotcache(self) -> bool {
        matches!(self, Self::SlotcacheTokio | Self::SlotcacheSmol | Self::SlotcacheAsyncStd)
    }
}

// ---------------------------------------------------------------------------------------------
// slotcache

/// slotcache's async handle (any runtime), and for the cache workloads a namespace of raw
/// byte values over the same client.
#[derive(Clone, Debug)]
pub(crate) struct Slotcache {
    pub(crate) client: slotcache_rt::Client,
    cache: Option<Cache<Bytes, Vec<u8>>>,
}

static GET: Bytes = Bytes::from_static(b"GET");
static SET: Bytes = Bytes::from_static(b"SET");
static MGET: Bytes = Bytes::from_static(b"MGET");

impl BenchClient for Slotcache {
    async fn get(&mut self, key: &Bytes) -> anyhow::Result<bool> {
        let v = self.client.send(Cmd::new(GET.clone()).arg(key.clone())).await?;
        Ok(!matches!(v, Value::Nil))
    }

    async fn get_value(&mut self, key: &Bytes) -> anyhow::Result<Option<Bytes>> {
        match self.client.send(Cmd::new(GET.clone()).arg(key.clone())).await? {
            Value::Nil => Ok(None),
            Value::Bulk(b) => Ok(Some(b)),
            other => bail!("GET answered {other:?}"),
        }
    }

    async fn set(&mut self, key: &Bytes, value: &Bytes) -> anyhow::Result<()> {
        self.client.send(Cmd::new(SET.clone()).arg(key.clone()).arg(value.clone())).await?;
        Ok(())
    }

    async fn mget(&mut self, keys: &[Bytes]) -> anyhow::Result<usize> {
        let mut args = Vec::with_capacity(keys.len() + 1);
        args.push(MGET.clone());
        args.extend(keys.iter().cloned());
        // slotcache splits per slot, sends each node its part in one write, and reassembles.
        match self.client.send(Cmd::from_args(args)).await? {
            Value::Array(vals) => Ok(vals.iter().filter(|v| !matches!(v, Value::Nil)).count()),
            other => bail!("MGET answered {other:?}"),
        }
    }

    async fn tag_set(&mut self, key: &Bytes, value: &Bytes, tags: &[&str]) -> anyhow::Result<()> {
        Ok(self.cache()?.set(key, &value.to_vec(), tags).await?)
    }

    async fn tag_bulk_set(&mut self, keys: &[Bytes], value: &Bytes, tag: &str) -> anyhow::Result<()> {
        let items: Vec<(Bytes, Vec<u8>)> = keys.iter().map(|k| (k.clone(), value.to_vec())).collect();
        Ok(self.cache()?.bulk_set(&items, &[tag]).await?)
    }

    async fn invalidate_tag(&mut self, tag: &str) -> anyhow::Result<u64> {
        Ok(self.cache()?.invalidate_by_tags(&[tag]).await?)
    }
}

impl Slotcache {
    fn cache(&self) -> anyhow::Result<&Cache<Bytes, Vec<u8>>> {
        self.cache.as_ref().context("connected without the cache layer")
    }

    /// Closes the client (and the provider's, which is the same one).
    pub(crate) async fn close(&self) {
        self.client.close().await;
    }
}

/// Connects slotcache on `rt`: the bare client, or with `cache` a provider (default settings)
/// and a namespace `bench` of raw byte values.
pub(crate) async fn slotcache(
    rt: Arc<dyn slotcache_rt::Runtime>,
    seeds: &[NodeAddr],
    cache: bool,
) -> anyhow::Result<Slotcache> {
    if cache {
        let mut cfg = ProviderConfig::new(seeds.iter().map(|s| format!("{}:{}", s.host(), s.port())));
        cfg.client_name = "slotcache-bench".into();
        let provider = Provider::connect(rt, cfg).await.context("connecting the slotcache provider")?;
        let options =
            NamespaceOptions { codec: Arc::new(Raw), ..NamespaceOptions::<Bytes, Vec<u8>>::default() };
        let ns = provider.create_namespace("bench", options).context("creating the namespace")?;
        return Ok(Slotcache { client: provider.client().clone(), cache: Some(ns) });
    }
    let mut cfg = slotcache_rt::Config::new(seeds.to_vec());
    cfg.client.client_name = Some("slotcache-bench".into());
    let client = slotcache_rt::Client::connect(rt, cfg).await.context("connecting slotcache")?;
    Ok(Slotcache { client, cache: None })
}

// ---------------------------------------------------------------------------------------------
// redis-rs

/// redis-rs cluster-async connection (one multiplexed connection per node, shared by clones).
#[derive(Clone)]
pub(crate) struct RedisRs(redis::cluster_async::ClusterConnection);

impl BenchClient for RedisRs {
    async fn get(&mut self, key: &Bytes) -> anyhow::Result<bool> {
        let v: redis::Value = redis::cmd("GET").arg(key.as_ref()).query_async(&mut self.0).await?;
        Ok(!matches!(v, redis::Value::Nil))
    }

    async fn get_value(&mut self, key: &Bytes) -> anyhow::Result<Option<Bytes>> {
        let v: Option<Vec<u8>> = redis::cmd("GET").arg(key.as_ref()).query_async(&mut self.0).await?;
        Ok(v.map(Bytes::from))
    }

    async fn set(&mut self, key: &Bytes, value: &Bytes) -> anyhow::Result<()> {
        redis::cmd("SET").arg(key.as_ref()).arg(value.as_ref()).exec_async(&mut self.0).await?;
        Ok(())
    }

    async fn mget(&mut self, keys: &[Bytes]) -> anyhow::Result<usize> {
        // redis-rs's cluster routing splits MGET per slot itself and merges in order.
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(k.as_ref());
        }
        match cmd.query_async(&mut self.0).await? {
            redis::Value::Array(vals) => Ok(vals.iter().filter(|v| !matches!(v, redis::Value::Nil)).count()),
            other => bail!("MGET answered {other:?}"),
        }
    }
}

/// Connects redis-rs (must run inside a tokio runtime).
pub(crate) async fn redis_rs(seeds: &[NodeAddr]) -> anyhow::Result<RedisRs> {
    let urls: Vec<String> = seeds.iter().map(|s| format!("redis://{}:{}/", s.host(), s.port())).collect();
    let client = redis::cluster::ClusterClient::new(urls).context("redis-rs client")?;
    Ok(RedisRs(client.get_async_connection().await.context("connecting redis-rs")?))
}

// ---------------------------------------------------------------------------------------------
// fred

/// A fred client (clustered, auto-pipelined, default settings).
#[derive(Clone)]
pub(crate) struct Fred(fred::clients::Client);

impl BenchClient for Fred {
    async fn get(&mut self, key: &Bytes) -> anyhow::Result<bool> {
        use fred::interfaces::KeysInterface as _;
        let v: Option<Bytes> = self.0.get(key.clone()).await?;
        Ok(v.is_some())
    }

    async fn get_value(&mut self, key: &Bytes) -> anyhow::Result<Option<Bytes>> {
        use fred::interfaces::KeysInterface as _;
        Ok(self.0.get(key.clone()).await?)
    }

    async fn set(&mut self, key: &Bytes, value: &Bytes) -> anyhow::Result<()> {
        use fred::interfaces::KeysInterface as _;
        let (): () = self.0.set(key.clone(), value.clone(), None, None, false).await?;
        Ok(())
    }

    async fn mget(&mut self, keys: &[Bytes]) -> anyhow::Result<usize> {
        use fred::interfaces::KeysInterface as _;
        use fred::types::Value as FValue;
        // fred does not split cross-slot commands: its users group keys by slot and send one MGET
        // per slot, here all in one fred pipeline (fred routes each command of it on its own),
        // then put the values back in the caller's order.
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let slot = slotcache_core::key_slot(k).get();
            match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((slot, vec![i])),
            }
        }
        let pipe = self.0.pipeline();
        for (_, idx) in &groups {
            let group: Vec<Bytes> = idx.iter().map(|&i| keys[i].clone()).collect();
            let _: FValue = pipe.mget(group).await?;
        }
        let replies: Vec<FValue> = pipe.all().await?;
        let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
        for ((_, idx), reply) in groups.iter().zip(replies) {
            let vals = match reply {
                FValue::Array(v) => v,
                other => vec![other],
            };
            for (&i, v) in idx.iter().zip(vals) {
                out[i] = v.into_bytes();
            }
        }
        Ok(out.iter().filter(|v| v.is_some()).count())
    }
}

/// Connects fred (must run inside a tokio runtime).
pub(crate) async fn fred(seeds: &[NodeAddr]) -> anyhow::Result<Fred> {
    use fred::interfaces::ClientLike as _;
    let hosts = seeds.iter().map(|s| (s.host().to_owned(), s.port())).collect();
    let config = fred::types::config::Config {
        server: fred::types::config::ServerConfig::new_clustered(hosts),
        ..Default::default()
    };
    let client = fred::types::Builder::from_config(config).build().context("fred client")?;
    client.init().await.context("connecting fred")?;
    Ok(Fred(client))
}

// ---------------------------------------------------------------------------------------------
// The drills' settings: the same budgets for all three clients

/// The budgets every client gets in the drills ([`crate::drill`]), each in its own terms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budgets {
    /// A request's whole budget, retries and redirects included.
    pub(crate) request: Duration,
    /// Opening a connection (and its handshake).
    pub(crate) connect: Duration,
}

/// slotcache, bare client: `request_timeout` and `connect_timeout` from `b`, the rest default.
pub(crate) async fn slotcache_budgets(
    rt: Arc<dyn slotcache_rt::Runtime>,
    seeds: &[NodeAddr],
    name: &str,
    b: Budgets,
) -> anyhow::Result<Slotcache> {
    let mut cfg = slotcache_rt::Config::new(seeds.to_vec());
    cfg.client.client_name = Some(name.into());
    cfg.client.request_timeout = b.request;
    cfg.client.connect_timeout = b.connect;
    let client = slotcache_rt::Client::connect(rt, cfg).await.context("connecting slotcache")?;
    Ok(Slotcache { client, cache: None })
}

/// redis-rs: `response_timeout` (which is also its overall budget, retries included) and
/// `connection_timeout` from `b`; retries and their waits at redis-rs's defaults.
pub(crate) async fn redis_rs_budgets(seeds: &[NodeAddr], b: Budgets) -> anyhow::Result<RedisRs> {
    let urls: Vec<String> = seeds.iter().map(|s| format!("redis://{}:{}/", s.host(), s.port())).collect();
    let client = redis::cluster::ClusterClientBuilder::new(urls)
        .response_timeout(b.request)
        .connection_timeout(b.connect)
        .build()
        .context("redis-rs client")?;
    Ok(RedisRs(client.get_async_connection().await.context("connecting redis-rs")?))
}

/// fred: `default_command_timeout` from `b.request`, `connection_timeout` and
/// `internal_command_timeout` from `b.connect`, and the reconnect policy of fred's own examples
/// (exponential, 100 ms to 30 s, no attempt limit; without a policy fred never reconnects).
pub(crate) async fn fred_budgets(seeds: &[NodeAddr], b: Budgets) -> anyhow::Result<Fred> {
    use fred::interfaces::ClientLike as _;
    let hosts = seeds.iter().map(|s| (s.host().to_owned(), s.port())).collect();
    let config = fred::types::config::Config {
        server: fred::types::config::ServerConfig::new_clustered(hosts),
        ..Default::default()
    };
    let client = fred::types::Builder::from_config(config)
        .with_performance_config(|p| p.default_command_timeout = b.request)
        .with_connection_config(|c| {
            c.connection_timeout = b.connect;
            c.internal_command_timeout = b.connect;
        })
        .set_policy(fred::types::config::ReconnectPolicy::new_exponential(0, 100, 30_000, 2))
        .build()
        .context("fred client")?;
    client.init().await.context("connecting fred")?;
    Ok(Fred(client))
}

impl Fred {
    /// Closes fred's connections.
    pub(crate) async fn quit(&self) {
        use fred::interfaces::ClientLike as _;
        let _ = self.0.quit().await;
    }
}
