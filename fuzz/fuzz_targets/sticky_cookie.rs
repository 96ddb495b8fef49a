//! Fuzz the request side of session_sticky: arbitrary `Cookie` header bytes
//! (several headers separated by `\n`) and a mode byte. Properties: never panics;
//! every forwarded `Cookie` header is a valid header value; under insert+indirect
//! the forwarded headers never contain the sticky pair; a valid cookie's sid is
//! non-empty; the one-pass `Sticky::on_request` (with its fast path for tidy
//! headers) does exactly what `read` + `decide` + `strip` do.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sticky_proxy::sticky::cookie::{self, StickyCookie};
use sticky_proxy::sticky::{decide, Mode, SidIndex, Sticky, StickyConf};

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
    let conf = StickyConf {
        cookie: if sel & 0x08 != 0 { "test" } else { "route" }.to_string(),
        mode,
        indirect: sel & 0x10 != 0 && mode == Mode::Insert,
        maxidle: timestamps.then_some(30),
        maxlife: timestamps.then_some(3600),
        fallback: sel & 0x20 != 0,
        ..StickyConf::default()
    };
    let mut headers = HeaderMap::new();
    // Empty lines are skipped: an empty Cookie header is forwarded as is.
    for line in rest.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    let index = SidIndex::new(["a", "44fb3a27ed30ae5193ebd879ca2cf039", "b"]);
    let now = 1_571_297_169;
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
