//! # slotcache-tokio
//!
//! slotcache on the tokio runtime. Everything but the runtime glue comes from
//! [`slotcache_rt`] and is re-exported here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), slotcache_tokio::Error> {
//! use slotcache_tokio::{Cmd, Config, NodeAddr};
//! let seeds = vec![NodeAddr::new("127.0.0.1", 7000)];
//! let client = slotcache_tokio::connect(Config::new(seeds)).await?;
//! client.send(Cmd::new("SET").arg("greeting").arg("hello")).await?;
//! let v = client.send(Cmd::new("GET").arg("greeting")).await?;
//! assert_eq!(v.as_str(), Some("hello"));
//! # Ok(()) }
//! ```

use std::io;
use std::time::Instant;

pub use slotcache_rt::*;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The tokio [`Runtime`]. Must be used from inside a tokio runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        drop(tokio::spawn(future));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn connect_tcp(&self, host: String, port: u16) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream.compat()) as BoxStream)
        })
    }

    /// tokio's clock, so `tokio::time::pause` drives slotcache's timers in tests.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

slotcache_rt::runtime_entry_points!(TokioRuntime);
