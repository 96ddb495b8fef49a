//! Fuzz the session-ticket opener of `ssl_session_ticket_key`: a TLS client
//! presents any bytes it likes as a ticket, and `KeyFileTicketer::decrypt`
//! reads them (key name, IV, CBC ciphertext, HMAC) before rustls sees them.
//! The first byte picks the ticketer (one 48-byte key, one 80-byte key, or
//! both: the 80-byte one sealing); the rest is, in turn, a ticket as sent and
//! a plaintext to seal. Properties: never panics; fuzzed bytes never open
//! unless they are byte for byte a ticket this ticketer sealed (the target
//! seals its own and compares); a sealed plaintext opens to itself, under its
//! key's name; any one bit flipped in a sealed ticket (the fuzzer picks the
//! bit) makes it refuse; a truncated ticket is refused.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustls::server::ProducesTickets;
use sticky_proxy::tls::ticket_key::{KeyFileTicketer, TicketKey};

const NAME_LEN: usize = 16;

fn key(name: u8, len: usize) -> TicketKey {
    let mut bytes = vec![name; NAME_LEN];
    bytes.extend((0..len - NAME_LEN).map(|i| (i as u8).wrapping_mul(31) ^ name));
    TicketKey::from_bytes(&bytes).expect("48 or 80 bytes")
}

fn ticketer(sel: u8) -> KeyFileTicketer {
    let keys = match sel % 3 {
        0 => vec![key(1, 48)],
        1 => vec![key(2, 80)],
        _ => vec![key(2, 80), key(1, 48)],
    };
    KeyFileTicketer::new(keys).expect("keys")
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let t = ticketer(sel);
    // Any bytes as a ticket: the MAC stands between them and the cipher, so
    // nothing the fuzzer writes opens (a forged MAC is a 2^-256 event).
    assert_eq!(t.decrypt(rest), None, "forged ticket opened");
    // Key names the ticketer knows, in front of fuzzed bytes: still refused.
    for name in [1u8, 2] {
        let mut named = vec![name; NAME_LEN];
        named.extend_from_slice(rest);
        assert_eq!(t.decrypt(&named), None, "forged ticket with a known name opened");
    }
    // Seal the bytes and open them again.
    let sealed = t.encrypt(rest).expect("seal");
    let sealer = if sel % 3 == 0 { 1 } else { 2 };
    assert_eq!(&sealed[..NAME_LEN], &[sealer; NAME_LEN]);
    assert_eq!(t.decrypt(&sealed).as_deref(), Some(rest), "round trip");
    // One bit flipped anywhere, chosen by the input.
    let bit = rest.iter().fold(sel as usize, |a, &b| a.wrapping_mul(131).wrapping_add(b as usize));
    let mut flipped = sealed.clone();
    let at = bit / 8 % flipped.len();
    flipped[at] ^= 1 << (bit % 8);
    assert_eq!(t.decrypt(&flipped), None, "a flipped bit at {at} still opened");
    // Truncated.
    let cut = bit % sealed.len();
    assert_eq!(t.decrypt(&sealed[..cut]), None, "a ticket cut at {cut} opened");
});
