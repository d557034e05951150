//! Running one test body on every runtime: tokio, smol and async-std.
//!
//! The conformance suite is written once against [`slotcache_rt::Client`]; each runtime crate
//! contributes only its [`Runtime`], so a test that passes on all three shows the adapters
//! behave the same.

use core::future::Future;
use std::sync::Arc;
use std::time::Duration;

use slotcache_rt::{Config, Runtime};

use crate::Cluster;

/// One of the supported runtimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    /// `slotcache-tokio` on a 2-worker multi-thread runtime.
    Tokio,
    /// `slotcache-smol` on smol's global executor.
    Smol,
    /// `slotcache-async-std`.
    AsyncStd,
}

/// Every runtime, in the order tests run them.
pub const ALL: [Rt; 3] = [Rt::Tokio, Rt::Smol, Rt::AsyncStd];

impl Rt {
    /// The runtime's name, for messages.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::Smol => "smol",
            Self::AsyncStd => "async-std",
        }
    }

    /// The adapter's [`Runtime`].
    #[must_use]
    pub fn runtime(self) -> Arc<dyn Runtime> {
        match self {
            Self::Tokio => Arc::new(slotcache_tokio::TokioRuntime),
            Self::Smol => Arc::new(slotcache_smol::SmolRuntime),
            Self::AsyncStd => Arc::new(slotcache_async_std::AsyncStdRuntime),
        }
    }

    /// Runs `fut` to completion on this runtime.
    pub fn block_on<F: Future>(self, fut: F) -> F::Output {
        match self {
            Self::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(fut),
            Self::Smol => smol::block_on(fut),
            Self::AsyncStd => async_std::task::block_on(fut),
        }
    }

    /// Sleeps on this runtime.
    pub async fn sleep(self, d: Duration) {
        match self {
            Self::Tokio => tokio::time::sleep(d).await,
            Self::Smol | Self::AsyncStd => {
                smol::Timer::after(d).await;
            }
        }
    }

    /// Spawns a task on this runtime and returns its output through a channel.
    pub fn spawn<T: Send + 'static>(
        self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> futures_util::future::BoxFuture<'static, T> {
        use futures_util::FutureExt;
        match self {
            Self::Tokio => tokio::spawn(fut).map(|r| r.expect("task panicked")).boxed(),
            Self::Smol => smol::spawn(fut).boxed(),
            Self::AsyncStd => async_std::task::spawn(fut).boxed(),
        }
    }
}

/// A client configuration for `cluster`: its seeds, a client name, and a seed for jitter.
#[must_use]
pub fn config(cluster: &Cluster) -> Config {
    let mut cfg = Config::new(cluster.seeds());
    cfg.client.client_name = Some("slotcache-conformance".into());
    cfg
}
