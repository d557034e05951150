//! The namespaces of one provider: each made once, with one pair of key and value types and
//! one set of options, and none overlapping another (`user:` and `user:admin:` would see each
//! other's keys in `invalidate_all` and iteration).

use core::any::TypeId;
use std::collections::HashMap;

use crate::keys::{Namespace, NamespaceRegistry};

use super::config::ProviderConfig;
use super::error::CacheError;
use super::options::NamespaceOptions;
use super::typed::Typed;

/// A namespace made, with what it was made with.
struct Made<C> {
    types: (TypeId, TypeId),
    fingerprint: String,
    cache: C,
}

/// The namespaces made so far; `C` is the handle kept for each.
pub struct Namespaces<C> {
    made: HashMap<String, Made<C>>,
    registry: NamespaceRegistry,
}

impl<C> Default for Namespaces<C> {
    fn default() -> Self {
        Self { made: HashMap::new(), registry: NamespaceRegistry::new() }
    }
}

impl<C> core::fmt::Debug for Namespaces<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Namespaces").field("names", &self.made.keys()).finish_non_exhaustive()
    }
}

impl<C: Clone> Namespaces<C> {
    /// The handle of namespace `ns` (with key type `K`, value type `V` and `options`): the one
    /// made before, or one `make` builds from the namespace's typed side, kept for later.
    ///
    /// # Errors
    /// [`CacheError::NamespaceConflict`] when it was made with other types or options; an
    /// invalid option; [`CacheError::Config`] when it overlaps a namespace made before.
    pub fn get_or_make<K: 'static, V: 'static, T>(
        &mut self,
        config: &ProviderConfig<T>,
        ns: Namespace,
        options: NamespaceOptions<K, V>,
        make: impl FnOnce(Typed<K, V>) -> C,
    ) -> Result<C, CacheError> {
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
            return Ok(m.cache.clone());
        }
        options.check()?;
        self.registry.register(&ns).map_err(|e| CacheError::Config(e.to_string()))?;
        let cache = make(Typed::new(config, ns, options)?);
        self.made.insert(name, Made { types, fingerprint, cache: cache.clone() });
        Ok(cache)
    }

    /// Forgets every handle (the provider closed).
    pub fn clear(&mut self) {
        self.made.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::search::SearchSchema;

    type Made = Namespaces<&'static str>;

    fn make<K: 'static, V: 'static>(
        n: &mut Made,
        name: &str,
        options: NamespaceOptions<K, V>,
        handle: &'static str,
    ) -> Result<&'static str, CacheError> {
        let config = ProviderConfig::<()>::new(["127.0.0.1:7000"]);
        n.get_or_make(&config, Namespace::with_global("", name).expect("valid"), options, |_| handle)
    }

    #[test]
    fn one_namespace_one_set_of_types_and_options_no_overlap() {
        let mut n = Made::default();
        assert_eq!(make::<String, u32>(&mut n, "users", NamespaceOptions::default(), "a"), Ok("a"));
        assert_eq!(make::<String, u32>(&mut n, "users:", NamespaceOptions::default(), "b"), Ok("a"));
        assert!(matches!(
            make::<String, u64>(&mut n, "users", NamespaceOptions::default(), "c"),
            Err(CacheError::NamespaceConflict { what: "other key or value types", .. })
        ));
        let other = NamespaceOptions::default().with_search(SearchSchema::new().tag("t", false));
        assert!(matches!(
            make::<String, u32>(&mut n, "users", other.clone(), "c"),
            Err(CacheError::NamespaceConflict { what: "other options", .. })
        ));
        let overlapping = make::<String, u32>(&mut n, "users:admin", NamespaceOptions::default(), "c");
        assert!(matches!(overlapping, Err(CacheError::Config(_))), "{overlapping:?}");
        let mut binary = other;
        binary.codec = Arc::new(crate::cache::Binary);
        assert!(matches!(make(&mut n, "docs", binary, "c"), Err(CacheError::Config(_))), "search needs JSON");
        n.clear();
        assert_eq!(make::<String, u32>(&mut n, "users", NamespaceOptions::default(), "d"), Ok("d"));
    }
}
