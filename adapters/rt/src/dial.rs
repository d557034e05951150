//! Opening connections: one short task per dial (TCP, then TLS), which hands the open stream to
//! the driver. The driver then reads and writes the stream itself (see the `driver` module), so
//! bytes go from the socket into the core with no task hop and no extra copy.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{Either, select};
use slotcache_core::NodeAddr;
use slotcache_core::client::{ConnError, ConnErrorKind, ConnId, TlsFailure};

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

/// A connection error from an I/O error. rustls reports TLS failures as I/O errors carrying a
/// `rustls::Error`, at the handshake or later (a TLS 1.3 server that wants a client certificate
/// says so with an alert after the client's handshake is done): those become
/// [`ConnErrorKind::Tls`], whatever `kind` the caller expected, naming what did not verify
/// ([`TlsFailure`]) with a hint at the usual cause, and keeping rustls's error as the source.
pub(crate) fn io_error(kind: ConnErrorKind, e: &std::io::Error) -> ConnError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => tls_error(tls),
        None => ConnError::new(kind, e.to_string()),
    }
}

/// A [`ConnErrorKind::Tls`] error from rustls's: typed when rustls says what was refused.
fn tls_error(e: &rustls::Error) -> ConnError {
    match tls_failure(e) {
        Some(failure) => ConnError::tls(failure, format!("{failure}: {e} ({})", failure.hint())),
        None => ConnError::new(ConnErrorKind::Tls, e.to_string()),
    }
    .with_source(e.clone())
}

/// What rustls's error says was refused; `None` for failures of an established session.
fn tls_failure(e: &rustls::Error) -> Option<TlsFailure> {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    Some(match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => TlsFailure::UnknownIssuer,
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            TlsFailure::NameMismatch
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => TlsFailure::Expired,
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => TlsFailure::NotYetValid,
        E::InvalidCertificate(C::Revoked) => TlsFailure::Revoked,
        E::InvalidCertificate(_) => TlsFailure::BadCertificate,
        E::AlertReceived(A::CertificateRequired) => TlsFailure::ClientCertificateRequired,
        E::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::DecryptError) => {
            TlsFailure::ClientCertificateRefused
        }
        E::AlertReceived(A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity)
        | E::PeerIncompatible(_)
        | E::InvalidMessage(_) => TlsFailure::Handshake,
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_typed_tls_with_a_hint_whatever_the_stage() {
        use std::error::Error as _;
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let e = io_error(ConnErrorKind::Io, &std::io::Error::new(std::io::ErrorKind::InvalidData, alert));
        assert_eq!(e.kind, ConnErrorKind::Tls);
        assert_eq!(e.tls_failure(), Some(TlsFailure::ClientCertificateRequired));
        assert!(e.message.contains("requires a client certificate"), "{e}");

        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let e =
            io_error(ConnErrorKind::Tls, &std::io::Error::new(std::io::ErrorKind::InvalidData, bad.clone()));
        assert_eq!(e.kind, ConnErrorKind::Tls);
        assert_eq!(e.tls_failure(), Some(TlsFailure::UnknownIssuer));
        assert!(e.is_permanent());
        assert!(e.to_string().starts_with("Tls: unknown issuer: invalid peer certificate"), "{e}");
        assert!(e.message.contains("trusted root"), "{e}");
        let source = e.source().and_then(|s| s.downcast_ref::<slotcache_core::cache::SharedError>());
        assert_eq!(
            source.and_then(|s| s.downcast_ref::<rustls::Error>()),
            Some(&bad),
            "rustls's error is the source"
        );

        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let e = io_error(ConnErrorKind::Tls, &std::io::Error::new(std::io::ErrorKind::InvalidData, name));
        assert_eq!(e.tls_failure(), Some(TlsFailure::NameMismatch));
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let e = io_error(ConnErrorKind::Tls, &std::io::Error::new(std::io::ErrorKind::InvalidData, expired));
        assert_eq!(e.tls_failure(), Some(TlsFailure::Expired));

        let record = rustls::Error::DecryptError;
        let e = io_error(ConnErrorKind::Io, &std::io::Error::new(std::io::ErrorKind::InvalidData, record));
        assert_eq!((e.kind, e.tls_failure(), e.is_permanent()), (ConnErrorKind::Tls, None, false));

        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = io_error(ConnErrorKind::Io, &plain);
        assert_eq!((e.kind, e.message.as_str()), (ConnErrorKind::Io, "reset"));
    }
}
