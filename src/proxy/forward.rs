//! The request pipeline of one worker: from a client request to the response.
//!
//! `Worker::handle` runs, in order: limits (414, 413 from `Content-Length`),
//! routing (`proxy::route`), `return`, the sticky request side (`sticky`: find,
//! decode, decide, strip), the upstream request (`proxy::uri`, `proxy::headers`,
//! `proxy::vars`), the attempts (`upstream::pool` connections, `proxy_next_upstream`
//! retries, sticky fallback, passive health), and the response (`proxy::headers`,
//! the sticky `Set-Cookie`, `Server`). Proxy-made responses come from
//! `proxy::errors` and never carry a sticky cookie. A `check_status` location
//! answers with the status page of the shared `upstream::stats::HealthTable`,
//! whose per-peer counters (requests, active, sticky outcomes) each attempt
//! adds to with relaxed atomics.
//!
//! Bodies are streamed both ways, never buffered: [`ClientBody`] passes the
//! client's body to the backend (counting it against `client_max_body_size` and
//! timing it with `client_body_timeout`), [`ProxyBody`] passes the backend's body
//! to the client and puts the backend connection back in the pool when it ends. A
//! `101 Switching Protocols` turns both connections into a byte tunnel.
//!
//! A `Worker` belongs to one thread: its state is in `Rc`/`RefCell`/`Cell`, with
//! no locks or atomics on the request path. Per-connection facts and deadlines
//! are in [`ConnInfo`], which the server's sweeper checks.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};

use crate::downstream::conn::RequestBody;

use crate::config::{Config, LocationConf, NextUpstream, ProxyPass, ServerConf, ServerName};
use crate::http1::framing::{BodyFraming, RequestFraming};
use crate::http1::request::encode_request_head;
use crate::http1::response::ResponseHead;
use crate::log::{AccessLogs, AccessRecord, PendingLog, TryRecord};
use crate::proxy::errors::{self, MadeResponse, ProxyError, RedirectBase};
use crate::proxy::headers::{self, UpstreamConnection};
use crate::proxy::route::{self, Lookup, Router};
use crate::proxy::uri;
use crate::proxy::vars::{self, RequestVars};
use crate::sticky::decide;
use crate::sticky::{Choice, Decision};
use crate::upstream::balance::Tried;
use crate::upstream::client::{
    self, ConnectError, IdleTimer, Outgoing, SendError, Transport, UpstreamBody,
};
use crate::upstream::peers::PeerSet;
use crate::upstream::pool::{Conn, UpstreamPool};
use crate::upstream::stats::{ActiveGuard, HealthTable};

/// Errors carried by the bodies the proxy streams.
pub use crate::upstream::client::BoxError;

/// Facts about one client connection, shared by its requests.
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    /// The `listen` address as configured (routing matches against it).
    pub listen: SocketAddr,
    /// Requests received on this connection so far.
    pub requests: Cell<u64>,
    /// `keepalive_requests` of the connection's server.
    pub keepalive_requests: u64,
    /// The buffer size of `large_client_header_buffers`: longer request lines get 414.
    pub large_header_buffer: usize,
    /// Serial number of the connection in its worker (`$connection`).
    pub serial: u64,
    /// Since when the connection has been waiting for its next request head
    /// (`None` while a request is being served). At the `worker_connections`
    /// cap the accept loop evicts the connection that has waited longest, so
    /// idle keep-alive and slow-header (slowloris) clients cannot lock others out.
    pub waiting_since: Cell<Option<Instant>>,
    /// What the worker asks of the connection's task ([`Signal`]), and the
    /// task's waker: a flag and a stored waker, so the task's every poll costs
    /// a load and a waker comparison instead of polling two channels.
    signal: Cell<Signal>,
    signal_waker: Cell<Option<std::task::Waker>>,
    /// `client_header_timeout`: a new connection must send a request within it.
    pub header_timeout: Duration,
    /// `keepalive_timeout`: an idle connection is closed after it.
    pub idle_timeout: Duration,
    /// `send_timeout`: a client that takes no response data for this long is
    /// closed.
    pub send_timeout: Duration,
    /// Since when a write to the client has been waiting for the socket
    /// (`None` when none is).
    last_write: Cell<Option<Instant>>,
    /// When the upstream response head being awaited times out.
    upstream_deadline: Cell<Option<Instant>>,
    upstream_timed_out: Cell<bool>,
    upstream_waker: Cell<Option<std::task::Waker>>,
}

impl ConnInfo {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        remote: SocketAddr,
        local: SocketAddr,
        listen: SocketAddr,
        keepalive_requests: u64,
        large_header_buffer: usize,
        serial: u64,
        header_timeout: Duration,
        idle_timeout: Duration,
        send_timeout: Duration,
    ) -> ConnInfo {
        ConnInfo {
            remote,
            local,
            listen,
            requests: Cell::new(0),
            keepalive_requests,
            large_header_buffer,
            serial,
            waiting_since: Cell::new(Some(Instant::now())),
            signal: Cell::new(Signal::None),
            signal_waker: Cell::new(None),
            header_timeout,
            idle_timeout,
            send_timeout,
            last_write: Cell::new(None),
            upstream_deadline: Cell::new(None),
            upstream_timed_out: Cell::new(false),
            upstream_waker: Cell::new(None),
        }
    }

    /// Called by the worker's sweeper: wakes a request whose upstream deadline
    /// passed, and returns true when the connection must be closed: it has
    /// waited for a request longer than allowed (`client_header_timeout` before
    /// its first request, `keepalive_timeout` after), or its client has taken no
    /// response data for `send_timeout`.
    pub fn sweep(&self, now: Instant) -> bool {
        if let Some(wrote) = self.last_write.get() {
            if !self.send_timeout.is_zero()
                && now.saturating_duration_since(wrote) > self.send_timeout
            {
                return true;
            }
        }
        if let Some(deadline) = self.upstream_deadline.get() {
            if now >= deadline {
                self.upstream_deadline.set(None);
                self.upstream_timed_out.set(true);
                if let Some(waker) = self.upstream_waker.take() {
                    waker.wake();
                }
            }
        }
        let Some(since) = self.waiting_since.get() else {
            return false;
        };
        let limit = if self.requests.get() == 0 {
            self.header_timeout
        } else {
            self.idle_timeout
        };
        !limit.is_zero() && now.saturating_duration_since(since) > limit
    }

    /// Tells the connection's task to close the connection now (eviction at the
    /// `worker_connections` cap, idle and send timeouts).
    pub fn evict(&self) {
        self.raise(Signal::Evict);
    }

    /// Tells the connection's task to finish the request in progress and close
    /// (graceful stop).
    pub fn drain(&self) {
        if self.signal.get() == Signal::None {
            self.raise(Signal::Drain);
        }
    }

    fn raise(&self, signal: Signal) {
        self.signal.set(signal);
        if let Some(waker) = self.signal_waker.take() {
            waker.wake();
        }
    }

    /// The latest signal, keeping `cx`'s waker to be woken by the next one.
    pub fn poll_signal(&self, cx: &Context<'_>) -> Signal {
        let kept = match self.signal_waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.signal_waker.set(Some(kept));
        self.signal.get()
    }

    fn arm(&self, deadline: Option<Instant>) {
        self.upstream_timed_out.set(false);
        self.upstream_deadline.set(deadline);
    }

    fn disarm(&self) {
        self.upstream_deadline.set(None);
        self.upstream_waker.set(None);
    }

    /// The latest signal the worker raised.
    pub fn signal(&self) -> Signal {
        self.signal.get()
    }

    /// A write to the client is waiting for the socket: `send_timeout` runs
    /// from the first such wait until [`ConnInfo::write_done`].
    pub fn write_blocked(&self) {
        if self.last_write.get().is_none() {
            self.last_write.set(Some(Instant::now()));
        }
    }

    /// Everything queued for the client has been written.
    pub fn write_done(&self) {
        self.last_write.set(None);
    }

    fn deadline_passed(&self) -> bool {
        self.upstream_timed_out.get()
    }

    fn park(&self, waker: &std::task::Waker) {
        let kept = match self.upstream_waker.take() {
            Some(w) if w.will_wake(waker) => w,
            _ => waker.clone(),
        };
        self.upstream_waker.set(Some(kept));
    }
}

/// What a worker asks of one connection's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    None,
    /// Finish the request in progress, then close.
    Drain,
    /// Close now.
    Evict,
}

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

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
    Stream {
        inner: RequestBody,
        /// `client_max_body_size`; 0 = unlimited.
        limit: u64,
        seen: u64,
        timer: IdleTimer,
    },
}

impl ClientBody {
    fn stream(inner: RequestBody, limit: u64, timeout: Duration) -> Self {
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

    fn is_empty(&self) -> bool {
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
                Poll::Ready(None) => Poll::Ready(None),
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
            ClientInner::Stream { inner, .. } => inner.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            ClientInner::Empty => SizeHint::with_exact(0),
            ClientInner::Stream { inner, .. } => match inner.exact_len() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

/// A backend connection waiting for its response body to end before it goes
/// back to the pool.
struct Checkin {
    pool: Rc<RefCell<UpstreamPool<Transport>>>,
    peer: usize,
    /// Requests the connection has carried, this one included.
    requests: u64,
}

impl Checkin {
    /// Puts the connection of `body` back in the pool if the exchange left it
    /// fit for another request.
    fn put_back(self, body: &mut UpstreamBody<ClientBody>, now: Instant) {
        if let Some(io) = body.finish() {
            let conn = Conn {
                io,
                requests: self.requests,
                reused: true,
            };
            self.pool.borrow_mut().checkin(self.peer, conn, now);
        }
    }
}

/// The response body sent to the client. When it is dropped (sent or
/// abandoned) its connection goes back to waiting for a request.
pub struct ProxyBody {
    inner: ProxyInner,
    conn: Option<Rc<ConnInfo>>,
    /// Counts the request as active on its peer until the body is done.
    active: Option<ActiveGuard>,
    /// The request's access-log line, written when this body is dropped.
    log: Option<PendingLog>,
    /// When the backend's body ended (one clock reading serves the pool and
    /// the connection's idle clock).
    ended: Option<Instant>,
    /// The `Content-Length` a response without a body declares.
    declared: Option<u64>,
    /// The connection closes after this response.
    close: bool,
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.waiting_since
                .set(Some(self.ended.unwrap_or_else(Instant::now)));
        }
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
    /// The backend's body, streamed.
    Upstream {
        inner: UpstreamBody<ClientBody>,
        checkin: Option<Checkin>,
        timer: IdleTimer,
    },
}

impl ProxyBody {
    /// The `Content-Length` a response without a body (to HEAD, a 304)
    /// declares.
    pub fn declared_length(&self) -> Option<u64> {
        self.declared
    }

    /// Whether the connection closes after this response.
    pub fn closes(&self) -> bool {
        self.close
    }

    /// The response head, `n` bytes, is written (`$bytes_sent`).
    pub fn head_sent(&mut self, n: usize) {
        if let Some(log) = &mut self.log {
            log.head_sent(n as u64);
        }
    }

    /// The backend connection of a `101` response, for the tunnel.
    pub fn take_tunnel(&mut self) -> Option<Transport> {
        match &mut self.inner {
            ProxyInner::Tunnel(io) => io.take(),
            _ => None,
        }
    }

    fn tunnel(backend: Transport) -> Self {
        ProxyBody {
            inner: ProxyInner::Tunnel(Some(backend)),
            conn: None,
            active: None,
            log: None,
            ended: None,
            declared: None,
            close: false,
        }
    }

    pub fn empty() -> Self {
        ProxyBody {
            inner: ProxyInner::Full(None),
            conn: None,
            active: None,
            log: None,
            ended: None,
            declared: None,
            close: false,
        }
    }

    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        ProxyBody {
            inner: ProxyInner::Full((!bytes.is_empty()).then_some(bytes)),
            conn: None,
            active: None,
            log: None,
            ended: None,
            declared: None,
            close: false,
        }
    }

    fn upstream(
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
        ProxyBody {
            inner: ProxyInner::Upstream {
                inner,
                checkin,
                timer: IdleTimer::new(read_timeout),
            },
            conn: None,
            active: None,
            log: None,
            ended: None,
            declared: None,
            close: false,
        }
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
        let polled = this.poll_inner(cx);
        if let (Some(log), Poll::Ready(Some(Ok(frame)))) = (&mut this.log, &polled) {
            if let Some(data) = frame.data_ref() {
                log.sent(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            ProxyInner::Full(bytes) => bytes.is_none(),
            ProxyInner::Tunnel(_) => true,
            ProxyInner::Upstream { inner, .. } => inner.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            ProxyInner::Full(None) | ProxyInner::Tunnel(_) => SizeHint::with_exact(0),
            ProxyInner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyInner::Upstream { inner, .. } => match inner.remaining() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

impl ProxyBody {
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let ended = &mut self.ended;
        match &mut self.inner {
            ProxyInner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyInner::Tunnel(_) => Poll::Ready(None),
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
                        if let Some(c) = checkin.take() {
                            let now = Instant::now();
                            *ended = Some(now);
                            c.put_back(inner, now);
                        }
                        Poll::Ready(None)
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

// ---------------------------------------------------------------------------
// The worker and its pipeline
// ---------------------------------------------------------------------------

/// The per-thread state: the configuration, the router, and one [`PeerSet`] per
/// upstream (balancer, health, keep-alive pool, sticky index).
pub struct Worker {
    config: Arc<Config>,
    router: Router,
    /// Shared with the previous worker state of the thread for the upstreams a
    /// reload left unchanged (balancer, health, pool and all).
    upstreams: Vec<Rc<PeerSet<Transport>>>,
    /// Active-check state and counters shared with the checker, the other
    /// workers and the status page.
    health: Arc<HealthTable>,
    /// Connections accepted so far by this worker (`$connection`).
    connections: Cell<u64>,
    /// The access logs of this configuration.
    logs: Arc<AccessLogs>,
}

/// Why an attempt at one peer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Connect refused/reset, or the backend broke the connection: 502.
    Error,
    /// `proxy_connect_timeout` or `proxy_read_timeout`: 504.
    Timeout,
    /// The backend's response head was malformed or too big: 502, retried
    /// with `proxy_next_upstream invalid_header`.
    InvalidHeader,
    /// The client's chunked body passed `client_max_body_size`: 413.
    BodyTooLarge,
    /// The client stopped sending its body (`client_body_timeout`) or broke the
    /// connection: 408 as nginx (the client is gone anyway).
    ClientBody,
}

impl Failure {
    fn error(self) -> ProxyError {
        match self {
            Failure::Error | Failure::InvalidHeader => ProxyError::BadGateway,
            Failure::Timeout => ProxyError::GatewayTimeout,
            Failure::BodyTooLarge => ProxyError::PayloadTooLarge,
            Failure::ClientBody => ProxyError::RequestTimeout,
        }
    }

    /// Whether `proxy_next_upstream` lists this kind of failure.
    fn listed(self, next: &NextUpstream) -> bool {
        match self {
            Failure::Error => next.error,
            Failure::InvalidHeader => next.invalid_header,
            Failure::Timeout => next.timeout,
            Failure::BodyTooLarge | Failure::ClientBody => false,
        }
    }

    /// Classifies a failed exchange with a backend.
    fn of(err: &SendError) -> Failure {
        match err {
            SendError::Io { .. } => Failure::Error,
            SendError::Head(_) => Failure::InvalidHeader,
            SendError::SendTimeout => Failure::Timeout,
            SendError::Body(e) if e.is::<BodyTooLarge>() => Failure::BodyTooLarge,
            SendError::Body(_) => Failure::ClientBody,
        }
    }
}

/// A backend's answer to one try: the response head, its body (which owns the
/// connection until it ends), and the requests the connection has carried.
type Answer = (ResponseHead, UpstreamBody<ClientBody>, u64);

/// A failed try: why, and whether the request can still go out as it is
/// (nothing of it was written, and any body is back in its slot).
#[derive(Debug, Clone, Copy)]
struct Missed {
    failure: Failure,
    unsent: bool,
}

/// Sends the request on `conn`, waiting at most `proxy_read_timeout` for the
/// response head. The deadline is kept on the client connection and checked by
/// the worker's sweeper ([`ConnInfo::sweep`]), so a request arms no timer of
/// its own. A body that was not written comes back into `body`.
async fn send(
    info: &ConnInfo,
    conn: Conn<Transport>,
    req: &UpstreamRequest,
    body: &mut Option<ClientBody>,
    conf: &LocationConf,
    sent_at: Instant,
) -> Result<Answer, Missed> {
    let requests = conn.requests + 1;
    let leave_out = |name: &http::HeaderName, kind| {
        headers::left_out_of_response(
            name,
            kind,
            &conf.proxy_hide_headers,
            &conf.proxy_pass_headers,
        )
    };
    let outgoing = Outgoing {
        head: &req.head,
        body: body.take(),
        framing: req.framing,
        head_request: req.head_request,
        send_timeout: conf.proxy_send_timeout,
        leave_out: &leave_out,
    };
    let fut = client::send(conn.io, outgoing);
    let read_timeout = conf.proxy_read_timeout;
    let result = if read_timeout.is_zero() {
        fut.await
    } else {
        let mut fut = std::pin::pin!(fut);
        // A timeout too large to represent never fires.
        info.arm(sent_at.checked_add(read_timeout));
        let waited = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(r));
            }
            if info.deadline_passed() {
                return Poll::Ready(None);
            }
            info.park(cx.waker());
            Poll::Pending
        })
        .await;
        info.disarm();
        match waited {
            Some(r) => r,
            None => {
                return Err(Missed {
                    failure: Failure::Timeout,
                    unsent: false,
                })
            }
        }
    };
    match result {
        Ok((head, upstream_body)) => Ok((head, upstream_body, requests)),
        Err((error, back)) => {
            let unsent = back.is_some() || matches!(error, SendError::Io { sent: false, .. });
            if back.is_some() {
                *body = back;
            }
            tracing::debug!("{error}");
            Err(Missed {
                failure: Failure::of(&error),
                unsent,
            })
        }
    }
}

/// A new connection to peer `peer` within `proxy_connect_timeout`.
async fn open(
    set: &PeerSet<Transport>,
    peer: usize,
    conf: &LocationConf,
) -> Result<Transport, Failure> {
    let addr = set.addr(peer).ok_or(Failure::Error)?;
    client::connect(addr, conf.proxy_connect_timeout)
        .await
        .map_err(|e| match e {
            ConnectError::Timeout => Failure::Timeout,
            ConnectError::Io(e) => {
                tracing::error!("connect() to {addr} failed: {e}");
                Failure::Error
            }
        })
}

/// True for methods nginx treats as idempotent (retried after being sent).
fn idempotent(method: &Method) -> bool {
    !matches!(*method, Method::POST | Method::PATCH) && method.as_str() != "LOCK"
}

fn unix_now(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The request as it goes to the backends: its head encoded once (kept for a
/// resend: a pooled connection found closed, or `proxy_next_upstream`), and how
/// its body is framed.
struct UpstreamRequest {
    head: Vec<u8>,
    framing: RequestFraming,
    head_request: bool,
}

impl Drop for UpstreamRequest {
    fn drop(&mut self) {
        crate::reuse::give_vec(std::mem::take(&mut self.head));
    }
}

impl Worker {
    /// The state of one worker for `config`.
    /// Without a checker: no peer is ever marked down by active checks.
    pub fn new(config: Arc<Config>) -> Worker {
        let health = Arc::new(HealthTable::unchecked(&config));
        Worker::build(config, health, Arc::new(AccessLogs::default()), None)
    }

    /// The state of one worker for `config`, reading (and counting into)
    /// `health` (the table the active checker writes) and writing `logs`. After a
    /// reload, `previous` is the thread's state for the old configuration:
    /// upstreams whose definition did not change keep their peer state (balancer
    /// position, passive health, idle connections; `health` was made with
    /// [`HealthTable::reusing`] so their shared figures are the same objects), and
    /// `$connection` keeps counting.
    pub fn build(
        config: Arc<Config>,
        health: Arc<HealthTable>,
        logs: Arc<AccessLogs>,
        previous: Option<&Worker>,
    ) -> Worker {
        let upstreams = config
            .http
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let stats = health.upstream(i);
                let kept = previous.and_then(|p| {
                    p.upstreams.iter().find(|set| {
                        set.conf().name == u.name
                            && *set.conf() == **u
                            && stats.is_some_and(|st| Arc::ptr_eq(st, set.stats()))
                    })
                });
                match kept {
                    Some(set) => Rc::clone(set),
                    None => {
                        let set = match stats {
                            Some(stats) => PeerSet::with_stats(Arc::clone(u), Arc::clone(stats)),
                            None => PeerSet::new(Arc::clone(u)),
                        };
                        // A changed upstream of the same name: the idle
                        // connections of the peers it still has move over.
                        if let Some(old) = previous
                            .and_then(|p| p.upstreams.iter().find(|s| s.conf().name == u.name))
                        {
                            adopt_idle(old, &set);
                        }
                        Rc::new(set)
                    }
                }
            })
            .collect();
        Worker {
            router: Router::new(&config),
            config,
            upstreams,
            health,
            connections: Cell::new(previous.map_or(0, |p| p.connections.get())),
            logs,
        }
    }

    /// The configuration this worker serves.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A serial number for a new connection (`$connection`).
    pub fn next_connection(&self) -> u64 {
        let n = self.connections.get() + 1;
        self.connections.set(n);
        n
    }

    /// Decides, from the request head alone, what to do with a request: a
    /// proxy-made response (`Err`), or where and how to forward it.
    // The `Err` (a whole response) is large, but it is returned once, not
    // propagated through layers.
    #[allow(clippy::result_large_err)]
    fn plan(
        &self,
        info: &ConnInfo,
        req: &Request<RequestBody>,
        start: SystemTime,
        log: &mut Option<Box<AccessRecord>>,
    ) -> Result<Plan<'_>, (Response<ProxyBody>, bool)> {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        if target.len() > info.large_header_buffer {
            return Err((error_response(ProxyError::UriTooLong, true), true));
        }
        let host = req
            .headers()
            .get(header::HOST)
            .map(HeaderValue::as_bytes)
            .or_else(|| req.uri().host().map(str::as_bytes));
        let routed = match self.router.server(info.listen, host) {
            Ok(r) => r,
            Err(_) => return Err((error_response(ProxyError::BadRequest, true), true)),
        };
        // The same server, borrowed from the worker instead of the request.
        let server: &ServerConf = match self
            .config
            .http
            .servers
            .iter()
            .find(|s| Arc::ptr_eq(s, routed.server))
        {
            Some(s) => s,
            None => return Err((error_response(ProxyError::Internal, true), true)),
        };
        let (raw_path, _) = uri::split_query(target);
        let path = match uri::normalize_path(raw_path.as_bytes()) {
            Ok(p) => p,
            Err(_) => {
                let tokens = server.conf.server_tokens;
                return Err((error_response(ProxyError::BadRequest, tokens), tokens));
            }
        };
        let (location, add_slash) = match route::lookup_location(&server.locations, &path) {
            Lookup::Location(loc) => (Some(loc), false),
            Lookup::AddSlash(loc) => (Some(loc), true),
            Lookup::NoMatch => (None, false),
        };
        let conf: &LocationConf = location.map_or(&server.conf, |l| &l.conf);
        let tokens = conf.server_tokens;
        let server_name = server_name_of(server);
        let local_ip: std::cell::OnceCell<String> = std::cell::OnceCell::new();
        let redirect_base = || {
            let host: &str = if !routed.host.is_empty() {
                &routed.host
            } else if !server_name.is_empty() {
                server_name
            } else {
                local_ip.get_or_init(|| info.local.ip().to_string())
            };
            RedirectBase {
                scheme: "http",
                host,
                port: info.local.port(),
            }
        };
        let vars = |proxy_host| RequestVars {
            method: req.method(),
            request_uri: target,
            path: &path,
            version: req.version(),
            headers: req.headers(),
            host: &routed.host,
            server_name,
            remote: info.remote,
            local: info.local,
            scheme: "http",
            proxy_host,
            request_length: 0,
            connection: info.serial,
            connection_requests: info.requests.get(),
            start,
            now: start,
            pid: crate::log::pid(),
            hostname: "",
            response: None,
            upstream: &[],
            sticky: None,
        };
        if let Some(targets) = self.logs.targets(&conf.access_log) {
            let proxy_host = conf
                .proxy_pass
                .as_ref()
                .map_or("", |p| p.proxy_host.as_str());
            *log = Some(Box::new(AccessRecord::capture(targets, &vars(proxy_host))));
        }
        if let Some(ret) = server.return_.as_ref().or(conf.return_.as_ref()) {
            let text = ret.text.as_ref().map(|t| vars::eval_to_vec(t, &vars("")));
            let resp = match errors::return_response(
                ret.code,
                text.as_deref(),
                &redirect_base(),
                tokens,
            ) {
                Some(m) => made(m),
                None => error_response(ProxyError::Internal, tokens),
            };
            return Err((resp, tokens));
        }
        if add_slash {
            // nginx's automatic redirect: `location /app/ { proxy_pass ...; }`
            // answers `/app` with a 301 to `/app/`.
            let (_, query) = uri::split_query(target);
            let to = uri::add_slash_target(&path, query);
            let resp =
                match errors::return_response(301, Some(to.as_bytes()), &redirect_base(), tokens) {
                    Some(m) => made(m),
                    None => error_response(ProxyError::Internal, tokens),
                };
            return Err((resp, tokens));
        }
        if let Some(format) = conf.check_status {
            let (_, query) = uri::split_query(target);
            let (content_type, body) = self.health.status_page(&self.config, query, format);
            let mut resp = Response::new(ProxyBody::full(body));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return Err((resp, tokens));
        }
        let Some(pass) = conf.proxy_pass.as_ref() else {
            return Err((error_response(ProxyError::NotFound, tokens), tokens));
        };
        if conf.client_max_body_size > 0 {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > conf.client_max_body_size) {
                return Err((error_response(ProxyError::PayloadTooLarge, tokens), tokens));
            }
        }
        let Some(set) = self.upstreams.get(pass.upstream).map(Rc::as_ref) else {
            return Err((error_response(ProxyError::BadGateway, tokens), tokens));
        };
        // The client's target goes out unchanged unless proxy_pass has a URI part.
        let uri = match (location, pass.uri.as_deref()) {
            (Some(loc), Some(base)) => {
                let mapped = uri::upstream_uri(target, &path, &loc.matcher, Some(base));
                match mapped.parse::<Uri>() {
                    Ok(u) => Some(u),
                    Err(_) => return Err((error_response(ProxyError::BadRequest, tokens), tokens)),
                }
            }
            _ => None,
        };
        let set_headers = if conf.proxy_set_headers.is_empty() {
            Vec::new()
        } else {
            headers::eval_set_headers(&conf.proxy_set_headers, &vars(&pass.proxy_host))
        };
        Ok(Plan {
            server,
            conf,
            pass,
            set,
            uri,
            set_headers,
        })
    }

    /// Everything about a request that happens before it goes out, with no
    /// waiting: the plan, the upstream URI, the sticky request side (decode,
    /// decide, strip), the upstream headers, and the encoded request head.
    /// Kept out of `handle` so that its locals (URIs, header maps) are not
    /// part of the request's future, which is moved as a whole.
    #[allow(clippy::result_large_err)]
    fn prepare(
        &self,
        info: &ConnInfo,
        req: &mut Request<RequestBody>,
        log: &mut Option<Box<AccessRecord>>,
    ) -> Result<Prepared<'_>, (Response<ProxyBody>, bool)> {
        let start = SystemTime::now();
        let Plan {
            server,
            conf,
            pass,
            set,
            uri: mapped_uri,
            set_headers,
        } = self.plan(info, req, start, log)?;
        let tokens = conf.server_tokens;
        let upgrade = headers::wants_upgrade(req.headers());
        let up_uri = match mapped_uri {
            Some(u) => u,
            None => match origin_form(std::mem::take(req.uri_mut())) {
                Some(u) => u,
                None => return Err((error_response(ProxyError::BadRequest, tokens), tokens)),
            },
        };
        let connection_mode = if upgrade {
            UpstreamConnection::Upgrade
        } else if set.keeps_alive() {
            UpstreamConnection::KeepAlive
        } else {
            UpstreamConnection::Close
        };
        let now_unix = unix_now(start);
        let now_instant = Instant::now();
        let tried = Tried::new();
        let headers = req.headers_mut();
        // Sticky request side (decode, decide, strip) before the headers go out.
        let choice = set.sticky().map(|sticky| {
            sticky.on_request(
                headers,
                now_unix,
                |i| set.is_up(i, now_instant),
                |exclude| set.choose(exclude, &tried, now_instant),
            )
        });
        note_sticky(log, set, choice.as_ref());
        headers::to_upstream_request(headers, set_headers, &pass.proxy_host, connection_mode);
        let peer = match choice.map(|c| c.decision) {
            Some(d) => d.peer(),
            None => set.choose(None, &tried, now_instant),
        };
        let framing = match req.body().framing() {
            BodyFraming::None => RequestFraming::None,
            BodyFraming::Length(n) => RequestFraming::Length(n),
            BodyFraming::Chunked => RequestFraming::Chunked,
        };
        let body = std::mem::replace(req.body_mut(), RequestBody::empty());
        let body = ClientBody::stream(body, conf.client_max_body_size, client_body_timeout(server));
        let target = up_uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = crate::reuse::vec(head_capacity(target, req.headers()));
        encode_request_head(&mut head, req.method(), target, req.headers(), framing);
        // The headers are in `head` now.
        crate::reuse::give_map(std::mem::take(req.headers_mut()));
        let request = UpstreamRequest {
            head,
            framing,
            head_request: req.method() == Method::HEAD,
        };
        let has_body = !body.is_empty();
        // A bodyless request can be written again after it was sent: once on a
        // fresh connection when a pooled one turns out dead, and on another peer
        // per proxy_next_upstream (never away from a pinned peer with
        // fallback=off). A streamed body cannot be sent twice.
        let may_resend =
            !has_body && (conf.proxy_next_upstream.non_idempotent || idempotent(req.method()));
        Ok(Prepared {
            conf,
            set,
            upgrade,
            choice,
            peer,
            request,
            body: has_body.then_some(body),
            may_resend,
            now_unix,
            now_instant,
        })
    }

    /// Answers one client request. Takes its worker and connection by `Rc` so
    /// that this future is the one the connection's coroutine keeps for the
    /// request: the pipeline is
    /// one coroutine (labelled blocks instead of nested `async fn`s), because
    /// every nesting level is a copy of the child's whole state per request.
    pub async fn handle(
        self: Rc<Self>,
        conn: Rc<ConnInfo>,
        req: &mut Request<RequestBody>,
    ) -> Response<ProxyBody> {
        let info: &ConnInfo = &conn;
        info.waiting_since.set(None);
        let served = info.requests.get() + 1;
        info.requests.set(served);
        let mut log_slot: Option<Box<AccessRecord>> = None;
        let log = &mut log_slot;
        let (mut resp, tokens) = 'respond: {
            let Prepared {
                conf,
                set,
                upgrade,
                mut choice,
                mut peer,
                request,
                mut body,
                may_resend,
                now_unix,
                now_instant,
            } = match self.prepare(info, req, log) {
                Ok(prepared) => prepared,
                Err(made) => break 'respond made,
            };
            let tokens = conf.server_tokens;
            // Peers tried so far (the sticky decision consulted none).
            let mut tried = Tried::new();
            let next = &conf.proxy_next_upstream;
            let max_tries = match conf.proxy_next_upstream_tries {
                0 => usize::MAX,
                n => n as usize,
            };
            let retry_deadline = (!conf.proxy_next_upstream_timeout.is_zero())
                .then(|| now_instant.checked_add(conf.proxy_next_upstream_timeout))
                .flatten();
            let pinned_no_fallback = set.sticky().is_some_and(|s| !s.conf.fallback)
                && matches!(choice.map(|c| c.decision), Some(Decision::Pinned(_)));
            let resend_elsewhere = may_resend && !pinned_no_fallback;
            // Nothing of the request has been written yet.
            let mut fresh = true;
            let mut first_send = Some(now_instant);
            let mut last_failure = Failure::Error;

            loop {
                let Some(p) = peer else {
                    break 'respond (error_response(last_failure.error(), tokens), tokens);
                };
                tried.insert(p);
                if !fresh && !may_resend {
                    break 'respond (error_response(last_failure.error(), tokens), tokens);
                }
                let active = set.stats().begin(p);
                let try_started = log.is_some().then(Instant::now);
                // One try at `p`: a pooled connection (with one transparent retry
                // on a fresh connection if the pooled one turns out closed) or a
                // new one. The rare connect is boxed so its future does not widen
                // every request's.
                let outcome: Result<Answer, Missed> = 'attempt: {
                    let mut pooled = set.checkout(p, now_instant);
                    loop {
                        let conn = match pooled.take() {
                            Some(c) => c,
                            None => match Box::pin(open(set, p, conf)).await {
                                Ok(io) => Conn::fresh(io),
                                Err(failure) => {
                                    break 'attempt Err(Missed {
                                        failure,
                                        unsent: true,
                                    })
                                }
                            },
                        };
                        let reused = conn.reused;
                        // The request's own clock reading serves its first
                        // send; a retry reads the clock again.
                        let sent_at = first_send.take().unwrap_or_else(Instant::now);
                        match send(info, conn, &request, &mut body, conf, sent_at).await {
                            Ok(answer) => break 'attempt Ok(answer),
                            // Closed by the backend while idle: once more on a new
                            // connection, if the request can still go out.
                            Err(m)
                                if reused
                                    && m.failure == Failure::Error
                                    && (m.unsent || may_resend) => {}
                            Err(m) => break 'attempt Err(m),
                        }
                    }
                };
                if log.is_some() {
                    let status = outcome
                        .as_ref()
                        .map(|(head, _, _)| head.status)
                        .map_err(|m| m.failure);
                    note_try(log, set, p, status, try_started);
                }
                let missed = match outcome {
                    Ok((head, upstream_body, requests)) => {
                        let status = head.status;
                        let retry_status = next.statuses.contains(&status.as_u16());
                        if retry_status {
                            set.failed(p, Instant::now());
                        } else {
                            set.succeeded(p);
                        }
                        let can_retry = retry_status
                            && resend_elsewhere
                            && tried.len() < max_tries
                            && retry_deadline.is_none_or(|d| Instant::now() < d);
                        if can_retry {
                            let another = set.choose(Some(p), &tried, Instant::now());
                            if another.is_some() {
                                choice = choice.map(|c| Choice {
                                    decision: match c.decision {
                                        Decision::Pinned(_) | Decision::Fallback(_) => {
                                            another.map_or(Decision::Refuse, Decision::Fallback)
                                        }
                                        _ => another.map_or(Decision::Refuse, Decision::New),
                                    },
                                    firstseen: now_unix,
                                    ..c
                                });
                                peer = another;
                                fresh = false;
                                continue;
                            }
                        }
                        if let (Some(c), Some(stats)) = (choice.as_ref(), set.stats().peer(p)) {
                            stats.note_outcome(c.outcome);
                        }
                        note_sticky(log, set, choice.as_ref());
                        if let Some(record) = log {
                            record.streaming_since = try_started;
                        }
                        let answer = (head, upstream_body, requests);
                        let mut resp =
                            self.finish(set, conf, p, answer, choice.as_ref(), now_unix, upgrade);
                        resp.body_mut().active = Some(active);
                        break 'respond (resp, tokens);
                    }
                    Err(missed) => missed,
                };
                let failure = missed.failure;
                last_failure = failure;
                // As nginx: error, timeout and invalid_header always count
                // against the peer (max_fails).
                if matches!(
                    failure,
                    Failure::Error | Failure::Timeout | Failure::InvalidHeader
                ) {
                    set.failed(p, Instant::now());
                }
                fresh = missed.unsent;
                let retry = failure.listed(next)
                    && (fresh || resend_elsewhere)
                    && tried.len() < max_tries
                    && retry_deadline.is_none_or(|d| Instant::now() < d);
                if !retry {
                    break 'respond (error_response(failure.error(), tokens), tokens);
                }
                let now_i = Instant::now();
                match (set.sticky(), choice) {
                    (Some(sticky), Some(c)) => {
                        let c =
                            decide::after_connect_failure(&sticky.conf, &c, p, now_unix, |ex| {
                                set.choose(ex, &tried, now_i)
                            });
                        choice = Some(c);
                        note_sticky(log, set, choice.as_ref());
                        peer = c.decision.peer();
                    }
                    _ => peer = set.choose(Some(p), &tried, now_i),
                }
            }
        };
        // Ours, unless the backend's passed (`proxy_pass_header Server`), as
        // nginx.
        resp.headers_mut()
            .entry(header::SERVER)
            .or_insert_with(|| errors::server_header(tokens));
        if served >= info.keepalive_requests {
            resp.body_mut().close = true;
        }
        resp.body_mut().conn = Some(Rc::clone(&conn));
        if let Some(record) = log_slot {
            let pending = PendingLog::new(record, resp.status(), resp.headers());
            resp.body_mut().log = Some(pending);
        }
        resp
    }

    /// The backend's response, edited for the client: headers filtered, sticky
    /// cookie, body streamed with the connection returned to the pool at its end,
    /// or a tunnel after `101`.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        set: &PeerSet<Transport>,
        conf: &LocationConf,
        peer: usize,
        answer: Answer,
        choice: Option<&Choice>,
        now_unix: i64,
        upgrade: bool,
    ) -> Response<ProxyBody> {
        let (head, upstream_body, requests) = answer;
        let status = head.status;
        let declared = head.declared_length;
        let switching = status == StatusCode::SWITCHING_PROTOCOLS;
        let mut headers = head.headers;
        // Hop-by-hop and hidden lines never reached the map, but a 101's
        // `Connection` and `Upgrade`, edited here.
        if switching {
            headers::filter_response(
                &mut headers,
                &conf.proxy_hide_headers,
                &conf.proxy_pass_headers,
                true,
            );
        }
        if let (Some(sticky), Some(choice)) = (set.sticky(), choice) {
            sticky.on_response(status, &mut headers, choice, now_unix);
        }
        let body = if switching {
            // Only an upgrade the client asked for becomes a tunnel.
            let (true, Some(backend)) = (upgrade, upstream_body.into_upgraded()) else {
                return error_response(ProxyError::BadGateway, conf.server_tokens);
            };
            ProxyBody::tunnel(backend)
        } else {
            let checkin = Checkin {
                pool: set.pool(),
                peer,
                requests,
            };
            let mut body = ProxyBody::upstream(upstream_body, checkin, conf.proxy_read_timeout);
            body.declared = declared;
            body
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        resp
    }
}

/// Room for the encoded request head: the request line and every header line.
fn head_capacity(target: &str, headers: &http::HeaderMap) -> usize {
    let lines: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    target.len() + lines + 64
}

/// Moves the idle keep-alive connections of `old`'s peers to the peers of `new`
/// with the same name and address (a reload that changed the upstream).
fn adopt_idle(old: &PeerSet<Transport>, new: &PeerSet<Transport>) {
    let now = Instant::now();
    let pool = new.pool();
    for (j, peer) in new.conf().peers.iter().enumerate() {
        let Some(i) = old
            .conf()
            .peers
            .iter()
            .position(|p| p.name == peer.name && p.addr == peer.addr)
        else {
            continue;
        };
        while let Some(conn) = old.checkout(i, now) {
            pool.borrow_mut().checkin(j, conn, now);
        }
    }
}

/// Records one upstream try for `$upstream_addr`, `$upstream_status` and the
/// `$upstream_*_time` variables (only when the request is logged).
fn note_try(
    log: &mut Option<Box<AccessRecord>>,
    set: &PeerSet<Transport>,
    peer: usize,
    outcome: Result<StatusCode, Failure>,
    started: Option<Instant>,
) {
    let Some(record) = log else { return };
    let elapsed = started.map(|t| t.elapsed());
    let (status, header_time) = match outcome {
        Ok(status) => (status.as_u16(), elapsed),
        Err(failure) => (failure.error().status().as_u16(), None),
    };
    record.tries.push(TryRecord {
        addr: set.name(peer).unwrap_or_default().to_string(),
        status: Some(status),
        connect_time: None,
        header_time,
        response_time: elapsed,
    });
}

/// Records the sticky outcome (`$sticky_status`) and the sid of the chosen peer
/// (`$sticky_sid`) when the request is logged.
fn note_sticky(
    log: &mut Option<Box<AccessRecord>>,
    set: &PeerSet<Transport>,
    choice: Option<&Choice>,
) {
    if let (Some(record), Some(sticky), Some(choice)) = (log, set.sticky(), choice) {
        let sid = sticky.sid(choice).unwrap_or_default().to_string();
        record.sticky = Some((sid, choice.outcome.as_str()));
    }
}

fn client_body_timeout(server: &ServerConf) -> Duration {
    server.connection.client_body_timeout
}

/// The first `server_name` of a server (`$server_name`).
fn server_name_of(server: &ServerConf) -> &str {
    match server.names.first() {
        Some(ServerName::Exact(n)) => n,
        Some(ServerName::LeadingWildcard { suffix, .. }) => suffix,
        Some(ServerName::TrailingWildcard { prefix }) => prefix,
        Some(ServerName::Regex(re)) => re.as_str(),
        None => "",
    }
}

/// The request target in origin form (`/path?query`): an origin-form URI is
/// moved as is, an absolute-form one (`GET http://host/path`) loses its scheme
/// and authority.
fn origin_form(uri: Uri) -> Option<Uri> {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return Some(uri);
    }
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    pq.parse().ok()
}

/// Where and how a request is forwarded (see `Worker::plan`).
struct Plan<'w> {
    server: &'w ServerConf,
    conf: &'w LocationConf,
    pass: &'w ProxyPass,
    set: &'w PeerSet<Transport>,
    /// The upstream target when `proxy_pass` has a URI part.
    uri: Option<Uri>,
    set_headers: headers::SetHeaders,
}

/// A request made ready to go out (see `Worker::prepare`).
struct Prepared<'w> {
    conf: &'w LocationConf,
    set: &'w PeerSet<Transport>,
    upgrade: bool,
    choice: Option<Choice>,
    peer: Option<usize>,
    request: UpstreamRequest,
    /// The client's body, when it has one.
    body: Option<ClientBody>,
    /// Whether the request may be written again after it was sent.
    may_resend: bool,
    now_unix: i64,
    now_instant: Instant,
}

/// The answer to a request the proxy could not parse (the connection closes
/// after it).
pub fn bad_request(error: ProxyError) -> Response<ProxyBody> {
    let mut resp = error_response(error, true);
    resp.headers_mut()
        .insert(header::SERVER, errors::server_header(true));
    resp
}

/// A proxy-made response.
fn made(m: MadeResponse) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(m.body));
    *resp.status_mut() = m.status;
    let headers = resp.headers_mut();
    if let Some(ct) = m.content_type {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    if let Some(location) = m.location {
        headers.insert(header::LOCATION, location);
    }
    resp
}

/// The page for a proxy error; the connection is closed after the statuses
/// nginx closes it for. Never carries a sticky cookie.
fn error_response(error: ProxyError, server_tokens: bool) -> Response<ProxyBody> {
    let mut resp = made(MadeResponse::error(error, server_tokens));
    resp.body_mut().close = error.closes_connection();
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origin_form_keeps_path_and_query_only() {
        let cases = [
            ("/a/b?c=d", "/a/b?c=d"),
            ("http://example.com/x?y", "/x?y"),
            ("http://example.com", "/"),
            ("/", "/"),
        ];
        for (input, want) in cases {
            let got = origin_form(input.parse().unwrap()).unwrap();
            assert_eq!(got.to_string(), want, "{input}");
        }
    }

    #[test]
    fn only_post_patch_and_lock_are_non_idempotent() {
        let cases = [
            ("GET", true),
            ("HEAD", true),
            ("PUT", true),
            ("DELETE", true),
            ("OPTIONS", true),
            ("POST", false),
            ("PATCH", false),
            ("LOCK", false),
        ];
        for (method, want) in cases {
            assert_eq!(idempotent(&method.parse().unwrap()), want, "{method}");
        }
    }

    #[test]
    fn failures_map_to_nginx_statuses_and_next_upstream_flags() {
        let next = NextUpstream {
            error: true,
            timeout: false,
            ..NextUpstream::default()
        };
        let cases = [
            (Failure::Error, 502, true),
            (Failure::InvalidHeader, 502, false),
            (Failure::Timeout, 504, false),
            (Failure::BodyTooLarge, 413, false),
            (Failure::ClientBody, 408, false),
        ];
        for (failure, status, listed) in cases {
            assert_eq!(failure.error().status().as_u16(), status);
            assert_eq!(failure.listed(&next), listed);
        }
    }

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
