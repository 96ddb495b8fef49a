//! The worked example of spec/session_sticky.md section 7, step by step, through
//! the public `Sticky` facade the proxy uses (request side, then response side).

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use sticky_proxy::sticky::decide::after_failure;
use sticky_proxy::sticky::sid::md5_sid;
use sticky_proxy::sticky::{Decision, Mode, Outcome, SidIndex, Sticky, StickyConf};

const T0: i64 = 1_571_297_169;
const PEERS: [&str; 2] = ["10.0.23.20:80", "10.0.23.21:80"];

fn example(fallback: bool) -> Sticky {
    // session_sticky cookie=LBSID mode=insert option=indirect maxidle=30 maxlife=3600;
    let conf = StickyConf {
        cookie: "LBSID".into(),
        mode: Mode::Insert,
        indirect: true,
        maxidle: Some(30),
        maxlife: Some(3600),
        fallback,
        ..StickyConf::default()
    };
    let index = SidIndex::from_peers(&conf, PEERS.iter().map(|p| (*p, None)));
    Sticky::new(conf, index)
}

/// Round robin over the two peers, skipping `exclude` and down peers.
struct RoundRobin {
    next: usize,
    up: [bool; 2],
}

impl RoundRobin {
    fn pick(&mut self, exclude: Option<usize>) -> Option<usize> {
        for _ in 0..2 {
            let i = self.next % 2;
            self.next += 1;
            if Some(i) != exclude && self.up[i] {
                return Some(i);
            }
        }
        None
    }
}

fn request(cookie: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(c) = cookie {
        h.insert(COOKIE, HeaderValue::from_str(c).expect("valid cookie"));
    }
    h
}

fn set_cookie(h: &HeaderMap) -> Option<String> {
    h.get(SET_COOKIE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

#[test]
fn worked_example_step_by_step() {
    let sticky = example(true);
    let sid20 = md5_sid("10.0.23.20:80");
    let sid21 = md5_sid("10.0.23.21:80");
    assert_eq!(sid20, "fe12736d0ef927f9224a3336b65ee84b");
    let mut rr = RoundRobin {
        next: 0,
        up: [true; 2],
    };
    let up = |i: usize| i < 2;

    // 1. No cookie: round robin picks 10.0.23.20:80, the response pins it.
    let mut req = request(None);
    let c1 = sticky.on_request(&mut req, T0, up, |ex| rr.pick(ex));
    assert_eq!((c1.decision, c1.outcome), (Decision::New(0), Outcome::New));
    let mut resp = HeaderMap::new();
    sticky.on_response(StatusCode::OK, &mut resp, &c1, T0, false);
    let cookie1 = format!("LBSID={sid20}|{T0}|{T0}");
    assert_eq!(set_cookie(&resp), Some(format!("{cookie1}; Path=/")));

    // 2. 18 s later with that cookie: same server, the backend sees no LBSID, the
    //    response refreshes LASTSEEN and keeps FIRSTSEEN.
    let t2 = T0 + 18;
    let mut req = request(Some(&format!("a=1; {cookie1}")));
    let c2 = sticky.on_request(&mut req, t2, up, |ex| rr.pick(ex));
    assert_eq!(
        (c2.decision, c2.outcome),
        (Decision::Pinned(0), Outcome::Hit)
    );
    assert_eq!(
        req.get(COOKIE).map(HeaderValue::as_bytes),
        Some(&b"a=1"[..])
    );
    let mut req_only = request(Some(&cookie1));
    sticky.on_request(&mut req_only, t2, up, |ex| rr.pick(ex));
    assert!(
        req_only.get(COOKIE).is_none(),
        "empty Cookie header dropped"
    );
    let mut resp = HeaderMap::new();
    sticky.on_response(StatusCode::OK, &mut resp, &c2, t2, false);
    let cookie2 = format!("LBSID={sid20}|{t2}|{T0}");
    assert_eq!(set_cookie(&resp), Some(format!("{cookie2}; Path=/")));

    // 3. The same cookie 31 s after its LASTSEEN: idle-expired, new session by
    //    round robin, fresh FIRSTSEEN.
    let t3 = t2 + 31;
    let mut req = request(Some(&cookie2));
    let mut rr3 = RoundRobin {
        next: 1,
        up: [true; 2],
    };
    let c3 = sticky.on_request(&mut req, t3, up, |ex| rr3.pick(ex));
    assert_eq!(
        (c3.decision, c3.outcome),
        (Decision::New(1), Outcome::Expired)
    );
    assert!(
        req.get(COOKIE).is_none(),
        "an invalid cookie is stripped too"
    );
    let mut resp = HeaderMap::new();
    sticky.on_response(StatusCode::OK, &mut resp, &c3, t3, false);
    assert_eq!(
        set_cookie(&resp),
        Some(format!("LBSID={sid21}|{t3}|{t3}; Path=/"))
    );

    // One second earlier the same cookie was still valid (idle == maxidle).
    let mut req = request(Some(&cookie2));
    let c3b = sticky.on_request(&mut req, t3 - 1, up, |ex| rr.pick(ex));
    assert_eq!(c3b.decision, Decision::Pinned(0));

    // 4. 10.0.23.20 stops answering (health says down): fallback=on re-pins to
    //    10.0.23.21 with a new FIRSTSEEN.
    let t4 = t2 + 5;
    let mut down = RoundRobin {
        next: 0,
        up: [false, true],
    };
    let mut req = request(Some(&cookie2));
    let c4 = sticky.on_request(&mut req, t4, |i| i == 1, |ex| down.pick(ex));
    assert_eq!(
        (c4.decision, c4.outcome),
        (Decision::Fallback(1), Outcome::Fallback)
    );
    let mut resp = HeaderMap::new();
    sticky.on_response(StatusCode::OK, &mut resp, &c4, t4, false);
    assert_eq!(
        set_cookie(&resp),
        Some(format!("LBSID={sid21}|{t4}|{t4}; Path=/"))
    );

    // ... or the connection to it fails although it looked up: same re-pin.
    let mut req = request(Some(&cookie2));
    let pinned = sticky.on_request(&mut req, t4, up, |ex| rr.pick(ex));
    assert_eq!(pinned.decision, Decision::Pinned(0));
    let mut after = RoundRobin {
        next: 0,
        up: [true; 2],
    };
    let c4b = after_failure(&sticky.conf, &pinned, 0, t4, |ex| after.pick(ex));
    assert_eq!(c4b.decision, Decision::Fallback(1));
    let mut resp = HeaderMap::new();
    sticky.on_response(StatusCode::OK, &mut resp, &c4b, t4, false);
    assert_eq!(
        set_cookie(&resp),
        Some(format!("LBSID={sid21}|{t4}|{t4}; Path=/"))
    );

    // With fallback=off the client gets 502, and that response has no cookie.
    let strict = example(false);
    let mut req = request(Some(&cookie2));
    let mut down = RoundRobin {
        next: 0,
        up: [false, true],
    };
    let c4c = strict.on_request(&mut req, t4, |i| i == 1, |ex| down.pick(ex));
    assert_eq!(c4c.decision, Decision::Refuse);
    let mut resp = HeaderMap::new();
    strict.on_response(StatusCode::BAD_GATEWAY, &mut resp, &c4c, t4, false);
    assert!(resp.is_empty());
    let refused = after_failure(&strict.conf, &pinned, 0, t4, |ex| rr.pick(ex));
    assert_eq!(refused.decision, Decision::Refuse);
}

#[test]
fn cookie_issued_by_tengine_keeps_routing() {
    // A Tengine-issued value for the default `route` cookie, md5 mode, no timestamps.
    let conf = StickyConf::default();
    let index = SidIndex::from_peers(&conf, [("127.0.0.1:9000", None), ("10.0.23.20:80", None)]);
    let sticky = Sticky::new(conf, index);
    let mut req = request(Some("route=44fb3a27ed30ae5193ebd879ca2cf039"));
    let c = sticky.on_request(&mut req, T0, |_| true, |_| Some(1));
    assert_eq!(c.decision, Decision::Pinned(0));
    // Direct mode: the backend still sees the cookie; a hit sets no cookie.
    assert!(req.get(COOKIE).is_some());
    let mut resp = HeaderMap::new();
    sticky.on_response(StatusCode::OK, &mut resp, &c, T0, false);
    assert!(resp.is_empty());
}
