//! Passive health: nginx's `max_fails` / `fail_timeout` accounting, per worker.
//!
//! One [`PeerHealth`] per peer, owned by one worker (no atomics, no locks), with the
//! clock passed in as `now`. The rules are nginx's round robin
//! (`ngx_http_upstream_get_peer` and `ngx_http_upstream_free_round_robin_peer` in
//! `src/http/ngx_http_upstream_round_robin.c`), with `accessed` and `checked` as
//! there:
//!
//! - a failure adds one to `fails` and sets `accessed = checked = now`; nothing
//!   else ever lowers the count, so failures accumulate;
//! - the peer is out while `fails >= max_fails` and `now - checked <=
//!   fail_timeout`;
//! - choosing a peer ([`PeerHealth::note_selected`]) whose `checked` is more than
//!   `fail_timeout` old sets `checked = now`: for a peer that was out this is the
//!   one probe (every other request keeps avoiding it for another
//!   `fail_timeout`);
//! - a success resets `fails` only when `accessed < checked`, i.e. the peer was
//!   chosen again after its last failure's window had passed. A success within
//!   `fail_timeout` of the last failure resets nothing.
//!
//! `max_fails = 0` disables the accounting (nginx increments `fails` but never
//! reads it), and so does an upstream of a single peer (nginx's `peers->single`:
//! its free function returns before any accounting). When every peer is out, the
//! balancer finds none and the request gets 502 ("no live upstreams"); counts are
//! not reset (current nginx; its old "quick recovery" loop that cleared every
//! peer's `fails` is gone from its source). Times are monotonic instants where
//! nginx uses whole seconds of `ngx_time()`.

use std::time::{Duration, Instant};

use crate::config::{PeerConf, UpstreamConf};

/// Failure accounting of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerHealth {
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// Failures counted since the last reset.
    pub fails: u32,
    /// The last failure (nginx's `accessed`); `None`: never failed.
    pub accessed: Option<Instant>,
    /// The last failure, or the last choice of the peer more than
    /// `fail_timeout` after the previous `checked` (nginx's `checked`).
    pub checked: Option<Instant>,
}

impl PeerHealth {
    /// A healthy peer with the given limits.
    pub fn new(max_fails: u32, fail_timeout: Duration) -> PeerHealth {
        PeerHealth {
            max_fails,
            fail_timeout,
            fails: 0,
            accessed: None,
            checked: None,
        }
    }

    /// A healthy peer with the limits of `peer`.
    pub fn for_peer(peer: &PeerConf) -> PeerHealth {
        PeerHealth::new(peer.max_fails, peer.fail_timeout)
    }

    /// True when `checked` is more than `fail_timeout` before `now` (or unset).
    fn window_passed(&self, now: Instant) -> bool {
        self.checked
            .is_none_or(|c| now.saturating_duration_since(c) > self.fail_timeout)
    }

    /// True when the peer may be chosen at `now`.
    pub fn is_available(&self, now: Instant) -> bool {
        !self.reached_max_fails() || self.window_passed(now)
    }

    /// The peer was chosen for a request at `now` (by the balancer or a sticky
    /// pin): when `checked` is older than `fail_timeout` it becomes `now`, so
    /// that a success of this request resets the count, and, for a peer that was
    /// out, this request is its one probe.
    pub fn note_selected(&mut self, now: Instant) {
        if self.max_fails != 0 && self.window_passed(now) {
            self.checked = Some(now);
        }
    }

    /// A request to the peer failed at `now` (connect error, timeout, or a status
    /// listed in `proxy_next_upstream`).
    pub fn note_failure(&mut self, now: Instant) {
        if self.max_fails == 0 {
            return;
        }
        self.fails = self.fails.saturating_add(1);
        self.accessed = Some(now);
        self.checked = Some(now);
    }

    /// A request to the peer succeeded: the count resets if the peer was chosen
    /// after its last failure's window (`accessed < checked`).
    pub fn note_success(&mut self) {
        if self.accessed < self.checked {
            self.fails = 0;
        }
    }

    /// True when the count has reached `max_fails`: the peer is out, or is
    /// waiting for its probe, until a success resets the count.
    pub fn reached_max_fails(&self) -> bool {
        self.max_fails != 0 && self.fails >= self.max_fails
    }
}

/// The health of every peer of one upstream, indexed like `UpstreamConf::peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    peers: Vec<PeerHealth>,
}

impl Health {
    /// Fresh accounting for the peers of `upstream`. As in nginx, an upstream of a
    /// single peer without backups is never marked failed (there is nothing else to
    /// try), so its accounting is disabled.
    pub fn new(upstream: &UpstreamConf) -> Health {
        let single = upstream.peers.len() == 1;
        Health {
            peers: upstream
                .peers
                .iter()
                .map(|p| {
                    let mut h = PeerHealth::for_peer(p);
                    if single {
                        h.max_fails = 0;
                    }
                    h
                })
                .collect(),
        }
    }

    /// Availability of peer `index` (an unknown index is unavailable).
    pub fn is_available(&self, index: usize, now: Instant) -> bool {
        self.peers.get(index).is_some_and(|p| p.is_available(now))
    }

    pub fn note_selected(&mut self, index: usize, now: Instant) {
        if let Some(p) = self.peers.get_mut(index) {
            p.note_selected(now);
        }
    }

    pub fn note_failure(&mut self, index: usize, now: Instant) {
        if let Some(p) = self.peers.get_mut(index) {
            p.note_failure(now);
        }
    }

    pub fn note_success(&mut self, index: usize) {
        if let Some(p) = self.peers.get_mut(index) {
            p.note_success();
        }
    }

    /// See [`PeerHealth::reached_max_fails`] (an unknown index has not).
    pub fn reached_max_fails(&self, index: usize) -> bool {
        self.peers.get(index).is_some_and(|p| p.reached_max_fails())
    }

    pub fn peer(&self, index: usize) -> Option<&PeerHealth> {
        self.peers.get(index)
    }

    /// Peer `index` takes over the failure accounting of `from` (the same peer
    /// in the previous peer set: a reload or a DNS change kept it); its limits
    /// stay its own.
    pub fn carry(&mut self, index: usize, from: &PeerHealth) {
        if let Some(p) = self.peers.get_mut(index) {
            p.fails = from.fails;
            p.accessed = from.accessed;
            p.checked = from.checked;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of a peer's life, times in whole seconds from the start (as
    /// nginx's `ngx_time()`).
    #[derive(Debug, Clone, Copy)]
    enum Ev {
        /// The balancer (or a sticky pin) chose the peer at this second.
        Pick(u64),
        /// A try at the peer failed at this second.
        Fail(u64),
        /// A try at the peer succeeded.
        Ok,
        /// At this second: is the peer up, and how many failures are counted.
        Check(u64, bool, u32),
    }

    fn run(name: &str, max_fails: u32, fail_timeout: u64, events: &[Ev]) {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut h = PeerHealth::new(max_fails, Duration::from_secs(fail_timeout));
        for (step, ev) in events.iter().enumerate() {
            match *ev {
                Ev::Pick(s) => h.note_selected(at(s)),
                Ev::Fail(s) => h.note_failure(at(s)),
                Ev::Ok => h.note_success(),
                Ev::Check(s, up, fails) => assert_eq!(
                    (h.is_available(at(s)), h.fails),
                    (up, fails),
                    "{name}: step {step} {ev:?}"
                ),
            }
        }
    }

    /// nginx's sequences (ngx_http_upstream_get_peer and
    /// ngx_http_upstream_free_round_robin_peer), step by step.
    #[test]
    fn passive_health_follows_nginx_round_robin() {
        use Ev::*;
        #[rustfmt::skip]
        let cases: &[(&str, u32, u64, &[Ev])] = &[
            (
                "fails every third request: out after the 3rd failure within 10 s",
                3,
                10,
                &[
                    Pick(0), Ok, Pick(1), Ok, Pick(2), Fail(2), Check(2, true, 1),
                    Pick(3), Ok, Check(3, true, 1),
                    Pick(4), Ok, Pick(5), Fail(5), Check(5, true, 2),
                    Pick(6), Ok, Pick(7), Ok, Check(7, true, 2),
                    Pick(8), Fail(8), Check(8, false, 3),
                    Check(18, false, 3), Check(19, true, 3),
                ],
            ),
            (
                "a success within fail_timeout of the last failure resets nothing",
                2,
                10,
                &[
                    Pick(0), Fail(0), Pick(4), Ok, Check(4, true, 1),
                    Pick(10), Ok, Check(10, true, 1),
                    Pick(10), Fail(10), Check(10, false, 2),
                ],
            ),
            (
                "a success on a peer chosen after the window resets the count",
                3,
                10,
                &[
                    Pick(0), Fail(0), Pick(1), Fail(1), Check(1, true, 2),
                    Pick(5), Ok, Check(5, true, 2),
                    Pick(12), Ok, Check(12, true, 0),
                    Pick(13), Fail(13), Check(13, true, 1),
                ],
            ),
            (
                "a failure after the window still adds to the old count",
                3,
                10,
                &[
                    Pick(0), Fail(0), Pick(1), Fail(1),
                    Pick(30), Fail(30), Check(30, false, 3),
                    Check(40, false, 3), Check(41, true, 3),
                ],
            ),
            (
                "down for fail_timeout: still out at exactly fail_timeout",
                1,
                10,
                &[
                    Check(0, true, 0), Pick(0), Fail(0), Check(0, false, 1),
                    Check(9, false, 1), Check(10, false, 1), Check(11, true, 1),
                ],
            ),
            (
                "one probe after the window; others wait while it runs; it succeeds",
                1,
                10,
                &[
                    Pick(0), Fail(0), Check(11, true, 1), Pick(11),
                    Check(12, false, 1), Check(21, false, 1),
                    Ok, Check(12, true, 0),
                ],
            ),
            (
                "the probe fails: out for another fail_timeout from that failure",
                1,
                10,
                &[
                    Pick(0), Fail(0), Pick(11), Fail(13), Check(13, false, 2),
                    Check(23, false, 2), Check(24, true, 2),
                    Pick(24), Ok, Check(24, true, 0),
                ],
            ),
            (
                "a success that was in flight when the peer went down keeps it down",
                2,
                10,
                &[
                    Pick(0), Pick(0), Fail(1), Fail(1), Check(1, false, 2),
                    Ok, Check(1, false, 2), Check(12, true, 2),
                ],
            ),
            (
                "max_fails=0: never marked down",
                0,
                10,
                &[
                    Pick(0), Fail(0), Fail(0), Fail(0), Fail(1),
                    Check(1, true, 0), Pick(2), Ok, Check(2, true, 0),
                ],
            ),
            (
                "choosing a healthy peer changes nothing",
                1,
                10,
                &[Pick(0), Check(0, true, 0), Pick(20), Ok, Check(20, true, 0)],
            ),
        ];
        for (name, max_fails, fail_timeout, events) in cases {
            run(name, *max_fails, *fail_timeout, events);
        }
    }

    #[test]
    fn upstream_health_is_indexed_by_peer_and_a_single_peer_never_fails() {
        let peer = |port: u16, max_fails| PeerConf {
            name: format!("127.0.0.1:{port}"),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            server: format!("127.0.0.1:{port}"),
            weight: 1,
            max_fails,
            fail_timeout: Duration::from_secs(5),
            down: false,
            backup: false,
            id: None,
            drain: false,
            max_conns: 0,
            unix: None,
        };
        let upstream = UpstreamConf {
            name: "app".into(),
            implicit: false,
            peers: vec![peer(1, 1), peer(2, 0)],
            sticky: None,
            keepalive: None,
            keepalive_timeout: Duration::from_secs(60),
            keepalive_requests: 1000,
            check: None,
            resolve: None,
            balance: Default::default(),
            keepalive_time: Duration::from_secs(3600),
        };
        let now = Instant::now();
        let single = UpstreamConf {
            peers: vec![peer(3, 1)],
            ..upstream.clone()
        };
        let mut alone = Health::new(&single);
        alone.note_failure(0, now);
        alone.note_failure(0, now);
        assert!(
            alone.is_available(0, now),
            "a single peer is never marked failed"
        );
        let mut health = Health::new(&upstream);
        health.note_failure(0, now);
        health.note_failure(1, now);
        health.note_failure(7, now);
        health.note_selected(7, now);
        health.note_success(7);
        assert!(!health.is_available(0, now));
        assert!(health.is_available(1, now));
        assert!(!health.is_available(7, now));
        assert_eq!(health.peer(0).map(|p| p.fails), Some(1));
        assert!(health.reached_max_fails(0) && !health.reached_max_fails(1));
        health.note_success(0);
        assert!(!health.is_available(0, now), "no probe yet: nothing reset");
        let later = now + Duration::from_secs(6);
        health.note_selected(0, later);
        health.note_success(0);
        assert!(health.is_available(0, later) && !health.reached_max_fails(0));
    }
}
