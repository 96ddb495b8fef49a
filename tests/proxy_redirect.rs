//! `proxy_redirect` and `proxy_cookie_domain`/`proxy_cookie_path` against the
//! live proxy, compared with nginx itself when it is installed; the sticky
//! cookie the proxy inserts is never rewritten; `proxy_cache*` is refused.

mod common;

use common::*;

fn locations(upstream: &str) -> String {
    format!(
        "location /one/ {{ proxy_pass {upstream}/two/; }}
         location /plain/ {{ proxy_pass {upstream}; }}
         location /off/ {{ proxy_pass {upstream}/two/; proxy_redirect off; }}
         location /rules/ {{
            proxy_pass {upstream};
            proxy_redirect ~^http://([a-z]+)\\.internal/(.*)$ https://$1.example.com/$2;
            proxy_redirect http://old.test/ http://$host/new/;
            proxy_cookie_domain backend.local $host;
            proxy_cookie_domain ~\\.(?P<d>[a-z]+)\\.corp$ $1.example;
            proxy_cookie_path /app/ /;
         }}
         location /flags/ {{
            proxy_pass {upstream};
            proxy_cookie_path /app/ /;
            proxy_cookie_flags a secure httponly samesite=strict;
            proxy_cookie_flags ~^b nosecure nohttponly nosamesite;
            proxy_cookie_flags c samesite=lax;
         }}"
    )
}

/// (path, backend's Location or Set-Cookie) -> what the client sees.
async fn run(addr: std::net::SocketAddr, upstream_host: &str) -> Vec<String> {
    let mut out = Vec::new();
    let loc = |path: &str, location: String| (path.to_string(), location);
    let cases = [
        loc("/one/a", format!("http://{upstream_host}/two/b?c=d")),
        loc("/one/a", format!("http://{upstream_host}/three/")),
        loc("/plain/x", format!("http://{upstream_host}/plain/y")),
        loc("/off/a", format!("http://{upstream_host}/two/b")),
        loc("/rules/r", "http://shop.internal/cart".to_string()),
        loc("/rules/r", "http://old.test/page".to_string()),
        loc("/rules/r", "/relative".to_string()),
    ];
    for (path, location) in cases {
        let r = get(
            addr,
            &path,
            &[("x-location", &location), ("host", "front.test")],
        )
        .await;
        out.push(r.header("location").unwrap_or_default());
    }
    let r = get(
        addr,
        "/one/refresh",
        &[
            ("x-refresh", &format!("3; url=http://{upstream_host}/two/z")),
            ("host", "front.test"),
        ],
    )
    .await;
    out.push(r.header("refresh").unwrap_or_default());
    for cookie in [
        "a=1; Domain=backend.local; Path=/app/x",
        "b=2; domain=.shop.corp; path=/else",
        "c=3; Path=/app/",
    ] {
        let r = get(
            addr,
            "/rules/c",
            &[("x-set-cookie", cookie), ("host", "front.test")],
        )
        .await;
        out.extend(r.set_cookies());
    }
    for cookie in [
        "a=1; Path=/app/",
        "b1=2; Secure; HttpOnly; SameSite=None; Path=/",
        "c=3; SameSite=Strict; secure",
        "a=4; HTTPONLY",
        "d=5",
    ] {
        let r = get(addr, "/flags/c", &[("x-set-cookie", cookie)]).await;
        out.extend(r.set_cookies());
    }
    out
}

#[tokio::test]
async fn proxy_redirect_and_cookie_rewrites_match_nginx() {
    let b = Backend::start("a");
    let text = format!(
        "events {{}}\nhttp {{\n upstream app {{ server {}; }}\n server {{ listen 127.0.0.1:0; {} }}\n}}\n",
        b.peer(),
        locations("http://app")
    );
    let p = start_proxy(&text);
    let ours = run(p.addr, "app").await;
    assert_eq!(
        ours,
        [
            "/one/b?c=d",
            "http://app/three/",
            "/plain/y",
            "http://app/two/b",
            "https://shop.example.com/cart",
            "http://front.test/new/page",
            "/relative",
            "3; url=/one/z",
            "a=1; Domain=front.test; Path=/x",
            "b=2; domain=shop.example; path=/else",
            "c=3; Path=/",
            "a=1; Path=/; Secure; HttpOnly; SameSite=Strict",
            "b1=2; Path=/",
            "c=3; SameSite=Lax; secure",
            "a=4; HTTPONLY; Secure; SameSite=Strict",
            "d=5",
        ]
    );
    if let Some(n) = common::nginx::Nginx::start(&format!(
        "upstream app {{ server {}; }}\n server {{ listen LISTEN; {} }}",
        b.peer(),
        locations("http://app")
    )) {
        // nginx then makes a Location it rewrote to a relative URL absolute
        // (`absolute_redirect`); the proxy leaves it relative (a documented
        // difference): compare without that prefix.
        let prefix = format!("http://front.test:{}", n.addr.port());
        let theirs: Vec<String> = run(n.addr, "app")
            .await
            .into_iter()
            .map(|v| v.strip_prefix(&prefix).map_or(v.clone(), str::to_string))
            .collect();
        assert_eq!(theirs, ours, "as nginx");
    }
}

#[tokio::test]
async fn the_inserted_sticky_cookie_is_never_rewritten() {
    let b = Backend::start("a");
    let text = format!(
        "events {{}}\nhttp {{\n upstream app {{ server {} id=a; session_sticky cookie=route hash=plain path=/app/ domain=backend.local; }}\n\
         server {{ listen 127.0.0.1:0; location / {{ proxy_pass http://app;
           proxy_cookie_path /app/ /; proxy_cookie_domain backend.local example.com; }} }}\n}}\n",
        b.peer()
    );
    let p = start_proxy(&text);
    let r = get(
        p.addr,
        "/",
        &[("x-set-cookie", "own=1; Path=/app/; Domain=backend.local")],
    )
    .await;
    let cookies = r.set_cookies();
    assert!(
        cookies.contains(&"own=1; Path=/; Domain=example.com".to_string()),
        "{cookies:?}"
    );
    let sticky = cookies
        .iter()
        .find(|c| c.starts_with("route="))
        .expect("sticky cookie");
    assert!(
        sticky.contains("Path=/app/") && sticky.contains("Domain=backend.local"),
        "{sticky}"
    );
}

#[test]
fn proxy_cache_is_refused_clearly() {
    let e = sticky_proxy::config::load_str(
        "http { proxy_cache_path /tmp/x keys_zone=z:1m; server { } }",
        std::path::Path::new("/t.conf"),
    )
    .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "\"proxy_cache_path\" is not supported: the proxy has no response cache in /t.conf:1"
    );
}

#[tokio::test]
async fn proxy_method_headers_and_body_shape_the_upstream_request() {
    let b = Backend::start("a");
    let text = format!(
        "events {{}}\nhttp {{\n upstream app {{ server {}; }}\n server {{ listen 127.0.0.1:0;
           location /m {{ proxy_method POST; proxy_pass http://app; }}
           location /nohdr {{ proxy_pass_request_headers off; proxy_set_header X-Only yes;
                              proxy_pass http://app; }}
           location /nobody {{ proxy_pass_request_body off; proxy_pass http://app; }}
           location /setbody {{ proxy_set_body \"k=$arg_v\"; proxy_pass http://app; }}
         }}\n}}\n",
        b.peer()
    );
    let p = start_proxy(&text);
    let r = get(p.addr, "/m", &[]).await;
    assert_eq!(r.seen_request_line().as_deref(), Some("POST /m"));
    let r = get(p.addr, "/nohdr", &[("x-test", "1")]).await;
    assert!(r.seen("x-test").is_empty(), "{}", r.text());
    assert_eq!(r.seen("x-only"), ["yes"]);
    assert_eq!(r.seen("host"), ["app"]);
    let mut c = Client::connect(p.addr).await;
    let r = c.send("POST", "/nobody", &[], full("hello")).await.unwrap();
    assert!(
        !r.text().contains("body 5") && r.seen("content-length").is_empty(),
        "{}",
        r.text()
    );
    let r = c
        .send("POST", "/setbody?v=abc", &[], full("hello"))
        .await
        .unwrap();
    assert!(r.text().contains("body 5"), "{}", r.text());
    assert_eq!(r.seen("content-length"), ["5"]);
    let again = c.get("/m", &[]).await;
    assert_eq!(again.status, 200, "the connection still serves requests");
}
