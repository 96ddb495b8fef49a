//! Which host a request names, as nginx decides it: the authority of an
//! absolute-form request line wins over the Host header for the server choice and
//! `$host` (RFC 9112 section 3.2.2), and a Host nginx's `ngx_http_validate_host`
//! refuses gets 400.

mod common;

use std::time::Duration;

use common::*;

/// Two virtual servers on one listener, each answering with its name and `$host`.
const TWO_SERVERS: &str = "events {}\nhttp {\n\
    server { listen 127.0.0.1:0; server_name one.test; return 200 \"one $host\"; }\n\
    server { listen 127.0.0.1:0; server_name two.test; return 200 \"two $host\"; }\n\
    }\n";

/// Sends `head` (without its final CRLF, `Connection: close` is added) and
/// returns the status code and the body.
async fn ask(addr: std::net::SocketAddr, head: &[u8]) -> (u16, String) {
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let reply = raw(addr, &bytes, Duration::from_secs(5)).await;
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

#[tokio::test]
async fn absolute_form_request_line_chooses_the_server_and_host() {
    let p = start_proxy(TWO_SERVERS);
    let cases: &[(&[u8], u16, &str)] = &[
        (
            b"GET http://two.test/ HTTP/1.1\r\nHost: one.test",
            200,
            "two two.test",
        ),
        (
            b"GET http://TWO.test.:8080/x?y HTTP/1.1\r\nHost: one.test",
            200,
            "two two.test",
        ),
        (
            b"GET http://one.test/ HTTP/1.1\r\nHost: two.test",
            200,
            "one one.test",
        ),
        // HTTP/1.0 without a Host header.
        (b"GET http://two.test/ HTTP/1.0", 200, "two two.test"),
        // The Host header is still validated (nginx: 400).
        (
            b"GET http://two.test/ HTTP/1.1\r\nHost: local host",
            400,
            "",
        ),
        // An invalid request-line authority (nginx: 400).
        (b"GET http://two..test/ HTTP/1.1\r\nHost: one.test", 400, ""),
        (
            b"GET http://two.test:98777/ HTTP/1.1\r\nHost: one.test",
            400,
            "",
        ),
        // Origin form: the Host header decides.
        (b"GET / HTTP/1.1\r\nHost: two.test", 200, "two two.test"),
    ];
    for (head, status, body) in cases {
        let (got_status, got_body) = ask(p.addr, head).await;
        let shown = String::from_utf8_lossy(head);
        assert_eq!(got_status, *status, "{shown}: {got_body}");
        if *status == 200 {
            assert_eq!(got_body, *body, "{shown}");
        }
    }
}

#[tokio::test]
async fn upstream_host_is_proxy_host_unless_set_to_host() {
    let b = Backend::start("a");
    let text = format!(
        "events {{}}\nhttp {{\n  upstream app {{ server {}; }}\n  server {{\n    \
         listen 127.0.0.1:0;\n    server_name one.test two.test;\n    \
         location /set {{ proxy_set_header Host $host; proxy_pass http://app; }}\n    \
         location / {{ proxy_pass http://app; }}\n  }}\n}}\n",
        b.peer()
    );
    let p = start_proxy(&text);
    let (status, body) = ask(
        p.addr,
        b"GET http://Two.Test/set HTTP/1.1\r\nHost: one.test",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nhost: two.test\n"), "{body}");
    let (status, body) = ask(
        p.addr,
        b"GET http://two.test/plain HTTP/1.1\r\nHost: one.test",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nhost: app\n"), "{body}");
    assert!(body.contains("GET /plain"), "origin form upstream: {body}");
}

#[tokio::test]
async fn host_header_validation_matches_nginx() {
    let p = start_proxy(TWO_SERVERS);
    // (Host, status, body): 400s are what nginx answers (see route.rs for the rule
    // each one breaks); the first server is the default one.
    let cases: &[(&[u8], u16, &str)] = &[
        (b"one.test:98777", 400, ""),
        (b"a:1:2", 400, ""),
        (b"[::1", 400, ""),
        (b"[::1]x", 400, ""),
        (b"one.test.:1.2", 400, ""),
        (b"local host", 400, ""),
        (b"one..test", 400, ""),
        (b"one/test", 400, ""),
        (b"one\t.test", 400, ""),
        (b"on\x01e.test", 400, ""),
        (b"one.\x7ftest", 400, ""),
        (b"one.test", 200, "one one.test"),
        (b"ONE.test.", 200, "one one.test"),
        (b"one.test:8080", 200, "one one.test"),
        (b"[::1]:80", 200, "one [::1]"),
        (b"127.0.0.1", 200, "one 127.0.0.1"),
        (b"Two.Test.:65535", 200, "two two.test"),
        (b"two.test:", 200, "two two.test"),
    ];
    for (host, status, body) in cases {
        let mut head = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        head.extend_from_slice(host);
        let (got_status, got_body) = ask(p.addr, &head).await;
        let shown = String::from_utf8_lossy(host);
        assert_eq!(got_status, *status, "Host: {shown:?}: {got_body}");
        if *status == 200 {
            assert_eq!(got_body, *body, "Host: {shown:?}");
        }
    }
}
