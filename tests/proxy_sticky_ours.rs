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

/// gorouter's own scenario: `__VCAP_ID__` learned from the app's `JSESSIONID`,
/// instance ids as sids.
#[tokio::test]
async fn gorouter_learn_mode_end_to_end() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=__VCAP_ID__ learn=JSESSIONID hash=plain",
        &[
            format!("{} id=app-0", a.peer()),
            format!("{} id=app-1", b.peer()),
        ],
    ));
    let id = |r: &Reply| {
        if who(r, &a, &b).name == "a" {
            "app-0"
        } else {
            "app-1"
        }
    };
    // The app sets no session: no __VCAP_ID__.
    let r = get(p.addr, "/", &[]).await;
    assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    // The app starts a session: __VCAP_ID__ with the same lifetime and path.
    let js = "JSESSIONID=abc123; Path=/shop; Max-Age=600; HttpOnly";
    let r = get(p.addr, "/", &[("x-set-cookie", js)]).await;
    let pinned = id(&r);
    let cookies = r.set_cookies();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert_eq!(cookies[0], js);
    let ours = &cookies[1];
    // Mirrored as the app wrote it: Max-Age without Expires (gorouter).
    assert_eq!(
        ours,
        &format!("__VCAP_ID__={pinned}; Path=/shop; Max-Age=600")
    );
    // Our cookie alone does not route: round robin reaches both instances.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        let r = get(p.addr, "/", &[("cookie", &format!("__VCAP_ID__={pinned}"))]).await;
        seen.insert(id(&r));
    }
    assert_eq!(seen.len(), 2, "without JSESSIONID the pin is ignored");
    // With the app's cookie too it does, and the app sees both cookies.
    let both = format!("JSESSIONID=abc123; __VCAP_ID__={pinned}");
    for _ in 0..6 {
        let r = get(p.addr, "/", &[("cookie", &both)]).await;
        assert_eq!(id(&r), pinned);
        assert!(r.set_cookies().is_empty());
        assert_eq!(r.seen("cookie"), vec![both.clone()]);
    }
    // The app ends the session: ours is expired in the same response.
    let r = get(
        p.addr,
        "/",
        &[
            ("cookie", &both),
            ("x-set-cookie", "JSESSIONID=; Path=/shop; Max-Age=0"),
        ],
    )
    .await;
    assert_eq!(id(&r), pinned);
    assert_eq!(
        r.set_cookies()[1],
        "__VCAP_ID__=; Path=/shop; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
}

#[tokio::test]
async fn nocache_marks_responses_that_set_the_cookie_private() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky nocache",
        &[a.peer(), b.peer()],
    ));
    let r = get(p.addr, "/", &[]).await;
    assert_eq!(r.set_cookies().len(), 1);
    assert_eq!(r.header("cache-control").as_deref(), Some("private"));
    let cookie = format!("route={}", who(&r, &a, &b).sid());
    let hit = get(p.addr, "/", &[("cookie", &cookie)]).await;
    assert!(hit.set_cookies().is_empty());
    assert_eq!(
        hit.header("cache-control"),
        None,
        "nothing set, nothing marked"
    );
}

/// A WebSocket client whose backend went away: the 101 from the new one
/// re-pins it, so its next upgrade lands there too.
#[tokio::test]
async fn a_101_re_pins_a_websocket_client_whose_backend_is_gone() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky maxidle=60",
        &[dead_addr().to_string(), a.peer()],
    ));
    let gone = sticky_proxy::sticky::sid::md5_sid(&dead_addr().to_string());
    let upgrade = |cookie: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\n\r\nhello"
        )
    };
    let wait = std::time::Duration::from_millis(300);
    let text = raw(
        p.addr,
        upgrade(&format!("route={gone}|{}|{}", now(), now())).as_bytes(),
        wait,
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: route="))
        .unwrap_or_else(|| panic!("no sticky cookie on the 101: {text}"));
    let value = line["set-cookie: route=".len()..]
        .split(';')
        .next()
        .expect("value");
    assert!(
        value.starts_with(&format!("{}|", a.sid())),
        "re-pinned to a: {line}"
    );
    assert!(text.ends_with("HELLO"), "the tunnel works: {text}");
    let again = raw(p.addr, upgrade(&format!("route={value}")).as_bytes(), wait).await;
    assert!(again.starts_with("HTTP/1.1 101"), "{again}");
    assert_eq!(a.hits(), 2);
    assert_eq!(b.hits(), 0);
}

#[tokio::test]
async fn fallback_off_tries_a_passively_failed_pin_as_soon_as_it_is_back() {
    let mut a = Backend::start("a");
    let b = Backend::start("b");
    let p = start_proxy(&sticky_conf(
        "session_sticky fallback=off",
        &[
            format!("{} max_fails=1 fail_timeout=60s", a.peer()),
            b.peer(),
        ],
    ));
    let pinned = format!("route={}", a.sid());
    a.stop();
    for _ in 0..3 {
        assert_eq!(get(p.addr, "/", &[("cookie", &pinned)]).await.status, 502);
    }
    a.restart();
    // Within fail_timeout: the pin is tried (nothing else may serve it).
    let r = get(p.addr, "/", &[("cookie", &pinned)]).await;
    assert_eq!((r.status, r.backend().as_deref()), (200, Some("a")));
    assert_eq!(b.hits(), 0);
}

#[tokio::test]
async fn sticky_variables_reach_headers_and_logs() {
    let (a, b) = two();
    let dir = std::env::temp_dir().join(format!("sticky-vars-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("access.log");
    let conf = format!(
        "events {{}}\nhttp {{\n  log_format s '$sticky_status $sticky_sid $sticky_learned';\n  \
         upstream app {{\n    session_sticky sign=on key={K1} learn=JSESSIONID;\n    \
         server {};\n    server {};\n  }}\n  server {{\n    listen 127.0.0.1:0;\n    \
         access_log {} s;\n    location / {{\n      proxy_pass http://app;\n      \
         proxy_set_header X-Sticky \"$sticky_status/$sticky_sid/$sticky_learned\";\n    }}\n  }}\n}}\n",
        a.peer(),
        b.peer(),
        log.display()
    );
    let p = start_proxy(&conf);
    // A forged cookie (bad MAC), the learned cookie present.
    let forged = format!("JSESSIONID=1; route={}|{}", a.sid(), "0".repeat(32));
    let r = get(p.addr, "/", &[("cookie", &forged)]).await;
    let served = who(&r, &a, &b).sid();
    assert_eq!(
        r.seen("x-sticky"),
        vec![format!("forged/{served}/JSESSIONID")]
    );
    // No learned cookie: a new session, no learned name.
    let r = get(p.addr, "/", &[]).await;
    let served2 = who(&r, &a, &b).sid();
    assert_eq!(r.seen("x-sticky"), vec![format!("new/{served2}/")]);
    drop(p);
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("forged {served} JSESSIONID"),
            format!("new {served2} -")
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
