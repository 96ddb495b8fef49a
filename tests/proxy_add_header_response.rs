//! `add_header` values that read the response, evaluated once it is known
//! (nginx's header filter): `$upstream_http_*` (hidden lines too),
//! `$upstream_cookie_*`, `$upstream_status`, `$upstream_addr`, `$status`,
//! `$sent_http_*` (which sees the lines added before it), with `always` on
//! 404 and 502, on proxied and proxy-made responses, over HTTP/1.1 and
//! HTTP/2; and `$upstream_http_location` in the named location an
//! `error_page` leads to after `proxy_intercept_errors`. When nginx is installed, the same `http` block runs under nginx
//! and both must answer with the same edited headers.

mod common;

use std::net::SocketAddr;

use common::h2::H2Client;
use common::nginx::Nginx;
use common::*;

/// The inside of `http {}`: `LISTEN`, `BACKEND` and `DEAD` are filled in.
const HTTP: &str = "
    upstream app { server BACKEND; }
    server {
        listen LISTEN;
        location / {
            proxy_hide_header Content-Disposition;
            add_header X-Disp $upstream_http_content_disposition;
            add_header X-Seen \"seen=$sent_http_x_disp\";
            add_header X-Type \"type=$sent_http_content_type\";
            add_header X-Cookie $upstream_cookie_sid;
            add_header X-Up \"up=$upstream_status $request_method\" always;
            add_header X-Status $status always;
            proxy_pass http://app;
        }
        location /dead {
            add_header X-Up \"up=$upstream_status\" always;
            add_header X-Uh \"[$upstream_http_server]\" always;
            proxy_pass http://DEAD;
        }
        location /follow {
            proxy_intercept_errors on;
            error_page 302 = @redirected;
            proxy_pass http://app;
        }
        location @redirected {
            set $to $upstream_http_location;
            add_header X-Up $upstream_status;
            return 200 \"to=$to\";
        }
        location /local {
            add_header X-Up \"[$upstream_status]\" always;
            add_header X-Uh $upstream_http_server always;
            add_header X-Status \"s=$status\" always;
            return 404;
        }
    }
";

fn http_block(backend: &str) -> String {
    HTTP.replace("BACKEND", backend)
        .replace("DEAD", &dead_addr().to_string())
}

type Ask = (&'static str, &'static [(&'static str, &'static str)]);

const REQUESTS: &[Ask] = &[
    (
        "/",
        &[
            (
                "x-resp-header",
                "Content-Disposition: attachment; filename=\"a.txt\"",
            ),
            ("x-resp-header", "Content-Type: text/x"),
            ("x-set-cookie", "other=1; Path=/"),
            ("x-set-cookie", "sid=abc; Path=/; HttpOnly"),
        ],
    ),
    ("/", &[("x-status", "404")]),
    ("/", &[]),
    ("/dead", &[]),
    ("/local", &[]),
    (
        "/follow",
        &[("x-status", "302"), ("x-location", "http://files.test/a")],
    ),
];

fn expected() -> Vec<Vec<&'static str>> {
    vec![
        vec![
            "status 200",
            "x-cookie: abc",
            "x-disp: attachment; filename=\"a.txt\"",
            "x-seen: seen=attachment; filename=\"a.txt\"",
            "x-status: 200",
            "x-type: type=text/x",
            "x-up: up=200 GET",
        ],
        vec!["status 404", "x-status: 404", "x-up: up=404 GET"],
        vec![
            "status 200",
            "x-seen: seen=",
            "x-status: 200",
            "x-type: type=",
            "x-up: up=200 GET",
        ],
        vec!["status 502", "x-uh: []", "x-up: up=502"],
        vec!["status 404", "x-status: s=404", "x-up: []"],
        vec!["status 200", "x-up: 302", "body to=http://files.test/a"],
    ]
}

/// Status, the `X-` lines (sorted by name) and any `Content-Disposition`.
fn edited(r: &Reply) -> Vec<String> {
    let mut out = vec![format!("status {}", r.status)];
    let mut names: Vec<&str> = r.headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        if name.starts_with("x-") || name == "content-disposition" {
            for v in r.headers.get_all(name) {
                out.push(format!("{name}: {}", v.to_str().unwrap_or("?")));
            }
        }
    }
    if r.text().starts_with("to=") {
        out.push(format!("body {}", r.text()));
    }
    out
}

fn check(got: Vec<Vec<String>>, who: &str) {
    for (((path, headers), got), want) in REQUESTS.iter().zip(got).zip(expected()) {
        assert_eq!(got, want, "{who}: {path} {headers:?}");
    }
}

#[tokio::test]
async fn response_variables_are_read_once_the_response_is_known() {
    let backend = Backend::start("b1");
    let text = format!(
        "events {{}}\nhttp {{\n{}\n}}\n",
        http_block(&backend.peer()).replace("LISTEN", "127.0.0.1:0")
    );
    let p = start_proxy(&text);
    let mut got = Vec::new();
    for (path, headers) in REQUESTS {
        got.push(edited(&get(p.addr, path, headers).await));
    }
    check(got, "proxy");
}

#[tokio::test]
async fn response_variables_over_http2() {
    let backend = Backend::start("b1");
    let text = format!(
        "events {{}}\nhttp {{\n{}\n}}\n",
        http_block(&backend.peer()).replace("listen LISTEN;", "listen 127.0.0.1:0; http2 on;")
    );
    let p = start_proxy(&text);
    let client = H2Client::connect(p.addr).await;
    let mut got = Vec::new();
    for (path, headers) in REQUESTS {
        got.push(edited(&client.get(path, headers).await));
    }
    check(got, "proxy over HTTP/2");
}

#[tokio::test]
async fn nginx_itself_answers_the_same() {
    let backend = Backend::start("b1");
    let addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let Some(nginx) = Nginx::start_at(addr, &http_block(&backend.peer())) else {
        eprintln!("SKIPPED: nginx is not installed; the comparison with nginx did not run");
        return;
    };
    let mut got = Vec::new();
    for (path, headers) in REQUESTS {
        got.push(edited(&get(nginx.addr, path, headers).await));
    }
    check(got, "nginx");
}

#[tokio::test]
async fn the_access_log_reads_the_backend_s_lines_too() {
    let backend = Backend::start("b1");
    let dir = std::env::temp_dir().join(format!("sticky-uphdr-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("log dir");
    let log = dir.join("access.log");
    let _ = std::fs::remove_file(&log);
    let text = format!(
        "events {{}}
http {{
    log_format up '$status [$upstream_http_content_disposition] [$upstream_cookie_sid] [$upstream_http_server]';
    upstream app {{ server {}; }}
    server {{
        listen 127.0.0.1:0;
        access_log {} up;
        location / {{ proxy_hide_header Content-Disposition; proxy_pass http://app; }}
        location /local {{ return 204; }}
    }}
}}
",
        backend.peer(),
        log.display()
    );
    let p = start_proxy(&text);
    let asked = [
        ("x-resp-header", "Content-Disposition: inline"),
        ("x-set-cookie", "sid=abc; Path=/"),
    ];
    assert_eq!(get(p.addr, "/", &asked).await.status, 200);
    assert_eq!(get(p.addr, "/local", &[]).await.status, 204);
    assert_eq!(
        read_lines(&log, 2),
        ["200 [inline] [abc] [echo]", "204 [-] [-] [-]"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
