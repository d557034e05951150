//! Opening connections: one short task per dial (TCP, then TLS), which hands the open stream to
//! the driver. The driver then reads and writes the stream itself (see [`crate::driver`]), so
//! bytes go from the socket into the core with no task hop and no extra copy.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{Either, select};
use slotcache_core::NodeAddr;
use slotcache_core::client::{ConnError, ConnErrorKind, ConnId};

use crate::runtime::{BoxStream, Runtime};
use crate::tls::TlsSetup;

/// What a dial tells the driver.
pub(crate) enum ConnEvent {
    /// Open: the driver owns the stream from now on.
    Connected(ConnId, BoxStream),
    /// Could not open.
    ConnectFailed(ConnId, ConnError),
}

impl core::fmt::Debug for ConnEvent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Connected(c, _) => f.debug_tuple("Connected").field(c).finish_non_exhaustive(),
            Self::ConnectFailed(c, e) => f.debug_tuple("ConnectFailed").field(c).field(e).finish(),
        }
    }
}

pub(crate) fn io_error(kind: ConnErrorKind, e: &std::io::Error) -> ConnError {
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

/// Dials one connection (bounded by `connect_deadline`) and reports the outcome.
pub(crate) async fn run(
    rt: Arc<dyn Runtime>,
    conn: ConnId,
    addr: NodeAddr,
    tls: Option<TlsSetup>,
    connect_deadline: Instant,
    events: async_channel::Sender<ConnEvent>,
) {
    let timer = rt.sleep_until(connect_deadline);
    let event = match select(Box::pin(dial(&rt, &addr, tls.as_ref())), timer).await {
        Either::Left((Ok(s), _)) => ConnEvent::Connected(conn, s),
        Either::Left((Err(e), _)) => ConnEvent::ConnectFailed(conn, e),
        Either::Right(((), _)) => ConnEvent::ConnectFailed(
            conn,
            ConnError::new(ConnErrorKind::ConnectTimeout, format!("connecting to {addr} timed out")),
        ),
    };
    // If the driver is gone, dropping the stream closes it.
    let _ = events.send(event).await;
}
