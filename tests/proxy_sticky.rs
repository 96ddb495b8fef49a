//! session_sticky over real sockets (spec/session_sticky.md sections 3-6).

mod common;

use common::*;

fn two() -> (Backend, Backend) {
    (Backend::start("a"), Backend::start("b"))
}

/// `SID|LASTSEEN|FIRSTSEEN` split into its fields.
fn fields(value: &str) -> (String, i64, i64) {
    let parts: Vec<&str> = value.split('|').collect();
    assert_eq!(parts.len(), 3, "timestamped cookie: {value}");
    (
        parts[0].to_string(),
        parts[1].parse().expect("lastseen"),
        parts[2].parse().expect("firstseen"),
    )
}

#[tokio::test]
async fn tengine_minted_cookie_pins_its_backend_and_keeps_firstseen() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route maxidle=3600 maxlife=86400",
        &[a.peer(), b.peer()],
    ));
    let first = now() - 500;
    let cookie = format!("route={}|{}|{}", b.sid(), now() - 20, first);
    for _ in 0..6 {
        let r = get(p.addr, "/", &[("cookie", &cookie)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend().as_deref(), Some("b"));
        let (sid, last, firstseen) = fields(&r.cookie_value("route").expect("refreshed cookie"));
        assert_eq!(sid, b.sid());
        assert!((last - now()).abs() <= 2, "LASTSEEN refreshed to now");
        assert_eq!(firstseen, first, "FIRSTSEEN kept");
    }
    assert_eq!(a.hits(), 0);
}

#[tokio::test]
async fn new_session_gets_cookie_of_the_chosen_backend_in_exact_form() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=srv path=/app domain=example.com",
        &[a.peer(), b.peer()],
    ));
    let r = get(p.addr, "/", &[]).await;
    assert_eq!(r.status, 200);
    let who = r.backend().expect("a backend answered");
    let sid = if who == "a" { a.sid() } else { b.sid() };
    assert_eq!(
        r.set_cookies(),
        vec![format!("srv={sid}; Domain=example.com; Path=/app")]
    );
    // Without timestamps, a valid cookie is not set again.
    let again = get(p.addr, "/", &[("cookie", &format!("srv={sid}"))]).await;
    assert_eq!(again.backend(), Some(who));
    assert!(again.set_cookies().is_empty());
}

#[tokio::test]
async fn maxage_adds_max_age_and_expires() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=_srv_id maxage=3600",
        &[a.peer(), b.peer()],
    ));
    let r = get(p.addr, "/", &[]).await;
    let c = r.set_cookies().pop().expect("cookie");
    assert!(c.contains("; Path=/; Max-Age=3600; Expires="), "{c}");
    assert!(c.ends_with(" GMT"), "{c}");
}

#[tokio::test]
async fn expired_or_future_timestamps_start_a_new_session_with_fresh_firstseen() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route maxidle=30 maxlife=3600",
        &[a.peer(), b.peer()],
    ));
    let t = now();
    let cases = [
        ("idle", format!("{}|{}|{}", b.sid(), t - 100, t - 200)),
        ("life", format!("{}|{}|{}", b.sid(), t - 1, t - 4000)),
        (
            "future last",
            format!("{}|{}|{}", b.sid(), t + 100_000, t - 10),
        ),
        (
            "future first",
            format!("{}|{}|{}", b.sid(), t - 1, t + 100_000),
        ),
    ];
    for (what, value) in cases {
        let r = get(p.addr, "/", &[("cookie", &format!("route={value}"))]).await;
        assert_eq!(r.status, 200, "{what}");
        let (sid, last, first) = fields(&r.cookie_value("route").expect("new cookie"));
        assert!((first - now()).abs() <= 2, "{what}: fresh FIRSTSEEN");
        assert_eq!(last, first, "{what}: new session");
        let expected = if r.backend().as_deref() == Some("a") {
            a.sid()
        } else {
            b.sid()
        };
        assert_eq!(
            sid, expected,
            "{what}: cookie names the backend that answered"
        );
    }
}

#[tokio::test]
async fn indirect_strips_only_the_sticky_pair() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route option=indirect",
        &[a.peer(), b.peer()],
    ));
    let cases = [
        (
            format!("x=1; route={}; y=2", a.sid()),
            vec!["x=1; y=2".to_string()],
        ),
        (format!("route={}", a.sid()), vec![]),
        (
            format!("xroute=7; route={}", a.sid()),
            vec!["xroute=7".to_string()],
        ),
        // Invalid sticky cookies are stripped too.
        ("a=b; route=; c=d".to_string(), vec!["a=b; c=d".to_string()]),
    ];
    for (sent, seen) in cases {
        let r = get(p.addr, "/", &[("cookie", &sent)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.seen("cookie"), seen, "sent {sent}");
    }
    // Without indirect the backend sees the cookie as sent.
    let (c, d) = two();
    let direct = start_proxy(&sticky_conf(
        "session_sticky cookie=route",
        &[c.peer(), d.peer()],
    ));
    let sent = format!("x=1; route={}", c.sid());
    let r = get(direct.addr, "/", &[("cookie", &sent)]).await;
    assert_eq!(r.seen("cookie"), vec![sent]);
}

#[tokio::test]
async fn prefix_mode_round_trip_backend_sees_its_own_cookie() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=JSESSIONID mode=prefix",
        &[a.peer(), b.peer()],
    ));
    let r = get(
        p.addr,
        "/",
        &[("x-set-cookie", "JSESSIONID=abc123; Path=/; HttpOnly")],
    )
    .await;
    let who = r.backend().expect("backend");
    let sid = if who == "a" { a.sid() } else { b.sid() };
    assert_eq!(
        r.set_cookies(),
        vec![format!("JSESSIONID={sid}~abc123; Path=/; HttpOnly")]
    );
    for _ in 0..4 {
        let back = get(
            p.addr,
            "/",
            &[("cookie", &format!("k=v; JSESSIONID={sid}~abc123"))],
        )
        .await;
        assert_eq!(back.backend().as_deref(), Some(who.as_str()));
        assert_eq!(back.seen("cookie"), vec!["k=v; JSESSIONID=abc123"]);
        assert!(back.set_cookies().is_empty());
    }
    // A response without the backend's cookie gets nothing added.
    let none = get(p.addr, "/", &[]).await;
    assert!(none.set_cookies().is_empty());
}

#[tokio::test]
async fn rewrite_mode_replaces_the_backend_cookie_value_and_pins() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=SRV mode=rewrite",
        &[a.peer(), b.peer()],
    ));
    let r = get(
        p.addr,
        "/",
        &[("x-set-cookie", "SRV=placeholder; Path=/; Max-Age=60")],
    )
    .await;
    let who = r.backend().expect("backend");
    let sid = if who == "a" { a.sid() } else { b.sid() };
    assert_eq!(
        r.set_cookies(),
        vec![format!("SRV={sid}; Path=/; Max-Age=60")]
    );
    for _ in 0..4 {
        let back = get(p.addr, "/", &[("cookie", &format!("SRV={sid}"))]).await;
        assert_eq!(back.backend().as_deref(), Some(who.as_str()));
        // Rewrite never strips: the backend sees the cookie as the client sent it.
        assert_eq!(back.seen("cookie"), vec![format!("SRV={sid}")]);
    }
}

#[tokio::test]
async fn dead_pinned_peer_falls_back_and_repins_when_fallback_is_on() {
    let a = Backend::start("a");
    let dead = dead_addr();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route maxidle=3600 fallback=on",
        &[dead.to_string(), a.peer()],
    ));
    let dead_sid = sticky_proxy::sticky::sid::md5_sid(&dead.to_string());
    let t = now();
    let cookie = format!("route={dead_sid}|{}|{}", t - 5, t - 1000);
    let r = get(p.addr, "/", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.backend().as_deref(), Some("a"));
    let (sid, _last, first) = fields(&r.cookie_value("route").expect("re-pinned"));
    assert_eq!(sid, a.sid());
    assert!(
        (first - now()).abs() <= 2,
        "re-pin starts a fresh FIRSTSEEN"
    );
}

#[tokio::test]
async fn dead_pinned_peer_gives_502_without_cookie_when_fallback_is_off() {
    let a = Backend::start("a");
    let dead = dead_addr();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route fallback=off",
        &[dead.to_string(), a.peer()],
    ));
    let dead_sid = sticky_proxy::sticky::sid::md5_sid(&dead.to_string());
    let r = get(p.addr, "/", &[("cookie", &format!("route={dead_sid}"))]).await;
    assert_eq!(r.status, 502);
    assert!(r.set_cookies().is_empty());
    assert_eq!(a.hits(), 0, "nothing else is tried");
    // Unknown sid with fallback=off: 502 too.
    let r = get(
        p.addr,
        "/",
        &[("cookie", "route=0123456789abcdef0123456789abcdef")],
    )
    .await;
    assert_eq!(r.status, 502);
    assert!(r.set_cookies().is_empty());
    // A new session still works.
    let fresh = get(p.addr, "/", &[]).await;
    assert_eq!(fresh.status, 200);
}

#[tokio::test]
async fn unknown_sid_with_fallback_on_repins() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route",
        &[a.peer(), b.peer()],
    ));
    let r = get(
        p.addr,
        "/",
        &[("cookie", "route=feedfacefeedfacefeedfacefeedface")],
    )
    .await;
    assert_eq!(r.status, 200);
    let who = r.backend().expect("backend");
    let sid = if who == "a" { a.sid() } else { b.sid() };
    assert_eq!(r.cookie_value("route"), Some(sid));
}

#[tokio::test]
async fn weights_three_to_one_over_forty_new_sessions() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route",
        &[format!("{} weight=3", a.peer()), b.peer()],
    ));
    let mut count_a = 0;
    for _ in 0..40 {
        let r = get(p.addr, "/", &[]).await;
        assert_eq!(r.status, 200);
        let who = r.backend().expect("backend");
        let sid = if who == "a" {
            count_a += 1;
            a.sid()
        } else {
            b.sid()
        };
        assert_eq!(r.cookie_value("route"), Some(sid));
    }
    assert_eq!(count_a, 30);
    assert_eq!(b.hits(), 10);
}

#[tokio::test]
async fn backend_errors_pass_through_untouched() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route maxidle=60",
        &[a.peer(), b.peer()],
    ));
    for status in ["404", "403", "500", "503"] {
        let r = get(
            p.addr,
            "/",
            &[("x-status", status), ("x-set-cookie", "k=v")],
        )
        .await;
        assert_eq!(r.status.to_string(), status);
        assert_eq!(r.set_cookies(), vec!["k=v"], "no sticky cookie on {status}");
    }
    let (c, d) = two();
    let rw = start_proxy(&sticky_conf(
        "session_sticky cookie=SRV mode=rewrite",
        &[c.peer(), d.peer()],
    ));
    let r = get(
        rw.addr,
        "/",
        &[("x-status", "500"), ("x-set-cookie", "SRV=orig")],
    )
    .await;
    assert_eq!(r.set_cookies(), vec!["SRV=orig"]);
}

#[tokio::test]
async fn malformed_sticky_cookies_start_new_sessions_and_the_proxy_keeps_serving() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route maxidle=3600 maxlife=7200",
        &[a.peer(), b.peer()],
    ));
    let sid = a.sid();
    let t = now();
    let shapes = vec![
        "route=".to_string(),
        "route".to_string(),
        "route=|||".to_string(),
        format!("route={sid}"),
        format!("route={sid}|{t}"),
        format!("route={sid}|{t}|{t}|{t}"),
        format!("route={sid}|abc|{t}"),
        format!("route={sid}|{t}|-5"),
        format!("route={sid}|+{t}|{t}"),
        format!("route=|{t}|{t}"),
        format!("route={sid}|99999999999999999999999|{t}"),
        format!("route={sid}| {t}|{t}"),
        "route=\"\"".to_string(),
        format!("route=\"{sid}|{t}|{t}"),
        "route=%00%0d%0a".to_string(),
        format!("route={}", "z".repeat(3000)),
        ";;;;===;;".to_string(),
    ];
    for shape in &shapes {
        let r = get(p.addr, "/", &[("cookie", shape.as_str())]).await;
        assert_eq!(r.status, 200, "cookie {shape}");
        let (got, last, first) = fields(&r.cookie_value("route").expect("new session cookie"));
        assert!(got == a.sid() || got == b.sid(), "cookie {shape}");
        assert_eq!(last, first, "new session for {shape}");
    }
    let ok = get(p.addr, "/", &[]).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn plain_hash_uses_server_ids() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route hash=plain",
        &[
            format!("{} id=alpha", a.peer()),
            format!("{} id=beta", b.peer()),
        ],
    ));
    for _ in 0..3 {
        let r = get(p.addr, "/", &[("cookie", "route=beta")]).await;
        assert_eq!(r.backend().as_deref(), Some("b"));
    }
    let r = get(p.addr, "/", &[]).await;
    let v = r.cookie_value("route").expect("cookie");
    assert!(v == "alpha" || v == "beta");
}

#[tokio::test]
async fn proxy_made_errors_carry_no_sticky_cookie() {
    let a = Backend::start("a");
    let text = format!(
        "events {{}}\nhttp {{\n  upstream app {{\n    session_sticky cookie=route maxidle=60;\n    server {};\n  }}\n  server {{\n    listen 127.0.0.1:0;\n    client_max_body_size 10;\n    location /app {{ proxy_pass http://app; }}\n    location /ret {{ return 200 \"fixed\"; }}\n  }}\n}}\n",
        a.peer()
    );
    let p = start_proxy(&text);
    let missing = get(p.addr, "/nothing", &[]).await;
    assert_eq!(missing.status, 404);
    assert!(missing.set_cookies().is_empty());
    let mut c = Client::connect(p.addr).await;
    let big = c
        .send(
            "POST",
            "/app",
            &[("content-length", "100")],
            full(vec![b'x'; 100]),
        )
        .await
        .expect("413 reply");
    assert_eq!(big.status, 413);
    assert!(big.set_cookies().is_empty());
    let ret = get(p.addr, "/ret", &[]).await;
    assert_eq!(ret.status, 200);
    assert_eq!(ret.text(), "fixed");
    assert!(ret.set_cookies().is_empty());
}

#[tokio::test]
async fn pinned_peer_marked_down_is_down() {
    let (a, b) = two();
    let on = start_proxy(&sticky_conf(
        "session_sticky cookie=route",
        &[format!("{} down", a.peer()), b.peer()],
    ));
    let r = get(on.addr, "/", &[("cookie", &format!("route={}", a.sid()))]).await;
    assert_eq!(r.backend().as_deref(), Some("b"));
    assert_eq!(r.cookie_value("route"), Some(b.sid()), "re-pinned");
    let off = start_proxy(&sticky_conf(
        "session_sticky cookie=route fallback=off",
        &[format!("{} down", a.peer()), b.peer()],
    ));
    let r = get(off.addr, "/", &[("cookie", &format!("route={}", a.sid()))]).await;
    assert_eq!(r.status, 502);
    assert!(r.set_cookies().is_empty());
    assert_eq!(a.hits(), 0);
}

#[tokio::test]
async fn backup_peer_serves_only_when_the_primaries_are_unavailable() {
    let (a, b) = two();
    let p = start_proxy(&sticky_conf(
        "session_sticky cookie=route",
        &[a.peer(), format!("{} backup", b.peer())],
    ));
    for _ in 0..5 {
        assert_eq!(get(p.addr, "/", &[]).await.backend().as_deref(), Some("a"));
    }
    let dead = dead_addr();
    let q = start_proxy(&sticky_conf(
        "session_sticky cookie=route",
        &[dead.to_string(), format!("{} backup", b.peer())],
    ));
    let r = get(q.addr, "/", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.backend().as_deref(), Some("b"));
    assert_eq!(r.cookie_value("route"), Some(b.sid()));
}

#[tokio::test]
async fn a_failed_peer_is_avoided_for_fail_timeout() {
    let a = Backend::start("a");
    let dead = dead_addr();
    let text = format!(
        "events {{}}\nhttp {{\n  upstream app {{\n    server {dead} max_fails=1 fail_timeout=30s;\n    server {};\n  }}\n  server {{\n    listen 127.0.0.1:0;\n    location / {{ proxy_pass http://app; proxy_next_upstream off; }}\n  }}\n}}\n",
        a.peer()
    );
    let p = start_proxy(&text);
    // Round robin tries the dead peer first: 502 (no next upstream).
    assert_eq!(get(p.addr, "/", &[]).await.status, 502);
    // Then it is out for fail_timeout: every request goes to `a`.
    for _ in 0..6 {
        let r = get(p.addr, "/", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend().as_deref(), Some("a"));
    }
}
