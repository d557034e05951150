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

/// A connection error from an I/O error. rustls reports TLS failures as I/O errors carrying a
/// `rustls::Error`, at the handshake or later (a TLS 1.3 server that wants a client certificate
/// says so with an alert after the client's handshake is done): those become
/// [`ConnErrorKind::Tls`], whatever `kind` the caller expected, with a hint at the usual cause.
fn io_error(kind: ConnErrorKind, e: &std::io::Error) -> ConnError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => ConnError::new(ConnErrorKind::Tls, tls_message(tls)),
        None => ConnError::new(kind, e.to_string()),
    }
}

/// rustls's text, with a hint in parentheses (the kind, `Tls`, already says TLS).
fn tls_message(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let hint = match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "the server's certificate is not signed by a trusted root: check the CA given to \
             TlsConfig::with_root_pem"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's certificate does not name the address connected to: see \
             TlsConfig::with_server_name"
        }
        E::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => "the server's certificate is expired or not yet valid",
        E::InvalidCertificate(_) => "the server's certificate was refused",
        E::AlertReceived(A::CertificateRequired) => {
            "the server requires a client certificate: see TlsConfig::with_client_cert_pem"
        }
        E::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::DecryptError) => {
            "the server refused the client certificate"
        }
        E::AlertReceived(A::HandshakeFailure) => {
            "the server refused the handshake (it may require a client certificate: see \
             TlsConfig::with_client_cert_pem)"
        }
        _ => "",
    };
    if hint.is_empty() { e.to_string() } else { format!("{e} ({hint})") }
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
        while let Ok(data) = rx.recv().await {
            writer.write_all(&data).await?;
            while let Ok(more) = rx.try_recv() {
                writer.write_all(&more).await?;
            }
            writer.flush().await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_typed_tls_with_a_hint_whatever_the_stage() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let e = io_error(ConnErrorKind::Io, &std::io::Error::new(std::io::ErrorKind::InvalidData, alert));
        assert_eq!(e.kind, ConnErrorKind::Tls);
        assert!(e.message.contains("requires a client certificate"), "{e}");

        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let e = io_error(ConnErrorKind::Tls, &std::io::Error::new(std::io::ErrorKind::InvalidData, bad));
        assert_eq!(e.kind, ConnErrorKind::Tls);
        assert!(e.to_string().starts_with("Tls: invalid peer certificate"), "{e}");
        assert!(e.message.contains("trusted root"), "{e}");

        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = io_error(ConnErrorKind::Io, &plain);
        assert_eq!((e.kind, e.message.as_str()), (ConnErrorKind::Io, "reset"));
    }
}
