//! Per-request variables against the live proxy: `$request_id` (drawn on
//! first use, the same in a proxied header and in the access log), `$pipe`
//! (a pipelined request), and the rewrite module's values (user variables,
//! captures, map results) in `log_format`, as the request ended.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::{read_lines, start_proxy, Backend, Client};

/// A fresh scratch directory for one test's log files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sticky-reqvars-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn is_request_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[tokio::test]
async fn request_id_is_the_same_in_the_proxied_header_and_the_log_line() {
    let dir = scratch("rid");
    let b = Backend::start("b");
    let log = dir.join("rid.log");
    let text = format!(
        "events {{}} http {{ log_format rid '$request_id $uri'; \
         server {{ listen 127.0.0.1:0; access_log {log} rid; \
         location / {{ proxy_set_header X-Request-ID $request_id; proxy_pass http://{peer}; }} \
         location /twice {{ return 200 \"$request_id $request_id\"; }} }} }}",
        log = log.display(),
        peer = b.peer(),
    );
    let proxy = start_proxy(&text);
    let mut client = Client::connect(proxy.addr).await;
    let one = client.get("/one", &[]).await;
    let two = client.get("/two", &[]).await;
    let twice = client.get("/twice", &[]).await;
    let sent: Vec<String> = [&one, &two]
        .iter()
        .map(|r| r.seen("x-request-id").concat())
        .collect();
    assert!(sent.iter().all(|s| is_request_id(s)), "{sent:?}");
    assert_ne!(sent[0], sent[1], "each request has its own id");
    let words: Vec<&str> = twice.text().leak().split(' ').collect();
    assert_eq!(words.len(), 2);
    assert!(is_request_id(words[0]));
    assert_eq!(words[0], words[1], "one id per request, however often read");
    let lines = read_lines(&log, 3);
    assert_eq!(
        lines,
        [
            format!("{} /one", sent[0]),
            format!("{} /two", sent[1]),
            format!("{} /twice", words[0]),
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn pipe_is_p_for_a_request_already_buffered_behind_the_one_before() {
    let dir = scratch("pipe");
    let log = dir.join("pipe.log");
    let text = format!(
        "events {{}} http {{ log_format p '$uri $pipe'; \
         server {{ listen 127.0.0.1:0; access_log {log} p; \
         location / {{ return 200 \"$pipe\"; }} }} }}",
        log = log.display(),
    );
    let proxy = start_proxy(&text);
    let mut s = TcpStream::connect(proxy.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Two requests in one write: the second is pipelined.
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while count(&got, b"HTTP/1.1 200") < 2 || !got.ends_with(b"p") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    // The third waits for the answers first: not pipelined.
    s.write_all(b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8_lossy(&got).into_owned() + &String::from_utf8_lossy(&rest);
    let bodies: Vec<&str> = text
        .split("HTTP/1.1 200")
        .skip(1)
        .map(|r| r.rsplit("\r\n").next().unwrap_or_default())
        .collect();
    assert_eq!(bodies, [".", "p", "."], "{text}");
    assert_eq!(read_lines(&log, 3), ["/a .", "/b p", "/c ."]);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[tokio::test]
async fn log_format_reads_user_variables_captures_and_maps_as_the_request_ended() {
    let dir = scratch("user");
    let b = Backend::start("b");
    let log = dir.join("user.log");
    let text = format!(
        "events {{}} http {{ log_format u '$uri|$x|$1|$m|$args'; \
         map $x $m {{ default none; abc yes; }} \
         server {{ listen 127.0.0.1:0; access_log {log} u; \
         location ~ ^/c/(\\w+)$ {{ set $x $1; proxy_pass http://{peer}; }} \
         location /r {{ rewrite ^/r/(.*)$ /final?k=$1 last; }} \
         location /final {{ set $x late; return 204; }} \
         location / {{ proxy_pass http://{peer}; }} }} }}",
        log = log.display(),
        peer = b.peer(),
    );
    let proxy = start_proxy(&text);
    let mut client = Client::connect(proxy.addr).await;
    assert_eq!(client.get("/c/abc", &[]).await.status, 200);
    assert_eq!(client.get("/c/zzz", &[]).await.status, 200);
    assert_eq!(client.get("/r/42", &[]).await.status, 204);
    assert_eq!(client.get("/plain", &[]).await.status, 200);
    assert_eq!(
        read_lines(&log, 4),
        [
            "/c/abc|abc|abc|yes|-",
            "/c/zzz|zzz|zzz|none|-",
            "/final|late|42|none|k=42",
            "/plain|-|-|none|-",
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `access_log ... if=CONDITION`: no line when the condition is `""` or `"0"`
/// (nginx's usual "do not log 2xx/3xx" `map $status`, and a query argument).
#[tokio::test]
async fn access_log_if_skips_requests_whose_condition_is_empty_or_zero() {
    let dir = scratch("if");
    let (errors, asked) = (dir.join("errors.log"), dir.join("asked.log"));
    let text = format!(
        "events {{}} http {{ log_format s '$status $uri'; \
         map $status $loggable {{ ~^[23] 0; default 1; }} \
         server {{ listen 127.0.0.1:0; \
         access_log {errors} s if=$loggable; access_log {asked} s if=$arg_log; \
         location / {{ return 200 \"ok\"; }} location /missing {{ return 404; }} }} }}",
        errors = errors.display(),
        asked = asked.display(),
    );
    let proxy = start_proxy(&text);
    for path in [
        "/a",
        "/missing/b",
        "/c?log=1",
        "/d?log=0",
        "/missing/e?log=yes",
    ] {
        common::get(proxy.addr, path, &[]).await;
    }
    assert_eq!(read_lines(&errors, 2), ["404 /missing/b", "404 /missing/e"]);
    assert_eq!(read_lines(&asked, 2), ["200 /c", "404 /missing/e"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `$upstream_connect_time`: the time a new connection took (seconds with
/// milliseconds), `0.000` for a pooled one, `-` when none opened.
#[tokio::test]
async fn upstream_connect_time_is_measured_and_zero_for_a_pooled_connection() {
    let dir = scratch("uct");
    let b = Backend::start("b");
    let dead = common::dead_addr();
    let log = dir.join("uct.log");
    let text = format!(
        "events {{}} http {{ log_format t '$uri $upstream_connect_time'; \
         upstream app {{ server {peer}; keepalive 4; }} \
         server {{ listen 127.0.0.1:0; access_log {log} t; \
         location /dead {{ proxy_pass http://{dead}; }} \
         location / {{ proxy_pass http://app; proxy_http_version 1.1; \
                       proxy_set_header Connection \"\"; }} }} }}",
        log = log.display(),
        peer = b.peer(),
    );
    let proxy = start_proxy(&text);
    let mut client = Client::connect(proxy.addr).await;
    assert_eq!(client.get("/one", &[]).await.status, 200);
    assert_eq!(client.get("/two", &[]).await.status, 200);
    assert_eq!(client.get("/dead", &[]).await.status, 502);
    let lines = read_lines(&log, 3);
    let times: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once(' ').map_or("", |(_, t)| t))
        .collect();
    let seconds = |t: &str| {
        t.split_once('.').is_some_and(|(s, ms)| {
            s.parse::<u64>().is_ok() && ms.len() == 3 && ms.parse::<u32>().is_ok()
        })
    };
    assert!(seconds(times[0]), "a new connection: {lines:?}");
    assert_eq!(times[1..], ["0.000", "-"], "{lines:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
