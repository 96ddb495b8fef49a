//! HTTP/2 towards clients, the rest of issue 16: connection settings from the
//! server an SNI name chose, a stream the client resets before its answer
//! (499 in the access log), and trailers in both directions.

mod common;

use std::time::Duration;

use common::Backend;

/// A directory for one test's files.
fn test_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sticky-proxy-h2s-{tag}-{}", std::process::id()))
}

/// The `SETTINGS_MAX_CONCURRENT_STREAMS` the proxy announces to a TLS client
/// naming `sni`, and whether the connection ends after its first stream.
async fn announced(
    addr: std::net::SocketAddr,
    roots: rustls::RootCertStore,
    sni: &str,
) -> (usize, bool) {
    let tls = common::h2::tls_connect(addr, roots, sni, &[b"h2"]).await;
    let (mut send, conn) = h2::client::handshake(tls).await.expect("HTTP/2 handshake");
    let ended = tokio::spawn(async move { conn.await.is_ok() });
    let req = http::Request::get(format!("https://{sni}/"))
        .body(())
        .expect("request");
    let (resp, _) = send.send_request(req, true).expect("stream");
    let resp = resp.await.expect("response");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    while let Some(chunk) = body.data().await {
        chunk.expect("body");
    }
    let max = send.current_max_send_streams();
    drop(send);
    let closed = tokio::time::timeout(Duration::from_secs(2), ended)
        .await
        .is_ok();
    (max, closed)
}

#[tokio::test]
async fn the_server_an_sni_name_chooses_gives_the_connection_its_http2_limits() {
    let dir = test_dir("sni");
    let roots = common::h2::self_signed(&dir, "site", &["one.test", "two.test", "other.test"]);
    let b = Backend::start("b1");
    let certs = format!(
        "ssl_certificate {0}/site.pem; ssl_certificate_key {0}/site.key;",
        dir.display()
    );
    let conf = format!(
        "events {{}}\nhttp {{\n upstream app {{ server {}; }}\n \
         server {{ listen 127.0.0.1:0 ssl; server_name one.test; http2 on; http2_max_concurrent_streams 7; {certs} location / {{ proxy_pass http://app; }} }}\n \
         server {{ listen 127.0.0.1:0 ssl; server_name two.test; http2 on; http2_max_concurrent_streams 3; keepalive_requests 1; {certs} location / {{ proxy_pass http://app; }} }}\n}}\n",
        b.peer()
    );
    let proxy = common::start_proxy(&conf);
    let one = announced(proxy.addr, roots.clone(), "one.test").await;
    let two = announced(proxy.addr, roots.clone(), "two.test").await;
    // An unknown name: the default (first) server's settings.
    let other = announced(proxy.addr, roots.clone(), "other.test").await;
    assert_eq!(one.0, 7);
    assert_eq!(two.0, 3);
    assert_eq!(other.0, 7);
    // `keepalive_requests 1` of two.test: GOAWAY after its first stream,
    // while one.test's connection stays open.
    assert!(two.1, "two.test's connection should end after one stream");
    assert!(!one.1, "one.test's connection should stay open");
    let _ = std::fs::remove_dir_all(&dir);
}
