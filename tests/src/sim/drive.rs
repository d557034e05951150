//! Driving one cache-operation machine to its outcome over the simulation, as the async
//! layer's driver does: a `Send` becomes submitted requests whose replies resume it together, a
//! `Sleep` runs virtual time to that instant.

use core::convert::Infallible;
use std::time::Duration;

use slotcache_core::Rng;
use slotcache_core::cache::CacheError;
use slotcache_core::cache::op::{Ctx, Entropy, Input, Machine, Step};

use super::net::Sim;

/// Randomness from a seed.
#[derive(Debug)]
struct Seeded(Rng);

impl Entropy for Seeded {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

impl Sim {
    /// Runs `machine` to its outcome (its randomness from `seed`; every request waits at most
    /// 10 s of virtual time, as [`Sim::wait`]).
    ///
    /// # Panics
    /// A request that does not complete within 10 s of virtual time.
    pub fn drive<M>(&mut self, mut machine: M, seed: u64) -> Result<M::Output, CacheError>
    where
        M: Machine<Call = Infallible, Answer = Infallible>,
    {
        let mut entropy = Seeded(Rng::new(seed));
        let mut input = Input::Start;
        loop {
            let topology = self.client.topology().cloned();
            let wall_ms = 1_700_000_000_000 + u64::try_from(self.elapsed().as_millis()).unwrap_or(0);
            let mut cx = Ctx { now: self.now, wall_ms, entropy: &mut entropy, topology: topology.as_ref() };
            input = match machine.resume(&mut cx, input) {
                Step::Done(out) => return out,
                Step::Send(requests) => {
                    let ids: Vec<_> = requests.into_iter().map(|r| self.submit(r)).collect();
                    Input::Replies(ids.into_iter().map(|id| self.wait(id)).collect())
                }
                Step::Sleep(at) => {
                    self.run_for(at.saturating_duration_since(self.now).max(Duration::from_micros(1)));
                    Input::Woke
                }
                Step::Call(never) => match never {},
            };
        }
    }
}
