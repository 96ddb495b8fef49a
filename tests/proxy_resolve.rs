//! `server NAME resolve` over real sockets: a small DNS server on
//! 127.0.0.1:0 (`common::dns`) whose answers the test
//! changes while the proxy runs; backends on 127.0.0.1/.2/.3 with one port.
//! Peers come and go without a reload, a peer that stays keeps its sid and its
//! active-check state, and a removed peer's pinned clients fall back.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::dns::Dns;
use common::*;

/// Three backends on 127.0.0.1, .2 and .3, one port.
fn backends() -> Vec<Backend> {
    for _ in 0..20 {
        let first = Backend::start("a");
        let port = first.port();
        let at = |o: u8| SocketAddr::from(([127, 0, 0, o], port));
        if std::net::TcpListener::bind(at(2)).is_ok() && std::net::TcpListener::bind(at(3)).is_ok()
        {
            return vec![
                first,
                Backend::start_at("b", at(2)),
                Backend::start_at("c", at(3)),
            ];
        }
    }
    panic!("no port free on 127.0.0.1-3");
}

fn conf(dns: &Dns, port: u16, upstream_extra: &str, location_extra: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n  resolver {} ipv6=off;\n  resolver_timeout 2s;\n  upstream app {{\n    zone app 64k;\n    session_sticky cookie=route;\n    server app.test:{port} resolve;\n    {upstream_extra}\n  }}\n  server {{\n    listen 127.0.0.1:0;\n    location / {{ proxy_pass http://app; }}\n    {location_extra}\n  }}\n}}\n",
        dns.addr
    )
}

/// The proxy's peers of `app`, by name.
fn peers(p: &TestProxy) -> Vec<String> {
    let config = p.running.config();
    let mut names: Vec<String> = config.http.upstreams[0]
        .peers
        .iter()
        .map(|p| p.name.clone())
        .collect();
    names.sort();
    names
}

/// Waits until the peers of `app` are `wanted` (sorted).
async fn wait_peers(p: &TestProxy, wanted: &[String]) {
    let start = Instant::now();
    while peers(p) != wanted {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "peers {:?}, wanted {wanted:?}",
            peers(p)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn names(list: &[&Backend]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|b| b.peer()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn peers_follow_dns_without_a_reload_and_keep_their_sids() {
    let dns = Dns::start();
    let all = backends();
    let (a, b, c) = (&all[0], &all[1], &all[2]);
    dns.set("app.test", &[[127, 0, 0, 1], [127, 0, 0, 2]]);
    let p = start_proxy(
        &conf(&dns, a.port(), "", "location /status { check_status; }")
            .replace("ipv6=off", "valid=1s ipv6=off"),
    );
    assert_eq!(peers(&p), names(&[a, b]), "resolved before serving");
    let mut client = Client::connect(p.addr).await;
    let a_cookie = format!("route={}", a.sid());
    let r = client.get("/", &[("cookie", &a_cookie)]).await;
    assert_eq!(r.backend().as_deref(), Some("a"));

    // A third address appears: a new peer, the others stay pinned.
    dns.set(
        "app.test",
        &[[127, 0, 0, 3], [127, 0, 0, 2], [127, 0, 0, 1]],
    );
    wait_peers(&p, &names(&[a, b, c])).await;
    let r = client.get("/", &[("cookie", &a_cookie)]).await;
    assert_eq!(
        r.backend().as_deref(),
        Some("a"),
        "the same connection, no reload"
    );
    let r = get(p.addr, "/", &[("cookie", &format!("route={}", c.sid()))]).await;
    assert_eq!(
        r.backend().as_deref(),
        Some("c"),
        "the new peer has its md5 sid"
    );

    // 127.0.0.1 goes away: its pinned clients fall back, with a new cookie.
    dns.set("app.test", &[[127, 0, 0, 2], [127, 0, 0, 3]]);
    wait_peers(&p, &names(&[b, c])).await;
    let before = a.hits();
    for _ in 0..4 {
        let r = client.get("/", &[("cookie", &a_cookie)]).await;
        assert_eq!(r.status, 200);
        let who = r.backend().expect("a backend");
        assert!(who == "b" || who == "c", "{who}");
        let sid = if who == "b" { b.sid() } else { c.sid() };
        assert_eq!(r.cookie_value("route"), Some(sid), "re-pinned");
    }
    assert_eq!(a.hits(), before, "the removed peer gets nothing");

    // The name disappears: no peers, 502; it comes back: served again.
    dns.set("app.test", &[]);
    wait_peers(&p, &[]).await;
    assert_eq!(get(p.addr, "/", &[]).await.status, 502);
    dns.set("app.test", &[[127, 0, 0, 1]]);
    wait_peers(&p, &names(&[a])).await;
    assert_eq!(get(p.addr, "/", &[]).await.backend().as_deref(), Some("a"));

    // The upstream's sticky counts went through every change: 3 hits, then 4
    // cookies of the removed peer.
    let metrics = get(p.addr, "/status?format=prometheus", &[]).await.text();
    for line in [
        "sticky_proxy_upstream_sticky_total{upstream=\"app\",outcome=\"hit\"} 3",
        "sticky_proxy_upstream_sticky_total{upstream=\"app\",outcome=\"unknown\"} 4",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_peer_that_stays_keeps_its_active_check_state() {
    let dns = Dns::start();
    let all = backends();
    let (a, b) = (&all[0], &all[1]);
    dns.set("app.test", &[[127, 0, 0, 1]]);
    let p = start_proxy(&conf(
        &dns,
        a.port(),
        "check interval=100 rise=5 fall=2 timeout=1000 type=tcp default_down=true;",
        "location /status { check_status; }",
    ));
    let state = |name: &str| {
        let snap = p
            .running
            .health()
            .snapshot(&p.running.config(), Instant::now());
        snap.upstreams[0]
            .peers
            .iter()
            .find(|x| x.name == name)
            .map(|x| (x.state.as_str(), x.rise))
    };
    let start = Instant::now();
    while state(&a.peer()).map(|s| s.0) != Some("up") {
        assert!(start.elapsed() < Duration::from_secs(10), "a comes up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, rise_before) = state(&a.peer()).unwrap();
    dns.set("app.test", &[[127, 0, 0, 1], [127, 0, 0, 2]]);
    wait_peers(&p, &names(&[a, b])).await;
    // Long enough for the restarted checker to check again (a reset peer
    // would need 5 checks to come up), short of b's 5.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (a_state, a_rise) = state(&a.peer()).expect("a stays");
    assert_eq!(a_state, "up", "a kept peer is not reset to default_down");
    assert!(
        a_rise >= rise_before,
        "its rise count goes on: {a_rise} < {rise_before}"
    );
    assert_eq!(
        state(&b.peer()).map(|s| s.0),
        Some("down"),
        "a new peer starts default_down"
    );
    let r = get(p.addr, "/", &[("cookie", &format!("route={}", a.sid()))]).await;
    assert_eq!(r.backend().as_deref(), Some("a"));
}

#[tokio::test]
async fn a_reload_resolves_before_it_switches_and_keeps_the_sessions() {
    let dns = Dns::start();
    let all = backends();
    let (a, b, c) = (&all[0], &all[1], &all[2]);
    dns.set("app.test", &[[127, 0, 0, 1], [127, 0, 0, 2]]);
    let text = conf(&dns, a.port(), "", "");
    let mut p = start_proxy(&text);
    assert_eq!(peers(&p), names(&[a, b]));
    // The answer changes just before the reload: the new configuration
    // starts with the new answer, not with no peers.
    dns.set("app.test", &[[127, 0, 0, 2], [127, 0, 0, 3]]);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test.conf");
    let (config, _) = sticky_proxy::config::load_str(&text, &file).expect("loads");
    p.running.reload(config).expect("reload");
    assert_eq!(peers(&p), names(&[b, c]), "resolved before the switch");
    let r = get(p.addr, "/", &[("cookie", &format!("route={}", b.sid()))]).await;
    assert_eq!(r.backend().as_deref(), Some("b"));
    let r = get(p.addr, "/", &[("cookie", &format!("route={}", c.sid()))]).await;
    assert_eq!(r.backend().as_deref(), Some("c"));
}

#[tokio::test]
async fn without_fallback_a_removed_peers_clients_get_502() {
    let dns = Dns::start();
    let all = backends();
    let (a, b) = (&all[0], &all[1]);
    dns.set("app.test", &[[127, 0, 0, 1], [127, 0, 0, 2]]);
    let p = start_proxy(
        &conf(&dns, a.port(), "", "")
            .replace(
                "session_sticky cookie=route;",
                "session_sticky cookie=route fallback=off;",
            )
            .replace("ipv6=off", "valid=1s ipv6=off"),
    );
    let a_cookie = format!("route={}", a.sid());
    assert_eq!(
        get(p.addr, "/", &[("cookie", &a_cookie)])
            .await
            .backend()
            .as_deref(),
        Some("a")
    );
    dns.set("app.test", &[[127, 0, 0, 2]]);
    wait_peers(&p, &names(&[b])).await;
    assert_eq!(get(p.addr, "/", &[("cookie", &a_cookie)]).await.status, 502);
    assert_eq!(get(p.addr, "/", &[]).await.backend().as_deref(), Some("b"));
}
