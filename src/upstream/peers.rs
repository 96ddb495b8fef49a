//! The run-time peer set of one upstream in one worker: balancer state
//! (`balance::RoundRobin`), passive health (`health::Health`), the keep-alive
//! [`UpstreamPool`] and the sticky sid index. The forwarding pipeline asks it to
//! choose a peer, to check a connection out, and tells it how each try went.
//!
//! Owned by one worker thread: interior mutability with `RefCell`, no locks.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::config::UpstreamConf;
use crate::sticky::{SidIndex, Sticky};
use crate::upstream::balance::{RoundRobin, Tried};
use crate::upstream::health::Health;
use crate::upstream::pool::{Conn, UpstreamPool};

/// One upstream's peers, as seen by one worker.
pub struct PeerSet<B> {
    conf: Arc<UpstreamConf>,
    sticky: Option<Sticky>,
    balancer: RefCell<RoundRobin>,
    health: RefCell<Health>,
    pool: Rc<RefCell<UpstreamPool<B>>>,
}

impl<B> PeerSet<B> {
    pub fn new(conf: Arc<UpstreamConf>) -> Self {
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
        );
        PeerSet {
            balancer: RefCell::new(RoundRobin::new(&conf.peers)),
            health: RefCell::new(Health::new(&conf)),
            pool: Rc::new(RefCell::new(pool)),
            sticky,
            conf,
        }
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

    /// Whether peer `i` may serve a request now (not `down`, not failed).
    pub fn is_up(&self, i: usize, now: Instant) -> bool {
        self.conf.peers.get(i).is_some_and(|p| !p.down) && self.health.borrow().is_available(i, now)
    }

    /// Round robin among the up peers, skipping `exclude` and the peers in `tried`.
    pub fn choose(&self, exclude: Option<usize>, tried: &Tried, now: Instant) -> Option<usize> {
        let health = self.health.borrow();
        let picked = self.balancer.borrow_mut().pick(
            &self.conf.peers,
            |i| Some(i) != exclude && health.is_available(i, now),
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
        self.health.borrow_mut().note_failure(i, now);
        self.balancer.borrow_mut().note_failure(i, max_fails);
    }

    /// Peer `i` answered.
    pub fn succeeded(&self, i: usize) {
        self.health.borrow_mut().note_success(i);
    }

    /// The address of peer `i`.
    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.conf.peers.get(i).map(|p| p.addr)
    }

    /// The name of peer `i` (`IP:PORT`).
    pub fn name(&self, i: usize) -> Option<&str> {
        self.conf.peers.get(i).map(|p| p.name.as_str())
    }

    /// An idle keep-alive connection to peer `i`, if one is cached.
    pub fn checkout(&self, i: usize, now: Instant) -> Option<Conn<B>> {
        self.pool.borrow_mut().checkout(i, now)
    }

    /// The pool, for response bodies that return their connection when they end.
    pub fn pool(&self) -> Rc<RefCell<UpstreamPool<B>>> {
        Rc::clone(&self.pool)
    }
}
