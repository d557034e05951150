//! The public async client: a cheap, cloneable handle to one driver task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_channel::oneshot;
use slotcache_core::client::{Client as Core, Cmd, Event, Prepared, Reply, Request, RequestError, Stats};
use slotcache_core::{NodeAddr, Value};

use crate::driver::{Driver, Msg};
use crate::error::Error;
use crate::runtime::Runtime;
use crate::tls::{TlsConfig, TlsSetup};

/// Bound on requests waiting for the driver to take them; callers wait beyond it (backpressure).
const MAILBOX: usize = 65_536;

/// Settings for [`Client::connect`]: the core's settings plus TLS.
pub type Config = slotcache_core::client::ClientSettings<TlsConfig>;

/// An async Valkey Cluster client. Cloning it is cheap; every clone shares one driver task,
/// one connection pool and one topology.
///
/// Requests from many tasks are pipelined automatically: whatever arrives while the driver is
/// busy goes out in one write per node.
#[derive(Clone, Debug)]
pub struct Client {
    tx: async_channel::Sender<Msg>,
    topology: crate::driver::TopologySnapshot,
}

impl Client {
    /// Starts a client on `rt` and waits until the cluster answers a `PING` (so a wrong seed,
    /// a wrong password or a TLS problem is reported here, naming the seeds).
    ///
    /// # Errors
    /// An invalid configuration, unusable TLS settings, or no seed answering in time.
    pub async fn connect(rt: Arc<dyn Runtime>, config: Config) -> Result<Self, Error> {
        let client = Self::start(rt, config)?;
        client.send(Cmd::new("PING")).await?;
        Ok(client)
    }

    /// Starts a client without waiting for the cluster.
    ///
    /// # Errors
    /// An invalid configuration or unusable TLS settings.
    pub fn start(rt: Arc<dyn Runtime>, config: Config) -> Result<Self, Error> {
        config.validate()?;
        let Config { mut client, tls } = config;
        let tls = match tls {
            Some(config) => {
                client.tls = true;
                Some(TlsSetup { rustls: config.build()?, config })
            }
            None => None,
        };
        let core = Core::new(client, rt.now())?;
        let (tx, mailbox) = async_channel::bounded(MAILBOX);
        let (events_tx, events_rx) = async_channel::bounded(MAILBOX);
        let topology = crate::driver::TopologySnapshot::default();
        let driver = Driver {
            topology: topology.clone(),
            client: core,
            rt: rt.clone(),
            tls,
            mailbox: Box::pin(mailbox),
            events_tx,
            events_rx: Box::pin(events_rx),
            conns: HashMap::new(),
            io_waker: Arc::default(),
            read_buf: vec![0; crate::driver::READ_CHUNK],
            woken: Vec::new(),
            defers: 0,
            dialling: HashSet::new(),
            waiters: crate::driver::Waiters::default(),
            subscribers: Vec::new(),
            timer: None,
            closed: None,
            stopping: false,
            metrics: crate::observe::DriverMetrics::new(),
        };
        rt.spawn(Box::pin(driver));
        Ok(Self { tx, topology })
    }

    /// The driver's mailbox.
    pub(crate) const fn sender(&self) -> &async_channel::Sender<Msg> {
        &self.tx
    }

    /// Sends any request and waits for its reply.
    ///
    /// # Errors
    /// The request's error, or [`Error::Closed`].
    pub async fn request(&self, request: Request) -> Result<Reply, Error> {
        use tracing::Instrument;
        let kind = request_kind(&request);
        // Planned here, in the caller's task: the driver, which serves every task, only
        // queues and routes it.
        let prepared = request.prepare()?;
        let span = crate::observe::request_span(&prepared, kind);
        if span.is_disabled() {
            return self.round_trip(prepared, None).await;
        }
        let result = self.round_trip(prepared, Some(span.clone())).instrument(span.clone()).await;
        crate::observe::request_done(&span, &result);
        result
    }

    /// Hands a planned request to the driver and waits for its reply.
    async fn round_trip(&self, prepared: Prepared, span: Option<tracing::Span>) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Request(prepared, tx, span)).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Sends one command, routed by its keys (multi-key commands split per slot and merged).
    ///
    /// # Errors
    /// The command's error, or [`Error::Closed`].
    pub async fn send(&self, cmd: Cmd) -> Result<Value, Error> {
        match self.request(Request::command(cmd)).await? {
            Reply::Value(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends commands that may span slots: each goes to its own node, commands for one node are
    /// pipelined, nodes are served in parallel, and the results come back in order.
    ///
    /// # Errors
    /// A failure of the whole pipeline (timeout, closed); each command's own error is in the
    /// vector.
    pub async fn pipeline(&self, cmds: Vec<Cmd>) -> Result<Vec<Result<Value, RequestError>>, Error> {
        match self.request(Request::pipeline(cmds)).await? {
            Reply::Pipeline(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Like [`Client::pipeline`], with this pipeline's whole time budget.
    ///
    /// # Errors
    /// A failure of the whole pipeline (timeout, closed); each command's own error is in the
    /// vector.
    pub async fn pipeline_with_timeout(
        &self,
        cmds: Vec<Cmd>,
        timeout: std::time::Duration,
    ) -> Result<Vec<Result<Value, RequestError>>, Error> {
        match self.request(Request::pipeline(cmds).with_timeout(timeout)).await? {
            Reply::Pipeline(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// The client's latest topology (shards, primaries, replicas and the epoch), as the driver
    /// last published it; `None` before the first one. The one place the cache layer learns
    /// the cluster's shape from.
    #[must_use]
    pub fn topology(&self) -> Option<Arc<slotcache_core::Topology>> {
        self.topology.get()
    }

    /// Sends a command to every primary.
    ///
    /// # Errors
    /// A failure of the whole request; each node's own error is in the vector.
    pub async fn all_primaries(
        &self,
        cmd: Cmd,
    ) -> Result<Vec<(NodeAddr, Result<Value, RequestError>)>, Error> {
        match self.request(Request::all_primaries(cmd)).await? {
            Reply::PerNode(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends a command to one node. It is not redirected: a `MOVED` or `ASK` from that node is
    /// its error (the client still learns from it and refreshes its topology).
    ///
    /// # Errors
    /// The command's error, or [`Error::Closed`].
    pub async fn send_to(&self, addr: NodeAddr, cmd: Cmd) -> Result<Value, Error> {
        match self.request(Request::node(addr, cmd)).await? {
            Reply::Value(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// The client's counters (MOVED, ASK, TRYAGAIN, retries, refreshes, reconnects, timeouts).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn stats(&self) -> Result<Stats, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Stats(tx)).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Topology changes and push messages, from now on. Slow readers miss events (the channel
    /// holds 1024) rather than slow the client down.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn events(&self) -> Result<async_channel::Receiver<Event>, Error> {
        let (tx, rx) = async_channel::bounded(1024);
        self.tx.send(Msg::Subscribe(tx)).await.map_err(|_| Error::Closed)?;
        Ok(rx)
    }

    /// Fails every outstanding request with [`Error::Closed`], closes every connection and stops
    /// the driver. Other clones see [`Error::Closed`] from then on.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.tx.close();
    }
}

fn request_kind(r: &Request) -> &'static str {
    match r.kind {
        slotcache_core::client::RequestKind::Command(_) => "command",
        slotcache_core::client::RequestKind::Pipeline(_) => "pipeline",
        slotcache_core::client::RequestKind::AllPrimaries(_) => "all_primaries",
        slotcache_core::client::RequestKind::Node(..) => "node",
        _ => "other",
    }
}

fn unexpected(reply: &Reply) -> Error {
    Error::Request(RequestError::UnexpectedReply {
        expected: "a reply of the request's shape",
        got: format!("{reply:?}"),
    })
}
