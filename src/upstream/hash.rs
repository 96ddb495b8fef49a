//! nginx's hashing balancers, pure: `ip_hash` (`ngx_http_upstream_ip_hash`),
//! `hash KEY` (`ngx_http_upstream_hash`, Cache::Memcached compatible) and
//! `hash KEY consistent` (ketama: 160 points per weight unit per server).
//!
//! Each function walks nginx's candidate sequence from the start and returns
//! the first candidate that `eligible` accepts (not down, not failed, not at
//! `max_conns`, not tried for this request); after 20 rejected candidates it
//! returns `None` and the caller falls back to round robin, as nginx does. A
//! retry walks the same sequence again and so lands where nginx's continued
//! walk lands. Only primary peers take part (nginx refuses `backup` with these
//! methods when the method comes first).

use std::net::IpAddr;

use crate::config::PeerConf;

/// nginx gives up hashing after this many rejected candidates.
const MAX_TRIES: u32 = 20;

/// The primary peer that weight position `w` (< total weight) falls on.
fn by_weight(peers: &[PeerConf], mut w: u64) -> Option<usize> {
    for (i, p) in peers.iter().enumerate().filter(|(_, p)| !p.backup) {
        let weight = u64::from(p.weight.max(1));
        if w < weight {
            return Some(i);
        }
        w -= weight;
    }
    None
}

fn total_weight(peers: &[PeerConf]) -> u64 {
    peers
        .iter()
        .filter(|p| !p.backup)
        .map(|p| u64::from(p.weight.max(1)))
        .sum()
}

/// `ip_hash`: the first three octets of an IPv4 client, the whole IPv6
/// address, hashed with nginx's `hash = (hash * 113 + byte) % 6271` from 89.
pub fn ip_hash(
    peers: &[PeerConf],
    client: IpAddr,
    eligible: impl Fn(usize) -> bool,
) -> Option<usize> {
    let total = total_weight(peers);
    if total == 0 {
        return None;
    }
    let bytes: Vec<u8> = match client {
        IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            vec![x, y, z]
        }
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mut hash: u64 = 89;
    for _ in 0..=MAX_TRIES {
        for &b in &bytes {
            hash = (hash * 113 + u64::from(b)) % 6271;
        }
        let i = by_weight(peers, hash % total)?;
        if eligible(i) {
            return Some(i);
        }
    }
    None
}

/// `hash KEY`: `((crc32([REHASH] KEY) >> 16) & 0x7fff)` added up over the
/// tries (the rehash count is written in decimal before the key from the
/// second try on).
pub fn key_hash(peers: &[PeerConf], key: &[u8], eligible: impl Fn(usize) -> bool) -> Option<usize> {
    let total = total_weight(peers);
    if total == 0 || key.is_empty() {
        return None;
    }
    let mut sum: u64 = 0;
    for rehash in 0..=MAX_TRIES {
        let mut h = crc32fast::Hasher::new();
        if rehash > 0 {
            h.update(rehash.to_string().as_bytes());
        }
        h.update(key);
        sum += u64::from((h.finalize() >> 16) & 0x7fff);
        let i = by_weight(peers, sum % total)?;
        if eligible(i) {
            return Some(i);
        }
    }
    None
}

/// The ketama ring of `hash KEY consistent`: points sorted by hash, each
/// naming a server (the `server` argument as written; several peers share one
/// when a name resolved to several addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ketama {
    points: Vec<(u32, usize)>,
    /// Distinct `server` texts, indexed by the points.
    servers: Vec<String>,
}

/// nginx splits `host:port` at the last `:` followed by digits only.
fn host_port(server: &str) -> (&str, &str) {
    if server
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("unix:"))
    {
        return (server.get(5..).unwrap_or_default(), "");
    }
    match server.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (host, port),
        _ => (server, ""),
    }
}

impl Ketama {
    /// The ring of the primary peers, `weight * 160` points per peer.
    pub fn new(peers: &[PeerConf]) -> Ketama {
        let mut servers: Vec<String> = Vec::new();
        let mut points = Vec::new();
        for p in peers.iter().filter(|p| !p.backup) {
            let s = match servers.iter().position(|s| *s == p.server) {
                Some(s) => s,
                None => {
                    servers.push(p.server.clone());
                    servers.len() - 1
                }
            };
            let (host, port) = host_port(&p.server);
            let mut base = crc32fast::Hasher::new();
            base.update(host.as_bytes());
            base.update(b"\0");
            base.update(port.as_bytes());
            let mut prev: u32 = 0;
            for _ in 0..u64::from(p.weight.max(1)) * 160 {
                let mut h = base.clone();
                h.update(&prev.to_le_bytes());
                let hash = h.finalize();
                points.push((hash, s));
                prev = hash;
            }
        }
        // nginx sorts stably by hash and keeps the first of equal hashes.
        points.sort_by_key(|&(h, _)| h);
        points.dedup_by_key(|&mut (h, _)| h);
        Ketama { points, servers }
    }

    /// The first point at or after `hash` (nginx's binary search).
    fn find(&self, hash: u32) -> usize {
        self.points.partition_point(|&(h, _)| h < hash)
    }

    /// The `server` text each candidate names, in nginx's order for `key`:
    /// from the point of `crc32(key)` on, one point per try.
    pub fn candidates<'a>(&'a self, key: &[u8]) -> impl Iterator<Item = &'a str> + 'a {
        let start = self.find(crc32fast::hash(key));
        let n = self.points.len();
        (0..=MAX_TRIES as usize).filter_map(move |t| {
            let (_, s) = self.points.get((start + t) % n.max(1))?;
            self.servers.get(*s).map(String::as_str)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The peers of `upstream u { SERVERS }`.
    fn peers(servers: &str) -> Vec<PeerConf> {
        let src = format!("http {{ upstream u {{ {servers} }} }}");
        let c = crate::config::load_str(&src, std::path::Path::new("/t.conf"))
            .unwrap()
            .0;
        c.http.upstreams[0].peers.clone()
    }

    /// nginx's ip_hash written out plainly, for the differential check.
    fn reference_ip_hash(weights: &[u32], octets: &[u8], skip: &[usize]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut hash: u32 = 89;
        loop {
            for &b in octets {
                hash = (hash * 113 + u32::from(b)) % 6271;
            }
            let mut w = hash % total;
            let mut p = 0;
            while w >= weights[p] {
                w -= weights[p];
                p += 1;
            }
            if !skip.contains(&p) {
                return p;
            }
        }
    }

    #[test]
    fn ip_hash_uses_three_octets_and_follows_nginx() {
        let peers = peers("server 10.0.0.1:80; server 10.0.0.2:80 weight=2; server 10.0.0.3:80;");
        for (ip, skip) in [
            ("192.168.1.10", vec![]),
            ("192.168.1.200", vec![]),
            ("10.20.30.40", vec![]),
            ("10.20.30.40", vec![1]),
            ("172.16.5.1", vec![0, 1]),
            ("2001:db8::1", vec![]),
            ("2001:db8::2", vec![2]),
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            let bytes = match addr {
                IpAddr::V4(a) => a.octets()[..3].to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            let want = reference_ip_hash(&[1, 2, 1], &bytes, &skip);
            assert_eq!(
                ip_hash(&peers, addr, |i| !skip.contains(&i)),
                Some(want),
                "{ip}"
            );
        }
        // The last octet does not matter.
        let a = ip_hash(&peers, "198.51.100.1".parse().unwrap(), |_| true);
        let b = ip_hash(&peers, "198.51.100.254".parse().unwrap(), |_| true);
        assert_eq!(a, b);
        assert_eq!(
            ip_hash(&peers, "198.51.100.1".parse().unwrap(), |_| false),
            None
        );
    }

    #[test]
    fn key_hash_is_cache_memcached_compatible() {
        let peers = peers("server 10.0.0.1:80; server 10.0.0.2:80; server 10.0.0.3:80;");
        // First try: (crc32(key) >> 16) & 0x7fff, modulo the total weight.
        for key in ["/a", "/b", "/index.html", "user42"] {
            let h = (crc32fast::hash(key.as_bytes()) >> 16) & 0x7fff;
            assert_eq!(
                key_hash(&peers, key.as_bytes(), |_| true),
                Some((h % 3) as usize)
            );
            // Second try: crc32("1" + key) added.
            let h2 = (crc32fast::hash(format!("1{key}").as_bytes()) >> 16) & 0x7fff;
            let first = (h % 3) as usize;
            let second = ((h + h2) % 3) as usize;
            if second != first {
                assert_eq!(
                    key_hash(&peers, key.as_bytes(), |i| i != first),
                    Some(second)
                );
            }
        }
        assert_eq!(
            key_hash(&peers, b"", |_| true),
            None,
            "empty key: round robin"
        );
    }

    #[test]
    fn ketama_points_follow_nginx() {
        let peers = peers("server 127.0.0.1:8081; server 127.0.0.1:8082 weight=2;");
        let k = Ketama::new(&peers);
        assert_eq!(k.points.len(), 480);
        // The first point of a server: crc32(host "\0" port, 4 zero bytes).
        let mut first = b"127.0.0.1\08081".to_vec();
        first.extend_from_slice(&[0, 0, 0, 0]);
        let h = crc32fast::hash(&first);
        assert!(k.points.contains(&(h, 0)));
        assert!(k.points.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(host_port("backend"), ("backend", ""));
        assert_eq!(host_port("[::1]:80"), ("[::1]", "80"));
        assert_eq!(host_port("unix:/tmp/s"), ("/tmp/s", ""));
        // Placement: a key goes to the server of the first point at or after
        // crc32(key), wrapping around.
        for key in ["a", "b", "/x", "session-123"] {
            let hash = crc32fast::hash(key.as_bytes());
            let want = k
                .points
                .iter()
                .find(|(h, _)| *h >= hash)
                .unwrap_or(&k.points[0])
                .1;
            assert_eq!(
                k.candidates(key.as_bytes()).next(),
                Some(k.servers[want].as_str())
            );
        }
    }
}
