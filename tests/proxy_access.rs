//! Access and client limits against the live proxy: `allow`/`deny` with
//! nginx's inheritance, realip, `auth_basic` with every htpasswd format,
//! `satisfy`, `limit_req` bursts and delays, `limit_conn`, `stub_status`.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn conf(b: &Backend, http: &str, server: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n upstream app {{ server {}; }}\n{http}\n server {{\n  listen 127.0.0.1:0;\n{server}\n }}\n}}\n",
        b.peer()
    )
}

#[tokio::test]
async fn allow_and_deny_first_match_wins_with_nginx_inheritance() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(
        &b,
        "",
        "deny all;
         location /open { allow 127.0.0.1; deny all; proxy_pass http://app; }
         location /v6only { allow ::1; deny all; proxy_pass http://app; }
         location /closed { proxy_pass http://app; }
         location /net { deny 127.0.0.2; allow 127.0.0.0/8; proxy_pass http://app; }
         location /ret { return 200 \"returned before access\"; }
         location /bad { deny 127.0.0.1; allow all; proxy_pass http://app; }",
    ));
    let cases: &[(&str, u16)] = &[
        ("/open", 200),
        ("/v6only", 403),
        ("/closed", 403),
        ("/net", 200),
        ("/bad", 403),
        ("/ret", 200),
        ("/elsewhere", 403),
    ];
    for (path, want) in cases {
        let r = get(p.addr, path, &[]).await;
        assert_eq!(r.status, *want, "{path}: {}", r.text());
        if *want == 403 {
            assert!(r.text().contains("403 Forbidden"), "{}", r.text());
        }
    }
}

#[tokio::test]
async fn realip_changes_remote_addr_for_rules_headers_and_variables() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(
        &b,
        "set_real_ip_from 127.0.0.0/8;
         real_ip_header X-Forwarded-For;",
        "location / {
            deny 203.0.113.9;
            allow all;
            proxy_set_header X-Addr $remote_addr;
            proxy_set_header X-Conn $realip_remote_addr;
            proxy_set_header X-Fwd $proxy_add_x_forwarded_for;
            proxy_pass http://app;
         }
         location /rec {
            real_ip_recursive on;
            proxy_set_header X-Addr $remote_addr;
            proxy_pass http://app;
         }
         location /xri {
            real_ip_header X-Real-IP;
            proxy_set_header X-Addr $remote_addr;
            proxy_pass http://app;
         }",
    ));
    let r = get(p.addr, "/", &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(r.status, 403, "denied by its real address");
    let r = get(
        p.addr,
        "/",
        &[("x-forwarded-for", "198.51.100.1, 10.0.0.1")],
    )
    .await;
    assert_eq!(
        r.seen("x-addr"),
        ["10.0.0.1"],
        "not recursive: the last one"
    );
    assert_eq!(r.seen("x-conn"), ["127.0.0.1"]);
    assert_eq!(r.seen("x-fwd"), ["198.51.100.1, 10.0.0.1, 10.0.0.1"]);
    let r = get(
        p.addr,
        "/rec",
        &[("x-forwarded-for", "198.51.100.1, 127.0.0.9")],
    )
    .await;
    assert_eq!(
        r.seen("x-addr"),
        ["198.51.100.1"],
        "recursive skips trusted hops"
    );
    let r = get(p.addr, "/xri", &[("x-real-ip", "192.0.2.44")]).await;
    assert_eq!(r.seen("x-addr"), ["192.0.2.44"]);
    let r = get(p.addr, "/xri", &[("x-real-ip", "not an address")]).await;
    assert_eq!(r.seen("x-addr"), ["127.0.0.1"]);
}

fn basic(user: &str, password: &str) -> String {
    // Standard base64 of "user:password" (test-only encoder).
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[tokio::test]
async fn auth_basic_checks_every_htpasswd_format_and_satisfy() {
    let b = Backend::start("a");
    let dir = std::env::temp_dir().join(format!("proxy-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("htpasswd");
    std::fs::write(
        &file,
        "# users\n\
         plain:{PLAIN}secret\n\
         sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n\
         ssha:{SSHA}UgCJjM+VJJYduihDuk0aPpDtY9RzYWx0eQ==\n\
         apr:$apr1$xxxxxxxx$UsjyEfxdeTXovFtZc38sn/:Apache MD5\n\
         md5:$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/\n\
         s256:$5$saltstring$C3o4O1TC6aRHF4FI.QSZMXtHbaj2gSXr4sUc/3NcUi.\n\
         s512:$6$saltstring$AIsRs/Ee56G/tC8MEHhvReZTfx8u3rXXMl6eYrjCG9ibix19DxoMBLogdTET5Ukw9Sf7eZTITsuk0Ry5qulYz.\n\
         bc:$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n\
         des:abJnggxhB/yWI\n",
    )
    .unwrap();
    let p = start_proxy(&conf(
        &b,
        "",
        &format!(
            "auth_basic \"Area 51\";
             auth_basic_user_file {};
             location / {{ proxy_pass http://app; }}
             location /public {{ auth_basic off; proxy_pass http://app; }}
             location /any {{ satisfy any; allow 127.0.0.1; deny all; proxy_pass http://app; }}
             location /anyno {{ satisfy any; deny all; proxy_pass http://app; }}
             location /all {{ deny all; proxy_pass http://app; }}
             location /missing {{ auth_basic_user_file {}/nope; proxy_pass http://app; }}",
            file.display(),
            dir.display()
        ),
    ));
    let r = get(p.addr, "/", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Basic realm=\"Area 51\"")
    );
    let good: &[(&str, &str)] = &[
        ("plain", "secret"),
        ("sha", "secret"),
        ("ssha", "secret"),
        ("apr", "hello"),
        ("md5", "password"),
        ("s256", "secret"),
        ("s512", "secret"),
        ("bc", "U*U"),
    ];
    for (user, pw) in good {
        let r = get(p.addr, "/", &[("authorization", &basic(user, pw))]).await;
        assert_eq!(r.status, 200, "{user}");
        assert_eq!(r.backend().as_deref(), Some("a"));
        let r = get(p.addr, "/", &[("authorization", &basic(user, "wrong"))]).await;
        assert_eq!(r.status, 401, "{user} with a wrong password");
    }
    let r = get(
        p.addr,
        "/",
        &[("authorization", &basic("nobody", "secret"))],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = get(p.addr, "/", &[("authorization", "Basic !!!")]).await;
    assert_eq!(r.status, 401, "malformed credentials");
    let r = get(p.addr, "/", &[("authorization", &basic("des", "secret"))]).await;
    assert_eq!(r.status, 500, "DES crypt is not supported");
    assert_eq!(get(p.addr, "/public", &[]).await.status, 200);
    assert_eq!(
        get(p.addr, "/any", &[]).await.status,
        200,
        "satisfy any: the address"
    );
    let r = get(p.addr, "/anyno", &[]).await;
    assert_eq!(r.status, 401, "satisfy any: 401 wins over 403");
    let r = get(
        p.addr,
        "/anyno",
        &[("authorization", &basic("plain", "secret"))],
    )
    .await;
    assert_eq!(r.status, 200, "satisfy any: the password");
    let r = get(
        p.addr,
        "/all",
        &[("authorization", &basic("plain", "secret"))],
    )
    .await;
    assert_eq!(r.status, 403, "satisfy all: the address rule first");
    let r = get(
        p.addr,
        "/missing",
        &[("authorization", &basic("plain", "secret"))],
    )
    .await;
    assert_eq!(r.status, 500, "unreadable user file");
    let _ = std::fs::remove_dir_all(&dir);
}

const LIMIT_ZONES: &str = "limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
         limit_req_zone $binary_remote_addr zone=slow:1m rate=5r/s;
         limit_req_zone $http_x_key zone=bykey:1m rate=1r/m;
         limit_req_zone $http_x_key zone=two:1m rate=1r/m;
         limit_req_zone $http_x_key zone=three:1m rate=1r/m;
         limit_req_zone $server_name zone=wide:1m rate=100r/s;";

fn limit_locations(upstream: &str) -> String {
    format!(
        "location /burst {{ limit_req zone=one burst=2 nodelay; proxy_pass {upstream}; }}
         location /status {{ limit_req zone=bykey; limit_req_status 429; proxy_pass {upstream}; }}
         location /delay {{ limit_req zone=slow burst=3; proxy_pass {upstream}; }}
         location /both {{ limit_req zone=bykey burst=3 nodelay; limit_req zone=two burst=1 nodelay;
                           proxy_pass {upstream}; }}
         location /first {{ limit_req zone=three burst=2 nodelay; limit_req zone=wide burst=10 nodelay;
                            proxy_pass {upstream}; }}"
    )
}

/// The statuses of a fixed sequence of quick requests.
async fn limit_req_sequence(addr: std::net::SocketAddr) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(get(addr, "/burst", &[]).await.status);
    }
    for key in ["k1", "k1", "k2"] {
        out.push(get(addr, "/status", &[("x-key", key)]).await.status);
    }
    for _ in 0..2 {
        out.push(get(addr, "/status", &[]).await.status);
    }
    for _ in 0..5 {
        out.push(get(addr, "/both", &[("x-key", "k3")]).await.status);
    }
    for _ in 0..5 {
        out.push(get(addr, "/first", &[("x-key", "k4")]).await.status);
    }
    out
}

#[tokio::test]
async fn limit_req_burst_nodelay_status_and_delay() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(&b, LIMIT_ZONES, &limit_locations("http://app")));
    let ours = limit_req_sequence(p.addr).await;
    assert_eq!(
        ours,
        [
            200, 200, 200, 503, 200, 429, 200, 200, 200, 200, 200, 503, 503, 503, 200, 200, 200,
            503, 503
        ],
        "burst=2 nodelay: three pass; one per minute per key; an empty key is \
         free; two limits: the zone with burst=1 lets two through; the first of \
         two limits lets burst + 1 through, as when alone"
    );
    if let Some(n) = common::nginx::Nginx::start(&format!(
        "{LIMIT_ZONES}\n server {{ listen LISTEN; {} }}",
        limit_locations(&format!("http://{}", b.peer()))
    )) {
        assert_eq!(
            limit_req_sequence(n.addr).await,
            ours,
            "nginx decides the same"
        );
    }
    second_waits_its_turn(p.addr, "/delay").await;
}

/// At 5r/s the first request to `path` goes at once and the second, sent
/// right after, waits about 200 ms; both are served.
async fn second_waits_its_turn(addr: std::net::SocketAddr, path: &str) {
    let t = Instant::now();
    let first = get(addr, path, &[]).await;
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let second = get(addr, path, &[]).await;
    let waited = t.elapsed();
    assert_eq!((first.status, second.status), (200, 200));
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_millis(2000),
        "{waited:?}"
    );
}

/// A local answer (a file) waits its turn as a proxied one does: it was sent
/// at once, so a burst the delays would have spread was refused.
#[tokio::test]
async fn limit_req_delays_files_too() {
    let dir = std::env::temp_dir().join(format!("sticky-limit-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::write(dir.join("f"), "file\n").expect("a file");
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{ limit_req_zone $binary_remote_addr zone=s:1m rate=5r/s;\n\
         server {{ listen 127.0.0.1:0; location / {{ limit_req zone=s burst=3; root {}; }} }} }}",
        dir.display()
    ));
    second_waits_its_turn(p.addr, "/f").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn limit_conn_counts_requests_in_flight_across_connections() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(
        &b,
        "limit_conn_zone $binary_remote_addr zone=addr:1m;",
        "location / { limit_conn addr 1; limit_conn_status 503; proxy_pass http://app; }",
    ));
    let addr = p.addr;
    let slow = tokio::spawn(async move { get(addr, "/", &[("x-delay-ms", "1500")]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = get(p.addr, "/", &[]).await;
    assert_eq!(second.status, 503, "one request in flight already");
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(
        get(p.addr, "/", &[]).await.status,
        200,
        "released at its end"
    );
}

#[tokio::test]
async fn stub_status_prints_nginx_text_with_counters_across_workers() {
    let b = Backend::start("a");
    let text = conf(
        &b,
        "",
        "location = /basic_status { stub_status; allow 127.0.0.1; deny all; }
         location / { proxy_pass http://app; }",
    )
    .replace("events {}", "worker_processes 2;\nevents {}");
    let p = start_proxy(&text);
    for _ in 0..3 {
        assert_eq!(get(p.addr, "/", &[]).await.status, 200);
    }
    let r = get(p.addr, "/basic_status", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    let body = r.text();
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(lines.len(), 5, "{body:?}");
    let active: u64 = lines[0]
        .strip_prefix("Active connections: ")
        .and_then(|x| x.strip_suffix(' '))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=4).contains(&active), "{body:?}");
    assert_eq!(lines[1], "server accepts handled requests");
    let n: Vec<u64> = lines[2]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(n, [4, 4, 4], "{body:?}");
    assert!(lines[2].starts_with(' ') && lines[2].ends_with(' '));
    assert_eq!(
        lines[3],
        format!("Reading: 0 Writing: 1 Waiting: {} ", active - 1)
    );
    let mut c = Client::connect(p.addr).await;
    let r = c.send("POST", "/basic_status", &[], empty()).await.unwrap();
    assert_eq!(r.status, 405);
    let shape = |text: &str| -> String {
        text.chars()
            .map(|c| if c.is_ascii_digit() { 'N' } else { c })
            .collect::<String>()
            .replace("NN", "N")
            .replace("NN", "N")
    };
    if let Some(n) = common::nginx::Nginx::start(
        "server { listen LISTEN; location = /basic_status { stub_status; } }",
    ) {
        let theirs = get(n.addr, "/basic_status", &[]).await;
        assert_eq!(theirs.header("content-type").as_deref(), Some("text/plain"));
        assert_eq!(
            shape(&theirs.text()),
            shape(&body),
            "the same text as nginx"
        );
        let mut c = Client::connect(n.addr).await;
        let r = c.send("POST", "/basic_status", &[], empty()).await.unwrap();
        assert_eq!(r.status, 405, "nginx refuses POST too");
    }
}
