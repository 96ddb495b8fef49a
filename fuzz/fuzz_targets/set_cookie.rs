//! Fuzz the response side of session_sticky: arbitrary backend `Set-Cookie`
//! values (separated by `\n`), a mode/config byte and a status byte. Properties:
//! never panics; every `Set-Cookie` afterwards is a valid header value; status
//! >= 400 leaves the headers untouched; rewrite leaves the sid as the value of
//! the first `route` cookie it edited; insert+indirect leaves exactly one
//! `route` Set-Cookie when it sets one.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sticky_proxy::sticky::set_cookie::{self, value_range};
use sticky_proxy::sticky::{Choice, Decision, Mode, Outcome, StickyConf};

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&st, rest)) = rest.split_first() else {
        return;
    };
    let mode = match sel % 3 {
        0 => Mode::Insert,
        1 => Mode::Rewrite,
        _ => Mode::Prefix,
    };
    let timestamps = sel & 0x04 != 0;
    let conf = StickyConf {
        mode,
        indirect: sel & 0x08 != 0 && mode == Mode::Insert,
        maxidle: timestamps.then_some(30),
        maxlife: timestamps.then_some(3600),
        maxage: (sel & 0x10 != 0).then_some(i64::from(st) * 1_000_000_000_000),
        domain: (sel & 0x20 != 0).then(|| "example.com".to_string()),
        ..StickyConf::default()
    };
    let status = StatusCode::from_u16(200 + u16::from(st)).unwrap_or(StatusCode::OK);
    let decision = match sel >> 6 {
        0 => Decision::Pinned(0),
        1 => Decision::New(0),
        _ => Decision::Fallback(0),
    };
    let choice = Choice::new(decision, Outcome::Hit, 1_571_297_000);
    let mut headers = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(SET_COOKIE, v);
        }
    }
    let before = headers.clone();
    let sid = "fe12736d0ef927f9224a3336b65ee84b";
    set_cookie::apply(&conf, status, &mut headers, sid, &choice, 1_571_297_169, sel & 0x01 != 0);
    for v in headers.get_all(SET_COOKIE) {
        assert!(HeaderValue::from_bytes(v.as_bytes()).is_ok());
    }
    if status.as_u16() >= 400 {
        assert_eq!(before, headers);
        return;
    }
    let named = |h: &HeaderMap| {
        h.get_all(SET_COOKIE)
            .iter()
            .filter(|v| value_range(v.as_bytes(), &conf.cookie).is_some())
            .count()
    };
    match mode {
        Mode::Rewrite => {
            if let Some(first) = headers
                .get_all(SET_COOKIE)
                .iter()
                .find_map(|v| value_range(v.as_bytes(), &conf.cookie).map(|r| (v, r)))
            {
                assert_eq!(first.0.as_bytes().get(first.1), Some(sid.as_bytes()));
            }
        }
        Mode::Insert if conf.indirect && named(&headers) > 0 && headers != before => {
            assert_eq!(named(&headers), 1);
        }
        _ => {}
    }
});
