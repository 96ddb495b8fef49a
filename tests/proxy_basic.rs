//! Basic forwarding over real sockets: proxy_pass, headers, keep-alive, bodies.

mod common;

use common::*;

fn conf(upstream: &str, extra: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n  upstream app {{\n{upstream}\n  }}\n  server {{\n    listen 127.0.0.1:0;\n{extra}\n  }}\n}}\n"
    )
}

#[tokio::test]
async fn plain_proxy_pass_forwards_request_and_response() {
    let b = Backend::start("a");
    let text = conf(
        &format!("server {};", b.peer()),
        "location / { proxy_pass http://app; }",
    );
    let p = start_proxy(&text);
    let r = get(p.addr, "/hello?x=1", &[("x-test", "yes")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.backend().as_deref(), Some("a"));
    assert_eq!(r.seen_request_line().as_deref(), Some("GET /hello?x=1"));
    assert_eq!(r.seen("x-test"), vec!["yes"]);
    assert_eq!(r.seen("host"), vec!["app"]);
    // The backend's Server header is replaced by ours.
    assert!(r.header("server").unwrap().starts_with("sticky-proxy"));
}

fn one_backend_conf(b: &Backend, locations: &str) -> String {
    conf(&format!("server {};", b.peer()), locations)
}

#[tokio::test]
async fn proxy_pass_uri_rules_follow_nginx() {
    let b = Backend::start("a");
    let locations = format!(
        "location /test_x {{ proxy_pass http://app/; }}\n\
         location /base/ {{ proxy_pass http://app/other/; }}\n\
         location /keep {{ proxy_pass http://app; }}\n\
         location = /exact {{ proxy_pass http://app/e; }}\n\
         location ~ ^/re(.*)$ {{ proxy_pass http://app; }}\n\
         location /direct/ {{ proxy_pass http://{}/d/; }}",
        b.peer()
    );
    let p = start_proxy(&one_backend_conf(&b, &locations));
    let cases = [
        ("/test_x", "/"),
        ("/test_x/y?z=1", "//y?z=1"),
        ("/base/a/b?q", "/other/a/b?q"),
        ("/keep/a%20b?x=1", "/keep/a%20b?x=1"),
        ("/exact", "/e"),
        ("/regex/x?y", "/regex/x?y"),
        ("/direct/z", "/d/z"),
    ];
    for (sent, seen) in cases {
        let r = get(p.addr, sent, &[]).await;
        assert_eq!(r.status, 200, "{sent}");
        assert_eq!(r.seen_request_line(), Some(format!("GET {seen}")), "{sent}");
    }
}

#[tokio::test]
async fn request_headers_as_nginx_sends_them() {
    let b = Backend::start("a");
    let locations = "location / {\n proxy_pass http://app;\n proxy_set_header Host $host;\n proxy_set_header X-Real-IP $remote_addr;\n proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n proxy_set_header X-Drop \"\";\n proxy_hide_header X-Secret;\n }";
    let p = start_proxy(&one_backend_conf(&b, locations));
    let r = get(
        p.addr,
        "/",
        &[
            ("host", "Example.COM:8080"),
            ("x-drop", "gone"),
            ("x-forwarded-for", "10.0.0.1"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "hop"),
            ("te", "trailers"),
            ("x-set-cookie", "a=b"),
        ],
    )
    .await;
    assert_eq!(r.seen("host"), vec!["example.com"]);
    assert_eq!(r.seen("x-real-ip"), vec!["127.0.0.1"]);
    assert_eq!(r.seen("x-forwarded-for"), vec!["10.0.0.1, 127.0.0.1"]);
    assert!(r.seen("x-drop").is_empty());
    assert!(
        r.seen("x-hop").is_empty(),
        "headers named in Connection are hop-by-hop"
    );
    assert!(r.seen("te").is_empty());
    assert_eq!(r.set_cookies(), vec!["a=b"]);
}

#[tokio::test]
async fn hidden_response_headers_are_removed() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "location / { proxy_pass http://app; proxy_hide_header X-Powered-By; server_tokens off; }",
    ));
    let r = get(p.addr, "/", &[]).await;
    assert_eq!(r.header("server").as_deref(), Some("sticky-proxy"));
    assert!(r.header("x-powered-by").is_none());
}

#[tokio::test]
async fn a_passed_server_header_is_the_backends() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "location / { proxy_pass http://app; proxy_pass_header Server; }",
    ));
    let r = get(p.addr, "/", &[]).await;
    let servers: Vec<_> = r.headers.get_all("server").iter().collect();
    assert_eq!(servers, ["echo"], "one Server, the backend's");
    assert_eq!(r.headers.get_all("date").iter().count(), 1);
}

#[tokio::test]
async fn keepalive_reuses_client_and_backend_connections() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(
        &format!("server {};\n keepalive 8;", b.peer()),
        "location / { proxy_pass http://app; }",
    ));
    let mut c = Client::connect(p.addr).await;
    for i in 0..20 {
        let r = c.get(&format!("/{i}"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.seen("connection"), Vec::<String>::new());
    }
    assert_eq!(b.hits(), 20);
    assert_eq!(
        b.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one backend connection for 20 sequential requests"
    );
}

#[tokio::test]
async fn without_keepalive_backend_connections_are_closed() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "location / { proxy_pass http://app; }",
    ));
    let mut c = Client::connect(p.addr).await;
    for _ in 0..3 {
        let r = c.get("/", &[]).await;
        assert_eq!(r.seen("connection"), vec!["close"]);
    }
    assert_eq!(b.conns.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn pooled_connection_closed_by_backend_is_retried_transparently() {
    let mut b = Backend::start("a");
    let p = start_proxy(&conf(
        &format!("server {};\n keepalive 8;", b.peer()),
        "location / { proxy_pass http://app; proxy_next_upstream off; }",
    ));
    let first = get(p.addr, "/", &[]).await;
    assert_eq!(first.status, 200);
    // The backend restarts: the pooled connection is dead.
    b.restart();
    let second = get(p.addr, "/", &[]).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.backend().as_deref(), Some("a"));
}

#[tokio::test]
async fn keepalive_requests_closes_the_client_connection() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "keepalive_requests 3;\n location / { proxy_pass http://app; }",
    ));
    let mut c = Client::connect(p.addr).await;
    for i in 1..=3 {
        let r = c.get("/", &[]).await;
        assert_eq!(r.header("connection").as_deref() == Some("close"), i == 3);
    }
    assert!(c.send("GET", "/", &[], empty()).await.is_err());
}

/// `keepalive_timeout` and `keepalive_requests` in a location decide for
/// that location's responses, as nginx reads them from the location.
#[tokio::test]
async fn keepalive_settings_in_a_location_apply_to_its_responses() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "keepalive_requests 100;\n location /once { keepalive_timeout 0; proxy_pass http://app; }\n\
         location /two { keepalive_requests 2; proxy_pass http://app; }\n\
         location / { proxy_pass http://app; }",
    ));
    let closes = |r: &common::Reply| r.header("connection").as_deref() == Some("close");
    // keepalive_timeout 0: this response closes the connection.
    let mut c = Client::connect(p.addr).await;
    assert!(!closes(&c.get("/", &[]).await));
    assert!(closes(&c.get("/once", &[]).await));
    assert!(c.send("GET", "/", &[], empty()).await.is_err());
    // keepalive_requests 2: the second request, if it lands there, is the last.
    let mut c = Client::connect(p.addr).await;
    assert!(!closes(&c.get("/two", &[]).await));
    assert!(closes(&c.get("/two", &[]).await));
    // Elsewhere the server's 100 hold.
    let mut c = Client::connect(p.addr).await;
    for _ in 0..3 {
        assert!(!closes(&c.get("/", &[]).await));
    }
}

#[tokio::test]
async fn http10_pipelining_head_and_expect_continue() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "location / { proxy_pass http://app; }",
    ));
    let http10 = raw(
        p.addr,
        b"GET /old HTTP/1.0\r\n\r\n",
        std::time::Duration::from_secs(5),
    )
    .await;
    // `HTTP/1.1` in the status line whatever the request said, as nginx.
    assert!(http10.starts_with("HTTP/1.1 200"), "{http10}");
    assert!(http10.contains("GET /old"));

    let pipelined = raw(
        p.addr,
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        std::time::Duration::from_secs(5),
    )
    .await;
    let one = pipelined.find("GET /one").expect("one");
    let two = pipelined.find("GET /two").expect("two");
    let three = pipelined.find("GET /three").expect("three");
    assert!(one < two && two < three, "answered in order");

    let head = raw(
        p.addr,
        b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        std::time::Duration::from_secs(5),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.contains("backend a"), "HEAD has no body");

    let expect = raw(
        p.addr,
        b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello",
        std::time::Duration::from_secs(5),
    )
    .await;
    assert!(expect.contains("200 OK"), "{expect}");
    assert!(expect.contains("body 5"), "{expect}");
    assert!(!expect.contains("expect: "), "Expect is not forwarded");
}

#[tokio::test]
async fn invalid_requests_get_400_and_the_proxy_keeps_serving() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "location / { proxy_pass http://app; }",
    ));
    let garbage: [&[u8]; 4] = [
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    ];
    for g in garbage {
        let r = raw(p.addr, g, std::time::Duration::from_secs(5)).await;
        assert!(r.starts_with("HTTP/1.1 400"), "{r:?} for {g:?}");
    }
    let ok = get(p.addr, "/", &[]).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn long_request_line_gets_414_and_large_headers_431() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "large_client_header_buffers 4 1k;\n location / { proxy_pass http://app; }",
    ));
    let long = format!("/{}", "a".repeat(2000));
    let r = get(p.addr, &long, &[]).await;
    assert_eq!(r.status, 414);
    let big = "b".repeat(9000);
    let r = raw(
        p.addr,
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
        std::time::Duration::from_secs(5),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
}

#[tokio::test]
async fn client_max_body_size_applies_to_chunked_bodies_too() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "client_max_body_size 1k;\n location / { proxy_pass http://app; }",
    ));
    let mut c = Client::connect(p.addr).await;
    // Under the limit: forwarded.
    let r = c.send("POST", "/", &[], sized(1000)).await.expect("reply");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("body 1000"));
    // Content-Length over the limit: 413 before anything is forwarded.
    let mut c = Client::connect(p.addr).await;
    let r = c.send("POST", "/", &[], sized(5000)).await.expect("reply");
    assert_eq!(r.status, 413);
    // Chunked over the limit: counted while streaming.
    let raw_reply = raw(
        p.addr,
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{}\r\n800\r\n{}\r\n0\r\n\r\n",
            "c".repeat(0x800),
            "c".repeat(0x800)
        )
        .as_bytes(),
        std::time::Duration::from_secs(5),
    )
    .await;
    assert!(raw_reply.starts_with("HTTP/1.1 413"), "{raw_reply}");
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(
        &format!("server {};\n keepalive 4;", b.peer()),
        "client_max_body_size 0;\n location / { proxy_pass http://app; }",
    ));
    let mut c = Client::connect(p.addr).await;
    let size: u64 = 8 * 1024 * 1024;
    let up = c
        .send("PUT", "/up", &[], sized(size))
        .await
        .expect("upload");
    assert_eq!(up.status, 200);
    assert!(up.text().contains(&format!("body {size}")));
    let down = c
        .send("GET", "/down", &[("x-size", &size.to_string())], empty())
        .await
        .expect("download");
    assert_eq!(down.body.len() as u64, size);
}

#[tokio::test]
#[ignore = "moves 2 x 512 MiB through the proxy; run with --ignored"]
async fn huge_bodies_stream_with_flat_memory() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(
        &format!("server {};\n keepalive 4;", b.peer()),
        "client_max_body_size 0;\n location / { proxy_pass http://app; }",
    ));
    let mut c = Client::connect(p.addr).await;
    let size: u64 = 512 * 1024 * 1024;
    let up = c
        .send("PUT", "/up", &[], sized(size))
        .await
        .expect("upload");
    assert!(up.text().contains(&format!("body {size}")));
    let resp = c
        .send_raw("GET", "/down", &[("x-size", &size.to_string())], empty())
        .await
        .expect("download");
    use http_body_util::BodyExt;
    let mut body = resp.into_body();
    let mut got = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame.expect("frame").data_ref() {
            got += d.len() as u64;
        }
    }
    assert_eq!(got, size);
    // Everything (test client, backend, proxy) is in this process: its peak RSS
    // bounds the proxy's.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    eprintln!("peak RSS of test process: {hwm_kb} kB");
    assert!(hwm_kb < 64 * 1024, "peak RSS {hwm_kb} kB");
}

#[tokio::test]
async fn slow_backend_gives_504_with_or_without_next_upstream() {
    let slow = Backend::start("slow");
    let fast = Backend::start("fast");
    let p = start_proxy(&conf(
        &format!("server {};\n server {};", slow.peer(), fast.peer()),
        "location / { proxy_pass http://app; proxy_read_timeout 200ms; proxy_next_upstream off; }\n\
         location /retry { proxy_pass http://app; proxy_read_timeout 200ms; }",
    ));
    // Round robin starts with `slow`.
    let r = get(p.addr, "/", &[("x-delay-ms", "2000")]).await;
    assert_eq!(r.status, 504);
    let r = get(p.addr, "/retry", &[("x-delay-ms", "2000")]).await;
    assert_eq!(r.status, 504, "both delayed: both time out");
}

#[tokio::test]
async fn next_upstream_on_listed_status() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let p = start_proxy(&conf(
        &format!(
            "server {} max_fails=0;\n server {} max_fails=0;",
            a.peer(),
            b.peer()
        ),
        "location / { proxy_pass http://app; proxy_next_upstream error http_503; }",
    ));
    // Every backend answers 503 when asked: both are tried, the last answer goes back.
    let r = get(p.addr, "/", &[("x-status", "503")]).await;
    assert_eq!(r.status, 503);
    assert_eq!(a.hits() + b.hits(), 2);
    // POST is not retried after being sent.
    let mut c = Client::connect(p.addr).await;
    let r = c
        .send("POST", "/", &[("x-status", "503")], full("data"))
        .await
        .expect("reply");
    assert_eq!(r.status, 503);
    assert_eq!(a.hits() + b.hits(), 3);
}

#[tokio::test]
async fn websocket_upgrade_becomes_a_tunnel_and_gets_the_sticky_cookie() {
    let b = Backend::start("a");
    let text = format!(
        "events {{}}\nhttp {{\n upstream app {{ session_sticky cookie=route; server {}; }}\n server {{ listen 127.0.0.1:0; location / {{ proxy_pass http://app; }} }}\n}}\n",
        b.peer()
    );
    let p = start_proxy(&text);
    let mut c = Client::connect(p.addr).await;
    let resp = c
        .send_raw(
            "GET",
            "/ws",
            // Only WebSocket upgrades are tunnelled (issue 14, item 12).
            &[("connection", "upgrade"), ("upgrade", "websocket")],
            empty(),
        )
        .await
        .expect("101");
    assert_eq!(resp.status(), 101);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap_or("").to_string());
    assert_eq!(cookie, Some(format!("route={}; Path=/", b.sid())));
    let upgraded = hyper::upgrade::on(resp).await.expect("upgraded");
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    io.write_all(b"hello tunnel").await.expect("write");
    let mut buf = [0u8; 12];
    io.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"HELLO TUNNEL");
}

fn capped_conf(b: &Backend, cap: usize) -> String {
    format!(
        "events {{ worker_connections {cap}; }}\nhttp {{\n upstream app {{ server {}; }}\n server {{ listen 127.0.0.1:0; location / {{ proxy_pass http://app; }} }}\n}}\n",
        b.peer()
    )
}

#[tokio::test]
async fn at_worker_connections_the_longest_idle_connection_makes_room() {
    let b = Backend::start("a");
    let p = start_proxy(&capped_conf(&b, 2));
    let mut c1 = Client::connect(p.addr).await;
    assert_eq!(c1.get("/", &[]).await.status, 200);
    let mut c2 = Client::connect(p.addr).await;
    assert_eq!(c2.get("/", &[]).await.status, 200);
    // A third client is served at once: c1, idle the longest, is closed for it.
    let third = tokio::time::timeout(std::time::Duration::from_secs(5), get(p.addr, "/", &[]))
        .await
        .expect("served without waiting");
    assert_eq!(third.status, 200);
    assert!(
        c1.send("GET", "/", &[], empty()).await.is_err(),
        "c1 was evicted"
    );
    assert_eq!(c2.get("/", &[]).await.status, 200);
}

#[tokio::test]
async fn slow_header_clients_cannot_lock_out_others() {
    let b = Backend::start("a");
    let p = start_proxy(&capped_conf(&b, 8));
    use tokio::io::AsyncWriteExt;
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut s = tokio::net::TcpStream::connect(p.addr)
            .await
            .expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHo")
            .await
            .expect("partial header");
        slow.push(s);
    }
    for _ in 0..5 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), get(p.addr, "/", &[]))
            .await
            .expect("served despite the slow clients");
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn busy_connections_are_not_evicted_and_excess_clients_wait() {
    let b = Backend::start("a");
    let p = start_proxy(&capped_conf(&b, 2));
    let slow = |addr| async move { get(addr, "/", &[("x-delay-ms", "500")]).await.status };
    let first = tokio::spawn(slow(p.addr));
    let second = tokio::spawn(slow(p.addr));
    // Wait until both requests are at the backend (their connections are busy).
    let waited = std::time::Instant::now();
    while b.hits() < 2 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(5),
            "requests arrive"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let started = std::time::Instant::now();
    let third = get(p.addr, "/", &[]).await;
    assert_eq!(third.status, 200);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "waited for a busy connection to finish"
    );
    assert_eq!(first.await.expect("task"), 200);
    assert_eq!(second.await.expect("task"), 200);
}

#[tokio::test]
async fn idle_client_is_closed_after_client_header_timeout() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "client_header_timeout 300ms;\n location / { proxy_pass http://app; }",
    ));
    let started = std::time::Instant::now();
    let r = raw(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        std::time::Duration::from_secs(5),
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{r}");
    let ok = get(p.addr, "/", &[]).await;
    assert_eq!(ok.status, 200);
}

/// A raw backend that answers the first request of every connection and then
/// closes the connection when the second request arrives, without answering:
/// the race a pooled keep-alive connection can lose.
fn one_shot_backend() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&conns);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut answered = false;
                loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        if answered {
                            return; // closes without a response
                        }
                        buf.drain(..end + 4);
                        let _ =
                            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
                        answered = true;
                    }
                }
            });
        }
    });
    (addr, conns)
}

#[tokio::test]
async fn request_lost_on_a_pooled_connection_is_resent_once_on_a_fresh_one() {
    let (addr, conns) = one_shot_backend();
    let p = start_proxy(&conf(
        &format!("server {addr};\n keepalive 4;"),
        "location / { proxy_pass http://app; proxy_next_upstream off; }",
    ));
    for _ in 0..3 {
        let r = get(p.addr, "/", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "first");
    }
    assert!(conns.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    // A POST is not resent after it was written.
    let _warm = get(p.addr, "/", &[]).await;
    let mut c = Client::connect(p.addr).await;
    let r = c.send("POST", "/", &[], full("x")).await.expect("reply");
    assert_eq!(r.status, 502);
}

#[tokio::test]
async fn idle_keepalive_connection_is_closed_after_keepalive_timeout() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "keepalive_timeout 1s;\n location / { proxy_pass http://app; }",
    ));
    let mut c = Client::connect(p.addr).await;
    assert_eq!(c.get("/", &[]).await.status, 200);
    // Used again within the timeout: still open.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(c.get("/", &[]).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert!(
        c.send("GET", "/", &[], empty()).await.is_err(),
        "closed while idle"
    );
}

#[tokio::test]
async fn proxied_location_with_trailing_slash_redirects_the_bare_path() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "location /app/ { proxy_pass http://app; }",
    ));
    let r = get(p.addr, "/app?x=1", &[("host", "example.com")]).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location").as_deref(),
        Some(format!("http://example.com:{}/app/?x=1", p.addr.port()).as_str())
    );
    let ok = get(p.addr, "/app/", &[]).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn connect_failure_moves_to_the_next_peer_within_the_tries_limit() {
    let a = Backend::start("a");
    let dead = dead_addr();
    let upstream = format!(
        "server {dead} max_fails=0;\n server {} max_fails=0;",
        a.peer()
    );
    let p = start_proxy(&conf(
        &upstream,
        "location / { proxy_pass http://app; }\n location /one { proxy_pass http://app; proxy_next_upstream_tries 1; }",
    ));
    // Round robin alternates; with the default `error timeout` every request succeeds.
    for _ in 0..4 {
        let r = get(p.addr, "/", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend().as_deref(), Some("a"));
    }
    // One try only: the requests that start at the dead peer get 502.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(p.addr, "/one", &[]).await.status);
    }
    assert!(
        statuses.contains(&502) && statuses.contains(&200),
        "{statuses:?}"
    );
}

/// Asks `path` for `size` bytes, reads nothing for 1.2 s, then reads until
/// the proxy closes or 10 s pass: the bytes read, and whether it closed.
async fn stalled_read(addr: std::net::SocketAddr, path: &str, size: u64) -> (u64, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Size: {size}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("request");
    // Do not read for a while: the proxy's writes stall.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
    })
    .await;
    (got, closed.is_ok())
}

#[tokio::test]
async fn client_that_stops_reading_is_closed_after_send_timeout() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "send_timeout 300ms;\n location / { proxy_pass http://app; }",
    ));
    let size: u64 = 256 * 1024 * 1024;
    let (got, closed) = stalled_read(p.addr, "/", size).await;
    assert!(closed, "the proxy closed the stalled connection");
    assert!(got < size, "the response was cut short ({got} bytes)");
    // The proxy still serves others.
    assert_eq!(get(p.addr, "/", &[]).await.status, 200);
}

/// `send_timeout` in a location is that location's (nginx reads it from the
/// location); the server's applies elsewhere.
#[tokio::test]
async fn send_timeout_in_a_location_applies_to_its_responses() {
    let b = Backend::start("a");
    let p = start_proxy(&one_backend_conf(
        &b,
        "send_timeout 30s;\n location /short { send_timeout 300ms; proxy_pass http://app; }\n\
         location / { proxy_pass http://app; }",
    ));
    let size: u64 = 256 * 1024 * 1024;
    let (got, closed) = stalled_read(p.addr, "/short", size).await;
    assert!(
        closed && got < size,
        "/short: cut after its send_timeout ({got} bytes)"
    );
    // The server's 30 s: a 1.2 s stall is waited out and the body arrives whole.
    let size: u64 = 8 * 1024 * 1024;
    let (got, closed) = stalled_read(p.addr, "/long", size).await;
    assert!(closed, "/long: the response ended");
    assert!(
        got > size,
        "/long: the whole body came ({got} bytes with the head)"
    );
}

#[tokio::test]
async fn virtual_servers_are_chosen_by_host_on_a_shared_listener() {
    let text = "events {}\nhttp {\n\
        server { listen 127.0.0.1:0; server_name a.example; return 200 \"A\"; }\n\
        server { listen 127.0.0.1:0 default_server; server_name _; return 200 \"default\"; }\n\
        server { listen 127.0.0.1:0; server_name *.wild.example; return 200 \"wild\"; }\n\
        server { listen 127.0.0.1:0; server_name ~^re\\d+\\.example$; return 200 \"regex\"; }\n\
        }\n";
    let p = start_proxy(text);
    assert_eq!(
        p.running.addrs().len(),
        1,
        "one socket for the shared address"
    );
    let cases = [
        ("a.example", "A"),
        ("A.Example:8080", "A"),
        ("x.wild.example", "wild"),
        ("re42.example", "regex"),
        ("other.example", "default"),
    ];
    for (host, body) in cases {
        let r = get(p.addr, "/", &[("host", host)]).await;
        assert_eq!(r.text(), body, "Host: {host}");
    }
    let bad = raw(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: bad..host\r\n\r\n",
        std::time::Duration::from_secs(5),
    )
    .await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
}
