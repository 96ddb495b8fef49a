//! The run-time peer set of one upstream in one worker: balancer state
//! (`balance::RoundRobin`), passive health (`health::Health`), the keep-alive
//! [`UpstreamPool`] and the sticky sid index, plus the [`UpstreamStats`] shared
//! with the active checker and the status page (active-check state, `drain`,
//! counters). The forwarding pipeline asks it to choose a peer, to check a
//! connection out, and tells it how each try went.
//!
//! Owned by one worker thread: interior mutability with `RefCell`, no locks; the
//! shared stats are relaxed atomics.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::UpstreamConf;
use crate::sticky::{SidIndex, Sticky};
use crate::upstream::balance::{Pick, RoundRobin, Tried};
use crate::upstream::health::Health;
use crate::upstream::method::Method;
use crate::upstream::pool::{Conn, Live, UpstreamPool};
use crate::upstream::stats::UpstreamStats;

/// One upstream's peers, as seen by one worker.
pub struct PeerSet<B> {
    conf: Arc<UpstreamConf>,
    sticky: Option<Sticky>,
    balancer: RefCell<RoundRobin>,
    /// `ip_hash`, `hash`, `least_conn`, `random` beyond round robin.
    method: Method,
    health: RefCell<Health>,
    pool: Rc<RefCell<UpstreamPool<B>>>,
    stats: Arc<UpstreamStats>,
}

impl<B> PeerSet<B> {
    /// A peer set with its own stats, every peer up as far as active checks go
    /// (for use without a checker).
    pub fn new(conf: Arc<UpstreamConf>) -> Self {
        let stats = Arc::new(UpstreamStats::unchecked(&conf));
        PeerSet::with_stats(conf, stats)
    }

    /// A peer set reading the active-check state and adding to the counters of
    /// `stats` (the upstream's entry in the shared `HealthTable`).
    pub fn with_stats(conf: Arc<UpstreamConf>, stats: Arc<UpstreamStats>) -> Self {
        let sticky = conf.sticky.as_ref().map(|s| {
            Sticky::new(
                s.clone(),
                SidIndex::from_peers(
                    s,
                    conf.peers
                        .iter()
                        .map(|p| (p.name.as_str(), p.id.as_deref())),
                ),
            )
        });
        let pool = UpstreamPool::new(
            conf.peers.len(),
            conf.keepalive.unwrap_or(0),
            conf.keepalive_timeout,
            conf.keepalive_requests,
        )
        .with_max_age(conf.keepalive_time);
        PeerSet {
            balancer: RefCell::new(RoundRobin::new(&conf.peers)),
            method: Method::new(&conf.balance, &conf.peers),
            health: RefCell::new(Health::new(&conf)),
            pool: Rc::new(RefCell::new(pool)),
            sticky,
            conf,
            stats,
        }
    }

    /// The figures shared with the checker and the status page.
    pub fn stats(&self) -> &Arc<UpstreamStats> {
        &self.stats
    }

    /// The upstream's configuration.
    pub fn conf(&self) -> &UpstreamConf {
        &self.conf
    }

    /// The sticky rules of this upstream, if it has `session_sticky`.
    pub fn sticky(&self) -> Option<&Sticky> {
        self.sticky.as_ref()
    }

    /// True when `keepalive N` is set: requests go out without `Connection: close`.
    pub fn keeps_alive(&self) -> bool {
        self.conf.keepalive.is_some_and(|n| n > 0)
    }

    /// Whether peer `i` may serve a request pinned to it now: not `down`, not
    /// failed (passive), not marked down by the active checker. A draining peer
    /// is up for its pinned sessions.
    ///
    /// Asked only by the sticky decision, and a `true` means the request goes to
    /// `i`: so it counts as choosing `i` for passive health, as a balancer pick
    /// does (`PeerHealth::note_selected`: a pinned request after `fail_timeout`
    /// is the peer's probe, and its success resets the failure count).
    ///
    /// With `fallback=off` no other peer may serve a pinned request, so passive
    /// failures (`max_fails` within `fail_timeout`) do not count, as nginx
    /// treats a lone server; `down` and the active check still do.
    pub fn is_up(&self, i: usize, now: Instant) -> bool {
        let alone = self.sticky.as_ref().is_some_and(|s| !s.conf.fallback);
        let up = self.conf.peers.get(i).is_some_and(|p| !p.down)
            && self.stats.pinnable(i)
            && (alone || self.health.borrow().is_available(i, now));
        if up {
            self.health.borrow_mut().note_selected(i, now);
        }
        up
    }

    /// The upstream's balancing method among the up peers that take new
    /// sessions (not draining, under `max_conns`), skipping `exclude` and the
    /// peers in `tried`; `pick` is what the hashing methods read.
    pub fn choose(
        &self,
        exclude: Option<usize>,
        tried: &Tried,
        now: Instant,
        pick: &Pick,
    ) -> Option<usize> {
        let health = self.health.borrow();
        let stats = &self.stats;
        let peers = &self.conf.peers;
        let conns = |i: usize| stats.peer(i).map_or(0, |p| p.active());
        let available = |i: usize| {
            Some(i) != exclude
                && stats.selectable(i)
                && health.is_available(i, now)
                && peers
                    .get(i)
                    .is_some_and(|p| p.max_conns == 0 || conns(i) < u64::from(p.max_conns))
        };
        let picked = self.method.choose(
            &self.conf.balance,
            &mut self.balancer.borrow_mut(),
            peers,
            pick,
            &available,
            &conns,
            tried,
        );
        drop(health);
        if let Some(i) = picked {
            self.health.borrow_mut().note_selected(i, now);
        }
        picked
    }

    /// A try at peer `i` failed (error, timeout, or a listed status).
    pub fn failed(&self, i: usize, now: Instant) {
        let max_fails = self.conf.peers.get(i).map_or(0, |p| p.max_fails);
        let mut health = self.health.borrow_mut();
        health.note_failure(i, now);
        if !health.is_available(i, now) {
            let fail_timeout = self
                .conf
                .peers
                .get(i)
                .map_or(Duration::ZERO, |p| p.fail_timeout);
            self.stats.note_passive_down(i, now + fail_timeout);
        }
        drop(health);
        self.balancer.borrow_mut().note_failure(i, max_fails);
    }

    /// Peer `i` answered. The failure count resets only if `i` was chosen after
    /// its last failure's `fail_timeout` (nginx); the status page stops showing
    /// it down once its count is below `max_fails`.
    pub fn succeeded(&self, i: usize) {
        let mut health = self.health.borrow_mut();
        health.note_success(i);
        if !health.reached_max_fails(i) {
            self.stats.note_passive_up(i);
        }
    }

    /// The address of peer `i`.
    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.conf.peers.get(i).map(|p| p.addr)
    }

    /// The socket path of peer `i` when it is `server unix:/path`.
    pub fn unix(&self, i: usize) -> Option<&std::path::Path> {
        self.conf.peers.get(i).and_then(|p| p.unix.as_deref())
    }

    /// The name of peer `i` (`IP:PORT`).
    pub fn name(&self, i: usize) -> Option<&str> {
        self.conf.peers.get(i).map(|p| p.name.as_str())
    }

    /// An idle keep-alive connection to peer `i` of kind `key` (plain, or TLS
    /// with given settings and name), if one is cached.
    pub fn checkout(&self, i: usize, key: &B::Key, now: Instant) -> Option<Conn<B>>
    where
        B: Live,
    {
        self.pool.borrow_mut().checkout(i, key, now)
    }

    /// Takes over what `old` (the previous peer set of the same upstream: a
    /// reload or a DNS change made this one) knows of the peers both have (same
    /// name and address): their passive failure accounting and their idle
    /// keep-alive connections.
    pub fn adopt(&self, old: &PeerSet<B>, now: Instant)
    where
        B: Live,
    {
        for (j, peer) in self.conf.peers.iter().enumerate() {
            let Some(i) = old
                .conf
                .peers
                .iter()
                .position(|p| p.name == peer.name && p.addr == peer.addr)
            else {
                continue;
            };
            if let Some(h) = old.health.borrow().peer(i) {
                self.health.borrow_mut().carry(j, h);
            }
            loop {
                let conn = old.pool.borrow_mut().checkout_any(i, now);
                let Some(conn) = conn else { break };
                self.pool.borrow_mut().checkin(j, conn, now);
            }
        }
    }

    /// The pool, for response bodies that return their connection when they end.
    pub fn pool(&self) -> Rc<RefCell<UpstreamPool<B>>> {
        Rc::clone(&self.pool)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::upstream::stats::HealthTable;
    use std::path::Path;

    fn set(servers: &str, check: &str) -> (PeerSet<()>, HealthTable) {
        let src = format!("http {{ upstream u {{ {servers} {check} }} }}");
        let config = load_str(&src, Path::new("/t.conf")).unwrap().0;
        let table = HealthTable::new(&config);
        let conf = Arc::clone(&config.http.upstreams[0]);
        let stats = Arc::clone(table.upstream(0).unwrap());
        (PeerSet::with_stats(conf, stats), table)
    }

    fn picks(s: &PeerSet<()>, n: usize) -> Vec<Option<usize>> {
        let now = Instant::now();
        (0..n)
            .map(|_| s.choose(None, &Tried::new(), now, &Pick::default()))
            .collect()
    }

    #[test]
    fn a_draining_peer_is_up_for_pins_but_never_chosen() {
        let (s, _t) = set(
            "server 127.0.0.1:1; server 127.0.0.1:2 drain; server 127.0.0.1:3;",
            "",
        );
        let now = Instant::now();
        assert!(s.is_up(1, now), "pinned sessions keep their draining peer");
        assert_eq!(picks(&s, 4), [Some(0), Some(2), Some(0), Some(2)]);
        assert_eq!(
            s.choose(Some(0), &Tried::new(), now, &Pick::default()),
            Some(2)
        );
        let (only, _t) = set("server 127.0.0.1:1 drain;", "");
        assert_eq!(picks(&only, 1), [None], "nothing takes new sessions");
    }

    #[test]
    fn passive_failures_are_published_for_the_status_page() {
        let (s, t) = set(
            "server 127.0.0.1:1 max_fails=2 fail_timeout=5s; server 127.0.0.1:2;",
            "",
        );
        let stats = t.upstream(0).unwrap();
        let now = Instant::now();
        s.failed(0, now);
        assert!(!stats.passive_down(0, now), "one of max_fails=2");
        s.failed(0, now);
        assert!(!s.is_up(0, now) && stats.passive_down(0, now));
        assert!(stats.passive_down(0, now + Duration::from_secs(4)));
        assert!(!stats.passive_down(0, now + Duration::from_secs(6)));
        s.succeeded(0);
        assert!(
            stats.passive_down(0, now) && !s.is_up(0, now),
            "a success before the probe resets nothing"
        );
        let later = now + Duration::from_secs(6);
        assert_eq!(
            s.choose(None, &Tried::new(), later, &Pick::default()),
            Some(0)
        );
        s.succeeded(0);
        assert!(!stats.passive_down(0, now) && s.is_up(0, later));
    }

    #[test]
    fn with_fallback_off_only_down_and_the_active_check_refuse_a_pin() {
        let servers = "server 127.0.0.1:1 max_fails=1 fail_timeout=30s; server 127.0.0.1:2 down;";
        // (session_sticky, pinned peer 0 up after a passive failure)
        for (sticky, up) in [
            ("session_sticky fallback=off;", true),
            ("session_sticky;", false),
        ] {
            let (s, t) = set(servers, sticky);
            let now = Instant::now();
            s.failed(0, now);
            assert_eq!(s.is_up(0, now), up, "{sticky}");
            assert!(!s.is_up(1, now), "down is down: {sticky}");
            t.upstream(0)
                .unwrap()
                .peer(0)
                .unwrap()
                .publish_check(true, 0, 1);
            assert!(!s.is_up(0, now), "the active check says down: {sticky}");
        }
    }

    #[test]
    fn a_pinned_request_after_fail_timeout_is_the_one_probe() {
        let (s, _t) = set(
            "server 127.0.0.1:1 max_fails=2 fail_timeout=5s; server 127.0.0.1:2;",
            "",
        );
        let now = Instant::now();
        let at = |secs| now + Duration::from_secs(secs);
        s.failed(0, now);
        assert!(s.is_up(0, at(1)), "one of max_fails=2");
        s.succeeded(0);
        s.failed(0, at(2));
        assert!(!s.is_up(0, at(3)), "the success in between reset nothing");
        assert!(s.is_up(0, at(8)), "fail_timeout passed: the probe");
        assert!(!s.is_up(0, at(8)), "others wait while it runs");
        s.succeeded(0);
        assert!(s.is_up(0, at(8)), "the probe answered: count reset");
        s.failed(0, at(9));
        assert!(s.is_up(0, at(9)), "one failure again, of max_fails=2");
    }

    /// The test peer sets carry no connections.
    impl Live for () {
        type Key = ();
        fn is_closed(&mut self) -> bool {
            true
        }
        fn key(&self) -> &() {
            &()
        }
    }

    #[test]
    fn a_new_peer_set_adopts_the_passive_health_of_the_peers_it_keeps() {
        let (old, _t) = set(
            "server 127.0.0.1:1 max_fails=1 fail_timeout=30s; server 127.0.0.1:2 max_fails=1 fail_timeout=30s;",
            "",
        );
        let now = Instant::now();
        old.failed(1, now);
        assert!(!old.is_up(1, now));
        // 127.0.0.1:2 stays (now first), 127.0.0.1:3 is new, :1 is gone.
        let (new, _t) = set(
            "server 127.0.0.1:2 max_fails=1 fail_timeout=30s; server 127.0.0.1:3 max_fails=1 fail_timeout=30s;",
            "",
        );
        new.adopt(&old, now);
        assert!(!new.is_up(0, now), "the failed peer is still out");
        assert!(new.is_up(1, now), "the new one starts healthy");
        assert!(
            new.is_up(0, now + Duration::from_secs(31)),
            "until its fail_timeout"
        );
    }

    #[test]
    fn actively_checked_down_peers_are_neither_pinned_nor_chosen() {
        let (s, t) = set(
            "server 127.0.0.1:1; server 127.0.0.1:2;",
            "check default_down=false;",
        );
        let now = Instant::now();
        let stats = t.upstream(0).unwrap();
        stats.peer(0).unwrap().publish_check(true, 0, 5);
        assert!(!s.is_up(0, now) && s.is_up(1, now));
        assert_eq!(picks(&s, 3), [Some(1), Some(1), Some(1)]);
        stats.peer(0).unwrap().publish_check(false, 2, 0);
        assert!(s.is_up(0, now));
        let (d, _t) = set("server 127.0.0.1:1; server 127.0.0.1:2;", "check;");
        assert!(!d.is_up(0, now) && !d.is_up(1, now), "default_down");
        assert_eq!(picks(&d, 1), [None]);
        let free = PeerSet::<()>::new(Arc::new(d.conf().clone()));
        assert!(
            free.is_up(0, now),
            "without a checker nothing is checked down"
        );
    }
}
