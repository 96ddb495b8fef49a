//! TLS towards the backends (issue 15): `proxy_pass https://` to HTTPS
//! backends made at test time (rcgen certificates, rustls servers that record
//! each handshake), `proxy_ssl_verify` and its 502 / next upstream,
//! `proxy_ssl_server_name` (SNI only when on), `proxy_ssl_certificate`
//! (mutual TLS), keep-alive reuse of TLS connections, plain and TLS
//! connections to one address kept apart, session reuse.

mod common;

use common::pki::Pki;
use common::{get, start_proxy, Backend};

/// An HTTPS backend whose certificate (signed by `pki`'s CA) names
/// `backend.test`; with `mtls`, it requires a client certificate of the CA.
fn https_backend(pki: &Pki, name: &str, mtls: bool) -> Backend {
    pki.issue("backend", &["backend.test"], false);
    Backend::start_tls(name, pki.server_config("backend", mtls))
}

fn proxy(upstream: &str, locations: &str) -> common::TestProxy {
    start_proxy(&format!(
        "http {{ {upstream} server {{ listen 127.0.0.1:0; {locations} }} }}"
    ))
}

fn snis(backend: &Backend) -> Vec<Option<String>> {
    let seen = backend.handshakes.lock().unwrap();
    seen.iter().map(|h| h.sni.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_https_upstream_answers_and_is_reused_over_one_handshake() {
    let pki = Pki::new("up-verified");
    let backend = https_backend(&pki, "tls", false);
    let proxy = proxy(
        &format!(
            "upstream tls_up {{ server {}; keepalive 4; }}",
            backend.peer()
        ),
        &format!(
            "location / {{ proxy_pass https://tls_up; proxy_ssl_verify on;
                proxy_ssl_trusted_certificate {ca}; proxy_ssl_name backend.test; }}",
            ca = pki.path("ca.pem")
        ),
    );
    for i in 0..5 {
        let r = get(proxy.addr, &format!("/n{i}"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.backend().as_deref(), Some("tls"));
        assert!(r.text().contains(&format!("GET /n{i}\n")), "{}", r.text());
    }
    assert_eq!(backend.hits(), 5);
    assert_eq!(
        backend.handshakes.lock().unwrap().len(),
        1,
        "five requests over one kept-alive TLS connection"
    );
    assert_eq!(
        snis(&backend),
        [None],
        "no SNI: proxy_ssl_server_name is off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_verification_is_a_502_and_the_next_upstream_is_tried() {
    let pki = Pki::new("up-refused");
    let other = Pki::new("up-refused-other");
    // Signed by a CA the proxy does not trust.
    other.issue("backend", &["backend.test"], false);
    let stranger = Backend::start_tls("stranger", other.server_config("backend", false));
    let good = https_backend(&pki, "good", false);
    let verify = format!(
        "proxy_ssl_verify on; proxy_ssl_trusted_certificate {ca}; proxy_ssl_name backend.test;",
        ca = pki.path("ca.pem")
    );
    let proxy = proxy(
        &format!(
            "upstream alone {{ server {s}; }}
             upstream both {{ server {s} max_fails=1 fail_timeout=60s; server {g}; }}",
            s = stranger.peer(),
            g = good.peer()
        ),
        &format!(
            "location /alone {{ proxy_pass https://alone; {verify} }}
             location /both {{ proxy_pass https://both; {verify} }}
             location /lax {{ proxy_pass https://alone; }}"
        ),
    );
    let r = get(proxy.addr, "/alone", &[]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        stranger.hits(),
        0,
        "no request goes over an unverified connection"
    );
    // The refused peer counts as failed: the next one answers, and then the
    // failed one is left alone for fail_timeout.
    for _ in 0..4 {
        let r = get(proxy.addr, "/both", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend().as_deref(), Some("good"));
    }
    let tried = stranger.conns.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        tried, 2,
        "one try from /alone, one from /both, then max_fails"
    );
    // Without proxy_ssl_verify (nginx's default) the same backend is used.
    let r = get(proxy.addr, "/lax", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.backend().as_deref(), Some("stranger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_is_sent_only_with_proxy_ssl_server_name_on() {
    let pki = Pki::new("up-sni");
    let backend = https_backend(&pki, "sni", false);
    let proxy = proxy(
        &format!("upstream app.internal {{ server {}; }}", backend.peer()),
        "location /off { proxy_pass https://app.internal; }
         location /on { proxy_pass https://app.internal; proxy_ssl_server_name on; }
         location /named { proxy_pass https://app.internal; proxy_ssl_server_name on;
                           proxy_ssl_name $http_x_name.example; }",
    );
    assert_eq!(get(proxy.addr, "/off", &[]).await.status, 200);
    assert_eq!(get(proxy.addr, "/on", &[]).await.status, 200);
    let r = get(proxy.addr, "/named", &[("x-name", "svc")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        snis(&backend),
        [
            None,
            Some("app.internal".to_string()),
            Some("svc.example".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_ssl_certificate_authenticates_the_proxy_to_the_backend() {
    let pki = Pki::new("up-mtls");
    let backend = https_backend(&pki, "mtls", true);
    pki.issue("proxy-client", &["proxy.test"], false);
    let proxy = proxy(
        &format!("upstream m {{ server {}; }}", backend.peer()),
        &format!(
            "location /with {{ proxy_pass https://m; proxy_ssl_certificate {c};
                 proxy_ssl_certificate_key {k}; }}
             location /without {{ proxy_pass https://m; }}",
            c = pki.path("proxy-client.pem"),
            k = pki.path("proxy-client.key")
        ),
    );
    let r = get(proxy.addr, "/with", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend().as_deref(), Some("mtls"));
    let r = get(proxy.addr, "/without", &[]).await;
    assert_eq!(r.status, 502);
    let seen = backend.handshakes.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].client_cert);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_tls_connections_to_one_address_never_mix() {
    let pki = Pki::new("up-mix");
    let backend = https_backend(&pki, "mix", false);
    // One upstream reached both ways: plain requests to an HTTPS port fail
    // (400 from the TLS server is not HTTP: a bad header), TLS ones succeed,
    // and neither kind of connection is handed to the other.
    let proxy = proxy(
        &format!("upstream u {{ server {}; keepalive 8; }}", backend.peer()),
        "location /tls { proxy_pass https://u; }
         location /tls2 { proxy_pass https://u; proxy_ssl_server_name on; }
         location /plain { proxy_pass http://u; proxy_next_upstream off; }",
    );
    for _ in 0..3 {
        assert_eq!(get(proxy.addr, "/tls", &[]).await.status, 200);
        assert_ne!(get(proxy.addr, "/plain", &[]).await.status, 200);
        assert_eq!(get(proxy.addr, "/tls2", &[]).await.status, 200);
    }
    assert_eq!(backend.hits(), 6);
    let seen = snis(&backend);
    assert_eq!(
        seen,
        [None, Some("u".to_string())],
        "one TLS connection per kind (settings and name), each reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_resumed_unless_proxy_ssl_session_reuse_is_off() {
    let pki = Pki::new("up-resume");
    let backend = https_backend(&pki, "resume", false);
    // No keepalive: every request is a new connection.
    let proxy = proxy(
        &format!("upstream r {{ server {}; }}", backend.peer()),
        "location /reuse { proxy_pass https://r; }
         location /fresh { proxy_pass https://r; proxy_ssl_session_reuse off; }",
    );
    for path in ["/reuse", "/reuse", "/reuse", "/fresh", "/fresh"] {
        assert_eq!(get(proxy.addr, path, &[]).await.status, 200);
    }
    let resumed: Vec<bool> = backend
        .handshakes
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.resumed)
        .collect();
    assert_eq!(resumed, [false, true, true, false, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rereads_the_backend_trust_and_a_bad_file_keeps_the_old_config() {
    let pki = Pki::new("up-reload");
    let other = Pki::new("up-reload-other");
    let backend = https_backend(&pki, "reloaded", false);
    let trusted = pki.dir.join("trusted.pem");
    std::fs::copy(pki.dir.join("ca.pem"), &trusted).unwrap();
    let text = format!(
        "http {{ upstream r {{ server {peer}; keepalive 4; }}
           server {{ listen 127.0.0.1:0;
             location / {{ proxy_pass https://r; proxy_ssl_verify on;
               proxy_ssl_trusted_certificate {ca}; proxy_ssl_name backend.test; }} }} }}",
        peer = backend.peer(),
        ca = trusted.display()
    );
    let mut proxy = start_proxy(&text);
    assert_eq!(get(proxy.addr, "/", &[]).await.status, 200);
    // Another CA in the file: the reload reads it, and the backend's
    // certificate (kept-alive connection or not) is no longer trusted.
    std::fs::copy(other.dir.join("ca.pem"), &trusted).unwrap();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test.conf");
    let (next, _) = sticky_proxy::config::load_str(&text, &file).expect("reload config");
    proxy.running.reload(next).expect("reload");
    assert_eq!(get(proxy.addr, "/", &[]).await.status, 502);
    // A file that holds no certificate fails the load with nginx's message.
    std::fs::write(&trusted, "not a certificate\n").unwrap();
    let err = sticky_proxy::config::load_str(&text, &file).expect_err("bad CA file refused");
    assert!(
        err.to_string().contains(&format!(
            "cannot load certificate \"{}\"",
            trusted.display()
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_hello_check_marks_a_backend_that_speaks_no_tls_down() {
    let pki = Pki::new("up-hello");
    let tls = https_backend(&pki, "tls", false);
    let plain = Backend::start("plain");
    let proxy = start_proxy(&format!(
        "http {{ upstream u {{ server {t}; server {p};
               check interval=50 rise=1 fall=1 timeout=1000 type=ssl_hello; }}
           server {{ listen 127.0.0.1:0;
             location / {{ proxy_pass https://u; }}
             location /status {{ check_status; }} }} }}",
        t = tls.peer(),
        p = plain.peer()
    ));
    let state = |text: &str, peer: &str| {
        text.lines()
            .find(|l| l.split(',').nth(2) == Some(peer))
            .and_then(|l| l.split(',').nth(3).map(str::to_string))
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let page = get(proxy.addr, "/status?format=csv", &[]).await.text();
        if state(&page, &tls.peer()) == "up" && state(&page, &plain.peer()) == "down" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Only the TLS peer takes requests.
    for _ in 0..4 {
        let r = get(proxy.addr, "/", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend().as_deref(), Some("tls"));
    }
}

/// `proxy_pass $url;` (label-studio's idiom): the scheme comes with the
/// variable, so one location reaches a plain and a TLS backend, with the
/// location's `proxy_ssl_*` for the TLS one; a value with no `http://` or
/// `https://` is nginx's 500 ("invalid URL prefix").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variable_scheme_picks_plain_or_tls_per_request() {
    let pki = Pki::new("up-scheme-var");
    let tls = https_backend(&pki, "tls", false);
    let plain = Backend::start("plain");
    let proxy = proxy(
        "",
        &format!(
            r#"location ~ ^/fetch/(https?)/([^/]+)/(.*) {{
                set $url $1://$2/$3;
                proxy_pass $url$is_args$args;
                proxy_ssl_verify on; proxy_ssl_trusted_certificate {ca};
                proxy_ssl_name backend.test;
            }}
            location /bad {{ set $url 127.0.0.1/x; proxy_pass $url; }}"#,
            ca = pki.path("ca.pem")
        ),
    );
    let r = get(
        proxy.addr,
        &format!("/fetch/https/{}/a?q=1", tls.peer()),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend().as_deref(), Some("tls"));
    assert!(r.text().contains("GET /a?q=1\n"), "{}", r.text());
    let r = get(proxy.addr, &format!("/fetch/http/{}/b", plain.peer()), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend().as_deref(), Some("plain"));
    assert!(r.text().contains("GET /b\n"), "{}", r.text());
    assert_eq!(tls.hits(), 1);
    // TLS to the plain backend is refused by it: a 502, never plain text
    // sent as if it were TLS.
    let r = get(proxy.addr, &format!("/fetch/https/{}/c", plain.peer()), &[]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(get(proxy.addr, "/bad", &[]).await.status, 500);
}
