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

/// An h2c connection with the `h2` crate's client, its connection driven by
/// a task of its own.
async fn h2c(addr: std::net::SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

fn request(path: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut req = http::Request::get(format!("http://h{path}"));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req.body(()).expect("request")
}

// Two threads: the client's connection task sends the reset while the test
// waits for the log line (`read_lines` blocks its thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reset_before_its_answer_logs_499_and_lets_its_backend_go() {
    let b = Backend::start("b1");
    let dir = test_dir("499");
    std::fs::create_dir_all(&dir).expect("log dir");
    let log = dir.join("access.log");
    let conf = format!(
        "events {{}}\nhttp {{\n upstream app {{ server {}; keepalive 8; }}\n \
         log_format t '$status $request_time $bytes_sent $body_bytes_sent $request';\n \
         server {{ listen 127.0.0.1:0; http2 on; access_log {} t;\n  \
         location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n}}\n",
        b.peer(),
        log.display()
    );
    let proxy = common::start_proxy(&conf);
    let mut send = h2c(proxy.addr).await;
    let (resp, mut stream) = send
        .send_request(request("/slow", &[("x-delay-ms", "1500")]), true)
        .expect("stream");
    // The backend has the request; the client gives up on it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while b.hits() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.send_reset(h2::Reason::CANCEL);
    assert!(resp.await.is_err(), "the stream was reset");
    let lines = common::read_lines(&log, 1);
    let line = lines
        .first()
        .expect("an access-log line for the reset stream");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[0], "499", "{line}");
    let took: f64 = fields[1].parse().expect("$request_time");
    // Logged when the client left, not when the backend would have answered.
    assert!((0.2..1.4).contains(&took), "{line}");
    assert_eq!(
        &fields[2..],
        ["0", "0", "GET", "/slow", "HTTP/2.0"],
        "{line}"
    );
    // The backend connection was closed, not pooled mid-response: after the
    // backend's answer time, the next stream needs a connection of its own.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (resp, _) = send
        .send_request(request("/next", &[]), true)
        .expect("stream");
    assert_eq!(resp.await.expect("response").status(), 200);
    assert_eq!(b.conns.load(std::sync::atomic::Ordering::SeqCst), 2);
    let lines = common::read_lines(&log, 2);
    assert!(lines[1].starts_with("200 "), "{lines:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
