//! A set of namespaces whose key spaces never overlap (spec §3.1, §15.10, §15.13).
//!
//! `SCAN MATCH user:*` also returns `user:admin:alice`, so if both `user:` and `user:admin:`
//! were in use, invalidating or iterating `user:` would touch the other namespace's entries.
//! The registry refuses the second registration instead. It compares all three key spaces of
//! each namespace (data `G NS`, tags `G tag:{NS`, reverse `G keytags:NS`), so namespaces under
//! different global prefixes are checked against each other as well (`app:tag:` without a
//! global prefix would otherwise alias tag keys of any namespace under `app:`).
//!
//! This is pure data: the caller keeps one registry per client and registers each namespace
//! before using it.

use std::collections::BTreeSet;

use thiserror::Error;

use super::Namespace;

/// The outcome of a successful [`NamespaceRegistry::register`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// The namespace was not registered before.
    New,
    /// The same normalised namespace was already registered; nothing changed.
    Existing,
}

/// Why a namespace could not be registered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// One namespace's keys would match the other's prefix.
    #[error("namespace {new:?} overlaps registered namespace {existing:?}")]
    Overlap {
        /// The refused namespace, `G NS`, lossily as text.
        new: String,
        /// The registered namespace it overlaps, `G NS`, lossily as text.
        existing: String,
    },
}

/// Registered namespaces, none a prefix of another.
#[derive(Clone, Debug, Default)]
pub struct NamespaceRegistry {
    namespaces: BTreeSet<Namespace>,
}

impl NamespaceRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `ns`, unless one of its key spaces and one of a registered namespace's are
    /// prefixes of each other. Registering the same normalised namespace again is fine.
    pub fn register(&mut self, ns: &Namespace) -> Result<Registered, RegistryError> {
        if self.namespaces.contains(ns) {
            return Ok(Registered::Existing);
        }
        if let Some(existing) = self.conflict(ns) {
            return Err(RegistryError::Overlap {
                new: String::from_utf8_lossy(ns.data_prefix()).into_owned(),
                existing: String::from_utf8_lossy(existing.data_prefix()).into_owned(),
            });
        }
        self.namespaces.insert(ns.clone());
        Ok(Registered::New)
    }

    /// Removes `ns`; returns whether it was registered.
    pub fn unregister(&mut self, ns: &Namespace) -> bool {
        self.namespaces.remove(ns)
    }

    /// Whether `ns` is registered.
    #[must_use]
    pub fn contains(&self, ns: &Namespace) -> bool {
        self.namespaces.contains(ns)
    }

    /// The number of registered namespaces.
    #[must_use]
    pub fn len(&self) -> usize {
        self.namespaces.len()
    }

    /// Whether no namespace is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// The registered namespaces, in byte order of `G NS`.
    pub fn iter(&self) -> impl Iterator<Item = &Namespace> {
        self.namespaces.iter()
    }

    /// The first registered namespace whose key spaces overlap those of `ns`.
    fn conflict(&self, ns: &Namespace) -> Option<&Namespace> {
        let mine = ns.key_spaces();
        self.namespaces.iter().find(|other| {
            let theirs = other.key_spaces();
            mine.iter().any(|a| theirs.iter().any(|b| a.starts_with(b) || b.starts_with(a)))
        })
    }
}
