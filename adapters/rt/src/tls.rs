//! TLS settings, turned into a rustls client configuration once per client.
//!
//! Cluster nodes announce themselves by IP address or by hostname, and those names often differ
//! from the names in their certificates (the problem of redis-rs#1963). [`TlsConfig`] maps an
//! announced address to the certificate name to check, with a default for the rest.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use slotcache_core::NodeAddr;

use crate::error::{Error, TlsError};

/// Where the certificates that verify servers come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Trust {
    /// Only the roots given with [`TlsConfig::with_root_pem`].
    #[default]
    Custom,
    /// The operating system's verifier and trust store, plus the custom roots.
    #[cfg(feature = "platform-verifier")]
    Platform,
}

/// TLS settings for every connection of a client.
///
/// Servers are verified against, at one's choice (they combine):
///
/// - custom roots, [`TlsConfig::with_root_pem`] (a private CA);
/// - Mozilla's roots compiled in, [`TlsConfig::with_webpki_roots`][webpki] (cargo feature
///   `webpki-roots`): the same answer on every machine;
/// - the operating system's verifier and trust store,
///   [`TlsConfig::with_platform_verifier`][platform] (cargo feature `platform-verifier`): what
///   managed services with certificates from public CAs expect, and what a company's roots
///   installed on the machine need. On Linux the store is read as `rustls-native-certs` does, so
///   `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured.
///
/// Client certificates (mutual TLS) and the map from announced addresses to certificate names
/// apply whichever roots verify.
///
// Without its cargo feature a method linked from these docs does not exist: the link then
// leads to `TlsConfig` itself, so that `cargo doc` builds without warnings with any features.
#[cfg_attr(feature = "webpki-roots", doc = "[webpki]: TlsConfig::with_webpki_roots")]
#[cfg_attr(not(feature = "webpki-roots"), doc = "[webpki]: TlsConfig")]
#[cfg_attr(feature = "platform-verifier", doc = "[platform]: TlsConfig::with_platform_verifier")]
#[cfg_attr(not(feature = "platform-verifier"), doc = "[platform]: TlsConfig")]
#[derive(Clone, Default)]
pub struct TlsConfig {
    roots: Vec<CertificateDer<'static>>,
    trust: Trust,
    /// Whether Mozilla's roots are trusted too.
    webpki: bool,
    client_auth: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    names: HashMap<String, String>,
    default_name: Option<String>,
}

impl core::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("roots", &self.roots.len())
            .field("trust", &self.trust)
            .field("webpki", &self.webpki)
            .field("client_auth", &self.client_auth.is_some())
            .field("names", &self.names)
            .field("default_name", &self.default_name)
            .finish()
    }
}

impl TlsConfig {
    /// TLS trusting no roots yet; add them with [`TlsConfig::with_root_pem`],
    /// [`TlsConfig::with_webpki_roots`][webpki] or [`TlsConfig::with_platform_verifier`][platform].
    ///
    #[cfg_attr(feature = "webpki-roots", doc = "[webpki]: TlsConfig::with_webpki_roots")]
    #[cfg_attr(not(feature = "webpki-roots"), doc = "[webpki]: TlsConfig")]
    #[cfg_attr(feature = "platform-verifier", doc = "[platform]: TlsConfig::with_platform_verifier")]
    #[cfg_attr(not(feature = "platform-verifier"), doc = "[platform]: TlsConfig")]
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the certificates in this PEM text (a CA bundle).
    ///
    /// # Errors
    /// [`Error::Tls`] when the PEM holds no certificate or cannot be read.
    pub fn with_root_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let certs = parse_certs(pem)?;
        self.roots.extend(certs);
        Ok(self)
    }

    /// Trusts Mozilla's root certificates, compiled in (the `webpki-roots` crate), besides the
    /// custom roots. Not combined with [`TlsConfig::with_platform_verifier`][platform], whose
    /// trust store is the system's ([`TlsConfig::build`] refuses both).
    ///
    #[cfg_attr(feature = "platform-verifier", doc = "[platform]: TlsConfig::with_platform_verifier")]
    #[cfg_attr(not(feature = "platform-verifier"), doc = "[platform]: TlsConfig")]
    #[cfg(feature = "webpki-roots")]
    #[must_use]
    pub const fn with_webpki_roots(mut self) -> Self {
        self.webpki = true;
        self
    }

    /// Verifies servers with the operating system's verifier and trust store
    /// (`rustls-platform-verifier`), the custom roots added as well.
    #[cfg(feature = "platform-verifier")]
    #[must_use]
    pub const fn with_platform_verifier(mut self) -> Self {
        self.trust = Trust::Platform;
        self
    }

    /// Presents this client certificate chain and key (mutual TLS).
    ///
    /// # Errors
    /// [`Error::Tls`] when the chain or the key cannot be read.
    pub fn with_client_cert_pem(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        use rustls::pki_types::pem::PemObject;
        let chain = parse_certs(chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::caused("client key", e))?;
        self.client_auth = Some((chain, Arc::new(key)));
        Ok(self)
    }

    /// Checks the certificate of the node announced as `announced` (`host` or `host:port`)
    /// against `name` instead of the announced host.
    #[must_use]
    pub fn with_server_name(mut self, announced: impl Into<String>, name: impl Into<String>) -> Self {
        self.names.insert(announced.into(), name.into());
        self
    }

    /// Checks every node's certificate against `name` unless a specific mapping applies.
    #[must_use]
    pub fn with_default_server_name(mut self, name: impl Into<String>) -> Self {
        self.default_name = Some(name.into());
        self
    }

    /// The certificate name to check for a node.
    ///
    /// # Errors
    /// [`Error::Tls`] when the name is neither a DNS name nor an IP address.
    pub fn server_name(&self, addr: &NodeAddr) -> Result<ServerName<'static>, Error> {
        let name = self
            .names
            .get(&addr.to_string())
            .or_else(|| self.names.get(addr.host()))
            .or(self.default_name.as_ref())
            .map_or_else(|| addr.host(), String::as_str);
        ServerName::try_from(name.to_owned())
            .map_err(|e| TlsError::caused(format!("server name {name:?}"), e).into())
    }

    /// Builds the rustls configuration.
    ///
    /// # Errors
    /// [`Error::Tls`] when nothing is trusted (no custom root, no Mozilla roots, no platform
    /// verifier), a root or the client certificate is refused, the platform verifier cannot
    /// start, or both Mozilla's roots and the platform verifier are asked for.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::caused("protocol versions", e))?;
        let builder = match self.trust {
            Trust::Custom => builder.with_root_certificates(self.root_store()?),
            #[cfg(feature = "platform-verifier")]
            Trust::Platform => {
                if self.webpki {
                    return Err(TlsError::new(
                        "with_webpki_roots and with_platform_verifier do not combine: the platform \
                         verifier trusts the system's roots",
                    )
                    .into());
                }
                let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
                    self.roots.iter().cloned(),
                    crypto_provider(),
                )
                .map_err(|e| TlsError::caused("platform verifier", e))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier))
            }
        };
        let config = match &self.client_auth {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| TlsError::caused("client certificate", e))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The custom roots, and Mozilla's when asked for.
    fn root_store(&self) -> Result<rustls::RootCertStore, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in &self.roots {
            roots.add(cert.clone()).map_err(|e| TlsError::caused("root certificate", e))?;
        }
        #[cfg(feature = "webpki-roots")]
        if self.webpki {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if roots.is_empty() {
            return Err(TlsError::new(
                "no root certificate to trust: add one with with_root_pem, or use with_webpki_roots \
                 or with_platform_verifier (cargo features webpki-roots, platform-verifier)",
            )
            .into());
        }
        Ok(roots)
    }
}

/// The one crypto provider slotcache uses (ring).
fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::caused("certificate PEM", e))?;
    if certs.is_empty() {
        return Err(TlsError::new("the PEM text holds no certificate").into());
    }
    Ok(certs)
}

/// The TLS state a client shares with its connection tasks.
#[derive(Clone, Debug)]
pub(crate) struct TlsSetup {
    pub(crate) config: TlsConfig,
    pub(crate) rustls: Arc<rustls::ClientConfig>,
}
