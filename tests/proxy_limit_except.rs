//! `limit_except` against the live proxy, compared with nginx itself when it is
//! installed: GET brings HEAD, the block's rules apply to every method it does
//! not name (an unknown one too), `deny all` answers 403, `auth_basic` inside
//! asks every other method for credentials, the block's rules replace the
//! location's, the location's `return` is not part of the block, a
//! `proxy_pass` inside serves the other methods, nested locations are not
//! affected.

mod common;

use common::nginx::{summary, Nginx, Summary};
use common::*;

/// The inside of `http { }`; `LISTEN`, `BACKEND` and `HTPASSWD` are filled in.
const HTTP: &str = r#"
upstream app { server BACKEND; }
server {
    listen LISTEN;
    location /ro { proxy_pass http://app; limit_except GET { deny all; } }
    location /lan { proxy_pass http://app; limit_except GET POST { allow 127.0.0.1; deny all; } }
    location /far { proxy_pass http://app; limit_except GET { allow 10.0.0.0/8; deny all; } }
    location /auth {
        proxy_pass http://app;
        limit_except OPTIONS { auth_basic "prom"; auth_basic_user_file HTPASSWD; }
    }
    location /outer { deny all; proxy_pass http://app; limit_except GET { allow all; } }
    location /ret { return 200 "ret"; limit_except GET { deny all; } }
    location /pin { limit_except GET { proxy_pass http://app; } return 200 "outer"; }
    location /n {
        limit_except GET { deny all; }
        location /n/x { return 200 "nested"; }
        proxy_pass http://app;
    }
}
"#;

/// `plain:secret`.
const GOOD: &str = "Basic cGxhaW46c2VjcmV0";
/// `plain:wrong`.
const BAD: &str = "Basic cGxhaW46d3Jvbmc=";

async fn send(addr: std::net::SocketAddr, method: &str, path: &str, auth: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    Client::connect(addr)
        .await
        .send(method, path, &headers, empty())
        .await
        .expect("request")
}

fn s(status: u16, body: &str) -> Summary {
    (status, None, body.to_string())
}

#[tokio::test]
async fn limit_except_restricts_the_methods_it_does_not_name_as_nginx() {
    let b = Backend::start("a");
    let dir = std::env::temp_dir().join(format!("proxy-limit-except-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("htpasswd");
    std::fs::write(&file, "plain:{PLAIN}secret\n").unwrap();
    let http = HTTP
        .replace("BACKEND", &b.peer())
        .replace("HTPASSWD", &file.display().to_string());
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{{}}}\n",
        http.replace("LISTEN", "127.0.0.1:0")
    ));
    let cases: Vec<(&str, &str, Option<&str>, Summary)> = vec![
        ("GET", "/ro", None, s(200, "backend GET /ro")),
        ("HEAD", "/ro", None, s(200, "")),
        ("POST", "/ro", None, s(403, "403 Forbidden")),
        ("PUT", "/ro", None, s(403, "403 Forbidden")),
        ("FOO", "/ro", None, s(403, "403 Forbidden")),
        ("DELETE", "/lan", None, s(200, "backend DELETE /lan")),
        ("POST", "/lan", None, s(200, "backend POST /lan")),
        ("GET", "/far", None, s(200, "backend GET /far")),
        ("POST", "/far", None, s(403, "403 Forbidden")),
        ("OPTIONS", "/auth", None, s(200, "backend OPTIONS /auth")),
        ("GET", "/auth", None, s(401, "401 Authorization Required")),
        (
            "GET",
            "/auth",
            Some(BAD),
            s(401, "401 Authorization Required"),
        ),
        ("GET", "/auth", Some(GOOD), s(200, "backend GET /auth")),
        ("POST", "/auth", Some(GOOD), s(200, "backend POST /auth")),
        ("GET", "/outer", None, s(403, "403 Forbidden")),
        ("POST", "/outer", None, s(200, "backend POST /outer")),
        ("GET", "/ret", None, s(200, "ret")),
        ("POST", "/ret", None, s(403, "403 Forbidden")),
        ("GET", "/pin", None, s(200, "outer")),
        ("POST", "/pin", None, s(200, "backend POST /pin")),
        ("GET", "/n", None, s(200, "backend GET /n")),
        ("POST", "/n", None, s(403, "403 Forbidden")),
        ("POST", "/n/x", None, s(200, "nested")),
    ];
    for (method, path, auth, want) in &cases {
        let r = send(p.addr, method, path, *auth).await;
        assert_eq!(&summary(&r, p.addr.port()), want, "{method} {path}");
    }
    let r = send(p.addr, "GET", "/auth", None).await;
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Basic realm=\"prom\"")
    );
    if let Some(nginx) = Nginx::start(&http) {
        for (method, path, auth, _) in &cases {
            let ours = send(p.addr, method, path, *auth).await;
            let theirs = send(nginx.addr, method, path, *auth).await;
            assert_eq!(
                summary(&ours, p.addr.port()),
                summary(&theirs, nginx.addr.port()),
                "{method} {path}: ours vs nginx\n{}",
                nginx.error_log()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
