//! session_sticky beyond Tengine (issue 19) over real sockets: cookie
//! attributes, keyed sids, signed cookies with key rotation, learn mode,
//! `nocache`, the cookie on a 101, `fallback=off` with passive failures, and
//! the `$sticky_*` variables.

mod common;

use common::*;
use sticky_proxy::sticky::Keys;

const K1: &str = "k1-0123456789abcdef";
const K2: &str = "k2-0123456789abcdef";

fn two() -> (Backend, Backend) {
    (Backend::start("a"), Backend::start("b"))
}

/// The backend (of `a`, `b`) that answered `r`.
fn who<'a>(r: &Reply, a: &'a Backend, b: &'a Backend) -> &'a Backend {
    match r.backend().as_deref() {
        Some("a") => a,
        Some("b") => b,
        other => panic!("no backend answered: {other:?} {}", r.text()),
    }
}

#[tokio::test]
async fn inserted_cookie_carries_our_attributes() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky httponly secure samesite=lax partitioned",
        &[a.peer(), b.peer()],
    ));
    let r = get(p.addr, "/", &[]).await;
    let sid = who(&r, &a, &b).sid();
    assert_eq!(
        r.set_cookies(),
        vec![format!(
            "route={sid}; Path=/; HttpOnly; Secure; SameSite=Lax; Partitioned"
        )]
    );
    // secure=auto on a plain listener: no Secure; samesite=none brings it.
    let p = start_proxy(&sticky_conf(
        "session_sticky secure=auto",
        &[a.peer(), b.peer()],
    ));
    let r = get(p.addr, "/", &[]).await;
    assert_eq!(
        r.set_cookies(),
        vec![format!("route={}; Path=/", who(&r, &a, &b).sid())]
    );
    let p = start_proxy(&sticky_conf(
        "session_sticky secure=auto samesite=none",
        &[a.peer(), b.peer()],
    ));
    let r = get(p.addr, "/", &[]).await;
    assert_eq!(
        r.set_cookies(),
        vec![format!(
            "route={}; Path=/; Secure; SameSite=None",
            who(&r, &a, &b).sid()
        )]
    );
}

#[tokio::test]
async fn rewrite_keeps_the_backends_attributes_and_adds_only_missing_ones() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=JSESSIONID mode=rewrite httponly secure samesite=lax",
        &[a.peer(), b.peer()],
    ));
    let backend = "JSESSIONID=abc; Path=/shop; HttpOnly; SameSite=Strict";
    let r = get(p.addr, "/", &[("x-set-cookie", backend)]).await;
    let sid = who(&r, &a, &b).sid();
    assert_eq!(
        r.set_cookies(),
        vec![format!(
            "JSESSIONID={sid}; Path=/shop; HttpOnly; SameSite=Strict; Secure"
        )]
    );
}

#[tokio::test]
async fn hmac_sid_hides_the_backend_and_pins() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        &format!("session_sticky hash=hmac key={K1}"),
        &[a.peer(), b.peer()],
    ));
    let keys = Keys::new([K1]).expect("key");
    let r = get(p.addr, "/", &[]).await;
    let first = who(&r, &a, &b);
    let sid = keys.sid(&first.peer()).expect("sid");
    assert_ne!(sid, first.sid(), "not md5 of IP:PORT");
    assert_eq!(sid.len(), 32);
    assert_eq!(r.set_cookies(), vec![format!("route={sid}; Path=/")]);
    for _ in 0..4 {
        let again = get(p.addr, "/", &[("cookie", &format!("route={sid}"))]).await;
        assert_eq!(again.backend(), first.name.clone().into());
        assert!(again.set_cookies().is_empty());
    }
    // The md5 sid a client could compute names no backend: re-pinned.
    let other = if first.name == "a" { &b } else { &a };
    let md5 = get(
        p.addr,
        "/",
        &[("cookie", &format!("route={}", other.sid()))],
    )
    .await;
    let repinned = who(&md5, &a, &b);
    assert_eq!(
        md5.set_cookies(),
        vec![format!(
            "route={}; Path=/",
            keys.sid(&repinned.peer()).expect("sid")
        )]
    );
}

/// `SID|LASTSEEN|FIRSTSEEN|MAC`.
fn signed_fields(value: &str) -> (String, i64, i64, String) {
    let parts: Vec<&str> = value.split('|').collect();
    assert_eq!(parts.len(), 4, "signed cookie: {value}");
    (
        parts[0].to_string(),
        parts[1].parse().expect("lastseen"),
        parts[2].parse().expect("firstseen"),
        parts[3].to_string(),
    )
}

#[tokio::test]
async fn signed_cookie_pins_and_a_forged_one_starts_a_new_session() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        &format!("session_sticky sign=on key={K1} maxidle=30"),
        &[a.peer(), b.peer()],
    ));
    let r = get(p.addr, "/", &[]).await;
    let first = who(&r, &a, &b).name.clone();
    let cookie = r.cookie_value("route").expect("cookie");
    let (sid, last, firstseen, mac) = signed_fields(&cookie);
    assert_eq!(mac.len(), 32);
    for _ in 0..3 {
        let again = get(p.addr, "/", &[("cookie", &format!("route={cookie}"))]).await;
        assert_eq!(again.backend(), Some(first.clone()));
        let (s, _, f, _) = signed_fields(&again.cookie_value("route").expect("refreshed"));
        assert_eq!((s, f), (sid.clone(), firstseen));
    }
    // Stretching LASTSEEN, or moving the pin, without the key: a new session.
    let stretched = format!("route={sid}|{}|{firstseen}|{mac}", last + 20);
    let other_sid = if first == "a" { b.sid() } else { a.sid() };
    let moved = format!("route={other_sid}|{last}|{firstseen}|{mac}");
    for forged in [stretched, moved] {
        let r = get(p.addr, "/", &[("cookie", &forged)]).await;
        assert_eq!(r.status, 200);
        let (_, l, f, _) = signed_fields(&r.cookie_value("route").expect("new cookie"));
        assert!((f - now()).abs() <= 2 && l == f, "fresh session: {forged}");
    }
}

/// One client's session across a fleet in the middle of a key change: two
/// proxies with different key lists, requests alternating between them.
async fn session_survives(old: &TestProxy, new: &TestProxy, cookie: &mut String, pinned: &str) {
    for i in 0..6 {
        let p = if i % 2 == 0 { old } else { new };
        let r = get(p.addr, "/", &[("cookie", cookie.as_str())]).await;
        assert_eq!(r.backend().as_deref(), Some(pinned), "request {i}");
        if let Some(v) = r.cookie_value("route") {
            *cookie = format!("route={v}");
        }
    }
}

#[tokio::test]
async fn rolling_key_rotation_loses_no_session() {
    let (a, b) = two();
    let peers = [a.peer(), b.peer()];
    let conf = |keys: &[&str]| {
        let keys: String = keys.iter().map(|k| format!(" key={k}")).collect();
        sticky_conf(
            &format!("session_sticky hash=hmac sign=on maxidle=600{keys}"),
            &peers,
        )
    };
    // Stage 0: K1 only. Stage 1: K2 added (K1 still signs). Stage 2: K2 signs.
    // Stage 3: K1 dropped. At each step half the fleet has moved on.
    let stages = [vec![K1], vec![K1, K2], vec![K2, K1], vec![K2]];
    let first = start_proxy(&conf(&stages[0]));
    // Live clients, each pinned somewhere.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let r = get(first.addr, "/", &[]).await;
        let pinned = r.backend().expect("backend");
        clients.push((
            format!("route={}", r.cookie_value("route").expect("cookie")),
            pinned,
        ));
    }
    for pair in stages.windows(2) {
        let old = start_proxy(&conf(&pair[0]));
        let new = start_proxy(&conf(&pair[1]));
        for (cookie, pinned) in clients.iter_mut() {
            session_survives(&old, &new, cookie, pinned).await;
        }
    }
    // At the end every cookie is keyed and signed by K2 alone.
    let last = start_proxy(&conf(&[K2]));
    let k2 = Keys::new([K2]).expect("key");
    for (cookie, pinned) in &clients {
        let r = get(last.addr, "/", &[("cookie", cookie.as_str())]).await;
        assert_eq!(r.backend().as_deref(), Some(pinned.as_str()));
        let peer = if pinned == "a" { a.peer() } else { b.peer() };
        let (sid, ..) = signed_fields(cookie.trim_start_matches("route="));
        assert_eq!(Some(sid), k2.sid(&peer));
    }
}
