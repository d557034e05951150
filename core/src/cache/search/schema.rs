//! A namespace's search schema, the `FT.CREATE` that builds its index, and the comparison of an
//! existing index (`FT.INFO`) with the schema.

use bytes::Bytes;

use crate::client::Cmd;
use crate::resp::Value;

use super::SearchError;
use super::doc::RESERVED_FIELD;

/// A vector index algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VectorAlgorithm {
    /// Brute force.
    Flat,
    /// Hierarchical navigable small world graph.
    Hnsw,
}

/// A vector distance metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Distance {
    /// Euclidean distance.
    L2,
    /// Inner product.
    Ip,
    /// Cosine distance.
    Cosine,
}

impl Distance {
    const fn as_str(self) -> &'static str {
        match self {
            Self::L2 => "L2",
            Self::Ip => "IP",
            Self::Cosine => "COSINE",
        }
    }
}

impl VectorAlgorithm {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Flat => "FLAT",
            Self::Hnsw => "HNSW",
        }
    }
}

/// The type of an indexed field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldKind {
    /// Full-text field (tokenized, stemmed). RediSearch only; valkey-search 1.0 has none.
    Text,
    /// Exact-match tags (a string, or an array of strings).
    Tag,
    /// A number.
    Numeric,
    /// A `"lon,lat"` string.
    Geo,
    /// An array of `f32` of `dim` elements.
    Vector {
        /// The index algorithm.
        algorithm: VectorAlgorithm,
        /// Number of dimensions.
        dim: u32,
        /// The distance metric.
        distance: Distance,
    },
}

impl FieldKind {
    const fn type_name(self) -> &'static str {
        match self {
            Self::Text => "TEXT",
            Self::Tag => "TAG",
            Self::Numeric => "NUMERIC",
            Self::Geo => "GEO",
            Self::Vector { .. } => "VECTOR",
        }
    }
}

/// One indexed field: a top-level (or dotted, for nested objects) member of the JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SearchField {
    /// The JSON member name; `address.city` for nested objects. Letters, digits and `_`,
    /// segments joined by `.`.
    pub name: String,
    /// Its type.
    pub kind: FieldKind,
    /// Whether results can be sorted by it (TEXT, TAG and NUMERIC only).
    pub sortable: bool,
}

/// The fields of a namespace's search index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SearchSchema {
    /// The fields, in index order.
    pub fields: Vec<SearchField>,
}

impl SearchSchema {
    /// An empty schema; add fields with the builder methods.
    #[must_use]
    pub const fn new() -> Self {
        Self { fields: Vec::new() }
    }

    fn with(mut self, name: &str, kind: FieldKind, sortable: bool) -> Self {
        self.fields.push(SearchField { name: name.to_owned(), kind, sortable });
        self
    }

    /// Adds a TEXT field.
    #[must_use]
    pub fn text(self, name: &str, sortable: bool) -> Self {
        self.with(name, FieldKind::Text, sortable)
    }

    /// Adds a TAG field.
    #[must_use]
    pub fn tag(self, name: &str, sortable: bool) -> Self {
        self.with(name, FieldKind::Tag, sortable)
    }

    /// Adds a NUMERIC field.
    #[must_use]
    pub fn numeric(self, name: &str, sortable: bool) -> Self {
        self.with(name, FieldKind::Numeric, sortable)
    }

    /// Adds a GEO field.
    #[must_use]
    pub fn geo(self, name: &str) -> Self {
        self.with(name, FieldKind::Geo, false)
    }

    /// Adds a VECTOR field.
    #[must_use]
    pub fn vector(self, name: &str, algorithm: VectorAlgorithm, dim: u32, distance: Distance) -> Self {
        self.with(name, FieldKind::Vector { algorithm, dim, distance }, false)
    }

    /// The field called `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&SearchField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Checks names and options.
    ///
    /// # Errors
    /// [`SearchError::Schema`] for no field, a duplicate or invalid name, the reserved name,
    /// a sortable GEO/VECTOR field or a zero vector dimension.
    pub fn validate(&self) -> Result<(), SearchError> {
        if self.fields.is_empty() {
            return Err(SearchError::Schema("a search schema needs at least one field".into()));
        }
        for (i, f) in self.fields.iter().enumerate() {
            let ok = !f.name.is_empty()
                && f.name.split('.').all(|seg| {
                    !seg.is_empty()
                        && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && !seg.as_bytes()[0].is_ascii_digit()
                });
            if !ok {
                return Err(SearchError::Schema(format!(
                    "field name {:?}: use letters, digits and _ (segments joined by .)",
                    f.name
                )));
            }
            if f.name == RESERVED_FIELD || f.name.starts_with(&format!("{RESERVED_FIELD}.")) {
                return Err(SearchError::Schema(format!("field name {RESERVED_FIELD} is reserved")));
            }
            if self.fields[..i].iter().any(|g| g.name == f.name || g.alias() == f.alias()) {
                return Err(SearchError::Schema(format!("field {:?} appears twice", f.name)));
            }
            match f.kind {
                FieldKind::Geo | FieldKind::Vector { .. } if f.sortable => {
                    return Err(SearchError::Schema(format!(
                        "{} field {:?} cannot be sortable",
                        f.kind.type_name(),
                        f.name
                    )));
                }
                FieldKind::Vector { dim: 0, .. } => {
                    return Err(SearchError::Schema(format!("vector field {:?} needs a dimension", f.name)));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `FT.CREATE <index> ON JSON PREFIX 1 <prefix> SCHEMA $.<name> AS <alias> <type> ...`.
    ///
    /// The caller routes it (see [`super::index_tag`]).
    ///
    /// # Errors
    /// An invalid schema.
    pub fn create_command(&self, index: &[u8], prefix: &[u8]) -> Result<Cmd, SearchError> {
        self.validate()?;
        let mut cmd = Cmd::new("FT.CREATE")
            .arg(Bytes::copy_from_slice(index))
            .arg("ON")
            .arg("JSON")
            .arg("PREFIX")
            .arg("1")
            .arg(Bytes::copy_from_slice(prefix))
            .arg("SCHEMA");
        for f in &self.fields {
            cmd = cmd.arg(format!("$.{}", f.name)).arg("AS").arg(f.alias()).arg(f.kind.type_name());
            if let FieldKind::Vector { algorithm, dim, distance } = f.kind {
                cmd = cmd
                    .arg(algorithm.as_str())
                    .arg("6")
                    .arg("TYPE")
                    .arg("FLOAT32")
                    .arg("DIM")
                    .arg(dim.to_string())
                    .arg("DISTANCE_METRIC")
                    .arg(distance.as_str());
            }
            if f.sortable {
                cmd = cmd.arg("SORTABLE");
            }
        }
        Ok(cmd)
    }

    /// Compares an `FT.INFO` reply (RESP2 or RESP3) with this schema and the expected prefix.
    ///
    /// # Errors
    /// [`SearchError::SchemaMismatch`] naming the first difference; [`SearchError::Reply`] for
    /// a reply that has no attributes.
    pub fn check_info(&self, info: &Value, prefix: &[u8]) -> Result<(), SearchError> {
        let top = pairs(info).ok_or_else(|| SearchError::Reply(abbrev(info)))?;
        let attrs = lookup(&top, "attributes")
            .and_then(items)
            .ok_or_else(|| SearchError::Reply("FT.INFO without attributes".into()))?;
        if let Some(def) = lookup(&top, "index_definition").and_then(pairs) {
            if let Some(kt) = lookup(&def, "key_type").and_then(text) {
                if !kt.eq_ignore_ascii_case("JSON") {
                    return Err(SearchError::SchemaMismatch(format!("index is ON {kt}, not ON JSON")));
                }
            }
            if let Some(p) = lookup(&def, "prefixes").and_then(items) {
                let got: Vec<String> = p.iter().filter_map(text).collect();
                let want = String::from_utf8_lossy(prefix).into_owned();
                if got != [want.clone()] {
                    return Err(SearchError::SchemaMismatch(format!(
                        "index prefixes {got:?}, expected [{want:?}]"
                    )));
                }
            }
        }
        if attrs.len() != self.fields.len() {
            return Err(SearchError::SchemaMismatch(format!(
                "index has {} fields, the schema {}",
                attrs.len(),
                self.fields.len()
            )));
        }
        for (f, a) in self.fields.iter().zip(attrs) {
            let mut toks = Vec::new();
            flatten(a, &mut toks);
            let get = |k: &str| {
                toks.iter().position(|t| t.eq_ignore_ascii_case(k)).and_then(|i| toks.get(i + 1)).cloned()
            };
            let want_path = format!("$.{}", f.name);
            let mut got_desc = format!(
                "{} AS {} {}",
                get("identifier").unwrap_or_default(),
                get("attribute").unwrap_or_default(),
                get("type").unwrap_or_default().to_ascii_uppercase()
            );
            let mut want_desc = format!("{want_path} AS {} {}", f.alias(), f.kind.type_name());
            if let FieldKind::Vector { algorithm, dim, distance } = f.kind {
                want_desc.push_str(&format!(" {} {dim} {}", algorithm.as_str(), distance.as_str()));
                got_desc.push_str(&format!(
                    " {} {} {}",
                    get("algorithm").unwrap_or_default().to_ascii_uppercase(),
                    get("dim").unwrap_or_default(),
                    get("distance_metric").unwrap_or_default().to_ascii_uppercase()
                ));
            }
            let sortable = toks.iter().any(|t| t.eq_ignore_ascii_case("SORTABLE"));
            if sortable {
                got_desc.push_str(" SORTABLE");
            }
            if f.sortable {
                want_desc.push_str(" SORTABLE");
            }
            if got_desc != want_desc {
                return Err(SearchError::SchemaMismatch(format!(
                    "index has `{got_desc}`, schema wants `{want_desc}`"
                )));
            }
        }
        Ok(())
    }
}

impl SearchField {
    /// The attribute name in the index and in queries: the name with `.` replaced by `_`.
    #[must_use]
    pub fn alias(&self) -> String {
        self.name.replace('.', "_")
    }
}

/// Whether an `FT.INFO` reply (RESP2 or RESP3) says the index is still indexing the
/// documents that existed when it was created.
#[must_use]
pub fn is_indexing(info: &Value) -> bool {
    pairs(info).and_then(|p| lookup(&p, "indexing").cloned()).is_some_and(|v| match v {
        Value::Int(i) => i != 0,
        Value::Double(d) => d != 0.0,
        other => other.as_bytes().is_some_and(|b| b.as_ref() != b"0"),
    })
}

pub(super) fn abbrev(v: &Value) -> String {
    let mut s = format!("{v:?}");
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A reply's text, if it is a string or a number.
pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::Simple(b) | Value::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Verbatim { text, .. } => Some(String::from_utf8_lossy(text).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        Value::BigNumber(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// The elements of an array or set.
pub(super) fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

/// Key/value pairs of a RESP3 map or of a RESP2 flat array `[k1, v1, k2, v2, ...]`.
pub(super) fn pairs(v: &Value) -> Option<Vec<(String, &Value)>> {
    match v {
        Value::Map(m) => Some(m.iter().filter_map(|(k, v)| text(k).map(|k| (k, v))).collect()),
        Value::Array(a) => Some(
            a.chunks(2)
                .filter_map(|c| match c {
                    [k, v] => text(k).map(|k| (k, v)),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

pub(super) fn lookup<'a>(pairs: &[(String, &'a Value)], key: &str) -> Option<&'a Value> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| *v)
}

fn flatten(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Map(m) => {
            for (k, v) in m {
                flatten(k, out);
                flatten(v, out);
            }
        }
        Value::Array(a) | Value::Set(a) => a.iter().for_each(|x| flatten(x, out)),
        other => out.push(text(other).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Simple(Bytes::copy_from_slice(x.as_bytes()))
    }

    fn schema() -> SearchSchema {
        SearchSchema::new().tag("role", true).numeric("age", false).vector(
            "v",
            VectorAlgorithm::Flat,
            2,
            Distance::L2,
        )
    }

    /// `FT.INFO` as RediSearch 2.10 answers it under RESP3.
    fn info3(sortable_role: bool, dim: i64) -> Value {
        let flags = if sortable_role { vec![s("SORTABLE"), s("UNF")] } else { vec![] };
        Value::Map(vec![
            (s("index_name"), s("idx")),
            (
                s("index_definition"),
                Value::Map(vec![
                    (s("key_type"), s("JSON")),
                    (s("prefixes"), Value::Array(vec![s("users:")])),
                ]),
            ),
            (
                s("attributes"),
                Value::Array(vec![
                    Value::Map(vec![
                        (s("identifier"), s("$.role")),
                        (s("attribute"), s("role")),
                        (s("type"), s("TAG")),
                        (s("SEPARATOR"), s("")),
                        (s("flags"), Value::Array(flags)),
                    ]),
                    Value::Map(vec![
                        (s("identifier"), s("$.age")),
                        (s("attribute"), s("age")),
                        (s("type"), s("NUMERIC")),
                        (s("flags"), Value::Array(vec![])),
                    ]),
                    Value::Map(vec![
                        (s("identifier"), s("$.v")),
                        (s("attribute"), s("v")),
                        (s("type"), s("VECTOR")),
                        (s("algorithm"), s("FLAT")),
                        (s("data_type"), s("FLOAT32")),
                        (s("dim"), Value::Int(dim)),
                        (s("distance_metric"), s("L2")),
                        (s("flags"), Value::Array(vec![])),
                    ]),
                ]),
            ),
            (s("num_docs"), Value::Int(0)),
        ])
    }

    #[test]
    fn ft_info_matches_or_names_the_difference() {
        let sc = schema();
        sc.check_info(&info3(true, 2), b"users:").expect("same schema");
        for (info, prefix) in
            [(info3(false, 2), "users:"), (info3(true, 3), "users:"), (info3(true, 2), "other:")]
        {
            assert!(
                matches!(sc.check_info(&info, prefix.as_bytes()), Err(SearchError::SchemaMismatch(_))),
                "{prefix}"
            );
        }
        let fewer = SearchSchema::new().tag("role", true);
        assert!(matches!(fewer.check_info(&info3(true, 2), b"users:"), Err(SearchError::SchemaMismatch(_))));
        assert!(matches!(sc.check_info(&Value::Int(1), b"users:"), Err(SearchError::Reply(_))));
    }

    #[test]
    fn ft_info_resp2_flat_arrays_are_read() {
        let attr = |a: &[&str]| Value::Array(a.iter().map(|x| s(x)).collect());
        let info = Value::Array(vec![
            s("index_name"),
            s("idx"),
            s("index_definition"),
            Value::Array(vec![s("key_type"), s("JSON"), s("prefixes"), Value::Array(vec![s("users:")])]),
            s("attributes"),
            Value::Array(vec![
                attr(&[
                    "identifier",
                    "$.role",
                    "attribute",
                    "role",
                    "type",
                    "TAG",
                    "SEPARATOR",
                    "",
                    "SORTABLE",
                    "UNF",
                ]),
                attr(&["identifier", "$.age", "attribute", "age", "type", "NUMERIC"]),
                Value::Array(vec![
                    s("identifier"),
                    s("$.v"),
                    s("attribute"),
                    s("v"),
                    s("type"),
                    s("VECTOR"),
                    s("algorithm"),
                    s("FLAT"),
                    s("dim"),
                    Value::Int(2),
                    s("distance_metric"),
                    s("L2"),
                ]),
            ]),
        ]);
        schema().check_info(&info, b"users:").expect("same schema");
    }

    #[test]
    fn create_command_and_validation() {
        let c = SearchSchema::new()
            .tag("role", true)
            .text("address.city", false)
            .vector("v", VectorAlgorithm::Hnsw, 4, Distance::Cosine)
            .create_command(b"index:users{1}", b"users:")
            .expect("valid");
        let args: Vec<String> = c.args().iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        assert_eq!(
            args.join(" "),
            "FT.CREATE index:users{1} ON JSON PREFIX 1 users: SCHEMA $.role AS role TAG SORTABLE \
             $.address.city AS address_city TEXT $.v AS v VECTOR HNSW 6 TYPE FLOAT32 DIM 4 DISTANCE_METRIC COSINE"
        );
        for bad in [
            SearchSchema::new(),
            SearchSchema::new().tag("", false),
            SearchSchema::new().tag("a b", false),
            SearchSchema::new().tag("1a", false),
            SearchSchema::new().tag("a..b", false),
            SearchSchema::new().tag("__slotcache", false),
            SearchSchema::new().tag("a", false).numeric("a", false),
            SearchSchema::new().tag("a.b", false).tag("a_b", false),
            SearchSchema::new().vector("v", VectorAlgorithm::Flat, 0, Distance::L2),
            SearchSchema {
                fields: vec![SearchField { name: "g".into(), kind: FieldKind::Geo, sortable: true }],
            },
        ] {
            assert!(matches!(bad.validate(), Err(SearchError::Schema(_))), "{bad:?}");
        }
    }

    #[test]
    fn indexing_flag_in_both_protocols() {
        let r3 = |i| Value::Map(vec![(s("indexing"), Value::Int(i))]);
        assert!(is_indexing(&r3(1)));
        assert!(!is_indexing(&r3(0)));
        assert!(is_indexing(&Value::Array(vec![s("indexing"), s("1")])));
        assert!(!is_indexing(&Value::Array(vec![s("num_docs"), s("1")])));
        assert!(!is_indexing(&Value::Int(1)));
    }
}
