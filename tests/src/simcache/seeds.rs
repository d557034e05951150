//! Which seeds a simulated history test runs, and running them: every seed on two threads
//! (CI has two cores; each seed is independent and deterministic), or seeds in order until a
//! bug variant is caught.

use super::scenario::{Options, Outcome, run};

/// The seeds to run: `SLOTCACHE_SIM_SEED` (just that one), else `1..=SLOTCACHE_SIM_SEEDS`, else
/// `1..=default`.
#[must_use]
pub fn from_env(default: u64) -> Vec<u64> {
    if let Some(one) = std::env::var("SLOTCACHE_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![one];
    }
    let n = std::env::var("SLOTCACHE_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    (1..=n).collect()
}

/// Runs `per_seed` on every seed, on two threads, and adds up the figures it returns.
///
/// # Panics
/// When `per_seed` panics on a seed (a failed assertion): the panic is passed on.
pub fn totals<const N: usize>(seeds: &[u64], per_seed: impl Fn(u64) -> [usize; N] + Sync) -> [usize; N] {
    let per_seed = &per_seed;
    std::thread::scope(|scope| {
        let workers: Vec<_> = [0, 1]
            .into_iter()
            .map(|half| {
                scope.spawn(move || {
                    let mut t = [0usize; N];
                    for &seed in seeds.iter().filter(|s| *s % 2 == half) {
                        for (x, y) in t.iter_mut().zip(per_seed(seed)) {
                            *x += y;
                        }
                    }
                    t
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a seed failed")).fold([0usize; N], |mut a, t| {
            for (x, y) in a.iter_mut().zip(t) {
                *x += y;
            }
            a
        })
    })
}

/// The first seed, in order, whose run with `options` is `caught`.
#[must_use]
pub fn first_caught(seeds: &[u64], options: Options, caught: impl Fn(&Outcome) -> bool) -> Option<Outcome> {
    seeds.iter().find_map(|&seed| {
        let out = run(seed, options);
        caught(&out).then_some(out)
    })
}
