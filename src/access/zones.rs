//! The state shared by every worker thread of one running configuration: the
//! `limit_req_zone` and `limit_conn_zone` tables and the `stub_status`
//! counters ([`AccessState`]). A reload keeps the tables whose definition did
//! not change and always keeps the counters, as nginx keeps its shared memory.
//!
//! Each table is a mutex over a map from key to state, held for one lookup;
//! the bucket arithmetic is [`crate::access::limit_req`]. A table keeps about
//! one key per 64 bytes of its zone size; when full it first forgets the keys
//! that no longer matter (drained buckets, keys without connections), then the
//! key idle the longest (nginx's LRU), and a `limit_conn` table that is full of
//! live keys refuses, as nginx does when its zone is out of memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::access::conf::{LimitConn, LimitReq, Limits, ZoneConf, ZoneKind};
use crate::access::limit_req::{delay_ms, Bucket, Lookup};
use crate::config::{Config, Template};

/// Keys longer than this are not limited (nginx: 65535 bytes).
const MAX_KEY: usize = 65535;

enum Table {
    Req(Mutex<HashMap<Vec<u8>, Bucket>>),
    Conn(Mutex<HashMap<Vec<u8>, u32>>),
}

/// One zone: its definition and its table.
pub struct Zone {
    conf: ZoneConf,
    table: Table,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-updated in a way
    // that matters here: keep serving with what is in it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Zone {
    fn new(conf: &ZoneConf) -> Zone {
        Zone {
            conf: conf.clone(),
            table: match conf.kind {
                ZoneKind::Req { .. } => Table::Req(Mutex::new(HashMap::new())),
                ZoneKind::Conn => Table::Conn(Mutex::new(HashMap::new())),
            },
        }
    }

    pub fn name(&self) -> &str {
        &self.conf.name
    }

    pub fn key(&self) -> &Template {
        &self.conf.key
    }

    fn rate(&self) -> u64 {
        match self.conf.kind {
            ZoneKind::Req { rate } => rate,
            ZoneKind::Conn => 0,
        }
    }
}

/// The `stub_status` figures.
#[derive(Debug, Default)]
pub struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    requests: AtomicU64,
    writing: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub active: u64,
    pub accepted: u64,
    pub handled: u64,
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

impl Counters {
    /// A client connection was accepted; it counts as active until the guard
    /// is dropped.
    pub fn connection(self: &Arc<Self>) -> CountGuard {
        self.accepted.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
        CountGuard {
            counters: Arc::clone(self),
            which: Which::Active,
        }
    }

    /// A request arrived; it counts as "writing" until the guard is dropped.
    pub fn request(self: &Arc<Self>) -> CountGuard {
        self.requests.fetch_add(1, Relaxed);
        self.writing.fetch_add(1, Relaxed);
        CountGuard {
            counters: Arc::clone(self),
            which: Which::Writing,
        }
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let active = self.active.load(Relaxed);
        let writing = self.writing.load(Relaxed);
        let accepted = self.accepted.load(Relaxed);
        CounterSnapshot {
            active,
            accepted,
            handled: accepted,
            requests: self.requests.load(Relaxed),
            reading: 0,
            writing,
            waiting: active.saturating_sub(writing),
        }
    }
}

#[derive(Debug)]
enum Which {
    Active,
    Writing,
}

/// Holds one count of [`Counters`] until dropped.
#[derive(Debug)]
pub struct CountGuard {
    counters: Arc<Counters>,
    which: Which,
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        let c = match self.which {
            Which::Active => &self.counters.active,
            Which::Writing => &self.counters.writing,
        };
        c.fetch_sub(1, Relaxed);
    }
}

/// One connection counted in a `limit_conn` zone until dropped.
pub struct ConnGuard {
    zone: Arc<Zone>,
    key: Vec<u8>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Table::Conn(m) = &self.zone.table {
            let mut map = lock(m);
            if let Some(n) = map.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&self.key);
                }
            }
        }
    }
}

/// What `limit_req` decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReqVerdict {
    /// No limit applied: every key was empty (or too long). nginx does not
    /// count the request as checked then.
    Declined,
    /// Go on after this delay (zero: at once).
    Pass(Duration),
    /// Refused by zone `zone` with this excess (1/1000 requests).
    Busy { zone: String, excess: u64 },
}

/// What `limit_conn` decided for a request.
pub enum ConnVerdict {
    /// No limit applied: every key was empty (or too long).
    Declined,
    /// Counted: hold the guards until the request ends.
    Pass(Vec<ConnGuard>),
    /// Refused by zone `zone`.
    Busy { zone: String },
}

/// Everything shared by the workers of one running configuration.
pub struct AccessState {
    /// Indexed like `HttpConf::limit_zones`.
    zones: Box<[Arc<Zone>]>,
    counters: Arc<Counters>,
    epoch: Instant,
}

impl AccessState {
    /// Empty tables for `config`.
    pub fn new(config: &Config) -> AccessState {
        AccessState {
            zones: config
                .http
                .limit_zones
                .iter()
                .map(|z| Arc::new(Zone::new(z)))
                .collect(),
            counters: Arc::new(Counters::default()),
            epoch: Instant::now(),
        }
    }

    /// Tables for `config` keeping those of `previous` whose zone has the same
    /// definition, and the same counters.
    pub fn reusing(config: &Config, previous: &AccessState) -> AccessState {
        AccessState {
            zones: config
                .http
                .limit_zones
                .iter()
                .map(|z| {
                    previous
                        .zones
                        .iter()
                        .find(|old| old.conf == *z)
                        .map_or_else(|| Arc::new(Zone::new(z)), Arc::clone)
                })
                .collect(),
            counters: Arc::clone(&previous.counters),
            epoch: previous.epoch,
        }
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Zone `i`.
    pub fn zone(&self, i: usize) -> Option<&Arc<Zone>> {
        self.zones.get(i)
    }

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// nginx's `limit_req` handler for one request: every limit in order,
    /// `key(template)` giving its key (an empty key is not limited).
    pub fn limit_req(
        &self,
        limits: &Limits<LimitReq>,
        key: impl Fn(&Template) -> Vec<u8>,
        now: Instant,
    ) -> ReqVerdict {
        let now = self.ms(now);
        // Limits that passed without being accounted yet (all but the last).
        let mut pending: Vec<(&Arc<Zone>, Vec<u8>, u64)> = Vec::new();
        let mut last: Option<(u64, u64, u64)> = None; // (excess, delay, rate)
        let count = limits.list.len();
        let mut any = false;
        for (n, limit) in limits.list.iter().enumerate() {
            let Some(zone) = self.zones.get(limit.zone) else {
                continue;
            };
            let Table::Req(m) = &zone.table else { continue };
            let k = key(&zone.conf.key);
            if k.is_empty() || k.len() > MAX_KEY {
                continue;
            }
            any = true;
            let rate = zone.rate();
            let account = n + 1 == count;
            let mut map = lock(m);
            // A new key's bucket starts empty whether or not this limit
            // accounts at once: nginx's new node has `last = 0` when it is
            // accounted later, which drains what the account adds.
            let (lookup, fresh) = match map.get_mut(&k) {
                Some(b) => (b.lookup(rate, limit.burst, now, account), false),
                None => {
                    make_room_req(&mut map, zone.conf.capacity(), rate, now);
                    map.insert(k.clone(), Bucket::new(now));
                    (Lookup::Pass { excess: 0 }, true)
                }
            };
            drop(map);
            match lookup {
                Lookup::Busy { excess } if !limits.dry_run => {
                    return ReqVerdict::Busy {
                        zone: zone.conf.name.clone(),
                        excess,
                    };
                }
                Lookup::Busy { .. } => {}
                Lookup::Pass { excess } => {
                    if account {
                        last = Some((excess, limit.delay, rate));
                    } else if !fresh {
                        pending.push((zone, k, limit.delay));
                    }
                }
            }
        }
        if !any {
            return ReqVerdict::Declined;
        }
        if limits.dry_run {
            return ReqVerdict::Pass(Duration::ZERO);
        }
        let mut max = last.map_or(0, |(excess, delay, rate)| delay_ms(excess, delay, rate));
        for (zone, k, delay) in pending {
            let Table::Req(m) = &zone.table else { continue };
            let rate = zone.rate();
            let excess = lock(m).get_mut(&k).map(|b| b.account(rate, now));
            if let Some(excess) = excess {
                max = max.max(delay_ms(excess, delay, rate));
            }
        }
        ReqVerdict::Pass(Duration::from_millis(max))
    }

    /// nginx's `limit_conn` handler: counts the request in every zone, or
    /// refuses it at the first zone over its number.
    pub fn limit_conn(
        &self,
        limits: &Limits<LimitConn>,
        key: impl Fn(&Template) -> Vec<u8>,
    ) -> ConnVerdict {
        let mut guards = Vec::new();
        let mut any = false;
        for limit in &limits.list {
            let Some(zone) = self.zones.get(limit.zone) else {
                continue;
            };
            let Table::Conn(m) = &zone.table else {
                continue;
            };
            let k = key(&zone.conf.key);
            if k.is_empty() || k.len() > MAX_KEY {
                continue;
            }
            any = true;
            let mut map = lock(m);
            let full = !map.contains_key(&k) && map.len() >= zone.conf.capacity();
            let n = map.get(&k).copied().unwrap_or(0);
            if full || n >= limit.max {
                drop(map);
                if limits.dry_run {
                    continue;
                }
                return ConnVerdict::Busy {
                    zone: zone.conf.name.clone(),
                };
            }
            map.insert(k.clone(), n + 1);
            drop(map);
            guards.push(ConnGuard {
                zone: Arc::clone(zone),
                key: k,
            });
        }
        if !any {
            return ConnVerdict::Declined;
        }
        ConnVerdict::Pass(guards)
    }
}

/// Makes room for one more key: forgets drained buckets, then the oldest.
fn make_room_req(map: &mut HashMap<Vec<u8>, Bucket>, capacity: usize, rate: u64, now: u64) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, b| !b.drained(rate, now));
    while map.len() >= capacity {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, b)| b.last)
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    fn state(zones: &str) -> (Config, AccessState) {
        let c = load_str(
            &format!("http {{ {zones} server {{ }} }}"),
            Path::new("/t.conf"),
        )
        .unwrap()
        .0;
        let s = AccessState::new(&c);
        (c, s)
    }

    fn req_limits(list: &[(usize, u64, u64)]) -> Limits<LimitReq> {
        Limits {
            list: list
                .iter()
                .map(|&(zone, burst, delay)| LimitReq { zone, burst, delay })
                .collect(),
            status: 503,
            log_level: crate::config::LogLevel::Error,
            dry_run: false,
        }
    }

    /// Zones `a` and `b` keyed by the client, at these rates.
    fn two_zones(rate_a: &str, rate_b: &str) -> AccessState {
        state(&format!(
            "limit_req_zone $remote_addr zone=a:1m rate={rate_a}; \
             limit_req_zone $remote_addr zone=b:1m rate={rate_b};"
        ))
        .1
    }

    #[test]
    fn two_limits_account_like_nginx() {
        let s = two_zones("1r/s", "2r/s");
        let t0 = s.epoch;
        let limits = req_limits(&[(0, 5000, u64::MAX), (1, 5000, 0)]);
        let key = |_: &Template| b"k".to_vec();
        // First request: both keys new, both buckets stay empty (nginx's new
        // node of a limit accounted later has `last = 0`: drained; measured
        // against nginx 1.22, which lets burst + 1 requests through).
        assert_eq!(
            s.limit_req(&limits, key, t0),
            ReqVerdict::Pass(Duration::ZERO)
        );
        // Second at once: b's excess 1000 at 2r/s -> 500 ms delay.
        assert_eq!(
            s.limit_req(&limits, key, t0),
            ReqVerdict::Pass(Duration::from_millis(500))
        );
        // a: excess 1000 after the second, 2000 .. 5000, then over burst 5.
        for _ in 0..4 {
            assert!(matches!(s.limit_req(&limits, key, t0), ReqVerdict::Pass(_)));
        }
        assert_eq!(
            s.limit_req(&limits, key, t0),
            ReqVerdict::Busy {
                zone: "a".into(),
                excess: 6000
            }
        );
        assert_eq!(
            s.limit_req(&limits, |_: &Template| Vec::new(), t0),
            ReqVerdict::Declined,
            "an empty key is not limited"
        );
    }

    #[test]
    fn an_earlier_limit_that_delays_delays_the_request() {
        // `limit_req zone=a burst=2; limit_req zone=b burst=10 nodelay;`:
        // a's excess delays the request although b accounts it.
        let s = two_zones("1r/s", "100r/s");
        let t0 = s.epoch;
        let limits = req_limits(&[(0, 2000, 0), (1, 10_000, u64::MAX)]);
        let key = |_: &Template| b"k".to_vec();
        let verdicts: Vec<ReqVerdict> = (0..3).map(|_| s.limit_req(&limits, key, t0)).collect();
        assert_eq!(
            verdicts,
            [
                ReqVerdict::Pass(Duration::ZERO),
                ReqVerdict::Pass(Duration::from_millis(1000)),
                ReqVerdict::Pass(Duration::from_millis(2000)),
            ]
        );
    }

    #[test]
    fn conn_limits_count_until_the_guards_drop_and_tables_stay_bounded() {
        let (c, _) = state("limit_conn_zone $remote_addr zone=c:32k;");
        let mut small = c.http.limit_zones[0].clone();
        small.size = 128;
        let s = AccessState {
            zones: vec![Arc::new(Zone::new(&small))].into(),
            counters: Arc::default(),
            epoch: Instant::now(),
        };
        let limits = Limits {
            list: vec![LimitConn { zone: 0, max: 2 }],
            status: 503,
            log_level: crate::config::LogLevel::Error,
            dry_run: false,
        };
        let k = |name: &'static [u8]| move |_: &Template| name.to_vec();
        let ConnVerdict::Pass(g1) = s.limit_conn(&limits, k(b"x")) else {
            panic!()
        };
        let ConnVerdict::Pass(g2) = s.limit_conn(&limits, k(b"x")) else {
            panic!()
        };
        assert!(matches!(
            s.limit_conn(&limits, k(b"x")),
            ConnVerdict::Busy { .. }
        ));
        // 128 bytes hold two keys: a third key is refused while both are live.
        let ConnVerdict::Pass(g3) = s.limit_conn(&limits, k(b"y")) else {
            panic!()
        };
        assert!(matches!(
            s.limit_conn(&limits, k(b"z")),
            ConnVerdict::Busy { .. }
        ));
        drop(g1);
        drop(g3);
        assert!(matches!(
            s.limit_conn(&limits, k(b"z")),
            ConnVerdict::Pass(_)
        ));
        drop(g2);
        let ConnVerdict::Pass(again) = s.limit_conn(&limits, k(b"x")) else {
            panic!()
        };
        assert_eq!(again.len(), 1);
        assert!(
            matches!(
                s.limit_conn(&limits, |_: &Template| Vec::new()),
                ConnVerdict::Declined
            ),
            "an empty key is not counted"
        );
    }

    #[test]
    fn req_tables_forget_the_oldest_key_when_full() {
        let mut map = HashMap::new();
        map.insert(
            b"old".to_vec(),
            Bucket {
                excess: 5000,
                last: 10,
            },
        );
        map.insert(
            b"new".to_vec(),
            Bucket {
                excess: 5000,
                last: 20,
            },
        );
        make_room_req(&mut map, 2, 1000, 30);
        assert!(map.contains_key(&b"new"[..]) && !map.contains_key(&b"old"[..]));
    }

    #[test]
    fn counters_and_reload() {
        let (c, s) = state("limit_conn_zone $remote_addr zone=c:1m;");
        let conn = s.counters().connection();
        let req = s.counters().request();
        let snap = s.counters().snapshot();
        assert_eq!(
            (
                snap.active,
                snap.accepted,
                snap.handled,
                snap.requests,
                snap.writing,
                snap.waiting
            ),
            (1, 1, 1, 1, 1, 0)
        );
        drop(req);
        let kept = AccessState::reusing(&c, &s);
        assert!(Arc::ptr_eq(kept.counters(), s.counters()));
        assert!(Arc::ptr_eq(kept.zone(0).unwrap(), s.zone(0).unwrap()));
        assert_eq!(kept.counters().snapshot().waiting, 1);
        drop(conn);
        assert_eq!(kept.counters().snapshot().active, 0);
    }
}
