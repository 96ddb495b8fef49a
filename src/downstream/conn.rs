//! HTTP/1.x towards the clients, the I/O half: one client connection, served
//! by one coroutine on the worker's thread.
//!
//! [`serve`] reads a request head (`http1::request`), hands the request to the
//! worker's pipeline (`proxy::forward::Worker::handle`), writes the response
//! head and streams its body, and goes on with the next request of a kept-alive
//! connection (pipelined ones are answered in order: they wait in the read
//! buffer). The request body is a [`RequestBody`] reading from the same
//! connection: the pipeline streams it to the backend while the connection's
//! coroutine waits for the response, and `Expect: 100-continue` is answered
//! when the body is first asked for. A small response (head and body in hand)
//! is one `writev`; a large body goes out in the pieces it arrives in, with
//! no copy. After a `101 Switching Protocols` the connection becomes a byte
//! tunnel to the backend.
//!
//! Timeouts are the worker sweeper's (`ConnInfo::sweep`): the connection only
//! notes since when it has been waiting for a request and since when a write
//! has been blocked (`send_timeout`). Signals from the worker (evict, drain)
//! reach the coroutine through `ConnInfo`: an eviction drops it, a drain closes
//! the connection when it is idle or after the response in progress.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::SystemTime;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, Response, Version};
use http_body::Body;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::http1::chunked::{write_chunk_size, Chunk, ChunkedDecoder, LAST_CHUNK};
use crate::http1::framing::{BodyFraming, BodyOut};
use crate::http1::request::{self, Limits, RequestError, RequestHead};
use crate::http1::response::{self, ResponseContext, CONTINUE};
use crate::proxy::forward::{self, ConnInfo, ProxyBody, Signal, Worker};
use crate::upstream::client::Transport;

/// Bytes asked of the kernel per read of a request head.
const HEAD_READ: usize = 4 * 1024;
/// Largest read of a request body.
const BODY_READ: usize = 64 * 1024;
/// Response data up to this size is copied next to the head (one write for
/// both); larger pieces are written from their own buffer.
const COALESCE: usize = 16 * 1024;

/// The connection settings of one listen address.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `large_client_header_buffers`.
    pub limits: Limits,
    /// `keepalive_timeout` and `keepalive_requests` allow a second request.
    pub keep_alive: bool,
}

/// Where the current request's body stands.
#[derive(Debug)]
enum BodyState {
    /// Read to its end (or there was none).
    Done,
    /// This many bytes still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// The client broke the framing or the connection.
    Broken,
}

/// The client connection: the socket and the bytes read from it but not yet
/// used, shared by the connection's coroutine and the request body.
pub struct ClientIo {
    stream: TcpStream,
    buf: RefCell<BytesMut>,
    body: RefCell<BodyState>,
    /// Bytes of `100 Continue` still to write before the body is read.
    continue_left: Cell<usize>,
}

impl ClientIo {
    fn new(stream: TcpStream) -> ClientIo {
        ClientIo {
            stream,
            buf: RefCell::new(BytesMut::new()),
            body: RefCell::new(BodyState::Done),
            continue_left: Cell::new(0),
        }
    }

    /// Reads what the kernel has into the buffer (at least `want` bytes of
    /// room): `Ok(0)` at end of stream. After a short read the socket's
    /// readiness is cleared, so the next wait does not begin with a read that
    /// says `EAGAIN` (edge-triggered epoll reports the next arrival anyway).
    fn poll_fill(&self, cx: &mut Context<'_>, want: usize) -> Poll<std::io::Result<usize>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            let mut buf = self.buf.borrow_mut();
            crate::reuse::make_room(&mut buf, want);
            let room = buf.capacity() - buf.len();
            match self.stream.try_read_buf(&mut *buf) {
                Ok(n) => {
                    if n > 0 && n < room {
                        let _ = self.stream.try_io(Interest::READABLE, || {
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

    /// Writes some of `bufs`: how much went out (never 0).
    fn poll_write(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write_vectored(bufs) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Writes what is left of `100 Continue`.
    fn poll_continue(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.continue_left.get() > 0 {
            let from = CONTINUE.len() - self.continue_left.get();
            let rest = CONTINUE.get(from..).unwrap_or_default();
            let n = ready!(self.poll_write(cx, &[IoSlice::new(rest)]))?;
            self.continue_left
                .set(self.continue_left.get().saturating_sub(n));
        }
        Poll::Ready(Ok(()))
    }

    /// True when the request body has been read, or all of it is in the
    /// buffer (it can be skipped without waiting for the client).
    fn body_in_hand(&self) -> bool {
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
            BodyState::Broken => false,
        }
    }

    /// Skips the rest of a request body that is all in the buffer (one the
    /// pipeline did not read: a 404 to a POST, say). False when the
    /// connection is not at the start of the next request.
    fn skip_body(&self) -> bool {
        if !self.body_in_hand() {
            return false;
        }
        let mut buf = self.buf.borrow_mut();
        let mut state = self.body.borrow_mut();
        match &mut *state {
            BodyState::Length(n) => buf.advance(*n as usize),
            BodyState::Chunked(decoder) => loop {
                match decoder.next(&buf) {
                    Ok(Chunk::Data { start, len }) => buf.advance(start + len),
                    Ok(Chunk::End { consumed }) => {
                        buf.advance(consumed);
                        break;
                    }
                    Ok(Chunk::Need) | Err(_) => return false,
                }
            },
            BodyState::Done | BodyState::Broken => {}
        }
        *state = BodyState::Done;
        true
    }
}

/// The body of a client's request, read from its connection as the pipeline
/// asks for it.
pub struct RequestBody {
    io: Option<Rc<ClientIo>>,
    /// How the client framed it (typed, from the parsed head).
    framing: BodyFraming,
}

/// The client broke its request body's framing or closed the connection
/// before the body's end.
#[derive(Debug)]
pub struct BodyError(&'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyError {}

impl RequestBody {
    /// No body.
    pub fn empty() -> RequestBody {
        RequestBody {
            io: None,
            framing: BodyFraming::None,
        }
    }

    /// How the client framed the body in its request head.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// True when nothing (more) will come.
    pub fn is_end(&self) -> bool {
        self.io
            .as_ref()
            .is_none_or(|io| matches!(*io.body.borrow(), BodyState::Done))
    }

    /// The bytes still to come, when the client said (`Content-Length`).
    pub fn exact_len(&self) -> Option<u64> {
        match self.io.as_ref().map(|io| io.body.borrow()) {
            None => Some(0),
            Some(state) => match &*state {
                BodyState::Done => Some(0),
                BodyState::Length(n) => Some(*n),
                BodyState::Chunked(_) | BodyState::Broken => None,
            },
        }
    }

    /// The next piece of the body, `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        let Some(io) = self.io.as_deref() else {
            return Poll::Ready(None);
        };
        loop {
            {
                let mut state = io.body.borrow_mut();
                let mut buf = io.buf.borrow_mut();
                match &mut *state {
                    BodyState::Done => return Poll::Ready(None),
                    BodyState::Broken => return Poll::Ready(Some(Err(broken("request body")))),
                    BodyState::Length(n) => {
                        if !buf.is_empty() {
                            let take = (*n).min(buf.len() as u64) as usize;
                            *n -= take as u64;
                            if *n == 0 {
                                *state = BodyState::Done;
                            }
                            return Poll::Ready(Some(Ok(buf.split_to(take).freeze())));
                        }
                    }
                    BodyState::Chunked(decoder) => match decoder.next(&buf) {
                        Ok(Chunk::Data { start, len }) => {
                            buf.advance(start);
                            return Poll::Ready(Some(Ok(buf.split_to(len).freeze())));
                        }
                        Ok(Chunk::Need) => buf.clear(),
                        Ok(Chunk::End { consumed }) => {
                            buf.advance(consumed);
                            *state = BodyState::Done;
                            return Poll::Ready(None);
                        }
                        Err(_) => {
                            *state = BodyState::Broken;
                            return Poll::Ready(Some(Err(broken("invalid chunked request body"))));
                        }
                    },
                }
            }
            // The client waits for our word before it sends the body.
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

fn broken(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, BodyError(what))
}

/// Response bytes waiting to go out, in order: `head` (the head, chunk
/// framing and small data), `data` (a large piece, not copied), `tail`.
struct Out {
    head: Vec<u8>,
    data: Bytes,
    tail: &'static [u8],
}

impl Out {
    fn is_empty(&self) -> bool {
        self.head.is_empty() && self.data.is_empty() && self.tail.is_empty()
    }

    /// Queues one piece of body data (framed as a chunk when `chunked`).
    /// Returns true when it must be written before anything else is queued.
    fn push(&mut self, data: Bytes, chunked: bool) -> bool {
        if chunked {
            write_chunk_size(&mut self.head, data.len());
        }
        if data.len() <= COALESCE && self.head.len() + data.len() <= 2 * COALESCE {
            self.head.extend_from_slice(&data);
            if chunked {
                self.head.extend_from_slice(b"\r\n");
            }
            false
        } else {
            self.data = data;
            self.tail = if chunked { b"\r\n" } else { b"" };
            true
        }
    }

    /// Queues the end of a chunked body.
    fn push_last_chunk(&mut self) {
        if self.data.is_empty() && self.tail.is_empty() {
            self.head.extend_from_slice(LAST_CHUNK);
        } else {
            self.tail = b"\r\n0\r\n\r\n";
        }
    }

    /// Writes everything queued. While the socket takes nothing the
    /// connection is marked as blocked on a write (`send_timeout`).
    async fn flush(&mut self, io: &ClientIo, info: &ConnInfo) -> std::io::Result<()> {
        let mut at = 0;
        let written = poll_fn(|cx| {
            while at < self.head.len() || !self.data.is_empty() || !self.tail.is_empty() {
                let slices = [
                    IoSlice::new(self.head.get(at..).unwrap_or_default()),
                    IoSlice::new(&self.data),
                    IoSlice::new(self.tail),
                ];
                let mut n = match io.poll_write(cx, &slices) {
                    Poll::Pending => {
                        info.write_blocked();
                        return Poll::Pending;
                    }
                    Poll::Ready(r) => r?,
                };
                let from_head = n.min(self.head.len() - at);
                at += from_head;
                n -= from_head;
                let from_data = n.min(self.data.len());
                self.data.advance(from_data);
                n -= from_data;
                self.tail = self.tail.get(n..).unwrap_or_default();
            }
            Poll::Ready(Ok(()))
        })
        .await;
        self.head.clear();
        info.write_done();
        written
    }
}

/// What follows a response.
enum Next {
    /// The connection waits for the next request.
    Continue,
    Close,
    /// A `101`: the connection becomes a tunnel to this backend connection.
    Tunnel(Transport),
}

/// Serves the requests of one client connection until it closes (or is told
/// to). `worker` gives the worker state of the configuration current when each
/// request arrives.
pub async fn serve(
    stream: TcpStream,
    info: Rc<ConnInfo>,
    settings: Settings,
    worker: impl Fn() -> Rc<Worker>,
) {
    let io = Rc::new(ClientIo::new(stream));
    let mut out = Out {
        head: Vec::with_capacity(1024),
        data: Bytes::new(),
        tail: b"",
    };
    loop {
        // Each request's parts live in blocks that end before the next wait,
        // so the connection's future (which holds them) keeps only what is
        // needed across it.
        let next = {
            let (facts, mut resp) = {
                let (mut req, facts) = {
                    let head = match read_head(&io, &info, settings.limits).await {
                        Ok(Some(head)) => head,
                        Ok(None) => return,
                        Err(e) => {
                            tracing::info!("client {} sent a bad request: {e:?}", info.remote);
                            let mut resp = forward::bad_request(e.into());
                            let _ =
                                respond(&io, &info, &mut out, &mut resp, false, false, false).await;
                            return;
                        }
                    };
                    request_of(&io, head)
                };
                // Lent, not given, to the handler: its future (moved as a whole
                // per request) stays smaller. Dropped here, with what it still holds.
                (facts, worker().handle(Rc::clone(&info), &mut req).await)
            };
            let next = respond(
                &io,
                &info,
                &mut out,
                &mut resp,
                facts.http10,
                facts.head_request,
                settings.keep_alive && facts.keep_alive,
            )
            .await;
            // The response is sent: its body's end (log line, idle clock) happens
            // now.
            drop(resp);
            next
        };
        match next {
            Next::Continue if io.skip_body() => {}
            Next::Continue | Next::Close => return,
            Next::Tunnel(backend) => {
                drop(out);
                // A tunnel is never idle: neither the idle timeout nor the
                // `worker_connections` eviction applies to it.
                info.waiting_since.set(None);
                match Rc::try_unwrap(io) {
                    Ok(io) => tunnel(io, backend).await,
                    Err(_) => tracing::debug!("upgrade abandoned: the request body is still read"),
                }
                return;
            }
        }
    }
}

/// What the connection needs to know of a request after it was handled.
#[derive(Clone, Copy)]
struct RequestFacts {
    http10: bool,
    head_request: bool,
    /// The client allows another request on the connection.
    keep_alive: bool,
}

/// The request for the handler, its body read from `io` as the handler asks
/// for it (a `100 Continue` goes first if the client waits for one).
fn request_of(io: &Rc<ClientIo>, head: RequestHead) -> (Request<RequestBody>, RequestFacts) {
    let RequestHead {
        parts,
        framing,
        keep_alive,
        expect_continue,
    } = head;
    let facts = RequestFacts {
        http10: parts.version == Version::HTTP_10,
        head_request: parts.method == Method::HEAD,
        keep_alive,
    };
    let body = match framing {
        BodyFraming::None => RequestBody::empty(),
        BodyFraming::Length(0) => RequestBody { io: None, framing },
        framing => {
            *io.body.borrow_mut() = match framing {
                BodyFraming::Length(n) => BodyState::Length(n),
                _ => BodyState::Chunked(ChunkedDecoder::new()),
            };
            let waiting = expect_continue && io.buf.borrow().is_empty();
            io.continue_left
                .set(if waiting { CONTINUE.len() } else { 0 });
            RequestBody {
                io: Some(Rc::clone(io)),
                framing,
            }
        }
    };
    (Request::from_parts(parts, body), facts)
}

/// Waits for a complete request head. `Ok(None)`: the client closed the
/// connection (or went quiet and a drain began) between requests.
async fn read_head(
    io: &ClientIo,
    info: &ConnInfo,
    limits: Limits,
) -> Result<Option<RequestHead>, RequestError> {
    // How much of the buffer the last parse saw (0: none yet).
    let mut seen = 0;
    poll_fn(|cx| loop {
        {
            let mut buf = io.buf.borrow_mut();
            if !buf.is_empty() {
                if seen == 0 || request::worth_parsing(&buf, &mut seen, limits) {
                    if let Some(head) = request::parse_request_head(&mut buf, limits)? {
                        return Poll::Ready(Ok(Some(head)));
                    }
                    seen = buf.len();
                }
            } else if info.signal() != Signal::None {
                return Poll::Ready(Ok(None));
            }
        }
        match ready!(io.poll_fill(cx, HEAD_READ)) {
            Ok(0) | Err(_) => return Poll::Ready(Ok(None)),
            Ok(_) => {}
        }
    })
    .await
}

/// Writes `resp`: its head, then its body as the pipeline produces it. The
/// connection stays open after it only if `may_keep_alive` (the client and
/// the server's settings allow it), no drain is under way, and the request
/// body is consumed. The response is lent, not given: the caller drops it once
/// it is sent, and this future (part of the connection's, per request) stays
/// small.
async fn respond(
    io: &ClientIo,
    info: &ConnInfo,
    out: &mut Out,
    resp: &mut Response<ProxyBody>,
    http10: bool,
    head_request: bool,
    may_keep_alive: bool,
) -> Next {
    // A `100 Continue` never asked for is not sent; one begun is finished
    // before the response.
    if io.continue_left.get() == CONTINUE.len() {
        io.continue_left.set(0);
        if !io.body_in_hand() {
            // The client may send the body anyway: the connection cannot
            // be trusted to be at a request boundary.
            *io.body.borrow_mut() = BodyState::Broken;
        }
    } else if poll_fn(|cx| io.poll_continue(cx)).await.is_err() {
        return Next::Close;
    }
    let keep_alive = may_keep_alive && info.signal() == Signal::None && io.body_in_hand();
    let status = resp.status();
    let (headers, body) = (std::mem::take(resp.headers_mut()), resp.body_mut());
    let committed = with_date(|date| {
        let ctx = ResponseContext {
            http10,
            head_request,
            keep_alive,
            body_len: body.size_hint().exact(),
            declared_len: body.declared_length(),
            close: body.closes(),
            date,
        };
        response::encode_response_head(&mut out.head, status, &headers, &ctx)
    });
    crate::reuse::give_map(headers);
    body.head_sent(out.head.len());
    let tunnel = body.take_tunnel();
    let chunked = committed.body == BodyOut::Chunked;
    let mut left = match committed.body {
        BodyOut::Length(n) => Some(n),
        _ => None,
    };
    let complete = if committed.body == BodyOut::None || left == Some(0) {
        true
    } else {
        loop {
            // Whatever is queued goes out before waiting for the backend.
            let polled = match poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await
            {
                Poll::Ready(polled) => polled,
                Poll::Pending => {
                    if !out.is_empty() && out.flush(io, info).await.is_err() {
                        return Next::Close;
                    }
                    poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
                }
            };
            let mut data = match polled {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => data,
                    _ => continue,
                },
                Some(Err(e)) => {
                    // Cut short: what was sent stays sent, and the missing end
                    // (length or last chunk) tells the client.
                    tracing::info!("response to {} cut short: {e}", info.remote);
                    let _ = out.flush(io, info).await;
                    return Next::Close;
                }
                None => {
                    if chunked {
                        out.push_last_chunk();
                    }
                    break left.is_none_or(|n| n == 0);
                }
            };
            if let Some(n) = left.as_mut() {
                // Never more than announced.
                data.truncate((*n).min(data.len() as u64) as usize);
                *n -= data.len() as u64;
            }
            let must_write = out.push(data, chunked);
            let ended = body.is_end_stream() || left == Some(0);
            if ended && chunked {
                out.push_last_chunk();
            }
            if ended {
                break left.is_none_or(|n| n == 0);
            }
            if must_write && out.flush(io, info).await.is_err() {
                return Next::Close;
            }
        }
    };
    let flushed = out.flush(io, info).await.is_ok();
    match tunnel {
        Some(backend) if flushed => Next::Tunnel(backend),
        _ if flushed && complete && committed.keep_alive => Next::Continue,
        _ => Next::Close,
    }
}

/// Copies bytes both ways between the client and the backend after a `101`,
/// until either side closes. Bytes either side sent right after the switch
/// go first.
async fn tunnel(client: ClientIo, backend: Transport) {
    let ClientIo {
        mut stream, buf, ..
    } = client;
    let (mut backend, early) = backend.into_parts();
    let started = async {
        if !early.is_empty() {
            stream.write_all(&early).await?;
        }
        let buf = buf.into_inner();
        if !buf.is_empty() {
            backend.write_all(&buf).await?;
        }
        tokio::io::copy_bidirectional(&mut stream, &mut backend).await
    };
    if let Err(e) = started.await {
        tracing::debug!("tunnel closed: {e}");
    }
}

thread_local! {
    /// The `Date` of this second, formatted once per second per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the current `Date` header value.
fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut date = cell.borrow_mut();
        if date.0 != secs {
            *date = (secs, httpdate::fmt_http_date(now));
        }
        f(date.1.as_bytes())
    })
}
