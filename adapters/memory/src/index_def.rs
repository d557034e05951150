//! A search index's definition, as `FT.CREATE` made it: what a node's store keeps and
//! replicates, and what the search commands ([`super::search`]) read.

use bytes::Bytes;

/// One indexed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The JSON path (`$.role`).
    pub path: String,
    /// The attribute name used in queries.
    pub alias: String,
    /// `TAG`, `NUMERIC`, `TEXT`, `GEO` or `VECTOR`.
    pub kind: String,
    /// `SORTABLE`.
    pub sortable: bool,
    /// `UNF` (with `SORTABLE`).
    pub unf: bool,
    /// `CASESENSITIVE` (TAG).
    pub case_sensitive: bool,
    /// Vector options as given (`FLAT 6 TYPE FLOAT32 DIM 2 DISTANCE_METRIC L2`).
    pub vector: Vec<String>,
}

/// One index definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    /// `JSON` or `HASH`.
    pub on: String,
    /// The key prefixes (empty: every key).
    pub prefixes: Vec<Bytes>,
    /// The fields, in schema order.
    pub fields: Vec<Field>,
    /// Until when (node ms) `FT.INFO` reports it still indexing.
    pub indexing_until_ms: u64,
}

impl IndexDef {
    /// The field queries call `alias`.
    #[must_use]
    pub fn field(&self, alias: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.alias == alias)
    }

    /// Whether the index covers `key` (one of its prefixes, or none).
    #[must_use]
    pub fn covers(&self, key: &[u8]) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| key.starts_with(p))
    }
}
