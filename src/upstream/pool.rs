//! Keep-alive connections to the backends, one pool per worker thread.
//!
//! A pool is a capped stack of idle connections per peer (`keepalive N`), most
//! recently used on top. A connection is checked out for one request and checked
//! back in by the response body when it ends (`crate::proxy::body`); a
//! response dropped half-read closes its connection instead. Idle connections
//! older than the upstream `keepalive_timeout`, closed by the backend ([`Live`]),
//! or past `keepalive_requests` are dropped. The pool is generic over the
//! connection (`upstream::client::Transport` in the proxy) and does no I/O.
//!
//! The pool belongs to one worker (a current-thread runtime) and is used through
//! `Rc<RefCell<..>>`: no locks or atomics on the request path.

use std::time::{Duration, Instant};

/// A connection that can tell, without waiting, whether its backend closed it,
/// and what kind of connection it is (plain, or TLS with which settings): a
/// request is given only a connection of the key it asks for.
pub trait Live {
    type Key: PartialEq;
    fn is_closed(&mut self) -> bool;
    fn key(&self) -> &Self::Key;
}

/// One backend connection and how many requests it has carried.
pub struct Conn<T> {
    pub io: T,
    /// Requests sent on this connection so far (including the current one).
    pub requests: u64,
    /// True when this connection came out of the pool (it may have been closed by
    /// the backend meanwhile, so a failure on it is worth one transparent retry).
    pub reused: bool,
    /// When the connection was opened (`keepalive_time`).
    pub opened: Instant,
}

/// How worn a connection is: requests carried and when it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wear {
    pub requests: u64,
    pub opened: Instant,
}

impl<T> Conn<T> {
    /// A connection just opened.
    pub fn fresh(io: T) -> Self {
        Conn {
            io,
            requests: 0,
            reused: false,
            opened: Instant::now(),
        }
    }
}

struct Idle<T> {
    io: T,
    requests: u64,
    since: Instant,
    opened: Instant,
}

impl<T> Idle<T> {
    /// The connection, checked out again.
    fn reused(self) -> Conn<T> {
        Conn {
            io: self.io,
            requests: self.requests,
            reused: true,
            opened: self.opened,
        }
    }
}

/// Idle connections of every peer of one upstream.
pub struct UpstreamPool<T> {
    peers: Vec<Vec<Idle<T>>>,
    /// `keepalive N`; 0 = never keep a connection.
    cap: usize,
    idle_timeout: Duration,
    max_requests: u64,
    /// `keepalive_time`: a connection open this long is not kept.
    max_age: Duration,
}

impl<T> UpstreamPool<T> {
    /// A pool for `peers` peers keeping at most `cap` idle connections per peer.
    pub fn new(peers: usize, cap: usize, idle_timeout: Duration, max_requests: u64) -> Self {
        UpstreamPool {
            peers: (0..peers).map(|_| Vec::new()).collect(),
            cap,
            idle_timeout,
            max_requests,
            max_age: Duration::from_secs(3600),
        }
    }

    /// `keepalive_time`: connections open longer than `max_age` are closed
    /// instead of kept (default 1h, nginx's).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Number of idle connections kept for `peer` (for tests and diagnostics).
    pub fn idle(&self, peer: usize) -> usize {
        self.peers.get(peer).map_or(0, Vec::len)
    }
}

impl<T: Live> UpstreamPool<T> {
    /// Takes the most recently used live idle connection to `peer` of kind
    /// `key`, if any. Stale ones (closed, idle too long) met on the way are
    /// dropped; live ones of another kind stay.
    pub fn checkout(&mut self, peer: usize, key: &T::Key, now: Instant) -> Option<Conn<T>> {
        self.take(peer, Some(key), now)
    }

    /// Takes the most recently used live idle connection to `peer`, whatever
    /// its kind (a reload moving idle connections to the new peer set).
    pub fn checkout_any(&mut self, peer: usize, now: Instant) -> Option<Conn<T>> {
        self.take(peer, None, now)
    }

    fn take(&mut self, peer: usize, key: Option<&T::Key>, now: Instant) -> Option<Conn<T>> {
        let stack = self.peers.get_mut(peer)?;
        // The common case first: the most recent connection is live and of
        // the kind asked for.
        let fits = |idle: &mut Idle<T>| {
            now.saturating_duration_since(idle.since) <= self.idle_timeout
                && key.is_none_or(|k| idle.io.key() == k)
                && !idle.io.is_closed()
        };
        if stack.last_mut().is_some_and(fits) {
            return stack.pop().map(Idle::reused);
        }
        let mut i = stack.len();
        while i > 0 {
            i -= 1;
            let Some(idle) = stack.get_mut(i) else {
                break;
            };
            if now.saturating_duration_since(idle.since) > self.idle_timeout || idle.io.is_closed()
            {
                stack.remove(i);
                continue;
            }
            if key.is_some_and(|k| idle.io.key() != k) {
                continue;
            }
            return Some(stack.remove(i).reused());
        }
        None
    }

    /// Returns a connection whose last response has been read to the end. It is
    /// kept unless the pool is off or it has served `keepalive_requests`
    /// requests. Whether the backend closed it is asked at checkout, when it
    /// matters (the exchange that just ended left it open).
    pub fn checkin(&mut self, peer: usize, conn: Conn<T>, now: Instant) {
        if self.cap == 0
            || conn.requests >= self.max_requests
            || now.saturating_duration_since(conn.opened) >= self.max_age
        {
            return;
        }
        let Some(stack) = self.peers.get_mut(peer) else {
            return;
        };
        if stack.len() >= self.cap {
            // Keep the most recent ones: drop the oldest idle connection.
            stack.remove(0);
        }
        stack.push(Idle {
            io: conn.io,
            requests: conn.requests,
            since: now,
            opened: conn.opened,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A stand-in connection: `closed` says what `is_closed` answers.
    struct Fake {
        id: u32,
        closed: bool,
        /// The key: a plain or a TLS connection.
        tls: bool,
    }

    impl Live for Fake {
        type Key = bool;
        fn is_closed(&mut self) -> bool {
            self.closed
        }
        fn key(&self) -> &bool {
            &self.tls
        }
    }

    fn conn(id: u32) -> Conn<Fake> {
        Conn::fresh(Fake {
            id,
            closed: false,
            tls: false,
        })
    }

    #[test]
    fn keepalive_time_closes_connections_open_too_long() {
        let mut pool = UpstreamPool::new(1, 4, Duration::from_secs(60), 100)
            .with_max_age(Duration::from_secs(10));
        let c = conn(1);
        let opened = c.opened;
        pool.checkin(0, c, opened + Duration::from_secs(9));
        assert_eq!(pool.idle(0), 1, "younger than keepalive_time");
        let c = pool
            .checkout(0, &false, opened + Duration::from_secs(9))
            .unwrap();
        assert_eq!(c.opened, opened, "the age goes with the connection");
        pool.checkin(0, c, opened + Duration::from_secs(10));
        assert_eq!(pool.idle(0), 0, "as old as keepalive_time: closed");
    }

    #[test]
    fn checked_in_connection_is_checked_out_again() {
        let mut pool = UpstreamPool::new(2, 4, Duration::from_secs(60), 100);
        let now = Instant::now();
        pool.checkin(1, conn(7), now);
        assert_eq!(pool.idle(1), 1);
        assert!(pool.checkout(0, &false, now).is_none());
        let back = pool.checkout(1, &false, now).unwrap();
        assert!(back.reused);
        assert_eq!(back.io.id, 7);
        assert_eq!(pool.idle(1), 0);
    }

    #[test]
    fn most_recently_used_comes_out_first_and_cap_drops_the_oldest() {
        let mut pool = UpstreamPool::new(1, 2, Duration::from_secs(60), 100);
        let now = Instant::now();
        for id in 1..=3 {
            pool.checkin(0, conn(id), now);
        }
        assert_eq!(pool.idle(0), 2);
        let order: Vec<u32> =
            std::iter::from_fn(|| pool.checkout(0, &false, now).map(|c| c.io.id)).collect();
        assert_eq!(order, [3, 2]);
    }

    #[test]
    fn zero_cap_keeps_nothing_and_request_limit_is_honoured() {
        let now = Instant::now();
        let mut none = UpstreamPool::new(1, 0, Duration::from_secs(60), 100);
        none.checkin(0, conn(1), now);
        assert_eq!(none.idle(0), 0);

        let mut limited = UpstreamPool::new(1, 4, Duration::from_secs(60), 3);
        let mut c = conn(2);
        c.requests = 3;
        limited.checkin(0, c, now);
        assert_eq!(limited.idle(0), 0);
    }

    #[test]
    fn closed_connections_are_never_handed_out() {
        let now = Instant::now();
        let mut pool = UpstreamPool::new(1, 4, Duration::from_secs(60), 100);
        let closed = |id| {
            Conn::fresh(Fake {
                id,
                closed: true,
                tls: false,
            })
        };
        pool.checkin(0, closed(1), now);
        pool.checkin(0, conn(2), now);
        pool.checkin(0, closed(3), now);
        assert_eq!(pool.checkout(0, &false, now).map(|c| c.io.id), Some(2));
        assert!(pool.checkout(0, &false, now).is_none());
        assert_eq!(pool.idle(0), 0);
    }

    #[test]
    fn idle_connection_past_keepalive_timeout_is_dropped() {
        let mut pool = UpstreamPool::new(1, 4, Duration::from_secs(1), 100);
        let then = Instant::now();
        pool.checkin(0, conn(1), then);
        assert!(pool
            .checkout(0, &false, then + Duration::from_secs(2))
            .is_none());
        assert_eq!(pool.idle(0), 0);
    }

    #[test]
    fn connections_of_another_key_are_kept_but_never_handed_out() {
        let now = Instant::now();
        let mut pool = UpstreamPool::new(1, 4, Duration::from_secs(60), 100);
        let tls = |id| {
            Conn::fresh(Fake {
                id,
                closed: false,
                tls: true,
            })
        };
        pool.checkin(0, conn(1), now);
        pool.checkin(0, tls(2), now);
        pool.checkin(0, conn(3), now);
        assert_eq!(pool.checkout(0, &true, now).map(|c| c.io.id), Some(2));
        assert!(pool.checkout(0, &true, now).is_none());
        assert_eq!(pool.idle(0), 2, "the plain ones stay");
        let plain: Vec<u32> =
            std::iter::from_fn(|| pool.checkout(0, &false, now).map(|c| c.io.id)).collect();
        assert_eq!(plain, [3, 1]);
        pool.checkin(0, tls(4), now);
        assert_eq!(pool.checkout_any(0, now).map(|c| c.io.id), Some(4));
    }
}
