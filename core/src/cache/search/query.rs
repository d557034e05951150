//! Filters, the query string built from them (driven by the schema's field types, every value
//! escaped), and the `FT.SEARCH` command.

use bytes::Bytes;

use crate::client::Cmd;

use super::SearchError;
use super::schema::{FieldKind, SearchSchema};

/// The most results one shard is asked for (RediSearch's default `MAXSEARCHRESULTS`).
pub const MAX_WINDOW: usize = 10_000;

/// A filter value.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterValue {
    /// A string (TAG and TEXT fields).
    Text(String),
    /// A number (NUMERIC fields).
    Number(f64),
}

impl From<&str> for FilterValue {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for FilterValue {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<f64> for FilterValue {
    fn from(n: f64) -> Self {
        Self::Number(n)
    }
}

impl From<i64> for FilterValue {
    #[allow(clippy::cast_precision_loss)]
    fn from(n: i64) -> Self {
        Self::Number(n as f64)
    }
}

impl From<i32> for FilterValue {
    fn from(n: i32) -> Self {
        Self::Number(f64::from(n))
    }
}

impl From<u32> for FilterValue {
    fn from(n: u32) -> Self {
        Self::Number(f64::from(n))
    }
}

/// A distance unit for GEO filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GeoUnit {
    /// Metres.
    M,
    /// Kilometres.
    Km,
    /// Miles.
    Mi,
    /// Feet.
    Ft,
}

/// What a filter asks of a field.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FilterOp {
    /// Equal: TAG (exact tag), NUMERIC (exact number), TEXT (every word).
    Eq(FilterValue),
    /// Not equal (same types as `Eq`).
    Ne(FilterValue),
    /// NUMERIC greater than.
    Gt(f64),
    /// NUMERIC greater than or equal.
    Ge(f64),
    /// NUMERIC less than.
    Lt(f64),
    /// NUMERIC less than or equal.
    Le(f64),
    /// NUMERIC inclusive range `[lo, hi]`.
    Between(f64, f64),
    /// Any of these values (TAG or NUMERIC); must not be empty.
    In(Vec<FilterValue>),
    /// TAG values or TEXT words starting with this (at least 2 characters).
    Prefix(String),
    /// GEO points within `radius` of (`lon`, `lat`).
    Within {
        /// Longitude.
        lon: f64,
        /// Latitude.
        lat: f64,
        /// Radius.
        radius: f64,
        /// Unit of the radius.
        unit: GeoUnit,
    },
}

/// A condition on one schema field.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// The schema field name.
    pub field: String,
    /// The condition.
    pub op: FilterOp,
}

impl Filter {
    /// A filter on `field`.
    #[must_use]
    pub fn new(field: &str, op: FilterOp) -> Self {
        Self { field: field.to_owned(), op }
    }

    /// `field == value`.
    #[must_use]
    pub fn eq(field: &str, value: impl Into<FilterValue>) -> Self {
        Self::new(field, FilterOp::Eq(value.into()))
    }

    /// `field != value`.
    #[must_use]
    pub fn ne(field: &str, value: impl Into<FilterValue>) -> Self {
        Self::new(field, FilterOp::Ne(value.into()))
    }

    /// `lo <= field <= hi`.
    #[must_use]
    pub fn between(field: &str, lo: f64, hi: f64) -> Self {
        Self::new(field, FilterOp::Between(lo, hi))
    }

    /// `field` is one of `values`.
    #[must_use]
    pub fn any_of<V: Into<FilterValue>>(field: &str, values: impl IntoIterator<Item = V>) -> Self {
        Self::new(field, FilterOp::In(values.into_iter().map(Into::into).collect()))
    }

    /// `field` starts with `prefix`.
    #[must_use]
    pub fn prefix(field: &str, prefix: &str) -> Self {
        Self::new(field, FilterOp::Prefix(prefix.to_owned()))
    }
}

/// Sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Sort by a sortable schema field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortBy {
    /// The field (must be declared sortable).
    pub field: String,
    /// The direction.
    pub order: SortOrder,
}

/// Escapes a TAG value: a backslash before every ASCII character that is not a letter, digit
/// or `_` (punctuation, `|`, `\`, braces, spaces, controls). Other Unicode stays as it is.
#[must_use]
pub fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for c in value.chars() {
        if c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The words of a TEXT value as the indexer tokenizes them: runs of letters, digits and `_`
/// (so no word needs escaping).
#[must_use]
pub fn text_terms(value: &str) -> Vec<String> {
    value
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn num(field: &str, n: f64) -> Result<String, SearchError> {
    if n.is_nan() {
        return Err(SearchError::InvalidFilter(format!("{field}: NaN is not a number to compare with")));
    }
    Ok(if n == f64::INFINITY {
        "+inf".into()
    } else if n == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        format!("{n}")
    })
}

fn finite(field: &str, n: f64) -> Result<String, SearchError> {
    if n.is_finite() {
        num(field, n)
    } else {
        Err(SearchError::InvalidFilter(format!("{field}: {n} is not finite")))
    }
}

fn tag_value(field: &str, v: &FilterValue) -> Result<String, SearchError> {
    match v {
        FilterValue::Text(s) if !s.is_empty() => Ok(escape_tag(s)),
        FilterValue::Text(_) => Err(SearchError::InvalidFilter(format!("{field}: empty TAG value"))),
        FilterValue::Number(_) => {
            Err(SearchError::InvalidFilter(format!("{field} is a TAG field: compare it with a string")))
        }
    }
}

fn number_value(field: &str, v: &FilterValue) -> Result<String, SearchError> {
    match v {
        FilterValue::Number(n) => finite(field, *n),
        FilterValue::Text(_) => {
            Err(SearchError::InvalidFilter(format!("{field} is a NUMERIC field: compare it with a number")))
        }
    }
}

fn text_value(field: &str, v: &FilterValue) -> Result<String, SearchError> {
    let FilterValue::Text(s) = v else {
        return Err(SearchError::InvalidFilter(format!("{field} is a TEXT field: compare it with a string")));
    };
    let terms = text_terms(s);
    if terms.is_empty() {
        return Err(SearchError::InvalidFilter(format!("{field}: no word to search for in {s:?}")));
    }
    Ok(terms.join(" "))
}

fn wrong(field: &str, kind: FieldKind, op: &FilterOp) -> SearchError {
    SearchError::InvalidFilter(format!("{op:?} does not apply to {field} ({kind:?} field)"))
}

/// One clause for one filter.
///
/// # Errors
/// [`SearchError::InvalidFilter`] for an unknown field, an operation the field's type does not
/// have, a value of the wrong type, an empty list or value, NaN, or `lo > hi`.
pub fn clause(schema: &SearchSchema, filter: &Filter) -> Result<String, SearchError> {
    let name = filter.field.as_str();
    let f =
        schema.field(name).ok_or_else(|| SearchError::InvalidFilter(format!("unknown field {name:?}")))?;
    let a = f.alias();
    let op = &filter.op;
    Ok(match (f.kind, op) {
        (FieldKind::Tag, FilterOp::Eq(v)) => format!("@{a}:{{{}}}", tag_value(name, v)?),
        (FieldKind::Tag, FilterOp::Ne(v)) => format!("-@{a}:{{{}}}", tag_value(name, v)?),
        (FieldKind::Tag, FilterOp::In(vs)) if !vs.is_empty() => {
            let vs = vs.iter().map(|v| tag_value(name, v)).collect::<Result<Vec<_>, _>>()?;
            format!("@{a}:{{{}}}", vs.join("|"))
        }
        (FieldKind::Tag, FilterOp::Prefix(p)) if p.chars().count() >= 2 => {
            format!("@{a}:{{{}*}}", escape_tag(p))
        }
        (FieldKind::Numeric, FilterOp::Eq(v)) => {
            let n = number_value(name, v)?;
            format!("@{a}:[{n} {n}]")
        }
        (FieldKind::Numeric, FilterOp::Ne(v)) => {
            let n = number_value(name, v)?;
            format!("-@{a}:[{n} {n}]")
        }
        (FieldKind::Numeric, FilterOp::Gt(n)) => format!("@{a}:[({} +inf]", num(name, *n)?),
        (FieldKind::Numeric, FilterOp::Ge(n)) => format!("@{a}:[{} +inf]", num(name, *n)?),
        (FieldKind::Numeric, FilterOp::Lt(n)) => format!("@{a}:[-inf ({}]", num(name, *n)?),
        (FieldKind::Numeric, FilterOp::Le(n)) => format!("@{a}:[-inf {}]", num(name, *n)?),
        (FieldKind::Numeric, FilterOp::Between(lo, hi)) => {
            let (l, h) = (num(name, *lo)?, num(name, *hi)?);
            if lo > hi {
                return Err(SearchError::InvalidFilter(format!("{name}: empty range [{l}, {h}]")));
            }
            format!("@{a}:[{l} {h}]")
        }
        (FieldKind::Numeric, FilterOp::In(vs)) if !vs.is_empty() => {
            let parts = vs
                .iter()
                .map(|v| number_value(name, v).map(|n| format!("@{a}:[{n} {n}]")))
                .collect::<Result<Vec<_>, _>>()?;
            format!("({})", parts.join("|"))
        }
        (FieldKind::Text, FilterOp::Eq(v)) => format!("@{a}:({})", text_value(name, v)?),
        (FieldKind::Text, FilterOp::Ne(v)) => format!("-@{a}:({})", text_value(name, v)?),
        (FieldKind::Text, FilterOp::Prefix(p)) => {
            let terms = text_terms(p);
            match terms.last() {
                Some(last) if last.chars().count() >= 2 => format!("@{a}:({}*)", terms.join(" ")),
                _ => {
                    return Err(SearchError::InvalidFilter(format!(
                        "{name}: prefix {p:?} needs a word of 2+ characters"
                    )));
                }
            }
        }
        (FieldKind::Geo, FilterOp::Within { lon, lat, radius, unit }) => {
            if *radius < 0.0 || !(-180.0..=180.0).contains(lon) || !(-90.0..=90.0).contains(lat) {
                return Err(SearchError::InvalidFilter(format!("{name}: bad GEO area")));
            }
            let u = match unit {
                GeoUnit::M => "m",
                GeoUnit::Km => "km",
                GeoUnit::Mi => "mi",
                GeoUnit::Ft => "ft",
            };
            format!("@{a}:[{} {} {} {u}]", finite(name, *lon)?, finite(name, *lat)?, finite(name, *radius)?)
        }
        (FieldKind::Tag | FieldKind::Numeric, FilterOp::In(_)) => {
            return Err(SearchError::InvalidFilter(format!("{name}: empty list of values")));
        }
        (FieldKind::Tag, FilterOp::Prefix(p)) => {
            return Err(SearchError::InvalidFilter(format!("{name}: prefix {p:?} needs 2+ characters")));
        }
        (kind, op) => return Err(wrong(name, kind, op)),
    })
}

/// The query string: the full-text words (over every TEXT field) and then every filter's
/// clause, joined by spaces (AND); `*` when there is nothing.
///
/// # Errors
/// [`SearchError::InvalidFilter`] for any invalid filter (nothing is ever dropped), and for
/// words given when the schema has no TEXT field.
pub fn build_query(
    schema: &SearchSchema,
    text: Option<&str>,
    filters: &[Filter],
) -> Result<String, SearchError> {
    let mut parts = Vec::with_capacity(filters.len() + 1);
    if let Some(t) = text {
        let terms = text_terms(t);
        if !terms.is_empty() {
            let fields: Vec<String> =
                schema.fields.iter().filter(|f| f.kind == FieldKind::Text).map(|f| f.alias()).collect();
            if fields.is_empty() {
                return Err(SearchError::InvalidFilter(
                    "full-text search needs a TEXT field in the schema".into(),
                ));
            }
            parts.push(format!("@{}:({})", fields.join("|"), terms.join(" ")));
        }
    }
    for f in filters {
        parts.push(clause(schema, f)?);
    }
    if parts.is_empty() {
        return Ok("*".into());
    }
    Ok(parts.join(" "))
}

/// `FT.SEARCH <index> <query> NOCONTENT [WITHSCORES] [WITHSORTKEYS SORTBY <f> ASC|DESC]
/// LIMIT 0 <window> DIALECT 2`: one shard's first `window` keys.
///
/// `NOCONTENT`: RediSearch 2.10 on a Valkey cluster cannot load a document whose key is in
/// another slot than the index name (it answers nil), so the documents are read afterwards
/// with `JSON.MGET`, which also skips documents deleted in between.
///
/// # Errors
/// [`SearchError::InvalidFilter`] for a sort field that is unknown or not sortable, or a window
/// over [`MAX_WINDOW`].
pub fn search_command(
    schema: &SearchSchema,
    index: &[u8],
    query: &str,
    sort: Option<&SortBy>,
    with_scores: bool,
    window: usize,
) -> Result<Cmd, SearchError> {
    if window > MAX_WINDOW {
        return Err(SearchError::InvalidFilter(format!("offset + limit {window} exceeds {MAX_WINDOW}")));
    }
    let mut cmd =
        Cmd::new("FT.SEARCH").arg(Bytes::copy_from_slice(index)).arg(query.to_owned()).arg("NOCONTENT");
    if with_scores {
        cmd = cmd.arg("WITHSCORES");
    }
    if let Some(s) = sort {
        let f = schema
            .field(&s.field)
            .ok_or_else(|| SearchError::InvalidFilter(format!("unknown sort field {:?}", s.field)))?;
        if !f.sortable {
            return Err(SearchError::InvalidFilter(format!("sort field {:?} is not sortable", s.field)));
        }
        let dir = if s.order == SortOrder::Asc { "ASC" } else { "DESC" };
        cmd = cmd.arg("WITHSORTKEYS").arg("SORTBY").arg(f.alias()).arg(dir);
    }
    Ok(cmd.arg("LIMIT").arg("0").arg(window.to_string()).arg("DIALECT").arg("2"))
}

/// The name the nearest-neighbour distance is yielded as (and sorted by).
pub const KNN_DISTANCE: &str = "__slotcache_dist";

/// A nearest-neighbour query on a VECTOR field.
#[derive(Clone, Debug, PartialEq)]
pub struct Knn {
    /// The VECTOR field.
    pub field: String,
    /// How many neighbours (over the whole cluster).
    pub k: usize,
    /// The query vector (as many elements as the field's dimension).
    pub vector: Vec<f32>,
}

/// `FT.SEARCH <index> "(<base>)=>[KNN k @f $vec AS __slotcache_dist]" NOCONTENT WITHSORTKEYS
/// SORTBY __slotcache_dist ASC PARAMS 2 vec <f32 LE blob> LIMIT 0 <window> DIALECT 2`.
///
/// # Errors
/// [`SearchError::InvalidFilter`] for a field that is not a VECTOR field, a vector of another
/// dimension or with a non-finite element, `k` of 0, or a window over [`MAX_WINDOW`].
pub fn knn_command(
    schema: &SearchSchema,
    index: &[u8],
    base: &str,
    knn: &Knn,
    window: usize,
) -> Result<Cmd, SearchError> {
    let f = schema
        .field(&knn.field)
        .ok_or_else(|| SearchError::InvalidFilter(format!("unknown field {:?}", knn.field)))?;
    let FieldKind::Vector { dim, .. } = f.kind else {
        return Err(SearchError::InvalidFilter(format!("{:?} is not a VECTOR field", knn.field)));
    };
    if knn.k == 0 || knn.k > MAX_WINDOW || window > MAX_WINDOW {
        return Err(SearchError::InvalidFilter(format!("k must be 1..={MAX_WINDOW}")));
    }
    if u32::try_from(knn.vector.len()).ok() != Some(dim) || !knn.vector.iter().all(|x| x.is_finite()) {
        return Err(SearchError::InvalidFilter(format!(
            "{:?} needs {dim} finite numbers, got {}",
            knn.field,
            knn.vector.len()
        )));
    }
    let blob: Vec<u8> = knn.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let base = if base == "*" { "*".to_owned() } else { format!("({base})") };
    let q = format!("{base}=>[KNN {} @{} $vec AS {KNN_DISTANCE}]", knn.k, f.alias());
    Ok(Cmd::new("FT.SEARCH")
        .arg(Bytes::copy_from_slice(index))
        .arg(q)
        .arg("NOCONTENT")
        .arg("WITHSORTKEYS")
        .arg("SORTBY")
        .arg(KNN_DISTANCE)
        .arg("ASC")
        .arg("PARAMS")
        .arg("2")
        .arg("vec")
        .arg(Bytes::from(blob))
        .arg("LIMIT")
        .arg("0")
        .arg(window.to_string())
        .arg("DIALECT")
        .arg("2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> SearchSchema {
        SearchSchema::new()
            .tag("role", true)
            .numeric("age", true)
            .text("bio", false)
            .geo("loc")
            .tag("address.city", false)
    }

    fn q(filters: &[Filter]) -> Result<String, SearchError> {
        build_query(&schema(), None, filters)
    }

    #[test]
    fn tag_escaping_covers_every_special_character() {
        assert_eq!(escape_tag("a-b@c{d}e|f g\\h"), r"a\-b\@c\{d\}e\|f\ g\\h");
        assert_eq!(escape_tag("ns:value,3.14"), r"ns\:value\,3\.14");
        assert_eq!(escape_tag("(foo!)*"), r"\(foo\!\)\*");
        assert_eq!(escape_tag("élan_42 ✓"), r"élan_42\ ✓");
        assert_eq!(escape_tag("/?`'\"\t"), "\\/\\?\\`\\'\\\"\\\t");
    }

    proptest::proptest! {
        #[test]
        fn escaped_tags_have_no_bare_specials_and_unescape(s in "\\PC{0,24}") {
            let e = escape_tag(&s);
            let mut out = String::new();
            let mut it = e.chars();
            while let Some(c) = it.next() {
                if c == '\\' {
                    let n = it.next().expect("an escape is followed by the escaped character");
                    proptest::prop_assert!(n.is_ascii() && !(n.is_ascii_alphanumeric() || n == '_'));
                    out.push(n);
                } else {
                    proptest::prop_assert!(!c.is_ascii() || c.is_ascii_alphanumeric() || c == '_', "bare {c:?} in {e:?}");
                    out.push(c);
                }
            }
            proptest::prop_assert_eq!(out, s);
        }
    }

    #[test]
    fn clauses_follow_field_types() {
        assert_eq!(q(&[Filter::eq("role", "ad-min")]).unwrap(), r"@role:{ad\-min}");
        assert_eq!(q(&[Filter::ne("role", "x")]).unwrap(), "-@role:{x}");
        assert_eq!(q(&[Filter::any_of("role", ["a|b", "c"])]).unwrap(), r"@role:{a\|b|c}");
        assert_eq!(q(&[Filter::prefix("role", "ad-")]).unwrap(), r"@role:{ad\-*}");
        assert_eq!(q(&[Filter::eq("age", 30)]).unwrap(), "@age:[30 30]");
        assert_eq!(q(&[Filter::new("age", FilterOp::Gt(1.5))]).unwrap(), "@age:[(1.5 +inf]");
        assert_eq!(q(&[Filter::new("age", FilterOp::Lt(-2.0))]).unwrap(), "@age:[-inf (-2]");
        assert_eq!(q(&[Filter::new("age", FilterOp::Ge(f64::NEG_INFINITY))]).unwrap(), "@age:[-inf +inf]");
        assert_eq!(q(&[Filter::between("age", 1.0, 2.0)]).unwrap(), "@age:[1 2]");
        assert_eq!(q(&[Filter::any_of("age", [1, 2])]).unwrap(), "(@age:[1 1]|@age:[2 2])");
        assert_eq!(q(&[Filter::eq("bio", "hello, world!")]).unwrap(), "@bio:(hello world)");
        assert_eq!(q(&[Filter::prefix("bio", "wor")]).unwrap(), "@bio:(wor*)");
        assert_eq!(q(&[Filter::eq("address.city", "New York")]).unwrap(), r"@address_city:{New\ York}");
        let w =
            Filter::new("loc", FilterOp::Within { lon: 2.35, lat: 48.85, radius: 10.0, unit: GeoUnit::Km });
        assert_eq!(q(&[w]).unwrap(), "@loc:[2.35 48.85 10 km]");
        assert_eq!(q(&[Filter::eq("role", "a"), Filter::eq("age", 1)]).unwrap(), "@role:{a} @age:[1 1]");
        assert_eq!(q(&[]).unwrap(), "*");
        assert_eq!(build_query(&schema(), Some("Hello-world"), &[]).unwrap(), "@bio:(Hello world)");
    }

    #[test]
    fn invalid_filters_are_errors_never_dropped() {
        let bad = [
            Filter::eq("nope", "x"),
            Filter::eq("role", 3),
            Filter::eq("age", "3"),
            Filter::eq("role", ""),
            Filter::any_of::<&str>("role", []),
            Filter::any_of::<i32>("age", []),
            Filter::between("age", 2.0, 1.0),
            Filter::eq("age", f64::NAN),
            Filter::eq("age", f64::INFINITY),
            Filter::new("role", FilterOp::Gt(1.0)),
            Filter::prefix("role", "a"),
            Filter::prefix("age", "ab"),
            Filter::eq("bio", "!!"),
            Filter::new("loc", FilterOp::Within { lon: 500.0, lat: 0.0, radius: 1.0, unit: GeoUnit::M }),
        ];
        for f in bad {
            assert!(matches!(q(std::slice::from_ref(&f)), Err(SearchError::InvalidFilter(_))), "{f:?}");
        }
        let no_text = SearchSchema::new().tag("t", false);
        assert!(build_query(&no_text, Some("words"), &[]).is_err());
    }

    #[test]
    fn search_command_has_window_and_sort() {
        let s = schema();
        let sort = SortBy { field: "age".into(), order: SortOrder::Desc };
        let c = search_command(&s, b"idx", "*", Some(&sort), false, 30).unwrap();
        let args: Vec<String> = c.args().iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        assert_eq!(
            args,
            [
                "FT.SEARCH",
                "idx",
                "*",
                "NOCONTENT",
                "WITHSORTKEYS",
                "SORTBY",
                "age",
                "DESC",
                "LIMIT",
                "0",
                "30",
                "DIALECT",
                "2"
            ]
        );
        let bad = SortBy { field: "bio".into(), order: SortOrder::Asc };
        assert!(search_command(&s, b"idx", "*", Some(&bad), false, 1).is_err());
        assert!(search_command(&s, b"idx", "*", None, false, MAX_WINDOW + 1).is_err());
    }

    #[test]
    fn knn_command_checks_the_vector() {
        let s = schema().vector(
            "v",
            crate::cache::search::VectorAlgorithm::Flat,
            2,
            crate::cache::search::Distance::L2,
        );
        let knn = Knn { field: "v".into(), k: 3, vector: vec![1.0, 2.0] };
        let c = knn_command(&s, b"idx", "@role:{a}", &knn, 3).unwrap();
        assert_eq!(c.args()[2].as_ref(), b"(@role:{a})=>[KNN 3 @v $vec AS __slotcache_dist]");
        assert_eq!(c.args()[11].len(), 8);
        for bad in [
            Knn { field: "age".into(), k: 3, vector: vec![1.0, 2.0] },
            Knn { field: "v".into(), k: 0, vector: vec![1.0, 2.0] },
            Knn { field: "v".into(), k: 3, vector: vec![1.0] },
            Knn { field: "v".into(), k: 3, vector: vec![1.0, f32::NAN] },
        ] {
            assert!(knn_command(&s, b"idx", "*", &bad, 3).is_err(), "{bad:?}");
        }
    }
}
