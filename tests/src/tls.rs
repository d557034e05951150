//! TLS material for TLS clusters: a throw-away CA, a server certificate (IP SAN 127.0.0.1, DNS
//! localhost; also used by the nodes as their client certificate on the cluster bus), a client
//! certificate, and a `rustls` client configuration that trusts the CA and presents the client
//! certificate.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Result, ResultExt, install};

/// Why a TLS test skips itself, if it does: `SLOTCACHE_SKIP_TLS=1` is set outside CI (the
/// reason says where `redis-server` is, or why it is missing). In CI the variable is ignored,
/// with a notice: TLS tests must run there. `None`: run the test.
#[must_use]
pub fn skip_reason() -> Option<String> {
    let skip = std::env::var("SLOTCACHE_SKIP_TLS").is_ok_and(|v| v == "1");
    let ci = install::in_ci();
    if skip && ci {
        eprintln!("SLOTCACHE_SKIP_TLS=1 is ignored in CI: TLS tests must run there");
        return None;
    }
    skip.then(|| match install::redis_server() {
        Ok(p) => format!("SLOTCACHE_SKIP_TLS=1 is set (redis-server is at {})", p.display()),
        Err(e) => format!("SLOTCACHE_SKIP_TLS=1 is set and {e}"),
    })
}

/// The certificate and key files of a TLS cluster (all absolute paths, PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA certificate that signed the others.
    pub ca_cert: PathBuf,
    /// The nodes' certificate (server and cluster-bus client).
    pub server_cert: PathBuf,
    /// The nodes' private key.
    pub server_key: PathBuf,
    /// A client certificate for tools and tests.
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Generates a fresh CA, server and client certificate into `dir` (created if missing).
    pub fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::path::absolute(dir)?;

        let ca_key = KeyPair::generate().context("CA key")?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "slotcache test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, ca_key).context("CA certificate")?;

        let server_key = KeyPair::generate().context("server key")?;
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).context("server params")?;
        server.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        server.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let server_cert = server.signed_by(&server_key, &ca).context("server certificate")?;

        let client_key = KeyPair::generate().context("client key")?;
        let mut client = CertificateParams::new(Vec::<String>::new()).context("client params")?;
        client.distinguished_name.push(DnType::CommonName, "slotcache test client");
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &ca).context("client certificate")?;

        let files = Self {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        for (path, pem) in [
            (&files.ca_cert, ca.pem()),
            (&files.server_cert, server_cert.pem()),
            (&files.server_key, server_key.serialize_pem()),
            (&files.client_cert, client_cert.pem()),
            (&files.client_key, client_key.serialize_pem()),
        ] {
            std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(files)
    }

    /// A client that trusts this CA and presents the client certificate.
    pub fn client(&self) -> Result<TlsClient> {
        TlsClient::from_files(&self.ca_cert, &self.client_cert, &self.client_key)
    }
}

/// A `rustls` client configuration (ring provider) for the harness's connections.
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
}

impl TlsClient {
    /// Trusts the CA in `ca_pem` and presents `cert_pem`/`key_pem` (PEM files).
    pub fn from_files(ca_pem: &Path, cert_pem: &Path, key_pem: &Path) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_pem).with_context(|| ca_pem.display().to_string())? {
            roots.add(cert.with_context(|| ca_pem.display().to_string())?).context("CA certificate")?;
        }
        let certs = CertificateDer::pem_file_iter(cert_pem)
            .with_context(|| cert_pem.display().to_string())?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| cert_pem.display().to_string())?;
        let key = PrivateKeyDer::from_pem_file(key_pem).with_context(|| key_pem.display().to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .context("client certificate")?;
        Ok(Self { config: Arc::new(config) })
    }

    /// The `rustls` configuration.
    #[must_use]
    pub const fn config(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }
}
