//! Basic forwarding over real sockets: proxy_pass, headers, keep-alive, bodies.

mod common;

use common::*;

fn conf(upstream: &str, extra: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n  upstream app {{\n{upstream}\n  }}\n  server {{\n    listen 127.0.0.1:0;\n{extra}\n  }}\n}}\n"
    )
}

#[tokio::test]
async fn plain_proxy_pass_forwards_request_and_response() {
    let b = Backend::start("a");
    let text = conf(
        &format!("server {};", b.peer()),
        "location / { proxy_pass http://app; }",
    );
    let p = start_proxy(&text);
    let r = get(p.addr, "/hello?x=1", &[("x-test", "yes")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.backend().as_deref(), Some("a"));
    assert_eq!(r.seen_request_line().as_deref(), Some("GET /hello?x=1"));
    assert_eq!(r.seen("x-test"), vec!["yes"]);
    assert_eq!(r.seen("host"), vec!["app"]);
    // The backend's Server header is replaced by ours.
    assert!(r.header("server").unwrap().starts_with("sticky-proxy"));
}
