//! `ssl_session_ticket_key FILE`: session tickets sealed with keys from
//! files in nginx's format, so several proxies (or a restart) can resume
//! each other's sessions, and keys can be rotated by hand.
//!
//! A 48-byte file is a 16-byte key name, a 16-byte HMAC-SHA256 secret and a
//! 16-byte AES-128 key; an 80-byte file is a 16-byte name, a 32-byte
//! HMAC-SHA256 secret and a 32-byte AES-256 key. The ticket is laid out as
//! nginx's (OpenSSL's): key name (16) | IV (16) | AES-CBC ciphertext
//! (PKCS#7 padded) | HMAC-SHA256 over everything before it (32). The first
//! key seals new tickets; every key opens them. The primitives are
//! aws-lc-rs': nothing is hand-written here but the layout. (The sealed
//! plaintext is a rustls session, so tickets are not interchangeable with
//! nginx's own: only the key files are.)

use std::fmt;
use std::path::Path;

use aws_lc_rs::cipher::{
    DecryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
    AES_128, AES_256,
};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use rustls::server::ProducesTickets;

const NAME_LEN: usize = 16;
const IV_LEN: usize = 16;
const BLOCK_LEN: usize = 16;
const MAC_LEN: usize = 32;

/// One key file's key.
pub struct TicketKey {
    name: [u8; NAME_LEN],
    mac: hmac::Key,
    seal: PaddedBlockEncryptingKey,
    open: PaddedBlockDecryptingKey,
}

impl TicketKey {
    /// A key from a file's bytes; `None` unless it is 48 or 80 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<TicketKey> {
        let (name, rest) = bytes.split_first_chunk::<NAME_LEN>()?;
        let (mac, aes, algorithm) = match rest.len() {
            32 => (&rest[..16], &rest[16..], &AES_128),
            64 => (&rest[..32], &rest[32..], &AES_256),
            _ => return None,
        };
        let cipher = || UnboundCipherKey::new(algorithm, aes).ok();
        Some(TicketKey {
            name: *name,
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac),
            seal: PaddedBlockEncryptingKey::cbc_pkcs7(cipher()?).ok()?,
            open: PaddedBlockDecryptingKey::cbc_pkcs7(cipher()?).ok()?,
        })
    }

    /// Reads a key file, with nginx's messages.
    pub fn load(path: &Path) -> Result<TicketKey, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("open() \"{}\" failed ({e})", path.display()))?;
        TicketKey::from_bytes(&bytes)
            .ok_or_else(|| format!("\"{}\" must be 48 or 80 bytes", path.display()))
    }

    fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut body = plain.to_vec();
        // A fresh random IV for each ticket, made by aws-lc.
        let context = self.seal.encrypt(&mut body).ok()?;
        let iv: &[u8] = (&context).try_into().ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + IV_LEN + body.len() + MAC_LEN);
        ticket.extend_from_slice(&self.name);
        ticket.extend_from_slice(iv);
        ticket.extend_from_slice(&body);
        let tag = hmac::sign(&self.mac, &ticket);
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    /// Opens a ticket already known to carry this key's name.
    fn open(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let split = ticket.len().checked_sub(MAC_LEN)?;
        let (sealed, tag) = ticket.split_at(split);
        hmac::verify(&self.mac, sealed, tag).ok()?;
        let rest = sealed.get(NAME_LEN..)?;
        let (iv, body) = rest.split_first_chunk::<IV_LEN>()?;
        if body.is_empty() || body.len() % BLOCK_LEN != 0 {
            return None;
        }
        let mut body = body.to_vec();
        let context = DecryptionContext::Iv128(FixedLength::from(*iv));
        self.open
            .decrypt(&mut body, context)
            .ok()
            .map(|plain| plain.to_vec())
    }
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketKey({})", hex::encode(self.name))
    }
}

/// The keys of a server's `ssl_session_ticket_key` directives, in order.
pub struct KeyFileTicketer {
    keys: Vec<TicketKey>,
}

impl KeyFileTicketer {
    /// `None` without keys.
    pub fn new(keys: Vec<TicketKey>) -> Option<KeyFileTicketer> {
        (!keys.is_empty()).then_some(KeyFileTicketer { keys })
    }
}

impl fmt::Debug for KeyFileTicketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

impl ProducesTickets for KeyFileTicketer {
    fn enabled(&self) -> bool {
        true
    }

    /// nginx's default `ssl_session_timeout`; the proxy wraps this ticketer
    /// in [`super::session::TimedTickets`], which announces the configured one.
    fn lifetime(&self) -> u32 {
        300
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.keys.first()?.seal(plain)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let name = ticket.get(..NAME_LEN)?;
        self.keys.iter().find(|k| k.name == name)?.open(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_bytes(name: u8, len: usize) -> Vec<u8> {
        let mut b = vec![name; NAME_LEN];
        b.extend((0..len - NAME_LEN).map(|i| (i as u8).wrapping_mul(7).wrapping_add(name)));
        b
    }

    fn ticketer(keys: &[(u8, usize)]) -> KeyFileTicketer {
        let keys = keys
            .iter()
            .map(|&(n, len)| TicketKey::from_bytes(&key_bytes(n, len)).expect("key"))
            .collect();
        KeyFileTicketer::new(keys).expect("keys")
    }

    #[test]
    fn only_48_and_80_byte_keys_are_taken() {
        for (len, ok) in [(48, true), (80, true), (0, false), (16, false), (47, false)] {
            assert_eq!(TicketKey::from_bytes(&vec![1; len]).is_some(), ok, "{len}");
        }
        for len in [49, 64, 79, 81, 96] {
            assert!(TicketKey::from_bytes(&vec![1; len]).is_none(), "{len}");
        }
        assert!(KeyFileTicketer::new(Vec::new()).is_none());
    }

    #[test]
    fn tickets_round_trip_and_bad_ones_are_refused() {
        for len in [48, 80] {
            let t = ticketer(&[(1, len)]);
            for plain in [&b""[..], b"x", &[9u8; 16], &[3u8; 200]] {
                let ticket = t.encrypt(plain).expect("seal");
                assert_eq!(&ticket[..NAME_LEN], &[1u8; NAME_LEN]);
                assert_eq!(t.decrypt(&ticket).as_deref(), Some(plain), "{len}");
                // A fresh IV each time.
                assert_ne!(t.encrypt(plain), Some(ticket.clone()));
                // Tampered MAC, body, IV or name; truncated.
                for at in [ticket.len() - 1, NAME_LEN + IV_LEN, NAME_LEN, 0] {
                    let mut bad = ticket.clone();
                    bad[at] ^= 1;
                    assert_eq!(t.decrypt(&bad), None, "flip {at}");
                }
                for cut in [0, 1, NAME_LEN, NAME_LEN + IV_LEN, ticket.len() - 1] {
                    assert_eq!(t.decrypt(&ticket[..cut]), None, "cut {cut}");
                }
                // Another key name.
                assert_eq!(ticketer(&[(2, len)]).decrypt(&ticket), None);
                // The same name, other secrets.
                let mut other = key_bytes(1, len);
                other[NAME_LEN] ^= 1;
                let other = KeyFileTicketer::new(vec![TicketKey::from_bytes(&other).expect("k")]);
                assert_eq!(other.expect("t").decrypt(&ticket), None);
            }
        }
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_all() {
        let old = ticketer(&[(1, 48)]);
        let rotated = ticketer(&[(2, 80), (1, 48)]);
        let from_old = old.encrypt(b"session").expect("old");
        assert_eq!(rotated.decrypt(&from_old).as_deref(), Some(&b"session"[..]));
        let from_new = rotated.encrypt(b"session").expect("new");
        assert_eq!(&from_new[..NAME_LEN], &[2u8; NAME_LEN]);
        assert_eq!(old.decrypt(&from_new), None);
        assert_eq!(rotated.decrypt(&from_new).as_deref(), Some(&b"session"[..]));
    }

    #[test]
    fn random_bytes_never_open_and_never_panic() {
        let t = ticketer(&[(1, 48), (2, 80)]);
        let mut buf = [0u8; 200];
        for i in 0..2000 {
            aws_lc_rs::rand::fill(&mut buf).expect("rand");
            let len = i % buf.len();
            assert_eq!(t.decrypt(&buf[..len]), None);
            // With a known name in front, to reach the MAC check.
            buf[..NAME_LEN].fill(1 + (i % 2) as u8);
            assert_eq!(t.decrypt(&buf[..len]), None);
        }
    }
}
