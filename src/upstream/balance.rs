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

/// What the hashing methods read of a request: the client address
/// (`ip_hash`) and the evaluated `hash` key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pick {
    pub client: Option<std::net::IpAddr>,
    pub key: Vec<u8>,
}

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

    /// `least_conn`: among the eligible primaries (else backups), those with
    /// the fewest requests in flight per weight (`conns(i)`), and smooth
    /// weighted round robin among them when several tie (nginx).
    pub fn pick_least(
        &mut self,
        peers: &[PeerConf],
        conns: impl Fn(usize) -> u64,
        available: impl Fn(usize) -> bool,
        tried: &Tried,
    ) -> Option<usize> {
        for backup in [false, true] {
            let eligible = |i: usize, p: &PeerConf| {
                p.backup == backup && !p.down && !tried.contains(i) && available(i)
            };
            // conns(a) / weight(a) < conns(b) / weight(b), without division.
            let load = |i: usize, p: &PeerConf| (conns(i), u64::from(p.weight.max(1)));
            let mut best: Option<(u64, u64)> = None;
            for (i, p) in peers.iter().enumerate() {
                if !eligible(i, p) {
                    continue;
                }
                let (c, w) = load(i, p);
                if best.is_none_or(|(bc, bw)| c * bw < bc * w) {
                    best = Some((c, w));
                }
            }
            let Some((bc, bw)) = best else { continue };
            return self.pick_among(
                peers,
                backup,
                &|i| {
                    peers.get(i).is_some_and(|p| {
                        let (c, w) = load(i, p);
                        eligible(i, p) && c * bw == bc * w
                    })
                },
                tried,
            );
        }
        None
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn peer(port: u16, weight: u32) -> PeerConf {
        PeerConf {
            name: format!("127.0.0.1:{port}"),
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            server: format!("127.0.0.1:{port}"),
            weight,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            down: false,
            backup: false,
            id: None,
            drain: false,
            max_conns: 0,
            unix: None,
        }
    }

    fn sequence(peers: &[PeerConf], n: usize) -> String {
        let mut rr = RoundRobin::new(peers);
        (0..n)
            .map(|_| {
                let i = rr.pick(peers, |_| true, &Tried::new()).unwrap();
                char::from(b'a' + i as u8)
            })
            .collect()
    }

    #[test]
    fn smooth_sequences_match_nginx() {
        let cases: &[(&[u32], usize, &str)] = &[
            (&[5, 1, 1], 7, "aabacaa"),
            (&[5, 1, 1], 14, "aabacaaaabacaa"),
            (&[3, 1], 8, "aabaaaba"),
            (&[1, 1, 1], 6, "abcabc"),
            (&[2, 1], 6, "abaaba"),
            (&[1], 3, "aaa"),
        ];
        for (weights, n, want) in cases {
            let peers: Vec<_> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| peer(8000 + i as u16, w))
                .collect();
            assert_eq!(sequence(&peers, *n), *want, "{weights:?}");
        }
    }

    #[test]
    fn weights_three_to_one_over_forty_picks_give_thirty_and_ten() {
        let peers = [peer(1, 3), peer(2, 1)];
        let seq = sequence(&peers, 40);
        assert_eq!(seq.matches('a').count(), 30);
        assert_eq!(seq.matches('b').count(), 10);
    }

    #[test]
    fn down_unavailable_and_tried_peers_are_skipped() {
        let mut peers = vec![peer(1, 1), peer(2, 1), peer(3, 1)];
        peers[0].down = true;
        let mut rr = RoundRobin::new(&peers);
        let mut tried = Tried::new();
        tried.insert(1);
        for _ in 0..4 {
            assert_eq!(rr.pick(&peers, |_| true, &tried), Some(2));
        }
        assert_eq!(rr.pick(&peers, |i| i != 2, &tried), None);
        assert_eq!(rr.pick(&peers, |i| i != 2, &Tried::new()), Some(1));
    }

    #[test]
    fn backups_serve_only_when_every_primary_is_out() {
        let mut peers = vec![peer(1, 1), peer(2, 1), peer(3, 1), peer(4, 2)];
        peers[2].backup = true;
        peers[3].backup = true;
        let mut rr = RoundRobin::new(&peers);
        let cases: &[(&[usize], &[usize], Option<usize>)] = &[
            // (unavailable, tried, expected pick)
            (&[], &[], Some(0)),
            (&[], &[], Some(1)),
            (&[0], &[], Some(1)),
            (&[], &[0, 1], Some(3)),
            (&[0, 1], &[], Some(2)),
            (&[0, 1], &[], Some(3)),
            (&[0, 1, 3], &[], Some(2)),
            (&[0, 1, 2, 3], &[], None),
            (&[1], &[0, 2, 3], None),
        ];
        for (unavailable, tried_list, want) in cases {
            let mut tried = Tried::new();
            for &t in *tried_list {
                tried.insert(t);
            }
            let got = rr.pick(&peers, |i| !unavailable.contains(&i), &tried);
            assert_eq!(
                got, *want,
                "unavailable {unavailable:?} tried {tried_list:?}"
            );
        }
    }

    #[test]
    fn failure_lowers_effective_weight_then_it_recovers() {
        let peers = [peer(1, 4), peer(2, 4)];
        let mut rr = RoundRobin::new(&peers);
        rr.note_failure(0, 1);
        // Effective weight of a is 0, then climbs by one per pick: b wins first.
        let picks: String = (0..4)
            .map(|_| char::from(b'a' + rr.pick(&peers, |_| true, &Tried::new()).unwrap() as u8))
            .collect();
        assert_eq!(&picks[..2], "bb");
        let seq: String = (0..80)
            .map(|_| char::from(b'a' + rr.pick(&peers, |_| true, &Tried::new()).unwrap() as u8))
            .collect();
        assert_eq!(seq.matches('a').count(), 40, "{seq}");
    }

    #[test]
    fn tried_set_holds_any_index() {
        let mut tried = Tried::new();
        assert!(tried.is_empty());
        for i in [0, 63, 64, 127, 128, 200, 1000] {
            assert!(!tried.contains(i));
            tried.insert(i);
            assert!(tried.contains(i));
        }
        assert_eq!(tried.len(), 7);
        assert!(!tried.contains(999));
        assert!(!tried.contains(5000));
    }
}
