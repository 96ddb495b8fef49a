//! Unix-socket peers: `server unix:/path` in an upstream (balanced, sticky,
//! named `unix:/path` as nginx's `$upstream_addr`) and `proxy_pass
//! http://unix:/path:/uri`.

mod common;

use common::unix::UnixBackend;
use common::{get, start_proxy, sticky_conf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_sessions_pin_to_unix_socket_peers() {
    let a = UnixBackend::start("ua");
    let b = UnixBackend::start("ub");
    let proxy = start_proxy(&sticky_conf("session_sticky", &[a.peer(), b.peer()]));
    let first = get(proxy.addr, "/", &[]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let cookie = first.cookie_value("route").expect("sticky cookie");
    let pinned = first.backend().expect("backend");
    let want = if pinned == "ua" { &a } else { &b };
    assert_eq!(
        cookie,
        sticky_proxy::sticky::sid::md5_sid(&want.peer()),
        "the sid is the md5 of the peer name unix:/path"
    );
    let header = format!("route={cookie}");
    for _ in 0..6 {
        let r = get(proxy.addr, "/", &[("cookie", &header)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend().as_deref(), Some(pinned.as_str()));
    }
    assert_eq!(want.hits(), 7);
    // Without a cookie, round robin uses both sockets.
    for _ in 0..4 {
        assert_eq!(get(proxy.addr, "/", &[]).await.status, 200);
    }
    assert!(a.hits() > 0 && b.hits() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_pass_to_a_unix_socket_with_a_uri_part() {
    let a = UnixBackend::start("direct");
    let proxy = start_proxy(&format!(
        "http {{ server {{ listen 127.0.0.1:0;
            location /app/ {{ proxy_pass http://{peer}:/base/; }}
            location /gone/ {{ proxy_pass http://unix:/nonexistent/sticky.sock; }} }} }}",
        peer = a.peer()
    ));
    let r = get(proxy.addr, "/app/x?y=1", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend().as_deref(), Some("direct"));
    assert_eq!(r.seen_request_line().as_deref(), Some("GET /base/x?y=1"));
    assert_eq!(
        r.seen("host"),
        ["localhost"],
        "nginx's Host for a unix socket"
    );
    assert_eq!(get(proxy.addr, "/gone/", &[]).await.status, 502);
}
