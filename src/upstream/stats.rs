//! The health and traffic view shared by the active checker, every worker and the
//! status page: one [`HealthTable`] per running configuration, one
//! [`UpstreamStats`] per upstream (indexed like `HttpConf::upstreams`), one
//! [`PeerStats`] per peer (indexed like `UpstreamConf::peers`).
//!
//! Everything here is a relaxed atomic: the checker (`upstream::check`) is the only
//! writer of the check state, workers only load it (`Relaxed`: a peer seen up for
//! one more request after it went down is harmless, and passive health catches
//! that request anyway); workers add to the traffic counters with `fetch_add`.
//! No locks, no allocation after start-up. [`HealthTable::snapshot`] copies the
//! figures into the plain [`StatusSnapshot`] that `upstream::status` renders.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{CheckConf, Config, StatusFormat, UpstreamConf};
use crate::sticky::{sid, Outcome};
use crate::upstream::check::{scheme, Scheme};
use crate::upstream::status::{
    self, PeerState, PeerStatus, StatusSnapshot, StickyCounts, UpstreamStatus,
};

/// The shared figures of one peer.
#[derive(Debug, Default)]
pub struct PeerStats {
    /// `server ... drain` (fixed for the life of the configuration).
    drain: bool,
    /// Marked down by the active checker.
    check_down: AtomicBool,
    /// Consecutive successful / failed checks (Tengine's rise and fall counters).
    rise: AtomicU32,
    fall: AtomicU32,
    /// Until when (ms after the table's epoch) some worker's passive accounting
    /// keeps the peer out (`max_fails`/`fail_timeout`); 0 = not failed. For the
    /// status page only: each worker still decides with its own accounting.
    passive_until_ms: AtomicU64,
    /// Requests being served by the peer now.
    active: AtomicU64,
    /// Requests sent to the peer so far (every attempt, retries included).
    requests: AtomicU64,
    /// Sticky outcomes of the requests the peer served.
    sticky: OutcomeCounts,
}

/// Requests counted by sticky outcome (`$sticky_status`), one slot per
/// outcome. A new outcome (issue 19's `forged`, for a cookie whose signature
/// does not verify) gets a slot here, a field in [`StickyCounts`] and a label
/// in its `pairs`: the status page and the Prometheus output follow.
#[derive(Debug, Default)]
pub struct OutcomeCounts([AtomicU64; 5]);

impl OutcomeCounts {
    /// The counter slot of a sticky outcome.
    fn slot(outcome: Outcome) -> usize {
        match outcome {
            // Ours: a forged cookie started a new session (`$sticky_status`
            // tells them apart; the status page's columns stay Tengine's).
            Outcome::New | Outcome::Forged => 0,
            Outcome::Hit => 1,
            Outcome::Expired => 2,
            Outcome::Unknown => 3,
            Outcome::Fallback => 4,
        }
    }

    fn note(&self, outcome: Outcome) {
        if let Some(c) = self.0.get(Self::slot(outcome)) {
            c.fetch_add(1, Relaxed);
        }
    }

    fn counts(&self) -> StickyCounts {
        let get = |o| self.0.get(Self::slot(o)).map_or(0, |c| c.load(Relaxed));
        StickyCounts {
            new: get(Outcome::New),
            hit: get(Outcome::Hit),
            expired: get(Outcome::Expired),
            unknown: get(Outcome::Unknown),
            fallback: get(Outcome::Fallback),
        }
    }
}

impl PeerStats {
    fn with_state(down: bool, drain: bool) -> PeerStats {
        let p = PeerStats {
            drain,
            ..PeerStats::default()
        };
        p.check_down.store(down, Relaxed);
        p
    }

    /// True when the active checker has marked the peer down.
    pub fn is_check_down(&self) -> bool {
        self.check_down.load(Relaxed)
    }

    /// The checker publishes its view of the peer.
    pub fn publish_check(&self, down: bool, rise: u32, fall: u32) {
        self.rise.store(rise, Relaxed);
        self.fall.store(fall, Relaxed);
        self.check_down.store(down, Relaxed);
    }

    /// (rise, fall) counters as last published.
    pub fn counters(&self) -> (u32, u32) {
        (self.rise.load(Relaxed), self.fall.load(Relaxed))
    }

    /// Requests in flight.
    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    fn sticky_counts(&self) -> StickyCounts {
        self.sticky.counts()
    }
}

/// The shared figures of one upstream's peers.
#[derive(Debug)]
pub struct UpstreamStats {
    /// Shared with the next figures of the upstream for the peers a DNS change
    /// keeps ([`UpstreamStats::carrying`]).
    peers: Box<[Arc<PeerStats>]>,
    /// Sticky outcomes of the whole upstream: unlike the peers' counts these
    /// survive peers coming and going (a DNS change keeps the object), so a
    /// fleet's dashboards can sum them.
    sticky: Arc<OutcomeCounts>,
    /// Origin of the passive-failure timestamps.
    epoch: Instant,
}

impl UpstreamStats {
    /// Every peer starts down when the upstream has `check ... default_down=true`
    /// (the default), else up.
    pub fn new(upstream: &UpstreamConf) -> UpstreamStats {
        let down = upstream.check.as_ref().is_some_and(|c| c.default_down);
        UpstreamStats {
            peers: upstream
                .peers
                .iter()
                .map(|p| Arc::new(PeerStats::with_state(down, p.drain)))
                .collect(),
            sticky: Arc::default(),
            epoch: Instant::now(),
        }
    }

    /// Like [`UpstreamStats::new`] but every peer up: for a peer set that no
    /// checker writes to.
    pub fn unchecked(upstream: &UpstreamConf) -> UpstreamStats {
        UpstreamStats {
            peers: upstream
                .peers
                .iter()
                .map(|p| Arc::new(PeerStats::with_state(false, p.drain)))
                .collect(),
            sticky: Arc::default(),
            epoch: Instant::now(),
        }
    }

    /// The figures of `upstream`, whose peers replaced those of `previous` (a
    /// DNS change, or a reload that changed the upstream): a peer both have
    /// (same name, address and `drain`) keeps its figures object (check state,
    /// counters, passive-failure mark), a new one starts as in
    /// [`UpstreamStats::new`]. The upstream's sticky counts carry over.
    pub fn carrying(
        upstream: &UpstreamConf,
        previous: &UpstreamConf,
        stats: &UpstreamStats,
    ) -> UpstreamStats {
        let down = upstream.check.as_ref().is_some_and(|c| c.default_down);
        UpstreamStats {
            peers: upstream
                .peers
                .iter()
                .map(|p| {
                    previous
                        .peers
                        .iter()
                        .position(|old| {
                            old.name == p.name && old.addr == p.addr && old.drain == p.drain
                        })
                        .and_then(|i| stats.peers.get(i))
                        .map_or_else(
                            || Arc::new(PeerStats::with_state(down, p.drain)),
                            Arc::clone,
                        )
                })
                .collect(),
            sticky: Arc::clone(&stats.sticky),
            epoch: stats.epoch,
        }
    }

    /// Peer `i` served a request with this sticky outcome: counted for the peer
    /// and for the upstream.
    pub fn note_outcome(&self, i: usize, outcome: Outcome) {
        if let Some(p) = self.peers.get(i) {
            p.sticky.note(outcome);
        }
        self.sticky.note(outcome);
    }

    /// Peer `i` (an unknown index has no figures).
    pub fn peer(&self, i: usize) -> Option<&PeerStats> {
        self.peers.get(i).map(|p| &**p)
    }

    /// False when the active checker has marked peer `i` down (an unknown peer
    /// is never up).
    pub fn check_up(&self, i: usize) -> bool {
        self.peers.get(i).is_some_and(|p| !p.is_check_down())
    }

    /// True when peer `i` may serve a session already pinned to it: not marked
    /// down by the active checker (a draining peer still serves its sessions).
    pub fn pinnable(&self, i: usize) -> bool {
        self.check_up(i)
    }

    /// True when peer `i` may be chosen for a new session (round robin, fallback,
    /// retries): up and not draining.
    pub fn selectable(&self, i: usize) -> bool {
        self.peers
            .get(i)
            .is_some_and(|p| !p.drain && !p.is_check_down())
    }

    /// A worker's passive accounting took peer `i` out until `until`.
    pub fn note_passive_down(&self, i: usize, until: Instant) {
        if let Some(p) = self.peers.get(i) {
            let ms = until.saturating_duration_since(self.epoch).as_millis();
            let ms = u64::try_from(ms).unwrap_or(u64::MAX).max(1);
            p.passive_until_ms.fetch_max(ms, Relaxed);
        }
    }

    /// Peer `i` answered a request: no longer shown as passively failed. A load
    /// first, so the common case (never failed) writes nothing shared.
    pub fn note_passive_up(&self, i: usize) {
        if let Some(p) = self.peers.get(i) {
            if p.passive_until_ms.load(Relaxed) != 0 {
                p.passive_until_ms.store(0, Relaxed);
            }
        }
    }

    /// True when some worker's passive accounting keeps peer `i` out at `now`.
    pub fn passive_down(&self, i: usize, now: Instant) -> bool {
        self.peers.get(i).is_some_and(|p| {
            let until = p.passive_until_ms.load(Relaxed);
            until != 0 && self.epoch + Duration::from_millis(until) > now
        })
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Counts a request in flight on peer `i` until the guard is dropped.
    pub fn begin(self: &Arc<Self>, i: usize) -> ActiveGuard {
        if let Some(p) = self.peers.get(i) {
            p.active.fetch_add(1, Relaxed);
            p.requests.fetch_add(1, Relaxed);
        }
        ActiveGuard {
            upstream: Arc::clone(self),
            peer: i,
        }
    }
}

/// A request in flight on one peer: `active` goes back down when it is dropped
/// (the response body ended or was abandoned, or the attempt failed).
#[derive(Debug)]
pub struct ActiveGuard {
    upstream: Arc<UpstreamStats>,
    peer: usize,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if let Some(p) = self.upstream.peers.get(self.peer) {
            p.active.fetch_sub(1, Relaxed);
        }
    }
}

/// The shared view of every upstream of one configuration.
#[derive(Debug)]
pub struct HealthTable {
    upstreams: Box<[Arc<UpstreamStats>]>,
}

impl HealthTable {
    /// Fresh figures for every upstream of `config`.
    pub fn new(config: &Config) -> HealthTable {
        HealthTable {
            upstreams: config
                .http
                .upstreams
                .iter()
                .map(|u| Arc::new(UpstreamStats::new(u)))
                .collect(),
        }
    }

    /// Like [`HealthTable::new`] but with every peer up: for workers that run
    /// without a checker (nothing would ever bring a `default_down` peer up).
    pub fn unchecked(config: &Config) -> HealthTable {
        HealthTable {
            upstreams: config
                .http
                .upstreams
                .iter()
                .map(|u| Arc::new(UpstreamStats::unchecked(u)))
                .collect(),
        }
    }

    /// Figures for `config` after `previous` (the configuration `table` was
    /// made for): an upstream whose definition is the same keeps its figures
    /// object (its check state and counters, and the workers' kept peer sets
    /// still read what the new checker writes); one of the same name that
    /// changed keeps those of the peers it still has
    /// ([`UpstreamStats::carrying`]); a new one starts fresh.
    pub fn reusing(config: &Config, previous: &Config, table: &HealthTable) -> HealthTable {
        HealthTable {
            upstreams: config
                .http
                .upstreams
                .iter()
                .map(|u| {
                    let same_name = previous
                        .http
                        .upstreams
                        .iter()
                        .position(|old| old.name == u.name);
                    match same_name
                        .and_then(|i| Some((previous.http.upstreams.get(i)?, table.upstream(i)?)))
                    {
                        Some((old, stats)) if **old == **u => Arc::clone(stats),
                        Some((old, stats)) => Arc::new(UpstreamStats::carrying(u, old, stats)),
                        None => Arc::new(UpstreamStats::new(u)),
                    }
                })
                .collect(),
        }
    }

    /// This table with upstream `i` replaced by `upstream`, whose peers replaced
    /// those of `previous` (see [`UpstreamStats::carrying`]); the other
    /// upstreams keep their figures objects.
    pub fn replacing(
        &self,
        i: usize,
        upstream: &UpstreamConf,
        previous: &UpstreamConf,
    ) -> HealthTable {
        HealthTable {
            upstreams: self
                .upstreams
                .iter()
                .enumerate()
                .map(|(j, stats)| {
                    if j == i {
                        Arc::new(UpstreamStats::carrying(upstream, previous, stats))
                    } else {
                        Arc::clone(stats)
                    }
                })
                .collect(),
        }
    }

    /// Upstream `i` of `HttpConf::upstreams`.
    pub fn upstream(&self, i: usize) -> Option<&Arc<UpstreamStats>> {
        self.upstreams.get(i)
    }

    /// The `check_status` page for a request with query string `query`: its
    /// `Content-Type` and body (`default` is the directive's format).
    pub fn status_page(
        &self,
        config: &Config,
        query: Option<&str>,
        default: StatusFormat,
    ) -> (&'static str, String) {
        let format = status::format_from_query(query, default);
        (
            status::content_type(format),
            status::render(&self.snapshot(config, Instant::now()), format),
        )
    }

    /// A copy of every figure at `now`, for the status page. `config` must be the
    /// configuration the table was made for (peers are matched by index). A peer
    /// is `down` when configured so, failed by its active checks, or kept out by
    /// some worker's passive accounting.
    pub fn snapshot(&self, config: &Config, now: Instant) -> StatusSnapshot {
        let upstreams = config
            .http
            .upstreams
            .iter()
            .zip(self.upstreams.iter())
            .enumerate()
            .map(|(u, (conf, stats))| UpstreamStatus {
                name: conf.name.clone(),
                check: conf.check.as_ref().map(|c| check_label(config, u, c)),
                check_port: conf.check.as_ref().and_then(|c| c.port).unwrap_or(0),
                sticky: stats.sticky.counts(),
                peers: conf
                    .peers
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let figures = stats.peer(i);
                        let (rise, fall) = figures.map_or((0, 0), PeerStats::counters);
                        let check_down = figures.is_some_and(PeerStats::is_check_down);
                        PeerStatus {
                            name: p.name.clone(),
                            sid: conf
                                .sticky
                                .as_ref()
                                .map(|s| sid::sid_for(s, &p.name, p.id.as_deref())),
                            state: PeerState::of(
                                p.down || check_down || stats.passive_down(i, now),
                                p.drain,
                            ),
                            rise,
                            fall,
                            active: figures.map_or(0, PeerStats::active),
                            requests: figures.map_or(0, PeerStats::requests),
                            sticky: figures
                                .map_or_else(StickyCounts::default, |f| f.sticky_counts()),
                        }
                    })
                    .collect(),
            })
            .collect();
        StatusSnapshot { upstreams }
    }
}

/// The check type the status page shows: Tengine's name, but `https` for
/// `type=http` checks that speak TLS (an upstream only `proxy_pass https://`
/// names, see [`crate::upstream::check::scheme`]), which are no plain HTTP.
fn check_label(config: &Config, u: usize, check: &CheckConf) -> &'static str {
    match scheme(config, u) {
        Scheme::Tls(_) | Scheme::TlsByHost(..) if check.follows_peer_scheme() => "https",
        _ => check.kind.as_str(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    fn config(src: &str) -> Config {
        load_str(src, Path::new("/t.conf")).unwrap().0
    }

    #[test]
    fn a_reload_keeps_the_figures_of_unchanged_upstreams_only() {
        let text = |b_port: u16| {
            format!(
                "events {{}} http {{ upstream a {{ server 127.0.0.1:9001; }} \
                 upstream b {{ server 127.0.0.1:{b_port}; }} \
                 server {{ listen 127.0.0.1:8080; location / {{ proxy_pass http://a; }} \
                 location /b {{ proxy_pass http://b; }} }} }}"
            )
        };
        let old = config(&text(9002));
        let table = HealthTable::new(&old);
        let same = config(&text(9002));
        let changed = config(&text(9003));
        let kept = HealthTable::reusing(&same, &old, &table);
        let moved = HealthTable::reusing(&changed, &old, &table);
        let ptr = |t: &HealthTable, i| Arc::as_ptr(t.upstream(i).unwrap());
        assert_eq!(ptr(&kept, 0), ptr(&table, 0));
        assert_eq!(ptr(&kept, 1), ptr(&table, 1));
        assert_eq!(ptr(&moved, 0), ptr(&table, 0), "upstream a is unchanged");
        assert_ne!(
            ptr(&moved, 1),
            ptr(&table, 1),
            "upstream b changed its peer"
        );
    }

    #[test]
    fn a_changed_upstream_keeps_the_figures_of_the_peers_it_still_has() {
        let text = |servers: &str| {
            config(&format!(
                "http {{ upstream u {{ {servers} session_sticky; check default_down=true; }} }}"
            ))
        };
        let old = text("server 127.0.0.1:1; server 127.0.0.1:2;");
        let table = HealthTable::new(&old);
        let stats = table.upstream(0).unwrap();
        stats.peer(1).unwrap().publish_check(false, 4, 0);
        stats.note_outcome(1, Outcome::Hit);
        // Peer 1 stays (now first), peer 2 is new, peer 0 is gone; a peer whose
        // drain flag changed starts afresh.
        let new = text("server 127.0.0.1:2; server 127.0.0.1:3; server 127.0.0.1:1 drain;");
        let next = HealthTable::reusing(&new, &old, &table);
        let up = next.upstream(0).unwrap();
        let kept = up.peer(0).unwrap();
        assert!(
            std::ptr::eq(kept, stats.peer(1).unwrap()),
            "the same object"
        );
        assert_eq!((kept.is_check_down(), kept.counters()), (false, (4, 0)));
        assert!(
            up.peer(1).unwrap().is_check_down(),
            "a new peer: default_down"
        );
        assert!(up.peer(2).unwrap().is_check_down(), "drain changed: afresh");
        let snap = next.snapshot(&new, Instant::now());
        assert_eq!(snap.upstreams[0].peers[0].sticky.hit, 1);
        assert_eq!(
            snap.upstreams[0].sticky.hit, 1,
            "the upstream's counts carry over"
        );
    }

    #[test]
    fn default_down_starts_every_peer_down_only_with_a_check() {
        let c = config(
            "http { upstream a { server 127.0.0.1:1; server 127.0.0.1:2; check; }
                    upstream b { server 127.0.0.1:1; check default_down=false; }
                    upstream c { server 127.0.0.1:1; } }",
        );
        let t = HealthTable::new(&c);
        let ups = |u: usize, i: usize| t.upstream(u).unwrap().check_up(i);
        assert_eq!((ups(0, 0), ups(0, 1)), (false, false));
        assert!(ups(1, 0) && ups(2, 0));
        assert!(!ups(2, 5), "an unknown peer is not up");
        let free = HealthTable::unchecked(&c);
        assert!(
            free.upstream(0).unwrap().check_up(1),
            "no checker, nothing down"
        );
    }

    #[test]
    fn the_status_page_says_https_for_http_checks_that_speak_tls() {
        // (check, the proxy_pass lines naming the upstream, the type shown)
        let cases = [
            ("check type=http;", "proxy_pass https://u;", Some("https")),
            (
                "check type=http port=8080;",
                "proxy_pass https://u;",
                Some("http"),
            ),
            ("check type=http;", "proxy_pass http://u;", Some("http")),
            (
                "check type=http;",
                "proxy_pass https://u; location /b { proxy_pass http://u; }",
                Some("http"),
            ),
            ("check type=tcp;", "proxy_pass https://u;", Some("tcp")),
            (
                "check type=ssl_hello;",
                "proxy_pass https://u;",
                Some("ssl_hello"),
            ),
            ("", "proxy_pass https://u;", None),
        ];
        for (check, pass, want) in cases {
            let c = config(&format!(
                "http {{ upstream u {{ server 127.0.0.1:9000; {check} }}
                        server {{ location / {{ {pass} }} }} }}"
            ));
            let snap = HealthTable::new(&c).snapshot(&c, Instant::now());
            assert_eq!(snap.upstreams[0].check, want, "{check} {pass}");
        }
    }

    #[test]
    fn counters_and_guards_show_in_the_snapshot() {
        let c = config(
            "http { upstream app { server 127.0.0.1:9000 id=a; server 127.0.0.1:9001 drain;
                    session_sticky hash=plain; check default_down=false; } }",
        );
        let t = HealthTable::new(&c);
        let up = t.upstream(0).unwrap();
        let g1 = up.begin(0);
        let g2 = up.begin(0);
        drop(up.begin(1));
        up.note_outcome(0, Outcome::Hit);
        up.note_outcome(0, Outcome::Hit);
        up.note_outcome(1, Outcome::Fallback);
        up.note_outcome(7, Outcome::New);
        up.peer(1).unwrap().publish_check(true, 0, 3);
        drop(g1);
        let snap = t.snapshot(&c, Instant::now());
        let peers = &snap.upstreams[0].peers;
        assert_eq!(snap.upstreams[0].check, Some("tcp"));
        assert_eq!(peers[0].sid.as_deref(), Some("a"));
        assert_eq!(peers[1].sid.as_deref(), Some("127.0.0.1:9001"));
        assert_eq!((peers[0].active, peers[0].requests), (1, 2));
        assert_eq!((peers[1].active, peers[1].requests), (0, 1));
        assert_eq!(peers[0].sticky.hit, 2);
        assert_eq!(peers[1].sticky.fallback, 1);
        let totals = snap.upstreams[0].sticky;
        assert_eq!((totals.hit, totals.fallback, totals.new), (2, 1, 1));
        assert_eq!(peers[0].state, PeerState::Up);
        assert_eq!(peers[1].state, PeerState::Down);
        assert_eq!((peers[1].rise, peers[1].fall), (0, 3));
        assert!(!up.pinnable(1) && !up.selectable(1), "checked down");
        up.peer(1).unwrap().publish_check(false, 2, 0);
        assert_eq!(
            t.snapshot(&c, Instant::now()).upstreams[0].peers[1].state,
            PeerState::Drain
        );
        assert!(up.pinnable(1), "a draining peer keeps its sessions");
        assert!(!up.selectable(1), "but takes no new ones");
        assert!(up.pinnable(0) && up.selectable(0));
        let (ctype, body) = t.status_page(&c, Some("format=csv"), StatusFormat::Html);
        assert_eq!(ctype, "text/plain; charset=utf-8");
        assert!(
            body.starts_with("0,app,127.0.0.1:9000,up,0,0,tcp,0,a,1,2,0,2,0,0,0\n"),
            "{body}"
        );
        drop(g2);
        assert_eq!(up.peer(0).unwrap().active(), 0);
        // Passive failures show until they expire or the peer answers.
        let now = Instant::now();
        up.note_passive_down(0, now + Duration::from_secs(10));
        up.note_passive_down(0, now + Duration::from_secs(5));
        assert!(
            up.passive_down(0, now + Duration::from_secs(9)),
            "the later end wins"
        );
        assert!(!up.passive_down(0, now + Duration::from_secs(11)));
        assert_eq!(
            t.snapshot(&c, now).upstreams[0].peers[0].state,
            PeerState::Down
        );
        up.note_passive_up(0);
        assert!(!up.passive_down(0, now));
        assert_eq!(
            t.snapshot(&c, now).upstreams[0].peers[0].state,
            PeerState::Up
        );
    }
}
