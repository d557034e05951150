//! The namespaces of one provider: each made once, with one pair of key and value types and
//! one set of options, and none overlapping another (`user:` and `user:admin:` would see each
//! other's keys in `invalidate_all` and iteration).

use core::any::TypeId;
use std::collections::HashMap;

use crate::keys::{Namespace, NamespaceRegistry};

use super::error::CacheError;

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

impl<C> Namespaces<C> {
    /// The handle of namespace `name` if it was made, with key type `K`, value type `V` and
    /// options of this fingerprint.
    ///
    /// # Errors
    /// [`CacheError::NamespaceConflict`] when it was made with other types or options.
    pub fn existing<K: 'static, V: 'static>(
        &self,
        name: &str,
        fingerprint: &str,
    ) -> Result<Option<&C>, CacheError> {
        let Some(m) = self.made.get(name) else { return Ok(None) };
        let conflict = |what| Err(CacheError::NamespaceConflict { name: name.to_owned(), what });
        if m.types != (TypeId::of::<K>(), TypeId::of::<V>()) {
            return conflict("other key or value types");
        }
        if m.fingerprint != fingerprint {
            return conflict("other options");
        }
        Ok(Some(&m.cache))
    }

    /// Registers namespace `ns` named `name`, made with `K`, `V` and options of this
    /// fingerprint, and keeps its handle.
    ///
    /// # Errors
    /// [`CacheError::Config`] when it overlaps a namespace made before.
    pub fn add<K: 'static, V: 'static>(
        &mut self,
        ns: &Namespace,
        name: String,
        fingerprint: String,
        cache: C,
    ) -> Result<(), CacheError> {
        self.registry.register(ns).map_err(|e| CacheError::Config(e.to_string()))?;
        let types = (TypeId::of::<K>(), TypeId::of::<V>());
        self.made.insert(name, Made { types, fingerprint, cache });
        Ok(())
    }

    /// Forgets every handle (the provider closed).
    pub fn clear(&mut self) {
        self.made.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str) -> Namespace {
        Namespace::with_global("", name).expect("valid")
    }

    #[test]
    fn one_namespace_one_set_of_types_and_options_no_overlap() {
        let mut n: Namespaces<u8> = Namespaces::default();
        assert_eq!(n.existing::<String, u32>("users:", "f").map(|c| c.copied()), Ok(None));
        n.add::<String, u32>(&ns("users"), "users:".into(), "f".into(), 1).expect("new");
        assert_eq!(n.existing::<String, u32>("users:", "f").map(|c| c.copied()), Ok(Some(1)));
        assert!(matches!(
            n.existing::<String, u64>("users:", "f"),
            Err(CacheError::NamespaceConflict { what: "other key or value types", .. })
        ));
        assert!(matches!(
            n.existing::<String, u32>("users:", "g"),
            Err(CacheError::NamespaceConflict { what: "other options", .. })
        ));
        assert!(matches!(
            n.add::<String, u32>(&ns("users:admin"), "users:admin:".into(), "f".into(), 2),
            Err(CacheError::Config(_))
        ));
        n.clear();
        assert_eq!(n.existing::<String, u32>("users:", "f").map(|c| c.copied()), Ok(None));
    }
}
