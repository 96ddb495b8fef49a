//! HTTP/2 towards clients (issue 16): h2c with prior knowledge and h2 over
//! TLS (ALPN) through the same Handler as HTTP/1, HTTP/1.1 on the same
//! port, the sticky core over cookie crumbs, limits and GOAWAY.

mod common;

use std::time::Duration;

use common::h2::H2Client;
use common::{empty, Backend};

/// A plain listener with `http2 on` proxying to `backends`.
fn h2c_conf(backends: &[&Backend], extra: &str) -> String {
    let servers: String = backends
        .iter()
        .map(|b| format!("server {}; ", b.peer()))
        .collect();
    format!(
        "events {{}}\nhttp {{\n upstream app {{ {servers} }}\n server {{ listen 127.0.0.1:0; http2 on; {extra}\n  location / {{ proxy_pass http://app; }}\n }}\n}}\n"
    )
}

#[tokio::test]
async fn h2c_get_is_proxied_as_http11_with_authority_as_host() {
    let b = Backend::start("b1");
    let vars = "proxy_set_header X-Host $host; proxy_set_header X-Proto $server_protocol; \
                proxy_set_header X-H2 \"[$http2]\";";
    let proxy = common::start_proxy(&h2c_conf(&[&b], vars));
    let client = H2Client::connect(proxy.addr).await;
    let r = client
        .send("GET", "site.test", "/x?y=1", &[("x-a", "1")], empty())
        .await
        .expect("h2c request");
    assert_eq!(r.status, 200);
    assert_eq!(r.backend().as_deref(), Some("b1"));
    assert_eq!(r.seen_request_line().as_deref(), Some("GET /x?y=1"));
    assert_eq!(r.seen("x-a"), ["1"]);
    assert_eq!(r.seen("x-host"), ["site.test"]);
    assert_eq!(r.seen("x-proto"), ["HTTP/2.0"]);
    assert_eq!(r.seen("x-h2"), ["[h2c]"]);
    assert!(r.header("date").is_some());
}

#[tokio::test]
async fn http11_and_h2c_share_one_port() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], ""));
    let h1 = common::get(proxy.addr, "/one", &[]).await;
    assert_eq!((h1.status, h1.backend().as_deref()), (200, Some("b1")));
    let h2 = H2Client::connect(proxy.addr).await.get("/two", &[]).await;
    assert_eq!((h2.status, h2.backend().as_deref()), (200, Some("b1")));
    // An `Upgrade: h2c` request is an HTTP/1.1 request like any other.
    let raw = common::raw(
        proxy.addr,
        b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        Duration::from_millis(300),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
}

/// How a test reaches the proxy over HTTP/2.
#[derive(Clone)]
enum Via {
    H2c,
    /// TLS with ALPN `h2`, trusting these roots.
    Tls(rustls::RootCertStore),
}

impl Via {
    /// Both transports, with the certificate files for TLS in `dir`.
    fn both(dir: &std::path::Path) -> [Via; 2] {
        [
            Via::H2c,
            Via::Tls(common::h2::self_signed(dir, "site", &["localhost"])),
        ]
    }

    /// The `listen` line of a server speaking HTTP/2 this way.
    fn listen(&self, dir: &std::path::Path) -> String {
        match self {
            Via::H2c => "listen 127.0.0.1:0; http2 on;".to_string(),
            Via::Tls(_) => format!(
                "listen 127.0.0.1:0 ssl; http2 on; ssl_certificate {0}/site.pem; ssl_certificate_key {0}/site.key;",
                dir.display()
            ),
        }
    }

    async fn connect(&self, addr: std::net::SocketAddr) -> H2Client {
        match self {
            Via::H2c => H2Client::connect(addr).await,
            Via::Tls(roots) => H2Client::connect_tls(addr, roots.clone(), "localhost").await,
        }
    }
}

/// A directory for one test's certificate files.
fn cert_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sticky-proxy-h2-{tag}-{}", std::process::id()))
}

/// `common::sticky_conf` with its listener speaking HTTP/2 `via`.
fn sticky_h2(via: &Via, dir: &std::path::Path, sticky: &str, servers: &[String]) -> String {
    common::sticky_conf(sticky, servers).replace("listen 127.0.0.1:0;", &via.listen(dir))
}

fn two() -> (Backend, Backend) {
    (Backend::start("a"), Backend::start("b"))
}

/// The cookie crumbs of a request with the sticky pair `pair` first, in the
/// middle and last, with the one `Cookie` line the backend must see for
/// each (`others` joined around the pair).
fn crumbs(pair: &str) -> Vec<(Vec<String>, String)> {
    let p = pair.to_string();
    vec![
        (
            vec![p.clone(), "x=1".into(), "y=2".into()],
            format!("{p}; x=1; y=2"),
        ),
        (
            vec!["x=1".into(), p.clone(), "y=2".into()],
            format!("x=1; {p}; y=2"),
        ),
        (
            vec!["x=1".into(), "y=2".into(), p.clone()],
            format!("x=1; y=2; {p}"),
        ),
    ]
}

fn cookie_headers(crumbs: &[String]) -> Vec<(&str, &str)> {
    crumbs.iter().map(|c| ("cookie", c.as_str())).collect()
}

#[tokio::test]
async fn insert_mode_pins_whichever_crumb_holds_the_cookie_and_refreshes_maxidle() {
    let dir = cert_dir("insert");
    for via in Via::both(&dir) {
        let (a, b) = two();
        let p = common::start_proxy(&sticky_h2(
            &via,
            &dir,
            "session_sticky cookie=route maxidle=3600",
            &[a.peer(), b.peer()],
        ));
        let client = via.connect(p.addr).await;
        // A new session: the cookie of the backend that answered.
        let r = client.get("/", &[]).await;
        assert_eq!(r.status, 200);
        let who = r.backend().expect("a backend answered");
        let sid = if who == "a" { a.sid() } else { b.sid() };
        let value = r.cookie_value("route").expect("sticky cookie");
        assert!(value.starts_with(&format!("{sid}|")), "{value}");
        // Pinned from any crumb, the cookie refreshed, the backend seeing one line.
        let t = common::now();
        let pair = format!("route={sid}|{}|{}", t - 100, t - 500);
        for (sent, seen) in crumbs(&pair) {
            let r = client.get("/", &cookie_headers(&sent)).await;
            assert_eq!(r.backend().as_deref(), Some(who.as_str()), "{sent:?}");
            assert_eq!(r.seen("cookie"), [seen], "{sent:?}");
            let refreshed = r.cookie_value("route").expect("maxidle refresh");
            let last: i64 = refreshed.split('|').nth(1).unwrap().parse().unwrap();
            assert!((last - common::now()).abs() <= 2, "{refreshed}");
            assert!(
                refreshed.ends_with(&format!("|{}", t - 500)),
                "FIRSTSEEN kept"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn indirect_strips_the_sticky_crumb_wherever_it_is() {
    let dir = cert_dir("indirect");
    for via in Via::both(&dir) {
        let (a, b) = two();
        let p = common::start_proxy(&sticky_h2(
            &via,
            &dir,
            "session_sticky cookie=route option=indirect",
            &[a.peer(), b.peer()],
        ));
        let client = via.connect(p.addr).await;
        let pair = format!("route={}", b.sid());
        for (sent, _) in crumbs(&pair) {
            let r = client.get("/", &cookie_headers(&sent)).await;
            assert_eq!(r.backend().as_deref(), Some("b"), "{sent:?}");
            assert_eq!(r.seen("cookie"), ["x=1; y=2"], "{sent:?}");
        }
        // The sticky crumb alone: no Cookie line at all.
        let r = client.get("/", &[("cookie", &pair)]).await;
        assert_eq!(r.backend().as_deref(), Some("b"));
        assert!(r.seen("cookie").is_empty());
        assert_eq!(a.hits(), 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn prefix_and_rewrite_modes_round_trip_over_http2() {
    let dir = cert_dir("prefix");
    for via in Via::both(&dir) {
        let (a, b) = two();
        let p = common::start_proxy(&sticky_h2(
            &via,
            &dir,
            "session_sticky cookie=JSESSIONID mode=prefix",
            &[a.peer(), b.peer()],
        ));
        let client = via.connect(p.addr).await;
        let r = client
            .get("/", &[("x-set-cookie", "JSESSIONID=abc123; Path=/")])
            .await;
        let who = r.backend().expect("backend");
        let sid = if who == "a" { a.sid() } else { b.sid() };
        assert_eq!(
            r.set_cookies(),
            [format!("JSESSIONID={sid}~abc123; Path=/")]
        );
        let pair = format!("JSESSIONID={sid}~abc123");
        for (sent, _) in crumbs(&pair) {
            let back = client.get("/", &cookie_headers(&sent)).await;
            assert_eq!(back.backend().as_deref(), Some(who.as_str()), "{sent:?}");
            let seen = back.seen("cookie");
            assert_eq!(seen.len(), 1, "{sent:?}");
            assert!(seen[0].contains("JSESSIONID=abc123"), "{seen:?}");
            assert!(!seen[0].contains('~'), "{seen:?}");
        }

        let (c, d) = two();
        let p = common::start_proxy(&sticky_h2(
            &via,
            &dir,
            "session_sticky cookie=SRV mode=rewrite",
            &[c.peer(), d.peer()],
        ));
        let client = via.connect(p.addr).await;
        let r = client
            .get("/", &[("x-set-cookie", "SRV=placeholder; Path=/")])
            .await;
        let who = r.backend().expect("backend");
        let sid = if who == "a" { c.sid() } else { d.sid() };
        assert_eq!(r.set_cookies(), [format!("SRV={sid}; Path=/")]);
        for (sent, seen) in crumbs(&format!("SRV={sid}")) {
            let back = client.get("/", &cookie_headers(&sent)).await;
            assert_eq!(back.backend().as_deref(), Some(who.as_str()), "{sent:?}");
            assert_eq!(back.seen("cookie"), [seen], "{sent:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_dead_pinned_peer_falls_back_on_one_stream_and_the_others_go_on() {
    let dir = cert_dir("fallback");
    for via in Via::both(&dir) {
        let a = Backend::start("a");
        let dead = common::dead_addr();
        let p = common::start_proxy(&sticky_h2(
            &via,
            &dir,
            "session_sticky cookie=route fallback=on",
            &[dead.to_string(), a.peer()],
        ));
        let client = via.connect(p.addr).await;
        let dead_sid = sticky_proxy::sticky::sid::md5_sid(&dead.to_string());
        let r = client
            .get(
                "/",
                &[("cookie", "x=1"), ("cookie", &format!("route={dead_sid}"))],
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend().as_deref(), Some("a"));
        assert_eq!(r.cookie_value("route"), Some(a.sid()));
        // The same connection serves on.
        assert_eq!(client.get("/", &[]).await.backend().as_deref(), Some("a"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn many_concurrent_streams_on_one_connection_are_each_pinned() {
    let dir = cert_dir("streams");
    for via in Via::both(&dir) {
        let (a, b) = two();
        let p = common::start_proxy(&sticky_h2(
            &via,
            &dir,
            "session_sticky cookie=route",
            &[a.peer(), b.peer()],
        ));
        let client = via.connect(p.addr).await;
        let mut tasks = Vec::new();
        for i in 0..60 {
            let (name, sid) = if i % 2 == 0 {
                ("a", a.sid())
            } else {
                ("b", b.sid())
            };
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let cookie = format!("route={sid}");
                // Some wait at the backend, so the streams overlap.
                let r = client
                    .get(
                        &format!("/{i}"),
                        &[("cookie", &cookie), ("x-delay-ms", "20")],
                    )
                    .await;
                (name, i, r)
            }));
        }
        for t in tasks {
            let (name, i, r) = t.await.expect("stream task");
            assert_eq!(r.status, 200, "stream {i}");
            assert_eq!(r.backend().as_deref(), Some(name), "stream {i}");
            assert_eq!(r.seen_request_line(), Some(format!("GET /{i}")));
        }
        assert_eq!((a.hits(), b.hits()), (30, 30));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A body of `n` bytes whose length is not told (no `content-length`).
fn untold(n: u64) -> common::BoxBody {
    use http_body_util::BodyExt;
    common::Counted {
        left: n,
        chunk: bytes::Bytes::from(vec![b'z'; 100]),
        exact: false,
    }
    .boxed()
}

#[tokio::test]
async fn request_bodies_reach_the_backend_with_or_without_a_length() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], "client_max_body_size 1k;"));
    let client = H2Client::connect(proxy.addr).await;
    // With Content-Length: passed on with it.
    let r = client
        .send(
            "POST",
            "h",
            "/len",
            &[("content-length", "300")],
            common::full(vec![b'z'; 300]),
        )
        .await
        .expect("post");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("body 300\n"), "{}", r.text());
    assert_eq!(r.seen("content-length"), ["300"]);
    // Without: chunked to the HTTP/1.1 backend.
    let r = client
        .send("POST", "h", "/chunked", &[], untold(500))
        .await
        .expect("post");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("body 500\n"), "{}", r.text());
    assert_eq!(r.seen("transfer-encoding"), ["chunked"]);
    // client_max_body_size per stream: declared, and streamed past it.
    let r = client
        .send(
            "POST",
            "h",
            "/big",
            &[("content-length", "2000")],
            common::full(vec![b'z'; 2000]),
        )
        .await
        .expect("post");
    assert_eq!(r.status, 413);
    let r = client.send("POST", "h", "/big2", &[], untold(5000)).await;
    match r {
        Ok(r) => assert_eq!(r.status, 413),
        // The stream may be reset once the answer is out.
        Err(e) => assert!(e.to_string().contains("stream"), "{e}"),
    }
    // The connection is still good.
    assert_eq!(client.get("/after", &[]).await.status, 200);
}

#[tokio::test]
async fn response_heads_follow_http2_rules() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], ""));
    let client = H2Client::connect(proxy.addr).await;
    // Each Set-Cookie its own field; hop-by-hop fields never reach the client
    // (the client itself refuses a response carrying one).
    let r = client
        .get(
            "/",
            &[
                ("x-set-cookie", "a=1; Path=/"),
                ("x-set-cookie", "b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT"),
                ("x-resp-header", "Keep-Alive: timeout=5"),
                ("x-resp-header", "X-Kept: yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.set_cookies(),
        ["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT"]
    );
    assert_eq!(r.header("x-kept").as_deref(), Some("yes"));
    for hop in ["connection", "keep-alive", "transfer-encoding", "upgrade"] {
        assert!(r.header(hop).is_none(), "{hop}");
    }
    // HEAD: the length a GET would have, no body.
    let r = client
        .send("HEAD", "h", "/", &[("x-size", "1234")], empty())
        .await
        .expect("head");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("1234"));
    assert!(r.body.is_empty());
    // A large streamed body arrives whole (sliced into http2_chunk_size frames).
    let r = client
        .get("/", &[("x-size", "300000"), ("x-chunked", "1")])
        .await;
    assert_eq!(r.body.len(), 300_000);
    // A 204 has no body and no length.
    let r = client.get("/", &[("x-status", "204")]).await;
    assert_eq!(r.status, 204);
    assert!(r.header("content-length").is_none());
    // TRACE is refused as over HTTP/1.1.
    let r = client
        .send("TRACE", "h", "/", &[], empty())
        .await
        .expect("trace");
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn keepalive_requests_ends_the_connection_with_goaway_after_its_streams() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], "keepalive_requests 3;"));
    let client = H2Client::connect(proxy.addr).await;
    for i in 0..3 {
        assert_eq!(client.get(&format!("/{i}"), &[]).await.status, 200, "{i}");
    }
    assert!(client.ends_within(Duration::from_secs(2)).await);
    assert!(client.send("GET", "h", "/4", &[], empty()).await.is_err());
    assert_eq!(b.hits(), 3);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_keepalive_timeout_but_not_while_a_stream_is_open() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], "keepalive_timeout 1s;"));
    let client = H2Client::connect(proxy.addr).await;
    // A stream longer than the idle timeout keeps the connection open.
    let r = client.get("/slow", &[("x-delay-ms", "1500")]).await;
    assert_eq!(r.status, 200);
    assert!(!client.ends_within(Duration::from_millis(600)).await);
    assert!(client.ends_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn quit_sends_goaway_and_open_streams_finish() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], ""));
    let client = H2Client::connect(proxy.addr).await;
    assert_eq!(client.get("/warm", &[]).await.status, 200);
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.get("/slow", &[("x-delay-ms", "700")]).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.running.begin_quit(Duration::from_secs(10));
    let r = slow.await.expect("slow stream");
    assert_eq!(r.status, 200, "the open stream finished");
    assert!(client.ends_within(Duration::from_secs(3)).await);
}

#[tokio::test]
async fn alpn_offers_h2_for_the_sni_server_with_http2_on_and_keeps_http11() {
    let dir = cert_dir("alpn");
    let roots = common::h2::self_signed(&dir, "site", &["localhost", "one.test", "two.test"]);
    let b = Backend::start("b1");
    let conf = common::h2::ssl_servers_conf(
        &dir,
        &b.peer(),
        &[("one.test", "http2 on;"), ("two.test", "")],
    );
    let proxy = common::start_proxy(&conf);
    // One address: the server the SNI name chooses decides.
    let (on, off) = (proxy.addr, proxy.addr);
    let alpn = |addr, sni: &'static str, offer: &'static [&'static [u8]]| {
        let roots = roots.clone();
        async move {
            let tls = common::h2::tls_connect(addr, roots, sni, offer).await;
            tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
        }
    };
    assert_eq!(
        alpn(on, "one.test", &[b"h2", b"http/1.1"]).await,
        Some(b"h2".to_vec())
    );
    assert_eq!(
        alpn(on, "one.test", &[b"http/1.1"]).await,
        Some(b"http/1.1".to_vec())
    );
    assert_eq!(
        alpn(off, "two.test", &[b"h2", b"http/1.1"]).await,
        Some(b"http/1.1".to_vec())
    );
    let h2 = H2Client::connect_tls(on, roots.clone(), "one.test").await;
    assert_eq!(h2.get("/", &[]).await.backend().as_deref(), Some("b1"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn each_stream_writes_its_access_log_line() {
    let b = Backend::start("b1");
    let dir = cert_dir("log");
    std::fs::create_dir_all(&dir).expect("log dir");
    let log = dir.join("access.log");
    let extra = format!(
        "log_format h2 '$request $status $server_protocol [$http2] $request_length $body_bytes_sent'; access_log {} h2;",
        log.display()
    );
    let proxy = common::start_proxy(&h2c_conf(&[&b], &extra));
    let client = H2Client::connect(proxy.addr).await;
    let r = client.get("/a", &[("x-size", "10")]).await;
    assert_eq!(r.body.len(), 10);
    let r = client
        .send(
            "POST",
            "h",
            "/b",
            &[("content-length", "5")],
            common::full("12345"),
        )
        .await
        .expect("post");
    assert_eq!(r.status, 200);
    let lines = common::read_lines(&log, 2);
    let a: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(
        &a[..6],
        ["GET", "/a", "HTTP/2.0", "200", "HTTP/2.0", "[h2c]"],
        "{}",
        lines[0]
    );
    assert_eq!(a[7], "10", "{}", lines[0]);
    let post: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(
        &post[..4],
        ["POST", "/b", "HTTP/2.0", "200"],
        "{}",
        lines[1]
    );
    // The head as HTTP/1 would spell it, and the body's 5 bytes.
    let length: u64 = post[6].parse().expect("request length");
    assert!(
        length > 5 + "POST /b HTTP/2.0\r\n".len() as u64,
        "{}",
        lines[1]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_client_that_opens_no_stream_is_closed_after_client_header_timeout() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], "client_header_timeout 1s;"));
    let client = H2Client::connect(proxy.addr).await;
    assert!(client.ends_within(Duration::from_secs(3)).await);
}

#[tokio::test]
async fn listen_http2_turns_h2c_on_for_the_address() {
    let b = Backend::start("b1");
    let conf =
        h2c_conf(&[&b], "").replace("listen 127.0.0.1:0; http2 on;", "listen 127.0.0.1:0 http2;");
    let proxy = common::start_proxy(&conf);
    let r = H2Client::connect(proxy.addr).await.get("/", &[]).await;
    assert_eq!(r.backend().as_deref(), Some("b1"));
    // Without it the preface is an HTTP/1 request nginx refuses.
    let off = common::start_proxy(&h2c_conf(&[&b], "").replace(" http2 on;", ""));
    let raw = common::raw(off.addr, h2_preface(), Duration::from_millis(300)).await;
    assert!(raw.starts_with("HTTP/1.1 505"), "{raw}");
}

fn h2_preface() -> &'static [u8] {
    sticky_proxy::downstream::h2::PREFACE
}

/// curl with HTTP/2 support, if this machine has it.
fn curl_with_http2() -> Option<&'static str> {
    let out = std::process::Command::new("curl").arg("-V").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .contains("HTTP2")
        .then_some("curl")
}

/// Runs curl with `args`; its stdout (`-w` output included).
async fn curl(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(&args)
            .output()
            .expect("run curl")
    })
    .await
    .expect("curl task");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn curl_speaks_h2c_with_prior_knowledge_and_h2_over_tls() {
    if curl_with_http2().is_none() {
        eprintln!("skipped: no curl with HTTP/2 on this machine");
        return;
    }
    let dir = cert_dir("curl");
    let [h2c, tls] = Via::both(&dir);
    let b = Backend::start("b1");
    for (via, url, extra) in [
        (h2c, "http", vec!["--http2-prior-knowledge".to_string()]),
        (
            tls,
            "https",
            vec![
                "--http2".to_string(),
                "--cacert".to_string(),
                dir.join("site.pem").display().to_string(),
            ],
        ),
    ] {
        let conf = sticky_h2(&via, &dir, "session_sticky cookie=route", &[b.peer()]);
        let proxy = common::start_proxy(&conf);
        let mut args = vec![
            "-sS".to_string(),
            "-o".to_string(),
            "/dev/null".to_string(),
            "-w".to_string(),
            "%{http_version} %{http_code}".to_string(),
        ];
        args.extend(extra);
        args.push(format!("{url}://localhost:{}/", proxy.addr.port()));
        assert_eq!(curl(args).await, "2 200", "{url}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn after_a_reload_the_next_stream_is_the_connection_s_last() {
    let b = Backend::start("b1");
    let text = h2c_conf(&[&b], "");
    let mut proxy = common::start_proxy(&text);
    let client = H2Client::connect(proxy.addr).await;
    assert_eq!(client.get("/1", &[]).await.status, 200);
    assert_eq!(client.get("/2", &[]).await.status, 200);
    assert!(!client.ends_within(Duration::from_millis(200)).await);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test.conf");
    let (config, _) = sticky_proxy::config::load_str(&text, &file).expect("config");
    proxy.running.reload(config).expect("reload");
    // Served with the new configuration, then GOAWAY.
    assert_eq!(client.get("/3", &[]).await.status, 200);
    assert!(client.ends_within(Duration::from_secs(2)).await);
    let fresh = H2Client::connect(proxy.addr).await;
    assert_eq!(fresh.get("/4", &[]).await.status, 200);
}

#[tokio::test]
async fn a_failing_backend_fails_its_stream_only() {
    let b = Backend::start("b1");
    let dead = common::dead_addr();
    let conf = format!(
        "events {{}}\nhttp {{\n server {{ listen 127.0.0.1:0; http2 on;\n  \
         location /dead {{ proxy_pass http://{dead}; }}\n  \
         location / {{ proxy_pass http://{}; }}\n }}\n}}\n",
        b.peer()
    );
    let proxy = common::start_proxy(&conf);
    let client = H2Client::connect(proxy.addr).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = client.clone();
        let path = if i % 4 == 0 { "/dead" } else { "/ok" };
        tasks.push(tokio::spawn(async move {
            (path, client.get(path, &[("x-delay-ms", "30")]).await.status)
        }));
    }
    for t in tasks {
        let (path, status) = t.await.expect("stream");
        assert_eq!(status, if path == "/dead" { 502 } else { 200 }, "{path}");
    }
    assert!(!client.ends_within(Duration::from_millis(100)).await);
    assert_eq!(client.get("/again", &[]).await.status, 200);
}

#[tokio::test]
async fn a_stream_whose_client_takes_nothing_is_reset_after_send_timeout() {
    let b = Backend::start("b1");
    let proxy = common::start_proxy(&h2c_conf(&[&b], "send_timeout 1s;"));
    let client = H2Client::connect(proxy.addr).await;
    // Far more than the client's window (hyper's client: 2 MiB a stream),
    // never read.
    let stuck = client
        .send_raw("GET", "h", "/big", &[("x-size", "20000000")], empty())
        .await
        .expect("response head");
    assert_eq!(stuck.status(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The stream was reset: its body ends in an error, short.
    use http_body_util::BodyExt;
    let read = tokio::time::timeout(Duration::from_secs(5), stuck.into_body().collect())
        .await
        .expect("the body ends");
    assert!(read.is_err(), "the stream was reset");
    // The connection serves on.
    assert_eq!(client.get("/after", &[]).await.status, 200);
}

/// `return 444`: nginx answers nothing. Over HTTP/1.1 the connection closes
/// with no byte sent; over HTTP/2 the stream is reset and the connection
/// serves on.
#[tokio::test]
async fn return_444_answers_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = Backend::start("b1");
    let extra = "location /drop { return 444; } \
                 location /maybe { if ($arg_drop) { return 444; } proxy_pass http://app; } \
                 location /said { return 444 \"said\"; } \
                 location /paged { error_page 444 = /said; return 444; }";
    let proxy = common::start_proxy(&h2c_conf(&[&b], extra));
    // No `error_page` applies to 444, as in nginx.
    for target in ["/drop", "/maybe?drop=1", "/paged"] {
        let mut c = tokio::net::TcpStream::connect(proxy.addr)
            .await
            .expect("connect");
        let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        c.write_all(request.as_bytes()).await.expect("write");
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got)).await;
        assert!(
            matches!(read, Ok(Ok(0))),
            "{target}: closed at once, {read:?}"
        );
        assert!(
            got.is_empty(),
            "{target}: {}",
            String::from_utf8_lossy(&got)
        );
    }
    // With a text, nginx answers it.
    let said = common::raw(
        proxy.addr,
        b"GET /said HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        said.starts_with("HTTP/1.1 444 \r\n") && said.ends_with("said"),
        "{said}"
    );
    let client = H2Client::connect(proxy.addr).await;
    let dropped = client.send("GET", "localhost", "/drop", &[], empty()).await;
    assert!(
        dropped.is_err(),
        "the stream is reset: {:?}",
        dropped.map(|r| r.status)
    );
    let served = client.get("/maybe", &[]).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.backend().as_deref(), Some("b1"));
}
