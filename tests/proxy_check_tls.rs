//! Tengine's `check type=http` over TLS (issue 15, item 4): an upstream that
//! only `proxy_pass https://` names is checked over TLS with that location's
//! `proxy_ssl_*` settings. Real HTTPS backends on `127.0.0.1:0` with
//! certificates made at test time: TLS-only peers come up and serve, a peer
//! whose certificate fails `proxy_ssl_verify` and a peer answering 500 go
//! down, and `check_keepalive_requests` keeps one TLS connection; nginx with
//! OpenSSL (when installed) as a checked peer whose TLS stack is not ours.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::{get, start_proxy, Backend};

/// An HTTPS echo backend (it answers with the status of an `X-Status`
/// request header) whose certificate, signed by `pki`'s CA, names
/// `backend.test`.
fn https_backend(pki: &Pki, name: &str) -> Backend {
    pki.issue("backend", &["backend.test"], false);
    Backend::start_tls(name, pki.server_config("backend", false))
}

/// `proxy_ssl_*` lines that verify `backend.test` against `pki`'s CA and send
/// it as SNI.
fn verify(pki: &Pki) -> String {
    format!(
        "proxy_ssl_verify on; proxy_ssl_trusted_certificate {};
         proxy_ssl_name backend.test; proxy_ssl_server_name on;",
        pki.path("ca.pem")
    )
}

/// Waits until the `check_status` page shows `peer` in `state` (`up` or
/// `down`), at most `limit`.
async fn wait_state(proxy: SocketAddr, peer: &str, state: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let page = get(proxy, "/status?format=csv", &[]).await.text();
        let shown = page.lines().any(|row| {
            let fields: Vec<&str> = row.split(',').collect();
            fields.get(2) == Some(&peer) && fields.get(3) == Some(&state)
        });
        if shown {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{peer} not {state} after {limit:?}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const LIMIT: Duration = Duration::from_secs(5);

/// A proxy with upstream `secure` (`peer` and the `check` lines given), which
/// `/` passes to over verified TLS, and `/status` (`check_status`).
fn secure_proxy(pki: &Pki, peer: &str, checks: &str) -> common::TestProxy {
    start_proxy(&format!(
        "http {{
           upstream secure {{ server {peer}; {checks} }}
           server {{ listen 127.0.0.1:0;
             location / {{ proxy_pass https://secure; {verify} }}
             location /status {{ check_status; }} }} }}",
        verify = verify(pki),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_peers_are_brought_up_by_tls_checks_and_serve() {
    let pki = Pki::new("check-up");
    let backend = https_backend(&pki, "tls");
    let proxy = secure_proxy(
        &pki,
        &backend.peer(),
        "check interval=50 rise=2 fall=2 timeout=1000 type=http;
         check_http_send \"GET /health HTTP/1.0\\r\\nHost: backend.test\\r\\n\\r\\n\";",
    );
    // default_down: no traffic until the TLS checks pass.
    wait_state(proxy.addr, &backend.peer(), "up", LIMIT).await;
    let r = get(proxy.addr, "/app", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend().as_deref(), Some("tls"));
    // The checks were HTTP requests inside TLS handshakes the backend
    // accepted, with the location's SNI.
    assert!(backend.hits() >= 3, "two checks and the request");
    let handshakes = backend.handshakes.lock().unwrap().clone();
    assert!(handshakes.len() >= 2, "{handshakes:?}");
    assert!(handshakes
        .iter()
        .all(|h| h.sni.as_deref() == Some("backend.test")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_failing_verification_or_answering_500_is_down() {
    let pki = Pki::new("check-down");
    let other = Pki::new("check-down-other");
    let good = https_backend(&pki, "good");
    // Signed by a CA the proxy does not trust.
    let stranger = https_backend(&other, "stranger");
    let failing = https_backend(&pki, "failing");
    let check = "check interval=50 rise=1 fall=1 timeout=1000 type=http default_down=false;";
    let proxy = start_proxy(&format!(
        "http {{
           upstream trusted {{ server {good}; server {stranger}; {check} }}
           upstream failing {{ server {failing}; {check}
             check_http_send \"GET /health HTTP/1.0\\r\\nX-Status: 500\\r\\n\\r\\n\";
             check_http_expect_alive http_2xx http_3xx; }}
           server {{ listen 127.0.0.1:0;
             location / {{ proxy_pass https://trusted; {verify} }}
             location /f {{ proxy_pass https://failing; {verify} }}
             location /status {{ check_status; }} }} }}",
        good = good.peer(),
        stranger = stranger.peer(),
        failing = failing.peer(),
        verify = verify(&pki),
    ));
    wait_state(proxy.addr, &stranger.peer(), "down", LIMIT).await;
    wait_state(proxy.addr, &failing.peer(), "down", LIMIT).await;
    wait_state(proxy.addr, &good.peer(), "up", LIMIT).await;
    // The stranger's handshakes never finished; the failing peer's did, and
    // its checks were answered 500.
    assert_eq!(stranger.hits(), 0);
    assert!(failing.hits() >= 1);
    assert!(!failing.handshakes.lock().unwrap().is_empty());
    // Requests go to the peer that is up only.
    for _ in 0..4 {
        let r = get(proxy.addr, "/", &[]).await;
        assert_eq!(r.backend().as_deref(), Some("good"), "{}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_tls_checks_reuse_one_connection_and_handshake() {
    let pki = Pki::new("check-keepalive");
    let backend = https_backend(&pki, "kept");
    let proxy = secure_proxy(
        &pki,
        &backend.peer(),
        "check interval=30 rise=1 fall=2 timeout=1000 type=http;
         check_http_send \"GET /health HTTP/1.1\\r\\nHost: backend.test\\r\\n\\r\\n\";
         check_keepalive_requests 100;",
    );
    wait_state(proxy.addr, &backend.peer(), "up", LIMIT).await;
    let started = Instant::now();
    while backend.hits() < 10 {
        assert!(started.elapsed() < LIMIT, "checks too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        backend.conns.load(Ordering::SeqCst),
        1,
        "ten checks over one TCP connection"
    );
    assert_eq!(
        backend.handshakes.lock().unwrap().len(),
        1,
        "and one handshake"
    );
    drop(proxy);
}

/// A TLS stack that is not rustls: nginx with OpenSSL as the checked peer
/// (skipped when nginx is not installed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_openssl_is_checked_over_tls_and_serves() {
    let pki = Pki::new("check-nginx");
    pki.issue("backend", &["backend.test"], false);
    let Some(nginx) = common::nginx::Nginx::start(&format!(
        "server {{ listen LISTEN ssl; server_name backend.test;
           ssl_certificate {cert}; ssl_certificate_key {key};
           location = /health {{ return 200 \"ok\\n\"; }}
           location / {{ return 200 \"nginx behind TLS\\n\"; }} }}",
        cert = pki.path("backend.pem"),
        key = pki.path("backend.key"),
    )) else {
        return;
    };
    let peer = nginx.addr.to_string();
    let proxy = secure_proxy(
        &pki,
        &peer,
        "check interval=50 rise=2 fall=2 timeout=1000 type=http;
         check_http_send \"GET /health HTTP/1.1\\r\\nHost: backend.test\\r\\n\\r\\n\";
         check_keepalive_requests 100;",
    );
    wait_state(proxy.addr, &peer, "up", LIMIT).await;
    let r = get(proxy.addr, "/", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "nginx behind TLS\n"));
    let log = nginx.error_log();
    assert!(!log.contains("SSL_do_handshake() failed"), "{log}");
}
