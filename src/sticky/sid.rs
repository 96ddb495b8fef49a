//! Server ids (spec section 2): how a peer's sid is derived (`hash=md5` /
//! `hash=plain`, and ours `hash=hmac`) and [`SidIndex`], the O(1) map from a
//! sid back to a peer index. Under `hash=hmac` with several keys the sids the
//! other keys make are aliases: still routed, and the response re-pins the
//! client to the first key's sid (a rolling key change loses no session).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use md5::{Digest, Md5};

use super::{Hash, StickyConf};

/// Lowercase hex of the MD5 of the peer name (`IP:PORT`, IPv6 as `[::1]:8080`).
pub fn md5_sid(peer_name: &str) -> String {
    hex::encode(Md5::digest(peer_name.as_bytes()))
}

/// The sid of one peer under `conf.hash`: md5 of the peer name, or (plain) the
/// server's `id=` when given, else the peer name itself; (hmac) the keyed hash
/// of that same text under the first key.
pub fn sid_for(conf: &StickyConf, peer_name: &str, id: Option<&str>) -> String {
    let text = id.unwrap_or(peer_name);
    match conf.hash {
        Hash::Md5 => md5_sid(peer_name),
        Hash::Plain => text.to_string(),
        // The builder refuses hash=hmac without a key; an empty sid never matches.
        Hash::Hmac => conf.keys.sid(text).unwrap_or_default(),
    }
}

/// A fast unkeyed hash for the sid map (the Fx scheme: 8 bytes per step).
/// Keyed hashing (SipHash) guards against an attacker filling a map with
/// colliding keys; here the keys are fixed by the configuration and a request can
/// only look one up, so that cannot happen and the faster hash is safe.
#[derive(Debug, Clone, Copy, Default)]
struct SidHasher(u64);

impl SidHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for SidHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Keyed by the sid's bytes, so that a sid can be looked up straight from
/// header bytes ([`SidIndex::lookup_bytes`]).
type SidMap = HashMap<Box<[u8]>, usize, BuildHasherDefault<SidHasher>>;

/// Two peers that ended up with the same sid. The first one wins lookups; the
/// builder or engine should warn, because the second peer can never be pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateSid {
    pub sid: Box<str>,
    /// Index of the peer that keeps the sid.
    pub kept: usize,
    /// Index of the peer whose sid is shadowed.
    pub shadowed: usize,
}

/// The sids of an upstream's peers, in peer order, with a hash index for the
/// request path ("which peer has this sid").
#[derive(Debug, Clone, Default)]
pub struct SidIndex {
    sids: Vec<Box<str>>,
    map: SidMap,
    /// The sids of the other keys under `hash=hmac` (empty otherwise).
    aliases: SidMap,
    duplicates: Vec<DuplicateSid>,
}

impl SidIndex {
    /// Index a list of sids; position `i` is peer index `i`.
    pub fn new<I, S>(sids: I) -> SidIndex
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let sids: Vec<Box<str>> = sids.into_iter().map(Into::into).collect();
        let mut map = SidMap::with_capacity_and_hasher(sids.len(), Default::default());
        let mut duplicates = Vec::new();
        for (i, sid) in sids.iter().enumerate() {
            match map.get(sid.as_bytes()) {
                Some(&kept) => duplicates.push(DuplicateSid {
                    sid: sid.clone(),
                    kept,
                    shadowed: i,
                }),
                None => {
                    map.insert(sid.as_bytes().into(), i);
                }
            }
        }
        SidIndex {
            sids,
            map,
            aliases: SidMap::default(),
            duplicates,
        }
    }

    /// Derive every peer's sid under `conf` from `(peer_name, id)` pairs in peer
    /// order, then index them.
    pub fn from_peers<'a, I>(conf: &StickyConf, peers: I) -> SidIndex
    where
        I: IntoIterator<Item = (&'a str, Option<&'a str>)>,
    {
        let peers: Vec<(&str, Option<&str>)> = peers.into_iter().collect();
        let mut index = SidIndex::new(peers.iter().map(|&(name, id)| sid_for(conf, name, id)));
        if conf.hash == Hash::Hmac {
            for (i, &(name, id)) in peers.iter().enumerate() {
                for alias in conf.keys.sids(id.unwrap_or(name)).skip(1) {
                    if !index.map.contains_key(alias.as_bytes()) {
                        index.aliases.entry(alias.into_bytes().into()).or_insert(i);
                    }
                }
            }
        }
        index
    }

    /// The peer of `sid`, and whether it was found as an alias (a sid of a
    /// key other than the first: the response re-pins).
    pub fn find(&self, sid: &str) -> Option<(usize, bool)> {
        match self.lookup(sid) {
            Some(i) => Some((i, false)),
            None => self.lookup_alias(sid.as_bytes()).map(|i| (i, true)),
        }
    }

    /// The peer whose sid under a key other than the first is `sid`
    /// (`hash=hmac` key rotation); [`SidIndex::lookup_bytes`] is asked first.
    #[inline]
    pub fn lookup_alias(&self, sid: &[u8]) -> Option<usize> {
        if self.aliases.is_empty() {
            return None;
        }
        self.aliases.get(sid).copied()
    }

    /// The peer index that owns `sid` (first peer wins on duplicates).
    #[inline]
    pub fn lookup(&self, sid: &str) -> Option<usize> {
        self.lookup_bytes(sid.as_bytes())
    }

    /// [`SidIndex::lookup`] by the sid's bytes (e.g. straight from a header).
    #[inline]
    pub fn lookup_bytes(&self, sid: &[u8]) -> Option<usize> {
        self.map.get(sid).copied()
    }

    /// The sid of peer `idx`.
    #[inline]
    pub fn sid(&self, idx: usize) -> Option<&str> {
        self.sids.get(idx).map(|s| &**s)
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.sids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sids.is_empty()
    }

    /// Sids shared by several peers (empty in a sane configuration).
    pub fn duplicates(&self) -> &[DuplicateSid] {
        &self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_sid_matches_known_vectors() {
        let cases = [
            ("127.0.0.1:9000", "44fb3a27ed30ae5193ebd879ca2cf039"),
            ("10.0.23.20:80", "fe12736d0ef927f9224a3336b65ee84b"),
            ("[::1]:8080", "1c2e56fe441d2a91a692b6e4ac8b5c9b"),
        ];
        for (name, want) in cases {
            assert_eq!(md5_sid(name), want, "{name}");
        }
    }

    #[test]
    fn plain_sid_uses_id_then_peer_name() {
        let conf = StickyConf {
            hash: Hash::Plain,
            ..StickyConf::default()
        };
        assert_eq!(sid_for(&conf, "10.0.23.20:80", Some("a")), "a");
        assert_eq!(sid_for(&conf, "10.0.23.20:80", None), "10.0.23.20:80");
    }

    #[test]
    fn md5_sid_ignores_id() {
        let conf = StickyConf::default();
        assert_eq!(
            sid_for(&conf, "10.0.23.20:80", Some("a")),
            "fe12736d0ef927f9224a3336b65ee84b"
        );
    }

    #[test]
    fn index_finds_each_peer_and_rejects_unknown() {
        let idx = SidIndex::from_peers(
            &StickyConf::default(),
            [("10.0.23.20:80", None), ("127.0.0.1:9000", None)],
        );
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.lookup("fe12736d0ef927f9224a3336b65ee84b"), Some(0));
        assert_eq!(idx.lookup("44fb3a27ed30ae5193ebd879ca2cf039"), Some(1));
        assert_eq!(idx.lookup("44fb3a27ed30ae5193ebd879ca2cf03"), None);
        assert_eq!(idx.lookup(""), None);
        assert_eq!(
            idx.lookup_bytes(b"fe12736d0ef927f9224a3336b65ee84b"),
            Some(0)
        );
        assert_eq!(idx.lookup_bytes(b"fe12736d0ef927f9224a3336b65ee84b "), None);
        assert_eq!(idx.lookup_bytes(b"\xff"), None);
        assert_eq!(idx.sid(1), Some("44fb3a27ed30ae5193ebd879ca2cf039"));
        assert_eq!(idx.sid(2), None);
        assert!(idx.duplicates().is_empty());
    }

    #[test]
    fn hmac_sids_are_keyed_and_old_keys_are_aliases() {
        let peers = [("10.0.23.20:80", None), ("10.0.23.21:80", Some("app-1"))];
        let conf = |keys: &[&str]| StickyConf {
            hash: Hash::Hmac,
            keys: crate::sticky::Keys::new(keys).expect("keys"),
            ..StickyConf::default()
        };
        let old = SidIndex::from_peers(&conf(&["k1"]), peers);
        let both = SidIndex::from_peers(&conf(&["k2", "k1"]), peers);
        let new = SidIndex::from_peers(&conf(&["k2"]), peers);
        for (i, (name, _)) in peers.iter().enumerate() {
            let (o, n) = (old.sid(i).expect("sid"), new.sid(i).expect("sid"));
            assert_eq!(o.len(), 32);
            assert_ne!(o, n);
            assert_ne!(o, md5_sid(name));
            assert_eq!(both.sid(i), Some(n));
            assert_eq!(both.lookup(n), Some(i));
            assert_eq!(both.lookup(o), None);
            assert_eq!(both.lookup_alias(o.as_bytes()), Some(i));
            assert_eq!(new.lookup_alias(o.as_bytes()), None);
        }
        // id= is what is hashed, when given.
        let k = crate::sticky::Keys::new(["k1"]).expect("keys");
        assert_eq!(old.sid(1), k.sid("app-1").as_deref());
    }

    #[test]
    fn duplicate_sids_keep_first_peer_and_are_reported() {
        let idx = SidIndex::new(["a", "b", "a"]);
        assert_eq!(idx.lookup("a"), Some(0));
        assert_eq!(
            idx.duplicates(),
            &[DuplicateSid {
                sid: "a".into(),
                kept: 0,
                shadowed: 2
            }]
        );
    }
}
