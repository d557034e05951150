//! The namespaces of one provider: each made once, with one pair of key and value types and
//! one set of options, and none overlapping another (`user:` and `user:admin:` would see each
//! other's keys in `invalidate_all` and iteration); none once the provider is closed.

use core::any::{Any, TypeId};
use std::collections::HashMap;

use crate::keys::{Namespace, NamespaceRegistry};

use super::config::ProviderConfig;
use super::error::CacheError;
use super::options::NamespaceOptions;
use super::typed::Typed;

/// A namespace made, with what it was made with.
struct Made {
    types: (TypeId, TypeId),
    fingerprint: String,
    handle: Box<dyn Any + Send + Sync>,
}

/// The namespaces made so far, each with the handle the async layer made for it.
pub struct Namespaces {
    made: HashMap<String, Made>,
    registry: NamespaceRegistry,
    closed: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Self { made: HashMap::new(), registry: NamespaceRegistry::new(), closed: false }
    }
}

impl core::fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Namespaces").field("names", &self.made.keys()).finish_non_exhaustive()
    }
}

impl Namespaces {
    /// The handle of namespace `name` (under the provider's global namespace, with key type
    /// `K`, value type `V` and `options`): the one made before, or one `make` builds from the
    /// namespace's typed side, kept for later.
    ///
    /// # Errors
    /// [`CacheError::Closed`] once closed; an invalid name or option;
    /// [`CacheError::NamespaceConflict`] when it was made with other types (or another handle
    /// type) or options; [`CacheError::Config`] when it overlaps a namespace made before.
    pub fn get_or_make<K: 'static, V: 'static, T, H: Clone + Send + Sync + 'static>(
        &mut self,
        config: &ProviderConfig<T>,
        name: &str,
        options: NamespaceOptions<K, V>,
        make: impl FnOnce(Typed<K, V>) -> H,
    ) -> Result<H, CacheError> {
        if self.closed {
            return Err(CacheError::Closed);
        }
        let ns = Namespace::with_global(&config.namespace, name)?;
        let name = String::from_utf8_lossy(ns.data_prefix()).into_owned();
        let types = (TypeId::of::<K>(), TypeId::of::<V>());
        let fingerprint = options.fingerprint();
        if let Some(m) = self.made.get(&name) {
            let conflict = |what| Err(CacheError::NamespaceConflict { name: name.clone(), what });
            if m.types != types {
                return conflict("other key or value types");
            }
            if m.fingerprint != fingerprint {
                return conflict("other options");
            }
            return m.handle.downcast_ref::<H>().cloned().map_or_else(|| conflict("another handle type"), Ok);
        }
        options.check()?;
        self.registry.register(&ns).map_err(|e| CacheError::Config(e.to_string()))?;
        let handle = make(Typed::new(config, ns, options)?);
        self.made.insert(name, Made { types, fingerprint, handle: Box::new(handle.clone()) });
        Ok(handle)
    }

    /// The provider closed: every handle is forgotten and no namespace is made any more.
    pub fn close(&mut self) {
        self.closed = true;
        self.made.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make<K: 'static, V: 'static>(
        n: &mut Namespaces,
        name: &str,
        options: NamespaceOptions<K, V>,
        handle: &'static str,
    ) -> Result<&'static str, CacheError> {
        let config = ProviderConfig::<()>::new(["127.0.0.1:7000"]);
        n.get_or_make(&config, name, options, |_| handle)
    }

    #[test]
    fn one_namespace_one_set_of_types_and_options_no_overlap() {
        let mut n = Namespaces::default();
        assert_eq!(make::<String, u32>(&mut n, "users", NamespaceOptions::default(), "a"), Ok("a"));
        assert_eq!(make::<String, u32>(&mut n, "users:", NamespaceOptions::default(), "b"), Ok("a"));
        assert!(matches!(
            make::<String, u64>(&mut n, "users", NamespaceOptions::default(), "c"),
            Err(CacheError::NamespaceConflict { what: "other key or value types", .. })
        ));
        let other = NamespaceOptions {
            cluster_lock: Some(core::time::Duration::from_secs(1)),
            ..NamespaceOptions::default()
        };
        assert!(matches!(
            make::<String, u32>(&mut n, "users", other, "c"),
            Err(CacheError::NamespaceConflict { what: "other options", .. })
        ));
        #[cfg(feature = "search")]
        {
            let searchable = NamespaceOptions::default()
                .with_search(crate::cache::search::SearchSchema::new().tag("t", false));
            assert!(matches!(
                make::<String, u32>(&mut n, "users", searchable.clone(), "c"),
                Err(CacheError::NamespaceConflict { what: "other options", .. })
            ));
            let mut binary = searchable;
            binary.codec = std::sync::Arc::new(crate::cache::Binary);
            assert!(
                matches!(make(&mut n, "docs", binary, "c"), Err(CacheError::Config(_))),
                "search needs JSON"
            );
        }
        let overlapping = make::<String, u32>(&mut n, "users:admin", NamespaceOptions::default(), "c");
        assert!(matches!(overlapping, Err(CacheError::Config(_))), "{overlapping:?}");
        assert!(matches!(
            make::<String, u32>(&mut n, "", NamespaceOptions::default(), "c"),
            Err(CacheError::Namespace(_))
        ));
        let config = ProviderConfig::<()>::new(["127.0.0.1:7000"]);
        let other_handle =
            n.get_or_make::<String, u32, (), u8>(&config, "users", NamespaceOptions::default(), |_| 1);
        assert!(matches!(
            other_handle,
            Err(CacheError::NamespaceConflict { what: "another handle type", .. })
        ));
        n.close();
        assert_eq!(
            make::<String, u32>(&mut n, "users", NamespaceOptions::default(), "d"),
            Err(CacheError::Closed)
        );
        assert_eq!(
            make::<String, u32>(&mut n, "other", NamespaceOptions::default(), "d"),
            Err(CacheError::Closed)
        );
    }
}
