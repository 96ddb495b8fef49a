//! The HTTP/1.x wire towards the clients, over real sockets, with clients that
//! write exact bytes: keep-alive after bodies the pipeline did or did not read,
//! `Expect: 100-continue` both ways, chunked uploads followed by pipelined
//! requests, HTTP/1.0 keep-alive and close-delimited bodies, `Date`, and the
//! framing errors that close the connection.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

/// A client connection that reads one response at a time, by its framing.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One response as read off the wire.
#[derive(Debug)]
struct Raw {
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Wire {
    async fn connect(addr: SocketAddr) -> Wire {
        Wire {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads more; false at end of stream (or after `WAIT` of silence).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// The bytes up to and including the first `\r\n\r\n`.
    async fn head(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                return Some(String::from_utf8_lossy(&head).into_owned());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if !self.fill().await {
                break;
            }
        }
        let n = n.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            if !self.fill().await {
                return String::new();
            }
        }
    }

    /// Reads one response (the body by its length, its chunks, or to the
    /// close). `head_request`: the response has no body.
    async fn response(&mut self, head_request: bool) -> Option<Raw> {
        let head = self.head().await?;
        let mut raw = Raw {
            head,
            body: Vec::new(),
        };
        let status = raw.status();
        if head_request || status < 200 || status == 204 || status == 304 {
            return Some(raw);
        }
        if let Some(n) = raw.header("content-length") {
            raw.body = self.take(n.parse().unwrap_or(0)).await;
        } else if raw.header("transfer-encoding").as_deref() == Some("chunked") {
            loop {
                let size = usize::from_str_radix(self.line().await.trim(), 16).unwrap_or(0);
                if size == 0 {
                    self.line().await;
                    break;
                }
                let data = self.take(size).await;
                raw.body.extend_from_slice(&data);
                self.line().await;
            }
        } else {
            while self.fill().await {}
            raw.body = std::mem::take(&mut self.buf);
        }
        Some(raw)
    }

    /// True when the proxy has closed the connection (nothing more comes).
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

fn proxy(b: &Backend, extra: &str) -> TestProxy {
    start_proxy(&format!(
        "events {{}}\nhttp {{\n  upstream app {{ server {}; keepalive 4; }}\n  server {{\n    \
         listen 127.0.0.1:0;\n    {extra}\n    location / {{ proxy_pass http://app; }}\n    \
         location /fixed {{ return 200 \"fixed\"; }}\n  }}\n}}\n",
        b.peer()
    ))
}

#[tokio::test]
async fn a_body_the_pipeline_did_not_read_is_skipped_and_the_connection_kept() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let mut w = Wire::connect(p.addr).await;
    w.write(b"POST /fixed HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let first = w.response(false).await.expect("first");
    assert_eq!(first.status(), 200, "{first:?}");
    assert_eq!(first.text(), "fixed");
    assert_eq!(first.header("connection"), None, "kept alive");
    let second = w.response(false).await.expect("second");
    assert!(second.text().contains("GET /after"), "{second:?}");
}

#[tokio::test]
async fn chunked_uploads_are_forwarded_and_the_next_pipelined_request_served() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let mut w = Wire::connect(p.addr).await;
    w.write(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: t\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let first = w.response(false).await.expect("first");
    assert!(first.text().contains("body 11"), "{first:?}");
    let second = w.response(false).await.expect("second");
    assert!(second.text().contains("GET /next"), "{second:?}");
    // A chunked body to a location that does not read it is skipped too.
    w.write(b"POST /fixed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /third HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(w.response(false).await.expect("fixed").text(), "fixed");
    let third = w.response(false).await.expect("third");
    assert!(third.text().contains("GET /third"), "{third:?}");
}

#[tokio::test]
async fn expect_100_continue_is_answered_when_the_body_is_wanted() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let mut w = Wire::connect(p.addr).await;
    w.write(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let interim = w.response(false).await.expect("100");
    assert_eq!(interim.status(), 100, "{interim:?}");
    w.write(b"data").await;
    let done = w.response(false).await.expect("final");
    assert_eq!(done.status(), 200);
    assert!(done.text().contains("body 4"), "{done:?}");
    assert!(!done.text().contains("expect:"), "Expect is not forwarded");
    // Same connection, next request.
    w.write(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(w
        .response(false)
        .await
        .expect("again")
        .text()
        .contains("GET /again"));
}

#[tokio::test]
async fn expect_100_continue_is_not_answered_when_the_body_is_refused() {
    let b = Backend::start("a");
    let p = proxy(&b, "client_max_body_size 10;");
    let mut w = Wire::connect(p.addr).await;
    w.write(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let refused = w.response(false).await.expect("413");
    assert_eq!(refused.status(), 413, "{refused:?}");
    assert_eq!(refused.header("connection").as_deref(), Some("close"));
    assert!(w.closed().await);
    // Nor when the location answers without reading it; the body may still
    // come, so the connection closes.
    let mut w = Wire::connect(p.addr).await;
    w.write(b"PUT /fixed HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let fixed = w.response(false).await.expect("fixed");
    assert_eq!(fixed.status(), 200, "{fixed:?}");
    assert_eq!(fixed.header("connection").as_deref(), Some("close"));
    assert!(w.closed().await);
}

#[tokio::test]
async fn http10_clients_get_keep_alive_when_asked_and_close_delimited_bodies() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let mut w = Wire::connect(p.addr).await;
    w.write(b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let one = w.response(false).await.expect("one");
    // The status line says HTTP/1.1 to an HTTP/1.0 client, as nginx's.
    assert!(one.head.starts_with("HTTP/1.1 200"), "{one:?}");
    assert_eq!(one.header("connection").as_deref(), Some("keep-alive"));
    assert!(one.text().contains("GET /one"));
    // A body of unknown length (the backend streams it chunked) goes to an
    // HTTP/1.0 client until the connection closes.
    w.write(
        b"GET /down HTTP/1.0\r\nConnection: keep-alive\r\nX-Size: 100000\r\nX-Chunked: 1\r\n\r\n",
    )
    .await;
    let down = w.response(false).await.expect("down");
    assert_eq!(down.header("transfer-encoding"), None, "{down:?}");
    assert_eq!(down.header("connection").as_deref(), Some("close"));
    assert_eq!(down.body.len(), 100_000);
}

#[tokio::test]
async fn responses_carry_date_and_server_and_bodies_keep_their_framing() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let mut w = Wire::connect(p.addr).await;
    w.write(b"GET /down HTTP/1.1\r\nHost: x\r\nX-Size: 300000\r\nX-Chunked: 1\r\n\r\n")
        .await;
    let down = w.response(false).await.expect("down");
    assert_eq!(down.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(down.body.len(), 300_000);
    let date = down.header("date").expect("date");
    assert!(httpdate::parse_http_date(&date).is_ok(), "{date}");
    assert!(down
        .header("server")
        .is_some_and(|s| s.starts_with("sticky-proxy")));
    w.write(b"HEAD /down HTTP/1.1\r\nHost: x\r\nX-Size: 10\r\n\r\nGET /fixed HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let head = w.response(true).await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(w.response(false).await.expect("fixed").text(), "fixed");
}

/// Sends `bytes` on a new connection and checks the answer is `status` with
/// `Connection: close` (its names spelled as nginx spells its own), and that
/// the connection then closes.
async fn refused_and_closed(addr: SocketAddr, bytes: &[u8], status: u16) {
    let mut w = Wire::connect(addr).await;
    w.write(bytes).await;
    let r = w.response(false).await.expect("answer");
    assert_eq!(r.status(), status, "{r:?} for {bytes:?}");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    for ours in [
        "\r\nServer: ",
        "\r\nDate: ",
        "\r\nContent-Type: ",
        "\r\nContent-Length: ",
        "\r\nConnection: close",
    ] {
        assert!(r.head.contains(ours), "{ours:?} in {r:?}");
    }
    assert!(w.closed().await, "closed after {bytes:?}");
}

#[tokio::test]
async fn framing_errors_get_their_status_and_close_the_connection() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let cases: [(&[u8], u16); 5] = [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    ];
    for (bytes, status) in cases {
        refused_and_closed(p.addr, bytes, status).await;
    }
    // A broken chunked upload: the backend gets a cut request, the client an
    // error and a closed connection; the proxy goes on serving.
    let mut w = Wire::connect(p.addr).await;
    w.write(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        .await;
    if let Some(r) = w.response(false).await {
        assert!(r.status() >= 400, "{r:?}");
    }
    assert!(w.closed().await);
    assert_eq!(get(p.addr, "/", &[]).await.status, 200);
}

/// Issue 14, items 4 and 10: TRACE and CONNECT get 405 (nginx; CONNECT since
/// 1.29.3), a malformed chunk size in an upload 400 (it was 408), each closing
/// the connection.
#[tokio::test]
async fn trace_connect_and_malformed_chunk_sizes_are_refused_as_nginx() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let cases: [(&[u8], u16); 4] = [
        (b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"TRACE /fixed HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n", 400),
    ];
    for (bytes, status) in cases {
        refused_and_closed(p.addr, bytes, status).await;
    }
    // The proxy goes on serving.
    assert_eq!(get(p.addr, "/", &[]).await.status, 200);
}

/// Issue 14, item 5: `Expect: 100-continue` with `Content-Length: 0` gets its
/// interim `100 Continue` when the body is read (proxied), as nginx.
#[tokio::test]
async fn expect_100_continue_with_an_empty_body_is_answered() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let mut w = Wire::connect(p.addr).await;
    w.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let interim = w.response(false).await.expect("100");
    assert_eq!(interim.status(), 100, "{interim:?}");
    let done = w.response(false).await.expect("final");
    assert_eq!(done.status(), 200, "{done:?}");
    assert!(done.text().contains("content-length: 0"), "{done:?}");
    w.write(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(w
        .response(false)
        .await
        .expect("again")
        .text()
        .contains("GET /again"));
}

#[tokio::test]
async fn a_client_gone_mid_body_does_not_stop_the_proxy() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    for _ in 0..3 {
        let mut w = Wire::connect(p.addr).await;
        w.write(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
            .await;
        drop(w);
    }
    assert_eq!(get(p.addr, "/", &[]).await.status, 200);
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_served() {
    let b = Backend::start("a");
    let p = proxy(&b, "");
    let mut w = Wire::connect(p.addr).await;
    w.stream.set_nodelay(true).expect("nodelay");
    for byte in b"GET /slow HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n" {
        w.write(&[*byte]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let r = w.response(false).await.expect("answer");
    assert!(r.text().contains("GET /slow"), "{r:?}");
}

#[tokio::test]
async fn a_tunnel_outlives_keepalive_timeout_and_carries_early_bytes() {
    let b = Backend::start("a");
    let p = proxy(&b, "keepalive_timeout 1s;");
    let mut w = Wire::connect(p.addr).await;
    // Bytes right behind the upgrade request go to the backend after the switch.
    w.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nearly",
    )
    .await;
    let switched = w.response(true).await.expect("101");
    assert_eq!(switched.status(), 101, "{switched:?}");
    assert_eq!(switched.header("upgrade").as_deref(), Some("echo"));
    assert_eq!(w.take(5).await, b"EARLY");
    // Past keepalive_timeout (and a sweep or two), the tunnel still carries bytes.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    w.write(b"later").await;
    assert_eq!(w.take(5).await, b"LATER");
}
