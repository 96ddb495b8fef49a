//! nginx's smooth weighted round robin, per worker.
//!
//! [`RoundRobin`] keeps nginx's `current_weight` and `effective_weight` for every
//! peer of one upstream. [`RoundRobin::pick`] adds each eligible peer's effective
//! weight to its current weight, takes the largest (first on ties), and subtracts
//! the total from the winner: weights {5,1,1} give `a a b a c a a`. Eligible means
//! not `down`, available in the caller's health view, and not in the [`Tried`] set
//! of this request; `backup` peers are considered only when no primary is eligible.
//! A failed peer's effective weight drops by `weight / max_fails` and climbs back by
//! one per pick, as in nginx. O(n) per pick, no allocation, no atomics.

use crate::config::PeerConf;

/// Peers already tried for one request (proxy_next_upstream): a bit set, inline up
/// to 128 peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tried {
    low: u128,
    more: Vec<u64>,
}

impl Tried {
    pub fn new() -> Tried {
        Tried::default()
    }

    pub fn insert(&mut self, index: usize) {
        if index < 128 {
            self.low |= 1 << index;
        } else {
            let word = (index - 128) / 64;
            if self.more.len() <= word {
                self.more.resize(word + 1, 0);
            }
            if let Some(w) = self.more.get_mut(word) {
                *w |= 1 << ((index - 128) % 64);
            }
        }
    }

    pub fn contains(&self, index: usize) -> bool {
        if index < 128 {
            self.low & (1 << index) != 0
        } else {
            let word = (index - 128) / 64;
            self.more
                .get(word)
                .is_some_and(|w| w & (1 << ((index - 128) % 64)) != 0)
        }
    }

    /// Number of peers tried.
    pub fn len(&self) -> usize {
        self.low.count_ones() as usize
            + self
                .more
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PeerState {
    weight: i64,
    effective: i64,
    current: i64,
}

/// Smooth weighted round robin state of one upstream, for one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRobin {
    peers: Vec<PeerState>,
}

impl RoundRobin {
    /// Fresh state for `peers` (indexed like `UpstreamConf::peers`).
    pub fn new(peers: &[PeerConf]) -> RoundRobin {
        RoundRobin {
            peers: peers
                .iter()
                .map(|p| {
                    let weight = i64::from(p.weight.max(1));
                    PeerState {
                        weight,
                        effective: weight,
                        current: 0,
                    }
                })
                .collect(),
        }
    }

    /// Picks a peer for a new request: among the primaries that are not `down`,
    /// `available(index)` and not in `tried`; when there is none, among the backups
    /// the same way. `None` when no peer is eligible. `peers` must be the slice this
    /// state was built from.
    pub fn pick(
        &mut self,
        peers: &[PeerConf],
        available: impl Fn(usize) -> bool,
        tried: &Tried,
    ) -> Option<usize> {
        self.pick_among(peers, false, &available, tried)
            .or_else(|| self.pick_among(peers, true, &available, tried))
    }

    fn pick_among(
        &mut self,
        peers: &[PeerConf],
        backup: bool,
        available: &impl Fn(usize) -> bool,
        tried: &Tried,
    ) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut best_current = i64::MIN;
        let mut total: i64 = 0;
        for (i, (conf, state)) in peers.iter().zip(self.peers.iter_mut()).enumerate() {
            if conf.backup != backup || conf.down || tried.contains(i) || !available(i) {
                continue;
            }
            state.current += state.effective;
            total += state.effective;
            if state.effective < state.weight {
                state.effective += 1;
            }
            if best.is_none() || state.current > best_current {
                best = Some(i);
                best_current = state.current;
            }
        }
        let index = best?;
        if let Some(state) = self.peers.get_mut(index) {
            state.current -= total;
        }
        Some(index)
    }

    /// Peer `index` failed: its effective weight drops by `weight / max_fails`
    /// (nginx), recovering by one per pick.
    pub fn note_failure(&mut self, index: usize, max_fails: u32) {
        if max_fails == 0 {
            return;
        }
        if let Some(state) = self.peers.get_mut(index) {
            state.effective = (state.effective - state.weight / i64::from(max_fails)).max(0);
        }
    }
}
