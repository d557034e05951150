//! The loads of a typed namespace: the load machines ([`Load`], [`BulkLoad`], [`BulkRefresh`])
//! wrapped so that their calls hand the caller's loader its own keys and take its own values
//! back. Encoding what the loader returned (with the context's wall-clock time and
//! randomness), decoding what was read, and counting are done here by the namespace's
//! [`Typed`] side; the driver only runs the loader (and times it).

use core::time::Duration;
use std::collections::HashMap;
use std::hash::Hash;

use crate::keys::EncodedKey;

use super::error::CacheError;
use super::op::bulk_load::{BulkLoad, LoadMisses};
use super::op::bulk_refresh::BulkRefresh;
use super::op::load::{CallLoader, Load, LoadConfig, LoadKind};
use super::op::machine::{Ctx, Input, Machine, Step};
use super::stats::Read;
use super::typed::Typed;

/// What a loader returns for the keys it was given: values, for those keys or others.
pub type LoadedValues<K, V> = Result<Vec<(K, V)>, CacheError>;

/// The load of one key (`get` on a miss, `refresh`): calls the loader with the key, and ends
/// with the value (the loader's, or one stored meanwhile).
pub struct TypedLoad<'t, K, V> {
    typed: &'t Typed<K, V>,
    key: K,
    load: Load<V>,
}

impl<K, V> core::fmt::Debug for TypedLoad<'_, K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TypedLoad").field("load", &self.load).finish_non_exhaustive()
    }
}

impl<'t, K, V: 'static> TypedLoad<'t, K, V> {
    /// Loads `key` (whose data key is `data_key`) of `typed`'s namespace, for a `kind` load;
    /// each read, store and release has `op_timeout`, and the namespace's `cluster_lock`
    /// option says whether to take the cluster lock.
    #[must_use]
    pub fn new(
        typed: &'t Typed<K, V>,
        key: K,
        data_key: EncodedKey,
        kind: LoadKind,
        op_timeout: Duration,
    ) -> Self {
        let config = LoadConfig { op_timeout, lock_hold: typed.options().cluster_lock };
        Self { typed, key, load: Load::new(typed.scope(), data_key, kind, config) }
    }
}

impl<K: Clone, V: 'static> Machine for TypedLoad<'_, K, V> {
    type Output = V;
    type Call = K;
    type Answer = Result<V, CacheError>;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<V, K> {
        let (typed, key) = (self.typed, &self.key);
        let input =
            input.map_answer(|loaded| typed.answer(key, loaded, cx.wall_ms, &mut |b| cx.entropy.fill(b)));
        self.load.resume(cx, input).map(|CallLoader| key.clone(), |outcome| typed.loaded(outcome))
    }
}

/// [`TypedLoad`] that also reports the tags the loaded value kept (a reload's: the entry's tags
/// when it read them; none for a load on a miss or a value found stored). Test-only: the
/// real-cluster history checker must know which tags a `refresh` stored.
#[doc(hidden)]
pub struct TypedLoadReportingTags<'t, K, V> {
    inner: TypedLoad<'t, K, V>,
}

impl<K, V> core::fmt::Debug for TypedLoadReportingTags<'_, K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'t, K, V: 'static> TypedLoadReportingTags<'t, K, V> {
    /// As [`TypedLoad::new`].
    #[must_use]
    pub fn new(
        typed: &'t Typed<K, V>,
        key: K,
        data_key: EncodedKey,
        kind: LoadKind,
        op_timeout: Duration,
    ) -> Self {
        Self { inner: TypedLoad::new(typed, key, data_key, kind, op_timeout) }
    }
}

impl<K: Clone, V: 'static> Machine for TypedLoadReportingTags<'_, K, V> {
    type Output = (V, Vec<bytes::Bytes>);
    type Call = K;
    type Answer = Result<V, CacheError>;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<Self::Output, K> {
        let (typed, key) = (self.inner.typed, &self.inner.key);
        let input =
            input.map_answer(|loaded| typed.answer(key, loaded, cx.wall_ms, &mut |b| cx.entropy.fill(b)));
        self.inner.load.resume(cx, input).map(
            |CallLoader| key.clone(),
            |mut outcome| {
                let kept = core::mem::take(&mut outcome.kept_tags);
                typed.loaded(outcome).map(|v| (v, kept))
            },
        )
    }
}

/// `bulk_get_with`: reads the keys, calls the loader with the misses, and ends with every
/// value found or loaded.
pub struct TypedBulkLoad<'t, K, V> {
    typed: &'t Typed<K, V>,
    keys: &'t [K],
    found: HashMap<K, V>,
    load: BulkLoad<Vec<(K, V)>>,
}

impl<K, V> core::fmt::Debug for TypedBulkLoad<'_, K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TypedBulkLoad").field("load", &self.load).finish_non_exhaustive()
    }
}

impl<'t, K, V: 'static> TypedBulkLoad<'t, K, V> {
    /// Reads `keys` of `typed`'s namespace and loads the misses; the read and the write each
    /// have `budget`.
    ///
    /// # Errors
    /// A key the encoder refuses.
    pub fn new(typed: &'t Typed<K, V>, keys: &'t [K], budget: Duration) -> Result<Self, CacheError> {
        let load = BulkLoad::new(typed.scope(), typed.keys(keys)?, budget);
        Ok(Self { typed, keys, found: HashMap::with_capacity(keys.len()), load })
    }
}

impl<K: Clone + Eq + Hash, V: 'static> Machine for TypedBulkLoad<'_, K, V> {
    type Output = HashMap<K, V>;
    type Call = Vec<K>;
    type Answer = LoadedValues<K, V>;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<HashMap<K, V>, Vec<K>> {
        let typed = self.typed;
        let input = input.map_answer(|loaded| {
            loaded.map(|loaded| {
                let items = typed.items(&loaded, cx.wall_ms, &mut |b| cx.entropy.fill(b));
                (loaded, items)
            })
        });
        match self.load.resume(cx, input) {
            Step::Call(LoadMisses { hits }) => {
                match typed.take_hits(Read::BulkGetWith, self.keys, hits, &mut self.found) {
                    Ok(misses) => Step::Call(misses),
                    Err(e) => Step::Done(Err(e)),
                }
            }
            Step::Done(outcome) => Step::Done(outcome.and_then(|outcome| {
                typed.bulk_loaded(self.keys, outcome, &mut self.found)?;
                Ok(core::mem::take(&mut self.found))
            })),
            Step::Send(requests) => Step::Send(requests),
            Step::Sleep(at) => Step::Sleep(at),
        }
    }
}

/// `bulk_refresh`: reads the entries' tags, calls the loader with the keys, stores what it
/// returns, and ends with how many values were stored.
pub struct TypedBulkRefresh<'t, K, V> {
    typed: &'t Typed<K, V>,
    keys: Option<Vec<K>>,
    refresh: BulkRefresh<usize>,
}

impl<K, V> core::fmt::Debug for TypedBulkRefresh<'_, K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TypedBulkRefresh").field("refresh", &self.refresh).finish_non_exhaustive()
    }
}

impl<'t, K, V: 'static> TypedBulkRefresh<'t, K, V> {
    /// Reloads `keys` of `typed`'s namespace; the read and the write each have `budget`.
    ///
    /// # Errors
    /// A key the encoder refuses.
    pub fn new(typed: &'t Typed<K, V>, keys: Vec<K>, budget: Duration) -> Result<Self, CacheError> {
        let refresh = BulkRefresh::new(typed.scope(), typed.keys(&keys)?, budget);
        Ok(Self { typed, keys: Some(keys), refresh })
    }
}

impl<K, V: 'static> Machine for TypedBulkRefresh<'_, K, V> {
    type Output = usize;
    type Call = Vec<K>;
    type Answer = LoadedValues<K, V>;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<usize, Vec<K>> {
        let typed = self.typed;
        let input = input.map_answer(|loaded| {
            let loaded = loaded?;
            Ok((loaded.len(), typed.items(&loaded, cx.wall_ms, &mut |b| cx.entropy.fill(b))?))
        });
        let keys = &mut self.keys;
        self.refresh.resume(cx, input).map(
            |CallLoader| keys.take().unwrap_or_default(),
            |refreshed| {
                typed.counters().stale(refreshed.stale);
                // Values whose tag was invalidated while they loaded were not stored.
                Ok(refreshed.loaded.saturating_sub(refreshed.superseded))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::config::ProviderConfig;
    use crate::cache::op::testing::{Hand, ok, pipeline, server_error, stored, words};
    use crate::cache::options::NamespaceOptions;
    use crate::cache::stats::CacheStats;
    use crate::keys::Namespace;
    use crate::resp::Value;

    fn typed() -> Typed<String, String> {
        let config = ProviderConfig::<()>::new(["127.0.0.1:7000"]);
        Typed::new(&config, Namespace::new("ns").expect("valid"), NamespaceOptions::default()).expect("valid")
    }

    /// A stored JSON string.
    fn hit(s: &str) -> Result<Value, crate::client::RequestError> {
        Ok(Value::Bulk(stored(format!("{s:?}").as_bytes(), &[])))
    }

    fn done<T: core::fmt::Debug, C: core::fmt::Debug>(step: Step<T, C>) -> Result<T, CacheError> {
        match step {
            Step::Done(r) => r,
            other => panic!("expected the outcome, got {other:?}"),
        }
    }

    const BUDGET: Duration = Duration::from_secs(1);

    /// A miss calls the loader with the caller's key; its value is encoded, stored and returned.
    #[test]
    fn a_load_calls_with_the_key_and_returns_the_value() {
        let t = typed();
        let fk = t.key(&"k".to_string()).expect("encodes");
        let mut m = Hand::new(TypedLoad::new(&t, "k".to_string(), fk, LoadKind::Miss, BUDGET));
        let _check = pipeline(&m.start());
        let call = m.reply(vec![Ok(Value::Nil)]);
        assert!(matches!(&call, Step::Call(k) if k == "k"), "{call:?}");
        let store = pipeline(&m.resume(Input::Answer(Ok("v".to_string()))));
        assert_eq!(words(&store[0])[..2], ["SET", "ns:k"]);
        assert_eq!(done(m.reply(vec![Ok(ok())])), Ok("v".to_string()));
    }

    /// A value stored meanwhile is decoded; the loader's error is the outcome.
    #[test]
    fn a_load_decodes_what_it_found_and_keeps_the_loader_s_error() {
        let t = typed();
        let fk = || t.key(&"k".to_string()).expect("encodes");
        let mut m = Hand::new(TypedLoad::new(&t, "k".to_string(), fk(), LoadKind::Miss, BUDGET));
        let _check = pipeline(&m.start());
        assert_eq!(done(m.reply(vec![hit("there")])), Ok("there".to_string()));

        let mut m = Hand::new(TypedLoad::new(&t, "k".to_string(), fk(), LoadKind::Miss, BUDGET));
        let _check = pipeline(&m.start());
        let _call = m.reply(vec![Ok(Value::Nil)]);
        assert_eq!(done(m.resume(Input::Answer(Err(CacheError::NotFound)))), Err(CacheError::NotFound));
    }

    /// The hits are decoded, the misses go to the loader, and everything comes back together
    /// (a value for a key not asked for too); reads are counted.
    #[test]
    fn a_bulk_load_returns_hits_and_loaded_values() {
        let t = typed();
        let keys = vec!["a".to_string(), "b".to_string()];
        let mut m = Hand::new(TypedBulkLoad::new(&t, &keys, BUDGET).expect("encodes"));
        let _read = pipeline(&m.start());
        let call = m.reply(vec![hit("A"), Ok(Value::Nil)]);
        assert!(matches!(&call, Step::Call(misses) if misses == &["b".to_string()]), "{call:?}");
        let loaded = vec![("b".to_string(), "B".to_string()), ("c".to_string(), "C".to_string())];
        let store = pipeline(&m.resume(Input::Answer(Ok(loaded))));
        assert_eq!(store.len(), 2);
        let found = done(m.reply(vec![Ok(ok()), Ok(ok())])).expect("found");
        let mut found: Vec<_> = found.into_iter().collect();
        found.sort();
        assert_eq!(found, [("a", "A"), ("b", "B"), ("c", "C")].map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!((t.counters().snapshot().hits, t.counters().snapshot().misses), (1, 1));
        assert_eq!(t.counters().reads(Read::BulkGetWith), (1, 1));
    }

    /// No key: a bulk read, a bulk write and a bulk load are over at once with nothing sent
    /// (so the async layer runs `bulk_get`, `bulk_set` and `bulk_get_with` of no key as they
    /// are), and nothing is counted.
    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn no_key_sends_nothing() {
        use crate::cache::op::deadline::Deadline;
        use crate::cache::op::read::{ReadEntries, Reads};
        use crate::cache::op::write::WriteEntries;
        let t = typed();
        let d = || Deadline::new(std::time::Instant::now(), "bulk", BUDGET);
        let read = Hand::new(ReadEntries::machine(t.scope(), Vec::new(), d())).start();
        assert!(
            matches!(read, Step::Done(Ok(Reads { ref found, stale: 0 })) if found.is_empty()),
            "{read:?}"
        );
        let write = Hand::new(WriteEntries::machine(t.scope(), Vec::new(), d()).expect("fits")).start();
        assert!(matches!(write, Step::Done(Ok(_))), "{write:?}");
        let load = Hand::new(TypedBulkLoad::new(&t, &[], BUDGET).expect("no key")).start();
        assert!(matches!(load, Step::Done(Ok(ref found)) if found.is_empty()), "{load:?}");
        assert_eq!(t.counters().snapshot(), CacheStats::default());
    }

    /// Every key hit: no call; a hit that does not decode fails the call before any load.
    #[test]
    fn a_bulk_load_of_hits_calls_nothing_and_a_bad_hit_fails_it() {
        let t = typed();
        let keys = vec!["a".to_string()];
        let mut m = Hand::new(TypedBulkLoad::new(&t, &keys, BUDGET).expect("encodes"));
        let _read = pipeline(&m.start());
        assert_eq!(done(m.reply(vec![hit("A")])).expect("found").get("a").map(String::as_str), Some("A"));

        let keys = vec!["a".to_string(), "b".to_string()];
        let mut m = Hand::new(TypedBulkLoad::new(&t, &keys, BUDGET).expect("encodes"));
        let _read = pipeline(&m.start());
        let bad = Ok(Value::Bulk(stored(b"not json", &[])));
        assert!(matches!(done(m.reply(vec![bad, Ok(Value::Nil)])), Err(CacheError::Codec(_))));
    }

    /// The loader gets the keys; what it returns is stored and counted.
    #[test]
    fn a_bulk_refresh_calls_with_the_keys_and_counts_what_it_stored() {
        let t = typed();
        let keys = vec!["a".to_string(), "b".to_string()];
        let mut m = Hand::new(TypedBulkRefresh::new(&t, keys.clone(), BUDGET).expect("encodes"));
        let _read = pipeline(&m.start());
        let call = m.reply(vec![hit("A"), Ok(Value::Nil)]);
        assert!(matches!(&call, Step::Call(k) if k == &keys), "{call:?}");
        let loaded = vec![("a".to_string(), "A2".to_string())];
        let store = pipeline(&m.resume(Input::Answer(Ok(loaded))));
        assert_eq!(words(&store[0])[..2], ["SET", "ns:a"]);
        assert_eq!(done(m.reply(vec![Ok(ok())])), Ok(1));

        let mut m = Hand::new(TypedBulkRefresh::new(&t, keys, BUDGET).expect("encodes"));
        let _read = pipeline(&m.start());
        let _call = m.reply(vec![Ok(Value::Nil), Ok(Value::Nil)]);
        let failed = m.resume(Input::Answer(Err(CacheError::Request(server_error("ERR db")))));
        assert!(matches!(done(failed), Err(CacheError::Request(_))));
    }
}
