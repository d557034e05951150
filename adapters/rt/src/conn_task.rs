//! One task per connection: dial (and TLS), then read and write until told to stop.
//!
//! The task owns the socket. The driver hands it bytes through a channel and drops the channel's
//! sender to close it; everything the socket says goes back to the driver as a [`ConnEvent`].

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::{Either, select};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use slotcache_core::NodeAddr;
use slotcache_core::client::{ConnError, ConnErrorKind, ConnId};

use crate::runtime::{BoxStream, Runtime};
use crate::tls::TlsSetup;

/// What a connection task tells the driver.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// Open; bytes for it go into this sender.
    Connected(ConnId, async_channel::Sender<Bytes>),
    /// Could not open.
    ConnectFailed(ConnId, ConnError),
    /// Bytes arrived.
    Received(ConnId, Bytes),
    /// Closed or failed after opening.
    Disconnected(ConnId, ConnError),
}

/// Size of one read.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes gathered into one write before it is sent.
const WRITE_BATCH: usize = 256 * 1024;

/// Gives the other ready tasks one turn: pending once, waking itself.
async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            core::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            core::task::Poll::Pending
        }
    })
    .await;
}

fn io_error(kind: ConnErrorKind, e: &std::io::Error) -> ConnError {
    ConnError::new(kind, e.to_string())
}

async fn dial(
    rt: &Arc<dyn Runtime>,
    addr: &NodeAddr,
    tls: Option<&TlsSetup>,
) -> Result<BoxStream, ConnError> {
    let tcp = rt
        .connect_tcp(addr.host().to_owned(), addr.port())
        .await
        .map_err(|e| io_error(ConnErrorKind::Refused, &e))?;
    let Some(tls) = tls else { return Ok(tcp) };
    let name = tls.config.server_name(addr).map_err(|e| ConnError::new(ConnErrorKind::Tls, e.to_string()))?;
    let connector = futures_rustls::TlsConnector::from(tls.rustls.clone());
    let stream = connector.connect(name, tcp).await.map_err(|e| io_error(ConnErrorKind::Tls, &e))?;
    Ok(Box::new(stream))
}

/// Runs one connection from dial to close.
pub(crate) async fn run(
    rt: Arc<dyn Runtime>,
    conn: ConnId,
    addr: NodeAddr,
    tls: Option<TlsSetup>,
    connect_deadline: Instant,
    events: async_channel::Sender<ConnEvent>,
) {
    let timer = rt.sleep_until(connect_deadline);
    let stream = match select(Box::pin(dial(&rt, &addr, tls.as_ref())), timer).await {
        Either::Left((Ok(s), _)) => s,
        Either::Left((Err(e), _)) => {
            let _ = events.send(ConnEvent::ConnectFailed(conn, e)).await;
            return;
        }
        Either::Right(((), _)) => {
            let e = ConnError::new(ConnErrorKind::ConnectTimeout, format!("connecting to {addr} timed out"));
            let _ = events.send(ConnEvent::ConnectFailed(conn, e)).await;
            return;
        }
    };
    let (tx, rx) = async_channel::unbounded::<Bytes>();
    if events.send(ConnEvent::Connected(conn, tx)).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = stream.split();
    let read_events = events.clone();
    let read = Box::pin(async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return ConnError::new(ConnErrorKind::Closed, "the server closed the connection"),
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                    if read_events.send(ConnEvent::Received(conn, chunk)).await.is_err() {
                        return ConnError::new(ConnErrorKind::Closed, "the client stopped");
                    }
                }
                Err(e) => return io_error(ConnErrorKind::Io, &e),
            }
        }
    });
    let write = Box::pin(async move {
        let mut batch: Vec<u8> = Vec::new();
        while let Ok(data) = rx.recv().await {
            // Let the tasks that are ready run first (the driver among them), so that what they
            // send meanwhile goes out in this same write: one syscall for many requests.
            yield_now().await;
            let Ok(more) = rx.try_recv() else {
                writer.write_all(&data).await?;
                writer.flush().await?;
                continue;
            };
            batch.clear();
            batch.extend_from_slice(&data);
            batch.extend_from_slice(&more);
            while batch.len() < WRITE_BATCH {
                let Ok(more) = rx.try_recv() else { break };
                batch.extend_from_slice(&more);
            }
            writer.write_all(&batch).await?;
            writer.flush().await?;
            if batch.capacity() > 4 * WRITE_BATCH {
                batch = Vec::new();
            }
        }
        // The driver dropped the sender: close quietly.
        let _ = writer.close().await;
        Ok::<(), std::io::Error>(())
    });
    match select(read, write).await {
        Either::Left((err, _)) => {
            let _ = events.send(ConnEvent::Disconnected(conn, err)).await;
        }
        Either::Right((Err(e), _)) => {
            let _ = events.send(ConnEvent::Disconnected(conn, io_error(ConnErrorKind::Io, &e))).await;
        }
        Either::Right((Ok(()), _)) => {}
    }
}
