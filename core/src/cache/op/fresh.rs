//! Leaving out entries a tag invalidation made stale: one round reads the current token of
//! every distinct tag the entries carry (none when no entry is tagged), and an entry is fresh
//! when each of its tags still has the token it was written with.

use std::collections::HashMap;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan::{self, Tags};
use crate::client::RequestError;
use crate::keys::Namespace;

use super::exchange::{Command, Exchange, Results};

/// The token check of some entries: the tags whose tokens are read, sorted.
#[derive(Debug)]
pub struct Freshness {
    tags: Vec<Bytes>,
}

impl Freshness {
    /// The check of `entries`, and the round that reads the tokens; `None` when no entry is
    /// tagged (every entry is fresh).
    ///
    /// # Errors
    /// A tag that cannot be a key.
    pub fn round(ns: &Namespace, entries: &[Option<Entry>]) -> Result<Option<(Self, Exchange)>, CacheError> {
        let mut tags: Vec<Bytes> =
            entries.iter().flatten().flat_map(|e| e.tags.iter().map(|t| t.tag.clone())).collect();
        if tags.is_empty() {
            return Ok(None);
        }
        tags.sort();
        tags.dedup();
        let plans = Tags::new(ns);
        let cmds =
            tags.iter().map(|t| plans.read_token(t).map(Command::from)).collect::<Result<Vec<_>, _>>()?;
        Ok(Some((Self { tags }, Exchange::new(cmds))))
    }

    /// The fresh entries (stale ones become `None`) and how many were stale.
    ///
    /// # Errors
    /// A token read failed or had an unexpected reply.
    pub fn keep(
        self,
        entries: Vec<Option<Entry>>,
        results: Results,
    ) -> Result<(Vec<Option<Entry>>, u64), CacheError> {
        let mut current = HashMap::with_capacity(self.tags.len());
        let mut results = results.into_iter();
        for tag in self.tags {
            let r = results.next().unwrap_or(Err(RequestError::Closed)).map_err(CacheError::Request)?;
            current.insert(tag, plan::read_current_token(r)?);
        }
        let mut stale = 0;
        let kept = entries
            .into_iter()
            .map(|e| {
                e.filter(|e| {
                    let fresh = plan::is_fresh(e, &current);
                    stale += u64::from(!fresh);
                    fresh
                })
            })
            .collect();
        Ok((kept, stale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::envelope::TagToken;
    use crate::resp::Value;

    fn tagged(tags: &[(&str, &str)]) -> Option<Entry> {
        let tags = tags
            .iter()
            .map(|(t, k)| TagToken {
                tag: Bytes::copy_from_slice(t.as_bytes()),
                token: Bytes::copy_from_slice(k.as_bytes()),
            })
            .collect();
        Some(Entry { tags, ..Entry::default() })
    }

    fn token(t: &str) -> Result<Value, RequestError> {
        Ok(Value::Array(vec![Value::Bulk(Bytes::from(format!("\0{t}")))]))
    }

    #[test]
    fn entries_keep_their_tags_tokens_or_are_stale() {
        let ns = Namespace::new("ns").expect("valid");
        assert!(Freshness::round(&ns, &[None, Some(Entry::default())]).expect("round").is_none());
        let entries =
            vec![tagged(&[("b", "1"), ("a", "1")]), None, tagged(&[("a", "1")]), tagged(&[("b", "2")])];
        let (check, _round) = Freshness::round(&ns, &entries).expect("round").expect("tagged");
        assert_eq!(check.tags, [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        // a still has token 1; b moved on to 2.
        let (kept, stale) = check.keep(entries, vec![token("1"), token("2")]).expect("kept");
        assert_eq!(kept.iter().map(Option::is_some).collect::<Vec<_>>(), [false, false, true, true]);
        assert_eq!(stale, 1);
        let (check, _) = Freshness::round(&ns, &[tagged(&[("a", "1")])]).expect("round").expect("tagged");
        assert!(check.keep(vec![tagged(&[("a", "1")])], vec![Err(RequestError::Closed)]).is_err());
    }
}
