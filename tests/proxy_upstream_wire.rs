//! The HTTP/1.1 wire towards the backends, over real sockets, against scripted
//! backends that write exact bytes: response framing (chunked, close-delimited,
//! HTTP/1.0, HEAD), interim responses, malformed and truncated responses,
//! keep-alive reuse and a pooled connection the backend closed, a backend that
//! answers before it has read the request body, chunked uploads, and bytes that
//! follow a `101`.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a scripted backend does after it has read a request.
#[derive(Clone)]
struct Script {
    /// The exact bytes it answers every request with.
    response: Vec<u8>,
    /// Close the connection after each response (without saying so).
    close: bool,
    /// Answer as soon as the request head is in, then read the body (as a
    /// backend refusing an upload would).
    answer_before_body: bool,
    /// Read the request head, then neither read nor answer (a stuck backend).
    stall: bool,
}

/// A backend on 127.0.0.1:0 that reads each request (head, then a
/// Content-Length or chunked body) and writes `script.response`. It records
/// every request it read, raw, and counts connections.
struct Scripted {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Scripted {
    async fn start(script: Script) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let conns = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, r) = (Arc::clone(&conns), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, script.clone(), Arc::clone(&r)));
            }
        });
        Scripted {
            addr,
            conns,
            requests,
        }
    }

    fn peer(&self) -> String {
        self.addr.to_string()
    }

    fn conns(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    fn request(&self, i: usize) -> String {
        let all = self.requests.lock().expect("lock");
        String::from_utf8_lossy(all.get(i).map_or(&[][..], |r| r)).into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn serve(mut stream: TcpStream, script: Script, seen: Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // The head.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let chunked = head.contains("transfer-encoding: chunked");
        if script.stall {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        if script.answer_before_body && stream.write_all(&script.response).await.is_err() {
            return;
        }
        // The body.
        let end = loop {
            let have = buf.len() - head_end;
            if chunked {
                if let Some(i) = find(&buf[head_end..], b"0\r\n\r\n") {
                    break head_end + i + 5;
                }
            } else if have >= length {
                break head_end + length;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        seen.lock().expect("lock").push(buf[..end].to_vec());
        buf.drain(..end);
        if !script.answer_before_body && stream.write_all(&script.response).await.is_err() {
            return;
        }
        if script.close {
            return;
        }
    }
}

fn answering(response: &str) -> Script {
    Script {
        response: response.as_bytes().to_vec(),
        close: false,
        answer_before_body: false,
        stall: false,
    }
}

fn proxy_for(backend: &Scripted) -> TestProxy {
    start_proxy(&format!(
        "events {{}}\nhttp {{\n  upstream app {{ server {}; keepalive 8; }}\n  server {{\n    \
         listen 127.0.0.1:0;\n    proxy_read_timeout 5s;\n    location / {{ proxy_pass http://app; }}\n  }}\n}}\n",
        backend.peer()
    ))
}

/// The body of the first response in `raw` (after the blank line), de-chunked
/// when the proxy chunked it.
fn body_of(raw: &str) -> String {
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        return String::new();
    };
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    out
}

const WAIT: Duration = Duration::from_millis(700);

async fn get_raw(addr: SocketAddr, extra: &str) -> String {
    raw(
        addr,
        format!("GET / HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
        WAIT,
    )
    .await
}

#[tokio::test]
async fn chunked_responses_are_decoded_and_passed_on() {
    let b = Scripted::start(answering(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    ))
    .await;
    let p = proxy_for(&b);
    for _ in 0..3 {
        let r = get_raw(p.addr, "").await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert_eq!(body_of(&r), "hello world", "{r}");
    }
    assert_eq!(
        b.conns(),
        1,
        "the chunked response left the connection reusable"
    );
}

/// `chunked_transfer_encoding off` (minio's configs set it): a body of unknown
/// length goes to an HTTP/1.1 client unchunked, ended by closing the
/// connection, as nginx; a body whose length is known keeps the connection.
#[tokio::test]
async fn chunked_transfer_encoding_off_ends_unknown_lengths_with_the_close() {
    let chunked = Scripted::start(answering(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    ))
    .await;
    let sized = Scripted::start(answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")).await;
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n  chunked_transfer_encoding off;\n  server {{\n    listen 127.0.0.1:0;\n    \
         location / {{ proxy_pass http://{}; }}\n    \
         location /on {{ chunked_transfer_encoding on; proxy_pass http://{}; }}\n    \
         location /sized {{ proxy_pass http://{}; }}\n  }}\n}}\n",
        chunked.peer(),
        chunked.peer(),
        sized.peer()
    ));
    let ask = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\nGET /sized HTTP/1.1\r\nHost: t\r\n\r\n")
    };
    // Off: no chunking, `Connection: close`, the body whole, and the
    // request behind it never answered (the connection ended).
    let r = raw(p.addr, ask("/").as_bytes(), WAIT).await;
    let (head, body) = r.split_once("\r\n\r\n").unwrap_or_default();
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("HTTP/1.1 200"), "{r}");
    assert!(!lower.contains("transfer-encoding"), "{r}");
    assert!(lower.contains("connection: close"), "{r}");
    assert_eq!(body, "hello world", "{r}");
    // On in a location: chunked again, and keep-alive serves the next one.
    let r = raw(p.addr, ask("/on").as_bytes(), WAIT).await;
    assert!(
        r.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{r}"
    );
    assert_eq!(r.matches("HTTP/1.1 200").count(), 2, "{r}");
    // A known length is not affected.
    let r = raw(p.addr, ask("/sized").as_bytes(), WAIT).await;
    assert_eq!(r.matches("HTTP/1.1 200").count(), 2, "{r}");
}

/// Issue 13, bug 1 and issue 14, item 1: the response's framing is decided
/// once, where the backend's head is parsed. A `Content-Length` next to
/// `Transfer-Encoding: chunked` once cut the body to the length (or was
/// forwarded as is when unparsable); repeated or unknown framing headers
/// were passed on. As nginx 1.23+, each is an invalid head now: 502, and the
/// backend connection is not reused.
#[tokio::test]
async fn ambiguous_or_repeated_framing_from_a_backend_gets_502_and_is_not_reused() {
    let cases = [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: abc\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Content-Length: 10\r\nContent-Length: 10\r\n",
        "Content-Length: 10, 10\r\n",
    ];
    for framing in cases {
        let b = Scripted::start(answering(&format!(
            "HTTP/1.1 200 OK\r\n{framing}\r\na\r\n0123456789\r\n0\r\n\r\n"
        )))
        .await;
        let p = proxy_for(&b);
        for _ in 0..2 {
            let r = get_raw(p.addr, "").await;
            assert!(r.starts_with("HTTP/1.1 502"), "{framing:?}: {r}");
            assert!(!r.contains("0123456789"), "{framing:?}: {r}");
        }
        assert_eq!(b.conns(), 2, "{framing:?}: a connection is never reused");
    }
}

/// Issue 14, item 10: whitespace after a chunk size may only come before a
/// `;` extension (RFC 9112 7.1.1); `5 5` was read as 5. The body is cut (the
/// client never gets a complete response) and the connection is dropped.
#[tokio::test]
async fn a_chunk_size_with_stray_bytes_cuts_the_body_and_drops_the_connection() {
    let b = Scripted::start(answering(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n",
    ))
    .await;
    let p = proxy_for(&b);
    for _ in 0..2 {
        let r = get_raw(p.addr, "").await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(!r.contains("hello"), "{r}");
        assert!(!r.ends_with("0\r\n\r\n"), "never a complete body: {r}");
    }
    assert_eq!(b.conns(), 2, "the broken connection is not reused");
}

#[tokio::test]
async fn close_delimited_and_http10_responses_are_read_to_the_end() {
    let cases = [
        "HTTP/1.0 200 OK\r\n\r\nuntil the end",
        "HTTP/1.1 200 OK\r\n\r\nuntil the end",
        // (An unknown transfer coding is an invalid head since issue 14: 502.)
    ];
    for response in cases {
        let b = Scripted::start(Script {
            close: true,
            ..answering(response)
        })
        .await;
        let p = proxy_for(&b);
        for _ in 0..2 {
            let r = get_raw(p.addr, "").await;
            assert!(r.starts_with("HTTP/1.1 200"), "{response:?}: {r}");
            assert_eq!(body_of(&r), "until the end", "{response:?}: {r}");
        }
        assert_eq!(b.conns(), 2, "{response:?}: never reused");
    }
}

#[tokio::test]
async fn http10_keep_alive_response_is_reused() {
    let b = Scripted::start(answering(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    ))
    .await;
    let p = proxy_for(&b);
    for _ in 0..3 {
        assert_eq!(body_of(&get_raw(p.addr, "").await), "ok");
    }
    assert_eq!(b.conns(), 1);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let b = Scripted::start(answering(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
         HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ))
    .await;
    let p = proxy_for(&b);
    let r = get_raw(p.addr, "").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(!r.contains("100 Continue") && !r.contains("103"), "{r}");
    assert_eq!(body_of(&r), "ok");
}

#[tokio::test]
async fn head_responses_have_no_body_and_keep_the_connection() {
    let b = Scripted::start(answering("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")).await;
    let p = proxy_for(&b);
    for _ in 0..3 {
        let r = raw(
            p.addr,
            b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            WAIT,
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            r.to_ascii_lowercase().contains("content-length: 100"),
            "{r}"
        );
        assert!(
            r.ends_with("\r\n\r\n"),
            "no body after a HEAD response: {r:?}"
        );
    }
    assert_eq!(b.conns(), 1);
    assert!(b.request(0).starts_with("HEAD / HTTP/1.1\r\n"));
}

#[tokio::test]
async fn malformed_responses_get_502_and_the_proxy_keeps_serving() {
    let bad = [
        "garbage\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        "HTTP/1.1 999999 OK\r\n\r\n",
    ];
    for response in bad {
        let b = Scripted::start(answering(response)).await;
        let p = proxy_for(&b);
        let r = get_raw(p.addr, "").await;
        assert!(r.starts_with("HTTP/1.1 502"), "{response:?}: {r}");
        assert!(!r.to_ascii_lowercase().contains("set-cookie"), "{r}");
    }
    // A head longer than the proxy accepts.
    let huge = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let b = Scripted::start(answering(&huge)).await;
    let p = proxy_for(&b);
    assert!(get_raw(p.addr, "").await.starts_with("HTTP/1.1 502"));
    // Still serving, and a good backend behind the same proxy binary works.
    let good = Scripted::start(answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")).await;
    let p = proxy_for(&good);
    assert_eq!(body_of(&get_raw(p.addr, "").await), "ok");
}

#[tokio::test]
async fn truncated_body_ends_the_client_connection_early() {
    let b = Scripted::start(Script {
        close: true,
        ..answering("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    })
    .await;
    let p = proxy_for(&b);
    // The client gets the head and the 3 bytes, then the connection ends
    // before the promised 10: never a complete response.
    let r = get_raw(p.addr, "").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("Content-Length: 10"), "{r}");
    assert_eq!(body_of(&r), "abc", "{r}");
    // The broken connection is not reused: the next request gets a fresh one
    // (and the same truncated answer).
    let again = get_raw(p.addr, "").await;
    assert!(body_of(&again).len() < 10, "{again}");
    assert_eq!(b.conns(), 2);
    assert_eq!(b.requests.lock().map(|r| r.len()).unwrap_or(0), 2);
}

#[tokio::test]
async fn pooled_connection_closed_by_the_backend_is_retried_transparently() {
    // The backend closes after each response without `Connection: close`, so
    // every pooled connection is dead by the next request.
    let b = Scripted::start(Script {
        close: true,
        ..answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    })
    .await;
    let p = proxy_for(&b);
    let mut client = Client::connect(p.addr).await;
    for i in 0..5 {
        let r = client.get("/", &[]).await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.text(), "ok");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(b.conns(), 5);
}

#[tokio::test]
async fn a_backend_answering_before_reading_the_body_is_heard() {
    let b = Scripted::start(Script {
        answer_before_body: true,
        ..answering("HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 4\r\n\r\nbig!")
    })
    .await;
    let p = proxy_for(&b);
    let body = vec![b'u'; 512 * 1024];
    let mut req = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = raw(p.addr, &req, Duration::from_secs(2)).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{}", &r[..r.len().min(200)]);
    assert_eq!(body_of(&r), "big!");
    // Once the response is complete, the rest of the upload is abandoned (as
    // nginx does) unless it had already gone out; an abandoned connection is
    // never reused, so the next request is answered all the same.
    let r = raw(p.addr, &req, Duration::from_secs(2)).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{}", &r[..r.len().min(200)]);
    assert!((1..=2).contains(&b.conns()));
}

#[tokio::test]
async fn chunked_uploads_go_on_chunked_and_length_uploads_raw() {
    let b = Scripted::start(answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")).await;
    let p = proxy_for(&b);
    let r = raw(
        p.addr,
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        WAIT,
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = raw(
        p.addr,
        b"POST /l HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        WAIT,
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let chunked = b.request(0);
    assert!(
        chunked.contains("Transfer-Encoding: chunked\r\n"),
        "{chunked}"
    );
    assert!(
        !chunked.to_ascii_lowercase().contains("content-length"),
        "{chunked}"
    );
    let (_, wire) = chunked.split_once("\r\n\r\n").unwrap_or_default();
    let mut data = String::new();
    let mut rest = wire;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size, 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        data.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    assert_eq!(data, "hello world");
    let length = b.request(1);
    assert!(length.contains("Content-Length: 5\r\n"), "{length}");
    assert!(length.ends_with("\r\n\r\nhello"), "{length}");
}

#[tokio::test]
async fn bytes_after_a_101_reach_the_client() {
    let b = Scripted::start(answering(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nHELLO",
    ))
    .await;
    let p = proxy_for(&b);
    let r = raw(
        p.addr,
        b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        WAIT,
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 101"), "{r}");
    assert!(r.ends_with("\r\n\r\nHELLO"), "{r:?}");
    let seen = b.request(0).to_ascii_lowercase();
    assert!(
        seen.contains("connection: upgrade\r\n") && seen.contains("upgrade: websocket\r\n"),
        "{seen}"
    );
}

/// Issue 14, item 12: only WebSocket upgrades are tunnelled. An `h2c` upgrade
/// (h2c smuggling: the tunnel would bypass every location rule) never
/// reaches the backend as one, nor do its `HTTP2-Settings`; a backend `101`
/// to a request that asked for no tunnelled upgrade is a 502, never a tunnel.
#[tokio::test]
async fn only_websocket_upgrades_become_tunnels() {
    for upgrade in ["h2c", "echo"] {
        let b = Scripted::start(answering(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nHELLO",
        ))
        .await;
        let p = proxy_for(&b);
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: {upgrade}\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        );
        let r = raw(p.addr, request.as_bytes(), WAIT).await;
        assert!(r.starts_with("HTTP/1.1 502"), "{upgrade}: {r}");
        assert!(!r.contains("HELLO"), "{upgrade}: {r}");
        let seen = b.request(0).to_ascii_lowercase();
        assert!(!seen.contains("upgrade:"), "{upgrade}: {seen}");
        assert!(!seen.contains("http2-settings"), "{upgrade}: {seen}");
    }
}

/// Issue 14, item 8: a singleton field a backend repeats keeps its first
/// line, as nginx; list fields (`Set-Cookie`) keep all.
#[tokio::test]
async fn repeated_singleton_headers_from_a_backend_keep_the_first() {
    let b = Scripted::start(answering(
        "HTTP/1.1 200 OK\r\nExpires: Thu, 01 Jan 2026 00:00:00 GMT\r\nSet-Cookie: a=1\r\n\
         Expires: Fri, 02 Jan 2026 00:00:00 GMT\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok",
    ))
    .await;
    let p = proxy_for(&b);
    let r = get_raw(p.addr, "").await.to_ascii_lowercase();
    assert_eq!(r.matches("expires:").count(), 1, "{r}");
    assert!(r.contains("expires: thu, 01 jan 2026"), "{r}");
    assert_eq!(r.matches("set-cookie:").count(), 2, "{r}");
}

#[tokio::test]
async fn request_head_goes_out_once_with_hop_by_hop_headers_removed() {
    let b = Scripted::start(answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")).await;
    let p = proxy_for(&b);
    let r = raw(
        p.addr,
        b"GET /x?y=1 HTTP/1.1\r\nHost: client.example\r\nConnection: keep-alive, X-Hop\r\n\
          X-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Keep: yes\r\n\r\n",
        WAIT,
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let seen = b.request(0);
    let mut lines = seen.lines();
    assert_eq!(lines.next(), Some("GET /x?y=1 HTTP/1.1"));
    let lower = seen.to_ascii_lowercase();
    assert!(lower.contains("host: app\r\n"), "{seen}");
    assert!(lower.contains("x-keep: yes\r\n"), "{seen}");
    for gone in ["x-hop", "keep-alive", "te:", "connection"] {
        assert!(!lower.contains(gone), "{gone} forwarded: {seen}");
    }
}

#[tokio::test]
async fn a_backend_that_stops_taking_the_body_times_out_with_proxy_send_timeout() {
    let b = Scripted::start(Script {
        stall: true,
        ..answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    })
    .await;
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n  upstream app {{ server {}; }}\n  server {{\n    \
         listen 127.0.0.1:0;\n    client_max_body_size 0;\n    proxy_send_timeout 1s;\n    \
         proxy_read_timeout 20s;\n    location / {{ proxy_pass http://app; }}\n  }}\n}}\n",
        b.peer()
    ));
    // More than the loopback socket buffers can hold, so the proxy's writes block.
    let body = vec![b'u'; 48 * 1024 * 1024];
    let mut req = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let started = std::time::Instant::now();
    let mut stream = TcpStream::connect(p.addr).await.expect("connect");
    let (mut rd, mut wr) = stream.split();
    let write = async {
        // The proxy stops reading once its upload is stuck; that is fine.
        let _ = wr.write_all(&req).await;
    };
    let read = async {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(15), rd.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    let (_, reply) = tokio::join!(
        async { tokio::time::timeout(Duration::from_secs(15), write).await },
        read
    );
    assert!(
        reply.starts_with("HTTP/1.1 504"),
        "{}",
        &reply[..reply.len().min(200)]
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(12), "took {took:?}");
}

#[tokio::test]
async fn invalid_header_is_retried_only_when_proxy_next_upstream_lists_it() {
    let bad = Scripted::start(answering("garbage\r\n\r\n")).await;
    let good = Scripted::start(answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")).await;
    for (next, want) in [
        ("error timeout invalid_header", "HTTP/1.1 200"),
        ("error timeout", "HTTP/1.1 502"),
    ] {
        // Round robin starts on the bad backend for the first request.
        let p = start_proxy(&format!(
            "events {{}}\nhttp {{\n  upstream app {{ server {}; server {}; }}\n  server {{\n    \
             listen 127.0.0.1:0;\n    proxy_next_upstream {next};\n    \
             location / {{ proxy_pass http://app; }}\n  }}\n}}\n",
            bad.peer(),
            good.peer()
        ));
        let r = get_raw(p.addr, "").await;
        assert!(r.starts_with(want), "{next}: {r}");
    }
}

/// Checks that the first head of `raw` has each line of `exact` and a line
/// starting with each of `starts`, byte for byte (names' case included).
fn assert_head_lines(raw: &str, exact: &[&str], starts: &[&str]) {
    let head = raw.split_once("\r\n\r\n").map_or(raw, |(h, _)| h);
    let lines: Vec<&str> = head.split("\r\n").skip(1).collect();
    for want in exact {
        assert!(lines.contains(want), "{want:?} in {raw}");
    }
    for start in starts {
        assert!(
            lines.iter().any(|l| l.starts_with(start)),
            "{start:?} in {raw}"
        );
    }
}

#[tokio::test]
async fn header_names_keep_their_spelling_and_ours_are_canonical() {
    let b = Scripted::start(answering(
        "HTTP/1.1 200 OK\r\nX-CuStOm: 1\r\nx-lower: 2\r\nSET-COOKIE: a=1\r\nX-Empty:\r\n\
         content-type: text/plain\r\nContent-Length: 2\r\n\r\nok",
    ))
    .await;
    // No `keepalive`: nginx's `Connection: close` towards the backend.
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n  upstream app {{ server {}; session_sticky cookie=route; }}\n  \
         server {{\n    listen 127.0.0.1:0;\n    location / {{ proxy_pass http://app;\n      \
         proxy_set_header X-Real-IP $remote_addr;\n      proxy_set_header x-lower-set on; }}\n    \
         location /r {{ return 302 /there; }}\n  }}\n}}\n",
        b.peer()
    ));
    let r = get_raw(p.addr, "x-MiXeD: v\r\nUser-AGENT: t\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // The backend's names as it sent them, ours canonical (checked against
    // nginx 1.22 with the same backend and config).
    assert_head_lines(
        &r,
        &[
            "X-CuStOm: 1",
            "x-lower: 2",
            "SET-COOKIE: a=1",
            "X-Empty: ",
            // nginx writes this one itself, whoever set it.
            "Content-Type: text/plain",
            "Content-Length: 2",
            "Connection: close",
        ],
        &["Server: sticky-proxy", "Date: ", "Set-Cookie: route="],
    );
    // Towards the backend: the client's names as it sent them, the
    // configured ones as written, nginx's own canonical.
    let seen = b.request(0);
    assert_head_lines(
        &seen,
        &[
            "Host: app",
            "x-MiXeD: v",
            "User-AGENT: t",
            "X-Real-IP: 127.0.0.1",
            "x-lower-set: on",
            "Connection: close",
        ],
        &[],
    );
    // A proxy-made answer: every name canonical.
    let r = raw(
        p.addr,
        b"GET /r HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        WAIT,
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 302"), "{r}");
    assert_head_lines(
        &r,
        &["Connection: close"],
        &[
            "Server: ",
            "Date: ",
            "Content-Type: text/html",
            "Content-Length: ",
            "Location: http://t:",
        ],
    );
}

/// nginx passes a backend's status line on as it came (`status_line`): its
/// reason phrase, or none, not nginx's own for the code, to HTTP/1.0 clients
/// too (with `HTTP/1.1` in front, as nginx).
#[tokio::test]
async fn a_backend_s_status_line_goes_on_as_it_came() {
    let cases = [
        ("HTTP/1.1 200 Fine", "HTTP/1.1 200 Fine\r\n"),
        ("HTTP/1.1 503", "HTTP/1.1 503\r\n"),
        (
            "HTTP/1.0 404 Nope, not here",
            "HTTP/1.1 404 Nope, not here\r\n",
        ),
        ("HTTP/1.1 299 Odd", "HTTP/1.1 299 Odd\r\n"),
    ];
    for (line, want) in cases {
        let b = Scripted::start(answering(&format!("{line}\r\nContent-Length: 2\r\n\r\nok"))).await;
        let p = proxy_for(&b);
        let r = get_raw(p.addr, "").await;
        assert!(r.starts_with(want), "{line:?}: {r}");
        let http10 = raw(p.addr, b"GET / HTTP/1.0\r\n\r\n", WAIT).await;
        assert!(http10.starts_with(want), "{line:?}: {http10}");
    }
}

/// An `error_page` that sets the status (`error_page 404 /page` keeps 404,
/// `=200` makes it 200) clears the backend's line, as nginx's `err_status`
/// does: nginx's phrase for the code. `error_page 404 = /page` takes the
/// status of the page's answer, whose backend line then goes on.
#[tokio::test]
async fn an_error_page_status_replaces_the_backend_s_status_line() {
    let b = Scripted::start(answering(
        "HTTP/1.1 404 Nope here\r\nContent-Length: 2\r\n\r\nno",
    ))
    .await;
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n  upstream app {{ server {}; }}\n  server {{\n    \
         listen 127.0.0.1:0;\n    proxy_read_timeout 5s;\n    proxy_intercept_errors on;\n    \
         location /keep/ {{ proxy_pass http://app; error_page 404 /other/; }}\n    \
         location /page/ {{ proxy_pass http://app; error_page 404 = /other/; }}\n    \
         location /code/ {{ proxy_pass http://app; error_page 404 =200 /made; }}\n    \
         location /other/ {{ proxy_pass http://app; proxy_intercept_errors off; }}\n    \
         location = /made {{ return 200 \"made\"; }}\n  }}\n}}\n",
        b.peer()
    ));
    for (path, want) in [
        ("/other/", "HTTP/1.1 404 Nope here\r\n"),
        ("/keep/", "HTTP/1.1 404 Not Found\r\n"),
        ("/page/", "HTTP/1.1 404 Nope here\r\n"),
        ("/code/", "HTTP/1.1 200 OK\r\n"),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let r = raw(p.addr, request.as_bytes(), WAIT).await;
        assert!(r.starts_with(want), "{path}: {r}");
    }
}
