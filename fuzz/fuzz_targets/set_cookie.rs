//! Fuzz the response side of session_sticky: arbitrary backend `Set-Cookie`
//! values (separated by `\n`), a mode/config byte and a status byte. Properties:
//! never panics; every `Set-Cookie` afterwards is a valid header value; status
//! >= 400 leaves the headers untouched; rewrite leaves the sid as the value of
//! the first `route` cookie it edited; insert+indirect leaves exactly one
//! `route` Set-Cookie when it sets one.
//! Ours (a third byte: httponly, secure, secure=auto, samesite, partitioned,
//! nocache; a fourth: sign=on, learn=JSESSIONID, TLS): a set cookie under
//! `nocache` leaves the response unfit for shared caches; an inserted signed
//! value verifies; learn mode sets our cookie on a new session only when the
//! backend set `JSESSIONID`; a rewritten or prefixed cookie carries `HttpOnly`
//! when asked, once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sticky_proxy::sticky::set_cookie::{self, value_range};
use sticky_proxy::sticky::{cache, Attrs, Choice, Decision, Keys, Mode, Outcome, SameSite, Secure, StickyConf};

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&st, rest)) = rest.split_first() else {
        return;
    };
    let Some((&ours, rest)) = rest.split_first() else {
        return;
    };
    let Some((&extra, rest)) = rest.split_first() else {
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
        attrs: Attrs {
            httponly: ours & 0x01 != 0,
            secure: match ours & 0x06 {
                0x02 => Secure::On,
                0x04 => Secure::Auto,
                _ => Secure::Off,
            },
            samesite: match (ours >> 3) & 0x03 {
                1 => Some(SameSite::Strict),
                2 => Some(SameSite::Lax),
                3 => Some(SameSite::None),
                _ => None,
            },
            partitioned: ours & 0x20 != 0,
        },
        nocache: ours & 0x40 != 0,
        sign: extra & 0x01 != 0 && mode == Mode::Insert,
        keys: Keys::new(["fuzz-key-0123456789abc"]).unwrap_or_default(),
        learn: if extra & 0x02 != 0 && mode == Mode::Insert {
            vec!["JSESSIONID".to_string()]
        } else {
            Vec::new()
        },
        ..StickyConf::default()
    };
    let tls = extra & 0x04 != 0;
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
    let applied = set_cookie::apply(&conf, status, &mut headers, sid, &choice, 1_571_297_169, tls);
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
    if applied.set && conf.nocache {
        assert!(cache::forbids_shared_caching(&headers));
    }
    let ours_set: Vec<&HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| value_range(v.as_bytes(), &conf.cookie).is_some())
        .filter(|v| !before.get_all(SET_COOKIE).iter().any(|b| b == *v))
        .collect();
    if conf.sign {
        for v in &ours_set {
            let r = value_range(v.as_bytes(), &conf.cookie).expect("named");
            let value = &v.as_bytes()[r];
            if value.is_empty() {
                continue; // learn mode's expiry
            }
            let bar = value.iter().rposition(|b| *b == b'|').expect("signed");
            assert!(conf.keys.verify(&value[..bar], &value[bar + 1..]).is_some());
        }
    }
    let learned = before
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| value_range(v.as_bytes(), "JSESSIONID").is_some());
    if !conf.learn.is_empty() && decision == Decision::New(0) && !learned {
        assert!(ours_set.is_empty());
    }
    if conf.attrs.httponly && matches!(mode, Mode::Rewrite | Mode::Prefix) {
        for v in &ours_set {
            if let Ok(c) = cookie::Cookie::parse(String::from_utf8_lossy(v.as_bytes()).into_owned()) {
                assert_eq!(c.http_only(), Some(true));
            }
            // Attributes (after the first `;`) never gain a second HttpOnly.
            let attrs = |b: &[u8]| {
                b.split(|c| *c == b';')
                    .skip(1)
                    .filter(|a| a.trim_ascii().eq_ignore_ascii_case(b"httponly"))
                    .count()
            };
            let was = before.get_all(SET_COOKIE).iter().map(|b| attrs(b.as_bytes())).max();
            assert!(attrs(v.as_bytes()) <= was.unwrap_or(0).max(1));
        }
    }
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
