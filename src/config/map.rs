//! Variables computed from other variables: `map` (exact strings, host name
//! masks with `hostnames`, `~`/`~*` regexes with captures, `default`) and
//! `split_clients` (nginx's MurmurHash2 of a string placed in percentage
//! buckets). Built once at load time; [`crate::vars`] evaluates them when a
//! template reads them (nothing is cached per request, so `volatile` changes
//! nothing).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crate::access::cidr::Cidr;

use super::rewrite::Pattern;
use super::template::Template;

/// A `map` block.
#[derive(Debug)]
pub struct MapConf {
    pub source: Template,
    /// Exact keys, lowercased (nginx looks them up case-insensitively).
    pub exact: HashMap<String, Template>,
    /// `hostnames`: `*.example.com` / `.example.com` (stored `.example.com`,
    /// with whether the bare name matches too), longest first.
    pub leading: Vec<(String, bool, Template)>,
    /// `hostnames`: `mail.*` (stored `mail.`), longest first.
    pub trailing: Vec<(String, Template)>,
    /// `~` / `~*` keys in file order, with the user variables of their named
    /// groups (group index, variable index).
    pub regexes: Vec<(Pattern, Template)>,
    pub default: Option<Template>,
}

/// What a map chose for a source value.
pub struct Found<'m> {
    pub value: &'m Template,
    /// The regex match, when a regex key chose it (its groups are `$1`.. and
    /// its named groups' variables in the value).
    pub captures: Option<regex::Captures<'m>>,
    /// The named groups of that regex: group index, variable index.
    pub named: &'m [(usize, u16)],
}

impl MapConf {
    /// The value for `key` (nginx's order: exact, longest leading mask,
    /// longest trailing mask, first regex, default).
    pub fn find<'m>(&'m self, key: &'m str) -> Option<Found<'m>> {
        let found = |value| {
            Some(Found {
                value,
                captures: None,
                named: &[],
            })
        };
        if !self.exact.is_empty() || !self.leading.is_empty() || !self.trailing.is_empty() {
            let low = key.to_ascii_lowercase();
            if let Some(v) = self.exact.get(&low) {
                return found(v);
            }
            for (suffix, bare_too, v) in &self.leading {
                let bare = suffix.get(1..).unwrap_or_default();
                if low.ends_with(suffix.as_str()) || (*bare_too && low == bare) {
                    return found(v);
                }
            }
            for (prefix, v) in &self.trailing {
                if low.starts_with(prefix.as_str()) {
                    return found(v);
                }
            }
        }
        for (re, v) in &self.regexes {
            if let Some(caps) = re.re.captures(key) {
                return Some(Found {
                    value: v,
                    captures: Some(caps),
                    named: &re.named,
                });
            }
        }
        self.default.as_ref().and_then(found)
    }
}

/// A `split_clients` block.
#[derive(Debug)]
pub struct SplitClients {
    pub source: Template,
    /// (upper bound of the bucket in hash space, exclusive; `None` = `*`, the
    /// rest) and the value, in file order.
    pub parts: Vec<(Option<u32>, String)>,
}

impl SplitClients {
    /// The value for `key`: the first bucket whose bound is above the key's
    /// MurmurHash2, or `*`; empty when none.
    pub fn find(&self, key: &[u8]) -> &str {
        let hash = murmur_hash2(key);
        self.parts
            .iter()
            .find(|(bound, _)| bound.is_none_or(|b| hash < b))
            .map_or("", |(_, v)| v.as_str())
    }
}

/// nginx's `ngx_murmur_hash2` (MurmurHash2, seed 0, little-endian blocks).
pub fn murmur_hash2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    // The length is folded in as nginx does (a u32, wrapping for huge keys).
    let mut h: u32 = data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&b) = tail.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// A `map`, `split_clients` or `geo` variable.
#[derive(Debug)]
pub enum Computed {
    Map(MapConf),
    Split(SplitClients),
    Geo(GeoConf),
}

/// `geo [$address] $var { default V; NETWORK V; ... }`: the value of the
/// longest network holding the address, else the default.
#[derive(Debug)]
pub struct GeoConf {
    /// What is looked up: `None` for the client's address (`$remote_addr`,
    /// after realip); else its value read as an address (one that does not
    /// read as one gets the default).
    pub source: Option<Template>,
    pub default: String,
    /// The networks, longest prefix first.
    pub nets: Vec<(Cidr, String)>,
}

impl GeoConf {
    /// The value for `ip` (`None`: not an address).
    pub fn find(&self, ip: Option<IpAddr>) -> &str {
        ip.and_then(|ip| self.nets.iter().find(|(net, _)| net.contains(ip)))
            .map_or(self.default.as_str(), |(_, value)| value.as_str())
    }
}

/// A reference to a computed variable from a template. The slot is made when
/// the variable's name is first seen and filled when its block is built (a
/// template may name it before, as nginx allows); equal when it is the same
/// variable.
#[derive(Debug, Clone)]
pub struct ComputedRef {
    pub name: Arc<str>,
    pub slot: Arc<OnceLock<Computed>>,
}

impl PartialEq for ComputedRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.slot, &other.slot)
    }
}

impl Eq for ComputedRef {}

impl std::hash::Hash for ComputedRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geo_finds_the_longest_network_else_the_default() {
        // In the order the builder leaves them: longest prefix first.
        let net = |t: &str| {
            crate::access::cidr::parse(t)
                .map(|(n, _)| n)
                .unwrap_or_else(|| panic!("{t}"))
        };
        let geo = GeoConf {
            source: None,
            default: "none".into(),
            nets: vec![
                (net("10.1.2.3"), "host".into()),
                (net("10.1.0.0/16"), "lan".into()),
                (net("10.0.0.0/8"), "ten".into()),
                (net("2001:db8::/32"), "six".into()),
            ],
        };
        for (ip, want) in [
            (Some("10.1.2.3"), "host"),
            (Some("10.1.9.9"), "lan"),
            (Some("10.200.0.1"), "ten"),
            (Some("::ffff:10.1.2.3"), "host"),
            (Some("2001:db8::1"), "six"),
            (Some("11.0.0.1"), "none"),
            (Some("::1"), "none"),
            (None, "none"),
        ] {
            let ip = ip.map(|t| t.parse::<IpAddr>().unwrap_or_else(|_| panic!("{t}")));
            assert_eq!(geo.find(ip), want, "{ip:?}");
        }
    }

    #[test]
    fn murmur_hash2_known_values() {
        // One value per tail length (0-3 bytes after the 4-byte blocks); the
        // placements they give are compared with nginx's own in
        // tests/proxy_map.rs.
        let cases: [(&[u8], u32); 7] = [
            (b"", 0),
            (b"a", 2_456_313_694),
            (b"ab", 446_775_395),
            (b"abc", 324_500_635),
            (b"abcd", 646_393_889),
            (b"0salt", 3_010_187_763),
            (b"hello world", 1_151_865_881),
        ];
        for (data, want) in cases {
            assert_eq!(murmur_hash2(data), want, "{data:?}");
        }
    }

    #[test]
    fn split_clients_buckets_follow_the_hash() {
        let t = Template::literal("");
        // 50% below 0x7fffffff, the rest `*`.
        let s = SplitClients {
            source: t,
            parts: vec![(Some(0x7fff_ffff), "low".into()), (None, "high".into())],
        };
        assert_eq!(s.find(b"abcd"), "low"); // 646393889
        assert_eq!(s.find(b"a"), "high"); // 2456313694
        let none = SplitClients {
            source: Template::literal(""),
            parts: vec![(Some(10), "x".into())],
        };
        assert_eq!(none.find(b"a"), "");
    }
}
