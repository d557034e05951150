//! The one loop that runs any cache operation's machine (`slotcache_core::cache::op`) over the
//! cluster client. It sends what the machine asks for, sleeps when it says, calls user code when
//! it says, and decides nothing.

use core::convert::Infallible;
use std::future::Future;

use futures_util::future::join_all;
use slotcache_core::cache::CacheError;
use slotcache_core::cache::op::{Ctx, Input, Machine, Step};

use super::exec::{Exec, to_cache_error, wall_ms};
use super::random;
use crate::error::Error;

impl Exec {
    /// Runs a machine that calls no user code.
    pub(crate) async fn drive<M>(&self, machine: M) -> Result<M::Output, CacheError>
    where
        M: Machine<Call = Infallible, Answer = Infallible>,
    {
        self.drive_with(machine, |never| async move { match never {} }).await
    }

    /// Runs a machine, performing its calls with `call`.
    pub(crate) async fn drive_with<M, F, Fut>(
        &self,
        mut machine: M,
        mut call: F,
    ) -> Result<M::Output, CacheError>
    where
        M: Machine,
        F: FnMut(M::Call) -> Fut,
        Fut: Future<Output = M::Answer>,
    {
        let mut input = Input::Start;
        loop {
            let topology = self.client.topology();
            let (now, wall_ms, topology) = (self.rt.now(), wall_ms(), topology.as_deref());
            let step = machine.resume(&mut Ctx { now, wall_ms, entropy: &mut random::fill, topology }, input);
            input = match step {
                Step::Done(out) => return out,
                Step::Send(requests) => {
                    let replies = join_all(requests.into_iter().map(|r| self.client.request(r))).await;
                    let results = replies.into_iter().map(|r| match r {
                        Ok(reply) => Ok(Ok(reply)),
                        Err(Error::Request(e)) => Ok(Err(e)),
                        // Refused before it was sent (a malformed plan, a closed client):
                        // nothing for the protocol to decide.
                        Err(e) => Err(to_cache_error(e)),
                    });
                    Input::Replies(results.collect::<Result<_, _>>()?)
                }
                Step::Sleep(at) => {
                    self.rt.sleep_until(at).await;
                    Input::Woke
                }
                Step::Call(c) => Input::Answer(call(c).await),
            };
        }
    }
}
