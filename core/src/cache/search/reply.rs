//! Reading one shard's `FT.SEARCH` reply (RESP2 flat array or RESP3 map) and merging every
//! shard's page into one cluster-wide page.

use core::cmp::Ordering;

use bytes::Bytes;

use crate::resp::Value;

use super::SearchError;
use super::query::SortOrder;
use super::schema::{abbrev, items, lookup, pairs, text};

/// A value results are sorted by, as the shard reported it (`WITHSORTKEYS`).
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    /// A number (`#12`).
    Number(f64),
    /// A string (`$abc`), compared byte by byte.
    Text(Bytes),
}

/// One result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The full data key.
    pub key: Bytes,
    /// The relevance score (`WITHSCORES`).
    pub score: Option<f64>,
    /// The sort key (`WITHSORTKEYS`); `None` when the document lacks the field.
    pub sort_key: Option<SortKey>,
}

/// One shard's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardPage {
    /// Matches on the shard.
    pub total: u64,
    /// Its first results, in its order.
    pub hits: Vec<Hit>,
}

fn bytes(v: &Value) -> Option<Bytes> {
    match v {
        Value::Bulk(b) | Value::Simple(b) => Some(b.clone()),
        Value::Verbatim { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Double(d) => Some(*d),
        #[allow(clippy::cast_precision_loss)]
        Value::Int(i) => Some(*i as f64),
        other => text(other).and_then(|t| t.parse().ok()),
    }
}

fn sort_key(v: &Value) -> Option<SortKey> {
    let b = bytes(v)?;
    match b.first() {
        Some(b'#') => std::str::from_utf8(&b[1..]).ok()?.parse().ok().map(SortKey::Number),
        Some(b'$') => Some(SortKey::Text(b.slice(1..))),
        _ => None,
    }
}

fn err(v: &Value) -> SearchError {
    SearchError::Reply(abbrev(v))
}

/// Reads an `FT.SEARCH` reply sent with these options.
///
/// # Errors
/// [`SearchError::Reply`] for any other shape (never a silently shorter page).
pub fn parse_search(v: &Value, with_scores: bool, with_sort_keys: bool) -> Result<ShardPage, SearchError> {
    match v {
        Value::Map(_) => {
            let top = pairs(v).ok_or_else(|| err(v))?;
            let total = lookup(&top, "total_results").and_then(Value::as_int).ok_or_else(|| err(v))?;
            let results = lookup(&top, "results").and_then(items).ok_or_else(|| err(v))?;
            let mut hits = Vec::with_capacity(results.len());
            for r in results {
                let p = pairs(r).ok_or_else(|| err(r))?;
                let key = lookup(&p, "id").and_then(bytes).ok_or_else(|| err(r))?;
                let score = lookup(&p, "score").and_then(float);
                let sort_key = lookup(&p, "sortkey").and_then(sort_key);
                hits.push(Hit { key, score, sort_key });
            }
            Ok(ShardPage { total: u64::try_from(total).unwrap_or(0), hits })
        }
        Value::Array(a) => {
            let (first, rest) = a.split_first().ok_or_else(|| err(v))?;
            let total = first.as_int().ok_or_else(|| err(v))?;
            let width = 1 + usize::from(with_scores) + usize::from(with_sort_keys);
            if rest.len() % width != 0 {
                return Err(err(v));
            }
            let mut hits = Vec::with_capacity(rest.len() / width);
            for chunk in rest.chunks(width) {
                let key = bytes(&chunk[0]).ok_or_else(|| err(&chunk[0]))?;
                let score = if with_scores { chunk.get(1).and_then(float) } else { None };
                let sk = if with_sort_keys { chunk.last().and_then(sort_key) } else { None };
                hits.push(Hit { key, score, sort_key: sk });
            }
            Ok(ShardPage { total: u64::try_from(total).unwrap_or(0), hits })
        }
        Value::Error(e) => Err(SearchError::Server(String::from_utf8_lossy(e).into_owned())),
        other => Err(err(other)),
    }
}

fn cmp_keys(a: Option<&SortKey>, b: Option<&SortKey>, order: SortOrder) -> Ordering {
    let o = match (a, b) {
        (Some(SortKey::Number(x)), Some(SortKey::Number(y))) => x.total_cmp(y),
        (Some(SortKey::Text(x)), Some(SortKey::Text(y))) => x.cmp(y),
        (Some(SortKey::Number(_)), Some(SortKey::Text(_))) => Ordering::Less,
        (Some(SortKey::Text(_)), Some(SortKey::Number(_))) => Ordering::Greater,
        // Documents without the field come last in either direction.
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Greater,
        (Some(_), None) => return Ordering::Less,
    };
    if order == SortOrder::Desc { o.reverse() } else { o }
}

/// Merges shard pages (in a stable shard order) into the cluster-wide page `offset..offset+limit`.
///
/// Each shard must have been asked for its first `offset + limit` results. The order is: the
/// sort key when sorting, else the score (highest first) when scored, then the shard's position
/// in `pages`, then the shard's own order: a total order consistent with every shard's, so
/// pages never overlap or skip. Returns the summed total and the page.
///
/// **A key listed by several pages counts once**, at its first place in that order. The
/// search asks each primary once, so this happens only while one document is on two primaries
/// at once (a migration in flight, a demoted primary that does not know it yet); the page then
/// still lists each key once. Paging stays exact: each page lists a key at most once, so a key
/// whose first place is after the first `offset + limit` distinct keys is preceded, in its own
/// page alone, by `offset + limit` keys that all come before it; the pages' first
/// `offset + limit` results therefore hold the cluster's first `offset + limit` distinct keys,
/// whatever the offset. The total is the sum of the pages' totals (such a key counts in each).
#[must_use]
pub fn merge(
    pages: Vec<ShardPage>,
    sort: Option<SortOrder>,
    by_score: bool,
    offset: usize,
    limit: usize,
) -> (u64, Vec<Hit>) {
    merge_with(pages, sort, by_score, offset, limit, true)
}

/// [`merge`], keeping a key as often as the pages list it when `distinct` is false (the old
/// merge, for a test-only bug variant).
pub(crate) fn merge_with(
    pages: Vec<ShardPage>,
    sort: Option<SortOrder>,
    by_score: bool,
    offset: usize,
    limit: usize,
    distinct: bool,
) -> (u64, Vec<Hit>) {
    let total = pages.iter().map(|p| p.total).fold(0u64, u64::saturating_add);
    let mut all: Vec<(usize, usize, Hit)> = pages
        .into_iter()
        .enumerate()
        .flat_map(|(s, p)| p.hits.into_iter().enumerate().map(move |(r, h)| (s, r, h)))
        .collect();
    all.sort_by(|(sa, ra, a), (sb, rb, b)| {
        let first = match sort {
            Some(order) => cmp_keys(a.sort_key.as_ref(), b.sort_key.as_ref(), order),
            None if by_score => b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)),
            None => Ordering::Equal,
        };
        first.then(sa.cmp(sb)).then(ra.cmp(rb))
    });
    let mut seen = std::collections::HashSet::new();
    let hits = all.into_iter().map(|(_, _, h)| h).filter(|h| !distinct || seen.insert(h.key.clone()));
    (total, hits.skip(offset).take(limit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn resp2_and_resp3_replies_are_read() {
        let r2 = Value::Array(vec![Value::Int(2), b("k1"), b("#7"), b("k2"), Value::Nil]);
        let p = parse_search(&r2, false, true).unwrap();
        assert_eq!(p.total, 2);
        assert_eq!(p.hits[0].sort_key, Some(SortKey::Number(7.0)));
        assert_eq!(p.hits[1].sort_key, None);
        let r3 = Value::Map(vec![
            (b("attributes"), Value::Array(vec![])),
            (b("total_results"), Value::Int(1)),
            (
                b("results"),
                Value::Array(vec![Value::Map(vec![(b("id"), b("k")), (b("score"), Value::Double(1.5))])]),
            ),
        ]);
        let p = parse_search(&r3, true, false).unwrap();
        assert_eq!((p.total, p.hits[0].score), (1, Some(1.5)));
        assert!(parse_search(&Value::Array(vec![Value::Int(1), b("k")]), true, false).is_err());
        assert!(parse_search(&Value::Int(3), false, false).is_err());
        assert!(parse_search(&Value::Array(vec![]), false, false).is_err());
    }

    fn page(total: u64, keys: &[(&str, f64)]) -> ShardPage {
        ShardPage {
            total,
            hits: keys
                .iter()
                .map(|(k, n)| Hit {
                    key: Bytes::copy_from_slice(k.as_bytes()),
                    score: None,
                    sort_key: Some(SortKey::Number(*n)),
                })
                .collect(),
        }
    }

    #[test]
    fn merge_sorts_across_shards_and_paginates_exactly() {
        let pages =
            || vec![page(3, &[("a1", 1.0), ("a5", 5.0), ("a9", 9.0)]), page(2, &[("b2", 2.0), ("b3", 3.0)])];
        let keys = |h: Vec<Hit>| {
            h.into_iter().map(|h| String::from_utf8_lossy(&h.key).into_owned()).collect::<Vec<_>>()
        };
        let (t, h) = merge(pages(), Some(SortOrder::Asc), false, 1, 3);
        assert_eq!(t, 5);
        assert_eq!(keys(h), ["b2", "b3", "a5"]);
        let (_, h) = merge(pages(), Some(SortOrder::Desc), false, 0, 2);
        assert_eq!(keys(h), ["a9", "a5"]);
        let (_, h) = merge(pages(), None, false, 2, 10);
        assert_eq!(keys(h), ["a9", "b2", "b3"]);
    }

    /// A key two pages list counts once, at its first place; pages over the distinct keys
    /// neither overlap nor skip.
    #[test]
    fn a_key_listed_twice_counts_once() {
        let keys = |h: Vec<Hit>| {
            h.into_iter().map(|h| String::from_utf8_lossy(&h.key).into_owned()).collect::<Vec<_>>()
        };
        // "k" is on both primaries (a migration in flight), once with another sort key.
        let pages = || {
            vec![
                page(3, &[("a1", 1.0), ("k", 2.0), ("a4", 4.0)]),
                page(3, &[("b1", 1.5), ("k", 3.0), ("b5", 5.0)]),
            ]
        };
        let (t, h) = merge(pages(), Some(SortOrder::Asc), false, 0, 10);
        assert_eq!(t, 6);
        assert_eq!(keys(h), ["a1", "b1", "k", "a4", "b5"]);
        let mut paged = Vec::new();
        for offset in (0..5).step_by(2) {
            // Each primary asked for its first offset + 2 results.
            let cut = |p: ShardPage| ShardPage {
                total: p.total,
                hits: p.hits.into_iter().take(offset + 2).collect(),
            };
            let (_, h) =
                merge(pages().into_iter().map(cut).collect(), Some(SortOrder::Asc), false, offset, 2);
            paged.extend(keys(h));
        }
        assert_eq!(paged, ["a1", "b1", "k", "a4", "b5"]);
        let (_, h) = merge_with(pages(), Some(SortOrder::Asc), false, 0, 10, false);
        assert_eq!(keys(h), ["a1", "b1", "k", "k", "a4", "b5"], "the old merge");
    }
}
