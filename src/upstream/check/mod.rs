//! Active health checks: Tengine's `check` directive.
//!
//! Pure part: [`CheckState`] (the rise/fall state machine of one peer, with
//! `default_down`; time is passed in), [`first_due`] (checks of an upstream's peers
//! are spread over the first interval so they never fire together) and the
//! classification of an http check's reply ([`status_code`], [`http_verdict`],
//! and for kept-alive checks [`reply_head`]).
//!
//! I/O part: [`Checker`] runs every check on one background thread, in one loop
//! over all checked peers with no async runtime: each pass starts the checks
//! that are due (peers dealt into the same time slot share one instant, so one
//! wake-up starts them all), and one `poll(2)` waits on every check socket in
//! flight until one is ready or the next deadline. A check is a non-blocking
//! TCP connect (`type=tcp`), or a connect, the raw `check_http_send` bytes and
//! the reply's status line (`type=http`), all within `timeout`; no task, timer,
//! epoll registration or allocation per check. With `check_keepalive_requests
//! N` an http check reads the whole reply ([`reply_head`]) and its connection
//! serves up to N checks. Results go to the peer's
//! [`PeerStats`](crate::upstream::stats::PeerStats) in the shared
//! [`HealthTable`]; workers read them with relaxed atomic loads, so checks never
//! run on, or wait for, the request path. Every up/down change is logged at `warn`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{CheckConf, CheckType, Config, StatusClasses};
use crate::upstream::stats::{HealthTable, UpstreamStats};

// ---------------------------------------------------------------------------
// Pure part
// ---------------------------------------------------------------------------

/// A change of a peer's checked state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    WentUp,
    WentDown,
}

/// The active-check state of one peer: up or down, and Tengine's counters of
/// consecutive successes (`rise`) and failures (`fall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckState {
    up: bool,
    rise: u32,
    fall: u32,
    /// When the state last changed (`None`: never, it is the initial state).
    since: Option<Instant>,
}

impl CheckState {
    /// The state before any check: down with `default_down`, else up.
    pub fn new(default_down: bool) -> CheckState {
        CheckState {
            up: !default_down,
            rise: 0,
            fall: 0,
            since: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// (consecutive successes, consecutive failures).
    pub fn counters(&self) -> (u32, u32) {
        (self.rise, self.fall)
    }

    /// When the state last changed.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Records one check result at `now`: `rise` consecutive successes bring a
    /// down peer up, `fall` consecutive failures take an up peer down. A success
    /// clears the failure count and a failure the success count.
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32, now: Instant) -> Transition {
        if ok {
            self.rise = self.rise.saturating_add(1);
            self.fall = 0;
            if !self.up && self.rise >= rise.max(1) {
                self.up = true;
                self.since = Some(now);
                return Transition::WentUp;
            }
        } else {
            self.fall = self.fall.saturating_add(1);
            self.rise = 0;
            if self.up && self.fall >= fall.max(1) {
                self.up = false;
                self.since = Some(now);
                return Transition::WentDown;
            }
        }
        Transition::Unchanged
    }
}

/// Checks of one upstream are grouped into at most this many time slots per
/// interval: spread enough that a large upstream is not checked in one burst,
/// grouped enough that one timer wake-up serves many peers.
pub const SLOTS: usize = 20;

/// When peer `index` of `count` checks first: peers are dealt round-robin into
/// [`SLOTS`] slots spread evenly over the first interval (with fewer peers than
/// slots, one slot each).
pub fn first_due(start: Instant, interval: Duration, index: usize, count: usize) -> Instant {
    let slots = count.clamp(1, SLOTS) as u128;
    let slot = index as u128 % slots;
    let offset_ns = interval.as_nanos().saturating_mul(slot) / slots;
    start + Duration::from_nanos(u64::try_from(offset_ns).unwrap_or(u64::MAX))
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The connection could not be made.
    Connect(io::ErrorKind),
    /// Nothing within `timeout`.
    Timeout,
    /// Writing the request or reading the reply failed.
    Io(io::ErrorKind),
    /// The reply is not an HTTP status line.
    BadReply,
    /// The status is not in `check_http_expect_alive`.
    Status(u16),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Connect(kind) => write!(f, "connect failed: {kind}"),
            CheckError::Timeout => write!(f, "timed out"),
            CheckError::Io(kind) => write!(f, "i/o error: {kind}"),
            CheckError::BadReply => write!(f, "not an HTTP status line"),
            CheckError::Status(code) => write!(f, "status {code} is not expected alive"),
        }
    }
}

/// The status code at the start of an HTTP reply (`HTTP/x.y NNN ...`), if the
/// status line is there and well formed.
pub fn status_code(reply: &[u8]) -> Option<u16> {
    let rest = reply.strip_prefix(b"HTTP/")?;
    let (version, rest) = rest.split_at_checked(3)?;
    if !matches!(version, [a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let (digits, after) = rest.split_at_checked(3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !matches!(after.first(), None | Some(b' ' | b'\r' | b'\n')) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (100..=599).contains(&code).then_some(code)
}

/// Tengine's verdict on an http check's reply: alive when its status is in one
/// of the `check_http_expect_alive` classes.
pub fn http_verdict(reply: &[u8], expect: StatusClasses) -> Result<(), CheckError> {
    match status_code(reply) {
        None => Err(CheckError::BadReply),
        Some(code) if expect.contains(code) => Ok(()),
        Some(code) => Err(CheckError::Status(code)),
    }
}

/// The address a check connects to: the peer's, or its IP with `port=`.
pub fn check_target(peer: SocketAddr, conf: &CheckConf) -> SocketAddr {
    match conf.port {
        Some(port) => SocketAddr::new(peer.ip(), port),
        None => peer,
    }
}

// ---------------------------------------------------------------------------
// Keep-alive replies (pure)
// ---------------------------------------------------------------------------

/// What a complete response head says about reusing its connection
/// (`check_keepalive_requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHead {
    /// Bytes of the head, through its blank line.
    pub len: usize,
    /// Body bytes that follow it; `None` when unknown (chunked, or until the
    /// connection closes), so the connection cannot serve another check.
    pub body: Option<u64>,
    /// `Connection: close`, or an HTTP/1.0 reply without `keep-alive`.
    pub close: bool,
}

/// The head at the start of `reply` once it is complete (`None` before its
/// blank line has arrived). `head_request`: the check sent `HEAD`, so no body
/// follows whatever `Content-Length` says.
pub fn reply_head(reply: &[u8], head_request: bool) -> Option<ReplyHead> {
    let end = reply.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = reply.get(..end).unwrap_or_default();
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let code = status_code(status_line);
    let mut length: Option<u64> = None;
    let mut conflicting = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            match (crate::http1::fields::parse_decimal(value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => conflicting = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let body = match code {
        None | Some(100..=199) => None,
        Some(204 | 304) => Some(0),
        Some(_) if head_request => Some(0),
        Some(_) if chunked || conflicting => None,
        Some(_) => length,
    };
    Some(ReplyHead {
        len: end + 4,
        body,
        close: close || (status_line.starts_with(b"HTTP/1.0") && !keep_alive),
    })
}

// ---------------------------------------------------------------------------
// I/O part
// ---------------------------------------------------------------------------

/// Bytes read at most from an http check's reply when its connection is not
/// kept (the status line is enough).
const REPLY_LIMIT: usize = 256;

/// Bytes of a reply's head read at most on a kept-alive check connection.
const HEAD_LIMIT: usize = 4096;

/// The buffer replies are read into (bodies of kept-alive checks are read into
/// it and dropped).
const SCRATCH: usize = 4096;

/// How long the checker lets replies gather after a wake-up that still leaves
/// checks waiting (a check's result is at most this much later).
const COALESCE: Duration = Duration::from_millis(1);

/// A check connection kept open for the next check (`check_keepalive_requests`).
pub struct Kept {
    sock: Socket,
    /// Checks it has served.
    served: u32,
}

/// Where a check in flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The non-blocking connect has not finished.
    Connecting,
    /// Writing `check_http_send`; `sent` bytes are out.
    Sending { sent: usize },
    /// Reading the reply's status line (or, kept-alive, its whole head).
    Head,
    /// Kept-alive: reading and dropping the `left` body bytes still to come.
    Body { left: u64 },
}

/// What [`Probe::advance`] came to.
enum Progress {
    /// Waiting for the socket (see [`Probe::interest`]).
    Pending,
    Done(Result<(), CheckError>),
}

/// One check in flight on a non-blocking socket, moved on by [`Probe::advance`]
/// each time `poll(2)` reports the socket ready: no task, timer or epoll
/// registration of its own.
struct Probe {
    sock: Socket,
    step: Step,
    deadline: Instant,
    /// Checks its connection served before this one.
    served: u32,
    /// The check runs on a kept connection and has had no reply byte yet: a
    /// failure now means the peer closed the connection between checks, which
    /// is no failure of the peer by itself; it is retried once on a new one.
    reused: bool,
    /// The reply was read whole and the connection may serve the next check.
    reusable: bool,
}

/// A new non-blocking socket connecting to `target`; true when the connect
/// already finished.
fn open(target: SocketAddr) -> Result<(Socket, bool), CheckError> {
    let failed = |e: io::Error| CheckError::Connect(e.kind());
    let sock = Socket::new(
        Domain::for_address(target),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )
    .map_err(failed)?;
    // Close with a reset (as HAProxy's checks do): no FIN exchange and no
    // TIME_WAIT socket left behind per check. Set before the connect, so it
    // holds however the check ends; zero linger never blocks.
    let _ = sock.set_linger(Some(Duration::ZERO));
    match sock.connect(&target.into()) {
        Ok(()) => Ok((sock, true)),
        Err(e) if e.raw_os_error() == Some(Errno::INPROGRESS.raw_os_error()) => Ok((sock, false)),
        Err(e) => Err(failed(e)),
    }
}

/// Whether checks of `conf` keep their connection for the next check.
fn keeps_alive(conf: &CheckConf) -> bool {
    conf.kind == CheckType::Http && conf.keepalive_requests > 1
}

impl Probe {
    /// Starts a check at `now`: on `kept` if given, else on a new connection.
    /// The flag is true when the probe may go on at once (the connect finished).
    fn start(
        target: SocketAddr,
        conf: &CheckConf,
        kept: Option<Kept>,
        now: Instant,
    ) -> Result<(Probe, bool), CheckError> {
        let deadline = now + conf.timeout;
        let probe = |sock, step, served, reused| Probe {
            sock,
            step,
            deadline,
            served,
            reused,
            reusable: false,
        };
        Ok(match kept {
            Some(Kept { sock, served }) => {
                (probe(sock, Step::Sending { sent: 0 }, served, true), true)
            }
            None => {
                let (sock, connected) = open(target)?;
                (probe(sock, Step::Connecting, 0, false), connected)
            }
        })
    }

    /// What the probe waits for.
    fn interest(&self) -> PollFlags {
        match self.step {
            Step::Connecting | Step::Sending { .. } => PollFlags::OUT,
            Step::Head | Step::Body { .. } => PollFlags::IN,
        }
    }

    /// Moves the check on as far as it goes without waiting. `ready`: poll(2)
    /// reported the socket (only a connect in progress needs it; other steps
    /// just try). `reply` collects the reply's head; `scratch` is any buffer.
    fn advance(
        &mut self,
        mut ready: bool,
        target: SocketAddr,
        conf: &CheckConf,
        reply: &mut Vec<u8>,
        scratch: &mut [u8],
    ) -> Progress {
        let keep_alive = keeps_alive(conf);
        loop {
            match self.step {
                Step::Connecting => {
                    if !ready {
                        return Progress::Pending;
                    }
                    match self.sock.take_error() {
                        Ok(None) => {}
                        Ok(Some(e)) | Err(e) => {
                            return Progress::Done(Err(CheckError::Connect(e.kind())))
                        }
                    }
                    if conf.kind == CheckType::Tcp {
                        return Progress::Done(Ok(()));
                    }
                    self.step = Step::Sending { sent: 0 };
                }
                Step::Sending { sent } => {
                    let rest = conf.http_send.get(sent..).unwrap_or_default();
                    match (&self.sock).write(rest) {
                        Ok(n) if sent + n >= conf.http_send.len() => {
                            // The reply cannot be there yet: wait for it rather
                            // than try a read that would only say "not yet".
                            self.step = Step::Head;
                            return Progress::Pending;
                        }
                        Ok(n) => self.step = Step::Sending { sent: sent + n },
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Progress::Pending
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let failure = Err(CheckError::Io(e.kind()));
                            match self.stale(target, reply, failure) {
                                Ok(now_ready) => ready = now_ready,
                                Err(result) => return Progress::Done(result),
                            }
                        }
                    }
                }
                Step::Head => {
                    let limit = if keep_alive { HEAD_LIMIT } else { REPLY_LIMIT };
                    let room = limit.saturating_sub(reply.len()).min(scratch.len());
                    if room == 0 {
                        return Progress::Done(http_verdict(reply, conf.expect_alive));
                    }
                    let buf = scratch.get_mut(..room).unwrap_or_default();
                    match (&self.sock).read(buf) {
                        Ok(0) => {
                            let failure = http_verdict(reply, conf.expect_alive);
                            match self.stale(target, reply, failure) {
                                Ok(now_ready) => ready = now_ready,
                                Err(result) => return Progress::Done(result),
                            }
                        }
                        Ok(n) => {
                            let got = buf.get(..n).unwrap_or_default();
                            reply.extend_from_slice(got);
                            if !keep_alive {
                                if got.contains(&b'\n') {
                                    return Progress::Done(http_verdict(reply, conf.expect_alive));
                                }
                                continue;
                            }
                            let head_request = conf.http_send.starts_with(b"HEAD ");
                            let Some(head) = reply_head(reply, head_request) else {
                                continue;
                            };
                            let verdict = http_verdict(reply, conf.expect_alive);
                            let extra = reply.len().saturating_sub(head.len) as u64;
                            match head.body {
                                Some(body)
                                    if !head.close
                                        && extra <= body
                                        && self.served + 1 < conf.keepalive_requests =>
                                {
                                    if body == extra {
                                        self.reusable = true;
                                        return Progress::Done(verdict);
                                    }
                                    self.step = Step::Body { left: body - extra };
                                }
                                _ => return Progress::Done(verdict),
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Progress::Pending
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => match self.stale(target, reply, Err(CheckError::Io(e.kind()))) {
                            Ok(now_ready) => ready = now_ready,
                            Err(result) => return Progress::Done(result),
                        },
                    }
                }
                Step::Body { left } => {
                    let room = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(scratch.len());
                    let buf = scratch.get_mut(..room).unwrap_or_default();
                    match (&self.sock).read(buf) {
                        // Cut short: the status line still decides, but the
                        // connection is done.
                        Ok(0) => return Progress::Done(http_verdict(reply, conf.expect_alive)),
                        Ok(n) => {
                            let left = left.saturating_sub(n as u64);
                            if left == 0 {
                                self.reusable = true;
                                return Progress::Done(http_verdict(reply, conf.expect_alive));
                            }
                            self.step = Step::Body { left };
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Progress::Pending
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Progress::Done(Err(CheckError::Io(e.kind()))),
                    }
                }
            }
        }
    }

    /// A kept connection failed before any reply byte: the peer closed it
    /// between checks, which is no failure of the peer by itself. Reconnects
    /// once, within the same deadline: `Ok(ready)` when the check goes on on
    /// the new connection, else `Err` with the check's result (`failure`, or
    /// the new connect's error).
    fn stale(
        &mut self,
        target: SocketAddr,
        reply: &[u8],
        failure: Result<(), CheckError>,
    ) -> Result<bool, Result<(), CheckError>> {
        if !self.reused || !reply.is_empty() {
            return Err(failure);
        }
        self.reused = false;
        self.served = 0;
        let (sock, connected) = open(target).map_err(Err)?;
        self.sock = sock;
        self.step = Step::Connecting;
        Ok(connected)
    }

    /// The connection, if it may serve the next check.
    fn into_kept(self) -> Option<Kept> {
        self.reusable.then_some(Kept {
            sock: self.sock,
            served: self.served + 1,
        })
    }
}

/// `d` as a poll(2) timeout, rounded up to a whole millisecond so that wake-ups
/// due within the same millisecond are served by one.
fn poll_timeout(d: Duration) -> Timespec {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Timespec {
        tv_sec: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        tv_nsec: i64::try_from(ms % 1000 * 1_000_000).unwrap_or(0),
    }
}

/// One check of `target` within `conf.timeout`, waiting on this thread. It runs
/// on `kept` if given (else on a new connection), and leaves the connection
/// there when it may serve the next check.
pub fn check_on(
    target: SocketAddr,
    conf: &CheckConf,
    kept: &mut Option<Kept>,
) -> Result<(), CheckError> {
    let (mut probe, mut ready) = Probe::start(target, conf, kept.take(), Instant::now())?;
    let mut reply = Vec::new();
    let mut scratch = [0u8; SCRATCH];
    loop {
        if let Progress::Done(result) = probe.advance(ready, target, conf, &mut reply, &mut scratch)
        {
            *kept = probe.into_kept();
            return result;
        }
        let left = probe.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CheckError::Timeout);
        }
        let mut fds = [PollFd::new(&probe.sock, probe.interest())];
        ready = match poll(&mut fds, Some(&poll_timeout(left))) {
            Ok(_) => fds.iter().any(|fd| !fd.revents().is_empty()),
            Err(Errno::INTR) => false,
            Err(e) => return Err(CheckError::Io(io::Error::from(e).kind())),
        };
    }
}

/// One check of `target` on a new connection, within `conf.timeout`, waiting
/// on this thread.
pub fn check_once(target: SocketAddr, conf: &CheckConf) -> Result<(), CheckError> {
    check_on(target, conf, &mut None)
}

/// The background checker of one configuration. Dropping it stops every check
/// and joins its thread.
pub struct Checker {
    /// Dropping it wakes the thread, which then ends.
    stop: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

/// One checked peer: what its checks need and its state between them.
struct Watched {
    upstream: Arc<str>,
    peer: String,
    index: usize,
    target: SocketAddr,
    conf: Arc<CheckConf>,
    stats: Arc<UpstreamStats>,
    state: CheckState,
    /// When the running check, or else the next one, is due.
    due: Instant,
    probe: Option<Probe>,
    kept: Option<Kept>,
    /// The reply of the running check (its capacity kept from check to check).
    reply: Vec<u8>,
}

impl Watched {
    /// Starts the check due now, and goes as far as it can without waiting.
    fn start(&mut self, now: Instant, scratch: &mut [u8]) {
        self.reply.clear();
        match Probe::start(self.target, &self.conf, self.kept.take(), now) {
            Ok((probe, ready)) => self.advance(probe, ready, scratch),
            Err(e) => self.finish(Err(e)),
        }
    }

    /// Moves the running check on after poll(2) reported its socket.
    fn resume(&mut self, scratch: &mut [u8]) {
        if let Some(probe) = self.probe.take() {
            self.advance(probe, true, scratch);
        }
    }

    fn advance(&mut self, mut probe: Probe, ready: bool, scratch: &mut [u8]) {
        match probe.advance(ready, self.target, &self.conf, &mut self.reply, scratch) {
            Progress::Pending => self.probe = Some(probe),
            Progress::Done(result) => {
                self.kept = probe.into_kept();
                self.finish(result);
            }
        }
    }

    /// Fails the running check if its `timeout` has passed.
    fn expire(&mut self, now: Instant) {
        if self.probe.as_ref().is_some_and(|p| p.deadline <= now) {
            self.probe = None;
            self.finish(Err(CheckError::Timeout));
        }
    }

    /// Publishes a check's result, logs a change of state and schedules the next
    /// check one `interval` after this one was due (at once if that has passed).
    fn finish(&mut self, result: Result<(), CheckError>) {
        let now = Instant::now();
        let conf = &self.conf;
        let transition = self.state.record(result.is_ok(), conf.rise, conf.fall, now);
        let (rise, fall) = self.state.counters();
        if let Some(p) = self.stats.peer(self.index) {
            p.publish_check(!self.state.is_up(), rise, fall);
        }
        match (transition, &result) {
            (Transition::WentDown, Err(e)) => tracing::warn!(
                "upstream \"{}\": peer {} is down after {fall} failed {} checks (last: {e})",
                self.upstream,
                self.peer,
                conf.kind.as_str()
            ),
            (Transition::WentDown, Ok(())) => {}
            (Transition::WentUp, _) => tracing::warn!(
                "upstream \"{}\": peer {} is up after {rise} successful {} checks",
                self.upstream,
                self.peer,
                conf.kind.as_str()
            ),
            (Transition::Unchanged, _) => {}
        }
        self.due = (self.due + conf.interval).max(now);
    }
}

impl Checker {
    /// Starts checking every peer of every upstream with `check` (peers marked
    /// `down` are never used and not checked). `None` when no upstream has a
    /// check: no thread is started.
    pub fn start(config: &Config, table: &HealthTable) -> io::Result<Option<Checker>> {
        let start = Instant::now();
        let mut peers = Vec::new();
        for (u, conf) in config.http.upstreams.iter().enumerate() {
            let (Some(check), Some(stats)) = (conf.check.as_ref(), table.upstream(u)) else {
                continue;
            };
            let check = Arc::new(check.clone());
            let name: Arc<str> = Arc::from(conf.name.as_str());
            let count = conf.peers.len();
            for (i, peer) in conf.peers.iter().enumerate() {
                if peer.down {
                    continue;
                }
                let reply = match check.kind {
                    CheckType::Http => Vec::with_capacity(REPLY_LIMIT),
                    CheckType::Tcp => Vec::new(),
                };
                peers.push(Watched {
                    upstream: Arc::clone(&name),
                    peer: peer.name.clone(),
                    index: i,
                    target: check_target(peer.addr, &check),
                    conf: Arc::clone(&check),
                    stats: Arc::clone(stats),
                    state: CheckState::new(check.default_down),
                    due: first_due(start, check.interval, i, count),
                    probe: None,
                    kept: None,
                    reply,
                });
            }
        }
        if peers.is_empty() {
            return Ok(None);
        }
        let (stop, stopped) = UnixStream::pair()?;
        let thread = std::thread::Builder::new()
            .name("health-check".to_string())
            .spawn(move || run(peers, &stopped))?;
        Ok(Some(Checker {
            stop: Some(stop),
            thread: Some(thread),
        }))
    }

    /// Stops every check and waits for the thread.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        // Closing our end makes the thread's end readable (end of file).
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the health-check thread panicked");
            }
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The checker thread. Each pass starts the checks that are due (peers of a
/// time slot share the instant, so they start together; the peers are scanned
/// only when the earliest due check has come), fails those past their timeout,
/// then waits in one poll(2) on every check in flight (and `stopped`) until a
/// socket is ready or the next deadline, and moves on the checks whose socket
/// is ready. Apart from the scan for due checks, a pass costs in proportion to
/// the checks in flight, not to the peers. Ends when `stopped` becomes
/// readable.
fn run(mut peers: Vec<Watched>, stopped: &UnixStream) {
    let mut scratch = vec![0u8; SCRATCH];
    // The peers with a check in flight, and whether poll(2) reported their
    // socket in this pass.
    let mut in_flight: Vec<(usize, bool)> = Vec::with_capacity(peers.len());
    // The earliest next check of an idle peer (`None`: none is idle).
    let mut next_start = Some(Instant::now());
    let mut fds_buffer: Vec<PollFd<'static>> = Vec::with_capacity(peers.len() + 1);
    loop {
        let now = Instant::now();
        if next_start.is_some_and(|t| t <= now) {
            next_start = None;
            for (i, p) in peers.iter_mut().enumerate() {
                if p.probe.is_none() && p.due <= now {
                    p.start(now, &mut scratch);
                    if p.probe.is_some() {
                        in_flight.push((i, false));
                    }
                }
                if p.probe.is_none() {
                    next_start = earliest(next_start, p.due);
                }
            }
        }
        for &(i, _) in &in_flight {
            if let Some(p) = peers.get_mut(i) {
                p.expire(now);
                if p.probe.is_none() {
                    next_start = earliest(next_start, p.due);
                }
            }
        }
        in_flight.retain(|&(i, _)| peers.get(i).is_some_and(|p| p.probe.is_some()));
        let mut wake = next_start;
        let mut fds = recycle(fds_buffer);
        fds.push(PollFd::new(stopped, PollFlags::IN));
        for &(i, _) in &in_flight {
            if let Some(probe) = peers.get(i).and_then(|p| p.probe.as_ref()) {
                fds.push(PollFd::new(&probe.sock, probe.interest()));
                wake = earliest(wake, probe.deadline);
            }
        }
        let timeout = wake.map(|w| poll_timeout(w.saturating_duration_since(Instant::now())));
        let polled = poll(&mut fds, timeout.as_ref());
        let stop = fds.first().is_none_or(|fd| !fd.revents().is_empty());
        for (slot, fd) in in_flight.iter_mut().zip(fds.iter().skip(1)) {
            slot.1 = !fd.revents().is_empty();
        }
        fds_buffer = recycle(fds);
        match polled {
            Ok(_) if stop => return,
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => {
                tracing::error!("health checks: poll failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let mut resumed = false;
        for &(i, ready) in &in_flight {
            if let (true, Some(p)) = (ready, peers.get_mut(i)) {
                resumed = true;
                p.resume(&mut scratch);
                if p.probe.is_none() {
                    next_start = earliest(next_start, p.due);
                }
            }
        }
        in_flight.retain(|&(i, _)| peers.get(i).is_some_and(|p| p.probe.is_some()));
        // The replies of a slot's checks arrive one after another: let them
        // gather for a moment rather than wake up for each one.
        if resumed && !in_flight.is_empty() {
            std::thread::sleep(COALESCE);
        }
    }
}

/// The earlier of `a` (if any) and `b`.
fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// `fds` emptied, with its allocation kept for borrows of another lifetime
/// (the in-place collect of an empty vector reuses its buffer), so that
/// building the poll set allocates nothing from pass to pass. (`filter` would
/// keep the lifetime; `filter_map` is what lets it change.)
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'a, 'b>(mut fds: Vec<PollFd<'a>>) -> Vec<PollFd<'b>> {
    fds.clear();
    fds.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// [`check_once`] off the test's runtime, whose tasks serve the backends.
    async fn check(target: SocketAddr, conf: &CheckConf) -> Result<(), CheckError> {
        let conf = conf.clone();
        tokio::task::spawn_blocking(move || check_once(target, &conf))
            .await
            .unwrap()
    }

    /// (result, expected up after it, expected counters, expected transition)
    type Step = (bool, bool, (u32, u32), Transition);

    fn run(default_down: bool, rise: u32, fall: u32, steps: &[Step]) {
        let t0 = Instant::now();
        let mut s = CheckState::new(default_down);
        assert_eq!(s.is_up(), !default_down);
        for (k, (ok, up, counters, transition)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_secs(k as u64);
            let got = s.record(*ok, rise, fall, now);
            assert_eq!(
                (got, s.is_up(), s.counters()),
                (*transition, *up, *counters),
                "step {k} of {steps:?}"
            );
            if got != Transition::Unchanged {
                assert_eq!(s.since(), Some(now));
            }
        }
    }

    #[test]
    fn rise_and_fall_state_machine() {
        use Transition::*;
        let cases: &[(bool, u32, u32, &[Step])] = &[
            // default_down: down until `rise` consecutive successes.
            (
                true,
                2,
                5,
                &[
                    (true, false, (1, 0), Unchanged),
                    (true, true, (2, 0), WentUp),
                    (true, true, (3, 0), Unchanged),
                ],
            ),
            // A failure in between restarts the rise count.
            (
                true,
                2,
                5,
                &[
                    (true, false, (1, 0), Unchanged),
                    (false, false, (0, 1), Unchanged),
                    (true, false, (1, 0), Unchanged),
                    (true, true, (2, 0), WentUp),
                ],
            ),
            // Up peer: `fall` consecutive failures take it down, once.
            (
                false,
                2,
                3,
                &[
                    (false, true, (0, 1), Unchanged),
                    (false, true, (0, 2), Unchanged),
                    (false, false, (0, 3), WentDown),
                    (false, false, (0, 4), Unchanged),
                    (true, false, (1, 0), Unchanged),
                    (true, true, (2, 0), WentUp),
                ],
            ),
            // A success in between restarts the fall count.
            (
                false,
                1,
                2,
                &[
                    (false, true, (0, 1), Unchanged),
                    (true, true, (1, 0), Unchanged),
                    (false, true, (0, 1), Unchanged),
                    (false, false, (0, 2), WentDown),
                ],
            ),
            // rise=1 fall=1: every result decides.
            (
                true,
                1,
                1,
                &[
                    (true, true, (1, 0), WentUp),
                    (false, false, (0, 1), WentDown),
                    (true, true, (1, 0), WentUp),
                ],
            ),
        ];
        for (default_down, rise, fall, steps) in cases {
            run(*default_down, *rise, *fall, steps);
        }
    }

    #[test]
    fn first_checks_are_spread_over_one_interval_in_slots() {
        let t0 = Instant::now();
        let i = Duration::from_millis(1000);
        let cases = [
            (0, 4, 0),
            (1, 4, 250),
            (3, 4, 750),
            (0, 1, 0),
            (0, 0, 0),
            // 1,000 peers share 20 slots 50 ms apart.
            (0, 1000, 0),
            (1, 1000, 50),
            (19, 1000, 950),
            (20, 1000, 0),
            (41, 1000, 50),
        ];
        for (index, count, ms) in cases {
            assert_eq!(
                first_due(t0, i, index, count),
                t0 + Duration::from_millis(ms),
                "{index}/{count}"
            );
        }
    }

    #[test]
    fn status_lines_are_classified() {
        let alive = StatusClasses::DEFAULT;
        type Case<'a> = (&'a [u8], Option<u16>, Result<(), CheckError>);
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\n", Some(200), Ok(())),
            (b"HTTP/1.0 302 Found\r\nLocation: /\r\n", Some(302), Ok(())),
            (b"HTTP/1.1 204\r\n", Some(204), Ok(())),
            (b"HTTP/1.1 200", Some(200), Ok(())),
            (
                b"HTTP/1.1 500 Oops\r\n",
                Some(500),
                Err(CheckError::Status(500)),
            ),
            (
                b"HTTP/1.1 404 Not Found\r\n",
                Some(404),
                Err(CheckError::Status(404)),
            ),
            (
                b"HTTP/1.1 199 X\r\n",
                Some(199),
                Err(CheckError::Status(199)),
            ),
            (b"", None, Err(CheckError::BadReply)),
            (b"HTTP/1.1 20", None, Err(CheckError::BadReply)),
            (b"HTTP/1.1 2000 OK\r\n", None, Err(CheckError::BadReply)),
            (b"HTTP/1.1 abc OK\r\n", None, Err(CheckError::BadReply)),
            (b"HTTP/11 200 OK\r\n", None, Err(CheckError::BadReply)),
            (b"SSH-2.0-OpenSSH\r\n", None, Err(CheckError::BadReply)),
            (b"HTTP/1.1 999 X\r\n", None, Err(CheckError::BadReply)),
            (b"http/1.1 200 OK\r\n", None, Err(CheckError::BadReply)),
        ];
        for (reply, code, verdict) in cases {
            let text = String::from_utf8_lossy(reply);
            assert_eq!(status_code(reply), *code, "{text:?}");
            assert_eq!(http_verdict(reply, alive), *verdict, "{text:?}");
        }
        let only_5xx = StatusClasses(0).with(5);
        assert_eq!(http_verdict(b"HTTP/1.1 503 X\r\n", only_5xx), Ok(()));
        assert_eq!(
            http_verdict(b"HTTP/1.1 200 X\r\n", only_5xx),
            Err(CheckError::Status(200))
        );
    }

    /// A listener that answers each connection with `reply` once it has read
    /// the request (`None`: accepts and never answers). Returns its address and a
    /// channel of the requests it read.
    async fn backend(
        reply: Option<&'static [u8]>,
    ) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    let mut got = Vec::new();
                    while !got.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tx.send(got);
                    match reply {
                        Some(r) => {
                            let _ = stream.write_all(r).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(5)).await,
                    }
                });
            }
        });
        (addr, rx)
    }

    /// An address nothing listens on.
    fn closed_port() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    fn http_conf(timeout_ms: u64) -> CheckConf {
        CheckConf {
            kind: CheckType::Http,
            timeout: Duration::from_millis(timeout_ms),
            http_send: b"HEAD /health HTTP/1.0\r\n\r\n".to_vec(),
            ..CheckConf::default()
        }
    }

    #[tokio::test]
    async fn tcp_and_http_checks_over_real_sockets() {
        let (ok, mut ok_rx) = backend(Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")).await;
        let (err, _) = backend(Some(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")).await;
        let (garbage, _) = backend(Some(b"hello\r\n")).await;
        let (silent, _) = backend(None).await;
        let dead = closed_port();
        let tcp = CheckConf {
            timeout: Duration::from_millis(500),
            ..CheckConf::default()
        };
        assert_eq!(check(ok, &tcp).await, Ok(()));
        assert_eq!(check(silent, &tcp).await, Ok(()), "tcp needs no reply");
        assert_eq!(
            check(dead, &tcp).await,
            Err(CheckError::Connect(io::ErrorKind::ConnectionRefused))
        );
        let http = http_conf(500);
        assert_eq!(check(ok, &http).await, Ok(()));
        // The tcp check's connection brought no request; the http one did.
        let mut request = Vec::new();
        while request.is_empty() {
            request = ok_rx.recv().await.unwrap();
        }
        assert_eq!(request, b"HEAD /health HTTP/1.0\r\n\r\n");
        assert_eq!(check(err, &http).await, Err(CheckError::Status(500)));
        assert_eq!(check(garbage, &http).await, Err(CheckError::BadReply));
        let started = Instant::now();
        assert_eq!(
            check(silent, &http_conf(100)).await,
            Err(CheckError::Timeout)
        );
        assert!(started.elapsed() < Duration::from_millis(1000));
    }

    #[test]
    fn checker_publishes_states_and_stops() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed_port();
        let src = format!(
            "http {{ upstream u {{ server {}; server {dead}; server {dead} down;
                check interval=40 rise=2 fall=2 timeout=200; }}
                upstream plain {{ server {dead}; }} }}",
            live.local_addr().unwrap()
        );
        let config = crate::config::load_str(&src, std::path::Path::new("/t.conf"))
            .unwrap()
            .0;
        let table = HealthTable::new(&config);
        let up = |i| table.upstream(0).unwrap().check_up(i);
        assert!(!up(0) && !up(1), "default_down: everything starts down");
        let checker = Checker::start(&config, &table).unwrap().expect("a checker");
        let deadline = Instant::now() + Duration::from_secs(3);
        while !up(0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(up(0), "the live peer comes up");
        std::thread::sleep(Duration::from_millis(150));
        assert!(!up(1), "the dead peer stays down");
        let stats = table.upstream(0).unwrap();
        assert!(stats.peer(0).unwrap().counters().0 >= 2);
        assert!(stats.peer(1).unwrap().counters().1 >= 2);
        assert_eq!(
            stats.peer(2).unwrap().counters(),
            (0, 0),
            "down peers are not checked"
        );
        checker.stop();
        let plain = crate::config::load_str(
            &format!("http {{ upstream p {{ server {dead}; }} }}"),
            std::path::Path::new("/t.conf"),
        )
        .unwrap()
        .0;
        assert!(Checker::start(&plain, &HealthTable::new(&plain))
            .unwrap()
            .is_none());
    }

    #[test]
    fn checker_times_out_a_silent_http_peer() {
        // Connections to it open (the kernel's backlog) but nothing answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let src = format!(
            "http {{ upstream u {{ server {};
                check interval=30 rise=1 fall=2 timeout=60 default_down=false type=http; }} }}",
            silent.local_addr().unwrap()
        );
        let config = crate::config::load_str(&src, std::path::Path::new("/t.conf"))
            .unwrap()
            .0;
        let table = HealthTable::new(&config);
        let stats = table.upstream(0).unwrap();
        assert!(stats.check_up(0), "default_down=false");
        let started = Instant::now();
        let checker = Checker::start(&config, &table).unwrap().expect("a checker");
        while stats.check_up(0) && started.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = started.elapsed();
        checker.stop();
        assert!(!stats.check_up(0), "down after two timed-out checks");
        // Two checks of 60 ms, the second at most one interval after the first.
        assert!(took >= Duration::from_millis(120), "{took:?}");
        let (rise, fall) = stats.peer(0).unwrap().counters();
        assert!(rise == 0 && fall >= 2, "{rise} {fall}");
    }

    /// (user, system) clock ticks of the thread named `name`.
    fn thread_ticks(name: &str) -> Option<(u64, u64)> {
        for entry in std::fs::read_dir("/proc/self/task").ok()? {
            let dir = entry.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            if comm.trim() == name {
                let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
                let after = stat.rsplit_once(')')?.1;
                let f: Vec<&str> = after.split_whitespace().collect();
                return Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?));
            }
        }
        None
    }

    /// CPU time (ns) the thread named `name` of this process has used so far.
    fn thread_cpu_ns(name: &str) -> Option<u64> {
        for entry in std::fs::read_dir("/proc/self/task").ok()? {
            let dir = entry.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            if comm.trim() == name {
                let sched = std::fs::read_to_string(dir.join("schedstat")).ok()?;
                return sched.split_whitespace().next()?.parse().ok();
            }
        }
        None
    }

    /// Cost of the checker: 1,000 peers (spread over 20 listeners served by
    /// another thread) checked every second, `type=tcp`, `type=http`, then
    /// `type=http` with `check_keepalive_requests`.
    /// Run with `cargo test --release --lib check_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn check_cost_of_1000_peers_at_1s() {
        let server_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let addrs: Vec<SocketAddr> = (0..20)
            .map(|_| {
                server_rt.block_on(async { backend(Some(b"HTTP/1.1 200 OK\r\n\r\n")).await.0 })
            })
            .collect();
        let kept_addrs: Vec<SocketAddr> = (0..20)
            .map(|_| {
                server_rt.block_on(async {
                    keepalive_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)
                        .await
                        .0
                })
            })
            .collect();
        let keep_alive = "check_http_send \"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n\";
            check_keepalive_requests 1000;";
        for (name, kind, addrs, extra) in [
            ("tcp", "tcp", &addrs, ""),
            ("http", "http", &addrs, ""),
            ("http keep-alive", "http", &kept_addrs, keep_alive),
        ] {
            let servers: String = (0..1000)
                .map(|i| format!("server {};\n", addrs[i % addrs.len()]))
                .collect();
            let src = format!(
                "http {{ upstream big {{ {servers} check interval=1000 rise=2 fall=5 timeout=1000 type={kind}; {extra} }} }}"
            );
            let config = crate::config::load_str(&src, std::path::Path::new("/t.conf"))
                .unwrap()
                .0;
            let table = HealthTable::new(&config);
            let checker = Checker::start(&config, &table).unwrap().unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            let cpu0 = thread_cpu_ns("health-check").unwrap();
            let ticks0 = thread_ticks("health-check").unwrap();
            let t0 = Instant::now();
            std::thread::sleep(Duration::from_secs(5));
            let cpu = thread_cpu_ns("health-check").unwrap() - cpu0;
            let ticks = thread_ticks("health-check").unwrap();
            let (user, sys) = (ticks.0 - ticks0.0, ticks.1 - ticks0.1);
            let wall = t0.elapsed().as_nanos() as f64;
            let up = (0..1000)
                .filter(|i| table.upstream(0).unwrap().check_up(*i))
                .count();
            println!(
                "{name}: 1000 peers at 1 s: {:.2}% of one core ({up} up; \
                 user {user} ticks, system {sys} ticks)",
                cpu as f64 * 100.0 / wall
            );
            checker.stop();
        }
        // The floor: the same 5,000 connects (and resets) made back to back by a
        // bare loop of blocking sockets, with no scheduling around them.
        let targets = addrs.clone();
        let floor = std::thread::Builder::new()
            .name("check-floor".to_string())
            .spawn(move || {
                let cpu0 = thread_cpu_ns("check-floor").unwrap();
                for i in 0..5000 {
                    let target = targets[i % targets.len()];
                    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
                    s.set_linger(Some(Duration::ZERO)).unwrap();
                    s.connect(&target.into()).unwrap();
                }
                thread_cpu_ns("check-floor").unwrap() - cpu0
            })
            .unwrap()
            .join()
            .unwrap();
        println!(
            "floor: a bare connect+reset costs {} us of CPU; 1000/s would be {:.2}% of one core",
            floor / 5000 / 1000,
            floor as f64 / 5000.0 * 1000.0 * 100.0 / 1e9
        );
    }

    #[test]
    fn reply_heads_tell_whether_the_connection_can_be_reused() {
        let head = |len, body, close| Some(ReplyHead { len, body, close });
        type Case<'a> = (&'a [u8], bool, Option<ReplyHead>);
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", false, None),
            (b"HTTP/1.1 200 OK\r\n\r\n", false, head(19, None, false)),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
                false,
                head(38, Some(3), false),
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length:  3 \r\n\r\n",
                false,
                head(40, Some(3), false),
            ),
            // HEAD: no body whatever Content-Length says.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                true,
                head(38, Some(0), false),
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                false,
                head(27, Some(0), false),
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                false,
                head(48, Some(0), false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                head(47, None, false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                false,
                head(57, None, false),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                false,
                head(38, None, false),
            ),
            (
                b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: Close\r\n\r\n",
                false,
                head(59, Some(0), true),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                head(38, Some(0), true),
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                false,
                head(62, Some(0), false),
            ),
            (b"garbage\r\n\r\n", false, head(11, None, false)),
        ];
        for (reply, head_request, want) in cases {
            assert_eq!(
                reply_head(reply, *head_request),
                *want,
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    /// An HTTP/1.1 backend that answers every request on a connection with
    /// `reply` (closing after each one with `close_each`) and counts the
    /// connections it accepted.
    async fn keepalive_backend(
        reply: &'static [u8],
        close_each: bool,
    ) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    let mut got = Vec::new();
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                        while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            got.drain(..end + 4);
                            if stream.write_all(reply).await.is_err() || close_each {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn keepalive_conf(n: u32) -> CheckConf {
        CheckConf {
            kind: CheckType::Http,
            timeout: Duration::from_millis(1000),
            http_send: b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            keepalive_requests: n,
            ..CheckConf::default()
        }
    }

    /// `rounds` checks of `target` in a row, each on the connection the one
    /// before left; the results and whether a connection was left after each.
    async fn checks_on(
        target: SocketAddr,
        conf: CheckConf,
        rounds: usize,
    ) -> Vec<(Result<(), CheckError>, bool)> {
        tokio::task::spawn_blocking(move || {
            let mut kept = None;
            (0..rounds)
                .map(|_| {
                    let r = check_on(target, &conf, &mut kept);
                    (r, kept.is_some())
                })
                .collect()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn keepalive_checks_reuse_one_connection_up_to_n_checks() {
        use std::sync::atomic::Ordering::SeqCst;
        let (ok, accepted) =
            keepalive_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", false).await;
        let results = checks_on(ok, keepalive_conf(3), 7).await;
        let kept: Vec<bool> = results.iter().map(|r| r.1).collect();
        assert!(results.iter().all(|r| r.0.is_ok()), "{results:?}");
        // Three checks per connection: kept after the 1st and 2nd, closed after the 3rd.
        assert_eq!(kept, [true, true, false, true, true, false, true]);
        assert_eq!(accepted.load(SeqCst), 3);
        // A failing status on a reusable reply still keeps the connection.
        let (err, accepted) =
            keepalive_backend(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", false).await;
        let results = checks_on(err, keepalive_conf(100), 4).await;
        assert!(results
            .iter()
            .all(|r| r.0 == Err(CheckError::Status(500)) && r.1));
        assert_eq!(accepted.load(SeqCst), 1);
        // Connection: close, or a body of unknown length: not reused.
        let (close, accepted) = keepalive_backend(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            true,
        )
        .await;
        let results = checks_on(close, keepalive_conf(100), 3).await;
        assert!(results.iter().all(|r| r.0.is_ok() && !r.1), "{results:?}");
        assert_eq!(accepted.load(SeqCst), 3);
    }

    #[tokio::test]
    async fn a_kept_connection_closed_by_the_peer_is_retried_not_failed() {
        use std::sync::atomic::Ordering::SeqCst;
        // The backend closes after every reply without saying so.
        let (addr, accepted) =
            keepalive_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true).await;
        let conf = keepalive_conf(100);
        let results = checks_on(addr, conf.clone(), 4).await;
        assert!(results.iter().all(|r| r.0.is_ok()), "{results:?}");
        assert_eq!(accepted.load(SeqCst), 4, "one new connection per check");
        // A peer that died: the retry's connect error is the result.
        let dead = closed_port();
        let results = tokio::task::spawn_blocking(move || {
            let mut kept = None;
            let first = check_on(addr, &conf, &mut kept);
            let second = check_on(dead, &conf, &mut kept);
            (first, second)
        })
        .await
        .unwrap();
        assert_eq!(results.0, Ok(()));
        assert_eq!(
            results.1,
            Err(CheckError::Connect(io::ErrorKind::ConnectionRefused))
        );
    }

    #[test]
    fn check_port_replaces_the_peers_port() {
        let peer: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        let mut conf = CheckConf::default();
        assert_eq!(check_target(peer, &conf), peer);
        conf.port = Some(81);
        assert_eq!(check_target(peer, &conf), "10.0.0.1:81".parse().unwrap());
    }
}
