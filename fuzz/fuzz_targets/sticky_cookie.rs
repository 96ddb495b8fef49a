//! Fuzz the request side of session_sticky: arbitrary `Cookie` header bytes
//! (several headers separated by `\n`) and a mode byte. Properties: never panics;
//! every forwarded `Cookie` header is a valid header value; under insert+indirect
//! the forwarded headers never contain the sticky pair; a valid cookie's sid is
//! non-empty; the one-pass `Sticky::on_request` (with its fast path for tidy
//! headers) does exactly what `read` + `decide` + `strip` do.
//! Signed cookies (`sign=on`, bit 0x40, insert mode; bit 0x80 adds
//! `hash=hmac` with two keys): a cookie signed by the target itself for a
//! fuzz-chosen peer, then one fuzz-chosen bit flipped, leads the headers; an
//! unflipped one pins its peer, a flipped one never pins anything, and no
//! request is ever pinned unless its sticky value carries a MAC one of the
//! keys made (a forged cookie never routes to the peer it names).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sticky_proxy::sticky::cookie::{self, StickyCookie};
use sticky_proxy::sticky::{decide, Decision, Hash, Keys, Mode, Outcome, SidIndex, Sticky, StickyConf};

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mode = match sel % 3 {
        0 => Mode::Insert,
        1 => Mode::Rewrite,
        _ => Mode::Prefix,
    };
    let timestamps = sel & 0x04 != 0;
    let signed = sel & 0x40 != 0 && mode == Mode::Insert;
    let hmac = sel & 0x80 != 0;
    let keys = Keys::new(["fuzz-key-new-0123456789", "fuzz-key-old-0123456789"]);
    let conf = StickyConf {
        cookie: if sel & 0x08 != 0 { "test" } else { "route" }.to_string(),
        mode,
        indirect: sel & 0x10 != 0 && mode == Mode::Insert,
        maxidle: timestamps.then_some(30),
        maxlife: timestamps.then_some(3600),
        fallback: sel & 0x20 != 0,
        sign: signed,
        hash: if hmac { Hash::Hmac } else { Hash::Md5 },
        keys: if signed || hmac { keys.clone().unwrap_or_default() } else { Keys::default() },
        ..StickyConf::default()
    };
    let index = if hmac {
        SidIndex::from_peers(&conf, [("10.0.0.1:80", None), ("10.0.0.2:80", None), ("10.0.0.3:80", None)])
    } else {
        SidIndex::new(["a", "44fb3a27ed30ae5193ebd879ca2cf039", "b"])
    };
    let now = 1_571_297_169;
    let mut headers = HeaderMap::new();
    // Signed: a cookie of ours for peer `k` (by either key), one bit flipped
    // unless the flip position is past its end.
    let mut planted: Option<(usize, bool)> = None;
    let mut rest = rest;
    if signed {
        if let [k, hi, lo, tail @ ..] = rest {
            rest = tail;
            let peer = usize::from(*k % 3);
            let key = usize::from(*k & 0x80 != 0);
            let sid = index.sid(peer).unwrap_or_default();
            let body = if timestamps { format!("{sid}|{now}|{now}") } else { sid.to_string() };
            let signer = keys.as_ref().and_then(|ks| {
                let raw = ["fuzz-key-new-0123456789", "fuzz-key-old-0123456789"][key];
                Keys::new([raw]).filter(|_| ks.len() == 2)
            });
            if let Some(mac) = signer.and_then(|s| s.sign(body.as_bytes())) {
                let mut line = format!("{}={body}|", conf.cookie).into_bytes();
                line.extend_from_slice(&mac);
                let bit = usize::from(u16::from_be_bytes([*hi, *lo]));
                let flipped = bit < line.len() * 8;
                if let Some(b) = line.get_mut(bit / 8) {
                    *b ^= 1 << (bit % 8);
                }
                if let Ok(v) = HeaderValue::from_bytes(&line) {
                    headers.append(COOKIE, v);
                    planted = Some((peer, flipped));
                }
            }
        }
    }
    // Empty lines are skipped: an empty Cookie header is forwarded as is.
    for line in rest.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    for v in headers.get_all(COOKIE) {
        assert_eq!(
            cookie::scan_value(&conf, v.as_bytes()),
            cookie::scan_value_general(&conf, v.as_bytes())
        );
    }
    let mut one_pass = headers.clone();
    let sticky = Sticky::new(conf.clone(), index.clone());
    let fast = sticky.on_request(
        &mut one_pass,
        now,
        |i| i != 2,
        |ex| [0usize, 1].into_iter().find(|i| Some(*i) != ex),
    );
    let found = cookie::read(&conf, &headers, now);
    if let StickyCookie::Valid { sid, .. } = found {
        assert!(!sid.is_empty());
    }
    let choice = decide::decide(
        &conf,
        &found,
        &index,
        now,
        |i| i != 2,
        |ex| [0usize, 1].into_iter().find(|i| Some(*i) != ex),
    );
    if let Some(p) = choice.decision.peer() {
        assert!(p < index.len());
    }
    assert_eq!(fast, choice);
    if signed {
        // Pinned only by a value one of the keys signed, naming that peer.
        if let Decision::Pinned(p) = fast.decision {
            let raw = cookie::find(&headers, &conf.cookie).expect("a pin has a cookie");
            let bar = raw.iter().rposition(|b| *b == b'|').expect("signed form");
            let verified = keys.as_ref().and_then(|k| k.verify(&raw[..bar], &raw[bar + 1..]));
            assert!(verified.is_some(), "pinned by an unsigned value");
            let sid = raw[..bar].split(|b| *b == b'|').next().unwrap_or_default();
            let named = index.lookup_bytes(sid).or_else(|| index.lookup_alias(sid));
            assert_eq!(named, Some(p));
        }
        match planted {
            Some((_, true)) => assert!(!matches!(fast.decision, Decision::Pinned(_))),
            Some((peer, false)) if peer != 2 => {
                assert_eq!((fast.decision, fast.outcome), (Decision::Pinned(peer), Outcome::Hit))
            }
            _ => {}
        }
    }
    cookie::strip(&conf, &mut headers);
    assert_eq!(one_pass, headers);
    for v in headers.get_all(COOKIE) {
        assert!(HeaderValue::from_bytes(v.as_bytes()).is_ok());
        assert!(!v.as_bytes().is_empty());
    }
    if conf.indirect {
        assert!(cookie::find(&headers, &conf.cookie).is_none());
    }
});
