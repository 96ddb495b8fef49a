//! The rewrite module: `rewrite` (flags, captures, arguments, redirects),
//! `set`, `if` (its conditions, `return` inside, its own `proxy_pass`),
//! `break`, server-level statements, `location ~` captures, and the rewrite
//! cycle limit, against the live proxy, and compared with nginx itself when it
//! is installed.

mod common;

use common::nginx::{summary, Nginx, Summary};
use common::*;

/// The inside of `http { }`; `LISTEN` is the address, `BACKEND` the echo
/// backend.
const HTTP: &str = r#"
upstream app { server BACKEND; }
server {
    listen LISTEN;
    rewrite ^/old/(.*)$ /new/$1 last;
    if ($http_x_block) { return 403; }
    location / { proxy_pass http://app; }
    location /r/ {
        rewrite ^/r/chain/(.*)$ /r/last/$1;
        rewrite ^/r/last/(.*)$ /x/$1 last;
        rewrite ^/r/break/(.*)$ /y/$1 break;
        rewrite ^/r/redirect/(.*)$ /z/$1 redirect;
        rewrite ^/r/perm/(.*)$ /z/$1 permanent;
        rewrite ^/r/abs/(.*)$ http://example.com/$1;
        rewrite ^/r/noargs/(.*)$ /x/$1? last;
        rewrite ^/r/args/(.*)$ /x/$1?b=2 last;
        rewrite ^/r/redirargs/(.*)$ /z/$1?b=2 redirect;
        proxy_pass http://app;
    }
    location /x/ { proxy_pass http://app; }
    location /set {
        set $a "v-$arg_q";
        return 200 "a=$a uri=$uri args=$args";
    }
    location /if {
        if ($arg_m = yes) { return 200 "matched"; }
        if ($arg_m ~* ^(a)(b)$) { return 200 "re $1 $2"; }
        if ($arg_m !~ x) { return 201 "no x"; }
        if ($arg_e != "") { return 202 "e set"; }
        return 200 "fallthrough";
    }
    location ~ ^/cap/(?<id>[0-9]+)/(.*)$ {
        return 200 "id=$id rest=$2";
    }
    location /ifconf {
        if ($arg_p) { proxy_pass http://app; }
        return 200 "no p";
    }
    location /ifproxy {
        if ($arg_p) { proxy_pass http://app; }
    }
    location /loop { rewrite ^ /loop last; }
    location /brk { set $x 1; break; return 200 "x=$x"; }
    location /brk2 { set $x 1; if ($x) { set $x 2; break; } return 200 "x=$x"; }
    location /uri { rewrite ^ /x/rewritten break; proxy_pass http://app; }
    location ~ ^/pp/(.*)$ { proxy_pass http://app/z/$1; }
    location /ppv { set $up app; proxy_pass http://$up; }
    location /ppd { proxy_pass http://$arg_h; }
}
server {
    listen LISTEN;
    server_name ~^(?<sub>[a-z]+)\.example\.test$;
    location / { proxy_pass http://app/$sub$request_uri; }
}
"#;

async fn request(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    Client::connect(addr)
        .await
        .send("GET", path, headers, empty())
        .await
        .expect("request")
}

fn s(status: u16, location: Option<&str>, body: &str) -> Summary {
    (status, location.map(str::to_string), body.to_string())
}

#[tokio::test]
async fn rewrite_set_if_and_break_answer_as_nginx() {
    let b = Backend::start("a");
    let http = HTTP.replace("BACKEND", &b.peer());
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{{}}}\n",
        http.replace("LISTEN", "127.0.0.1:0")
    ));
    let block: &[(&str, &str)] = &[("x-block", "1")];
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(&str, Headers<'_>, Summary)> = vec![
        ("/old/a?k=1", &[], s(200, None, "backend GET /new/a?k=1")),
        ("/anything", block, s(403, None, "403 Forbidden")),
        ("/r/last/a?k=1", &[], s(200, None, "backend GET /x/a?k=1")),
        ("/r/chain/a", &[], s(200, None, "backend GET /x/a")),
        ("/r/break/a?k=1", &[], s(200, None, "backend GET /y/a?k=1")),
        (
            "/r/redirect/a?k=1",
            &[],
            s(302, Some("http://localhost/z/a?k=1"), "302 Found"),
        ),
        (
            "/r/perm/a",
            &[],
            s(301, Some("http://localhost/z/a"), "301 Moved Permanently"),
        ),
        (
            "/r/abs/a?k=1",
            &[],
            s(302, Some("http://example.com/a?k=1"), "302 Found"),
        ),
        ("/r/noargs/a?k=1", &[], s(200, None, "backend GET /x/a")),
        (
            "/r/args/a?k=1",
            &[],
            s(200, None, "backend GET /x/a?b=2&k=1"),
        ),
        (
            "/r/redirargs/a?k=1",
            &[],
            s(302, Some("http://localhost/z/a?b=2&k=1"), "302 Found"),
        ),
        ("/r/other", &[], s(200, None, "backend GET /r/other")),
        ("/set?q=7", &[], s(200, None, "a=v-7 uri=/set args=q=7")),
        ("/if?m=yes", &[], s(200, None, "matched")),
        ("/if?m=AB", &[], s(200, None, "re A B")),
        ("/if?m=z", &[], s(201, None, "no x")),
        ("/if?m=x", &[], s(200, None, "fallthrough")),
        ("/if?m=x&e=1", &[], s(202, None, "e set")),
        ("/cap/42/tail", &[], s(200, None, "id=42 rest=tail")),
        ("/ifconf?p=1", &[], s(200, None, "no p")),
        (
            "/ifproxy?p=1",
            &[],
            s(200, None, "backend GET /ifproxy?p=1"),
        ),
        ("/loop", &[], s(500, None, "500 Internal Server Error")),
        ("/brk", &[], s(404, None, "404 Not Found")),
        ("/brk2", &[], s(404, None, "404 Not Found")),
        (
            "/uri?k=1",
            &[],
            s(200, None, "backend GET /x/rewritten?k=1"),
        ),
        ("/pp/tail?k=1", &[], s(200, None, "backend GET /z/tail")),
        ("/ppv?k=1", &[], s(200, None, "backend GET /ppv?k=1")),
        ("/ppd?h=app", &[], s(200, None, "backend GET /ppd?h=app")),
        (
            "/ppd?h=unknown.example",
            &[],
            s(502, None, "502 Bad Gateway"),
        ),
        (
            "/n?k=1",
            &[("host", "blue.example.test")],
            s(200, None, "backend GET /blue/n?k=1"),
        ),
    ];
    for (path, headers, want) in &cases {
        let r = request(p.addr, path, headers).await;
        assert_eq!(&summary(&r, p.addr.port()), want, "{path}");
    }
    let Some(nginx) = Nginx::start(&http) else {
        return;
    };
    for (path, headers, _) in &cases {
        let ours = request(p.addr, path, headers).await;
        let theirs = request(nginx.addr, path, headers).await;
        assert_eq!(
            summary(&ours, p.addr.port()),
            summary(&theirs, nginx.addr.port()),
            "{path}: ours vs nginx\n{}",
            nginx.error_log()
        );
    }
}
