//! `ignore_invalid_headers` and `underscores_in_headers` against the live
//! proxy, and against nginx itself when it is installed: which request header
//! lines reach the backend, which are dropped (logged at `info`), and which
//! make the request a 400. The table is what nginx 1.22 does.

mod common;

use std::time::Duration;

use common::nginx::Nginx;
use common::{raw, Backend};

/// How one server treats a header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Passed,
    Dropped,
    Refused,
}
use Seen::{Dropped, Passed, Refused};

/// The three servers: defaults, `underscores_in_headers on`,
/// `ignore_invalid_headers off`.
const SERVERS: [&str; 3] = [
    "",
    "underscores_in_headers on;",
    "ignore_invalid_headers off;",
];

/// (header line, what nginx does under each server). Lines whose name is not
/// an RFC 9110 token are left out with `ignore_invalid_headers off`: nginx
/// passes them, which the echo backend (and the proxy: see
/// docs/directives.md) refuses.
const CASES: &[(&[u8], [Seen; 3])] = &[
    (b"X-Foo: v1", [Passed, Passed, Passed]),
    (b"X_Foo: v1", [Dropped, Passed, Passed]),
    (b"_Foo: v1", [Dropped, Passed, Passed]),
    (b"X.Foo: v1", [Dropped, Dropped, Passed]),
    (b"X+Foo: v1", [Dropped, Dropped, Passed]),
    (b"X~Foo: v1", [Dropped, Dropped, Passed]),
    (b"X!Foo: v1", [Dropped, Dropped, Passed]),
    (b"X@Foo: v1", [Dropped, Dropped, Refused]),
    (b"X/Foo: v1", [Dropped, Dropped, Refused]),
    (b"X(Foo: v1", [Dropped, Dropped, Refused]),
    (b"X\xc3\xa9Foo: v1", [Dropped, Dropped, Refused]),
    (b"X Foo: v1", [Refused, Refused, Refused]),
    (b"X-Foo : v1", [Refused, Refused, Refused]),
    (b"X\x01Foo: v1", [Refused, Refused, Refused]),
    (b": v1", [Refused, Refused, Refused]),
];

/// Where `nginx` differs from the table (nginx passes the line on).
fn nginx_differs(line: &[u8], server: usize) -> bool {
    server == 2 && line.starts_with(b"X") && [b'@', b'/', b'(', 0xc3].contains(&line[1])
}

fn http_body(backend: &Backend, listen: &[String]) -> String {
    SERVERS
        .iter()
        .zip(listen)
        .map(|(extra, listen)| {
            format!(
                "server {{ listen {listen}; {extra} \
                 location / {{ proxy_pass http://{}; }} }}\n",
                backend.peer()
            )
        })
        .collect()
}

/// What the server on `addr` did with `line`.
async fn probe(addr: std::net::SocketAddr, line: &[u8]) -> Seen {
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    req.extend_from_slice(line);
    req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let reply = raw(addr, &req, Duration::from_secs(3)).await;
    match reply.get(9..12) {
        Some("400") => Refused,
        Some("200") if reply.lines().any(|l| l.ends_with(": v1")) => Passed,
        Some("200") => Dropped,
        _ => panic!("unexpected reply to {}: {reply}", line.escape_ascii()),
    }
}

#[tokio::test]
async fn header_names_are_kept_dropped_or_refused_as_nginx_does() {
    let backend = Backend::start("b");
    // Six different ports: a server sharing another's port would take that
    // one's settings (the default server's), whatever its own say.
    let addrs = common::dead_addrs(6);
    let (ours, theirs) = addrs.split_at(3);
    let listen: Vec<String> = ours.iter().map(|a| a.to_string()).collect();
    let text = format!("events {{}} http {{ {} }}", http_body(&backend, &listen));
    let _proxy = common::start_proxy(&text);
    let nginx_listen: Vec<String> = theirs.iter().map(|a| a.to_string()).collect();
    let nginx = Nginx::start_at(theirs[0], &http_body(&backend, &nginx_listen));
    for (line, wants) in CASES {
        for (server, want) in wants.iter().enumerate() {
            let what = format!("{} under {:?}", line.escape_ascii(), SERVERS[server]);
            assert_eq!(probe(ours[server], line).await, *want, "proxy: {what}");
            if nginx.is_some() && !nginx_differs(line, server) {
                assert_eq!(probe(theirs[server], line).await, *want, "nginx: {what}");
            }
        }
    }
}

/// The proxy binary logs a dropped line at `info`, in nginx's words.
#[tokio::test]
async fn a_dropped_header_line_is_logged_at_info() {
    let backend = Backend::start("b");
    let dir = std::env::temp_dir().join(format!("sticky-hdrnames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let error_log = dir.join("error.log");
    let addr = common::dead_addr();
    let conf = dir.join("proxy.conf");
    let text = format!(
        "error_log {} info; pid {}; events {{}} http {{ {} }}",
        error_log.display(),
        dir.join("proxy.pid").display(),
        http_body(&backend, &[addr.to_string()])
    );
    std::fs::write(&conf, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_proxy"))
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the proxy");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = probe(addr, b"X.Foo: v1").await;
    let want =
        "client sent invalid header line: \"X.Foo: v1\" while reading client request headers";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut log = String::new();
    while !log.contains(want) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        log = std::fs::read_to_string(&error_log).unwrap_or_default();
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(seen, Dropped);
    assert!(log.contains(want), "{log}");
}
