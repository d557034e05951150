//! The [`Runtime`] trait: everything slotcache needs from an async runtime, and nothing else.
//!
//! A runtime crate (`slotcache-tokio`, `slotcache-smol`, `slotcache-async-std`) implements it in a
//! few dozen lines: spawn a task, sleep until an instant, open a TCP connection. TLS, routing,
//! retries and the driver loop are shared and live here or in the core.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use std::io;
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A byte stream in futures-io terms (TCP, or TLS over TCP).
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// A boxed [`AsyncStream`].
pub type BoxStream = Box<dyn AsyncStream>;

/// What slotcache needs from an async runtime.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs a future to completion in the background.
    fn spawn(&self, future: BoxFuture<()>);

    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;

    /// Opens a TCP connection to `host:port` with `TCP_NODELAY` set.
    fn connect_tcp(&self, host: String, port: u16) -> BoxFuture<io::Result<BoxStream>>;

    /// The current time. Override it to drive slotcache from a simulated clock (for example
    /// tokio's paused test time).
    fn now(&self) -> Instant {
        Instant::now()
    }
}
