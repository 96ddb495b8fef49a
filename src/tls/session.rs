//! `ssl_session_timeout`: no session older than the timeout is resumed,
//! whether it comes from the session cache or from a ticket.
//!
//! rustls stamps each session with its creation time but checks it only for
//! the 0-RTT freshness window, never against a lifetime on the server side
//! (the ticket lifetime is only a hint sent to the client). So both paths
//! are wrapped here: each stored session and each ticket's plaintext
//! carries the time it was made (milliseconds since the Unix epoch, 8 bytes
//! big-endian, in front), and one older than the timeout is dropped on
//! `get`/`take`/`decrypt`, which makes rustls fall back to a full
//! handshake. The clock is passed in, so tests can move time.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::server::{ProducesTickets, StoresServerSessions};

/// The current time, milliseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

/// `value` stamped with `now`.
fn stamp(now: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&now.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The value behind a stamp not older than `timeout` at `now`; `None` when
/// too old, stamped in the future, or too short to hold a stamp.
fn unstamp(now: u64, timeout: Duration, stamped: &[u8]) -> Option<Vec<u8>> {
    let (time, value) = stamped.split_first_chunk::<8>()?;
    let made = u64::from_be_bytes(*time);
    let age = now.checked_sub(made)?;
    let limit = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    (age <= limit).then(|| value.to_vec())
}

/// A session store or ticketer (`T`) refusing sessions older than the
/// timeout.
pub struct Timed<T: ?Sized> {
    inner: Arc<T>,
    timeout: Duration,
    clock: Clock,
}

impl<T: ?Sized> Timed<T> {
    pub fn new(inner: Arc<T>, timeout: Duration, clock: Clock) -> Arc<Timed<T>> {
        Arc::new(Timed {
            inner,
            timeout,
            clock,
        })
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Timed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timed")
            .field("inner", &self.inner)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The session cache, forgetting sessions older than the timeout.
pub type TimedCache = Timed<dyn StoresServerSessions>;

/// Session tickets refused once older than the timeout, which is also the
/// lifetime announced to the client (as nginx's `SSL_CTX_set_timeout`).
pub type TimedTickets = Timed<dyn ProducesTickets>;

impl StoresServerSessions for TimedCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, stamp((self.clock)(), &value))
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let stamped = self.inner.get(key)?;
        let fresh = unstamp((self.clock)(), self.timeout, &stamped);
        if fresh.is_none() {
            // Expired: free its slot now rather than at eviction.
            self.inner.take(key);
        }
        fresh
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        unstamp((self.clock)(), self.timeout, &self.inner.take(key)?)
    }

    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

impl ProducesTickets for TimedTickets {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn lifetime(&self) -> u32 {
        u32::try_from(self.timeout.as_secs()).unwrap_or(u32::MAX)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.inner.encrypt(&stamp((self.clock)(), plain))
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        unstamp((self.clock)(), self.timeout, &self.inner.decrypt(cipher)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ServerSessionMemoryCache;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn test_clock() -> (Arc<AtomicU64>, Clock) {
        let now = Arc::new(AtomicU64::new(1_000_000));
        let read = Arc::clone(&now);
        (now, Arc::new(move || read.load(Ordering::SeqCst)))
    }

    #[test]
    fn stamps_expire_after_the_timeout_and_never_before() {
        let t = Duration::from_secs(5);
        type Case<'a> = (u64, &'a [u8], Option<&'a [u8]>);
        let cases: [Case<'_>; 6] = [
            (1000, &stamp(1000, b"s"), Some(b"s")),
            (6000, &stamp(1000, b"s"), Some(b"s")),
            (6001, &stamp(1000, b"s"), None),
            (999, &stamp(1000, b"s"), None),
            (1000, b"short", None),
            (1000, &stamp(1000, b""), Some(b"")),
        ];
        for (now, stamped, want) in cases {
            assert_eq!(unstamp(now, t, stamped).as_deref(), want, "{now}");
        }
    }

    #[test]
    fn the_cache_forgets_sessions_older_than_the_timeout() {
        let (now, clock) = test_clock();
        let cache = TimedCache::new(
            ServerSessionMemoryCache::new(8),
            Duration::from_secs(1),
            clock,
        );
        assert!(cache.put(b"a".to_vec(), b"A".to_vec()));
        assert!(cache.put(b"b".to_vec(), b"B".to_vec()));
        now.fetch_add(1000, Ordering::SeqCst);
        assert_eq!(cache.get(b"a").as_deref(), Some(&b"A"[..]));
        now.fetch_add(1, Ordering::SeqCst);
        assert_eq!(cache.get(b"a"), None);
        assert_eq!(cache.take(b"b"), None);
        assert!(cache.put(b"c".to_vec(), b"C".to_vec()));
        assert_eq!(cache.take(b"c").as_deref(), Some(&b"C"[..]));
        assert_eq!(cache.take(b"c"), None);
    }

    #[test]
    fn tickets_older_than_the_timeout_are_refused() {
        let (now, clock) = test_clock();
        let inner = rustls::crypto::aws_lc_rs::Ticketer::new().expect("ticketer");
        let tickets = TimedTickets::new(inner, Duration::from_secs(300), clock);
        assert_eq!(tickets.lifetime(), 300);
        let ticket = tickets.encrypt(b"session").expect("encrypt");
        now.fetch_add(300_000, Ordering::SeqCst);
        assert_eq!(tickets.decrypt(&ticket).as_deref(), Some(&b"session"[..]));
        now.fetch_add(1, Ordering::SeqCst);
        assert_eq!(tickets.decrypt(&ticket), None);
        assert_eq!(tickets.decrypt(b"garbage"), None);
    }
}
