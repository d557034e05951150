//! A minimal RediSearch 2.10 without a coordinator: each node's indexes cover **that node's**
//! JSON documents whose key starts with the index's prefix (what the cache's per-primary
//! indexes are built for). Index names are routed like keys (the cluster answers `MOVED` for
//! an index name of another node's slot); definitions are replicated and dropped by a flush.
//!
//! Commands:
//! - `FT.CREATE idx ON JSON|HASH [PREFIX n p…] SCHEMA <path> [AS alias] TAG|NUMERIC|TEXT|GEO|
//!   VECTOR … [SORTABLE [UNF]] [NOINDEX] [CASESENSITIVE] [SEPARATOR c]`; an existing name is
//!   `Index already exists`. Other options before `SCHEMA` are refused.
//! - `FT.INFO idx`: `index_name`, `index_options`, `index_definition` (`key_type`, `prefixes`,
//!   `default_score`), `attributes` (`identifier`, `attribute`, `type`, `SEPARATOR` for TAG,
//!   `SORTABLE`/`UNF` flags), `num_docs`, `indexing`, `percent_indexed`; RESP2 pairs or a
//!   RESP3 map. An index created over existing documents reports `indexing 1` for its first
//!   [`INDEXING_MS`] (node clock), so the cache's poll is exercised.
//! - `FT.DROPINDEX idx [DD]`.
//! - `FT.SEARCH idx <query> [NOCONTENT] [VERBATIM] [WITHSCORES] [WITHSORTKEYS] [RETURN n f…]
//!   [SORTBY f [ASC|DESC]] [LIMIT off n] [DIALECT d] [TIMEOUT ms]`: RESP2 `[total, id,
//!   (score), (sortkey), (fields)…]` or the RESP3 map (`total_results`, `results` of `id`,
//!   `score`, `sortkey`, `extra_attributes`).
//!
//! Query language: `*`; clauses joined by spaces (AND); `-` negates a clause; `( a | b )`
//! alternatives; `@f:{v|w|pre*}` on TAG fields (backslash escapes, case-insensitive unless
//! `CASESENSITIVE`); `@f:[lo hi]` on NUMERIC fields (`(` exclusive, `-inf`/`+inf`);
//! `@f:(w1 w2*)` on TEXT fields (lower-cased words, no stemming). Anything else (bare words,
//! GEO areas, KNN, parameters) is a `Syntax error`. Unknown fields answer `Unknown field`.
//!
//! Indexing follows RediSearch on JSON: a TAG takes a string or an array of strings (no
//! splitting by the separator), a NUMERIC a number; a document whose indexed member has
//! another type fails indexing and is left out. Results without `SORTBY` come in key order
//! (every score is 1); sort keys are `#<number>` or `$<lower-cased text>`; documents lacking
//! the sort field come last in both directions; ties go by key.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::Value as Json;
use slotcache_core::Value;

use super::command_ctx::{Ctx, err, ok, parse_int};
use super::index_def::{Field, IndexDef};
use super::json::Path;
use super::store::{Entry, Val, json_text as text};

/// How long (node clock) an index created over existing documents reports `indexing 1`.
pub const INDEXING_MS: u64 = 3;

/// The text of a refused `FT.CREATE` of an existing name.
pub const EXISTS: &str = "Index already exists";
/// `FT.INFO` of a missing index.
pub const UNKNOWN_INDEX: &str = "Unknown index name";

/// Runs an `FT.*` command (`name` upper-case, `a` its arguments; arity already checked).
pub fn exec(cx: &mut Ctx<'_>, name: &str, a: &[Bytes]) -> Value {
    match name {
        "FT.CREATE" => create(cx, a),
        "FT.INFO" => info(cx, &a[0]),
        "FT.DROPINDEX" => drop_index(cx, a),
        "FT.SEARCH" => search(cx, a),
        _ => err(&format!("ERR unknown command '{name}'")),
    }
}

fn up(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

fn create(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let name = &a[0];
    if cx.store.has_index(name) {
        return err(EXISTS);
    }
    let mut on = "HASH".to_owned();
    let mut prefixes = Vec::new();
    let mut i = 1;
    loop {
        let Some(w) = a.get(i) else { return err("No schema found") };
        match up(w).as_str() {
            "ON" => {
                let Some(t) = a.get(i + 1).map(|t| up(t)) else { return err("ERR syntax error") };
                if t != "JSON" && t != "HASH" {
                    return err(&format!("Invalid rule type: {t}"));
                }
                on = t;
                i += 2;
            }
            "PREFIX" => {
                let Some(n) = a.get(i + 1).and_then(|n| parse_int(n)).filter(|n| *n >= 0) else {
                    return err("Bad arguments for PREFIX: Value is not an integer");
                };
                let n = n as usize;
                if a.len() < i + 2 + n {
                    return err("Bad arguments for PREFIX: Expected an argument, but none provided");
                }
                prefixes = a[i + 2..i + 2 + n].to_vec();
                i += 2 + n;
            }
            "SCHEMA" => {
                i += 1;
                break;
            }
            other => return err(&format!("Unknown argument `{other}` (not modelled)")),
        }
    }
    let mut fields: Vec<Field> = Vec::new();
    while i < a.len() {
        let path = String::from_utf8_lossy(&a[i]).into_owned();
        i += 1;
        let mut alias = path.clone();
        if a.get(i).is_some_and(|w| up(w) == "AS") {
            let Some(al) = a.get(i + 1) else { return err("Missing attribute name after AS") };
            alias = String::from_utf8_lossy(al).into_owned();
            i += 2;
        }
        let Some(kind) = a.get(i).map(|k| up(k)) else {
            return err(&format!("Field `{path}` does not have a type"));
        };
        i += 1;
        let mut f = Field {
            path,
            alias,
            kind: kind.clone(),
            sortable: false,
            unf: false,
            case_sensitive: false,
            vector: Vec::new(),
        };
        match kind.as_str() {
            "TAG" | "NUMERIC" | "TEXT" | "GEO" => {}
            "VECTOR" => {
                let n = a.get(i + 1).and_then(|n| parse_int(n)).filter(|n| *n >= 0).unwrap_or(-1);
                if n < 0 || a.len() < i + 2 + n as usize {
                    return err("Bad arguments for vector similarity number of parameters");
                }
                f.vector = a[i..i + 2 + n as usize]
                    .iter()
                    .map(|w| String::from_utf8_lossy(w).into_owned())
                    .collect();
                i += 2 + n as usize;
            }
            other => return err(&format!("Invalid field type for field `{other}`")),
        }
        while let Some(w) = a.get(i) {
            match up(w).as_str() {
                "SORTABLE" if kind != "VECTOR" && kind != "GEO" => f.sortable = true,
                "UNF" if f.sortable => f.unf = true,
                "NOINDEX" => {}
                "CASESENSITIVE" if kind == "TAG" => f.case_sensitive = true,
                "SEPARATOR" if kind == "TAG" => i += 1,
                _ => break,
            }
            i += 1;
        }
        if fields.iter().any(|g| g.alias == f.alias) {
            return err(&format!("Duplicate field in schema - {}", f.alias));
        }
        fields.push(f);
    }
    if fields.is_empty() {
        return err("Fields arguments are missing");
    }
    let now = cx.now_us / 1000;
    let mut def = IndexDef { on, prefixes, fields, indexing_until_ms: 0 };
    if !documents(cx, &def).is_empty() {
        def.indexing_until_ms = now + INDEXING_MS;
    }
    cx.store.set_index(name.clone(), Some(def));
    ok()
}

/// The documents `def` indexes on this node: live JSON documents under its prefixes whose
/// indexed members have the field's type, in key order, with their documents.
fn documents(cx: &Ctx<'_>, def: &IndexDef) -> Vec<(Bytes, Json)> {
    if def.on != "JSON" {
        return Vec::new();
    }
    let now = cx.now_us / 1000;
    let keys: Vec<Bytes> = cx.store.keys().filter(|k| def.covers(k)).cloned().collect();
    keys.into_iter()
        .filter_map(|k| match cx.store.peek(&k, now) {
            Some(Entry { val: Val::Json(doc), .. }) if indexable(def, doc) => Some((k, doc.clone())),
            _ => None,
        })
        .collect()
}

fn member<'a>(f: &Field, doc: &'a Json) -> Option<&'a Json> {
    Path::parse(f.path.as_bytes()).ok()?.get(doc)
}

/// Whether every indexed member present has a type its field accepts.
fn indexable(def: &IndexDef, doc: &Json) -> bool {
    def.fields.iter().all(|f| match (f.kind.as_str(), member(f, doc)) {
        (_, None | Some(Json::Null)) => true,
        ("NUMERIC", Some(v)) => v.is_number(),
        ("TAG", Some(Json::Array(items))) => items.iter().all(|i| i.is_string() || i.is_boolean()),
        ("TAG", Some(v)) => v.is_string() || v.is_boolean(),
        ("TEXT" | "GEO", Some(v)) => v.is_string(),
        _ => true,
    })
}

fn info(cx: &Ctx<'_>, name: &Bytes) -> Value {
    let Some(def) = cx.store.index(name).cloned() else { return err(UNKNOWN_INDEX) };
    let resp3 = cx.resp3;
    let s = |x: &str| Value::Simple(Bytes::copy_from_slice(x.as_bytes()));
    let bulk = |x: &[u8]| Value::Bulk(Bytes::copy_from_slice(x));
    let obj = |pairs: Vec<(&str, Value)>| {
        if resp3 {
            Value::Map(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
        } else {
            Value::Array(pairs.into_iter().flat_map(|(k, v)| [s(k), v]).collect())
        }
    };
    let attrs = def
        .fields
        .iter()
        .map(|f| {
            let mut pairs = vec![
                ("identifier", bulk(f.path.as_bytes())),
                ("attribute", bulk(f.alias.as_bytes())),
                ("type", s(&f.kind)),
            ];
            if f.kind == "TAG" {
                pairs.push(("SEPARATOR", bulk(b"")));
            }
            if f.kind == "VECTOR" {
                let opt = |k: &str| {
                    f.vector
                        .iter()
                        .position(|w| w.eq_ignore_ascii_case(k))
                        .and_then(|i| f.vector.get(i + 1))
                        .cloned()
                };
                pairs.push(("algorithm", s(f.vector.first().map_or("", String::as_str))));
                pairs.push(("data_type", s(&opt("TYPE").unwrap_or_default())));
                pairs.push(("dim", Value::Int(opt("DIM").and_then(|d| d.parse().ok()).unwrap_or(0))));
                pairs.push(("distance_metric", s(&opt("DISTANCE_METRIC").unwrap_or_default())));
            }
            let mut flags = Vec::new();
            if f.sortable {
                flags.push(s("SORTABLE"));
            }
            if f.unf {
                flags.push(s("UNF"));
            }
            if f.case_sensitive {
                flags.push(s("CASESENSITIVE"));
            }
            if resp3 {
                pairs.push(("flags", Value::Array(flags)));
                obj(pairs)
            } else {
                let mut v: Vec<Value> = pairs.into_iter().flat_map(|(k, v)| [s(k), v]).collect();
                v.extend(flags);
                Value::Array(v)
            }
        })
        .collect();
    let docs = documents(cx, &def).len() as i64;
    let indexing = cx.now_us / 1000 < def.indexing_until_ms;
    obj(vec![
        ("index_name", bulk(name)),
        ("index_options", Value::Array(Vec::new())),
        (
            "index_definition",
            obj(vec![
                ("key_type", s(&def.on)),
                ("prefixes", Value::Array(def.prefixes.iter().map(|p| bulk(p)).collect())),
                ("default_score", s("1")),
            ]),
        ),
        ("attributes", Value::Array(attrs)),
        ("num_docs", Value::Int(docs)),
        ("indexing", Value::Int(i64::from(indexing))),
        ("percent_indexed", s(if indexing { "0.5" } else { "1" })),
    ])
}

fn drop_index(cx: &mut Ctx<'_>, a: &[Bytes]) -> Value {
    let Some(def) = cx.store.index(&a[0]).cloned() else { return err("Unknown Index name") };
    match a.get(1).map(|w| up(w)) {
        None => {}
        Some(w) if w == "DD" => {
            let now = cx.now_us / 1000;
            for (k, _) in documents(cx, &def) {
                cx.store.remove(&k, now);
            }
        }
        Some(_) => return err("ERR syntax error"),
    }
    cx.store.set_index(a[0].clone(), None);
    ok()
}

/// The options of one `FT.SEARCH`.
#[derive(Debug, Default)]
struct Options {
    nocontent: bool,
    scores: bool,
    sortkeys: bool,
    return_none: bool,
    sort: Option<(String, bool)>,
    offset: usize,
    limit: usize,
}

fn options(a: &[Bytes]) -> Result<Options, Value> {
    let mut o = Options { limit: 10, ..Options::default() };
    let mut i = 0;
    let num = |i: usize| a.get(i).and_then(|n| parse_int(n)).filter(|n| *n >= 0).map(|n| n as usize);
    while i < a.len() {
        let w = up(&a[i]);
        match w.as_str() {
            "NOCONTENT" => o.nocontent = true,
            "VERBATIM" | "NOSTOPWORDS" => {}
            "WITHSCORES" => o.scores = true,
            "WITHSORTKEYS" => o.sortkeys = true,
            "RETURN" => {
                let n = num(i + 1).ok_or_else(|| err("Bad arguments for RETURN: Value is not an integer"))?;
                if n != 0 {
                    return Err(err("RETURN with fields is not modelled"));
                }
                o.return_none = true;
                i += 1;
            }
            "SORTBY" => {
                let f = a.get(i + 1).ok_or_else(|| err("SORTBY: Expected an argument, but none provided"))?;
                let f = String::from_utf8_lossy(f.strip_prefix(b"@").unwrap_or(f)).into_owned();
                let mut desc = false;
                match a.get(i + 2).map(|d| up(d)).as_deref() {
                    Some("ASC") => i += 1,
                    Some("DESC") => {
                        desc = true;
                        i += 1;
                    }
                    _ => {}
                }
                o.sort = Some((f, desc));
                i += 1;
            }
            "LIMIT" => {
                let (Some(off), Some(n)) = (num(i + 1), num(i + 2)) else {
                    return Err(err("LIMIT: Value is not an integer"));
                };
                (o.offset, o.limit) = (off, n);
                i += 2;
            }
            "DIALECT" | "TIMEOUT" => {
                num(i + 1).ok_or_else(|| err(&format!("{w}: Value is not an integer")))?;
                i += 1;
            }
            _ => {
                return Err(err(&format!(
                    "Unknown argument `{}` at position {}",
                    String::from_utf8_lossy(&a[i]),
                    i + 2
                )));
            }
        }
        i += 1;
    }
    Ok(o)
}

fn search(cx: &Ctx<'_>, a: &[Bytes]) -> Value {
    let Some(def) = cx.store.index(&a[0]).cloned() else {
        return err(&format!("{}: no such index", String::from_utf8_lossy(&a[0])));
    };
    let o = match options(&a[2..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let query = String::from_utf8_lossy(&a[1]).into_owned();
    let q = match Parser::new(&query, &def).parse() {
        Ok(q) => q,
        Err(e) => return err(&e),
    };
    let sort_field = match &o.sort {
        Some((f, _)) => match def.field(f) {
            Some(field) if field.sortable => Some(field.clone()),
            Some(_) | None => return err(&format!("Property `{f}` not loaded nor in schema")),
        },
        None => None,
    };
    let mut hits: Vec<(Bytes, Json, Option<SortVal>)> = documents(cx, &def)
        .into_iter()
        .filter(|(_, doc)| q.matches(&def, doc))
        .map(|(k, doc)| {
            let sk = sort_field.as_ref().and_then(|f| sort_val(f, &doc));
            (k, doc, sk)
        })
        .collect();
    if let Some((_, desc)) = &o.sort {
        hits.sort_by(|x, y| {
            let by = match (&x.2, &y.2) {
                (Some(p), Some(q)) if *desc => q.cmp_with(p),
                (Some(p), Some(q)) => p.cmp_with(q),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            by.then_with(|| x.0.cmp(&y.0))
        });
    }
    let total = hits.len() as i64;
    let page: Vec<_> = hits.into_iter().skip(o.offset).take(o.limit).collect();
    let bulk = |b: Bytes| Value::Bulk(b);
    let content = !o.nocontent && !o.return_none;
    if cx.resp3 {
        let s = |x: &str| Value::Simple(Bytes::copy_from_slice(x.as_bytes()));
        let results = page
            .into_iter()
            .map(|(k, doc, sk)| {
                let mut m = vec![(s("id"), bulk(k))];
                if o.scores {
                    m.push((s("score"), Value::Double(1.0)));
                }
                if o.sortkeys {
                    m.push((s("sortkey"), sk.map_or(Value::Nil, |v| bulk(v.key()))));
                }
                if !o.nocontent {
                    let fields = if content {
                        vec![(bulk(Bytes::from_static(b"$")), bulk(Bytes::from(text(&doc))))]
                    } else {
                        Vec::new()
                    };
                    m.push((s("extra_attributes"), Value::Map(fields)));
                }
                m.push((s("values"), Value::Array(Vec::new())));
                Value::Map(m)
            })
            .collect();
        return Value::Map(vec![
            (s("attributes"), Value::Array(Vec::new())),
            (s("format"), s("STRING")),
            (s("results"), Value::Array(results)),
            (s("total_results"), Value::Int(total)),
            (s("warning"), Value::Array(Vec::new())),
        ]);
    }
    let mut out = vec![Value::Int(total)];
    for (k, doc, sk) in page {
        out.push(bulk(k));
        if o.scores {
            out.push(bulk(Bytes::from_static(b"1")));
        }
        if o.sortkeys {
            out.push(sk.map_or(Value::Nil, |v| bulk(v.key())));
        }
        if !o.nocontent {
            let fields = if content {
                vec![bulk(Bytes::from_static(b"$")), bulk(Bytes::from(text(&doc)))]
            } else {
                Vec::new()
            };
            out.push(Value::Array(fields));
        }
    }
    Value::Array(out)
}

/// A sort value.
#[derive(Debug, Clone)]
enum SortVal {
    Num(f64),
    Text(String),
}

impl SortVal {
    fn key(&self) -> Bytes {
        match self {
            Self::Num(n) => Bytes::from(format!("#{n}")),
            Self::Text(t) => Bytes::from(format!("${t}")),
        }
    }

    fn cmp_with(&self, o: &Self) -> std::cmp::Ordering {
        match (self, o) {
            (Self::Num(a), Self::Num(b)) => a.total_cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            (Self::Num(_), Self::Text(_)) => std::cmp::Ordering::Less,
            (Self::Text(_), Self::Num(_)) => std::cmp::Ordering::Greater,
        }
    }
}

fn sort_val(f: &Field, doc: &Json) -> Option<SortVal> {
    match member(f, doc)? {
        Json::Number(n) => n.as_f64().map(SortVal::Num),
        Json::String(s) => Some(SortVal::Text(if f.unf { s.clone() } else { s.to_lowercase() })),
        Json::Array(items) => items.first().and_then(Json::as_str).map(|s| SortVal::Text(s.to_lowercase())),
        Json::Bool(b) => Some(SortVal::Text(b.to_string())),
        _ => None,
    }
}

/// One end of a numeric range.
#[derive(Debug, Clone, Copy)]
struct End {
    v: f64,
    open: bool,
}

/// A parsed query.
#[derive(Debug, Clone)]
enum Q {
    All,
    And(Vec<Self>),
    Or(Vec<Self>),
    Not(Box<Self>),
    Tags { field: String, values: Vec<(String, bool)> },
    Range { field: String, lo: End, hi: End },
    Words { field: String, words: Vec<(String, bool)> },
}

impl Q {
    fn matches(&self, def: &IndexDef, doc: &Json) -> bool {
        match self {
            Self::All => true,
            Self::And(qs) => qs.iter().all(|q| q.matches(def, doc)),
            Self::Or(qs) => qs.iter().any(|q| q.matches(def, doc)),
            Self::Not(q) => !q.matches(def, doc),
            Self::Tags { field, values } => {
                let Some(f) = def.field(field) else { return false };
                let norm = |s: &str| if f.case_sensitive { s.to_owned() } else { s.to_lowercase() };
                let have: Vec<String> = match member(f, doc) {
                    Some(Json::String(s)) => vec![norm(s)],
                    Some(Json::Bool(b)) => vec![b.to_string()],
                    Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).map(norm).collect(),
                    _ => Vec::new(),
                };
                values.iter().any(|(v, prefix)| {
                    let v = norm(v);
                    have.iter().any(|h| if *prefix { h.starts_with(&v) } else { *h == v })
                })
            }
            Self::Range { field, lo, hi } => {
                let Some(n) = def.field(field).and_then(|f| member(f, doc)).and_then(Json::as_f64) else {
                    return false;
                };
                let above = if lo.open { n > lo.v } else { n >= lo.v };
                let below = if hi.open { n < hi.v } else { n <= hi.v };
                above && below
            }
            Self::Words { field, words } => {
                let Some(Json::String(s)) = def.field(field).and_then(|f| member(f, doc)) else {
                    return false;
                };
                let have: BTreeSet<String> = s
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                    .map(str::to_lowercase)
                    .collect();
                words.iter().all(|(w, prefix)| {
                    let w = w.to_lowercase();
                    if *prefix { have.iter().any(|h| h.starts_with(&w)) } else { have.contains(&w) }
                })
            }
        }
    }
}

/// A recursive-descent parser of the modelled query language.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    def: &'a IndexDef,
}

impl<'a> Parser<'a> {
    fn new(q: &'a str, def: &'a IndexDef) -> Self {
        Self { s: q.as_bytes(), i: 0, def }
    }

    fn syntax(&self) -> String {
        let near =
            String::from_utf8_lossy(&self.s[self.i.min(self.s.len())..]).chars().take(10).collect::<String>();
        format!("Syntax error at offset {} near {near}", self.i)
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn parse(mut self) -> Result<Q, String> {
        self.ws();
        if self.s.get(self.i) == Some(&b'*') {
            self.i += 1;
            self.ws();
            return if self.i == self.s.len() { Ok(Q::All) } else { Err(self.syntax()) };
        }
        let q = self.and()?;
        self.ws();
        if self.i != self.s.len() {
            return Err(self.syntax());
        }
        Ok(q)
    }

    /// Clauses until `|`, `)` or the end.
    fn and(&mut self) -> Result<Q, String> {
        let mut qs = Vec::new();
        loop {
            self.ws();
            match self.s.get(self.i) {
                None | Some(b'|' | b')') => break,
                _ => qs.push(self.clause()?),
            }
        }
        match qs.len() {
            0 => Err(self.syntax()),
            1 => Ok(qs.pop().unwrap_or(Q::All)),
            _ => Ok(Q::And(qs)),
        }
    }

    fn clause(&mut self) -> Result<Q, String> {
        match self.s.get(self.i) {
            Some(b'-') => {
                self.i += 1;
                Ok(Q::Not(Box::new(self.clause()?)))
            }
            Some(b'(') => {
                self.i += 1;
                let mut alts = vec![self.and()?];
                while self.s.get(self.i) == Some(&b'|') {
                    self.i += 1;
                    alts.push(self.and()?);
                }
                if self.s.get(self.i) != Some(&b')') {
                    return Err(self.syntax());
                }
                self.i += 1;
                Ok(if alts.len() == 1 { alts.pop().unwrap_or(Q::All) } else { Q::Or(alts) })
            }
            Some(b'@') => self.field_clause(),
            _ => Err(self.syntax()),
        }
    }

    fn field_clause(&mut self) -> Result<Q, String> {
        self.i += 1;
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if name.is_empty() || self.s.get(self.i) != Some(&b':') {
            return Err(self.syntax());
        }
        self.i += 1;
        let Some(f) = self.def.field(&name) else { return Err(format!("Unknown field `{name}`")) };
        let kind = f.kind.clone();
        match (self.s.get(self.i), kind.as_str()) {
            (Some(b'{'), "TAG") => {
                self.i += 1;
                let values = self.tags()?;
                Ok(Q::Tags { field: name, values })
            }
            (Some(b'['), "NUMERIC") => {
                self.i += 1;
                let lo = self.end()?;
                let hi = self.end()?;
                self.ws();
                if self.s.get(self.i) != Some(&b']') {
                    return Err(self.syntax());
                }
                self.i += 1;
                Ok(Q::Range { field: name, lo, hi })
            }
            (Some(b'('), "TEXT") => {
                self.i += 1;
                let mut words = Vec::new();
                loop {
                    self.ws();
                    let start = self.i;
                    while self
                        .s
                        .get(self.i)
                        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80)
                    {
                        self.i += 1;
                    }
                    if start == self.i {
                        break;
                    }
                    let w = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                    let prefix = self.s.get(self.i) == Some(&b'*');
                    if prefix {
                        self.i += 1;
                    }
                    words.push((w, prefix));
                }
                if words.is_empty() || self.s.get(self.i) != Some(&b')') {
                    return Err(self.syntax());
                }
                self.i += 1;
                Ok(Q::Words { field: name, words })
            }
            _ => Err(self.syntax()),
        }
    }

    /// TAG values up to `}`: `a|b\ c|pre*`.
    fn tags(&mut self) -> Result<Vec<(String, bool)>, String> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        let mut prefix = false;
        loop {
            match self.s.get(self.i) {
                None => return Err(self.syntax()),
                Some(b'\\') => {
                    let Some(c) = self.s.get(self.i + 1) else { return Err(self.syntax()) };
                    cur.push(*c);
                    self.i += 2;
                    continue;
                }
                Some(b'*') if matches!(self.s.get(self.i + 1), Some(b'|' | b'}')) => prefix = true,
                Some(c @ (b'|' | b'}')) => {
                    let v = String::from_utf8_lossy(&cur).trim().to_owned();
                    if v.is_empty() {
                        return Err(self.syntax());
                    }
                    out.push((v, std::mem::take(&mut prefix)));
                    cur.clear();
                    if *c == b'}' {
                        self.i += 1;
                        return Ok(out);
                    }
                }
                Some(c) => cur.push(*c),
            }
            self.i += 1;
        }
    }

    fn end(&mut self) -> Result<End, String> {
        self.ws();
        let open = self.s.get(self.i) == Some(&b'(');
        if open {
            self.i += 1;
        }
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| !b.is_ascii_whitespace() && *b != b']') {
            self.i += 1;
        }
        let w = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.syntax())?;
        let v = match w.to_ascii_lowercase().as_str() {
            "inf" | "+inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => w.parse::<f64>().ok().filter(|v| !v.is_nan()).ok_or_else(|| self.syntax())?,
        };
        Ok(End { v, open })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::exec as run_cmd;
    use crate::store::Store;

    struct T {
        store: Store,
        now_us: u64,
        resp3: bool,
    }

    impl T {
        fn new() -> Self {
            Self { store: Store::new(), now_us: 1_000_000_000, resp3: false }
        }
        fn run(&mut self, args: &[&str]) -> Value {
            let args: Vec<Bytes> = args.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
            run_cmd(&mut Ctx { store: &mut self.store, now_us: self.now_us, resp3: self.resp3 }, &args)
        }
        fn search(&mut self, q: &str, extra: &[&str]) -> Value {
            let mut a = vec!["FT.SEARCH", "idx", q, "NOCONTENT"];
            a.extend_from_slice(extra);
            self.run(&a)
        }
    }

    fn b(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn keys(v: &Value) -> (i64, Vec<String>) {
        let Value::Array(a) = v else { panic!("{v:?}") };
        let total = a[0].as_int().expect("total");
        let ks = a[1..]
            .iter()
            .filter_map(|x| x.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()))
            .filter(|k| k.starts_with("u:"))
            .collect();
        (total, ks)
    }

    fn err_text(v: &Value) -> String {
        match v {
            Value::Error(e) => String::from_utf8_lossy(e).into_owned(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn setup() -> T {
        let mut t = T::new();
        t.run(&["JSON.SET", "u:a", "$", r#"{"role":"Admin","age":30,"bio":"likes Rust"}"#]);
        t.run(&["JSON.SET", "u:b", "$", r#"{"role":"user","age":20}"#]);
        t.run(&["JSON.SET", "u:c", "$", r#"{"role":"a-b c","age":40.5}"#]);
        t.run(&["JSON.SET", "u:d", "$", r#"{"age":5}"#]);
        t.run(&["JSON.SET", "u:bad", "$", r#"{"role":"x","age":"old"}"#]);
        t.run(&["JSON.SET", "other:a", "$", r#"{"role":"admin","age":1}"#]);
        t.run(&["SET", "u:s", "string"]);
        let r = t.run(&[
            "FT.CREATE",
            "idx",
            "ON",
            "JSON",
            "PREFIX",
            "1",
            "u:",
            "SCHEMA",
            "$.role",
            "AS",
            "role",
            "TAG",
            "SORTABLE",
            "$.age",
            "AS",
            "age",
            "NUMERIC",
            "SORTABLE",
            "$.bio",
            "AS",
            "bio",
            "TEXT",
        ]);
        assert_eq!(r, ok());
        t
    }

    #[test]
    fn queries_over_the_nodes_documents_under_the_prefix() {
        let mut t = setup();
        assert_eq!(
            keys(&t.search("*", &[])),
            (4, vec!["u:a".into(), "u:b".into(), "u:c".into(), "u:d".into()])
        );
        assert_eq!(keys(&t.search("@role:{admin}", &[])), (1, vec!["u:a".into()]), "case-insensitive");
        assert_eq!(keys(&t.search(r"@role:{a\-b\ c}", &[])).1, ["u:c"]);
        assert_eq!(keys(&t.search("@role:{admin|user}", &[])).1, ["u:a", "u:b"]);
        assert_eq!(keys(&t.search("@role:{ad*}", &[])).1, ["u:a"]);
        assert_eq!(keys(&t.search("-@role:{admin}", &[])).1, ["u:b", "u:c", "u:d"]);
        assert_eq!(keys(&t.search("@age:[20 30]", &[])).1, ["u:a", "u:b"]);
        assert_eq!(keys(&t.search("@age:[(20 +inf]", &[])).1, ["u:a", "u:c"]);
        assert_eq!(keys(&t.search("@age:[-inf (20]", &[])).1, ["u:d"]);
        assert_eq!(keys(&t.search("(@age:[5 5]|@age:[20 20])", &[])).1, ["u:b", "u:d"]);
        assert_eq!(keys(&t.search("@role:{user} @age:[0 100]", &[])).1, ["u:b"]);
        assert_eq!(keys(&t.search("@bio:(rust)", &[])).1, ["u:a"]);
        assert_eq!(keys(&t.search("@bio:(lik*)", &[])).1, ["u:a"]);
        // Sorting, sort keys, limits.
        let r = t.search("*", &["WITHSORTKEYS", "SORTBY", "age", "DESC", "LIMIT", "0", "2", "DIALECT", "2"]);
        assert_eq!(r, Value::Array(vec![Value::Int(4), b("u:c"), b("#40.5"), b("u:a"), b("#30")]));
        let r = t.search("*", &["WITHSORTKEYS", "SORTBY", "role", "ASC"]);
        assert_eq!(
            r,
            Value::Array(vec![
                Value::Int(4),
                b("u:c"),
                b("$a-b c"),
                b("u:a"),
                b("$admin"),
                b("u:b"),
                b("$user"),
                b("u:d"),
                Value::Nil,
            ]),
            "lower-cased sort keys; the document without the field last"
        );
        assert_eq!(t.search("*", &["LIMIT", "0", "0"]), Value::Array(vec![Value::Int(4)]));
        // Content, and RESP3.
        let r = t.run(&["FT.SEARCH", "idx", "@role:{user}"]);
        assert_eq!(
            r,
            Value::Array(vec![
                Value::Int(1),
                b("u:b"),
                Value::Array(vec![b("$"), b(r#"{"age":20,"role":"user"}"#)])
            ])
        );
        t.resp3 = true;
        let r = t.search("@role:{user}", &["WITHSCORES"]);
        let Value::Map(m) = r else { panic!("{r:?}") };
        assert!(m.iter().any(
            |(k, v)| k.as_bytes().is_some_and(|k| k.as_ref() == b"total_results") && *v == Value::Int(1)
        ));
    }

    #[test]
    fn errors_info_and_drop() {
        let mut t = setup();
        assert!(err_text(&t.search("hello", &[])).starts_with("Syntax error"));
        assert!(err_text(&t.search("@role:{admin", &[])).starts_with("Syntax error"));
        assert!(
            err_text(&t.search("@age:{admin}", &[])).starts_with("Syntax error"),
            "TAG syntax on NUMERIC"
        );
        assert!(err_text(&t.search("@age:[1]", &[])).starts_with("Syntax error"));
        assert!(err_text(&t.search("@nope:{x}", &[])).starts_with("Unknown field"));
        assert!(err_text(&t.search("*", &["BOGUS"])).starts_with("Unknown argument"));
        assert!(err_text(&t.search("*", &["SORTBY", "bio"])).contains("not loaded nor in schema"));
        assert!(err_text(&t.run(&["FT.SEARCH", "nope", "*"])).contains("no such index"));
        assert_eq!(err_text(&t.run(&["FT.CREATE", "idx", "ON", "JSON", "SCHEMA", "$.x", "TAG"])), EXISTS);
        assert_eq!(err_text(&t.run(&["FT.INFO", "nope"])), UNKNOWN_INDEX);
        // FT.INFO as the cache reads it: the schema check passes, then indexing ends.
        let schema = slotcache_core::cache::search::SearchSchema::new()
            .tag("role", true)
            .numeric("age", true)
            .text("bio", false);
        for resp3 in [false, true] {
            t.resp3 = resp3;
            let info = t.run(&["FT.INFO", "idx"]);
            assert_eq!(schema.check_info(&info, b"u:"), Ok(()), "{info:?}");
            assert!(slotcache_core::cache::search::schema::is_indexing(&info), "fresh over documents");
            assert!(schema.check_info(&info, b"v:").is_err());
        }
        t.now_us += INDEXING_MS * 1000;
        assert!(!slotcache_core::cache::search::schema::is_indexing(&t.run(&["FT.INFO", "idx"])));
        // The cache's own FT.CREATE is accepted.
        let cmd = schema.create_command(b"idx2", b"u:").expect("valid");
        let mut args: Vec<Bytes> = cmd.args().to_vec();
        assert_eq!(run_cmd(&mut Ctx { store: &mut t.store, now_us: t.now_us, resp3: false }, &args), ok());
        args[1] = Bytes::from_static(b"idx");
        assert_eq!(
            err_text(&run_cmd(&mut Ctx { store: &mut t.store, now_us: t.now_us, resp3: false }, &args)),
            EXISTS
        );
        assert_eq!(t.run(&["FT.DROPINDEX", "idx"]), ok());
        assert!(err_text(&t.run(&["FT.DROPINDEX", "idx"])).to_lowercase().contains("unknown index"));
        assert_eq!(t.run(&["EXISTS", "u:a"]), Value::Int(1), "documents stay");
        assert_eq!(t.run(&["FT.DROPINDEX", "idx2", "DD"]), ok());
        assert_eq!(t.run(&["EXISTS", "u:a"]), Value::Int(0), "DD deletes them");
        assert!(err_text(&t.run(&["FT.CREATE", "x", "ON", "JSON", "SCHEMA"])).contains("missing"));
        assert!(
            err_text(&t.run(&["FT.CREATE", "x", "ON", "JSON", "SCHEMA", "$.a", "AS", "a", "BLOB"]))
                .contains("Invalid field type")
        );
        assert!(err_text(&t.run(&["FT.CREATE", "x", "ON", "JSON", "PREFIX", "2", "a"])).contains("PREFIX"));
    }
}
