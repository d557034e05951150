//! [`TlsFailure`]: what a failed TLS handshake did not accept, as the adapter's TLS library
//! reported it (the core sees only this classification; the library's own error travels as the
//! [`ConnError`](super::ConnError)'s source).

use core::fmt;

/// Why a TLS handshake failed, when the adapter could tell. A connection that fails this way
/// before it is ready is not retried: the same certificate, roots or settings would meet the
/// same refusal, so the request fails at once with
/// [`RequestError::Unreachable`](super::RequestError::Unreachable) naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate is not signed by a trusted root (a wrong or missing CA).
    UnknownIssuer,
    /// The server's certificate does not name the address connected to.
    NameMismatch,
    /// The server's certificate has expired.
    Expired,
    /// The server's certificate is not valid yet.
    NotYetValid,
    /// The server's certificate was revoked.
    Revoked,
    /// The server's certificate was refused for another reason (signature, usage, format).
    BadCertificate,
    /// The server requires a client certificate and none was presented.
    ClientCertificateRequired,
    /// The server refused the client certificate.
    ClientCertificateRefused,
    /// The handshake failed otherwise: no common protocol version or cipher, or the peer does
    /// not speak TLS.
    Handshake,
}

impl TlsFailure {
    /// A hint at the usual cause and its fix.
    #[must_use]
    pub const fn hint(self) -> &'static str {
        match self {
            Self::UnknownIssuer => {
                "the server's certificate is not signed by a trusted root: check the CA given to \
                 TlsConfig::with_root_pem, or the system roots"
            }
            Self::NameMismatch => {
                "the server's certificate does not name the address connected to: see \
                 TlsConfig::with_server_name"
            }
            Self::Expired => "the server's certificate has expired",
            Self::NotYetValid => "the server's certificate is not valid yet (check the clocks)",
            Self::Revoked => "the server's certificate was revoked",
            Self::BadCertificate => "the server's certificate was refused",
            Self::ClientCertificateRequired => {
                "the server requires a client certificate: see TlsConfig::with_client_cert_pem"
            }
            Self::ClientCertificateRefused => "the server refused the client certificate",
            Self::Handshake => {
                "the TLS handshake failed (the server may require a client certificate, or not \
                 speak TLS on this port)"
            }
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownIssuer => "unknown issuer",
            Self::NameMismatch => "certificate name mismatch",
            Self::Expired => "certificate expired",
            Self::NotYetValid => "certificate not valid yet",
            Self::Revoked => "certificate revoked",
            Self::BadCertificate => "bad certificate",
            Self::ClientCertificateRequired => "client certificate required",
            Self::ClientCertificateRefused => "client certificate refused",
            Self::Handshake => "handshake failed",
        })
    }
}
