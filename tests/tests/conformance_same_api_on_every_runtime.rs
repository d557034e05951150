//! The three runtime crates export the same API: every name `slotcache-rt` exports at its root,
//! plus `connect`, `provider`, `memory_provider` and `memory_provider_on`. The list below is checked against `adapters/rt/src/lib.rs`
//! (so a new export of `slotcache-rt` must be added here), and each crate must export every
//! name on it, or this file does not compile.

/// The shared list, handed to `$then`.
macro_rules! shared_api {
    ($then:ident) => {
        $then!(
            AsyncStream,
            Base64Keys,
            Binary,
            BoxFuture,
            BoxStream,
            BytesKeys,
            Cache,
            CacheError,
            CacheProvider,
            CacheStats,
            Client,
            ClientConfig,
            Cmd,
            Codec,
            Compute,
            Config,
            ConfigError,
            ConnError,
            ConnErrorKind,
            ConnectionUrl,
            Credentials,
            CredentialsProvider,
            DecimalKeys,
            DefaultKey,
            Distance,
            Durability,
            DurationError,
            EntryInfo,
            Error,
            Event,
            EvictionClass,
            EvictionPolicy,
            EvictionReport,
            EvictionSource,
            EvictionWarning,
            FieldKind,
            Filter,
            FilterOp,
            FilterValue,
            GeoUnit,
            Jitter,
            Json,
            KeyCodecError,
            KeyEncoder,
            KeyMarshal,
            Knn,
            Limits,
            MemoryRuntime,
            MemoryServer,
            Mode,
            NamespaceOptions,
            NodeAddr,
            NodeId,
            NodeStats,
            Password,
            PrimaryEviction,
            Protocol,
            Provider,
            ProviderConfig,
            ProviderRegistry,
            QueryOptions,
            Raw,
            ReadFrom,
            RefreshConfig,
            RegistryError,
            Reply,
            Request,
            RequestError,
            RequestKind,
            RetryConfig,
            Runtime,
            SearchError,
            SearchField,
            SearchResults,
            SearchSchema,
            SharedError,
            Slot,
            SortBy,
            SortOrder,
            Stats,
            StringKeys,
            SubmitError,
            TlsConfig,
            TlsError,
            TlsFailure,
            Transform,
            Ttl,
            UrlError,
            Value,
            ValuePipeline,
            VectorAlgorithm,
            XChaCha20Poly1305,
            Zstd,
            cache,
            connect,
            key_slot,
            memory_provider,
            memory_provider_on,
            parse_duration,
            provider,
        );
    };
}

/// Imports every name from each runtime crate (a missing one fails to compile) and lists them.
macro_rules! import_everywhere {
    ($($name:ident),* $(,)?) => {
        #[allow(unused_imports)]
        mod on_tokio { use slotcache_tokio::{$($name),*}; }
        #[allow(unused_imports)]
        mod on_smol { use slotcache_smol::{$($name),*}; }
        #[allow(unused_imports)]
        mod on_async_std { use slotcache_async_std::{$($name),*}; }
        /// The shared names.
        const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

shared_api!(import_everywhere);

/// The names `pub use` and `pub mod` put at the root of `slotcache-rt` (with every feature on:
/// attribute lines such as `#[cfg(feature = "search")]` are skipped), plus the entry points
/// every runtime crate defines.
fn rt_exports() -> std::collections::BTreeSet<String> {
    let src = include_str!("../../adapters/rt/src/lib.rs");
    let code: String = src
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names: std::collections::BTreeSet<String> =
        ["connect", "provider", "memory_provider", "memory_provider_on"].map(String::from).into();
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        if let Some(m) = stmt.strip_prefix("pub mod ") {
            names.insert(m.trim().to_owned());
        }
        let Some(path) = stmt.strip_prefix("pub use ") else { continue };
        let items = match (path.find('{'), path.rfind('}')) {
            (Some(a), Some(b)) => &path[a + 1..b],
            _ => path.rsplit("::").next().unwrap_or(path),
        };
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            names.insert(item.rsplit(" as ").next().unwrap_or(item).trim().to_owned());
        }
    }
    names
}

#[test]
fn the_shared_list_is_what_slotcache_rt_exports() {
    let listed: std::collections::BTreeSet<String> = NAMES.iter().map(|s| (*s).to_owned()).collect();
    let exported = rt_exports();
    let missing: Vec<_> = exported.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&exported).collect();
    assert!(missing.is_empty() && extra.is_empty(), "add to the list: {missing:?}; not exported: {extra:?}");
}
