//! `auth_request` / `auth_request_set` (nginx's ngx_http_auth_request_module)
//! against the live proxy, with a real auth backend on `127.0.0.1:0` that
//! answers what the request asks for (2xx, 401 with `WWW-Authenticate`, 403,
//! 500, a redirect, a connection closed without an answer, an answer too
//! late); `auth_request off` in a nested location; `satisfy any|all` with
//! `allow`/`deny`; the limits checked once; over HTTP/1.1 and HTTP/2; and
//! compared with nginx itself when it is installed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::h2::H2Client;
use common::nginx::{summary, Nginx, Summary};
use common::*;

/// An auth service: reads a request head and answers as its `X-Auth` header
/// says: a status (`401` carries `WWW-Authenticate: Bearer realm="t"`),
/// `close` (closes without answering) or `slow` (answers 200 after two
/// seconds). Every answer says what the request looked like in `X-Seen`
/// (method, target, `X-Original-Method`) and names the user in `X-User`.
struct AuthService {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl AuthService {
    fn start() -> AuthService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind auth service");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || answer(stream));
            }
        });
        AuthService { addr, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn answer(mut stream: std::net::TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut line = lines.next().unwrap_or("").split(' ');
    let (method, target) = (line.next().unwrap_or(""), line.next().unwrap_or(""));
    let header = |name: &str| {
        text.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(": "))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let how = header("x-auth");
    let status = match how.as_str() {
        "close" => return,
        "slow" => {
            std::thread::sleep(Duration::from_secs(2));
            200
        }
        code => code.parse::<u16>().unwrap_or(200),
    };
    let challenge = if status == 401 {
        "WWW-Authenticate: Bearer realm=\"t\"\r\n"
    } else {
        ""
    };
    let seen = format!("{method} {target} {}", header("x-original-method"));
    let resp = format!(
        "HTTP/1.1 {status} X\r\nX-User: alice\r\nX-Seen: {seen}\r\n{challenge}\
         Content-Length: 9\r\nConnection: close\r\n\r\nauth body"
    );
    let _ = stream.write_all(resp.as_bytes());
}

/// The inside of `http { }`: `LISTEN`, `BACKEND` (the echo backend), `AUTH`
/// (the auth service), `DEAD` (nothing listens).
const HTTP: &str = r#"
limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
upstream app { server BACKEND; }
upstream auth { server AUTH; }
server {
    listen LISTEN;
    auth_request /auth;
    auth_request_set $user $upstream_http_x_user;
    auth_request_set $seen "$upstream_http_x_seen";
    location = /auth {
        internal;
        proxy_pass http://auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-Method $request_method;
    }
    location = /auth-slow {
        internal;
        proxy_read_timeout 300ms;
        proxy_pass http://auth;
        proxy_set_header X-Auth slow;
    }
    location = /auth-dead { internal; proxy_pass http://DEAD; }
    location / {
        proxy_set_header X-User $user;
        proxy_set_header X-Seen $seen;
        proxy_set_header X-Auth "";
        proxy_pass http://app;
        location /open/ {
            auth_request off;
            proxy_pass http://app;
        }
    }
    location /slow/ { auth_request /auth-slow; proxy_pass http://app; }
    location /dead/ { auth_request /auth-dead; proxy_pass http://app; }
    location /any-allowed/ { satisfy any; allow 127.0.0.1; deny all; proxy_pass http://app; }
    location /any-denied/ { satisfy any; deny all; proxy_pass http://app; }
    location /all-denied/ { deny all; proxy_pass http://app; }
    location = /auth-limited {
        internal;
        limit_req zone=one;
        proxy_pass http://auth;
    }
    location /limited-both/ { auth_request /auth-limited; limit_req zone=one; proxy_pass http://app; }
    location /page/ {
        error_page 401 = /denied;
        proxy_pass http://app;
    }
    location = /denied { auth_request off; return 200 "denied page for $user"; }
}
"#;

struct Setup {
    proxy: TestProxy,
    auth: AuthService,
    _backend: Backend,
    http: String,
}

fn setup() -> Setup {
    let backend = Backend::start("app");
    let auth = AuthService::start();
    let http = HTTP
        .replace("BACKEND", &backend.peer())
        .replace("AUTH", &auth.addr.to_string())
        .replace("DEAD", &dead_addr().to_string());
    let ours = http.replace("LISTEN", "127.0.0.1:0");
    let proxy = start_proxy(&format!("events {{}}\nhttp {{{ours}}}\n"));
    Setup {
        proxy,
        auth,
        _backend: backend,
        http,
    }
}

/// One request case: method, path, `X-Auth` for the auth service, body.
type Case = (&'static str, &'static str, &'static str, &'static str);

async fn send(addr: SocketAddr, (method, path, auth, body): Case) -> Reply {
    let headers: Vec<(&str, &str)> = if auth.is_empty() {
        vec![]
    } else {
        vec![("x-auth", auth)]
    };
    Client::connect(addr)
        .await
        .send(method, path, &headers, full(body.to_string()))
        .await
        .expect("request")
}

/// What a reply says beyond its [`Summary`]: the user and what the auth
/// service saw as the backend received them, and the challenge.
fn details(r: &Reply) -> (Vec<String>, Vec<String>, Option<String>) {
    (
        r.seen("x-user"),
        r.seen("x-seen"),
        r.header("www-authenticate"),
    )
}

#[tokio::test]
async fn auth_request_answers_as_nginx() {
    let s = setup();
    let port = s.proxy.addr.port();
    let page = |t: &str| t.to_string();
    let backend = |line: &str| format!("backend {line}");
    let bearer = Some("Bearer realm=\"t\"".to_string());
    let cases: Vec<(Case, Summary, Option<String>)> = vec![
        (
            ("GET", "/a?x=1", "", ""),
            (200, None, backend("GET /a?x=1")),
            None,
        ),
        (
            ("GET", "/a", "204", ""),
            (200, None, backend("GET /a")),
            None,
        ),
        (
            ("POST", "/a", "", "hello"),
            (200, None, backend("POST /a")),
            None,
        ),
        (("HEAD", "/a", "", ""), (200, None, page("")), None),
        (
            ("GET", "/a", "401", ""),
            (401, None, page("401 Authorization Required")),
            bearer.clone(),
        ),
        (
            ("GET", "/a", "403", ""),
            (403, None, page("403 Forbidden")),
            None,
        ),
        (
            ("GET", "/a", "500", ""),
            (500, None, page("500 Internal Server Error")),
            None,
        ),
        (
            ("GET", "/a", "302", ""),
            (500, None, page("500 Internal Server Error")),
            None,
        ),
        (
            ("GET", "/a", "404", ""),
            (500, None, page("500 Internal Server Error")),
            None,
        ),
        (
            ("GET", "/a", "close", ""),
            (500, None, page("500 Internal Server Error")),
            None,
        ),
        (
            ("GET", "/slow/x", "", ""),
            (500, None, page("500 Internal Server Error")),
            None,
        ),
        (
            ("GET", "/dead/x", "", ""),
            (500, None, page("500 Internal Server Error")),
            None,
        ),
        (
            ("GET", "/open/x", "401", ""),
            (200, None, backend("GET /open/x")),
            None,
        ),
        (
            ("GET", "/any-allowed/x", "401", ""),
            (200, None, backend("GET /any-allowed/x")),
            None,
        ),
        (
            ("GET", "/any-denied/x", "", ""),
            (200, None, backend("GET /any-denied/x")),
            None,
        ),
        (
            ("GET", "/any-denied/x", "401", ""),
            (401, None, page("401 Authorization Required")),
            bearer.clone(),
        ),
        (
            ("GET", "/any-denied/x", "403", ""),
            (403, None, page("403 Forbidden")),
            None,
        ),
        (
            ("GET", "/all-denied/x", "", ""),
            (403, None, page("403 Forbidden")),
            None,
        ),
        (
            ("GET", "/page/x", "401", ""),
            (200, None, page("denied page for alice")),
            bearer.clone(),
        ),
    ];
    for (case, want, challenge) in &cases {
        let r = send(s.proxy.addr, *case).await;
        assert_eq!(&summary(&r, port), want, "{case:?}");
        assert_eq!(&r.header("www-authenticate"), challenge, "{case:?}");
    }
    // auth_request_set fed the main request's headers; the subrequest went
    // out as GET to the auth location, `$request_method` the client's.
    let r = send(s.proxy.addr, ("POST", "/a?x=1", "", "hello")).await;
    assert_eq!(r.seen("x-user"), ["alice"]);
    assert_eq!(r.seen("x-seen"), ["GET /auth POST"]);
    assert!(r.text().contains("body 5"), "{}", r.text());
    // Not asked where `auth_request off`, where `satisfy any` is met by an
    // address, or where `deny` refuses under `satisfy all`.
    for path in ["/open/x", "/any-allowed/x", "/all-denied/x"] {
        let before = s.auth.hits();
        send(s.proxy.addr, ("GET", path, "", "")).await;
        assert_eq!(s.auth.hits(), before, "{path}");
    }
    // The auth location inherits `auth_request /auth` from the server: a
    // subrequest has no access phase, so it is asked once.
    let before = s.auth.hits();
    send(s.proxy.addr, ("GET", "/a", "", "")).await;
    assert_eq!(s.auth.hits(), before + 1);
    // A backend too slow for the auth location's timeout: 500 after it.
    let started = Instant::now();
    let r = send(s.proxy.addr, ("GET", "/slow/x", "", "")).await;
    assert_eq!(r.status, 500);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    let Some(nginx) = Nginx::start(&s.http) else {
        return;
    };
    for (case, _, _) in &cases {
        let ours = send(s.proxy.addr, *case).await;
        let theirs = send(nginx.addr, *case).await;
        assert_eq!(
            (summary(&ours, port), details(&ours)),
            (summary(&theirs, nginx.addr.port()), details(&theirs)),
            "{case:?}: ours vs nginx\n{}",
            nginx.error_log()
        );
    }
}

/// `limit_req` in both the main request's location and its auth location:
/// checked once (nginx keeps the check on the main request), so the first
/// request passes; the second is refused by the main location's limit.
#[tokio::test]
async fn limits_are_checked_once_with_a_subrequest() {
    let s = setup();
    let one = ("GET", "/limited-both/x", "", "");
    let statuses = |first: u16, second: u16| (first, second);
    let ours = statuses(
        send(s.proxy.addr, one).await.status,
        send(s.proxy.addr, one).await.status,
    );
    assert_eq!(ours, (200, 503));
    let Some(nginx) = Nginx::start(&s.http) else {
        return;
    };
    let theirs = statuses(
        send(nginx.addr, one).await.status,
        send(nginx.addr, one).await.status,
    );
    assert_eq!(ours, theirs, "ours vs nginx\n{}", nginx.error_log());
}

#[tokio::test]
async fn auth_request_works_over_http2() {
    let s = setup();
    let h2 = s
        .http
        .replace("listen LISTEN;", "listen 127.0.0.1:0; http2 on;");
    let text = format!("events {{}}\nhttp {{{h2}}}\n");
    let proxy = start_proxy(&text);
    let client = H2Client::connect(proxy.addr).await;
    let ok = client.get("/a", &[]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.seen("x-user"), ["alice"]);
    let denied = client.get("/a", &[("x-auth", "401")]).await;
    assert_eq!(denied.status, 401);
    assert_eq!(
        denied.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"t\"")
    );
    let failed = client.get("/a", &[("x-auth", "close")]).await;
    assert_eq!(failed.status, 500);
}

/// The subrequest writes no access-log line (nginx's `log_subrequest off`);
/// the request's line sees the `auth_request_set` variable, whatever the
/// verdict.
#[tokio::test]
async fn only_the_request_is_logged_with_its_auth_variables() {
    let backend = Backend::start("app");
    let auth = AuthService::start();
    let dir = std::env::temp_dir().join(format!("sticky-authreq-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let log = dir.join("access.log");
    let http = HTTP
        .replace("BACKEND", &backend.peer())
        .replace("AUTH", &auth.addr.to_string())
        .replace("DEAD", &dead_addr().to_string())
        .replace(
            "listen LISTEN;",
            &format!("listen 127.0.0.1:0; access_log {} u;", log.display()),
        );
    let proxy = start_proxy(&format!(
        "events {{}}\nhttp {{ log_format u '$uri $status $user';\n{http}}}\n"
    ));
    for case in [
        ("GET", "/a", "", ""),
        ("GET", "/b", "401", ""),
        ("GET", "/open/c", "", ""),
    ] {
        send(proxy.addr, case).await;
    }
    assert_eq!(
        read_lines(&log, 3),
        ["/a 200 alice", "/b 401 alice", "/open/c 200 -"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
