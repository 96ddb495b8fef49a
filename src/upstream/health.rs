//! Passive health: nginx's `max_fails` / `fail_timeout` accounting, per worker.
//!
//! One [`PeerHealth`] per peer, owned by one worker (no atomics, no locks), with the
//! clock passed in as `now`. A failure within `fail_timeout` of the previous one
//! adds to the count (an older one starts a new count); reaching `max_fails` makes
//! the peer unavailable for `fail_timeout` from the last failure. After that one
//! trial request is let through ([`PeerHealth::note_selected`] starts a new
//! `fail_timeout` window, so concurrent requests keep avoiding the peer); its
//! success resets the count, its failure keeps the peer out for another
//! `fail_timeout`. `max_fails = 0` disables the accounting.

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
        if self.checked.map_or(true, |c| {
            now.saturating_duration_since(c) > self.fail_timeout
        }) {
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
    pub fn new(upstream: &UpstreamConf) -> Health {
        Health {
            peers: upstream.peers.iter().map(PeerHealth::for_peer).collect(),
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
