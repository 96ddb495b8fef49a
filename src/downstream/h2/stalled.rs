//! `send_timeout` for HTTP/2 streams: a stream whose client takes no
//! response data for that long (its flow-control window stays shut) is
//! reset, as nginx does, and its backend connection let go.
//!
//! hyper polls a stream's response body only when the previous piece went
//! out, so a piece handed over and not followed by another poll is a stalled
//! write: the stream's state marks it ([`ConnState::write_blocked`]) and
//! the worker's sweeper evicts the state once `send_timeout` has passed. Nothing
//! polls the body then, so the stream's future itself is wrapped
//! ([`spawn`]): it watches its state's signal and is dropped on eviction,
//! and h2 resets the stream (`RST_STREAM(CANCEL)`) when its handles go.
//!
//! hyper calls the service (which creates the stream's state) and then,
//! at once, the executor with that stream's future: a [`Handoff`] carries the
//! state's slot from one to the other.
//!
//! The connection itself: a client that reads nothing at all (not even the
//! PING or SETTINGS acknowledgements it asks for) leaves hyper's writes
//! pending, and a GOAWAY could not be written either. [`WriteWatch`] marks
//! the connection's state blocked while a write to the socket waits, so the
//! sweeper evicts it after `send_timeout` and the worker drops the
//! connection, as an HTTP/1 one.

use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

use crate::downstream::state::{ConnState, Signal};

/// Where a stream's state is put once its future has created it.
pub type StreamSlot = Rc<OnceCell<Rc<ConnState>>>;

/// The slot of the stream hyper is about to spawn.
pub type Handoff = Rc<Cell<Option<StreamSlot>>>;

/// A new slot for the stream hyper's service was just called for; the
/// executor takes it with the stream's future.
pub fn next_slot(handoff: &Handoff) -> StreamSlot {
    let slot = StreamSlot::default();
    handoff.set(Some(Rc::clone(&slot)));
    slot
}

/// Spawns `fut` on the worker's thread; with a `slot`, dropped once the
/// state in it is evicted.
pub fn spawn<F>(fut: F, slot: Option<StreamSlot>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    match slot {
        Some(slot) => {
            tokio::task::spawn_local(Watched {
                fut: Box::pin(fut),
                slot,
            });
        }
        None => {
            tokio::task::spawn_local(fut);
        }
    }
}

/// A stream's future and the slot of its state.
struct Watched<F> {
    fut: Pin<Box<F>>,
    slot: StreamSlot,
}

impl<F: Future> Future for Watched<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        // After the future's poll: its first one fills the slot.
        match self.slot.get() {
            Some(state) if state.poll_signal(cx) == Signal::Evict => {
                tracing::info!(
                    "client {} took no response data for {:?}: stream reset",
                    state.remote,
                    state.send_timeout
                );
                Poll::Ready(())
            }
            _ => Poll::Pending,
        }
    }
}

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
