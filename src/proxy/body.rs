//! The bodies the proxy streams, never buffered: [`ClientBody`] passes the
//! client's body to the backend (counting it against `client_max_body_size`
//! and timing it with `client_body_timeout`), [`ProxyBody`] passes the
//! backend's body (or a proxy-made one) to the client, puts the backend
//! connection back in the pool when it ends, carries the typed facts the
//! connection loop writes the head from, and ends the request in one step
//! ([`ResponseBody::finish`]: access-log line, active count). After a `101`
//! it hands over the backend connection for the tunnel.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::downstream::body::RequestBody;
use crate::downstream::handler::{BoxError, FileRange, ResponseBody};
use crate::downstream::tunnel::Upgraded;
use crate::http1::names::SpelledName;
use crate::log::PendingLog;
use crate::proxy::access::Held;
use crate::upstream::client::{IdleTimer, Transport, UpstreamBody};
use crate::upstream::pool::{Conn, UpstreamPool, Wear};
use crate::upstream::stats::ActiveGuard;

/// The client's request body is larger than `client_max_body_size`.
#[derive(Debug)]
pub struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client intended to send too large body")
    }
}

impl std::error::Error for BodyTooLarge {}

/// A timeout while streaming a body (`client_body_timeout`, `proxy_read_timeout`).
#[derive(Debug)]
pub struct BodyTimeout(&'static str);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} timed out", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

/// The request body sent to the backend.
pub struct ClientBody(ClientInner);

enum ClientInner {
    Empty,
    /// `proxy_set_body`: these bytes, once.
    Fixed(Option<Bytes>),
    Stream {
        inner: RequestBody,
        /// `client_max_body_size`; 0 = unlimited.
        limit: u64,
        seen: u64,
        timer: IdleTimer,
    },
}

impl ClientBody {
    pub(super) fn stream(inner: RequestBody, limit: u64, timeout: Duration) -> Self {
        if inner.is_end() {
            return ClientBody(ClientInner::Empty);
        }
        ClientBody(ClientInner::Stream {
            inner,
            limit,
            seen: 0,
            timer: IdleTimer::new(timeout),
        })
    }

    /// A body of fixed bytes (`proxy_set_body`).
    pub(super) fn fixed(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            return ClientBody(ClientInner::Empty);
        }
        ClientBody(ClientInner::Fixed(Some(bytes)))
    }

    pub(super) fn is_empty(&self) -> bool {
        matches!(self.0, ClientInner::Empty)
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            ClientInner::Empty => Poll::Ready(None),
            ClientInner::Fixed(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ClientInner::Stream {
                inner,
                limit,
                seen,
                timer,
            } => match inner.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    timer.progressed();
                    *seen += data.len() as u64;
                    if *limit > 0 && *seen > *limit {
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
                // The client's trailers, if any, end the body.
                Poll::Ready(None) => {
                    Poll::Ready(inner.take_trailers().map(|t| Ok(Frame::trailers(t))))
                }
                Poll::Pending => {
                    if timer.expired(cx) {
                        Poll::Ready(Some(Err(Box::new(BodyTimeout("client body")))))
                    } else {
                        Poll::Pending
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            ClientInner::Empty => true,
            ClientInner::Fixed(bytes) => bytes.is_none(),
            ClientInner::Stream { inner, .. } => inner.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            ClientInner::Empty => SizeHint::with_exact(0),
            ClientInner::Fixed(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ClientInner::Stream { inner, .. } => match inner.exact_len() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

/// A backend connection waiting for its response body to end before it goes
/// back to the pool.
pub(super) struct Checkin {
    pub(super) pool: Rc<RefCell<UpstreamPool<Transport>>>,
    pub(super) peer: usize,
    /// Requests the connection has carried, this one included.
    pub(super) requests: Wear,
}

impl Checkin {
    /// Puts the connection of `body` back in the pool if the exchange left it
    /// fit for another request.
    fn put_back(self, body: &mut UpstreamBody<ClientBody>, now: Instant) {
        if let Some(io) = body.finish() {
            let conn = Conn {
                io,
                requests: self.requests.requests,
                reused: true,
                opened: self.requests.opened,
            };
            self.pool.borrow_mut().checkin(self.peer, conn, now);
        }
    }
}

/// `sendfile on` for a file body: its `sendfile_max_chunk` and `tcp_nopush`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sendfile {
    pub(super) max_chunk: u64,
    pub(super) nopush: bool,
}

/// The response body sent to the client. When it is dropped (sent or
/// abandoned) its connection goes back to waiting for a request.
pub struct ProxyBody {
    inner: ProxyInner,
    /// Counts the request as active on its peer until the request ends.
    pub(super) active: Option<ActiveGuard>,
    /// The request's `limit_conn` and `stub_status` counts.
    pub(super) held: Held,
    /// The request's access-log line, written when the request ends.
    pub(super) log: Option<PendingLog>,
    /// When the backend's body ended (one clock reading serves the pool and
    /// the connection's idle clock).
    ended: Option<Instant>,
    /// The `Content-Length` a response without a body declares.
    pub(super) declared: Option<u64>,
    /// The connection closes after this response.
    pub(super) close: bool,
    /// `chunked_transfer_encoding off`.
    pub(super) no_chunked: bool,
    /// `return 444`: no answer, the connection closed.
    pub(super) unanswered: bool,
    /// How `add_header` names are written (as configured), if any is not
    /// lower-cased.
    pub(super) names: Option<Arc<[SpelledName]>>,
    /// The backend's response, its status unchanged by an `error_page`:
    /// its status line is passed on.
    pub(super) status_line: bool,
    /// Compresses the body as it streams (`gzip`, `brotli`).
    pub(super) encoder: Option<Box<crate::compress::Encoder>>,
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // Abandoned (the connection was evicted or broke): the request ends
        // all the same.
        self.end(None);
    }
}

// The streamed variant is the common one and lives in the connection's
// coroutine anyway: boxing it would add an allocation per request.
#[allow(clippy::large_enum_variant)]
enum ProxyInner {
    /// A proxy-made body (or none).
    Full(Option<Bytes>),
    /// After a `101`: no body, the backend connection for the tunnel.
    Tunnel(Option<Transport>),
    /// A local file (or its ranges), read as it is sent, or handed to the
    /// connection for sendfile(2) when `sendfile on`.
    File(crate::files::body::FileBody, Option<Sendfile>),
    /// The backend's body, streamed.
    Upstream {
        inner: UpstreamBody<ClientBody>,
        checkin: Option<Checkin>,
        timer: IdleTimer,
    },
}

impl ProxyBody {
    /// The request's end: its access-log line is written and its peer no
    /// longer counts it as active. Once; returns when the backend's body
    /// ended.
    fn end(&mut self, request_length: Option<u64>) -> Option<Instant> {
        // Dropping them is what writes the line and lowers the count.
        if let (Some(log), Some(n)) = (&mut self.log, request_length) {
            log.request_length(n);
        }
        drop(self.log.take());
        drop(self.active.take());
        drop(std::mem::take(&mut self.held));
        self.ended
    }

    /// A body of `inner` with nothing attached yet.
    fn of(inner: ProxyInner) -> Self {
        ProxyBody {
            inner,
            active: None,
            held: Held::default(),
            log: None,
            ended: None,
            declared: None,
            close: false,
            no_chunked: false,
            status_line: false,
            unanswered: false,
            names: None,
            encoder: None,
        }
    }

    pub(super) fn tunnel(backend: Transport) -> Self {
        ProxyBody::of(ProxyInner::Tunnel(Some(backend)))
    }

    /// A local file's body (sent with sendfile(2) where the connection can
    /// when `sendfile` is given).
    pub(super) fn file(body: crate::files::body::FileBody, sendfile: Option<Sendfile>) -> Self {
        ProxyBody::of(ProxyInner::File(body, sendfile))
    }

    pub fn empty() -> Self {
        ProxyBody::of(ProxyInner::Full(None))
    }

    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        ProxyBody::of(ProxyInner::Full((!bytes.is_empty()).then_some(bytes)))
    }

    pub(super) fn upstream(
        mut inner: UpstreamBody<ClientBody>,
        checkin: Checkin,
        read_timeout: Duration,
    ) -> Self {
        let checkin = if inner.is_end() {
            // Nothing will be read (HEAD, 204, 304, Content-Length: 0): the
            // connection is free already.
            checkin.put_back(&mut inner, Instant::now());
            None
        } else {
            Some(checkin)
        };
        ProxyBody::of(ProxyInner::Upstream {
            inner,
            checkin,
            timer: IdleTimer::new(read_timeout),
        })
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.encoder {
            None => this.poll_inner(cx),
            Some(_) => this.poll_encoded(cx),
        };
        if let (Some(log), Poll::Ready(Some(Ok(frame)))) = (&mut this.log, &polled) {
            if let Some(data) = frame.data_ref() {
                log.sent(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        if let Some(e) = &self.encoder {
            return e.is_done();
        }
        match &self.inner {
            ProxyInner::Full(bytes) => bytes.is_none(),
            ProxyInner::Tunnel(_) => true,
            ProxyInner::File(f, _) => f.remaining() == 0,
            ProxyInner::Upstream { inner, .. } => inner.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.encoder.is_some() {
            // Compressed: the length is known at the end only (chunked).
            return SizeHint::default();
        }
        match &self.inner {
            ProxyInner::Full(None) | ProxyInner::Tunnel(_) => SizeHint::with_exact(0),
            ProxyInner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyInner::File(f, _) => SizeHint::with_exact(f.remaining()),
            ProxyInner::Upstream { inner, .. } => match inner.remaining() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

impl ProxyBody {
    /// The body through its encoder: pieces as the encoder makes them; when
    /// the source waits, what was fed so far is flushed so that nothing is
    /// held back; the stream's end at the source's end.
    fn poll_encoded(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.encoder.as_deref().is_none_or(|e| e.is_done()) {
                return Poll::Ready(None);
            }
            let polled = self.poll_inner(cx);
            let Some(enc) = self.encoder.as_deref_mut() else {
                return Poll::Ready(None);
            };
            let out = match polled {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => enc.write(&data),
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => enc.finish(),
                Poll::Pending => match enc.flush() {
                    Ok(b) if b.is_empty() => return Poll::Pending,
                    other => other,
                },
            };
            match out {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => return Poll::Ready(Some(Ok(Frame::data(b)))),
                Err(e) => return Poll::Ready(Some(Err(Box::new(e)))),
            }
        }
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let ended = &mut self.ended;
        match &mut self.inner {
            ProxyInner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyInner::Tunnel(_) => Poll::Ready(None),
            ProxyInner::File(f, _) => Poll::Ready(f.next_chunk().map(|r| match r {
                Ok(data) => Ok(Frame::data(data)),
                Err(e) => Err(Box::new(e) as BoxError),
            })),
            ProxyInner::Upstream {
                inner,
                checkin,
                timer,
            } => {
                match inner.poll_data(cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        timer.progressed();
                        if inner.is_end() {
                            if let Some(c) = checkin.take() {
                                let now = Instant::now();
                                *ended = Some(now);
                                c.put_back(inner, now);
                            }
                        }
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    Poll::Ready(Some(Err(e))) => {
                        // A broken backend connection is not reused.
                        checkin.take();
                        Poll::Ready(Some(Err(Box::new(e))))
                    }
                    Poll::Ready(None) => {
                        // The backend's trailers, if any, end the body (an
                        // HTTP/2 client gets them; HTTP/1 skips them).
                        let trailers = inner.take_trailers();
                        if let Some(c) = checkin.take() {
                            let now = Instant::now();
                            *ended = Some(now);
                            c.put_back(inner, now);
                        }
                        Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
                    }
                    Poll::Pending => {
                        if timer.expired(cx) {
                            checkin.take();
                            Poll::Ready(Some(Err(Box::new(BodyTimeout("upstream read")))))
                        } else {
                            Poll::Pending
                        }
                    }
                }
            }
        }
    }
}

impl ResponseBody for ProxyBody {
    fn declared_length(&self) -> Option<u64> {
        self.declared
    }

    fn closes(&self) -> bool {
        self.close
    }

    fn chunked(&self) -> bool {
        !self.no_chunked
    }

    fn passes_status_line(&self) -> bool {
        self.status_line
    }

    fn unanswered(&self) -> bool {
        self.unanswered
    }

    fn configured_name(&self, name: &http::HeaderName) -> Option<&[u8]> {
        let names = self.names.as_deref()?;
        names
            .iter()
            .find(|n| n.name() == name)
            .map(SpelledName::as_bytes)
    }

    fn has_configured_names(&self) -> bool {
        self.names.is_some()
    }

    fn head_sent(&mut self, n: usize, content_length: Option<u64>) {
        if let Some(log) = &mut self.log {
            log.head_sent(n as u64, content_length);
        }
    }

    fn take_upgrade(&mut self) -> Option<Upgraded> {
        match &mut self.inner {
            ProxyInner::Tunnel(io) => io.take().map(|backend| {
                let (stream, early) = backend.into_parts();
                Upgraded {
                    io: Box::new(stream),
                    early,
                }
            }),
            _ => None,
        }
    }

    fn take_file_range(&mut self) -> Option<FileRange> {
        let ProxyInner::File(body, Some(sendfile)) = &mut self.inner else {
            return None;
        };
        if self.encoder.is_some() {
            return None;
        }
        let (file, offset, len) = body.take_single()?;
        Some(FileRange {
            file,
            offset,
            len,
            max_chunk: sendfile.max_chunk,
            nopush: sendfile.nopush,
        })
    }

    fn file_sent(&mut self, n: u64) {
        if let Some(log) = &mut self.log {
            log.sent(n);
        }
    }

    fn finish(&mut self, request_length: u64) -> Option<Instant> {
        self.end(Some(request_length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_made_bodies_report_exact_sizes() {
        let empty = ProxyBody::empty();
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        let full = ProxyBody::full("hello");
        assert!(!full.is_end_stream());
        assert_eq!(full.size_hint().exact(), Some(5));
        assert!(ProxyBody::full("").is_end_stream());
    }
}
