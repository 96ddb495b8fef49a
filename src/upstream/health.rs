//! Passive health: nginx's `max_fails` / `fail_timeout` accounting, per worker.
//!
//! One [`PeerHealth`] per peer, owned by one worker (no atomics, no locks), with the
//! clock passed in as `now`. A failure within `fail_timeout` of the previous one
//! adds to the count (an older one starts a new count); reaching `max_fails` makes
//! the peer unavailable for `fail_timeout` from the last failure. After that one
//! trial request is let through ([`PeerHealth::note_selected`] starts a new
//! `fail_timeout` window, so concurrent requests keep avoiding the peer); its
//! success resets the count, its failure keeps the peer out for another
//! `fail_timeout`. `max_fails = 0` disables the accounting, and so does an upstream
//! of a single peer (nginx's `peers->single`).
//!
//! Two simplifications of nginx's bookkeeping, both following its documentation:
//! any success resets the count (nginx resets only on a success after a quiet
//! `fail_timeout`), and failures further apart than `fail_timeout` start a new count
//! (nginx may keep adding to an old one).

use std::time::{Duration, Instant};

use crate::config::{PeerConf, UpstreamConf};

/// Failure accounting of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerHealth {
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// Failures counted in the current window.
    pub fails: u32,
    /// Last failure (nginx's `accessed`).
    pub last_failure: Option<Instant>,
    /// Start of the current unavailability window or trial (nginx's `checked`).
    pub checked: Option<Instant>,
}

impl PeerHealth {
    /// A healthy peer with the given limits.
    pub fn new(max_fails: u32, fail_timeout: Duration) -> PeerHealth {
        PeerHealth {
            max_fails,
            fail_timeout,
            fails: 0,
            last_failure: None,
            checked: None,
        }
    }

    /// A healthy peer with the limits of `peer`.
    pub fn for_peer(peer: &PeerConf) -> PeerHealth {
        PeerHealth::new(peer.max_fails, peer.fail_timeout)
    }

    /// True when the peer may be chosen at `now`.
    pub fn is_available(&self, now: Instant) -> bool {
        if self.max_fails == 0 || self.fails < self.max_fails {
            return true;
        }
        match self.checked {
            Some(checked) => now.saturating_duration_since(checked) > self.fail_timeout,
            None => true,
        }
    }

    /// The peer was chosen for a request at `now`: when its unavailability window
    /// is over this is the trial request, and a new window starts (as nginx sets
    /// `checked`).
    pub fn note_selected(&mut self, now: Instant) {
        if self.max_fails == 0 || self.fails < self.max_fails {
            return;
        }
        if self
            .checked
            .is_none_or(|c| now.saturating_duration_since(c) > self.fail_timeout)
        {
            self.checked = Some(now);
        }
    }

    /// A request to the peer failed at `now` (connect error, timeout, or a status
    /// listed in `proxy_next_upstream`).
    pub fn note_failure(&mut self, now: Instant) {
        if self.max_fails == 0 {
            return;
        }
        let fresh = self
            .last_failure
            .is_some_and(|last| now.saturating_duration_since(last) <= self.fail_timeout);
        self.fails = if fresh || self.fails >= self.max_fails {
            self.fails.saturating_add(1)
        } else {
            1
        };
        self.last_failure = Some(now);
        self.checked = Some(now);
    }

    /// A request to the peer succeeded: the count resets.
    pub fn note_success(&mut self) {
        self.fails = 0;
        self.checked = None;
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

    pub fn peer(&self, index: usize) -> Option<&PeerHealth> {
        self.peers.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events applied in order to one peer, each followed by the expected
    /// availability at that instant.
    #[derive(Debug, Clone, Copy)]
    enum Ev {
        Fail(u64),
        Success,
        Pick(u64),
        Check(u64, bool),
    }

    fn run(max_fails: u32, fail_timeout: u64, events: &[Ev]) {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut h = PeerHealth::new(max_fails, Duration::from_secs(fail_timeout));
        for (step, ev) in events.iter().enumerate() {
            match *ev {
                Ev::Fail(s) => h.note_failure(at(s)),
                Ev::Success => h.note_success(),
                Ev::Pick(s) => h.note_selected(at(s)),
                Ev::Check(s, want) => {
                    assert_eq!(
                        h.is_available(at(s)),
                        want,
                        "step {step} {ev:?} in {events:?}"
                    )
                }
            }
        }
    }

    #[test]
    fn passive_health_table() {
        use Ev::*;
        let cases: &[(u32, u64, &[Ev])] = &[
            // One failure with max_fails=1 takes the peer out for fail_timeout.
            (
                1,
                10,
                &[
                    Check(0, true),
                    Fail(0),
                    Check(1, false),
                    Check(10, false),
                    Check(11, true),
                ],
            ),
            // max_fails=3: two failures keep it in, the third takes it out.
            (
                3,
                10,
                &[
                    Fail(0),
                    Fail(1),
                    Check(2, true),
                    Fail(2),
                    Check(3, false),
                    Check(13, true),
                ],
            ),
            // Failures further apart than fail_timeout do not add up.
            (
                2,
                10,
                &[
                    Fail(0),
                    Fail(11),
                    Check(12, true),
                    Fail(30),
                    Check(31, true),
                ],
            ),
            // A success resets the count.
            (
                2,
                10,
                &[
                    Fail(0),
                    Success,
                    Fail(2),
                    Check(3, true),
                    Fail(4),
                    Check(5, false),
                ],
            ),
            // After fail_timeout one trial is let through; others wait while it runs.
            (
                1,
                10,
                &[
                    Fail(0),
                    Check(11, true),
                    Pick(11),
                    Check(12, false),
                    Check(21, false),
                    Check(22, true),
                ],
            ),
            // The trial succeeds: back in service.
            (1, 10, &[Fail(0), Pick(11), Success, Check(12, true)]),
            // The trial fails: out for another fail_timeout.
            (
                1,
                10,
                &[
                    Fail(0),
                    Pick(11),
                    Fail(12),
                    Check(13, false),
                    Check(22, false),
                    Check(23, true),
                ],
            ),
            // max_fails=0 disables accounting.
            (0, 10, &[Fail(0), Fail(0), Fail(0), Check(1, true)]),
            // Picking a healthy peer changes nothing.
            (1, 10, &[Pick(0), Check(0, true), Pick(1), Check(1, true)]),
        ];
        for (max_fails, fail_timeout, events) in cases {
            run(*max_fails, *fail_timeout, events);
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
        health.note_success(0);
        assert!(health.is_available(0, now));
    }
}
