//! Secret keys of `session_sticky` (ours, issue 19): keyed sids (`hash=hmac`)
//! and signed cookies (`sign=on`), both HMAC-SHA256 (RustCrypto).
//!
//! - sid: lowercase hex of the first 16 bytes of HMAC-SHA256(key, `IP:PORT` or
//!   `id=`): 32 hex digits like md5's, revealing nothing about the backend.
//! - MAC of a cookie: the first 16 bytes of HMAC-SHA256(key, `"sign\n" BODY`),
//!   where BODY is the cookie value before the MAC (`SID` or
//!   `SID|LASTSEEN|FIRSTSEEN`), as 32 hex digits. The prefix keeps the two uses
//!   of one key apart.
//!
//! Key rotation: the first key makes sids and signs; every key is accepted when
//! reading a cookie. Verification compares in constant time
//! (`Mac::verify_truncated_left`).

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of HMAC output kept, for sids and for MACs (hex doubles it).
pub const TAG_BYTES: usize = 16;
/// Hex digits of a sid or a MAC.
pub const TAG_HEX: usize = 2 * TAG_BYTES;

const SIGN_PREFIX: &[u8] = b"sign\n";

/// One key: its bytes and the HMAC state keyed with it (cloned per use, so
/// the key schedule runs once at configuration time).
#[derive(Clone)]
struct Key {
    raw: Box<[u8]>,
    mac: HmacSha256,
}

/// The keys of one `session_sticky`, first one first. Its `Debug` shows how
/// many there are, never their bytes.
#[derive(Clone, Default)]
pub struct Keys(Arc<[Key]>);

impl PartialEq for Keys {
    fn eq(&self, other: &Keys) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(other.0.iter())
                .all(|(a, b)| a.raw == b.raw)
    }
}

impl Eq for Keys {}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} keys)", self.0.len())
    }
}

impl Keys {
    /// Keys from their bytes, first one first. `None` if one is empty.
    pub fn new<I, K>(keys: I) -> Option<Keys>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let mut out = Vec::new();
        for k in keys {
            let raw = k.as_ref();
            if raw.is_empty() {
                return None;
            }
            // HMAC takes a key of any length.
            let mac = HmacSha256::new_from_slice(raw).ok()?;
            out.push(Key {
                raw: raw.into(),
                mac,
            });
        }
        Some(Keys(out.into()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sid of `name` under every key, first key first.
    pub fn sids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.0.iter().map(move |k| {
            let mut mac = k.mac.clone();
            mac.update(name.as_bytes());
            hex_tag(&mac.finalize().into_bytes())
        })
    }

    /// The sid of `name` under the first key (`None` without keys).
    pub fn sid(&self, name: &str) -> Option<String> {
        self.sids(name).next()
    }

    /// The MAC of a cookie body under the first key, as [`TAG_HEX`] hex digits.
    pub fn sign(&self, body: &[u8]) -> Option<[u8; TAG_HEX]> {
        let key = self.0.first()?;
        let mut mac = key.mac.clone();
        mac.update(SIGN_PREFIX);
        mac.update(body);
        let mut out = [0u8; TAG_HEX];
        hex::encode_to_slice(mac.finalize().into_bytes().get(..TAG_BYTES)?, &mut out).ok()?;
        Some(out)
    }

    /// Which key (index, 0 = the signing key) made `tag_hex` for `body`;
    /// `None` when none did or `tag_hex` is not [`TAG_HEX`] hex digits.
    /// Each comparison takes the same time whatever the bytes.
    pub fn verify(&self, body: &[u8], tag_hex: &[u8]) -> Option<usize> {
        // Lowercase only, as written: `A` for `a` is a changed cookie.
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        if tag_hex.len() != TAG_HEX || !tag_hex.iter().all(lower_hex) {
            return None;
        }
        let mut tag = [0u8; TAG_BYTES];
        hex::decode_to_slice(tag_hex, &mut tag).ok()?;
        self.0.iter().position(|k| {
            let mut mac = k.mac.clone();
            mac.update(SIGN_PREFIX);
            mac.update(body);
            mac.verify_truncated_left(&tag).is_ok()
        })
    }
}

fn hex_tag(full: &[u8]) -> String {
    hex::encode(full.get(..TAG_BYTES).unwrap_or(full))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sid_is_truncated_hmac_sha256_hex() {
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
        // = 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843.
        let keys = Keys::new(["Jefe"]).unwrap();
        assert_eq!(
            keys.sid("what do ya want for nothing?").unwrap(),
            "5bdcc146bf60754e6a042426089575c7"
        );
        assert_eq!(keys.sid("10.0.23.20:80").unwrap().len(), TAG_HEX);
        assert_eq!(Keys::default().sid("x"), None);
    }

    #[test]
    fn first_key_signs_every_key_verifies() {
        let old = Keys::new(["k1"]).unwrap();
        let both = Keys::new(["k2", "k1"]).unwrap();
        let new = Keys::new(["k2"]).unwrap();
        let body = b"sid|1571297169|1571297000";
        let by_old = old.sign(body).unwrap();
        let by_new = both.sign(body).unwrap();
        assert_eq!(by_new, new.sign(body).unwrap());
        // (keys, tag, which key verifies)
        let cases = [
            (&old, by_old, Some(0)),
            (&both, by_old, Some(1)),
            (&both, by_new, Some(0)),
            (&new, by_old, None),
            (&old, by_new, None),
        ];
        for (keys, tag, want) in cases {
            assert_eq!(keys.verify(body, &tag), want);
        }
        // The sid and the MAC of the same text differ (the sign prefix).
        let sid = old.sid("sid").unwrap();
        assert_ne!(sid.as_bytes(), &old.sign(b"sid").unwrap()[..]);
    }

    #[test]
    fn any_one_bit_change_fails_verification() {
        let keys = Keys::new(["secret"]).unwrap();
        let body = b"5bdcc146bf60754e6a042426089575c7|1571297169|1571297000".to_vec();
        let tag = keys.sign(&body).unwrap();
        assert_eq!(keys.verify(&body, &tag), Some(0));
        for i in 0..body.len() * 8 {
            let mut b = body.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert_eq!(keys.verify(&b, &tag), None, "body bit {i}");
        }
        for i in 0..tag.len() * 8 {
            let mut t = tag;
            t[i / 8] ^= 1 << (i % 8);
            assert_eq!(keys.verify(&body, &t), None, "tag bit {i}");
        }
        // Wrong lengths and non-hex are refused, not panics.
        assert_eq!(keys.verify(&body, &tag[..31]), None);
        assert_eq!(keys.verify(&body, b""), None);
        assert_eq!(keys.verify(&body, &[b'z'; TAG_HEX]), None);
    }

    #[test]
    fn keys_compare_by_bytes_and_never_print_them() {
        assert_eq!(Keys::new(["a", "b"]), Keys::new(["a", "b"]));
        assert_ne!(Keys::new(["a", "b"]), Keys::new(["b", "a"]));
        assert_eq!(Keys::new(["a", ""]), None);
        let shown = format!("{:?}", Keys::new(["topsecret"]).unwrap());
        assert!(!shown.contains("topsecret"), "{shown}");
    }
}
