//! The state of one client connection that outlives its requests and that
//! the worker's sweeper reads: addresses, counters, timeouts, the signals the
//! worker raises (evict, drain), and one deadline slot a
//! request may arm (the proxy arms it with `proxy_read_timeout`), so that no
//! request arms a timer of its own.
//!
//! Protocol-neutral: the HTTP/1 loop (`downstream::conn`) uses it today, and
//! an HTTP/2 connection would use the same.

use std::cell::{Cell, OnceCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::Context;
use std::time::{Duration, Instant};

use crate::http1::request::RequestError;
use crate::request_id::RequestId;
use crate::tls::{CertRefusal, TlsInfo};
use bytes::Bytes;

/// How long a connection that keeps its request state between requests (a
/// busy keep-alive client) may wait idle before it gives that state back.
pub const SHED_AFTER: Duration = Duration::from_millis(1000);

/// Facts about one client connection, shared by its requests.
pub struct ConnState {
    pub remote: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    /// The `listen` address as configured (routing matches against it).
    pub listen: SocketAddr,
    /// Requests received on this connection so far.
    pub requests: Cell<u64>,
    /// The connection keeps its per-request state while idle, and the
    /// sweeper asked for it back (see [`SHED_AFTER`]).
    holding: Cell<bool>,
    shed: Cell<bool>,
    /// The client closed the connection while its request was being
    /// answered (nginx: `client prematurely closed connection`, 499).
    client_gone: Cell<bool>,
    /// The current request's head, in bytes as received.
    pub head_bytes: Cell<u64>,
    /// The current request's head as received (HTTP/1; none otherwise): its
    /// header values share these bytes, and the request forwarded spells the
    /// names of the client's lines from them. Taken by whoever writes the
    /// request on; emptied once the request is handled.
    pub request_head: Cell<Option<Bytes>>,
    /// The head of the response being answered with, as received from a
    /// backend (none for a response the proxy made): its header values share
    /// these bytes, and the client's head spells the names of the lines passed
    /// on from them. Set by whoever reads the response; taken when the
    /// response head is written.
    pub response_head: Cell<Option<Bytes>>,
    /// `keepalive_requests` of the connection's server (on an `ssl`
    /// listener, the server its SNI name chose: [`ConnState::adopt_limits`]).
    pub keepalive_requests: Cell<u64>,
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
    pub header_timeout: Cell<Duration>,
    /// `keepalive_timeout`: an idle connection is closed after it.
    pub idle_timeout: Cell<Duration>,
    /// `send_timeout`: a client that takes no response data for this long is
    /// closed.
    pub send_timeout: Cell<Duration>,
    /// Since when a write to the client has been waiting for the socket
    /// (`None` when none is).
    last_write: Cell<Option<Instant>>,
    /// The deadline slot: when what the request waits for (a backend's
    /// response head) times out, whether it has, and the waiting task.
    deadline: Cell<Option<Instant>>,
    timed_out: Cell<bool>,
    deadline_waker: Cell<Option<std::task::Waker>>,
    /// The TLS facts of the connection, set once its handshake is done
    /// (unset: plain TCP).
    tls: OnceCell<Rc<TlsInfo>>,
    /// The client spoke plain HTTP to a TLS listener.
    plain_on_tls: Cell<bool>,
    /// The current request's `$request_id`, drawn when first read; emptied
    /// when a request starts ([`ConnState::request_started`]).
    pub request_id: RequestId,
    /// The current request's bytes were already buffered when the one before
    /// it ended (`$pipe`, nginx's `r->pipeline`).
    pub pipelined: Cell<bool>,
}

impl ConnState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        remote: SocketAddr,
        local: SocketAddr,
        listen: SocketAddr,
        keepalive_requests: u64,
        serial: u64,
        header_timeout: Duration,
        idle_timeout: Duration,
        send_timeout: Duration,
    ) -> ConnState {
        ConnState {
            remote,
            local,
            listen,
            requests: Cell::new(0),
            holding: Cell::new(false),
            shed: Cell::new(false),
            client_gone: Cell::new(false),
            head_bytes: Cell::new(0),
            request_head: Cell::new(None),
            response_head: Cell::new(None),
            keepalive_requests: Cell::new(keepalive_requests),
            serial,
            waiting_since: Cell::new(Some(Instant::now())),
            signal: Cell::new(Signal::None),
            signal_waker: Cell::new(None),
            header_timeout: Cell::new(header_timeout),
            idle_timeout: Cell::new(idle_timeout),
            send_timeout: Cell::new(send_timeout),
            last_write: Cell::new(None),
            deadline: Cell::new(None),
            timed_out: Cell::new(false),
            deadline_waker: Cell::new(None),
            tls: OnceCell::new(),
            plain_on_tls: Cell::new(false),
            request_id: RequestId::new(),
            pipelined: Cell::new(false),
        }
    }

    /// The state of one HTTP/2 stream of this connection: its addresses,
    /// TLS facts, serial and limits, with slots of its own for one request
    /// (head, deadline, client gone). Never idle: the connection's state is
    /// what waits for requests.
    pub fn stream(&self) -> ConnState {
        let stream = ConnState::new(
            self.remote,
            self.local,
            self.listen,
            self.keepalive_requests.get(),
            self.serial,
            self.header_timeout.get(),
            self.idle_timeout.get(),
            self.send_timeout.get(),
        );
        stream.requests.set(self.requests.get());
        stream.waiting_since.set(None);
        if let Some(tls) = self.tls.get() {
            let _ = stream.tls.set(Rc::clone(tls));
        }
        stream
    }

    /// A request starts on the connection: its per-request variables are
    /// fresh (`pipelined`: its bytes were buffered when the one before ended).
    pub fn request_started(&self, pipelined: bool) {
        self.request_id.reset();
        self.pipelined.set(pipelined);
    }

    /// The connection's limits from the server its TLS handshake chose by
    /// SNI name (nginx: the connection takes that server's configuration):
    /// `keepalive_requests`, `client_header_timeout`, `keepalive_timeout`,
    /// `send_timeout`.
    pub fn adopt_limits(
        &self,
        keepalive_requests: u64,
        header_timeout: Duration,
        idle_timeout: Duration,
        send_timeout: Duration,
    ) {
        self.header_timeout.set(header_timeout);
        self.location_limits(send_timeout, idle_timeout, keepalive_requests);
    }

    /// The limits of the location a request ended in (nginx reads these
    /// from the location): the response's `send_timeout`, and whether the
    /// connection is kept alive after it (`keepalive_timeout` 0, or
    /// `keepalive_requests` served, closes it) and for how long.
    pub fn location_limits(
        &self,
        send_timeout: Duration,
        idle_timeout: Duration,
        keepalive_requests: u64,
    ) {
        self.send_timeout.set(send_timeout);
        self.idle_timeout.set(idle_timeout);
        self.keepalive_requests.set(keepalive_requests);
    }

    /// Whether the location's limits allow another request on the connection.
    pub fn may_keep_alive(&self) -> bool {
        !self.idle_timeout.get().is_zero() && self.requests.get() < self.keepalive_requests.get()
    }

    /// The connection's TLS handshake is done: these are its facts.
    pub fn set_tls(&self, info: TlsInfo) {
        let _ = self.tls.set(Rc::new(info));
    }

    /// The TLS facts of the connection (`None`: it is not TLS).
    pub fn tls(&self) -> Option<&Rc<TlsInfo>> {
        self.tls.get()
    }

    /// Whether this connection's requests arrive over TLS (`$https`,
    /// `$scheme`, a `Secure` sticky cookie under `secure=auto`).
    pub fn is_tls(&self) -> bool {
        self.tls.get().is_some()
    }

    /// `$scheme`: `https` over TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() {
            "https"
        } else {
            "http"
        }
    }

    /// The client sent plain HTTP to a TLS listener: each request is refused.
    pub fn set_plain_on_tls(&self) {
        self.plain_on_tls.set(true);
    }

    /// Why every request of this connection is refused, if it is: plain HTTP
    /// on a TLS port, or a client certificate `ssl_verify_client` refuses.
    pub fn refusal(&self) -> Option<RequestError> {
        if self.plain_on_tls.get() {
            return Some(RequestError::PlainHttpToHttps);
        }
        match self.tls.get()?.refusal? {
            CertRefusal::CertificateError => Some(RequestError::SslCertificateError),
            CertRefusal::NoCertificate => Some(RequestError::NoSslCertificate),
        }
    }

    /// Called by the worker's sweeper: wakes a request whose deadline passed,
    /// asks a connection that keeps its request state while idle to give it
    /// back after [`SHED_AFTER`], and returns true when the connection must be
    /// closed: it has waited for a request longer than allowed
    /// (`client_header_timeout` before its first request, `keepalive_timeout`
    /// after), or its client has taken no response data for `send_timeout`.
    pub fn sweep(&self, now: Instant) -> bool {
        if let Some(wrote) = self.last_write.get() {
            let limit = self.send_timeout.get();
            if !limit.is_zero() && now.saturating_duration_since(wrote) > limit {
                return true;
            }
        }
        if let Some(deadline) = self.deadline.get() {
            if now >= deadline {
                self.deadline.set(None);
                self.timed_out.set(true);
                if let Some(waker) = self.deadline_waker.take() {
                    waker.wake();
                }
            }
        }
        let Some(since) = self.waiting_since.get() else {
            return false;
        };
        let waited = now.saturating_duration_since(since);
        if self.holding.get() && !self.shed.get() && waited >= SHED_AFTER {
            self.shed.set(true);
            if let Some(waker) = self.signal_waker.take() {
                waker.wake();
            }
        }
        let limit = if self.requests.get() == 0 {
            self.header_timeout.get()
        } else {
            self.idle_timeout.get()
        };
        !limit.is_zero() && waited > limit
    }

    /// The connection waits idle keeping its per-request state (`true`) or
    /// holding none (`false`).
    pub fn set_holding(&self, holding: bool) {
        self.holding.set(holding);
        self.shed.set(false);
    }

    /// The client closed the connection while its request was answered: what
    /// waits for a backend stops ([`ConnState::client_gone`]).
    pub fn client_closed(&self) {
        self.client_gone.set(true);
    }

    /// Whether the client closed the connection while its request was
    /// answered.
    pub fn client_gone(&self) -> bool {
        self.client_gone.get()
    }

    /// Whether the sweeper asked the idle connection to give its
    /// per-request state back.
    pub fn shed_asked(&self) -> bool {
        self.shed.get()
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

    /// Sets the deadline slot (`None`: no deadline). The sweeper marks it
    /// passed and wakes the task parked on it ([`ConnState::park`]).
    pub fn arm(&self, deadline: Option<Instant>) {
        self.timed_out.set(false);
        self.deadline.set(deadline);
    }

    /// Clears the deadline slot.
    pub fn disarm(&self) {
        self.deadline.set(None);
        self.deadline_waker.set(None);
    }

    /// The latest signal the worker raised.
    pub fn signal(&self) -> Signal {
        self.signal.get()
    }

    /// A write to the client is waiting for the socket: `send_timeout` runs
    /// from the first such wait until [`ConnState::write_done`].
    pub fn write_blocked(&self) {
        if self.last_write.get().is_none() {
            self.last_write.set(Some(Instant::now()));
        }
    }

    /// Everything queued for the client has been written.
    pub fn write_done(&self) {
        self.last_write.set(None);
    }

    /// Whether the armed deadline has passed.
    pub fn deadline_passed(&self) -> bool {
        self.timed_out.get()
    }

    /// Keeps `waker` to be woken when the armed deadline passes.
    pub fn park(&self, waker: &std::task::Waker) {
        let kept = match self.deadline_waker.take() {
            Some(w) if w.will_wake(waker) => w,
            _ => waker.clone(),
        };
        self.deadline_waker.set(Some(kept));
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
