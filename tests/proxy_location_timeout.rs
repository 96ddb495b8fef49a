//! Timeouts nginx allows in a location: `client_body_timeout` applies to the
//! location's requests (and its nested locations'), the server's value elsewhere.

mod common;

use std::time::Duration;

use common::*;

/// `client_body_timeout` in a location applies to that location's requests (the
/// server's value to the others): a body that stalls gets nginx's 408 after the
/// location's timeout.
#[tokio::test]
async fn client_body_timeout_in_a_location() {
    let backend = Backend::start("b1");
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n client_body_timeout 30s;\n server {{\n  listen 127.0.0.1:0;\n  \
         location /slow {{ client_body_timeout 300ms; proxy_pass http://{0}; \
         location /slow/nested {{ proxy_pass http://{0}; }} }}\n  \
         location / {{ proxy_pass http://{0}; }}\n }}\n}}\n",
        backend.peer()
    ));
    for path in ["/slow", "/slow/nested/x"] {
        let started = std::time::Instant::now();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\nab"
        );
        let reply = raw(p.addr, head.as_bytes(), Duration::from_secs(10)).await;
        let took = started.elapsed();
        assert!(reply.starts_with("HTTP/1.1 408"), "{path}: {reply:?}");
        assert!(took < Duration::from_secs(5), "{path}: took {took:?}");
    }
    // Elsewhere the server's 30s applies: still waiting after a second.
    let stream = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    write
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(1), read.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "answered before the server's timeout: {early:?}"
    );
}
