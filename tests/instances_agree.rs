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
//!
//! The walk runs twice: with Tengine's md5 sids, and with keyed sids and
//! signed cookies (`hash=hmac sign=on`, the same key on both instances; the
//! idle and expired cookies are signed by the test with `Keys::sign`).

mod common;

use common::*;
use sticky_proxy::sticky::Keys;

const STICKY: &str = "session_sticky cookie=route maxidle=3600 maxlife=86400 path=/ fallback=on";
const KEY: &str = "agree-0123456789abcdef";

fn conf(sticky: &str, servers: &[String]) -> String {
    let servers: String = servers
        .iter()
        .map(|s| format!("    server {s};\n"))
        .collect();
    format!(
        "events {{}}\nhttp {{\n  upstream app {{\n    {sticky};\n{servers}  }}\n  server {{\n    listen 127.0.0.1:0;\n    location / {{ proxy_pass http://app; }}\n  }}\n}}\n"
    )
}

/// How the instances write cookie values: `SID|LASTSEEN|FIRSTSEEN`, and with
/// `sign=on` a `|MAC` after it under the signing key.
struct Cookies {
    signer: Option<Keys>,
}

impl Cookies {
    /// A cookie value as an instance would mint it (for cookies the test
    /// dates in the past).
    fn value(&self, sid: &str, last: i64, first: i64) -> String {
        let body = format!("{sid}|{last}|{first}");
        match &self.signer {
            None => body,
            Some(keys) => {
                let mac = keys.sign(body.as_bytes()).expect("a signing key");
                format!("{body}|{}", String::from_utf8_lossy(&mac))
            }
        }
    }

    /// The `route` `Set-Cookie` of `r` taken apart; with a signer, its MAC
    /// must be the signing key's.
    fn minted(&self, r: &Reply) -> Minted {
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
        let body = match &self.signer {
            None => value,
            Some(keys) => {
                let (body, mac) = value.rsplit_once('|').unwrap_or(("", ""));
                assert_eq!(
                    keys.verify(body.as_bytes(), mac.as_bytes()),
                    Some(0),
                    "signed by the key: {line}"
                );
                body
            }
        };
        let fields: Vec<&str> = body.split('|').collect();
        assert_eq!(fields.len(), 3, "{line}");
        let mut attributes: Vec<String> = parts
            .filter(|a| !a.to_ascii_lowercase().starts_with("expires="))
            .map(str::to_string)
            .collect();
        attributes.sort();
        Minted {
            value: value.to_string(),
            sid: fields[0].to_string(),
            last: fields[1].parse().expect("lastseen"),
            first: fields[2].parse().expect("firstseen"),
            attributes,
        }
    }
}

/// A `Set-Cookie` for `route` taken apart: the whole value (to send on), sid,
/// lastseen, firstseen, and the attributes (sorted, case kept).
#[derive(Debug)]
struct Minted {
    value: String,
    sid: String,
    last: i64,
    first: i64,
    attributes: Vec<String>,
}

/// The same cookie to both proxies: the same backend, the same cookie in
/// meaning (sid, firstseen, attributes; lastseen is "now" on each, within a
/// second or two). Returns the backend and the cookie minted, if any.
async fn both(
    p1: &TestProxy,
    p2: &TestProxy,
    cookies: &Cookies,
    cookie: &str,
) -> (String, Option<Minted>) {
    let r1 = get(p1.addr, "/", &[("cookie", cookie)]).await;
    let r2 = get(p2.addr, "/", &[("cookie", cookie)]).await;
    assert_eq!((r1.status, r2.status), (200, 200), "{cookie}");
    let (b1, b2) = (r1.backend(), r2.backend());
    assert_eq!(b1, b2, "the same backend for {cookie}");
    let has = r1.cookie_value("route").is_some();
    assert_eq!(has, r2.cookie_value("route").is_some(), "{cookie}");
    let mut m = None;
    if has {
        let (m1, m2) = (cookies.minted(&r1), cookies.minted(&r2));
        assert_eq!(m1.sid, m2.sid, "{cookie}");
        assert_eq!(m1.first, m2.first, "{cookie}");
        assert!((m1.last - m2.last).abs() <= 2, "{m1:?} {m2:?}");
        assert_eq!(m1.attributes, m2.attributes, "{cookie}");
        m = Some(m1);
    }
    (b1.expect("a backend answered"), m)
}

/// One client's session over two instances configured with `sticky`, whose
/// sid for a backend is `sid`; `cookies` writes values as they do.
async fn walk(sticky: &str, sid: impl Fn(&Backend) -> String, cookies: Cookies) {
    let mut a = Backend::start("a");
    let b = Backend::start("b");
    let servers = [a.peer(), b.peer()];
    let (p1, p2) = (
        start_proxy(&conf(sticky, &servers)),
        start_proxy(&conf(sticky, &servers)),
    );
    let sid_of = |who: &str| if who == "a" { sid(&a) } else { sid(&b) };

    // Insert: a new session on the first instance.
    let r = get(p1.addr, "/", &[]).await;
    let first_pick = r.backend().expect("a backend");
    let m = cookies.minted(&r);
    assert_eq!(m.sid, sid_of(&first_pick));
    assert!((m.last - now()).abs() <= 2 && m.first == m.last);

    // The session, alternately on each instance, each reply's cookie sent on.
    let session_first = m.first;
    let mut cookie = format!("route={}", m.value);
    for i in 0..6 {
        let p = if i % 2 == 0 { &p2 } else { &p1 };
        let r = get(p.addr, "/", &[("cookie", &cookie)]).await;
        assert_eq!(
            r.backend().as_deref(),
            Some(first_pick.as_str()),
            "request {i}"
        );
        let m = cookies.minted(&r);
        assert_eq!(
            (m.sid.clone(), m.first),
            (sid_of(&first_pick), session_first),
            "request {i}"
        );
        cookie = format!("route={}", m.value);
    }

    // Refresh: an idle but valid cookie, the same one to both at once.
    let sid_first = sid_of(&first_pick);
    let firstseen = now() - 5000;
    let idle = format!(
        "route={}",
        cookies.value(&sid_first, now() - 1800, firstseen)
    );
    let (who, m) = both(&p1, &p2, &cookies, &idle).await;
    assert_eq!(who, first_pick);
    let m = m.expect("refreshed");
    assert_eq!((m.sid, m.first), (sid_first.clone(), firstseen), "{idle}");
    assert!((m.last - now()).abs() <= 2, "a fresh lastseen: {}", m.value);

    // maxidle expiry: a new session on each, each pick then honoured by both.
    let expired = format!(
        "route={}",
        cookies.value(&sid_first, now() - 4000, now() - 5000)
    );
    for p in [&p1, &p2] {
        let r = get(p.addr, "/", &[("cookie", &expired)]).await;
        let who = r.backend().expect("a backend");
        let m = cookies.minted(&r);
        assert_eq!(m.sid, sid_of(&who), "the new session's sid");
        assert!((m.first - now()).abs() <= 2, "a fresh firstseen: {m:?}");
        let (again, _) = both(&p1, &p2, &cookies, &format!("route={}", m.value)).await;
        assert_eq!(again, who, "both honour the new pin");
    }

    // Fallback: the pinned backend dies; both re-pin to the one left, alike.
    let pinned_a = format!("route={}", cookies.value(&sid(&a), now() - 10, now() - 100));
    a.stop();
    let (who, m) = both(&p1, &p2, &cookies, &pinned_a).await;
    assert_eq!(who, "b");
    let m = m.expect("re-pinned");
    assert_eq!(m.sid, sid(&b), "{}", m.value);
    for i in 0..4 {
        let p = if i % 2 == 0 { &p1 } else { &p2 };
        let r = get(p.addr, "/", &[("cookie", &format!("route={}", m.value))]).await;
        assert_eq!(
            r.backend().as_deref(),
            Some("b"),
            "request {i} after fallback"
        );
    }
}

#[tokio::test]
async fn two_instances_route_one_session_the_same_way() {
    walk(STICKY, Backend::sid, Cookies { signer: None }).await;
}

#[tokio::test]
async fn two_instances_agree_with_keyed_signed_cookies() {
    let keys = Keys::new([KEY]).expect("key");
    let sid_keys = keys.clone();
    walk(
        &format!("{STICKY} hash=hmac key={KEY} sign=on"),
        move |backend: &Backend| sid_keys.sid(&backend.peer()).expect("sid"),
        Cookies { signer: Some(keys) },
    )
    .await;
}
