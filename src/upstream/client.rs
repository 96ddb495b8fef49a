//! HTTP/1.1 towards the backends, the I/O half: one [`Transport`] (a TCP
//! connection and its read buffer) carries one exchange at a time.
//!
//! [`send`] writes the encoded request head (`http1::request`), streams the
//! request body (raw after a `Content-Length`, chunked otherwise) while watching
//! for the response, skips `1xx` interim responses, and returns the response
//! head with an [`UpstreamBody`] that reads the rest from the same socket. The
//! body is polled by the client connection's own task: no task, channel or
//! timer per request, and a small response (head and body in one segment) is
//! one `read` and a split of the buffer, with no copy. When the body has been
//! read to its end and the connection may be reused, [`UpstreamBody::finish`]
//! hands the transport back for the keep-alive pool; a `101` hands it to the
//! tunnel ([`UpstreamBody::into_upgraded`]).
//!
//! A backend that answers before it has read the whole request body (a 413,
//! say) is heard: the upload goes on from the response body's polls, and the
//! connection is reused only if it finished.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderName;
use http_body::Body;
use tokio::io::AsyncWrite;
use tokio::time::Sleep;

use crate::http1::chunked::{self, Chunk, ChunkError, ChunkedDecoder, LAST_CHUNK};
use crate::http1::framing::{Framing, RequestFraming};
use crate::http1::response::{self, HeadError, LineKind, ResponseHead};
use crate::http1::trailers;
use crate::upstream::pool::Live;
use crate::upstream::stream::{ConnKey, Stream};

/// Errors of request bodies and of the bodies streamed from backends.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes asked of the kernel per read of a response head.
const HEAD_READ: usize = 8 * 1024;
/// Largest read of a response body (bodies stream in pieces of at most this).
const BODY_READ: usize = 64 * 1024;

pub use crate::upstream::connect::{connect, connect_keyed, connect_unix, ConnectError};

/// A connection to a backend and the bytes read from it but not yet used.
pub struct Transport {
    pub(super) stream: Stream,
    pub(super) buf: BytesMut,
    /// Plain, or TLS with which settings to which name: the pool hands the
    /// connection only to a request with the same key.
    pub(super) key: ConnKey,
}

impl Live for Transport {
    type Key = ConnKey;

    /// True when the backend closed the idle connection (or sent bytes nobody
    /// asked for). Looks at the readiness tokio already has: no system call
    /// unless the socket became readable while idle.
    fn is_closed(&mut self) -> bool {
        !self.buf.is_empty() || self.stream.idle_closed()
    }

    fn key(&self) -> &ConnKey {
        &self.key
    }
}

impl Transport {
    /// Reads what the kernel has into the buffer (at least `want` bytes of
    /// room): `Ok(0)` at end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<std::io::Result<usize>> {
        crate::reuse::make_room(&mut self.buf, want);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf)
    }

    /// Writes some of `data`: how much went out (never 0: a socket that takes
    /// nothing is a `WriteZero` error).
    fn poll_write_some(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match ready!(Pin::new(&mut self.stream).poll_write(cx, data)) {
            Ok(0) => Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
            other => Poll::Ready(other),
        }
    }

    /// Writes `data` from `*done` on; `*done` counts what went out.
    fn poll_write_from(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        done: &mut usize,
    ) -> Poll<std::io::Result<()>> {
        while let Some(rest) = data.get(*done..).filter(|r| !r.is_empty()) {
            *done += ready!(self.poll_write_some(cx, rest))?;
        }
        Poll::Ready(Ok(()))
    }

    /// The socket and the bytes already read past the last response head (for
    /// a tunnel after `101 Switching Protocols`).
    pub fn into_parts(self) -> (Stream, Bytes) {
        (self.stream, self.buf.freeze())
    }
}

/// A timer armed only while the stream it guards has to wait, so transfers
/// that never block never touch the timer wheel.
pub struct IdleTimer {
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl IdleTimer {
    /// A timer of `limit` (0: never expires).
    pub fn new(limit: Duration) -> Self {
        IdleTimer { limit, sleep: None }
    }

    /// Progress was made: the next wait starts a fresh period.
    pub fn progressed(&mut self) {
        self.sleep = None;
    }

    /// The stream is waiting: true once the period has run out.
    pub fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.limit.is_zero() {
            return false;
        }
        let limit = self.limit;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        sleep.as_mut().poll(cx).is_ready()
    }
}

/// Why an exchange with a backend failed.
#[derive(Debug)]
pub enum SendError {
    /// The connection failed or closed. `sent`: some of the request went out,
    /// so resending it is up to `proxy_next_upstream`'s idempotency rules.
    Io { sent: bool, error: std::io::Error },
    /// The backend's response head was malformed.
    Head(HeadError),
    /// `proxy_send_timeout` passed with the backend taking no request bytes.
    SendTimeout,
    /// The client's request body failed (too large, timed out, client gone).
    Body(BoxError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Io { error, .. } => write!(f, "upstream connection failed: {error}"),
            SendError::Head(e) => write!(f, "{e}"),
            SendError::SendTimeout => write!(f, "upstream timed out while sending request"),
            SendError::Body(e) => write!(f, "client request body: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why the request body stopped going out.
enum UploadError {
    Body(BoxError),
    Write(std::io::Error),
    Timeout,
}

/// A request body being written to the backend.
struct Upload<B> {
    body: B,
    chunked: bool,
    /// Pieces waiting to be written (chunk size line, data, CRLF).
    out: [Bytes; 3],
    /// The body has ended (and the last chunk is queued).
    ended: bool,
    /// The last chunk with the client's trailer fields, when it sent some.
    trailers: Option<Bytes>,
    timer: IdleTimer,
}

impl<B> Upload<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    fn new(body: B, chunked: bool, send_timeout: Duration) -> Self {
        Upload {
            body,
            chunked,
            out: Default::default(),
            ended: false,
            trailers: None,
            timer: IdleTimer::new(send_timeout),
        }
    }

    /// Moves body bytes to the socket until the body ends (`Ready(Ok)`), the
    /// body or the socket has to wait (`Pending`), or either fails.
    fn poll(&mut self, io: &mut Transport, cx: &mut Context<'_>) -> Poll<Result<(), UploadError>> {
        loop {
            for piece in &mut self.out {
                while !piece.is_empty() {
                    match io.poll_write_some(cx, piece) {
                        Poll::Ready(Ok(n)) => {
                            piece.advance(n);
                            self.timer.progressed();
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(UploadError::Write(e))),
                        Poll::Pending => {
                            if self.timer.expired(cx) {
                                return Poll::Ready(Err(UploadError::Timeout));
                            }
                            return Poll::Pending;
                        }
                    }
                }
            }
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => {
                            // Trailers go on in the last chunk; a body sent
                            // with its length cannot carry them.
                            if let (true, Ok(fields)) = (self.chunked, frame.into_trailers()) {
                                self.trailers = Some(trailers::last_chunk(&fields));
                            }
                            continue;
                        }
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        self.out = [
                            chunked::chunk_size_line(data.len()),
                            data,
                            Bytes::from_static(b"\r\n"),
                        ];
                    } else {
                        self.out[0] = data;
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(UploadError::Body(e.into()))),
                Poll::Ready(None) => {
                    self.ended = true;
                    if self.chunked {
                        self.out[0] = self
                            .trailers
                            .take()
                            .unwrap_or(Bytes::from_static(LAST_CHUNK));
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// One request for [`send`].
pub struct Outgoing<'a, B> {
    /// The encoded head ([`crate::http1::request::encode_request_head`]).
    pub head: &'a [u8],
    /// The body, when there is one; its framing was chosen with the head.
    pub body: Option<B>,
    pub framing: RequestFraming,
    /// A HEAD request: the response has no body whatever it says.
    pub head_request: bool,
    /// `proxy_send_timeout`.
    pub send_timeout: Duration,
    /// Response header lines to leave out (hop-by-hop, `proxy_hide_header`
    /// and nginx's default hidden ones): never put in the response's map.
    pub leave_out: &'a dyn Fn(&HeaderName, LineKind) -> bool,
    /// Where the response head's bytes go, as received (the header values
    /// share them; the client's head spells the names from them).
    pub received: &'a Cell<Option<Bytes>>,
}

/// Sends `req` on `io` and waits for the response head. On failure the body
/// comes back when none of the request was written (it can go to another
/// connection).
pub async fn send<B>(
    mut io: Transport,
    req: Outgoing<'_, B>,
) -> Result<(ResponseHead, UpstreamBody<B>), (SendError, Option<B>)>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut written = 0;
    let wrote_head = poll_fn(|cx| io.poll_write_from(cx, req.head, &mut written)).await;
    if let Err(error) = wrote_head {
        let sent = written > 0;
        let body = if sent { None } else { req.body };
        return Err((SendError::Io { sent, error }, body));
    }
    let chunked = req.framing == RequestFraming::Chunked;
    // Boxed: only requests with a body have one, and every response body would
    // otherwise carry its room.
    let mut upload = req
        .body
        .map(|b| Box::new(Upload::new(b, chunked, req.send_timeout)));
    // Set when the backend stopped taking the body: the response may still come.
    let mut broken = false;
    let head = poll_fn(|cx| {
        if let Some(up) = upload.as_mut() {
            match up.poll(&mut io, cx) {
                Poll::Ready(Ok(())) => upload = None,
                Poll::Ready(Err(UploadError::Body(e))) => {
                    return Poll::Ready(Err(SendError::Body(e)))
                }
                Poll::Ready(Err(UploadError::Timeout)) => {
                    return Poll::Ready(Err(SendError::SendTimeout))
                }
                Poll::Ready(Err(UploadError::Write(e))) => {
                    tracing::debug!("upstream stopped taking the request body: {e}");
                    upload = None;
                    broken = true;
                }
                Poll::Pending => {}
            }
        }
        poll_head(&mut io, cx, req.head_request, req.leave_out, req.received)
    })
    .await
    .map_err(|e| (e, None))?;
    let framing = head.framing;
    let reusable = head.keep_alive && !broken;
    Ok((
        head,
        UpstreamBody {
            io: Some(io),
            state: match framing {
                Framing::Empty => BodyState::Done,
                Framing::Length(n) => BodyState::Length(n),
                Framing::Chunked => BodyState::Chunked(ChunkedDecoder::new()),
                Framing::Close => BodyState::Close,
            },
            upload,
            reusable,
            trailers: None,
        },
    ))
}

/// Reads until a final response head is complete, skipping interim `1xx`
/// responses (but `101`, which ends HTTP on the connection).
fn poll_head(
    io: &mut Transport,
    cx: &mut Context<'_>,
    head_request: bool,
    leave_out: &dyn Fn(&HeaderName, LineKind) -> bool,
    received: &Cell<Option<Bytes>>,
) -> Poll<Result<ResponseHead, SendError>> {
    loop {
        if let Some(layout) = response::locate_response_head(&io.buf).map_err(SendError::Head)? {
            let bytes = io.buf.split_to(layout.len).freeze();
            if (100..200).contains(&layout.status) && layout.status != 101 {
                continue;
            }
            let head = response::build_response_head(&bytes, &layout, head_request, leave_out)
                .map_err(SendError::Head)?;
            // The header values share these bytes; whoever writes the head
            // again spells the names from them.
            received.set(Some(bytes));
            return Poll::Ready(Ok(head));
        }
        match ready!(io.poll_fill(cx, HEAD_READ)) {
            Ok(0) => {
                let eof = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "upstream prematurely closed connection",
                );
                return Poll::Ready(Err(SendError::Io {
                    sent: true,
                    error: eof,
                }));
            }
            Ok(_) => {}
            Err(error) => return Poll::Ready(Err(SendError::Io { sent: true, error })),
        }
    }
}

enum BodyState {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
    Done,
}

/// A backend's response body, read from its connection as the client takes it.
pub struct UpstreamBody<B> {
    io: Option<Transport>,
    state: BodyState,
    /// The rest of a request body the backend answered before reading it all.
    upload: Option<Box<Upload<B>>>,
    /// The connection may carry another request once this body has ended.
    reusable: bool,
    /// A chunked body's trailer fields (those that may pass on), once it
    /// has ended.
    /// Boxed: rare, and a `HeaderMap` inline would widen every response
    /// body the request path moves.
    trailers: Option<Box<http::HeaderMap>>,
}

/// A broken response body: the backend closed early or sent bad framing.
#[derive(Debug)]
pub enum BodyError {
    Io(std::io::Error),
    Chunked(ChunkError),
    Truncated,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Io(e) => write!(f, "upstream body: {e}"),
            BodyError::Chunked(e) => write!(f, "{e}"),
            BodyError::Truncated => write!(f, "upstream prematurely closed connection"),
        }
    }
}

impl std::error::Error for BodyError {}

impl<B> UpstreamBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// True once nothing more will be read.
    pub fn is_end(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Bytes left when the length is known.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            BodyState::Length(n) => Some(n),
            BodyState::Done => Some(0),
            _ => None,
        }
    }

    /// The next piece of the body; `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(up) = self.upload.as_mut() {
            match up.poll(io, cx) {
                Poll::Ready(Ok(())) => self.upload = None,
                Poll::Ready(Err(_)) => {
                    self.upload = None;
                    self.reusable = false;
                }
                Poll::Pending => {}
            }
        }
        let polled = poll_state(&mut self.state, io, cx, &mut self.trailers);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.state = BodyState::Done;
            self.reusable = false;
            self.io = None;
        }
        polled
    }

    /// The trailer fields of a chunked body (those that may pass on), once
    /// [`UpstreamBody::poll_data`] gave `None`; given once.
    pub fn take_trailers(&mut self) -> Option<http::HeaderMap> {
        self.trailers.take().map(|t| *t)
    }

    /// The connection, once the body has been read to its end cleanly and the
    /// exchange leaves it fit for another request.
    pub fn finish(&mut self) -> Option<Transport> {
        let clean = self.is_end() && self.reusable && self.upload.is_none();
        let io = self.io.take()?;
        (clean && io.buf.is_empty()).then_some(io)
    }

    /// The connection after a `101 Switching Protocols`.
    pub fn into_upgraded(mut self) -> Option<Transport> {
        self.io.take()
    }
}

fn poll_state(
    state: &mut BodyState,
    io: &mut Transport,
    cx: &mut Context<'_>,
    trailers: &mut Option<Box<http::HeaderMap>>,
) -> Poll<Option<Result<Bytes, BodyError>>> {
    loop {
        match state {
            BodyState::Done => return Poll::Ready(None),
            BodyState::Length(left) => {
                if io.buf.is_empty() {
                    let want = usize::try_from(*left)
                        .unwrap_or(BODY_READ)
                        .clamp(HEAD_READ, BODY_READ);
                    match ready!(io.poll_fill(cx, want)) {
                        Ok(0) => return Poll::Ready(Some(Err(BodyError::Truncated))),
                        Ok(_) => {}
                        Err(e) => return Poll::Ready(Some(Err(BodyError::Io(e)))),
                    }
                }
                let take = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(io.buf.len());
                *left -= take as u64;
                if *left == 0 {
                    *state = BodyState::Done;
                }
                return Poll::Ready(Some(Ok(io.buf.split_to(take).freeze())));
            }
            BodyState::Chunked(dec) => {
                if !io.buf.is_empty() {
                    match dec.next(&io.buf) {
                        Ok(Chunk::Data { start, len }) => {
                            io.buf.advance(start);
                            return Poll::Ready(Some(Ok(io.buf.split_to(len).freeze())));
                        }
                        Ok(Chunk::Need) => io.buf.clear(),
                        Ok(Chunk::End { consumed }) => {
                            io.buf.advance(consumed);
                            let section = dec.take_trailer_section();
                            if !section.is_empty() {
                                *trailers = trailers::parse_section(&section).map(Box::new);
                            }
                            *state = BodyState::Done;
                            return Poll::Ready(None);
                        }
                        Err(e) => return Poll::Ready(Some(Err(BodyError::Chunked(e)))),
                    }
                }
                match ready!(io.poll_fill(cx, BODY_READ)) {
                    Ok(0) => return Poll::Ready(Some(Err(BodyError::Truncated))),
                    Ok(_) => {}
                    Err(e) => return Poll::Ready(Some(Err(BodyError::Io(e)))),
                }
            }
            BodyState::Close => {
                if !io.buf.is_empty() {
                    let all = io.buf.len();
                    return Poll::Ready(Some(Ok(io.buf.split_to(all).freeze())));
                }
                match ready!(io.poll_fill(cx, BODY_READ)) {
                    Ok(0) => {
                        *state = BodyState::Done;
                        return Poll::Ready(None);
                    }
                    Ok(_) => {}
                    Err(e) => return Poll::Ready(Some(Err(BodyError::Io(e)))),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    fn run<F: Future<Output = ()>>(f: F) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f);
    }

    /// A transport to a fresh listener, and the backend's side of it.
    async fn pair() -> (Transport, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let io = connect(addr, Duration::from_secs(5)).await.unwrap();
        let (backend, _) = listener.accept().await.unwrap();
        (io, backend)
    }

    /// Lets the close or the bytes reach the transport's socket and tokio's
    /// readiness (the check itself never waits).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::task::yield_now().await;
    }

    #[test]
    fn an_idle_connection_is_live_until_the_backend_closes_it() {
        run(async {
            let (mut io, backend) = pair().await;
            settle().await;
            assert!(!io.is_closed(), "open and quiet");
            drop(backend);
            settle().await;
            assert!(io.is_closed(), "closed by the backend");
        });
    }

    #[test]
    fn bytes_nobody_asked_for_make_an_idle_connection_unusable() {
        run(async {
            let (mut io, mut backend) = pair().await;
            backend.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
            settle().await;
            assert!(io.is_closed());
            // Bytes already buffered count too.
            let (mut io, _backend) = pair().await;
            io.buf.extend_from_slice(b"x");
            assert!(io.is_closed());
        });
    }

    #[test]
    fn refused_connection_is_an_io_error() {
        run(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            drop(listener);
            assert!(matches!(
                connect(addr, Duration::from_secs(5)).await,
                Err(ConnectError::Io(_))
            ));
        });
    }
}
