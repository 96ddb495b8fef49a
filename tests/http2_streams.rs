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
    let conf = common::h2::ssl_servers_conf(
        &dir,
        &b.peer(),
        &[
            ("one.test", "http2 on; http2_max_concurrent_streams 7;"),
            (
                "two.test",
                "http2 on; http2_max_concurrent_streams 3; keepalive_requests 1;",
            ),
        ],
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

/// An h2c listener proxying to `backend` with keep-alive connections to it
/// (`extra`: more directives of the `http` block).
fn pooled_h2c(backend: &str, extra: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n upstream app {{ server {backend}; keepalive 4; }}\n {extra}\n \
         server {{ listen 127.0.0.1:0; http2 on;\n  \
         location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n}}\n"
    )
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
    let log_format = format!(
        "log_format t '$status $request_time $bytes_sent $body_bytes_sent $request'; access_log {} t;",
        log.display()
    );
    let proxy = common::start_proxy(&pooled_h2c(&b.peer(), &log_format));
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

/// What [`recording_backend`] answers by default.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// A backend that answers each request with `answer` after reading it
/// whole, and hands the bytes of each request it received, as received, to
/// the test.
async fn recording_backend(
    answer: &'static [u8],
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(n) = whole_request(&buf) {
                        let req: Vec<u8> = buf.drain(..n).collect();
                        let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
                        if conn.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// The length of the whole request at the start of `buf`, if it is there
/// (a `Content-Length` body, or a chunked one whose chunks hold no CRLF).
fn whole_request(buf: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(buf);
    let head_end = text.find("\r\n\r\n")? + 4;
    let head = text[..head_end].to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        let body = &text[head_end..];
        let last = if body.starts_with("0\r\n") {
            0
        } else {
            body.find("\r\n0\r\n")? + 2
        };
        return Some(head_end + last + body[last..].find("\r\n\r\n")? + 4);
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap_or(0));
    (buf.len() >= head_end + length).then_some(head_end + length)
}

/// Sends a POST with `body` and then `trailers` over `send`; its status.
async fn post_with_trailers(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    headers: &[(&str, &str)],
    body: &'static str,
    trailers: &[(&str, &str)],
) -> u16 {
    let mut req = http::Request::post("http://h/up");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let (resp, mut stream) = send
        .send_request(req.body(()).expect("request"), false)
        .expect("stream");
    stream
        .send_data(bytes::Bytes::from_static(body.as_bytes()), false)
        .expect("data");
    let mut fields = http::HeaderMap::new();
    for (n, v) in trailers {
        fields.append(
            http::HeaderName::from_bytes(n.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    stream.send_trailers(fields).expect("trailers");
    resp.await.expect("response").status().as_u16()
}

#[tokio::test]
async fn request_trailers_reach_the_backend_in_the_last_chunk() {
    let (backend, mut seen) = recording_backend(OK).await;
    let proxy = common::start_proxy(&pooled_h2c(&backend.to_string(), ""));
    let mut send = h2c(proxy.addr).await;
    let trailers = [
        ("x-sum", "abc"),
        ("grpc-timeout", "1S"),
        ("content-length", "99"),
        ("host", "evil.test"),
        ("x-sum", "def"),
    ];
    // No length: chunked, the allowed trailers in the last chunk.
    assert_eq!(
        post_with_trailers(&mut send, &[], "hello", &trailers).await,
        200
    );
    let got = seen.recv().await.expect("request at the backend");
    assert!(got.contains("\r\nTransfer-Encoding: chunked\r\n"), "{got}");
    assert!(
        got.ends_with(
            "\r\n\r\n5\r\nhello\r\n0\r\nx-sum: abc\r\nx-sum: def\r\ngrpc-timeout: 1S\r\n\r\n"
        ),
        "{got:?}"
    );
    // A length and trailers announced (`Trailer`): sent chunked to carry them.
    let announced = [("content-length", "5"), ("trailer", "x-sum")];
    assert_eq!(
        post_with_trailers(&mut send, &announced, "hello", &trailers[..1]).await,
        200
    );
    let got = seen.recv().await.expect("request at the backend");
    assert!(
        !got.to_ascii_lowercase().contains("content-length"),
        "{got}"
    );
    assert!(got.ends_with("\r\n0\r\nx-sum: abc\r\n\r\n"), "{got:?}");
    // A length and no announcement: the body goes with its length, and the
    // trailers cannot follow it.
    let length = [("content-length", "5")];
    assert_eq!(
        post_with_trailers(&mut send, &length, "hello", &trailers[..1]).await,
        200
    );
    let got = seen.recv().await.expect("request at the backend");
    assert!(got.contains("\r\nContent-Length: 5\r\n"), "{got}");
    assert!(got.ends_with("\r\n\r\nhello"), "{got:?}");
    // Only forbidden fields: a plain last chunk.
    let forbidden = [("content-length", "1"), ("cookie", "a=1")];
    assert_eq!(
        post_with_trailers(&mut send, &[], "hello", &forbidden).await,
        200
    );
    let got = seen.recv().await.expect("request at the backend");
    assert!(got.ends_with("\r\n5\r\nhello\r\n0\r\n\r\n"), "{got:?}");
}

#[tokio::test]
async fn response_trailers_of_a_chunked_backend_reach_an_http2_client() {
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n\
        5\r\nhello\r\n0\r\nX-Sum: abc\r\nContent-Length: 9\r\ngrpc-status: 0\r\nSet-Cookie: a=1\r\n\r\n";
    let (backend, _seen) = recording_backend(answer).await;
    let proxy = common::start_proxy(&pooled_h2c(&backend.to_string(), ""));
    let mut send = h2c(proxy.addr).await;
    for _ in 0..2 {
        let (resp, _) = send
            .send_request(request("/t", &[("te", "trailers")]), true)
            .expect("stream");
        let resp = resp.await.expect("response");
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.expect("body");
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        assert_eq!(data, b"hello");
        let trailers = body
            .trailers()
            .await
            .expect("trailers")
            .expect("a trailer section");
        let fields: Vec<(&str, &str)> = trailers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().expect("value")))
            .collect();
        assert_eq!(fields, [("x-sum", "abc"), ("grpc-status", "0")]);
    }
    // An HTTP/1.1 client gets the body and no trailers, as from nginx.
    let raw = common::raw(
        proxy.addr,
        b"GET /t HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: close\r\n\r\n",
        Duration::from_millis(500),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "{raw:?}");
}

#[tokio::test]
async fn a_request_trailer_section_over_the_header_list_limit_is_dropped_far_over_it_closes() {
    let (backend, mut seen) = recording_backend(OK).await;
    let proxy = common::start_proxy(&pooled_h2c(
        &backend.to_string(),
        "large_client_header_buffers 2 1k;",
    ));
    let mut send = h2c(proxy.addr).await;
    // 4 KB of trailers against a 2 KB header-list limit, then a small
    // section on the next stream.
    let big = "x".repeat(4096);
    let oversized = [("x-big", big.as_str())];
    assert_eq!(
        post_with_trailers(&mut send, &[], "hello", &oversized).await,
        200
    );
    let got = seen.recv().await.expect("request at the backend");
    assert!(got.ends_with("\r\n5\r\nhello\r\n0\r\n\r\n"), "{got:?}");
    let small = [("x-sum", "abc")];
    assert_eq!(
        post_with_trailers(&mut send, &[], "hello", &small).await,
        200
    );
    let got = seen.recv().await.expect("request at the backend");
    assert!(got.ends_with("\r\n0\r\nx-sum: abc\r\n\r\n"), "{got:?}");
    // Past 4 x the limit, as for a head: the connection is closed.
    let huge = "x".repeat(16 * 1024);
    let (resp, mut stream) = send
        .send_request(
            http::Request::post("http://h/huge")
                .body(())
                .expect("request"),
            false,
        )
        .expect("stream");
    let mut fields = http::HeaderMap::new();
    fields.insert("x-huge", huge.parse().expect("value"));
    stream.send_trailers(fields).expect("trailers");
    let answered = tokio::time::timeout(Duration::from_secs(5), resp).await;
    assert!(matches!(answered, Ok(Err(_))), "{answered:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(seen.try_recv().is_err(), "the backend got the request");
    // The proxy serves the next connection.
    let mut send = h2c(proxy.addr).await;
    assert_eq!(
        post_with_trailers(&mut send, &[], "hello", &small).await,
        200
    );
}
