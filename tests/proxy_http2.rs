//! HTTP/2 towards clients (issue 16): h2c with prior knowledge and h2 over
//! TLS (ALPN) through the same Handler as HTTP/1, HTTP/1.1 on the same
//! port, the sticky core over cookie crumbs, limits and GOAWAY.

mod common;

use std::time::Duration;

use common::h2::H2Client;
use common::{empty, Backend};

/// A plain listener with `http2 on` proxying to `backends`.
fn h2c_conf(backends: &[&Backend], extra: &str) -> String {
    let servers: String = backends
        .iter()
        .map(|b| format!("server {}; ", b.peer()))
        .collect();
    format!(
        "events {{}}\nhttp {{\n upstream app {{ {servers} }}\n server {{ listen 127.0.0.1:0; http2 on; {extra}\n  location / {{ proxy_pass http://app; }}\n }}\n}}\n"
    )
}

#[tokio::test]
async fn h2c_get_is_proxied_as_http11_with_authority_as_host() {
    let b = Backend::start("b1");
    let vars = "proxy_set_header X-Host $host; proxy_set_header X-Proto $server_protocol; \
                proxy_set_header X-H2 \"[$http2]\";";
    let proxy = common::start_proxy(&h2c_conf(&[&b], vars));
    let client = H2Client::connect(proxy.addr).await;
    let r = client
        .send("GET", "site.test", "/x?y=1", &[("x-a", "1")], empty())
        .await
        .expect("h2c request");
    assert_eq!(r.status, 200);
    assert_eq!(r.backend().as_deref(), Some("b1"));
    assert_eq!(r.seen_request_line().as_deref(), Some("GET /x?y=1"));
    assert_eq!(r.seen("x-a"), ["1"]);
    assert_eq!(r.seen("x-host"), ["site.test"]);
    assert_eq!(r.seen("x-proto"), ["HTTP/2.0"]);
    assert_eq!(r.seen("x-h2"), ["[h2c]"]);
    assert!(r.header("date").is_some());
}

#[tokio::test]
async fn http11_and_h2c_share_one_port() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], ""));
    let h1 = common::get(proxy.addr, "/one", &[]).await;
    assert_eq!((h1.status, h1.backend().as_deref()), (200, Some("b1")));
    let h2 = H2Client::connect(proxy.addr).await.get("/two", &[]).await;
    assert_eq!((h2.status, h2.backend().as_deref()), (200, Some("b1")));
    // An `Upgrade: h2c` request is an HTTP/1.1 request like any other.
    let raw = common::raw(
        proxy.addr,
        b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        Duration::from_millis(300),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
}
