//! A connection to a [`MemoryServer`] as a byte stream: what the client writes runs on the
//! node at once, and the replies wait to be read.

use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::io;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use slotcache_memory::Connection;

use super::server::MemoryServer;
use crate::runtime::Runtime;

/// One client connection to the node.
pub(super) struct MemoryStream {
    server: MemoryServer,
    rt: Arc<dyn Runtime>,
    conn: Connection,
    replies: BytesMut,
    reader: Option<Waker>,
    closed: bool,
}

impl MemoryStream {
    pub(super) fn new(server: MemoryServer, rt: Arc<dyn Runtime>) -> Self {
        Self { server, rt, conn: Connection::new(), replies: BytesMut::new(), reader: None, closed: false }
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let now = this.rt.now();
        let ran = {
            let mut state = this.server.lock();
            let now_us = state.now_us(now);
            this.conn.receive(&mut state.node, now_us, buf, &mut this.replies)
        };
        if let Some(w) = this.reader.take() {
            w.wake();
        }
        match ran {
            Ok(()) => Poll::Ready(Ok(buf.len())),
            Err(e) => {
                this.closed = true;
                Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.closed = true;
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for MemoryStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.replies.is_empty() {
            let n = buf.len().min(this.replies.len());
            buf[..n].copy_from_slice(&this.replies[..n]);
            this.replies.advance(n);
            return Poll::Ready(Ok(n));
        }
        if this.closed {
            return Poll::Ready(Ok(0));
        }
        this.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}
