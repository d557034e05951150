//! The provider's configuration: every field of the reference's `Config`, validated.
//!
//! Plain data: `Tls` is the adapter's TLS settings type (the async layer's `ProviderConfig`
//! is this with its rustls settings).

use core::fmt;
use core::time::Duration;

use crate::client::{ClientSettings, Password, ReadFrom};
use crate::node_addr::NodeAddr;

use super::durability::Durability;
use super::error::CacheError;

/// The provider's settings. Field names follow the reference's `Config`.
#[derive(Clone)]
pub struct ProviderConfig<Tls> {
    /// Seed nodes, `host:port` (at least one).
    pub init_address: Vec<String>,
    /// ACL user name; empty for the default user.
    pub username: String,
    /// Password; empty for none. Never shown by `Debug`.
    pub password: String,
    /// A global key prefix for every namespace (honoured, unlike the reference); empty for none.
    pub namespace: String,
    /// `CLIENT SETNAME` for every connection; empty for none.
    pub client_name: String,
    /// Prefix of search index names.
    pub index_prefix: String,
    /// TTL of entries written without one.
    pub default_ttl: Duration,
    /// Budget of single-key operations.
    pub operation_timeout: Duration,
    /// Budget of the compute family (all attempts together).
    pub atomic_operation_timeout: Duration,
    /// Budget of bulk operations and tag invalidation.
    pub bulk_operation_timeout: Duration,
    /// Budget of `invalidate_all`.
    pub flush_timeout: Duration,
    /// Budget of search and query.
    pub search_timeout: Duration,
    /// Attempts of a compute before it gives up on conflicts.
    pub max_compute_retries: u32,
    /// Allows `Provider::flush_all` (FLUSHDB on every primary).
    pub allow_unsafe_flushdb: bool,
    /// Sends read-only commands to replicas (reads may lag writes by the replication delay;
    /// compute reads and tag checks still go to primaries).
    pub send_to_replicas: bool,
    /// TLS for every connection.
    pub tls: Option<Tls>,
    /// How invalidations survive a failover.
    pub durability: Durability,
    /// Largest stored value accepted, in bytes.
    pub max_value_size: usize,
}

impl<Tls: fmt::Debug> fmt::Debug for ProviderConfig<Tls> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("init_address", &self.init_address)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "***" })
            .field("namespace", &self.namespace)
            .field("client_name", &self.client_name)
            .field("index_prefix", &self.index_prefix)
            .field("default_ttl", &self.default_ttl)
            .field("operation_timeout", &self.operation_timeout)
            .field("atomic_operation_timeout", &self.atomic_operation_timeout)
            .field("bulk_operation_timeout", &self.bulk_operation_timeout)
            .field("flush_timeout", &self.flush_timeout)
            .field("search_timeout", &self.search_timeout)
            .field("max_compute_retries", &self.max_compute_retries)
            .field("allow_unsafe_flushdb", &self.allow_unsafe_flushdb)
            .field("send_to_replicas", &self.send_to_replicas)
            .field("tls", &self.tls)
            .field("durability", &self.durability)
            .field("max_value_size", &self.max_value_size)
            .finish()
    }
}

impl<Tls: Clone> ProviderConfig<Tls> {
    /// The reference's defaults with these seeds.
    #[must_use]
    pub fn new<S: Into<String>>(init_address: impl IntoIterator<Item = S>) -> Self {
        Self {
            init_address: init_address.into_iter().map(Into::into).collect(),
            username: String::new(),
            password: String::new(),
            namespace: String::new(),
            client_name: String::new(),
            index_prefix: "index:".into(),
            default_ttl: Duration::from_secs(3600),
            operation_timeout: Duration::from_secs(2),
            atomic_operation_timeout: Duration::from_secs(5),
            bulk_operation_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(30),
            search_timeout: Duration::from_secs(5),
            max_compute_retries: 10,
            allow_unsafe_flushdb: false,
            send_to_replicas: false,
            tls: None,
            durability: Durability::default(),
            max_value_size: 64 * 1024 * 1024,
        }
    }

    /// Checks every field and builds the cluster client's settings.
    ///
    /// The client's `rng_seed` (jitter, replica choice) is left at its default: the core has no
    /// randomness of its own, so whoever connects with these settings draws one (the
    /// provider does, from the operating system).
    ///
    /// # Errors
    /// [`CacheError::Config`] naming the first invalid field.
    pub fn client_settings(&self) -> Result<ClientSettings<Tls>, CacheError> {
        let bad = |field: &str, why: &str| Err(CacheError::Config(format!("{field}: {why}")));
        if self.init_address.is_empty() {
            return bad("init_address", "at least one seed address is required");
        }
        let mut seeds = Vec::with_capacity(self.init_address.len());
        for a in &self.init_address {
            match NodeAddr::parse(a) {
                Some(n) if !n.host().is_empty() && n.port() != 0 => seeds.push(n),
                _ => return bad("init_address", &format!("{a:?} is not host:port")),
            }
        }
        for (field, d) in [
            ("default_ttl", self.default_ttl),
            ("operation_timeout", self.operation_timeout),
            ("atomic_operation_timeout", self.atomic_operation_timeout),
            ("bulk_operation_timeout", self.bulk_operation_timeout),
            ("flush_timeout", self.flush_timeout),
            ("search_timeout", self.search_timeout),
        ] {
            if d < Duration::from_millis(1) {
                return bad(field, "must be at least 1 ms");
            }
        }
        if self.max_compute_retries == 0 {
            return bad("max_compute_retries", "must be at least 1");
        }
        if self.index_prefix.is_empty() {
            return bad("index_prefix", "must not be empty");
        }
        if self.max_value_size == 0 {
            return bad("max_value_size", "must be positive");
        }
        if !self.username.is_empty() && self.password.is_empty() {
            return bad("username", "a user name needs a password");
        }
        let mut settings = ClientSettings::new(seeds);
        let c = &mut settings.client;
        c.username = (!self.username.is_empty()).then(|| self.username.clone());
        c.password = (!self.password.is_empty()).then(|| Password::new(self.password.as_str()));
        c.client_name = (!self.client_name.is_empty()).then(|| self.client_name.clone());
        c.read_from = if self.send_to_replicas { ReadFrom::PreferReplica } else { ReadFrom::Primary };
        c.request_timeout = self.operation_timeout;
        settings.tls.clone_from(&self.tls);
        settings.client.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration without TLS settings.
    type Config = ProviderConfig<()>;

    #[test]
    fn defaults_match_the_reference_and_secrets_stay_hidden() {
        let mut c = Config::new(["127.0.0.1:7000"]);
        assert_eq!(c.default_ttl, Duration::from_secs(3600));
        assert_eq!(c.operation_timeout, Duration::from_secs(2));
        assert_eq!(c.max_compute_retries, 10);
        assert_eq!(c.index_prefix, "index:");
        c.password = "hunter2".into();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(c.client_settings().is_ok());
    }

    #[test]
    fn invalid_values_are_typed_errors() {
        let mut c = Config::new(Vec::<String>::new());
        assert!(matches!(c.client_settings(), Err(CacheError::Config(m)) if m.contains("init_address")));
        c.init_address = vec!["nonsense".into()];
        assert!(c.client_settings().is_err());
        c.init_address = vec!["127.0.0.1:7000".into()];
        c.operation_timeout = Duration::ZERO;
        assert!(matches!(c.client_settings(), Err(CacheError::Config(m)) if m.contains("operation_timeout")));
        c.operation_timeout = Duration::from_secs(1);
        c.max_compute_retries = 0;
        assert!(c.client_settings().is_err());
        c.max_compute_retries = 3;
        c.username = "bob".into();
        assert!(c.client_settings().is_err(), "a user without a password");
    }
}
