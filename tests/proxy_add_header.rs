//! `add_header` and `expires` on the live proxy: nginx's inheritance (a level with
//! any `add_header` replaces the outer list), `always`, the statuses headers go
//! on, variables, and the `Expires` / `Cache-Control` lines, on proxied and
//! proxy-made responses. When nginx is installed, the same configuration runs
//! under nginx too and both must answer with the same edited headers.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;

/// The configuration, for the proxy and for nginx: `{LISTEN}` and `{BACKEND}`
/// are filled in.
const CONF: &str = "events {}
http {
    access_log off;
    add_header X-Http http;
    upstream app { server {BACKEND}; }
    server {
        listen {LISTEN};
        location /inherit { proxy_pass http://app; }
        location /own {
            add_header X-Own \"own $http_x_tag\";
            add_header X-Always yes always;
            add_header X-Empty \"$http_x_none\";
            expires 1h;
            proxy_pass http://app;
            location /own/nested { proxy_pass http://app; }
        }
        location = /ret200 { return 200 ok; }
        location = /ret404 { return 404; }
        location = /redirect { return 302 /elsewhere; }
        location = /epoch { expires epoch; return 204; }
        location = /max { expires max; return 200 m; }
        location = /negative { expires -1; return 200 n; }
        location = /zero { expires 0; return 200 z; }
    }
    server {
        listen {LISTEN2};
        add_header X-Server srv always;
        location / { return 200 s; }
        location /dead { proxy_pass http://{DEAD}; }
    }
    server {
        listen {LISTEN3};
        add_header X-Server-Level s;
        return 200 early;
        location / { add_header X-Location l; }
    }
}
";

/// (path, request headers, on which server: 1, 2 or 3)
type Ask = (&'static str, &'static [(&'static str, &'static str)], u8);

const REQUESTS: &[Ask] = &[
    ("/inherit", &[], 1),
    ("/inherit", &[("x-status", "500")], 1),
    ("/own", &[("x-tag", "t1")], 1),
    ("/own", &[("x-tag", "t2"), ("x-status", "404")], 1),
    ("/own/nested", &[("x-tag", "n")], 1),
    ("/ret200", &[], 1),
    ("/ret404", &[], 1),
    ("/redirect", &[], 1),
    ("/epoch", &[], 1),
    ("/max", &[], 1),
    ("/negative", &[], 1),
    ("/zero", &[], 1),
    ("/", &[], 2),
    ("/dead", &[], 2),
    ("/", &[], 3),
];

/// The edited part of a reply: status, the `X-` headers, `Cache-Control`, and
/// `Expires` as seconds after `Date` (or its fixed text for epoch/max).
async fn edited(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let mut c = Client::connect(addr).await;
    let r = c.get(path, headers).await;
    let mut out = vec![format!("status {}", r.status)];
    let mut names: Vec<&str> = r.headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        if name.starts_with("x-") || name == "cache-control" {
            for v in r.headers.get_all(name) {
                out.push(format!("{name}: {}", v.to_str().unwrap_or("?")));
            }
        }
    }
    if let Some(expires) = r.header("expires") {
        let date = r.header("date").unwrap_or_default();
        let (e, d) = (
            httpdate::parse_http_date(&expires),
            httpdate::parse_http_date(&date),
        );
        let shown = match (e, d) {
            _ if expires.contains("1970") || expires.contains("2037") => expires.clone(),
            (Ok(e), Ok(d)) => {
                let delta = e
                    .duration_since(d)
                    .map(|x| x.as_secs() as i64)
                    .unwrap_or_else(|x| -(x.duration().as_secs() as i64));
                format!("date{delta:+}")
            }
            _ => format!("unparsable {expires}"),
        };
        out.push(format!("expires: {shown}"));
    }
    out
}

fn conf_text(listens: [&str; 3], backend: &str) -> String {
    let [listen, listen2, listen3] = listens;
    CONF.replace("{LISTEN3}", listen3)
        .replace("{LISTEN2}", listen2)
        .replace("{LISTEN}", listen)
        .replace("{BACKEND}", backend)
        .replace("{DEAD}", &dead_addr().to_string())
}

/// What nginx answers (and this proxy must answer) to [`REQUESTS`], in order.
fn expected() -> Vec<Vec<&'static str>> {
    vec![
        vec!["status 200", "x-http: http"],
        vec!["status 500"],
        vec![
            "status 200",
            "cache-control: max-age=3600",
            "x-always: yes",
            "x-own: own t1",
            "expires: date+3600",
        ],
        vec!["status 404", "x-always: yes"],
        vec![
            "status 200",
            "cache-control: max-age=3600",
            "x-always: yes",
            "x-own: own n",
            "expires: date+3600",
        ],
        vec!["status 200", "x-http: http"],
        vec!["status 404"],
        vec!["status 302", "x-http: http"],
        vec![
            "status 204",
            "cache-control: no-cache",
            "x-http: http",
            "expires: Thu, 01 Jan 1970 00:00:01 GMT",
        ],
        vec![
            "status 200",
            "cache-control: max-age=315360000",
            "x-http: http",
            "expires: Thu, 31 Dec 2037 23:55:55 GMT",
        ],
        vec![
            "status 200",
            "cache-control: no-cache",
            "x-http: http",
            "expires: date-1",
        ],
        vec![
            "status 200",
            "cache-control: max-age=0",
            "x-http: http",
            "expires: date+0",
        ],
        vec!["status 200", "x-server: srv"],
        vec!["status 502", "x-server: srv"],
        vec!["status 200", "x-server-level: s"],
    ]
}

#[tokio::test]
async fn add_header_and_expires_follow_nginx() {
    let backend = Backend::start("b1");
    let text = conf_text(
        ["127.0.0.1:0", "127.0.0.2:0", "127.0.0.3:0"],
        &backend.peer(),
    );
    let p = start_proxy(&text);
    let addrs: Vec<SocketAddr> = p.running.addrs().iter().map(|(_, a)| *a).collect();
    let on = |ip: &str| -> SocketAddr {
        *addrs
            .iter()
            .find(|a| a.ip().to_string() == ip)
            .unwrap_or_else(|| panic!("listeners: {addrs:?}"))
    };
    let servers = [on("127.0.0.1"), on("127.0.0.2"), on("127.0.0.3")];
    for ((path, headers, server), want) in REQUESTS.iter().zip(expected()) {
        let got = edited(servers[usize::from(*server) - 1], path, headers).await;
        assert_eq!(got, want, "{path} {headers:?}");
    }
}

/// A running nginx, stopped (by its pid) when dropped.
struct Nginx {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts nginx with `text` in a scratch prefix, the way nginx's own tests do.
fn start_nginx(bin: &std::path::Path, text: &str) -> Nginx {
    let dir = std::env::temp_dir().join(format!("sticky-nginx-addheader-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).expect("prefix dir");
    std::fs::write(dir.join("nginx.conf"), text).expect("write nginx.conf");
    let globals = format!(
        "daemon off; master_process off; pid {0}/nginx.pid; error_log {0}/error.log;",
        dir.display()
    );
    let child = spawn_like_test_nginx(bin, &dir, &globals);
    Nginx { child, dir }
}

/// A port free right now on `ip` (nginx needs a real port in its config).
fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn nginx_itself_answers_the_same() {
    let Some(bin) = nginx_binary() else {
        eprintln!("SKIPPED: nginx is not installed; the comparison with nginx did not run");
        return;
    };
    let backend = Backend::start("b1");
    let servers: Vec<SocketAddr> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| SocketAddr::new(ip.parse().expect("ip"), free_port(ip)))
        .collect();
    let listens: Vec<String> = servers.iter().map(SocketAddr::to_string).collect();
    let text = conf_text([&listens[0], &listens[1], &listens[2]], &backend.peer());
    let nginx = start_nginx(&bin, &text);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(servers[2]).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for ((path, headers, server), want) in REQUESTS.iter().zip(expected()) {
        let got = edited(servers[usize::from(*server) - 1], path, headers).await;
        assert_eq!(got, want, "nginx: {path} {headers:?}");
    }
}

/// `add_header` names go out as the configuration writes them, as nginx's
/// (`X-Frame-Options`, not `x-frame-options`; `x-lower` stays lower-case),
/// on a file or `return` answer and on a proxied one.
#[tokio::test]
async fn add_header_names_keep_the_configured_spelling() {
    let b = Backend::start("b");
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n  server {{\n    listen 127.0.0.1:0;\n    \
         add_header X-Frame-Options DENY;\n    add_header x-lower 1;\n    \
         add_header Strict-Transport-Security \"max-age=60\" always;\n    \
         location = /made {{ return 200 \"ok\"; }}\n    \
         location = /missing {{ return 404; }}\n    \
         location / {{ proxy_pass http://{}; }}\n  }}\n}}\n",
        b.peer()
    ));
    for (path, status) in [("/made", 200), ("/proxied", 200), ("/missing", 404)] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let r = raw(p.addr, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{path}: {r}");
        assert!(
            r.contains("\r\nStrict-Transport-Security: max-age=60\r\n"),
            "{path}: {r}"
        );
        if status == 200 {
            assert!(r.contains("\r\nX-Frame-Options: DENY\r\n"), "{path}: {r}");
            assert!(r.contains("\r\nx-lower: 1\r\n"), "{path}: {r}");
        }
    }
}
