//! HTTP/2 towards the clients: hyper's HTTP/2 server connection (on the `h2`
//! crate) driving the same [`Handler`] as the HTTP/1 loop (`conn`).
//!
//! Which protocol a connection speaks is decided here: on an `ssl` listener
//! with HTTP/2 on, by the ALPN protocol the handshake chose ([`serve_tls`]);
//! on a plain one, by its first bytes ([`serve_plain`]: the connection
//! preface is h2c "with prior knowledge", anything else HTTP/1.x on the same
//! port, as nginx). `Upgrade: h2c` is never acted on.
//!
//! One connection is one task (hyper's connection future, with the idle and
//! `keepalive_requests` GOAWAY around it); each stream is a task of its own
//! on the worker's thread ([`LocalExec`]), with a [`ConnState`] of its own
//! (`ConnState::stream`) registered with the worker's sweeper, so a stream
//! waits for its backend under `proxy_read_timeout` as an HTTP/1 request
//! does, and one stream's failure is that stream's alone. The connection
//! state is idle while no stream is open: `client_header_timeout` before the
//! first, `keepalive_timeout` after, then GOAWAY, as nginx does.

mod io;
mod reset;
mod stalled;
mod stream;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

use hyper::rt::{Read, Write};
use hyper_util::rt::TokioIo;

use crate::downstream::body::{ClientIo, ClientStream};
use crate::downstream::conn::{self, Settings};
use crate::downstream::handler::Handler;
use crate::downstream::state::{ConnState, Signal};

pub use io::{preface, Preface, PREFACE};
pub use stream::StreamBody;

/// What hyper may buffer of a stream's response beyond what the client's
/// window takes: a slow reader holds this much per stream, never more.
const SEND_BUFFER: usize = 64 * 1024;
/// Streams a client may open and reset before the server has seen them
/// (rapid reset, CVE-2023-44487): past this the connection is closed
/// (GOAWAY `ENHANCE_YOUR_CALM`).
const PENDING_RESETS: usize = 20;
/// Streams the server may reset for the client's errors on one connection
/// before it closes it.
const LOCAL_RESETS: usize = 1024;

/// The HTTP/2 settings of one listen address (its default server's
/// `http2_*` directives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Settings {
    /// `http2_max_concurrent_streams`.
    pub max_concurrent_streams: u32,
    /// `http2_body_preread_size`: each stream's initial receive window.
    pub stream_window: u32,
    /// `http2_recv_buffer_size`: the connection's receive window.
    pub connection_window: u32,
    /// `http2_chunk_size`: the largest DATA frame of a response.
    pub chunk_size: usize,
    /// `large_client_header_buffers` (number x size): the largest header
    /// list a request may have (`SETTINGS_MAX_HEADER_LIST_SIZE`).
    pub max_header_list: u32,
}

/// The open streams of one connection, and its wish to close.
pub(super) struct Streams {
    conn: Rc<ConnState>,
    open: Cell<usize>,
    /// `keepalive_requests` reached: GOAWAY after the streams open now.
    last: Cell<bool>,
    /// The connection's task, woken when its last stream closes (its idle
    /// time starts).
    waker: Cell<Option<Waker>>,
}

impl Streams {
    fn opened(&self) {
        self.open.set(self.open.get() + 1);
        self.conn.waiting_since.set(None);
    }

    fn closed(&self) {
        let open = self.open.get().saturating_sub(1);
        self.open.set(open);
        if open == 0 {
            self.conn.waiting_since.set(Some(Instant::now()));
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }
}

/// Registers an HTTP/2 stream's state with the worker's sweeper (its
/// deadline slot: `proxy_read_timeout`), as a connection's is.
pub type Register = Rc<dyn Fn(&Rc<ConnState>)>;

/// What every stream of a connection shares.
pub(super) struct Shared<F> {
    conn: Rc<ConnState>,
    /// The handler current when each stream arrives.
    handler: F,
    /// Registers a stream's state with the worker's sweeper.
    register: Register,
    settings: H2Settings,
    streams: Rc<Streams>,
    /// The configuration the connection's first stream was served with: a
    /// stream served with another (a reload) is the connection's last, so
    /// the client's next connection has the new settings (nginx's old
    /// workers send GOAWAY on reload).
    config: std::cell::RefCell<Option<std::rc::Weak<dyn std::any::Any>>>,
}

/// Runs hyper's futures (one per stream) as tasks of the worker's thread:
/// nothing of a connection is `Send`. hyper spawns a stream's task right
/// after it asked the service for the stream's answer: the state the
/// service made for it (and the slot of its answer cut off by a reset,
/// [`reset::Orphan`]) waits in `next`, and the task ends (the stream is
/// reset) when the worker's sweeper evicts that state (`send_timeout`).
#[derive(Clone, Default)]
struct LocalExec {
    next: Rc<Cell<Option<NextStream>>>,
}

/// What the service made for the stream hyper spawns next.
type NextStream = (Rc<ConnState>, reset::Orphan);

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        match self.next.take() {
            Some((state, orphan)) => tokio::task::spawn_local(Watched {
                fut: Some(Box::pin(fut)),
                state,
                orphan,
                left: None,
            }),
            None => tokio::task::spawn_local(async move {
                fut.await;
            }),
        };
    }
}

/// A stream's task, dropped when its state is evicted. When hyper is done
/// with the stream before its answer was (a reset), the task runs that
/// answer to its end (`left`: its request ends, 499).
struct Watched<F> {
    fut: Option<Pin<Box<F>>>,
    state: Rc<ConnState>,
    orphan: reset::Orphan,
    left: Option<reset::Left>,
}

impl<F: Future> Future for Watched<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.state.poll_signal(cx) == Signal::Evict {
            tracing::info!("HTTP/2 stream of {} timed out sending", self.state.remote);
            return Poll::Ready(());
        }
        if let Some(fut) = self.fut.as_mut() {
            if fut.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Dropping hyper's stream drops an unfinished answer into the slot.
            self.fut = None;
            self.left = self.orphan.take();
        }
        match self.left.as_mut() {
            Some(left) => left.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

/// Serves a connection of a plain listener: h2c when it starts with the
/// HTTP/2 preface and `http2` is on, else HTTP/1.x.
pub async fn serve_plain<H: Handler + 'static>(
    stream: ClientStream,
    state: Rc<ConnState>,
    settings: Settings,
    http2: Option<H2Settings>,
    handler: impl Fn() -> Rc<H> + 'static,
    register: impl Fn(&Rc<ConnState>) + 'static,
) {
    let Some(h2) = http2 else {
        return conn::serve(stream, state, settings, handler).await;
    };
    let io = ClientIo::new(stream);
    loop {
        let seen = preface(&io.buf.borrow());
        match seen {
            Preface::Http1 => return conn::serve_io(io, state, settings, handler).await,
            Preface::Http2 => break,
            Preface::Undecided => {}
        }
        let filled = poll_fn(|cx| {
            if state.poll_signal(cx) != Signal::None {
                return Poll::Ready(Ok(0));
            }
            io.poll_fill(cx, 4 * 1024)
        })
        .await;
        if !matches!(filled, Ok(n) if n > 0) {
            return;
        }
    }
    let (stream, early) = io.into_parts();
    if let ClientStream::Plain(tcp) = stream {
        let io = io::Rewound::new(early.freeze(), TokioIo::new(tcp));
        serve_connection(io, shared(state, h2, handler, Rc::new(register))).await;
    }
}

/// Serves a connection of an `ssl` listener after its handshake: HTTP/2
/// when ALPN chose `h2`, else HTTP/1.x.
pub async fn serve_tls<H: Handler + 'static>(
    stream: ClientStream,
    state: Rc<ConnState>,
    settings: Settings,
    http2: Option<H2Settings>,
    handler: impl Fn() -> Rc<H> + 'static,
    register: impl Fn(&Rc<ConnState>) + 'static,
) {
    match (stream, http2) {
        (ClientStream::Tls(tls), Some(h2))
            if tls.borrow().get_ref().1.alpn_protocol() == Some(b"h2") =>
        {
            let io = TokioIo::new(tls.into_inner());
            serve_connection(io, shared(state, h2, handler, Rc::new(register))).await;
        }
        (stream, _) => conn::serve(stream, state, settings, handler).await,
    }
}

fn shared<F>(
    conn: Rc<ConnState>,
    settings: H2Settings,
    handler: F,
    register: Register,
) -> Rc<Shared<F>> {
    Rc::new(Shared {
        conn: Rc::clone(&conn),
        handler,
        register,
        settings,
        config: std::cell::RefCell::new(None),
        streams: Rc::new(Streams {
            conn,
            open: Cell::new(0),
            last: Cell::new(false),
            waker: Cell::new(None),
        }),
    })
}

/// hyper's HTTP/2 server on `io` until the connection ends: GOAWAY when the
/// worker drains (quit, reload), after `keepalive_requests` streams, and
/// when the connection has been idle too long.
async fn serve_connection<I, H, F>(io: I, shared: Rc<Shared<F>>)
where
    I: Read + Write + Unpin + 'static,
    H: Handler + 'static,
    F: Fn() -> Rc<H> + 'static,
{
    let s = shared.settings;
    let exec = LocalExec::default();
    let next = Rc::clone(&exec.next);
    let mut builder = hyper::server::conn::http2::Builder::new(exec);
    builder
        .max_concurrent_streams(s.max_concurrent_streams)
        .initial_stream_window_size(s.stream_window)
        .initial_connection_window_size(s.connection_window)
        .adaptive_window(false)
        .max_header_list_size(s.max_header_list)
        .max_send_buf_size(SEND_BUFFER)
        .max_pending_accept_reset_streams(PENDING_RESETS)
        .max_local_error_reset_streams(LOCAL_RESETS);
    let service = {
        let shared = Rc::clone(&shared);
        hyper::service::service_fn(move |req| {
            // The stream's own state, watched by its task (see `LocalExec`).
            let state = Rc::new(shared.conn.stream());
            (shared.register)(&state);
            let orphan = reset::Orphan::default();
            next.set(Some((Rc::clone(&state), Rc::clone(&orphan))));
            let answer = stream::serve(Rc::clone(&shared), Rc::clone(&state), req);
            reset::Answer::new(answer, state, orphan)
        })
    };
    let io = stalled::WriteWatch::new(io, Rc::clone(&shared.conn));
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let state = &shared.conn;
    let streams = &shared.streams;
    let mut closing = false;
    let mut idle = IdleTimer::default();
    let ended = poll_fn(|cx| loop {
        let kept = match streams.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        streams.waker.set(Some(kept));
        if !closing
            && (streams.last.get()
                || state.poll_signal(cx) != Signal::None
                || idle.over(state, streams, cx))
        {
            conn.as_mut().graceful_shutdown();
            closing = true;
        }
        if let Poll::Ready(ended) = conn.as_mut().poll(cx) {
            return Poll::Ready(ended);
        }
        // A stream opened during the poll may have been the last one.
        if closing || !streams.last.get() {
            return Poll::Pending;
        }
    })
    .await;
    if let Err(e) = ended {
        tracing::debug!("HTTP/2 connection from {}: {e}", state.remote);
    }
}

/// The connection's idle deadline: `client_header_timeout` before its first
/// stream, `keepalive_timeout` after its last.
#[derive(Default)]
struct IdleTimer {
    armed: Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
}

impl IdleTimer {
    /// True once the connection has waited with no open stream past its
    /// limit (a zero `keepalive_timeout`: as soon as it is idle).
    fn over(
        &mut self,
        state: &ConnState,
        streams: &Streams,
        cx: &mut std::task::Context<'_>,
    ) -> bool {
        let since = match state.waiting_since.get() {
            Some(since) if streams.open.get() == 0 => since,
            _ => {
                self.armed = None;
                return false;
            }
        };
        let limit = if state.requests.get() == 0 {
            if state.header_timeout.get().is_zero() {
                return false;
            }
            state.header_timeout.get()
        } else {
            state.idle_timeout.get()
        };
        if limit.is_zero() {
            return true;
        }
        let deadline = since + limit;
        let timer = match &mut self.armed {
            Some((at, timer)) if *at == deadline => timer,
            armed => {
                let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
                &mut armed.insert((deadline, Box::pin(sleep))).1
            }
        };
        timer.as_mut().poll(cx).is_ready()
    }
}

/// The default settings, as nginx's (`http2_max_concurrent_streams 128`,
/// `http2_body_preread_size 64k`, `http2_recv_buffer_size 256k`,
/// `http2_chunk_size 8k`, `large_client_header_buffers 4 8k`).
impl Default for H2Settings {
    fn default() -> H2Settings {
        H2Settings {
            max_concurrent_streams: 128,
            stream_window: 64 * 1024,
            connection_window: 256 * 1024,
            chunk_size: 8 * 1024,
            max_header_list: 4 * 8 * 1024,
        }
    }
}
