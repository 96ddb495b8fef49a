//! Keep-alive connections to the backends, one pool per worker thread.
//!
//! A pool is a capped stack of idle `hyper::client::conn::http1::SendRequest`
//! handles per peer (`keepalive N`). A handle is checked out for one request and
//! checked back in by the response body when it ends ([`crate::proxy::forward`]);
//! a response dropped half-read closes its connection instead. Idle handles older
//! than the upstream `keepalive_timeout`, closed by the backend, or past
//! `keepalive_requests` are dropped. No task is spawned per request: each
//! connection has the one task hyper needs to drive it, spawned at connect time.
//!
//! The pool belongs to one worker (a current-thread runtime) and is used through
//! `Rc<RefCell<..>>`: no locks or atomics on the request path.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::body::Body;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a new backend connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// `proxy_connect_timeout` expired.
    Timeout,
    /// Refused, unreachable, reset, or the HTTP handshake failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => write!(f, "upstream timed out while connecting"),
            ConnectError::Io(e) => write!(f, "connect() to upstream failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// One backend connection: the handle to send requests on, and how many it has
/// carried.
pub struct Conn<B> {
    pub sender: SendRequest<B>,
    /// Requests sent on this connection so far (including the current one).
    pub requests: u64,
    /// True when this connection came out of the pool (it may have been closed by
    /// the backend meanwhile, so a failure on it is worth one transparent retry).
    pub reused: bool,
}

struct Idle<B> {
    sender: SendRequest<B>,
    requests: u64,
    since: Instant,
}

/// Idle connections of every peer of one upstream.
pub struct UpstreamPool<B> {
    peers: Vec<Vec<Idle<B>>>,
    /// `keepalive N`; 0 = never keep a connection.
    cap: usize,
    idle_timeout: Duration,
    max_requests: u64,
}

impl<B> UpstreamPool<B> {
    /// A pool for `peers` peers keeping at most `cap` idle connections per peer.
    pub fn new(peers: usize, cap: usize, idle_timeout: Duration, max_requests: u64) -> Self {
        UpstreamPool {
            peers: (0..peers).map(|_| Vec::new()).collect(),
            cap,
            idle_timeout,
            max_requests,
        }
    }

    /// Takes the most recently used live idle connection to `peer`, if any.
    /// Stale ones (closed, idle too long) met on the way are dropped.
    pub fn checkout(&mut self, peer: usize, now: Instant) -> Option<Conn<B>> {
        let stack = self.peers.get_mut(peer)?;
        while let Some(idle) = stack.pop() {
            if idle.sender.is_closed() || now.duration_since(idle.since) > self.idle_timeout {
                continue;
            }
            return Some(Conn {
                sender: idle.sender,
                requests: idle.requests,
                reused: true,
            });
        }
        None
    }

    /// Returns a connection whose last response has been read to the end. It is
    /// kept unless the pool is full, the connection is closed, or it has served
    /// `keepalive_requests` requests.
    pub fn checkin(&mut self, peer: usize, conn: Conn<B>, now: Instant) {
        if self.cap == 0 || conn.requests >= self.max_requests || conn.sender.is_closed() {
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
            sender: conn.sender,
            requests: conn.requests,
            since: now,
        });
    }

    /// Number of idle connections kept for `peer` (for tests and diagnostics).
    pub fn idle(&self, peer: usize) -> usize {
        self.peers.get(peer).map_or(0, Vec::len)
    }
}

/// Opens a new HTTP/1.1 connection to `addr` within `timeout` and spawns its
/// driver task on the current worker (`spawn_local`: must run inside a LocalSet).
pub async fn connect<B>(addr: SocketAddr, timeout: Duration) -> Result<Conn<B>, ConnectError>
where
    B: Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let attempt = async {
        let stream = TcpStream::connect(addr).await.map_err(ConnectError::Io)?;
        // Small requests and responses: do not let Nagle hold the last segment.
        stream.set_nodelay(true).map_err(ConnectError::Io)?;
        Builder::new()
            .writev(false)
            .handshake::<_, B>(TokioIo::new(stream))
            .await
            .map_err(|e| ConnectError::Io(std::io::Error::other(e)))
    };
    let (sender, conn) = if timeout.is_zero() {
        attempt.await?
    } else {
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| ConnectError::Timeout)??
    };
    tokio::task::spawn_local(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("upstream connection ended: {e}");
        }
    });
    Ok(Conn {
        sender,
        requests: 0,
        reused: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::Empty;

    type B = Empty<bytes::Bytes>;

    async fn live_conn() -> (Conn<B>, tokio::net::TcpListener) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conn = connect::<B>(addr, Duration::from_secs(5)).await.unwrap();
        (conn, listener)
    }

    fn run_local<F: std::future::Future<Output = ()>>(f: F) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f);
    }

    #[test]
    fn checked_in_connection_is_checked_out_again() {
        run_local(async {
            let (conn, _l) = live_conn().await;
            let mut pool = UpstreamPool::new(2, 4, Duration::from_secs(60), 100);
            let now = Instant::now();
            pool.checkin(1, conn, now);
            assert_eq!(pool.idle(1), 1);
            assert!(pool.checkout(0, now).is_none());
            let back = pool.checkout(1, now).unwrap();
            assert!(back.reused);
            assert_eq!(pool.idle(1), 0);
        });
    }

    #[test]
    fn pool_keeps_at_most_cap_connections() {
        run_local(async {
            let mut pool = UpstreamPool::new(1, 2, Duration::from_secs(60), 100);
            let now = Instant::now();
            let mut listeners = Vec::new();
            for _ in 0..3 {
                let (conn, l) = live_conn().await;
                listeners.push(l);
                pool.checkin(0, conn, now);
            }
            assert_eq!(pool.idle(0), 2);
        });
    }

    #[test]
    fn zero_cap_keeps_nothing_and_request_limit_is_honoured() {
        run_local(async {
            let now = Instant::now();
            let mut none = UpstreamPool::new(1, 0, Duration::from_secs(60), 100);
            let (conn, _l) = live_conn().await;
            none.checkin(0, conn, now);
            assert_eq!(none.idle(0), 0);

            let mut limited = UpstreamPool::new(1, 4, Duration::from_secs(60), 3);
            let (mut conn, _l2) = live_conn().await;
            conn.requests = 3;
            limited.checkin(0, conn, now);
            assert_eq!(limited.idle(0), 0);
        });
    }

    #[test]
    fn idle_connection_past_keepalive_timeout_is_dropped() {
        run_local(async {
            let mut pool = UpstreamPool::new(1, 4, Duration::from_secs(1), 100);
            let (conn, _l) = live_conn().await;
            let then = Instant::now();
            pool.checkin(0, conn, then);
            assert!(pool.checkout(0, then + Duration::from_secs(2)).is_none());
            assert_eq!(pool.idle(0), 0);
        });
    }

    #[test]
    fn refused_connection_is_an_io_error() {
        run_local(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            drop(listener);
            match connect::<B>(addr, Duration::from_secs(5)).await {
                Err(ConnectError::Io(_)) => {}
                other => panic!("expected refused, got {:?}", other.map(|c| c.requests)),
            }
        });
    }
}
