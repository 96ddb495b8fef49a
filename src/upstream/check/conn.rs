//! One check in flight on one non-blocking socket: `Probe` connects, sends
//! `check_http_send` and reads the reply as far as it goes without waiting,
//! each time `poll(2)` reports its socket ready; whoever polls (the checker's
//! loop in [`super::runner`], or [`check_on`] for a single check on the
//! calling thread) owns the waiting and the clock. The reply is judged by the
//! pure [`super::probe`]; with `check_keepalive_requests` the reply is read to
//! the end its framing gives and the connection is kept ([`Kept`]) for the
//! next check. An http check of a TLS upstream reads and writes through
//! rustls ([`super::tls::Wire`]) on the same socket and in the same steps.

use std::io;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::config::{CheckConf, CheckType};
use crate::tls::client::hello_verdict;
use crate::upstream::check::probe::{
    head_request, judge_head, line_verdict, CheckError, Fed, ReplyBody,
};
use crate::upstream::check::tls::{failure, CheckTls, Wire};

/// Bytes read at most from an http check's reply when its connection is not
/// kept (the status line is enough).
pub(super) const REPLY_LIMIT: usize = 256;

/// Bytes of a reply's head read at most on a kept-alive check connection.
const HEAD_LIMIT: usize = 4096;

/// The buffer replies are read into (bodies of kept-alive checks are read into
/// it and dropped).
pub(super) const SCRATCH: usize = 4096;

/// A check connection kept open for the next check (`check_keepalive_requests`).
pub struct Kept {
    sock: Socket,
    /// Plain, or the TLS session the connection carries.
    wire: Wire,
    /// Checks it has served.
    served: u32,
}

/// Where a check in flight is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// The non-blocking connect has not finished.
    Connecting,
    /// Writing `check_http_send`; `sent` bytes are out.
    Sending { sent: usize },
    /// Reading the reply's status line (or, kept-alive, its whole head).
    Head,
    /// Kept-alive: reading and dropping the rest of the reply's body; the
    /// check's result is known.
    Body {
        body: ReplyBody,
        verdict: Result<(), CheckError>,
    },
}

/// What [`Probe::advance`] came to.
pub(super) enum Progress {
    /// Waiting for the socket (see [`Probe::interest`]).
    Pending,
    Done(Result<(), CheckError>),
}

/// One check in flight on a non-blocking socket, moved on by [`Probe::advance`]
/// each time `poll(2)` reports the socket ready: no task, timer or epoll
/// registration of its own.
pub(super) struct Probe {
    pub(super) sock: Socket,
    /// Plain, or TLS (an http check of a TLS upstream).
    wire: Wire,
    step: Step,
    pub(super) deadline: Instant,
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
fn open(target: &SockAddr) -> Result<(Socket, bool), CheckError> {
    let failed = |e: io::Error| CheckError::Connect(e.kind());
    // A `server unix:/path` peer is checked on its Unix socket.
    let protocol = (target.domain() != Domain::UNIX).then_some(Protocol::TCP);
    let sock =
        Socket::new(target.domain(), Type::STREAM.nonblocking(), protocol).map_err(failed)?;
    // Close with a reset (as HAProxy's checks do): no FIN exchange and no
    // TIME_WAIT socket left behind per check. Set before the connect, so it
    // holds however the check ends; zero linger never blocks.
    let _ = sock.set_linger(Some(Duration::ZERO));
    match sock.connect(target) {
        Ok(()) => Ok((sock, true)),
        Err(e) if e.raw_os_error() == Some(Errno::INPROGRESS.raw_os_error()) => Ok((sock, false)),
        Err(e) => Err(failed(e)),
    }
}

/// The verdict on a reply read to its end (or to the limit).
fn verdict_of(conf: &CheckConf, reply: &[u8]) -> Result<(), CheckError> {
    match conf.kind {
        CheckType::SslHello => match hello_verdict(reply) {
            Some(true) => Ok(()),
            _ => Err(CheckError::NoServerHello),
        },
        _ => line_verdict(reply, conf.expect_alive),
    }
}

/// The TLS of a new connection for a check of `conf`: only http checks speak
/// TLS (`ssl_hello` writes its own hello, `tcp` nothing).
fn new_wire(conf: &CheckConf, tls: Option<&CheckTls>) -> Result<Wire, CheckError> {
    Wire::new(tls.filter(|_| conf.kind == CheckType::Http))
}

/// Whether checks of `conf` keep their connection for the next check.
fn keeps_alive(conf: &CheckConf) -> bool {
    conf.kind == CheckType::Http && conf.keepalive_requests > 1
}

impl Probe {
    /// Starts a check at `now`: on `kept` if given, else on a new connection.
    /// The flag is true when the probe may go on at once (the connect finished).
    pub(super) fn start(
        target: &SockAddr,
        conf: &CheckConf,
        tls: Option<&CheckTls>,
        kept: Option<Kept>,
        now: Instant,
    ) -> Result<(Probe, bool), CheckError> {
        let deadline = now + conf.timeout;
        let probe = |sock, wire, step, served, reused| Probe {
            sock,
            wire,
            step,
            deadline,
            served,
            reused,
            reusable: false,
        };
        Ok(match kept {
            Some(Kept { sock, wire, served }) => (
                probe(sock, wire, Step::Sending { sent: 0 }, served, true),
                true,
            ),
            None => {
                let wire = new_wire(conf, tls)?;
                let (sock, connected) = open(target)?;
                (probe(sock, wire, Step::Connecting, 0, false), connected)
            }
        })
    }

    /// What the probe waits for.
    pub(super) fn interest(&self) -> PollFlags {
        match self.step {
            Step::Connecting => PollFlags::OUT,
            Step::Sending { .. } => self.wire.interest(PollFlags::OUT),
            Step::Head | Step::Body { .. } => self.wire.interest(PollFlags::IN),
        }
    }

    /// Moves the check on as far as it goes without waiting. `ready`: poll(2)
    /// reported the socket (only a connect in progress needs it; other steps
    /// just try). `tls`: the check's TLS, for a new connection. `reply`
    /// collects the reply's head; `scratch` is any buffer.
    pub(super) fn advance(
        &mut self,
        mut ready: bool,
        target: &SockAddr,
        conf: &CheckConf,
        tls: Option<&CheckTls>,
        reply: &mut Vec<u8>,
        scratch: &mut [u8],
    ) -> Progress {
        let keep_alive = keeps_alive(conf);
        loop {
            match &mut self.step {
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
                    let sent = *sent;
                    let payload = match conf.kind {
                        CheckType::SslHello => match crate::tls::client::check_hello() {
                            Some(hello) => hello,
                            None => return Progress::Done(Err(CheckError::NoServerHello)),
                        },
                        _ => conf.http_send.as_slice(),
                    };
                    let rest = payload.get(sent..).unwrap_or_default();
                    match self.wire.write(&self.sock, rest) {
                        Ok(n) if sent + n >= payload.len() => {
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
                            let failure = Err(failure(&e));
                            match self.stale(target, conf, tls, reply, failure) {
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
                        return Progress::Done(verdict_of(conf, reply));
                    }
                    let buf = scratch.get_mut(..room).unwrap_or_default();
                    match self.wire.read(&self.sock, buf) {
                        Ok(0) => {
                            let failure = verdict_of(conf, reply);
                            match self.stale(target, conf, tls, reply, failure) {
                                Ok(now_ready) => ready = now_ready,
                                Err(result) => return Progress::Done(result),
                            }
                        }
                        Ok(n) => {
                            let got = buf.get(..n).unwrap_or_default();
                            reply.extend_from_slice(got);
                            if conf.kind == CheckType::SslHello {
                                match hello_verdict(reply) {
                                    Some(_) => return Progress::Done(verdict_of(conf, reply)),
                                    None => continue,
                                }
                            }
                            if !keep_alive {
                                if got.contains(&b'\n') {
                                    return Progress::Done(line_verdict(reply, conf.expect_alive));
                                }
                                continue;
                            }
                            let Some(judged) =
                                judge_head(reply, head_request(conf), conf.expect_alive)
                            else {
                                continue;
                            };
                            let verdict = judged.verdict;
                            match judged.body {
                                Some((head_len, mut body))
                                    if self.served + 1 < conf.keepalive_requests =>
                                {
                                    match body.feed(reply.get(head_len..).unwrap_or_default()) {
                                        Fed::More => self.step = Step::Body { body, verdict },
                                        Fed::End => {
                                            self.reusable = true;
                                            return Progress::Done(verdict);
                                        }
                                        Fed::Broken => return Progress::Done(verdict),
                                    }
                                }
                                _ => return Progress::Done(verdict),
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Progress::Pending
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => match self.stale(target, conf, tls, reply, Err(failure(&e))) {
                            Ok(now_ready) => ready = now_ready,
                            Err(result) => return Progress::Done(result),
                        },
                    }
                }
                Step::Body { body, verdict } => match self.wire.read(&self.sock, scratch) {
                    // Cut short: the status line still decides, but the
                    // connection is done.
                    Ok(0) => return Progress::Done(verdict.clone()),
                    Ok(n) => match body.feed(scratch.get(..n).unwrap_or_default()) {
                        Fed::More => {}
                        Fed::End => {
                            self.reusable = true;
                            return Progress::Done(verdict.clone());
                        }
                        Fed::Broken => return Progress::Done(verdict.clone()),
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Progress::Done(Err(failure(&e))),
                },
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
        target: &SockAddr,
        conf: &CheckConf,
        tls: Option<&CheckTls>,
        reply: &[u8],
        failure: Result<(), CheckError>,
    ) -> Result<bool, Result<(), CheckError>> {
        if !self.reused || !reply.is_empty() {
            return Err(failure);
        }
        self.reused = false;
        self.served = 0;
        self.wire = new_wire(conf, tls).map_err(Err)?;
        let (sock, connected) = open(target).map_err(Err)?;
        self.sock = sock;
        self.step = Step::Connecting;
        Ok(connected)
    }

    /// The connection, if it may serve the next check.
    pub(super) fn into_kept(self) -> Option<Kept> {
        self.reusable.then_some(Kept {
            sock: self.sock,
            wire: self.wire,
            served: self.served + 1,
        })
    }
}

/// `d` as a poll(2) timeout, rounded up to a whole millisecond so that wake-ups
/// due within the same millisecond are served by one.
pub(super) fn poll_timeout(d: Duration) -> Timespec {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Timespec {
        tv_sec: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        tv_nsec: i64::try_from(ms % 1000 * 1_000_000).unwrap_or(0),
    }
}

/// One check of `target` within `conf.timeout`, waiting on this thread, over
/// `tls` if given (an http check). It runs on `kept` if given (else on a new
/// connection), and leaves the connection there when it may serve the next
/// check.
pub fn check_on(
    target: impl Into<SockAddr>,
    conf: &CheckConf,
    tls: Option<&CheckTls>,
    kept: &mut Option<Kept>,
) -> Result<(), CheckError> {
    let target = &target.into();
    let (mut probe, mut ready) = Probe::start(target, conf, tls, kept.take(), Instant::now())?;
    let mut reply = Vec::new();
    let mut scratch = [0u8; SCRATCH];
    loop {
        let progress = probe.advance(ready, target, conf, tls, &mut reply, &mut scratch);
        if let Progress::Done(result) = progress {
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
pub fn check_once(target: impl Into<SockAddr>, conf: &CheckConf) -> Result<(), CheckError> {
    check_on(target, conf, None, &mut None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::upstream::check::testing::{backend, closed_port, keepalive_backend};
    use std::net::SocketAddr;

    /// [`check_once`] off the test's runtime, whose tasks serve the backends.
    async fn check(target: SocketAddr, conf: &CheckConf) -> Result<(), CheckError> {
        let conf = conf.clone();
        tokio::task::spawn_blocking(move || check_once(target, &conf))
            .await
            .unwrap()
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
                    let r = check_on(target, &conf, None, &mut kept);
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
    async fn keepalive_checks_reuse_a_connection_after_a_chunked_reply() {
        use std::sync::atomic::Ordering::SeqCst;
        let (ok, accepted) = keepalive_backend(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nok\n\r\n0\r\nX-Trailer: t\r\n\r\n",
            false,
        )
        .await;
        let results = checks_on(ok, keepalive_conf(3), 4).await;
        assert!(results.iter().all(|r| r.0.is_ok()), "{results:?}");
        let kept: Vec<bool> = results.iter().map(|r| r.1).collect();
        assert_eq!(kept, [true, true, false, true]);
        assert_eq!(accepted.load(SeqCst), 2);
        // A failing status in a chunked reply: the status decides, the
        // connection is kept all the same.
        let (err, accepted) = keepalive_backend(
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n",
            false,
        )
        .await;
        let results = checks_on(err, keepalive_conf(100), 3).await;
        assert!(results
            .iter()
            .all(|r| r.0 == Err(CheckError::Status(503)) && r.1));
        assert_eq!(accepted.load(SeqCst), 1);
        // A malformed chunked body: judged by its status, not reused.
        let (bad, accepted) = keepalive_backend(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false,
        )
        .await;
        let results = checks_on(bad, keepalive_conf(100), 2).await;
        assert!(results.iter().all(|r| r.0.is_ok() && !r.1), "{results:?}");
        assert_eq!(accepted.load(SeqCst), 2);
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
            let first = check_on(addr, &conf, None, &mut kept);
            let second = check_on(dead, &conf, None, &mut kept);
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
}
