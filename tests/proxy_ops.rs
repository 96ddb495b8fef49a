//! Running the proxy as an operator does: reloads under load (in-process), the
//! access log as written, log reopening, and `proxy -s SIGNAL` against a proxy
//! started from the binary (reload with a broken file, reopen after a rename,
//! graceful quit during a slow response). Configurations listen on 127.0.0.1:0
//! only; the binary's port is read from its error log.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{read_lines, Backend, Client};
use sticky_proxy::config::{load_str, Config};
use sticky_proxy::process;
use sticky_proxy::server::Proxy;

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sticky-ops-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::write(&path, text).expect("write file");
        path
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn proxy(args: &[&str], conf: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proxy"))
        .args(args)
        .arg("-c")
        .arg(conf)
        .output()
        .expect("run proxy")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running `proxy` process, killed if the test fails before it stops.
struct Running(Child);

impl Running {
    fn start(conf: &Path) -> Running {
        let child = Command::new(env!("CARGO_BIN_EXE_proxy"))
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start proxy");
        Running(child)
    }

    /// Waits up to `limit` for the process to exit.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

const SERVER: &str = "events {} http { server { listen 127.0.0.1:0; return 200 ok; } }";

#[test]
fn signal_without_pid_directive_is_a_clear_error() {
    let dir = Scratch::new("no-pid");
    let conf = dir.write("proxy.conf", SERVER);
    let out = proxy(&["-s", "reload"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "proxy: [error] no \"pid\" directive in {}: the running proxy cannot be found \
             (add e.g. \"pid /run/proxy.pid;\" and restart it)\n",
            conf.display()
        )
    );
}

#[test]
fn signal_when_not_running_names_the_pid_file_like_nginx() {
    let dir = Scratch::new("not-running");
    let conf = dir.write("proxy.conf", &format!("pid proxy.pid; {SERVER}"));
    let out = proxy(&["-s", "quit"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "proxy: [error] open() \"{}\" failed (2: No such file or directory)\n",
            dir.path("proxy.pid").display()
        )
    );
}

#[test]
fn signal_to_a_process_that_is_gone_names_the_pid_like_nginx() {
    let dir = Scratch::new("gone");
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    dir.write("proxy.pid", &format!("{pid}\n"));
    let conf = dir.write("proxy.conf", &format!("pid proxy.pid; {SERVER}"));
    let out = proxy(&["-s", "reopen"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("proxy: [error] kill({pid}, 10) failed (3: No such process)\n")
    );
}

#[test]
fn unknown_signal_name_is_rejected() {
    let dir = Scratch::new("bad-signal");
    let conf = dir.write("proxy.conf", SERVER);
    let out = proxy(&["-s", "restart"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("invalid option: \"-s restart\" (expected stop, quit, reopen or reload)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn signal_with_a_broken_config_reports_the_config_error() {
    let dir = Scratch::new("broken");
    let conf = dir.write(
        "proxy.conf",
        "pid proxy.pid; http { server { listen 127.0.0.1:0 }",
    );
    let out = proxy(&["-s", "reload"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("proxy: [emerg] "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stop_signal_ends_the_running_proxy_and_removes_the_pid_file() {
    let dir = Scratch::new("stop");
    let conf = dir.write("proxy.conf", &format!("pid proxy.pid; {SERVER}"));
    let mut running = Running::start(&conf);
    let pid_file = dir.path("proxy.pid");
    assert!(wait_for(&pid_file, Duration::from_secs(10)), "no pid file");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid, format!("{}\n", running.0.id()));
    let out = proxy(&["-s", "stop"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let status = running.wait(Duration::from_secs(10)).expect("proxy exits");
    assert!(status.success(), "{status:?}");
    assert!(!pid_file.exists());
}

// ---------------------------------------------------------------------------
// In-process: reload, access log, reopen
// ---------------------------------------------------------------------------

fn config_in(dir: &Scratch, text: &str) -> Config {
    match load_str(text, &dir.path("proxy.conf")) {
        Ok((config, _)) => config,
        Err(e) => panic!("config rejected: {e}\n{text}"),
    }
}

fn app_conf(peers: &[&Backend], extra_http: &str) -> String {
    let servers: String = peers
        .iter()
        .map(|b| format!("server {};", b.peer()))
        .collect();
    format!(
        "events {{}} http {{ upstream app {{ {servers} keepalive 8; }} \
         server {{ listen 127.0.0.1:0; location / {{ proxy_pass http://app; }} }} \
         {extra_http} }}"
    )
}

#[tokio::test]
async fn reloading_twenty_times_under_load_loses_no_request() {
    let dir = Scratch::new("reload-load");
    let a = Backend::start("a");
    let b = Backend::start("b");
    // Two workers: each switches on its own thread.
    let one = format!("worker_processes 2; {}", app_conf(&[&a], ""));
    let two = format!("worker_processes 2; {}", app_conf(&[&a, &b], ""));
    let mut running = Proxy::start(config_in(&dir, &one)).expect("proxy starts");
    let addr = running.addr();
    let configs = [config_in(&dir, &two), config_in(&dir, &one)];
    let reloader = std::thread::spawn(move || {
        for i in 0..20 {
            std::thread::sleep(Duration::from_millis(15));
            let next = configs[i % 2].clone();
            running.reload(next).expect("reload");
            assert_eq!(running.addr(), addr, "the listener is kept");
        }
        running
    });
    let mut keepalive = Client::connect(addr).await;
    let (mut ok, mut seen_b) = (0, 0);
    let mut n = 0;
    while n < 3000 || !reloader.is_finished() {
        n += 1;
        // Every tenth request on a new connection, the rest kept alive.
        let reply = if n % 10 == 0 {
            Client::connect(addr)
                .await
                .send("GET", "/x", &[], common::empty())
                .await
        } else {
            keepalive.send("GET", "/x", &[], common::empty()).await
        };
        let reply = reply.unwrap_or_else(|e| panic!("request {n} failed: {e}"));
        assert_eq!(reply.status, 200, "request {n}: {}", reply.text());
        if n % 10 != 0 && reply.header("connection").as_deref() == Some("close") {
            // keepalive_requests reached: the proxy said so; open another.
            keepalive = Client::connect(addr).await;
        }
        match reply.backend().as_deref() {
            Some("a") => {}
            Some("b") => seen_b += 1,
            other => panic!("request {n} answered by {other:?}"),
        }
        ok += 1;
    }
    let running = reloader.join().expect("reloader");
    assert_eq!(ok, n);
    assert!(n >= 3000);
    assert!(seen_b > 0, "the peer added by a reload got traffic");
    running.shutdown();
}

#[tokio::test]
async fn a_reload_that_cannot_bind_changes_nothing() {
    let dir = Scratch::new("reload-bind");
    let a = Backend::start("a");
    let b = Backend::start("b");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr");
    let mut running = Proxy::start(config_in(&dir, &app_conf(&[&a], ""))).expect("starts");
    let broken = app_conf(
        &[&b],
        &format!("server {{ listen {taken_addr}; return 200; }}"),
    );
    let err = running
        .reload(config_in(&dir, &broken))
        .expect_err("the address is taken");
    assert!(
        err.starts_with(&format!("bind() to {taken_addr} failed")),
        "{err}"
    );
    assert_eq!(running.addrs().len(), 1);
    for _ in 0..4 {
        let reply = common::get(running.addr(), "/", &[]).await;
        assert_eq!(reply.backend().as_deref(), Some("a"));
    }
    drop(taken);
}

#[tokio::test]
async fn a_reload_opens_new_listeners_and_closes_removed_ones() {
    let dir = Scratch::new("reload-listen");
    let a = Backend::start("a");
    let mut running = Proxy::start(config_in(&dir, &app_conf(&[&a], ""))).expect("starts");
    let first = running.addr();
    let with_second = app_conf(&[&a], "server { listen 127.0.0.2:0; return 200 second; }");
    running
        .reload(config_in(&dir, &with_second))
        .expect("reload");
    let second = running
        .bound("127.0.0.2:0".parse().expect("addr"))
        .expect("second listener bound");
    assert_eq!(running.addr(), first);
    let reply = common::get(second, "/", &[]).await;
    assert_eq!(reply.text(), "second");
    running
        .reload(config_in(&dir, &app_conf(&[&a], "")))
        .expect("reload");
    assert!(running
        .bound("127.0.0.2:0".parse().expect("addr"))
        .is_none());
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(second).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the removed listener still accepts"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(common::get(first, "/", &[]).await.status, 200);
}

#[tokio::test]
async fn access_log_lines_are_exact_and_reopen_starts_a_new_file() {
    let dir = Scratch::new("access-log");
    let a = Backend::start("a");
    let log = dir.path("access.log");
    let custom = dir.path("custom.log");
    let text = format!(
        "events {{}} http {{ \
         log_format custom '$request_method $request_uri $status $body_bytes_sent \
         $upstream_addr $upstream_status $sticky_status $sticky_sid'; \
         upstream app {{ server {peer}; session_sticky cookie=route mode=insert; }} \
         server {{ listen 127.0.0.1:0; access_log {log}; access_log {custom} custom; \
         location / {{ proxy_pass http://app; }} \
         location /fixed {{ return 204; }} \
         location /quiet {{ access_log off; return 200; }} }} }}",
        peer = a.peer(),
        log = log.display(),
        custom = custom.display(),
    );
    let running = Proxy::start(config_in(&dir, &text)).expect("starts");
    let addr = running.addr();
    let mut client = Client::connect(addr).await;
    let first = client
        .get("/app?x=1", &[("user-agent", "ops-test/1")])
        .await;
    let cookie = format!(
        "route={}",
        first.cookie_value("route").expect("sticky cookie")
    );
    let second = client
        .get(
            "/app",
            &[("cookie", &cookie), ("referer", "http://r.test/")],
        )
        .await;
    let fixed = client.get("/fixed", &[]).await;
    assert_eq!(fixed.status, 204);
    assert_eq!(client.get("/quiet", &[]).await.status, 200);

    let sid = a.sid();
    let peer = a.peer();
    let custom_lines = read_lines(&custom, 3);
    assert_eq!(
        custom_lines,
        [
            format!("GET /app?x=1 200 {} {peer} 200 new {sid}", first.body.len()),
            format!("GET /app 200 {} {peer} 200 hit {sid}", second.body.len()),
            "GET /fixed 204 0 - - - -".to_string(),
        ]
    );
    let time =
        regex::Regex::new(r" \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] ").expect("regex");
    let combined: Vec<String> = read_lines(&log, 3)
        .iter()
        .map(|l| {
            assert!(time.is_match(l), "{l}");
            time.replace(l, " [T] ").into_owned()
        })
        .collect();
    assert_eq!(
        combined,
        [
            format!(
                "127.0.0.1 - - [T] \"GET /app?x=1 HTTP/1.1\" 200 {} \"-\" \"ops-test/1\"",
                first.body.len()
            ),
            format!(
                "127.0.0.1 - - [T] \"GET /app HTTP/1.1\" 200 {} \"http://r.test/\" \"-\"",
                second.body.len()
            ),
            "127.0.0.1 - - [T] \"GET /fixed HTTP/1.1\" 204 0 \"-\" \"-\"".to_string(),
        ]
    );

    // logrotate: rename, reopen, and the next line goes to a fresh file.
    std::fs::rename(&custom, dir.path("custom.log.1")).expect("rename");
    assert_eq!(running.reopen_logs(), Vec::<String>::new());
    client.get("/fixed", &[]).await;
    assert_eq!(read_lines(&custom, 1), ["GET /fixed 204 0 - - - -"]);
    assert_eq!(read_lines(&dir.path("custom.log.1"), 3).len(), 3);
    running.shutdown();
}

/// Issue 14, item 14: `$request_length` is the request's bytes on the wire
/// (head and body; it was always 0), and `$hostname` is the host name in
/// `return` and `proxy_set_header` as in logs (it was empty there).
#[tokio::test]
async fn request_length_and_hostname_are_exact() {
    let dir = Scratch::new("request-length");
    let a = Backend::start("a");
    let log = dir.path("len.log");
    let text = format!(
        "events {{}} http {{ log_format l '$request_length $hostname'; \
         upstream app {{ server {peer}; }} \
         server {{ listen 127.0.0.1:0; access_log {log} l; \
         location / {{ proxy_pass http://app; }} \
         location /r {{ return 200 \"$request_length $hostname\"; }} }} }}",
        peer = a.peer(),
        log = log.display(),
    );
    let running = Proxy::start(config_in(&dir, &text)).expect("starts");
    let addr = running.addr();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let get = "GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let post = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
    let chunked =
        "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let chunks = "5\r\nhello\r\n0\r\n\r\n";
    let mut replies = Vec::new();
    for bytes in [
        get.to_string(),
        format!("{post}hello"),
        format!("{chunked}{chunks}"),
    ] {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(bytes.as_bytes()).expect("write");
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        replies.push(reply);
    }
    assert!(
        replies[0].ends_with(&format!("\r\n\r\n{} {host}", get.len())),
        "{}",
        replies[0]
    );
    assert_eq!(
        read_lines(&log, 3),
        [
            format!("{} {host}", get.len()),
            format!("{} {host}", post.len() + 5),
            format!("{} {host}", chunked.len() + chunks.len()),
        ]
    );
    running.shutdown();
}

/// Issue 14, item 9: a client that closes its connection while its request
/// waits for the backend is noticed, as nginx does: the backend connection is
/// closed (not left waiting, never reused) and the access log says 499.
#[tokio::test]
async fn a_client_gone_while_the_backend_thinks_is_logged_499_and_the_backend_released() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = Scratch::new("client-abort");
    // A backend that reads the request and never answers; it notes when the
    // proxy closes the connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let backend = listener.local_addr().expect("addr");
    let released = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&released);
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    seen.store(true, Ordering::SeqCst);
                    break;
                }
            }
        }
    });
    let log = dir.path("abort.log");
    let text = format!(
        "events {{}} http {{ log_format s '$status $upstream_status'; \
         upstream app {{ server {backend}; }} \
         server {{ listen 127.0.0.1:0; access_log {log} s; proxy_read_timeout 30s; \
         location / {{ proxy_pass http://app; }} }} }}",
        log = log.display(),
    );
    let running = Proxy::start(config_in(&dir, &text)).expect("starts");
    let mut client = TcpStream::connect(running.addr()).expect("connect");
    client
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !released.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        released.load(Ordering::SeqCst),
        "the backend connection was closed"
    );
    assert_eq!(read_lines(&log, 1), ["499 499"]);
    running.shutdown();
}

/// A backend on 127.0.0.1:0 that answers every request with a bodiless 503.
fn always_503() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let reply =
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
                        if stream.write_all(reply).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Issue 13, bug 2: a pinned client that `proxy_next_upstream http_503` moves
/// to another peer is a fallback (logged, counted and re-pinned as one), as
/// it is when the connection fails; it was logged and counted as a hit.
#[tokio::test]
async fn a_status_retry_of_a_pinned_client_is_a_fallback() {
    let dir = Scratch::new("status-retry");
    let good = Backend::start("good");
    let bad = always_503().to_string();
    let log = dir.path("sticky.log");
    let text = format!(
        "events {{}} http {{ \
         log_format s '$status $upstream_addr $upstream_status $sticky_status $sticky_sid $sent_http_content_length'; \
         upstream app {{ session_sticky cookie=route mode=insert; \
         server {bad} max_fails=0; server {good} max_fails=0; }} \
         server {{ listen 127.0.0.1:0; access_log {log} s; \
         location / {{ proxy_pass http://app; proxy_next_upstream error http_503; }} }} }}",
        good = good.peer(),
        log = log.display(),
    );
    let running = Proxy::start(config_in(&dir, &text)).expect("starts");
    let mut client = Client::connect(running.addr()).await;
    let pinned_to_bad = format!("route={}", sticky_proxy::sticky::sid::md5_sid(&bad));
    let reply = client.get("/", &[("cookie", &pinned_to_bad)]).await;
    assert_eq!(reply.status, 200);
    // Re-pinned to the peer that answered.
    assert_eq!(
        reply.cookie_value("route").as_deref(),
        Some(good.sid().as_str())
    );
    let sid = good.sid();
    let peer = good.peer();
    assert_eq!(
        read_lines(&log, 1),
        [format!(
            "200 {bad}, {peer} 503, 200 fallback {sid} {}",
            reply.body.len()
        )]
    );
    running.shutdown();
}

// ---------------------------------------------------------------------------
// The binary: -s reload (broken file), -s reopen, -s quit during a slow response
// ---------------------------------------------------------------------------

/// A backend that answers every request after `delay`, one connection at a time.
fn slow_backend(delay: Duration) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow",
                );
            });
        }
    });
    addr
}

/// One request with `Connection: close`: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Waits until the file at `path` contains `needle`; returns the contents.
fn wait_for_text(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needle:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn binary_conf(slow: SocketAddr, extra_location: &str) -> String {
    format!(
        "pid proxy.pid;\nerror_log error.log info;\nevents {{}}\nhttp {{\n\
         access_log access.log;\n\
         server {{\n listen 127.0.0.1:0;\n\
         location /slow {{ proxy_pass http://{slow}; proxy_read_timeout 10s; }}\n\
         location /fast {{ return 200 fast; }}\n{extra_location}\n }}\n}}\n"
    )
}

#[test]
fn signals_reload_reopen_and_quit_the_running_binary() {
    let dir = Scratch::new("binary");
    let slow = slow_backend(Duration::from_secs(2));
    let conf = dir.write("proxy.conf", &binary_conf(slow, ""));
    let mut running = Running::start(&conf);
    let error_log = dir.path("error.log");
    let text = wait_for_text(&error_log, "listening on ");
    let port_text = text
        .split("listening on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("port in the error log");
    let addr: SocketAddr = format!("127.0.0.1:{port_text}").parse().expect("addr");
    assert!(wait_for(&dir.path("proxy.pid"), Duration::from_secs(10)));
    assert_eq!(http_get(addr, "/fast").expect("fast"), (200, "fast".into()));

    // A broken file: `-s reload` refuses as nginx does (it reads the file to find
    // the pid file); SIGHUP sent directly is logged and changes nothing.
    dir.write(
        "proxy.conf",
        "pid proxy.pid;\nhttp { server { listen 127.0.0.1:0 }\n",
    );
    let out = proxy(&["-s", "reload"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("proxy: [emerg] unexpected \"}\""),
        "{}",
        stderr(&out)
    );
    let pid = process::read_pid(&dir.path("proxy.pid")).expect("pid");
    process::send(process::Command::Reload, pid).expect("SIGHUP");
    let text = wait_for_text(
        &error_log,
        "reload failed, keeping the running configuration: ",
    );
    assert!(text.contains("[error]"), "{text}");
    assert_eq!(http_get(addr, "/fast").expect("fast"), (200, "fast".into()));

    // A good file: the new location answers on the same socket.
    dir.write(
        "proxy.conf",
        &binary_conf(slow, "location /new { return 200 new; }"),
    );
    let out = proxy(&["-s", "reload"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    wait_for_text(&error_log, "configuration reloaded");
    assert_eq!(http_get(addr, "/new").expect("new"), (200, "new".into()));

    // logrotate: rename, -s reopen, the next line goes to a new access.log.
    let access = dir.path("access.log");
    wait_for_text(&access, "\"GET /new HTTP/1.1\" 200 3 ");
    std::fs::rename(&access, dir.path("access.log.1")).expect("rename");
    let out = proxy(&["-s", "reopen"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    wait_for_text(&error_log, "log files reopened");
    assert_eq!(http_get(addr, "/fast").expect("fast"), (200, "fast".into()));
    let fresh = wait_for_text(&access, "\"GET /fast HTTP/1.1\" 200 4 ");
    assert_eq!(fresh.lines().count(), 1, "{fresh}");

    // -s quit during a 2 s response: it completes, then the process exits 0.
    let client = std::thread::spawn(move || http_get(addr, "/slow"));
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let out = proxy(&["-s", "quit"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Not accepting any more while the slow request runs.
    let deadline = Instant::now() + Duration::from_secs(1);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after -s quit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let answer = client.join().expect("client").expect("slow response");
    assert_eq!(answer, (200, "slow".into()));
    let status = running.wait(Duration::from_secs(10)).expect("proxy exits");
    assert!(status.success(), "{status:?}");
    assert!(asked.elapsed() >= Duration::from_millis(1500));
    assert!(!dir.path("proxy.pid").exists());
    wait_for_text(&access, "\"GET /slow HTTP/1.1\" 200 4 ");
}

#[tokio::test]
async fn a_websocket_tunnel_keeps_working_across_reloads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = Scratch::new("reload-tunnel");
    let a = Backend::start("a");
    let b = Backend::start("b");
    let mut running = Proxy::start(config_in(&dir, &app_conf(&[&a], ""))).expect("starts");
    let mut client = Client::connect(running.addr()).await;
    let resp = client
        .send_raw(
            "GET",
            "/ws",
            &[("connection", "upgrade"), ("upgrade", "websocket")],
            common::empty(),
        )
        .await
        .expect("101");
    assert_eq!(resp.status(), 101);
    let upgraded = hyper::upgrade::on(resp).await.expect("upgraded");
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    for round in 0..4 {
        // The new configuration no longer has the tunnel's backend in it.
        let next = if round % 2 == 0 {
            app_conf(&[&b], "")
        } else {
            app_conf(&[&a], "")
        };
        running.reload(config_in(&dir, &next)).expect("reload");
        io.write_all(b"still here").await.expect("write");
        let mut buf = [0u8; 10];
        io.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"STILL HERE", "round {round}");
    }
    assert_eq!(
        common::get(running.addr(), "/", &[])
            .await
            .backend()
            .as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn an_unchanged_upstream_keeps_its_idle_connections_across_a_reload() {
    let dir = Scratch::new("reload-pool");
    let a = Backend::start("a");
    let mut running = Proxy::start(config_in(&dir, &app_conf(&[&a], ""))).expect("starts");
    let mut client = Client::connect(running.addr()).await;
    for _ in 0..5 {
        assert_eq!(client.get("/", &[]).await.status, 200);
    }
    let before = a.conns.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(before, 1, "one pooled backend connection");
    // Another server block changes; the upstream does not.
    let changed = app_conf(&[&a], "server { listen 127.0.0.2:0; return 200; }");
    running.reload(config_in(&dir, &changed)).expect("reload");
    for _ in 0..5 {
        assert_eq!(client.get("/", &[]).await.status, 200);
    }
    assert_eq!(
        a.conns.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "the pooled connection was reused after the reload"
    );
}

#[tokio::test]
async fn a_changed_upstream_keeps_the_idle_connections_of_its_surviving_peers() {
    let dir = Scratch::new("reload-adopt");
    let a = Backend::start("a");
    let b = Backend::start("b");
    let mut running = Proxy::start(config_in(&dir, &app_conf(&[&a], ""))).expect("starts");
    let mut client = Client::connect(running.addr()).await;
    for _ in 0..3 {
        assert_eq!(client.get("/", &[]).await.backend().as_deref(), Some("a"));
    }
    assert_eq!(a.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Peer b is added: the upstream changed, peer a survives.
    running
        .reload(config_in(&dir, &app_conf(&[&a, &b], "")))
        .expect("reload");
    let mut seen_a = 0;
    for _ in 0..6 {
        if client.get("/", &[]).await.backend().as_deref() == Some("a") {
            seen_a += 1;
        }
    }
    assert!(seen_a > 0);
    assert_eq!(
        a.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "peer a's pooled connection moved to the new upstream"
    );
}

#[test]
fn stop_during_a_graceful_stop_cuts_it_short() {
    let dir = Scratch::new("quit-then-stop");
    let slow = slow_backend(Duration::from_secs(5));
    let conf = dir.write("proxy.conf", &binary_conf(slow, ""));
    let mut running = Running::start(&conf);
    let text = wait_for_text(&dir.path("error.log"), "listening on ");
    let port_text = text
        .split("listening on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("port in the error log");
    let addr: SocketAddr = format!("127.0.0.1:{port_text}").parse().expect("addr");
    assert!(wait_for(&dir.path("proxy.pid"), Duration::from_secs(10)));
    let client = std::thread::spawn(move || http_get(addr, "/slow"));
    std::thread::sleep(Duration::from_millis(300));
    let out = proxy(&["-s", "quit"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    wait_for_text(&dir.path("error.log"), "gracefully shutting down");
    let asked = Instant::now();
    let out = proxy(&["-s", "stop"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let status = running.wait(Duration::from_secs(3)).expect("proxy exits");
    assert!(status.success(), "{status:?}");
    assert!(asked.elapsed() < Duration::from_secs(3));
    // The slow request was cut off, not answered.
    let answer = client.join().expect("client");
    assert!(answer.map_or(true, |(status, _)| status != 200));
}

#[tokio::test]
async fn bytes_sent_counts_exactly_what_the_client_got() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = Scratch::new("bytes-sent");
    let a = Backend::start("a");
    let log = dir.path("bytes.log");
    let text = format!(
        "events {{}} http {{ log_format sizes '$request_uri $bytes_sent $body_bytes_sent'; \
         upstream app {{ server {peer}; }} \
         server {{ listen 127.0.0.1:0; access_log {log} sizes; \
         location / {{ proxy_pass http://app; }} \
         location /fixed {{ return 200 \"twelve bytes\"; }} }} }}",
        peer = a.peer(),
        log = log.display(),
    );
    let running = Proxy::start(config_in(&dir, &text)).expect("starts");
    let mut got = Vec::new();
    for path in ["/fixed", "/proxied"] {
        let mut stream = tokio::net::TcpStream::connect(running.addr())
            .await
            .expect("connect");
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let head = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
        got.push(format!("{path} {} {}", raw.len(), raw.len() - head));
    }
    assert_eq!(read_lines(&log, 2), got);
}
