//! `send_timeout` for a whole HTTP/2 connection (a stream's own is in
//! `LocalExec`, mod.rs): a client that reads nothing at all (not even the
//! PING or SETTINGS acknowledgements it asks for) leaves hyper's writes
//! pending, and a GOAWAY could not be written either. [`WriteWatch`] marks
//! the connection's state blocked while a write to the socket waits, so the
//! worker's sweeper evicts it after `send_timeout` and the worker drops the
//! connection, as an HTTP/1 one.

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

use crate::downstream::state::ConnState;

/// The connection's socket, its waiting writes marked on its state.
pub struct WriteWatch<I> {
    io: I,
    state: Rc<ConnState>,
}

impl<I> WriteWatch<I> {
    pub fn new(io: I, state: Rc<ConnState>) -> WriteWatch<I> {
        WriteWatch { io, state }
    }

    /// Marks the state from a write's outcome: waiting, or done.
    fn mark<T>(&self, polled: Poll<T>) -> Poll<T> {
        match polled {
            Poll::Pending => self.state.write_blocked(),
            Poll::Ready(_) => self.state.write_done(),
        }
        polled
    }
}

impl<I: Read + Unpin> Read for WriteWatch<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for WriteWatch<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.mark(polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.mark(polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.mark(polled)
    }
}
