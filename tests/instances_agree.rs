//! Two proxies with the same configuration, no coordination between them: one
//! client's cookie, sent to both (alternately, and the same cookie to both at
//! once), must land on the same backend and get the same `Set-Cookie` in
//! meaning for a whole session: insert, refresh, maxidle expiry, fallback after
//! a backend dies. This is what lets N instances run behind any L4 balancer
//! (docs/deploy.md). Time is controlled as in tests/proxy_sticky.rs: the
//! cookies carry timestamps in the past.
//!
//! A request without a valid cookie is a new session: each instance picks a
//! backend with its own round robin, so the two may pick differently; from the
//! cookie it mints on, both agree. With two backends, fallback has one choice,
//! so both instances re-pin to the same one.

mod common;

use common::*;

const STICKY: &str = "session_sticky cookie=route maxidle=3600 maxlife=86400 path=/ fallback=on";

fn conf(servers: &[String]) -> String {
    let servers: String = servers
        .iter()
        .map(|s| format!("    server {s};\n"))
        .collect();
    format!(
        "events {{}}\nhttp {{\n  upstream app {{\n    {STICKY};\n{servers}  }}\n  server {{\n    listen 127.0.0.1:0;\n    location / {{ proxy_pass http://app; }}\n  }}\n}}\n"
    )
}

/// A `Set-Cookie` for `route` taken apart: sid, lastseen, firstseen, and the
/// attributes (sorted, case kept).
#[derive(Debug)]
struct Minted {
    sid: String,
    last: i64,
    first: i64,
    attributes: Vec<String>,
}

fn minted(r: &Reply) -> Minted {
    let all = r.set_cookies();
    let line = all
        .iter()
        .find(|c| c.starts_with("route="))
        .unwrap_or_else(|| panic!("a route cookie in {all:?}"));
    let mut parts = line.split(';').map(str::trim);
    let value = parts
        .next()
        .and_then(|p| p.strip_prefix("route="))
        .unwrap_or("");
    let fields: Vec<&str> = value.split('|').collect();
    assert_eq!(fields.len(), 3, "{line}");
    let mut attributes: Vec<String> = parts
        .filter(|a| !a.to_ascii_lowercase().starts_with("expires="))
        .map(str::to_string)
        .collect();
    attributes.sort();
    Minted {
        sid: fields[0].to_string(),
        last: fields[1].parse().expect("lastseen"),
        first: fields[2].parse().expect("firstseen"),
        attributes,
    }
}

/// The same cookie to both proxies: the same backend, the same cookie in
/// meaning (sid, firstseen, attributes; lastseen is "now" on each, within a
/// second or two). Returns the backend and the cookie value to go on with.
async fn both(p1: &TestProxy, p2: &TestProxy, cookie: &str) -> (String, Option<String>) {
    let r1 = get(p1.addr, "/", &[("cookie", cookie)]).await;
    let r2 = get(p2.addr, "/", &[("cookie", cookie)]).await;
    assert_eq!((r1.status, r2.status), (200, 200), "{cookie}");
    let (b1, b2) = (r1.backend(), r2.backend());
    assert_eq!(b1, b2, "the same backend for {cookie}");
    let c1 = r1.cookie_value("route");
    assert_eq!(c1.is_some(), r2.cookie_value("route").is_some(), "{cookie}");
    if c1.is_some() {
        let (m1, m2) = (minted(&r1), minted(&r2));
        assert_eq!(m1.sid, m2.sid, "{cookie}");
        assert_eq!(m1.first, m2.first, "{cookie}");
        assert!((m1.last - m2.last).abs() <= 2, "{m1:?} {m2:?}");
        assert_eq!(m1.attributes, m2.attributes, "{cookie}");
    }
    (b1.expect("a backend answered"), c1)
}

#[tokio::test]
async fn two_instances_route_one_session_the_same_way() {
    let mut a = Backend::start("a");
    let b = Backend::start("b");
    let servers = [a.peer(), b.peer()];
    let (p1, p2) = (start_proxy(&conf(&servers)), start_proxy(&conf(&servers)));
    let sid_of = |who: &str| if who == "a" { a.sid() } else { b.sid() };

    // Insert: a new session on the first instance.
    let r = get(p1.addr, "/", &[]).await;
    let first_pick = r.backend().expect("a backend");
    let m = minted(&r);
    assert_eq!(m.sid, sid_of(&first_pick));
    assert!((m.last - now()).abs() <= 2 && m.first == m.last);

    // The session, alternately on each instance, each reply's cookie sent on.
    let session_first = m.first;
    let mut cookie = format!("route={}|{}|{}", m.sid, m.last, m.first);
    for i in 0..6 {
        let p = if i % 2 == 0 { &p2 } else { &p1 };
        let r = get(p.addr, "/", &[("cookie", &cookie)]).await;
        assert_eq!(
            r.backend().as_deref(),
            Some(first_pick.as_str()),
            "request {i}"
        );
        let m = minted(&r);
        assert_eq!(
            (m.sid.clone(), m.first),
            (sid_of(&first_pick), session_first),
            "request {i}"
        );
        cookie = format!("route={}|{}|{}", m.sid, m.last, m.first);
    }

    // Refresh: an idle but valid cookie, the same one to both at once.
    let sid = sid_of(&first_pick);
    let firstseen = now() - 5000;
    let idle = format!("route={sid}|{}|{firstseen}", now() - 1800);
    let (who, value) = both(&p1, &p2, &idle).await;
    assert_eq!(who, first_pick);
    let value = value.expect("refreshed");
    assert!(
        value.starts_with(&format!("{sid}|")) && value.ends_with(&format!("|{firstseen}")),
        "{value}"
    );

    // maxidle expiry: a new session on each, each pick then honoured by both.
    let expired = format!("route={sid}|{}|{}", now() - 4000, now() - 5000);
    for p in [&p1, &p2] {
        let r = get(p.addr, "/", &[("cookie", &expired)]).await;
        let who = r.backend().expect("a backend");
        let m = minted(&r);
        assert_eq!(m.sid, sid_of(&who), "the new session's sid");
        assert!((m.first - now()).abs() <= 2, "a fresh firstseen: {m:?}");
        let next = format!("route={}|{}|{}", m.sid, m.last, m.first);
        let (again, _) = both(&p1, &p2, &next).await;
        assert_eq!(again, who, "both honour the new pin");
    }

    // Fallback: the pinned backend dies; both re-pin to the one left, alike.
    let pinned_a = format!("route={}|{}|{}", a.sid(), now() - 10, now() - 100);
    a.stop();
    let (who, value) = both(&p1, &p2, &pinned_a).await;
    assert_eq!(who, "b");
    let value = value.expect("re-pinned");
    assert!(value.starts_with(&format!("{}|", b.sid())), "{value}");
    for i in 0..4 {
        let p = if i % 2 == 0 { &p1 } else { &p2 };
        let r = get(p.addr, "/", &[("cookie", &format!("route={value}"))]).await;
        assert_eq!(
            r.backend().as_deref(),
            Some("b"),
            "request {i} after fallback"
        );
    }
}
