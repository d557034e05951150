//! The workloads: what one operation of each is, over a shared key space.
//!
//! Adding a workload is one function here (its operation, written against [`BenchClient`]) plus
//! its variant in [`Workload`] and a line in each of the small matches below. A workload that
//! needs an operation only some clients have (the cache layer's tagged SET and
//! `invalidate_by_tags`, say) adds that method to [`BenchClient`] with a default that fails, and
//! says which clients have it in [`Workload::supported_by`]; the runner skips the others.

use bytes::Bytes;

use crate::clients::{BenchClient, ClientKind};

/// Length of every key: `key:` and 12 digits, the shape `redis-benchmark -r` uses.
pub(crate) const KEY_LEN: usize = 16;
/// Length of every value.
pub(crate) const VALUE_LEN: usize = 64;
/// Keys per `MGET`.
pub(crate) const MGET_KEYS: usize = 100;
/// Tags the tagged SET draws its two from.
pub(crate) const TAGS: usize = 1_000;
/// Entries each invalidated tag holds.
pub(crate) const INVALIDATE_ENTRIES: usize = 4;
/// Tags each task of the invalidation workload cycles through (its own: no other task's writes
/// change what it removes).
const TASK_TAGS: u64 = 64;

/// The keys every workload draws from (all preloaded, so GETs hit) and the value SET writes.
#[derive(Debug)]
pub(crate) struct Keyspace {
    /// Every key, back to back (`n` × 16 bytes), leaked: it lives as long as the process.
    all: &'static [u8],
    value: Bytes,
}

impl Keyspace {
    /// `n` keys `key:000000000000` .. and one 64-byte value.
    ///
    /// The keys live in one buffer that is leaked (it lives as long as the process anyway), so a
    /// key is a static `Bytes`: cloning it costs no allocation and no shared counter, and reading
    /// random keys touches 16 contiguous bytes each. Every client gets the same keys this way.
    pub(crate) fn new(n: usize) -> Self {
        let all: &'static [u8] =
            Vec::leak((0..n.max(1)).flat_map(|i| key_name(i).into_bytes()).collect::<Vec<u8>>());
        debug_assert_eq!(all.len(), n.max(1) * KEY_LEN);
        let value: &'static [u8] =
            Vec::leak((0..VALUE_LEN).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
        Self { all, value: Bytes::from_static(value) }
    }

    /// How many keys there are.
    pub(crate) const fn len(&self) -> usize {
        self.all.len() / KEY_LEN
    }

    /// The key with index `i`.
    pub(crate) fn key(&self, i: usize) -> Bytes {
        Bytes::from_static(&self.all[i * KEY_LEN..(i + 1) * KEY_LEN])
    }

    /// The value SET writes.
    pub(crate) const fn value(&self) -> &Bytes {
        &self.value
    }

    fn pick(&self, rng: &mut Rng) -> Bytes {
        self.key(rng.below(self.len()))
    }
}

/// The key with index `i`: 16 bytes.
pub(crate) fn key_name(i: usize) -> String {
    format!("key:{i:012}")
}

/// A small per-task generator (xorshift64*): cheap, and the same sequence for every client.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for task `i`.
    pub(crate) const fn new(i: u64) -> Self {
        Self((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// What one operation did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Outcome {
    /// Keys read or written.
    pub(crate) keys: u64,
    /// Reads that found nothing (a preloaded key space should make this 0).
    pub(crate) misses: u64,
}

/// One workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Workload {
    /// GET of a preloaded key.
    Get,
    /// SET of a 64-byte value.
    Set,
    /// 90% GET, 10% SET.
    Mix,
    /// MGET of 100 random keys (across slots).
    Mget,
    /// The cache layer's `set` with two tags (of [`TAGS`]): a write and two tag memberships.
    TagSet,
    /// The cache layer's `invalidate_by_tags` of one tag holding [`INVALIDATE_ENTRIES`] entries,
    /// which an untimed `bulk_set` wrote just before.
    Invalidate,
}

impl Workload {
    /// Every workload, in report order.
    pub(crate) const ALL: [Self; 6] =
        [Self::Get, Self::Set, Self::Mix, Self::Mget, Self::TagSet, Self::Invalidate];

    /// Short name (command line, result files).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Mix => "mix",
            Self::Mget => "mget",
            Self::TagSet => "tagset",
            Self::Invalidate => "invalidate",
        }
    }

    /// Heading for the report.
    pub(crate) const fn title(self) -> &'static str {
        match self {
            Self::Get => "GET (hits, 16 B keys, 64 B values)",
            Self::Set => "SET (16 B keys, 64 B values)",
            Self::Mix => "90% GET / 10% SET",
            Self::Mget => "MGET of 100 random keys (across slots)",
            Self::TagSet => "Cache set with two tags (of 1,000), 64 B values",
            Self::Invalidate => {
                "Cache invalidate_by_tags of one tag on 4 entries (latency of the invalidation; \
                 throughput counts cycles of an untimed 4-entry bulk_set and the invalidation)"
            }
        }
    }

    /// Parses [`Workload::name`].
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == s)
    }

    /// Whether this workload goes through the cache layer (slotcache only).
    pub(crate) const fn is_cache(self) -> bool {
        matches!(self, Self::TagSet | Self::Invalidate)
    }

    /// Whether `client` can run this workload (the runner skips the cells it cannot).
    pub(crate) const fn supported_by(self, client: ClientKind) -> bool {
        match self {
            Self::Get | Self::Set => true,
            Self::Mix | Self::Mget => !client.is_redis_benchmark(),
            Self::TagSet | Self::Invalidate => client.is_slotcache(),
        }
    }

    /// Prepares the next operation, outside the timed part: the invalidation workload writes
    /// the entries its next operation removes.
    pub(crate) async fn setup<C: BenchClient>(
        self,
        client: &mut C,
        ks: &Keyspace,
        task: &mut TaskState,
    ) -> anyhow::Result<()> {
        match self {
            Self::Invalidate => {
                task.cycle += 1;
                let tag = task.invalidate_tag();
                let keys: Vec<Bytes> = (0..INVALIDATE_ENTRIES)
                    .map(|j| Bytes::from(format!("inv:{}:{}:{j}", task.id, task.cycle % TASK_TAGS)))
                    .collect();
                client.tag_bulk_set(&keys, ks.value(), &tag).await
            }
            _ => Ok(()),
        }
    }

    /// Runs one operation (the timed part).
    pub(crate) async fn op<C: BenchClient>(
        self,
        client: &mut C,
        ks: &Keyspace,
        task: &mut TaskState,
    ) -> anyhow::Result<Outcome> {
        let rng = &mut task.rng;
        match self {
            Self::Get => get(client, ks, rng).await,
            Self::Set => set(client, ks, rng).await,
            Self::Mix => mix(client, ks, rng).await,
            Self::Mget => mget(client, ks, rng).await,
            Self::TagSet => tag_set(client, ks, rng).await,
            Self::Invalidate => invalidate(client, task).await,
        }
    }
}

/// What one task carries from one operation to the next.
#[derive(Debug)]
pub(crate) struct TaskState {
    /// The task's index.
    pub(crate) id: u64,
    /// Its random sequence.
    pub(crate) rng: Rng,
    /// Operations prepared so far.
    cycle: u64,
}

impl TaskState {
    /// The state of task `id`.
    pub(crate) const fn new(id: u64) -> Self {
        Self { id, rng: Rng::new(id), cycle: 0 }
    }

    /// The tag of the current invalidation cycle: the task's own, one of [`TASK_TAGS`].
    fn invalidate_tag(&self) -> String {
        format!("inv-{}-{}", self.id, self.cycle % TASK_TAGS)
    }
}

async fn get<C: BenchClient>(client: &mut C, ks: &Keyspace, rng: &mut Rng) -> anyhow::Result<Outcome> {
    let found = client.get(&ks.pick(rng)).await?;
    Ok(Outcome { keys: 1, misses: u64::from(!found) })
}

async fn set<C: BenchClient>(client: &mut C, ks: &Keyspace, rng: &mut Rng) -> anyhow::Result<Outcome> {
    client.set(&ks.pick(rng), ks.value()).await?;
    Ok(Outcome { keys: 1, misses: 0 })
}

async fn mix<C: BenchClient>(client: &mut C, ks: &Keyspace, rng: &mut Rng) -> anyhow::Result<Outcome> {
    if rng.below(10) == 0 { set(client, ks, rng).await } else { get(client, ks, rng).await }
}

async fn mget<C: BenchClient>(client: &mut C, ks: &Keyspace, rng: &mut Rng) -> anyhow::Result<Outcome> {
    let keys: Vec<Bytes> = (0..MGET_KEYS).map(|_| ks.pick(rng)).collect();
    let found = client.mget(&keys).await?;
    Ok(Outcome { keys: MGET_KEYS as u64, misses: (MGET_KEYS - found) as u64 })
}

/// The name of tag `i` of the tagged SET's [`TAGS`].
fn tag_name(i: usize) -> String {
    format!("tag-{i:03}")
}

async fn tag_set<C: BenchClient>(client: &mut C, ks: &Keyspace, rng: &mut Rng) -> anyhow::Result<Outcome> {
    let a = rng.below(TAGS);
    // A second tag other than the first.
    let b = (a + 1 + rng.below(TAGS - 1)) % TAGS;
    client.tag_set(&ks.pick(rng), ks.value(), &[&tag_name(a), &tag_name(b)]).await?;
    Ok(Outcome { keys: 1, misses: 0 })
}

async fn invalidate<C: BenchClient>(client: &mut C, task: &TaskState) -> anyhow::Result<Outcome> {
    let removed = client.invalidate_tag(&task.invalidate_tag()).await?;
    // The task's own tag on its own keys, written just before: anything but all of them is a
    // fault, counted where the report shows misses.
    let want = INVALIDATE_ENTRIES as u64;
    Ok(Outcome { keys: removed, misses: want.saturating_sub(removed) + removed.saturating_sub(want) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sixteen_bytes_and_rng_stays_in_range() {
        let ks = Keyspace::new(1000);
        assert_eq!(ks.len(), 1000);
        assert_eq!(&ks.key(7)[..], b"key:000000000007");
        assert!((0..ks.len()).all(|i| ks.key(i).len() == KEY_LEN));
        assert_eq!(ks.value().len(), VALUE_LEN);
        let mut rng = Rng::new(3);
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            seen[rng.below(10)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
