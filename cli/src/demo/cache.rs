//! Step 3: the cache API. A typed namespace, TTLs, tags and invalidation by tag, a bulk get
//! across slots, and an atomic read-modify-write.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use slotcache_core::key_slot;
use slotcache_tokio::{Cache, Compute, NamespaceOptions, Ttl};

use super::{Ctx, out};

/// The demo's value type: any serde type works.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct User {
    pub(super) name: String,
    pub(super) team: String,
    pub(super) visits: u64,
}

pub(super) fn user(i: usize) -> User {
    User {
        name: format!("user {i}"),
        team: if i.is_multiple_of(2) { "red" } else { "blue" }.into(),
        visits: 0,
    }
}

pub(super) fn run(ctx: &mut Ctx) -> Result<()> {
    out::step(3, "the cache: typed values, TTLs, tags, bulk get across slots, compute");
    let seeds: Vec<String> = ctx.seeds.iter().map(ToString::to_string).collect();
    let rt = ctx.rt.clone();
    rt.block_on(async {
        let t = Instant::now();
        let mut cfg = slotcache_tokio::ProviderConfig::new(seeds);
        cfg.client_name = "slotcache-demo".into();
        let provider = slotcache_tokio::provider(cfg).await.context("connecting the cache provider")?;
        out::good(&format!("provider connected and topology learned in {}", out::secs(t.elapsed())));
        let users: Cache<String, User> =
            provider.create_namespace("demo-users", NamespaceOptions::default())?;
        users.invalidate_all().await?;

        let n: usize = 40;
        let t = Instant::now();
        for i in 0..n {
            let team = if i.is_multiple_of(2) { "team:red" } else { "team:blue" };
            users
                .set_with_ttl(&format!("user:{i}"), &user(i), Ttl::After(Duration::from_secs(600)), &[team])
                .await?;
        }
        out::good(&format!(
            "stored {n} users with a 10 min TTL and a team tag in {}",
            out::secs(t.elapsed())
        ));
        let alice = users.get_entry(&"user:0".to_owned()).await?.context("user:0 missing")?;
        out::note(&format!(
            "get_entry(\"user:0\") -> {:?}, ttl {} ms, tags {:?}",
            alice.value,
            alice.ttl.map_or(0, |d| d.as_millis()),
            alice.tags
        ));

        let keys: Vec<String> = (0..n).map(|i| format!("user:{i}")).collect();
        let slots: BTreeSet<u16> =
            keys.iter().map(|k| key_slot(format!("demo-users:{k}").as_bytes()).get()).collect();
        let t = Instant::now();
        let found = users.bulk_get(&keys).await?;
        out::good(&format!(
            "bulk_get of {n} keys over {} slots: {} found in {} (one MGET per slot, pipelined per node)",
            slots.len(),
            found.len(),
            out::secs(t.elapsed())
        ));

        let removed = users.invalidate_by_tags(&["team:red"]).await?;
        let left = users.bulk_get(&keys).await?.len();
        out::good(&format!(
            "invalidate_by_tags(\"team:red\") removed {removed} entries; {left} of {n} remain"
        ));
        if removed != (n / 2) as u64 || left != n / 2 {
            bail!("expected {} removed and {} left", n / 2, n / 2);
        }

        let visits = users
            .compute_if_present(&"user:1".to_owned(), |u| {
                let mut u = u.clone();
                u.visits += 1;
                Compute::Set(u)
            })
            .await?
            .map_or(0, |u| u.visits);
        out::good(&format!("compute_if_present: user:1 visits -> {visits} (compare-and-set on its slot)"));
        let s = users.stats();
        out::note(&format!("namespace stats: {} hits, {} misses", s.hits, s.misses));
        ctx.summary.push(("cache: entries removed by tag".into(), removed.to_string()));
        ctx.provider = Some(provider);
        Ok(())
    })
}
