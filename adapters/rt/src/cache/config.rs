//! The provider's configuration: the core's (`slotcache_core::cache::config`), with this crate's
//! TLS settings.

use crate::tls::TlsConfig;

/// The provider's settings. Field names follow the reference's `Config`.
pub type ProviderConfig = slotcache_core::cache::ProviderConfig<TlsConfig>;
