//! Internal redirects: `error_page` (URI, `=`, `=CODE`, `@name`, a URL),
//! `internal`, named locations, `proxy_intercept_errors`,
//! `recursive_error_pages` and the redirect-cycle limit, against the live
//! proxy, and compared with nginx itself when it is installed.

mod common;

use common::nginx::{summary, Nginx, Summary};
use common::*;

/// The inside of `http { }`; `LISTEN` is the address, `BACKEND` the echo
/// backend, `DEAD` an address nothing listens on.
const HTTP: &str = r#"
upstream app { server BACKEND; }
server {
    listen LISTEN;
    error_page 404 /errors/404;
    location / { proxy_pass http://app; }
    location /errors/ { internal; return 200 "page $uri $request_method"; }
    location /gone { return 404; }
    location /eq { error_page 404 = /errors/404; return 404; }
    location /code { error_page 404 =202 /errors/404; return 404; }
    location /args { error_page 404 /errors/args?a=1; return 404; }
    location /named { error_page 404 = @fallback; return 404; }
    location @fallback { proxy_pass http://app; }
    location /intercept {
        proxy_intercept_errors on;
        error_page 500 503 /errors/upstream;
        proxy_pass http://app;
    }
    location /passthrough { error_page 500 /errors/x; proxy_pass http://app; }
    location /dead { error_page 502 @fallback; proxy_pass http://DEAD; }
    location /dead-page { error_page 502 /errors/dead; proxy_pass http://DEAD; }
    location /loop { recursive_error_pages on; error_page 404 /loop; return 404; }
    location /once { error_page 404 /once-more; return 404; }
    location /once-more { error_page 404 /errors/never; return 404; }
    location /url { error_page 404 http://example.com/x; return 404; }
    location /url301 { error_page 404 =301 http://example.com/y; return 404; }
    location /secret { internal; return 200 "secret"; }
    location /small { client_max_body_size 1; error_page 413 /errors/413; proxy_pass http://app; }
}
"#;

async fn request(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let headers: Vec<(&str, &str)> = match path.split_once("#status=") {
        Some((_, s)) => vec![("x-status", s)],
        None => vec![],
    };
    let path = path.split('#').next().unwrap_or(path);
    Client::connect(addr)
        .await
        .send(method, path, &headers, full(body.to_string()))
        .await
        .expect("request")
}

#[tokio::test]
async fn error_pages_and_named_locations_answer_as_nginx() {
    let b = Backend::start("a");
    let dead = dead_addr();
    let http = HTTP
        .replace("BACKEND", &b.peer())
        .replace("DEAD", &dead.to_string());
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{{}}}\n",
        http.replace("LISTEN", "127.0.0.1:0")
    ));
    let page = |s: &str| s.to_string();
    // method, path (`#status=N`: the backend answers N), body, expected.
    let cases: Vec<(&str, &str, &str, Summary)> = vec![
        ("GET", "/plain", "", (200, None, page("backend GET /plain"))),
        (
            "GET",
            "/gone",
            "",
            (404, None, page("page /errors/404 GET")),
        ),
        ("HEAD", "/gone", "", (404, None, page(""))),
        (
            "POST",
            "/gone",
            "x",
            (404, None, page("page /errors/404 GET")),
        ),
        ("GET", "/eq", "", (200, None, page("page /errors/404 GET"))),
        (
            "GET",
            "/code",
            "",
            (202, None, page("page /errors/404 GET")),
        ),
        (
            "GET",
            "/args?x=2",
            "",
            (404, None, page("page /errors/args GET")),
        ),
        (
            "GET",
            "/named?q=1",
            "",
            (200, None, page("backend GET /named?q=1")),
        ),
        (
            "POST",
            "/named",
            "",
            (200, None, page("backend POST /named")),
        ),
        (
            "GET",
            "/errors/404",
            "",
            (404, None, page("page /errors/404 GET")),
        ),
        (
            "GET",
            "/secret",
            "",
            (404, None, page("page /errors/404 GET")),
        ),
        (
            "GET",
            "/intercept#status=500",
            "",
            (500, None, page("page /errors/upstream GET")),
        ),
        (
            "GET",
            "/intercept#status=503",
            "",
            (503, None, page("page /errors/upstream GET")),
        ),
        (
            "GET",
            "/intercept#status=404",
            "",
            (404, None, page("backend GET /intercept")),
        ),
        (
            "GET",
            "/passthrough#status=500",
            "",
            (500, None, page("backend GET /passthrough")),
        ),
        ("GET", "/dead", "", (502, None, page("backend GET /dead"))),
        (
            "GET",
            "/dead-page",
            "",
            (502, None, page("page /errors/dead GET")),
        ),
        (
            "GET",
            "/loop",
            "",
            (500, None, page("500 Internal Server Error")),
        ),
        ("GET", "/once", "", (404, None, page("404 Not Found"))),
        (
            "GET",
            "/url",
            "",
            (302, Some("http://example.com/x".into()), page("302 Found")),
        ),
        (
            "GET",
            "/url301",
            "",
            (
                301,
                Some("http://example.com/y".into()),
                page("301 Moved Permanently"),
            ),
        ),
        (
            "POST",
            "/small",
            "0123456789",
            (413, None, page("page /errors/413 GET")),
        ),
    ];
    for (method, path, body, want) in &cases {
        let r = request(p.addr, method, path, body).await;
        assert_eq!(&summary(&r, p.addr.port()), want, "{method} {path}");
    }
    let Some(nginx) = Nginx::start(&http) else {
        return;
    };
    for (method, path, body, _) in &cases {
        let ours = request(p.addr, method, path, body).await;
        let theirs = request(nginx.addr, method, path, body).await;
        assert_eq!(
            summary(&ours, p.addr.port()),
            summary(&theirs, nginx.addr.port()),
            "{method} {path}: ours vs nginx\n{}",
            nginx.error_log()
        );
    }
}

/// Files and internal redirects together: `try_files` to a named location and
/// to a URI whose location proxies, `index`, and the `error_page` of a 404
/// from files and of an access refusal, each page a file sent with the
/// error's status.
const FILES_HTTP: &str = r#"
upstream app { server BACKEND; }
server {
    listen LISTEN;
    root ROOT;
    error_page 404 /404.html;
    location / { try_files $uri $uri/ @app; }
    location @app { proxy_pass http://app; }
    location /api/ { try_files $uri /proxied$uri?via=files; }
    location /proxied/ { proxy_pass http://app; }
    location /static/ { }
    location /deny/ { deny all; error_page 403 /403.html; }
    location = /403.html { internal; }
}
"#;

#[tokio::test]
async fn files_redirect_internally_and_get_error_pages_as_nginx() {
    let b = Backend::start("a");
    let root = std::env::temp_dir().join(format!("sp-error-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in [
        ("404.html", "NOT FOUND PAGE"),
        ("403.html", "FORBIDDEN PAGE"),
        ("static/a.txt", "A"),
        ("idx/index.html", "IDX"),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
    }
    let http = FILES_HTTP
        .replace("BACKEND", &b.peer())
        .replace("ROOT", &root.display().to_string());
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{{}}}\n",
        http.replace("LISTEN", "127.0.0.1:0")
    ));
    let page = |s: &str| s.to_string();
    let cases: Vec<(&str, &str, Summary)> = vec![
        ("GET", "/static/a.txt", (200, None, page("A"))),
        ("GET", "/static/none", (404, None, page("NOT FOUND PAGE"))),
        ("GET", "/idx/", (200, None, page("IDX"))),
        (
            "GET",
            "/nothing?q=1",
            (200, None, page("backend GET /nothing?q=1")),
        ),
        (
            "POST",
            "/nothing",
            (200, None, page("backend POST /nothing")),
        ),
        (
            "GET",
            "/api/x",
            (200, None, page("backend GET /proxied/api/x?via=files")),
        ),
        ("GET", "/deny/x", (403, None, page("FORBIDDEN PAGE"))),
        ("GET", "/403.html", (404, None, page("NOT FOUND PAGE"))),
    ];
    for (method, path, want) in &cases {
        let r = request(p.addr, method, path, "").await;
        assert_eq!(&summary(&r, p.addr.port()), want, "{method} {path}");
    }
    if let Some(nginx) = Nginx::start(&http) {
        for (method, path, _) in &cases {
            let ours = request(p.addr, method, path, "").await;
            let theirs = request(nginx.addr, method, path, "").await;
            assert_eq!(
                summary(&ours, p.addr.port()),
                summary(&theirs, nginx.addr.port()),
                "{method} {path}: ours vs nginx\n{}",
                nginx.error_log()
            );
        }
    }
    std::fs::remove_dir_all(&root).expect("cleanup");
}
