//! Request methods as nginx takes them on HTTP/1: uppercase letters, `_` and
//! `-` only; `get`, `Get` or `G3T` is a 400 and the connection closes. Sent on
//! raw sockets to the proxy, and to nginx itself when it is installed.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::nginx::Nginx;
use common::*;

const SERVER: &str = "server { listen LISTEN; location / { return 200 ok; } }";

/// (request line, status nginx answers)
const CASES: &[(&str, u16)] = &[
    ("GET / HTTP/1.1", 200),
    ("PROPFIND / HTTP/1.1", 200),
    ("MY_METHOD / HTTP/1.1", 200),
    ("X-Y / HTTP/1.1", 200),
    ("get / HTTP/1.1", 400),
    ("Get / HTTP/1.1", 400),
    ("post / HTTP/1.0", 400),
    ("G3T / HTTP/1.1", 400),
    ("G.T / HTTP/1.1", 400),
];

/// The status of the answer to `line` with a Host header.
async fn status(addr: SocketAddr, line: &str) -> u16 {
    let request = format!("{line}\r\nHost: a\r\nConnection: close\r\n\r\n");
    let reply = raw(addr, request.as_bytes(), Duration::from_secs(2)).await;
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}: no status in {reply:?}"))
}

#[tokio::test]
async fn only_uppercase_methods_are_taken() {
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{ {} }}\n",
        SERVER.replace("LISTEN", "127.0.0.1:0")
    ));
    for (line, want) in CASES {
        assert_eq!(status(p.addr, line).await, *want, "proxy: {line}");
    }
}

#[tokio::test]
async fn nginx_itself_answers_the_same() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let Some(nginx) = Nginx::start_at(addr, SERVER) else {
        eprintln!("SKIPPED: nginx is not installed; the comparison with nginx did not run");
        return;
    };
    for (line, want) in CASES {
        assert_eq!(status(nginx.addr, line).await, *want, "nginx: {line}");
    }
}
