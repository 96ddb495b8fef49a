//! conf/sticky.conf, as a new user runs it: the curl session of the README, with
//! the demo's fixed ports replaced by free ones.

mod common;

use common::*;

/// The demo file's text with 8080/8081/8082 replaced by free ports.
fn demo_text() -> (String, u16) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/sticky.conf");
    let mut text = std::fs::read_to_string(path).expect("conf/sticky.conf exists");
    let ports: Vec<u16> = (0..3).map(|_| dead_addr().port()).collect();
    for (fixed, free) in ["8080", "8081", "8082"].iter().zip(&ports) {
        text = text.replace(&format!("127.0.0.1:{fixed}"), &format!("127.0.0.1:{free}"));
    }
    (text, ports[0])
}

#[tokio::test]
async fn demo_config_sets_a_cookie_and_the_cookie_pins() {
    let (text, port) = demo_text();
    let p = start_proxy(&text);
    let public = p
        .running
        .addrs()
        .iter()
        .find(|(configured, _)| configured.port() == port)
        .map(|(_, bound)| *bound)
        .expect("public listener");
    // First visit: round robin starts with the 200 backend, which pins.
    let first = get(public, "/", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "Hello, world\n");
    let cookie = first
        .cookie_value("_srv_id")
        .expect("Set-Cookie: _srv_id=...");
    let set = first.set_cookies().pop().expect("cookie");
    assert!(set.contains("; Path=/; Max-Age=3600; Expires="), "{set}");
    // With the cookie: always the same answer, and no new cookie.
    for _ in 0..10 {
        let r = get(public, "/", &[("cookie", &format!("_srv_id={cookie}"))]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "Hello, world\n");
        assert!(r.set_cookies().is_empty());
    }
    // Pinned to the 503 backend: always 503, never a sticky cookie on it.
    let other = sticky_proxy::sticky::sid::md5_sid(
        &text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("server 127.0.0.1:"))
            .nth(1)
            .map(|p| format!("127.0.0.1:{}", p.trim_end_matches(';')))
            .expect("second upstream server"),
    );
    for _ in 0..3 {
        let r = get(public, "/", &[("cookie", &format!("_srv_id={other}"))]).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.text(), "Service unavailable\n");
        assert!(r.set_cookies().is_empty());
    }
}

#[tokio::test]
async fn every_example_config_loads_and_starts() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("conf/examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("conf") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        // Listen on free ports instead of the documented ones.
        let text: String = text
            .lines()
            .map(|l| {
                let t = l.trim_start();
                if t.starts_with("listen ") {
                    "    listen 127.0.0.1:0;".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let file = path.clone();
        let (config, _) = sticky_proxy::config::load_str(&text, &file)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let running = sticky_proxy::server::Proxy::start(config).expect("starts");
        running.shutdown();
        seen += 1;
    }
    assert!(seen >= 5, "one example per mode");
}
