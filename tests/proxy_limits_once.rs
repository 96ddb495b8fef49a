//! `limit_req` and `limit_conn` count a request once, however many locations
//! its internal redirects (`try_files`, `error_page`, named locations) take it
//! through, and a `limit_conn` count is held until the request ends, as nginx
//! does (`r->main->limit_req_status` / `limit_conn_status`). Against the live
//! proxy and compared with nginx itself when it is installed.

mod common;

use std::time::Duration;

use common::nginx::{summary, Nginx, Summary};
use common::*;

/// The inside of `http { }`; `LISTEN`, `BACKEND` and `ROOT` are filled in.
const HTTP: &str = r#"
limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
limit_req_zone $binary_remote_addr zone=two:1m rate=1r/m;
limit_conn_zone $binary_remote_addr zone=addr:1m;
upstream app { server BACKEND; }
server {
    listen LISTEN;
    root ROOT;
    location /tf { limit_req zone=one burst=1 nodelay; try_files /none @tf; }
    location @tf { limit_req zone=one burst=1 nodelay; proxy_pass http://app; }
    location /busy { limit_req zone=two; error_page 503 = @busy; proxy_pass http://app; }
    location @busy { limit_req zone=two; proxy_pass http://app; }
    location /conn { limit_conn addr 1; try_files /none @conn; }
    location @conn { proxy_pass http://app; }
}
"#;

async fn request(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Summary {
    let r = Client::connect(addr)
        .await
        .send("GET", path, headers, empty())
        .await
        .expect("request");
    summary(&r, addr.port())
}

/// The limit_req sequence: `/tf` three times (burst=1 lets two requests in,
/// each counted once although it passes two locations with the limit), then
/// `/busy` twice (the second is refused, and its `error_page` location, with
/// the same limit, is not checked again).
async fn req_sequence(addr: std::net::SocketAddr) -> Vec<Summary> {
    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(request(addr, "/tf", &[]).await);
    }
    for _ in 0..2 {
        out.push(request(addr, "/busy", &[]).await);
    }
    out
}

fn s(status: u16, body: &str) -> Summary {
    (status, None, body.to_string())
}

fn conf(http: &str) -> String {
    format!(
        "events {{}}\nhttp {{{}}}\n",
        http.replace("LISTEN", "127.0.0.1:0")
    )
}

fn http(b: &Backend, root: &std::path::Path) -> String {
    HTTP.replace("BACKEND", &b.peer())
        .replace("ROOT", &root.display().to_string())
}

#[tokio::test]
async fn limit_req_counts_a_redirected_request_once_as_nginx() {
    let b = Backend::start("a");
    let root = std::env::temp_dir().join(format!("proxy-limits-once-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let http = http(&b, &root);
    let p = start_proxy(&conf(&http));
    let ours = req_sequence(p.addr).await;
    assert_eq!(
        ours,
        [
            s(200, "backend GET /tf"),
            s(200, "backend GET /tf"),
            s(503, "503 Service Temporarily Unavailable"),
            s(200, "backend GET /busy"),
            s(200, "backend GET /busy"),
        ]
    );
    if let Some(nginx) = Nginx::start(&http) {
        assert_eq!(
            req_sequence(nginx.addr).await,
            ours,
            "nginx\n{}",
            nginx.error_log()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// While a request that `try_files` sent on from a `limit_conn` location is
/// in flight, a second one is refused: the count is the request's until it
/// ends, not the first location's.
async fn conn_pair(addr: std::net::SocketAddr) -> (Summary, Summary, Summary) {
    let slow = tokio::spawn(async move { request(addr, "/conn", &[("x-delay-ms", "1500")]).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = request(addr, "/conn", &[]).await;
    let first = slow.await.unwrap();
    let after = request(addr, "/conn", &[]).await;
    (first, second, after)
}

#[tokio::test]
async fn limit_conn_holds_its_count_across_an_internal_redirect_as_nginx() {
    let b = Backend::start("a");
    let root = std::env::temp_dir().join(format!("proxy-conn-once-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let http = http(&b, &root);
    let p = start_proxy(&conf(&http));
    let ours = conn_pair(p.addr).await;
    assert_eq!(
        ours,
        (
            s(200, "backend GET /conn"),
            s(503, "503 Service Temporarily Unavailable"),
            s(200, "backend GET /conn"),
        )
    );
    if let Some(nginx) = Nginx::start(&http) {
        assert_eq!(
            conn_pair(nginx.addr).await,
            ours,
            "nginx\n{}",
            nginx.error_log()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
