//! The checker thread: [`Checker`] runs every check of one configuration on
//! one background thread, in one loop over all checked peers with no async
//! runtime. Each pass starts the checks that are due (peers dealt into the
//! same time slot share one instant, so one wake-up starts them all), and one
//! `poll(2)` waits on every check socket in flight until one is ready or the
//! next deadline; each ready socket moves its `Probe` on. Results go through
//! the peer's [`CheckState`] to its
//! [`PeerStats`](crate::upstream::stats::PeerStats) in the shared
//! [`HealthTable`]; every up/down change is logged at `warn`.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;

use crate::config::{CheckConf, CheckType, Config};
use crate::upstream::background::Background;
use crate::upstream::check::conn::{poll_timeout, Kept, Probe, Progress, REPLY_LIMIT, SCRATCH};
use crate::upstream::check::probe::{check_target, CheckError};
use crate::upstream::check::scheme::{scheme, Scheme};
use crate::upstream::check::state::{first_due, next_due, CheckState, Transition};
use crate::upstream::check::tls::CheckTls;
use crate::upstream::stats::{HealthTable, UpstreamStats};

/// How long the checker lets replies gather after a wake-up that still leaves
/// checks waiting (a check's result is at most this much later).
const COALESCE: Duration = Duration::from_millis(1);

/// The background checker of one configuration. Dropping it stops every check
/// and joins its thread (closing our end of the socket pair makes the thread's
/// end readable: end of file).
pub struct Checker(Background<UnixStream>);

/// One checked peer: what its checks need and its state between them.
struct Watched {
    upstream: Arc<str>,
    peer: String,
    index: usize,
    /// The peer's address (with the check's `port=`), or its Unix socket.
    target: socket2::SockAddr,
    conf: Arc<CheckConf>,
    /// An http check of a TLS upstream: its TLS settings and name.
    tls: Option<CheckTls>,
    stats: Arc<UpstreamStats>,
    state: CheckState,
    /// When the running check, or else the next one, is due.
    due: Instant,
    probe: Option<Probe>,
    kept: Option<Kept>,
    /// The reply of the running check (its capacity kept from check to check).
    reply: Vec<u8>,
    /// The words of the last TLS failure logged (logged again only when they
    /// change, or after a check that passed).
    tls_failure: Option<String>,
}

impl Watched {
    /// Starts the check due now, and goes as far as it can without waiting.
    fn start(&mut self, now: Instant, scratch: &mut [u8]) {
        self.reply.clear();
        let tls = self.tls.as_ref();
        match Probe::start(&self.target, &self.conf, tls, self.kept.take(), now) {
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
        let tls = self.tls.as_ref();
        match probe.advance(
            ready,
            &self.target,
            &self.conf,
            tls,
            &mut self.reply,
            scratch,
        ) {
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
        let kind = match (&self.tls, conf.kind) {
            (Some(_), CheckType::Http) => "http (TLS)",
            (_, kind) => kind.as_str(),
        };
        // A TLS failure is mostly a setting (a CA, a name): say it even when
        // the peer's state does not change (a peer down from the start).
        match &result {
            Err(CheckError::Tls(words)) if self.tls_failure.as_ref() != Some(words) => {
                tracing::error!(
                    "upstream \"{}\": {kind} check of peer {} failed: {words}",
                    self.upstream,
                    self.peer
                );
                self.tls_failure = Some(words.clone());
            }
            Ok(()) => self.tls_failure = None,
            Err(_) => {}
        }
        let transition = self.state.record(result.is_ok(), conf.rise, conf.fall, now);
        let (rise, fall) = self.state.counters();
        if let Some(p) = self.stats.peer(self.index) {
            p.publish_check(!self.state.is_up(), rise, fall);
        }
        match (transition, &result) {
            (Transition::WentDown, Err(e)) => tracing::warn!(
                "upstream \"{}\": peer {} is down after {fall} failed {kind} checks (last: {e})",
                self.upstream,
                self.peer,
            ),
            (Transition::WentDown, Ok(())) => {}
            (Transition::WentUp, _) => tracing::warn!(
                "upstream \"{}\": peer {} is up after {rise} successful {kind} checks",
                self.upstream,
                self.peer,
            ),
            (Transition::Unchanged, _) => {}
        }
        self.due = next_due(self.due, conf.interval, now);
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
            let tls = check_tls(config, u, &name);
            let count = conf.peers.len();
            for (i, peer) in conf.peers.iter().enumerate() {
                if peer.down {
                    continue;
                }
                let reply = match check.kind {
                    CheckType::Http => Vec::with_capacity(REPLY_LIMIT),
                    CheckType::Tcp | CheckType::SslHello => Vec::new(),
                };
                peers.push(Watched {
                    upstream: Arc::clone(&name),
                    peer: peer.name.clone(),
                    index: i,
                    target: match &peer.unix {
                        Some(path) => match socket2::SockAddr::unix(path) {
                            Ok(addr) => addr,
                            Err(e) => {
                                tracing::error!("check of {}: {e}", peer.name);
                                continue;
                            }
                        },
                        None => check_target(peer.addr, &check).into(),
                    },
                    conf: Arc::clone(&check),
                    tls: tls.clone(),
                    stats: Arc::clone(stats),
                    // Where the published figures are: a new peer's are the
                    // initial state, a kept one's its last checks'.
                    state: stats
                        .peer(i)
                        .map_or(CheckState::new(check.default_down), |p| {
                            let (rise, fall) = p.counters();
                            CheckState::resume(!p.is_check_down(), rise, fall)
                        }),
                    due: first_due(start, check.interval, i, count),
                    probe: None,
                    kept: None,
                    reply,
                    tls_failure: None,
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
        Ok(Some(Checker(Background::new("health-check", stop, thread))))
    }

    /// Stops every check and waits for the thread.
    pub fn stop(self) {
        self.0.stop();
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

/// The TLS of the http checks of upstream `u` (see [`super::scheme`]); an
/// invalid name that keeps them plain is logged.
fn check_tls(config: &Config, u: usize, name: &str) -> Option<CheckTls> {
    match scheme(config, u) {
        // Mixed: warned of at load time.
        Scheme::Plain | Scheme::Mixed => None,
        Scheme::Tls(tls) => Some(tls),
        Scheme::TlsByHost(tls, written) => {
            tracing::warn!(
                "upstream \"{name}\": \"proxy_ssl_name {written}\" names no host without a \
                 request: its checks verify \"{}\"",
                tls.name.to_str()
            );
            Some(tls)
        }
        Scheme::BadName(bad) => {
            tracing::error!(
                "upstream \"{name}\": \"{bad}\" is no valid TLS name for its checks: \
                 they speak plain HTTP"
            );
            None
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
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::upstream::check::testing::{backend, closed_port, keepalive_backend};
    use socket2::{Domain, Socket, Type};
    use std::net::SocketAddr;

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
}
