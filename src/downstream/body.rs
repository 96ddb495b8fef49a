//! A client connection's bytes and the request body read from them.
//!
//! [`ClientIo`] is the socket and what was read from it but not yet used,
//! shared by the connection's loop (request heads, responses) and the
//! request's [`RequestBody`], which the handler reads as it streams the body
//! on: `Content-Length` or chunked (decoded with `http1::chunked`), with the
//! `100 Continue` the client waits for written when the body is first asked
//! for.
//!
//! The socket is a [`ClientStream`]: plain TCP, read and written straight
//! through tokio's readiness calls (the hot path, unchanged by TLS), or a
//! TLS stream (rustls), read and written through its `AsyncRead` and
//! `AsyncWrite`. One type for both keeps the request body and the handler's
//! types the same whatever the listener.

use std::cell::{Cell, RefCell};
use std::io::IoSlice;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

use crate::downstream::h2::StreamBody;
use crate::downstream::state::{ConnState, Signal};
use crate::http1::chunked::{Chunk, ChunkedDecoder};
use crate::http1::framing::BodyFraming;
use crate::http1::response::CONTINUE;

/// What ends an idle connection's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Idle {
    /// Bytes (or the end of the stream) arrived.
    Readable,
    /// The worker asked the connection to give back its request state.
    Shed,
    /// The worker asked the connection to end, or the socket failed.
    End,
}

/// Largest read of a request body.
const BODY_READ: usize = 64 * 1024;
/// What an idle TLS connection reads when its socket wakes (the bytes of a
/// record may hold no request data yet: a TLS connection cannot wait for
/// readability alone).
const IDLE_TLS_READ: usize = 4 * 1024;

/// A client connection's transport.
pub enum ClientStream {
    Plain(TcpStream),
    /// Boxed: a plain connection stays small. In a `RefCell` because the
    /// TLS state is changed by every read and write, which `ClientIo` does
    /// through `&self`.
    Tls(Box<RefCell<tokio_rustls::server::TlsStream<TcpStream>>>),
}

impl From<TcpStream> for ClientStream {
    fn from(stream: TcpStream) -> ClientStream {
        ClientStream::Plain(stream)
    }
}

/// Where the current request's body stands.
#[derive(Debug)]
pub(super) enum BodyState {
    /// Read to its end (or there was none).
    Done,
    /// This many bytes still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// The client broke the framing or the connection.
    Broken,
    /// The client's chunked framing was malformed.
    Invalid,
}

/// The client connection: the socket and the bytes read from it but not yet
/// used, shared by the connection's coroutine and the request body.
pub struct ClientIo {
    pub(super) stream: ClientStream,
    pub(super) buf: RefCell<BytesMut>,
    pub(super) body: RefCell<BodyState>,
    /// Bytes of `100 Continue` still to write before the body is read.
    pub(super) continue_left: Cell<usize>,
    /// The handler asked for the body (so a pending `100 Continue` is due,
    /// even for an empty one).
    pub(super) continue_asked: Cell<bool>,
    /// Bytes of the current request's body read off the wire (chunk framing
    /// included): with its head, `$request_length`.
    pub(super) body_bytes: Cell<u64>,
}

impl ClientIo {
    pub(super) fn new(stream: ClientStream) -> ClientIo {
        ClientIo {
            stream,
            buf: RefCell::new(BytesMut::new()),
            body: RefCell::new(BodyState::Done),
            continue_left: Cell::new(0),
            continue_asked: Cell::new(false),
            body_bytes: Cell::new(0),
        }
    }

    /// Reads what the kernel has into the buffer (at least `want` bytes of
    /// room): `Ok(0)` at end of stream. After a short read the socket's
    /// readiness is cleared, so the next wait does not begin with a read that
    /// says `EAGAIN` (edge-triggered epoll reports the next arrival anyway).
    pub(super) fn poll_fill(
        &self,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<std::io::Result<usize>> {
        let stream = match &self.stream {
            ClientStream::Plain(stream) => stream,
            ClientStream::Tls(tls) => {
                let mut buf = self.buf.borrow_mut();
                if buf.capacity() == 0 {
                    *buf = crate::reuse::read_buf(want);
                }
                crate::reuse::make_room(&mut buf, want);
                let mut tls = tls.borrow_mut();
                return tokio_util::io::poll_read_buf(Pin::new(&mut *tls), cx, &mut *buf);
            }
        };
        loop {
            ready!(stream.poll_read_ready(cx))?;
            let mut buf = self.buf.borrow_mut();
            if buf.capacity() == 0 {
                // An idle connection holds no buffer: one is taken now.
                *buf = crate::reuse::read_buf(want);
            }
            crate::reuse::make_room(&mut buf, want);
            let room = buf.capacity() - buf.len();
            match stream.try_read_buf(&mut *buf) {
                Ok(n) => {
                    if n > 0 && n < room {
                        let _ = stream.try_io(Interest::READABLE, || {
                            Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                        });
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// True when the request's body has been read to its end (or there was
    /// none).
    pub(super) fn body_done(&self) -> bool {
        matches!(*self.body.borrow(), BodyState::Done)
    }

    /// Counts `n` bytes of the request's body as read off the wire.
    fn count(&self, n: usize) {
        self.body_bytes.set(self.body_bytes.get() + n as u64);
    }

    /// Whether the client has closed the connection (or broken it) while its
    /// request is answered: an end of stream with nothing before it. Ready
    /// `false` when bytes wait instead (a pipelined request: the connection
    /// is alive); only called once the request's body is read.
    pub(super) fn poll_client_gone(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if !self.buf.borrow().is_empty() {
            return Poll::Ready(false);
        }
        let mut byte = [0u8; 1];
        let mut probe = tokio::io::ReadBuf::new(&mut byte);
        let peeked = match &self.stream {
            ClientStream::Plain(stream) => stream.poll_peek(cx, &mut probe),
            // The TCP stream under TLS: its end is the client's; bytes
            // there (a record) say it is alive.
            ClientStream::Tls(tls) => tls.borrow().get_ref().0.poll_peek(cx, &mut probe),
        };
        match peeked {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => Poll::Ready(true),
            Poll::Ready(Ok(_)) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }

    /// True when bytes of a next request are already buffered (pipelined).
    pub(super) fn has_buffered(&self) -> bool {
        !self.buf.borrow().is_empty()
    }

    /// Gives the read buffer back while the connection waits idle (it holds
    /// no bytes).
    pub(super) fn release(&self) {
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            crate::reuse::give_read_buf(std::mem::take(&mut *buf));
        }
    }

    /// Waits until the socket is readable (bytes or end of stream), holding
    /// no buffer, or until the worker signals the connection to end or to give
    /// its request state back.
    pub(super) fn poll_idle(&self, cx: &mut Context<'_>, state: &ConnState) -> Poll<Idle> {
        if state.signal() != Signal::None {
            return Poll::Ready(Idle::End);
        }
        let stream = match &self.stream {
            ClientStream::Plain(stream) => stream,
            ClientStream::Tls(_) => {
                // Data only counts once decrypted: read it (a buffer is
                // held only while bytes are in it).
                return match self.poll_fill(cx, IDLE_TLS_READ) {
                    Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(Idle::End),
                    Poll::Ready(Ok(_)) => Poll::Ready(Idle::Readable),
                    Poll::Pending => {
                        self.release();
                        if state.shed_asked() {
                            Poll::Ready(Idle::Shed)
                        } else {
                            Poll::Pending
                        }
                    }
                };
            }
        };
        match stream.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Idle::Readable),
            Poll::Ready(Err(_)) => Poll::Ready(Idle::End),
            Poll::Pending if state.shed_asked() => Poll::Ready(Idle::Shed),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The socket and the bytes read past the last request (a tunnel's
    /// first bytes).
    pub(super) fn into_parts(self) -> (ClientStream, BytesMut) {
        (self.stream, self.buf.into_inner())
    }

    /// Writes some of `bufs`: how much went out (never 0).
    pub(super) fn poll_write(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let stream = match &self.stream {
            ClientStream::Plain(stream) => stream,
            ClientStream::Tls(tls) => {
                let mut tls = tls.borrow_mut();
                return match ready!(Pin::new(&mut *tls).poll_write_vectored(cx, bufs)) {
                    Ok(0) if bufs.iter().any(|b| !b.is_empty()) => {
                        Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                    }
                    other => Poll::Ready(other),
                };
            }
        };
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match stream.try_write_vectored(bufs) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Pushes out what the TLS layer still holds of what was written (plain
    /// TCP holds nothing).
    pub(super) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &self.stream {
            ClientStream::Plain(_) => Poll::Ready(Ok(())),
            ClientStream::Tls(tls) => Pin::new(&mut *tls.borrow_mut()).poll_flush(cx),
        }
    }

    /// Writes what is left of `100 Continue`.
    pub(super) fn poll_continue(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.continue_left.get() > 0 {
            let from = CONTINUE.len() - self.continue_left.get();
            let rest = CONTINUE.get(from..).unwrap_or_default();
            let n = ready!(self.poll_write(cx, &[IoSlice::new(rest)]))?;
            self.continue_left
                .set(self.continue_left.get().saturating_sub(n));
        }
        self.poll_flush(cx)
    }

    /// True when the request body has been read, or all of it is in the
    /// buffer (it can be skipped without waiting for the client).
    pub(super) fn body_in_hand(&self) -> bool {
        let buf = self.buf.borrow();
        match &*self.body.borrow() {
            BodyState::Done => true,
            BodyState::Length(n) => buf.len() as u64 >= *n,
            BodyState::Chunked(decoder) => {
                let mut probe = decoder.clone();
                let mut at = 0;
                loop {
                    match probe.next(buf.get(at..).unwrap_or_default()) {
                        Ok(Chunk::Data { start, len }) => at += start + len,
                        Ok(Chunk::End { .. }) => return true,
                        Ok(Chunk::Need) | Err(_) => return false,
                    }
                }
            }
            BodyState::Broken | BodyState::Invalid => false,
        }
    }

    /// Skips the rest of a request body that is all in the buffer (one the
    /// pipeline did not read: a 404 to a POST, say). False when the
    /// connection is not at the start of the next request.
    pub(super) fn skip_body(&self) -> bool {
        if !self.body_in_hand() {
            return false;
        }
        let mut buf = self.buf.borrow_mut();
        let mut state = self.body.borrow_mut();
        match &mut *state {
            BodyState::Length(n) => {
                self.count(*n as usize);
                buf.advance(*n as usize);
            }
            BodyState::Chunked(decoder) => loop {
                match decoder.next(&buf) {
                    Ok(Chunk::Data { start, len }) => {
                        self.count(start + len);
                        buf.advance(start + len);
                    }
                    Ok(Chunk::End { consumed }) => {
                        self.count(consumed);
                        buf.advance(consumed);
                        break;
                    }
                    Ok(Chunk::Need) | Err(_) => return false,
                }
            },
            BodyState::Done | BodyState::Broken | BodyState::Invalid => {}
        }
        *state = BodyState::Done;
        true
    }
}

/// The body of a client's request, read from its connection as the pipeline
/// asks for it.
pub struct RequestBody {
    pub(super) io: Option<Rc<ClientIo>>,
    /// How the client framed it (typed, from the parsed head).
    pub(super) framing: BodyFraming,
    /// An HTTP/2 stream's body (`io` is `None` then). Boxed: an HTTP/1
    /// body grows by one pointer, and its reads by nothing.
    pub(super) stream: Option<Box<StreamBody>>,
}

/// The client broke its request body's framing (`invalid`: a malformed
/// chunked body, 400) or closed the connection before the body's end.
#[derive(Debug)]
pub struct BodyError {
    what: &'static str,
    pub invalid: bool,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
}

impl BodyError {
    /// Whether `e` says the client's body was malformed (not merely cut).
    pub fn is_invalid(e: &(dyn std::error::Error + 'static)) -> bool {
        let inner = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|i| i as &(dyn std::error::Error + 'static)),
            None => Some(e),
        };
        inner
            .and_then(|i| i.downcast_ref::<BodyError>())
            .is_some_and(|b| b.invalid)
    }
}

impl std::error::Error for BodyError {}

impl RequestBody {
    /// No body.
    pub fn empty() -> RequestBody {
        RequestBody {
            io: None,
            framing: BodyFraming::None,
            stream: None,
        }
    }

    /// How the client framed the body in its request head.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// The handler will read the body: a `100 Continue` the client waits for
    /// is due (nginx sends it whenever it reads a body, an empty one
    /// included), written before the body is read or the response head.
    pub fn want(&self) {
        if let Some(io) = &self.io {
            io.continue_asked.set(true);
        }
    }

    /// True when nothing (more) will come.
    pub fn is_end(&self) -> bool {
        match &self.io {
            Some(io) => matches!(*io.body.borrow(), BodyState::Done),
            None => self.stream.as_ref().is_none_or(|s| s.is_end()),
        }
    }

    /// The bytes still to come, when the client said (`Content-Length`).
    pub fn exact_len(&self) -> Option<u64> {
        match self.io.as_ref().map(|io| io.body.borrow()) {
            None => self.stream.as_ref().map_or(Some(0), |s| s.exact_len()),
            Some(state) => match &*state {
                BodyState::Done => Some(0),
                BodyState::Length(n) => Some(*n),
                BodyState::Chunked(_) | BodyState::Broken | BodyState::Invalid => None,
            },
        }
    }

    /// The trailer fields that came after the body (an HTTP/2 stream's;
    /// an HTTP/1 client's chunked trailers are read and dropped, as nginx),
    /// once [`RequestBody::poll_data`] gave `None`; given once.
    pub fn take_trailers(&mut self) -> Option<http::HeaderMap> {
        self.stream.as_mut().and_then(|s| s.take_trailers())
    }

    /// The next piece of the body, `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        let Some(io) = self.io.as_deref() else {
            return match &mut self.stream {
                Some(stream) => stream.poll_data(cx),
                None => Poll::Ready(None),
            };
        };
        loop {
            {
                let mut state = io.body.borrow_mut();
                let mut buf = io.buf.borrow_mut();
                match &mut *state {
                    BodyState::Done => return Poll::Ready(None),
                    BodyState::Broken => return Poll::Ready(Some(Err(broken("request body")))),
                    BodyState::Invalid => {
                        return Poll::Ready(Some(Err(invalid("invalid chunked request body"))))
                    }
                    BodyState::Length(n) => {
                        if !buf.is_empty() {
                            let take = (*n).min(buf.len() as u64) as usize;
                            *n -= take as u64;
                            if *n == 0 {
                                *state = BodyState::Done;
                            }
                            io.count(take);
                            return Poll::Ready(Some(Ok(buf.split_to(take).freeze())));
                        }
                    }
                    BodyState::Chunked(decoder) => match decoder.next(&buf) {
                        Ok(Chunk::Data { start, len }) => {
                            io.count(start + len);
                            buf.advance(start);
                            return Poll::Ready(Some(Ok(buf.split_to(len).freeze())));
                        }
                        Ok(Chunk::Need) => {
                            io.count(buf.len());
                            buf.clear();
                        }
                        Ok(Chunk::End { consumed }) => {
                            io.count(consumed);
                            buf.advance(consumed);
                            *state = BodyState::Done;
                            return Poll::Ready(None);
                        }
                        Err(_) => {
                            *state = BodyState::Invalid;
                            return Poll::Ready(Some(Err(invalid("invalid chunked request body"))));
                        }
                    },
                }
            }
            // The client waits for our word before it sends the body.
            io.continue_asked.set(true);
            if let Err(e) = ready!(io.poll_continue(cx)) {
                *io.body.borrow_mut() = BodyState::Broken;
                return Poll::Ready(Some(Err(e)));
            }
            match ready!(io.poll_fill(cx, BODY_READ)) {
                Ok(0) => {
                    *io.body.borrow_mut() = BodyState::Broken;
                    return Poll::Ready(Some(Err(broken(
                        "client closed the connection before the end of the body",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    *io.body.borrow_mut() = BodyState::Broken;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

pub(super) fn broken(what: &'static str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        BodyError {
            what,
            invalid: false,
        },
    )
}

fn invalid(what: &'static str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        BodyError {
            what,
            invalid: true,
        },
    )
}
