//! Dispatch to the upstream's load-balancing method (`Balance`): weighted
//! round robin, `ip_hash`, `hash [consistent]`, `least_conn`, `random [two]`.
//! Each falls back to round robin where nginx does (no client address, an
//! empty key, 20 rejected candidates). Pure but for the per-worker random
//! state (`random`), which is seeded once and never read from the clock.

use std::cell::Cell;

use crate::config::{Balance, PeerConf};
use crate::upstream::balance::{Pick, RoundRobin, Tried};
use crate::upstream::hash::{self, Ketama};

/// Per-upstream, per-worker state of the method beyond round robin.
#[derive(Debug)]
pub struct Method {
    /// The ring of `hash ... consistent`.
    ketama: Option<Ketama>,
    /// xorshift64 state for `random`.
    rng: Cell<u64>,
}

impl Method {
    pub fn new(balance: &Balance, peers: &[PeerConf]) -> Method {
        use std::hash::{BuildHasher, Hasher};
        let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
        seed.write_usize(peers.len());
        Method {
            ketama: matches!(
                balance,
                Balance::Hash {
                    consistent: true,
                    ..
                }
            )
            .then(|| Ketama::new(peers)),
            rng: Cell::new(seed.finish() | 1),
        }
    }

    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// A peer for a new request (or a retry) by `balance`. `available(i)`:
    /// up, not excluded, under `max_conns`; `conns(i)`: requests in flight.
    #[allow(clippy::too_many_arguments)]
    pub fn choose(
        &self,
        balance: &Balance,
        rr: &mut RoundRobin,
        peers: &[PeerConf],
        pick: &Pick,
        available: &dyn Fn(usize) -> bool,
        conns: &dyn Fn(usize) -> u64,
        tried: &Tried,
    ) -> Option<usize> {
        let eligible =
            |i: usize| peers.get(i).is_some_and(|p| !p.down) && !tried.contains(i) && available(i);
        let hashed = match balance {
            Balance::RoundRobin => None,
            Balance::LeastConn => return rr.pick_least(peers, conns, available, tried),
            Balance::IpHash => pick
                .client
                .and_then(|ip| hash::ip_hash(peers, ip, eligible)),
            Balance::Hash {
                consistent: false, ..
            } => hash::key_hash(peers, &pick.key, eligible),
            Balance::Hash {
                consistent: true, ..
            } => self.consistent(rr, peers, &pick.key, &eligible, tried),
            Balance::Random { two } => self.random(peers, *two, conns, &eligible),
        };
        hashed.or_else(|| rr.pick(peers, available, tried))
    }

    /// Ketama: the peers of the server at each candidate point, round robin
    /// among them (several when a name resolved to several addresses).
    fn consistent(
        &self,
        rr: &mut RoundRobin,
        peers: &[PeerConf],
        key: &[u8],
        eligible: &dyn Fn(usize) -> bool,
        tried: &Tried,
    ) -> Option<usize> {
        let ring = self.ketama.as_ref()?;
        if key.is_empty() || peers.iter().filter(|p| !p.backup).count() < 2 {
            return None;
        }
        ring.candidates(key).find_map(|server| {
            rr.pick(
                peers,
                |i| eligible(i) && peers.get(i).is_some_and(|p| p.server == server),
                tried,
            )
        })
    }

    /// `random`: a peer drawn by weight; `two`: the less loaded of two.
    fn random(
        &self,
        peers: &[PeerConf],
        two: bool,
        conns: &dyn Fn(usize) -> u64,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let total: u64 = peers
            .iter()
            .filter(|p| !p.backup)
            .map(|p| u64::from(p.weight.max(1)))
            .sum();
        if total == 0 {
            return None;
        }
        let draw = |skip: Option<usize>| {
            (0..20).find_map(|_| {
                let mut w = self.next_random() % total;
                let i = peers
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.backup)
                    .find_map(|(i, p)| {
                        let weight = u64::from(p.weight.max(1));
                        if w < weight {
                            Some(i)
                        } else {
                            w -= weight;
                            None
                        }
                    })?;
                (Some(i) != skip && eligible(i)).then_some(i)
            })
        };
        let first = draw(None)?;
        if !two {
            return Some(first);
        }
        let Some(second) = draw(Some(first)) else {
            return Some(first);
        };
        let load = |i: usize| {
            let w = peers.get(i).map_or(1, |p| u64::from(p.weight.max(1)));
            (conns(i), w)
        };
        let ((c1, w1), (c2, w2)) = (load(first), load(second));
        Some(if c2 * w1 < c1 * w2 { second } else { first })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    fn upstream(body: &str) -> crate::config::UpstreamConf {
        let c = load_str(
            &format!("http {{ upstream u {{ {body} }} }}"),
            Path::new("/t.conf"),
        )
        .unwrap()
        .0;
        (*c.http.upstreams[0]).clone()
    }

    fn run(body: &str, pick: &Pick, conns: &[u64], n: usize) -> Vec<usize> {
        let u = upstream(body);
        let m = Method::new(&u.balance, &u.peers);
        let mut rr = RoundRobin::new(&u.peers);
        (0..n)
            .map(|_| {
                m.choose(
                    &u.balance,
                    &mut rr,
                    &u.peers,
                    pick,
                    &|_| true,
                    &|i| conns[i],
                    &Tried::new(),
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn least_conn_prefers_fewer_per_weight_then_round_robin() {
        let three = "least_conn; server 127.0.0.1:1; server 127.0.0.1:2; server 127.0.0.1:3;";
        assert_eq!(run(three, &Pick::default(), &[3, 1, 2], 3), [1, 1, 1]);
        assert_eq!(run(three, &Pick::default(), &[1, 1, 2], 4), [0, 1, 0, 1]);
        let weighted = "least_conn; server 127.0.0.1:1 weight=3; server 127.0.0.1:2;";
        // 3 in flight on weight 3 ties 1 on weight 1: round robin by weight.
        assert_eq!(run(weighted, &Pick::default(), &[3, 1], 4), [0, 0, 1, 0]);
        assert_eq!(run(weighted, &Pick::default(), &[4, 1], 2), [1, 1]);
    }

    #[test]
    fn hashing_methods_are_stable_and_fall_back_to_round_robin() {
        let ip = "ip_hash; server 127.0.0.1:1; server 127.0.0.1:2; server 127.0.0.1:3;";
        let client = |a: &str| Pick {
            client: Some(a.parse().unwrap()),
            key: Vec::new(),
        };
        let a = run(ip, &client("203.0.113.5"), &[0; 3], 5);
        assert!(a.iter().all(|&i| i == a[0]), "{a:?}");
        assert_eq!(
            run(ip, &Pick::default(), &[0; 3], 3),
            [0, 1, 2],
            "no address: round robin"
        );
        for consistent in ["", "consistent"] {
            let body = format!(
                "hash $request_uri {consistent}; server 127.0.0.1:1; server 127.0.0.1:2; server 127.0.0.1:3;"
            );
            let key = |k: &str| Pick {
                client: None,
                key: k.as_bytes().to_vec(),
            };
            let got = run(&body, &key("/item/42"), &[0; 3], 4);
            assert!(got.iter().all(|&i| i == got[0]), "{got:?}");
            assert_eq!(
                run(&body, &key(""), &[0; 3], 3),
                [0, 1, 2],
                "empty key: round robin"
            );
        }
    }

    #[test]
    fn random_spreads_by_weight_and_two_takes_the_less_loaded() {
        let body = "random; server 127.0.0.1:1 weight=3; server 127.0.0.1:2;";
        let picks = run(body, &Pick::default(), &[0, 0], 4000);
        let first = picks.iter().filter(|&&i| i == 0).count();
        assert!((2700..3300).contains(&first), "{first}");
        let two = "random two least_conn; server 127.0.0.1:1; server 127.0.0.1:2;";
        assert!(run(two, &Pick::default(), &[5, 0], 50)
            .iter()
            .all(|&i| i == 1));
    }
}
