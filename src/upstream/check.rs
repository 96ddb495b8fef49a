//! Active health checks: Tengine's `check` directive.
//!
//! Pure part: [`CheckState`] (the rise/fall state machine of one peer, with
//! `default_down`; time is passed in), [`first_due`] (checks of an upstream's peers
//! are spread over the first interval so they never fire together) and the
//! classification of an http check's reply ([`status_code`], [`http_verdict`]).
//!
//! I/O part: [`Checker`] runs every check on one background thread with its own
//! current-thread tokio runtime, one small task per checked peer, each woken by
//! tokio's timer wheel once per `interval`. A check is a TCP connect (`type=tcp`)
//! or a connect, the raw `check_http_send` bytes and the reply's status line
//! (`type=http`), all within `timeout`. Results go to the peer's
//! [`PeerStats`](crate::upstream::stats::PeerStats) in the shared
//! [`HealthTable`]; workers read them with relaxed atomic loads, so checks never
//! run on, or wait for, the request path. Every up/down change is logged at `warn`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

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
// I/O part
// ---------------------------------------------------------------------------

/// Bytes read at most from an http check's reply (the status line is enough).
const REPLY_LIMIT: usize = 256;

/// One check of one peer, within `conf.timeout`.
pub async fn check_once(target: SocketAddr, conf: &CheckConf) -> Result<(), CheckError> {
    match tokio::time::timeout(conf.timeout, probe(target, conf)).await {
        Ok(result) => result,
        Err(_) => Err(CheckError::Timeout),
    }
}

async fn probe(target: SocketAddr, conf: &CheckConf) -> Result<(), CheckError> {
    let mut stream = TcpStream::connect(target)
        .await
        .map_err(|e| CheckError::Connect(e.kind()))?;
    // Close with a reset (as HAProxy's checks do): no FIN exchange and no
    // TIME_WAIT socket left behind per check. Zero linger never blocks.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    if conf.kind == CheckType::Tcp {
        return Ok(());
    }
    stream
        .write_all(&conf.http_send)
        .await
        .map_err(|e| CheckError::Io(e.kind()))?;
    let mut buf = [0u8; REPLY_LIMIT];
    let mut len = 0;
    while let Some(free) = buf.get_mut(len..).filter(|f| !f.is_empty()) {
        let n = stream
            .read(free)
            .await
            .map_err(|e| CheckError::Io(e.kind()))?;
        if n == 0 {
            break;
        }
        let seen = buf.get(len..len + n).unwrap_or_default();
        len += n;
        if seen.contains(&b'\n') {
            break;
        }
    }
    http_verdict(buf.get(..len).unwrap_or_default(), conf.expect_alive)
}

/// The background checker of one configuration. Dropping it stops every check
/// and joins its thread.
pub struct Checker {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What one peer's task needs.
struct PeerJob {
    upstream: Arc<str>,
    peer: String,
    index: usize,
    target: SocketAddr,
    conf: Arc<CheckConf>,
    stats: Arc<UpstreamStats>,
    first: Instant,
}

impl Checker {
    /// Starts checking every peer of every upstream with `check` (peers marked
    /// `down` are never used and not checked). `None` when no upstream has a
    /// check: no thread is started.
    pub fn start(config: &Config, table: &HealthTable) -> io::Result<Option<Checker>> {
        let start = Instant::now();
        let mut jobs = Vec::new();
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
                jobs.push(PeerJob {
                    upstream: Arc::clone(&name),
                    peer: peer.name.clone(),
                    index: i,
                    target: check_target(peer.addr, &check),
                    conf: Arc::clone(&check),
                    stats: Arc::clone(stats),
                    first: first_due(start, check.interval, i, count),
                });
            }
        }
        if jobs.is_empty() {
            return Ok(None);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("health-check".to_string())
            .spawn(move || {
                rt.block_on(async move {
                    for job in jobs {
                        tokio::spawn(watch_peer(job));
                    }
                    // Until stopped, or the handle is gone.
                    let _ = stop_rx.await;
                });
            })?;
        Ok(Some(Checker {
            stop: Some(stop_tx),
            thread: Some(thread),
        }))
    }

    /// Stops every check and waits for the thread.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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

/// Checks one peer every `interval` forever, publishing each result.
async fn watch_peer(job: PeerJob) {
    let conf = &job.conf;
    let mut state = CheckState::new(conf.default_down);
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::from_std(job.first), conf.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = check_once(job.target, conf).await;
        let transition = state.record(result.is_ok(), conf.rise, conf.fall, Instant::now());
        let (rise, fall) = state.counters();
        if let Some(p) = job.stats.peer(job.index) {
            p.publish_check(!state.is_up(), rise, fall);
        }
        match (transition, &result) {
            (Transition::WentDown, Err(e)) => tracing::warn!(
                "upstream \"{}\": peer {} is down after {fall} failed {} checks (last: {e})",
                job.upstream,
                job.peer,
                conf.kind.as_str()
            ),
            (Transition::WentDown, Ok(())) => {}
            (Transition::WentUp, _) => tracing::warn!(
                "upstream \"{}\": peer {} is up after {rise} successful {} checks",
                job.upstream,
                job.peer,
                conf.kind.as_str()
            ),
            (Transition::Unchanged, _) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
        assert_eq!(check_once(ok, &tcp).await, Ok(()));
        assert_eq!(check_once(silent, &tcp).await, Ok(()), "tcp needs no reply");
        assert_eq!(
            check_once(dead, &tcp).await,
            Err(CheckError::Connect(io::ErrorKind::ConnectionRefused))
        );
        let http = http_conf(500);
        assert_eq!(check_once(ok, &http).await, Ok(()));
        // The tcp check's connection brought no request; the http one did.
        let mut request = Vec::new();
        while request.is_empty() {
            request = ok_rx.recv().await.unwrap();
        }
        assert_eq!(request, b"HEAD /health HTTP/1.0\r\n\r\n");
        assert_eq!(check_once(err, &http).await, Err(CheckError::Status(500)));
        assert_eq!(check_once(garbage, &http).await, Err(CheckError::BadReply));
        let started = Instant::now();
        assert_eq!(
            check_once(silent, &http_conf(100)).await,
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
    /// another thread) checked every second, `type=tcp` then `type=http`.
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
        for kind in ["tcp", "http"] {
            let servers: String = (0..1000)
                .map(|i| format!("server {};\n", addrs[i % addrs.len()]))
                .collect();
            let src = format!(
                "http {{ upstream big {{ {servers} check interval=1000 rise=2 fall=5 timeout=1000 type={kind}; }} }}"
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
                "type={kind}: 1000 peers at 1 s: {:.2}% of one core ({up} up; \
                 user {user} ticks, system {sys} ticks)",
                cpu as f64 * 100.0 / wall
            );
            checker.stop();
        }
        // The floor: the same 5,000 connects (and resets) made back to back by a
        // bare loop, with no timers or tasks around them.
        let targets = addrs.clone();
        let floor = std::thread::Builder::new()
            .name("check-floor".to_string())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let cpu0 = thread_cpu_ns("check-floor").unwrap();
                    for i in 0..5000 {
                        let s = TcpStream::connect(targets[i % targets.len()])
                            .await
                            .unwrap();
                        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                    }
                    thread_cpu_ns("check-floor").unwrap() - cpu0
                })
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
    fn check_port_replaces_the_peers_port() {
        let peer: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        let mut conf = CheckConf::default();
        assert_eq!(check_target(peer, &conf), peer);
        conf.port = Some(81);
        assert_eq!(check_target(peer, &conf), "10.0.0.1:81".parse().unwrap());
    }
}
