//! The driver task: the only owner of the core [`Client`] state machine.
//!
//! Each wake-up it takes every waiting request from the mailbox and every connection event,
//! feeds them to the core, then drains the core's outputs: dials, writes (one coalesced write
//! per connection per wake-up, which is what auto-pipelining means here), closes, completions.
//! Then it sleeps until the core's next timer or the next message.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::Stream;
use slotcache_core::client::{Client, ConnId, Event, Input, Output, Reply, Request, RequestId, Stats};

use crate::conn_task::{self, ConnEvent};
use crate::error::Error;
use crate::runtime::{BoxFuture, Runtime};
use crate::tls::TlsSetup;

/// A reply channel for one request.
pub(crate) type Waiter = oneshot::Sender<Result<Reply, Error>>;

/// What the handles send to the driver.
pub(crate) enum Msg {
    /// Submit a request.
    Request(Request, Waiter),
    /// Report the counters.
    Stats(oneshot::Sender<Stats>),
    /// Count the online replicas of a slot's shard.
    Replicas(slotcache_core::Slot, oneshot::Sender<usize>),
    /// Subscribe to topology and push events.
    Subscribe(async_channel::Sender<Event>),
    /// Fail everything outstanding and stop.
    Close(oneshot::Sender<()>),
}

/// Work items taken per wake-up before yielding, so one busy source cannot starve the others.
const BATCH: usize = 4096;

pub(crate) struct Driver {
    pub(crate) client: Client,
    pub(crate) rt: Arc<dyn Runtime>,
    pub(crate) tls: Option<TlsSetup>,
    pub(crate) mailbox: Pin<Box<async_channel::Receiver<Msg>>>,
    pub(crate) events_tx: async_channel::Sender<ConnEvent>,
    pub(crate) events_rx: Pin<Box<async_channel::Receiver<ConnEvent>>>,
    pub(crate) writers: HashMap<ConnId, async_channel::Sender<Bytes>>,
    /// Connections being dialled that the core still wants.
    pub(crate) dialling: HashSet<ConnId>,
    pub(crate) waiters: HashMap<RequestId, Waiter>,
    pub(crate) subscribers: Vec<async_channel::Sender<Event>>,
    pub(crate) timer: Option<(Instant, BoxFuture<()>)>,
    pub(crate) closed: Option<oneshot::Sender<()>>,
    pub(crate) stopping: bool,
}

impl Driver {
    fn on_msg(&mut self, now: Instant, msg: Msg) {
        match msg {
            Msg::Request(req, waiter) => match self.client.submit(now, req) {
                Ok(id) => {
                    self.waiters.insert(id, waiter);
                }
                Err(e) => {
                    let _ = waiter.send(Err(Error::Submit(e)));
                }
            },
            Msg::Stats(tx) => {
                let _ = tx.send(self.client.stats());
            }
            Msg::Replicas(slot, tx) => {
                let n = self
                    .client
                    .topology()
                    .map_or(0, |t| t.replicas(slot).iter().filter(|n| n.is_online()).count());
                let _ = tx.send(n);
            }
            Msg::Subscribe(tx) => self.subscribers.push(tx),
            Msg::Close(done) => {
                self.client.close();
                self.closed = Some(done);
                self.stopping = true;
            }
        }
    }

    fn on_event(&mut self, now: Instant, ev: ConnEvent) {
        match ev {
            ConnEvent::Connected(conn, writer) => {
                if self.dialling.remove(&conn) {
                    self.writers.insert(conn, writer);
                    self.client.handle_input(now, Input::Connected(conn));
                }
                // else: the core gave up on it; dropping `writer` closes the socket.
            }
            ConnEvent::ConnectFailed(conn, e) => {
                if self.dialling.remove(&conn) {
                    self.client.handle_input(now, Input::ConnectFailed(conn, e));
                }
            }
            ConnEvent::Received(conn, data) => {
                if self.writers.contains_key(&conn) {
                    self.client.handle_input(now, Input::Received(conn, &data));
                }
            }
            ConnEvent::Disconnected(conn, e) => {
                if self.writers.remove(&conn).is_some() {
                    self.client.handle_input(now, Input::Disconnected(conn, e));
                }
            }
        }
    }

    /// Drains the core's outputs; returns the instant of its next timer.
    fn drain(&mut self, now: Instant) -> Option<Instant> {
        loop {
            match self.client.poll_output() {
                Output::Connect { conn, addr } => {
                    self.dialling.insert(conn);
                    let deadline = now + self.client.config().connect_timeout;
                    let task = conn_task::run(
                        self.rt.clone(),
                        conn,
                        addr,
                        self.tls.clone(),
                        deadline,
                        self.events_tx.clone(),
                    );
                    self.rt.spawn(Box::pin(task));
                }
                Output::Transmit { conn, data } => {
                    if let Some(w) = self.writers.get(&conn) {
                        // Unbounded, so this only fails once the task has ended; its
                        // Disconnected event is then on its way to the core.
                        let _ = w.try_send(data);
                    }
                }
                Output::Close { conn } => {
                    self.writers.remove(&conn);
                    self.dialling.remove(&conn);
                }
                Output::Completed { id, result } => {
                    if let Some(w) = self.waiters.remove(&id) {
                        let _ = w.send(result.map_err(Error::Request));
                    }
                }
                Output::Event(e) => {
                    tracing::debug!(event = ?e, "slotcache event");
                    self.subscribers.retain(|s| s.try_send(e.clone()).is_ok() || !s.is_closed());
                }
                Output::Wait(at) => return at,
                _ => {}
            }
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            let now = this.rt.now();
            let mut work = 0;
            while work < BATCH {
                match this.mailbox.as_mut().poll_next(cx) {
                    Poll::Ready(Some(msg)) => {
                        this.on_msg(now, msg);
                        work += 1;
                    }
                    Poll::Ready(None) => {
                        // Every handle is gone: nobody can wait for anything any more.
                        if !this.stopping {
                            this.client.close();
                            this.stopping = true;
                        }
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            while work < BATCH {
                match this.events_rx.as_mut().poll_next(cx) {
                    Poll::Ready(Some(ev)) => {
                        this.on_event(now, ev);
                        work += 1;
                    }
                    _ => break,
                }
            }
            if let Some((at, fut)) = &mut this.timer {
                if *at <= now || fut.as_mut().poll(cx).is_ready() {
                    this.timer = None;
                    this.client.handle_input(now, Input::Timeout);
                    work += 1;
                }
            }
            let next = this.drain(now);
            if this.stopping {
                // Outstanding waiters were failed by close(); finish.
                for (_, w) in this.waiters.drain() {
                    let _ = w.send(Err(Error::Closed));
                }
                this.writers.clear();
                if let Some(done) = this.closed.take() {
                    let _ = done.send(());
                }
                return Poll::Ready(());
            }
            match (next, &this.timer) {
                (Some(at), Some((cur, _))) if *cur == at => {}
                (Some(at), _) => {
                    let mut fut = this.rt.sleep_until(at);
                    if fut.as_mut().poll(cx).is_ready() {
                        this.timer = None;
                        this.client.handle_input(this.rt.now(), Input::Timeout);
                        continue;
                    }
                    this.timer = Some((at, fut));
                }
                (None, _) => this.timer = None,
            }
            if work == 0 {
                return Poll::Pending;
            }
            if work >= BATCH {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}
