//! `absolute_redirect`, `server_name_in_redirect` and `port_in_redirect`: how
//! the redirects the proxy writes itself spell their `Location`, against the
//! live proxy and nginx itself when it is installed.

mod common;

use common::nginx::Nginx;
use common::{get, start_proxy, Backend};

/// The inside of `http { }`; `LISTEN` and `BACKEND` are filled in.
const HTTP: &str = r#"
server {
    listen LISTEN;
    server_name main.test alias.test;
    location /abs { return 301 /to; }
    location /rel { absolute_redirect off; return 301 /to?a=1; }
    location /noport { port_in_redirect off; return 302 /to; }
    location /name { server_name_in_redirect on; return 302 /to; }
    location /full { absolute_redirect off; return 302 http://elsewhere.test/x; }
    location /dir/ { absolute_redirect off; proxy_pass http://BACKEND; }
    location /slash/ { proxy_pass http://BACKEND; }
}
"#;

/// (path, `Location` with the server's port written `PORT`).
const CASES: &[(&str, &str)] = &[
    ("/abs", "http://other.test:PORT/to"),
    ("/rel", "/to?a=1"),
    ("/noport", "http://other.test/to"),
    ("/name", "http://main.test:PORT/to"),
    ("/full", "http://elsewhere.test/x"),
    ("/dir", "/dir/"),
    ("/slash", "http://other.test:PORT/slash/"),
];

async fn locations(addr: std::net::SocketAddr) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for (path, _) in CASES {
        let r = get(addr, path, &[("host", "other.test")]).await;
        assert!((301..=302).contains(&r.status), "{path}: {}", r.status);
        let location = r.header("location").unwrap_or_default();
        let port = format!(":{}", addr.port());
        seen.push((path.to_string(), location.replace(&port, ":PORT")));
    }
    seen
}

#[tokio::test]
async fn redirects_are_spelled_as_the_three_directives_say_as_nginx() {
    let backend = Backend::start("b");
    let body = HTTP.replace("BACKEND", &backend.peer());
    let proxy = start_proxy(&format!(
        "http {{ {} }}",
        body.replace("LISTEN", "127.0.0.1:0")
    ));
    let want: Vec<(String, String)> = CASES
        .iter()
        .map(|(p, l)| (p.to_string(), l.to_string()))
        .collect();
    assert_eq!(locations(proxy.addr).await, want, "proxy");
    if let Some(nginx) = Nginx::start(&body) {
        assert_eq!(locations(nginx.addr).await, want, "nginx");
    }
}

#[test]
fn the_three_directives_take_on_or_off_once_per_level() {
    for (text, want) in [
        ("absolute_redirect maybe;", "invalid value \"maybe\" in \"absolute_redirect\" directive, it must be \"on\" or \"off\""),
        ("port_in_redirect off; port_in_redirect on;", "\"port_in_redirect\" directive is duplicate"),
        ("server_name_in_redirect;", "invalid number of arguments in \"server_name_in_redirect\" directive"),
    ] {
        let src = format!("http {{ server {{ location / {{ {text} }} }} }}");
        let e = sticky_proxy::config::load_str(&src, std::path::Path::new("/x.conf"))
            .expect_err("refused");
        assert_eq!(e.message, want, "{text}");
    }
}
