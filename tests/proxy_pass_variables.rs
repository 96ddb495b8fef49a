//! `proxy_pass` with variables whose host names no upstream, against the live
//! proxy and compared with nginx itself when it is installed: an address
//! (`IP:PORT`) is connected to directly; a name is resolved with the
//! `resolver` of the location (or of its server), through a DNS server of the
//! test's own on 127.0.0.1:0 (`common::dns`); a name without a resolver, or
//! one the DNS server does not know, is a 502.

mod common;

use common::dns::Dns;
use common::nginx::{summary, Nginx, Summary};
use common::*;

/// The inside of `http { }`; `LISTEN`, `BACKEND` and `DNS` are filled in.
const HTTP: &str = r#"
server {
    listen LISTEN;
    location /set { set $b BACKEND; proxy_pass http://$b; }
    location /uri { set $b BACKEND; proxy_pass http://$b/fixed$is_args$args; }
    location /arg { proxy_pass http://$arg_h; }
    location /dns { resolver DNS; resolver_timeout 5s; proxy_pass http://$arg_h; }
}
server {
    listen LISTEN;
    server_name inherits.test;
    resolver DNS;
    location / { proxy_pass http://$arg_h; }
}
"#;

async fn request(addr: std::net::SocketAddr, path: &str, host: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = host.map(|h| ("host", h)).into_iter().collect();
    Client::connect(addr)
        .await
        .send("GET", path, &headers, empty())
        .await
        .expect("request")
}

fn s(status: u16, body: &str) -> Summary {
    (status, None, body.to_string())
}

#[tokio::test]
async fn variable_hosts_connect_to_addresses_and_resolve_names_as_nginx() {
    let b = Backend::start("a");
    let dns = Dns::start();
    dns.set("app.test", &[[127, 0, 0, 1]]);
    let port = b.port();
    let dead = dead_addr();
    let http = HTTP
        .replace("BACKEND", &b.peer())
        .replace("DNS", &dns.addr.to_string());
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{{}}}\n",
        http.replace("LISTEN", "127.0.0.1:0")
    ));
    let app = format!("app.test:{port}");
    let cases: Vec<(String, Option<&str>, Summary)> = vec![
        ("/set?k=1".into(), None, s(200, "backend GET /set?k=1")),
        ("/uri?k=1".into(), None, s(200, "backend GET /fixed?k=1")),
        (
            format!("/arg?h={}", b.peer()),
            None,
            s(200, &format!("backend GET /arg?h={}", b.peer())),
        ),
        (format!("/arg?h={dead}"), None, s(502, "502 Bad Gateway")),
        (format!("/arg?h={app}"), None, s(502, "502 Bad Gateway")),
        (
            format!("/dns?h={app}"),
            None,
            s(200, &format!("backend GET /dns?h={app}")),
        ),
        (
            format!("/dns?h={}", b.peer()),
            None,
            s(200, &format!("backend GET /dns?h={}", b.peer())),
        ),
        (
            format!("/dns?h=missing.test:{port}"),
            None,
            s(502, "502 Bad Gateway"),
        ),
        (
            format!("/x?h={app}"),
            Some("inherits.test"),
            s(200, &format!("backend GET /x?h={app}")),
        ),
    ];
    for (path, host, want) in &cases {
        let r = request(p.addr, path, *host).await;
        assert_eq!(&summary(&r, p.addr.port()), want, "{path}");
    }
    let Some(nginx) = Nginx::start(&http) else {
        return;
    };
    for (path, host, _) in &cases {
        let ours = request(p.addr, path, *host).await;
        let theirs = request(nginx.addr, path, *host).await;
        assert_eq!(
            summary(&ours, p.addr.port()),
            summary(&theirs, nginx.addr.port()),
            "{path}: ours vs nginx\n{}",
            nginx.error_log()
        );
    }
    let log = nginx.error_log();
    assert!(
        log.contains("no resolver defined to resolve app.test"),
        "{log}"
    );
}
