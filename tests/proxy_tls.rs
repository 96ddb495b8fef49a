//! TLS towards the clients (issue 15): `listen ... ssl`, certificates made at
//! test time (rcgen), SNI, TLS 1.2 and 1.3, RSA and ECDSA, mutual TLS,
//! resumption, the `$ssl_*` variables, plain HTTP on a TLS port, hostile
//! hellos, reload swapping a certificate.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pki::{provider, Pki};
use common::{read_lines, start_proxy, Backend, Reply};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client configuration trusting `pki`, limited to `versions`.
fn client_config(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<rustls::ClientConfig> {
    client_config_with(provider(), pki, versions, identity)
}

fn client_config_with(
    provider: Arc<rustls::crypto::CryptoProvider>,
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(pki.roots());
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).expect("identity"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// What one HTTPS request saw.
struct TlsReply {
    reply: Reply,
    /// The certificate the server presented.
    server_cert: CertificateDer<'static>,
    version: Option<rustls::ProtocolVersion>,
}

/// One GET over a fresh TLS connection to `addr`, naming `sni`.
async fn https_get(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    sni: &str,
    path: &str,
) -> Result<TlsReply, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let server_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first().cloned())
        .ok_or("no server certificate")?;
    let version = tls.get_ref().1.protocol_version();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(path)
        .header("host", sni)
        .body(common::empty())
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(TlsReply {
        reply: Reply {
            status,
            headers,
            body,
        },
        server_cert,
        version,
    })
}

/// A location that shows every TLS variable to the backend.
fn echo_vars(backend: &Backend) -> String {
    format!(
        "location / {{
            proxy_pass http://{peer};
            proxy_set_header X-Scheme $scheme;
            proxy_set_header X-Https $https;
            proxy_set_header X-Proto $ssl_protocol;
            proxy_set_header X-Cipher $ssl_cipher;
            proxy_set_header X-Sni $ssl_server_name;
            proxy_set_header X-Reused $ssl_session_reused;
            proxy_set_header X-Verify $ssl_client_verify;
            proxy_set_header X-Dn $ssl_client_s_dn;
            proxy_set_header X-Fp $ssl_client_fingerprint;
        }}",
        peer = backend.peer()
    )
}

/// A proxy serving `name` over TLS with `pki`'s `site` certificate, the
/// `extra` directives, and [`echo_vars`] towards `backend`.
fn tls_proxy(pki: &Pki, name: &str, extra: &str, backend: &Backend) -> common::TestProxy {
    start_proxy(&format!(
        "http {{ server {{ listen 127.0.0.1:0 ssl; server_name {name};
            ssl_certificate {cert}; ssl_certificate_key {key}; {extra}
            {loc} }} }}",
        cert = pki.path("site.pem"),
        key = pki.path("site.key"),
        loc = echo_vars(backend)
    ))
}

fn seen(reply: &Reply, name: &str) -> String {
    reply.seen(name).join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_and_tls12_carry_the_ssl_variables_to_the_backend() {
    let pki = Pki::new("versions");
    pki.issue("site", &["one.test"], false);
    let backend = Backend::start("b");
    let log = pki.path("access.log");
    let proxy = start_proxy(&format!(
        "http {{ log_format tls '$scheme $https $ssl_protocol $ssl_cipher $ssl_server_name $ssl_session_reused $ssl_client_verify';
          server {{ listen 127.0.0.1:0 ssl; server_name one.test; access_log {log} tls;
            ssl_certificate {cert}; ssl_certificate_key {key};
            {loc} }} }}",
        cert = pki.path("site.pem"),
        key = pki.path("site.key"),
        loc = echo_vars(&backend)
    ));
    let cases = [
        (
            &rustls::version::TLS13,
            "TLSv1.3",
            "TLS_AES_",
            rustls::ProtocolVersion::TLSv1_3,
        ),
        (
            &rustls::version::TLS12,
            "TLSv1.2",
            "ECDHE-ECDSA-",
            rustls::ProtocolVersion::TLSv1_2,
        ),
    ];
    for (version, name, cipher, wire) in cases {
        let config = client_config(&pki, &[version], None);
        let got = https_get(proxy.addr, &config, "one.test", "/v")
            .await
            .expect("https");
        assert_eq!(got.version, Some(wire));
        let r = &got.reply;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.backend().as_deref(), Some("b"));
        assert_eq!(seen(r, "x-scheme"), "https");
        assert_eq!(seen(r, "x-https"), "on");
        assert_eq!(seen(r, "x-proto"), name);
        assert!(seen(r, "x-cipher").starts_with(cipher), "{}", r.text());
        assert_eq!(seen(r, "x-sni"), "one.test");
        assert_eq!(seen(r, "x-reused"), ".");
        assert_eq!(seen(r, "x-verify"), "NONE");
        assert_eq!(seen(r, "x-dn"), "");
    }
    let lines = read_lines(Path::new(&log), 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, proto) in lines.iter().zip(["TLSv1.3", "TLSv1.2"]) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 7, "{line}");
        assert_eq!(&fields[..3], ["https", "on", proto], "{line}");
        assert_eq!(&fields[4..], ["one.test", ".", "NONE"], "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_chooses_the_server_and_its_certificate_default_when_absent_or_unknown() {
    let pki = Pki::new("sni");
    let a_cert = pki.issue("a", &["a.test", "127.0.0.1"], false);
    let b_cert = pki.issue("b", &["*.b.test"], false);
    let (ba, bb) = (Backend::start("A"), Backend::start("B"));
    let proxy = start_proxy(&format!(
        "http {{
          server {{ listen 127.0.0.1:0 ssl default_server; server_name a.test;
            ssl_certificate {a}.pem; ssl_certificate_key {a}.key;
            location / {{ proxy_pass http://{pa}; }} }}
          server {{ listen 127.0.0.1:0 ssl; server_name *.b.test ~^re\\.b\\.example$;
            ssl_certificate {b}.pem; ssl_certificate_key {b}.key;
            location / {{ proxy_pass http://{pb}; }} }}
        }}",
        a = pki.path("a"),
        b = pki.path("b"),
        pa = ba.peer(),
        pb = bb.peer()
    ));
    let config = client_config(&pki, &[&rustls::version::TLS13], None);
    let got = https_get(proxy.addr, &config, "www.b.test", "/")
        .await
        .expect("b");
    assert_eq!(got.server_cert, b_cert);
    assert_eq!(got.reply.backend().as_deref(), Some("B"));
    let got = https_get(proxy.addr, &config, "a.test", "/")
        .await
        .expect("a");
    assert_eq!(got.server_cert, a_cert);
    assert_eq!(got.reply.backend().as_deref(), Some("A"));
    // An IP address sends no SNI: the default server's certificate.
    let got = https_get(proxy.addr, &config, "127.0.0.1", "/")
        .await
        .expect("no sni");
    assert_eq!(got.server_cert, a_cert);
    // An unknown name: the default server's certificate, which does not
    // name it, so a verifying client refuses it.
    let err = https_get(proxy.addr, &config, "unknown.test", "/")
        .await
        .err()
        .expect("name mismatch");
    assert!(err.contains("handshake"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_and_ecdsa_certificates_are_chosen_by_what_the_client_supports() {
    let pki = Pki::new("keys");
    let rsa = pki.issue("rsa", &["k.test"], true);
    let ec = pki.issue("ec", &["k.test"], false);
    // The RSA pair first, and its key file holds the chain too (as nginx
    // accepts).
    let combined = format!(
        "{}{}",
        std::fs::read_to_string(pki.path("rsa.pem")).expect("pem"),
        std::fs::read_to_string(pki.path("rsa.key")).expect("key")
    );
    std::fs::write(pki.path("rsa-both.pem"), combined).expect("write");
    let backend = Backend::start("k");
    let proxy = start_proxy(&format!(
        "http {{ server {{ listen 127.0.0.1:0 ssl; server_name k.test;
            ssl_certificate {both}; ssl_certificate_key {both};
            ssl_certificate {ec}.pem; ssl_certificate_key {ec}.key;
            {loc} }} }}",
        both = pki.path("rsa-both.pem"),
        ec = pki.path("ec"),
        loc = echo_vars(&backend)
    ));
    let config = client_config(&pki, &[&rustls::version::TLS13], None);
    let got = https_get(proxy.addr, &config, "k.test", "/")
        .await
        .expect("ec");
    assert_eq!(got.server_cert, ec);
    // A TLS 1.2 client offering RSA suites only.
    let mut rsa_only = rustls::crypto::aws_lc_rs::default_provider();
    rsa_only.cipher_suites =
        vec![rustls::crypto::aws_lc_rs::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256];
    let config = client_config_with(Arc::new(rsa_only), &pki, &[&rustls::version::TLS12], None);
    let got = https_get(proxy.addr, &config, "k.test", "/")
        .await
        .expect("rsa");
    assert_eq!(got.server_cert, rsa);
    assert_eq!(seen(&got.reply, "x-cipher"), "ECDHE-RSA-AES128-GCM-SHA256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_sessions_show_r_with_tickets_and_with_the_session_cache() {
    let pki = Pki::new("resume");
    pki.issue("site", &["r.test"], false);
    let backend = Backend::start("r");
    for (extra, version) in [
        ("", &rustls::version::TLS13),
        ("", &rustls::version::TLS12),
        (
            "ssl_session_tickets off; ssl_session_cache shared:SSL:1m;",
            &rustls::version::TLS12,
        ),
    ] {
        let proxy = tls_proxy(&pki, "r.test", extra, &backend);
        let config = client_config(&pki, &[version], None);
        let first = https_get(proxy.addr, &config, "r.test", "/")
            .await
            .expect("1");
        assert_eq!(seen(&first.reply, "x-reused"), ".", "{extra}");
        let second = https_get(proxy.addr, &config, "r.test", "/")
            .await
            .expect("2");
        assert_eq!(seen(&second.reply, "x-reused"), "r", "{extra} {version:?}");
        proxy.running.quit(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_older_than_ssl_session_timeout_are_not_resumed() {
    let pki = Pki::new("resume-timeout");
    pki.issue("site", &["t.test"], false);
    let backend = Backend::start("t");
    // Tickets (TLS 1.3) and the session cache alone (TLS 1.2 session IDs,
    // which the client keeps without a lifetime: only the server expires them).
    for (extra, version) in [
        ("", &rustls::version::TLS13),
        (
            "ssl_session_tickets off; ssl_session_cache shared:SSL:1m;",
            &rustls::version::TLS12,
        ),
    ] {
        let extra = format!("{extra} ssl_session_timeout 1s;");
        let proxy = tls_proxy(&pki, "t.test", &extra, &backend);
        let config = client_config(&pki, &[version], None);
        let reused = |r: &TlsReply| seen(&r.reply, "x-reused");
        let first = https_get(proxy.addr, &config, "t.test", "/")
            .await
            .expect("1");
        assert_eq!(reused(&first), ".", "{extra}");
        let within = https_get(proxy.addr, &config, "t.test", "/")
            .await
            .expect("2");
        assert_eq!(reused(&within), "r", "{extra} within the timeout");
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let after = https_get(proxy.addr, &config, "t.test", "/")
            .await
            .expect("3");
        assert_eq!(reused(&after), ".", "{extra} after the timeout");
        proxy.running.quit(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_sharing_a_ticket_key_file_resume_each_other_s_sessions() {
    let pki = Pki::new("ticket-keys");
    pki.issue("site", &["k.test"], false);
    let backend = Backend::start("k");
    let mut a = [0u8; 80];
    let mut b = [0u8; 48];
    aws_lc_rs::rand::fill(&mut a).expect("rand");
    aws_lc_rs::rand::fill(&mut b).expect("rand");
    std::fs::write(pki.path("a.tk"), a).expect("a.tk");
    std::fs::write(pki.path("b.tk"), b).expect("b.tk");
    let proxy = |keys: &[&str]| {
        let keys: String = keys
            .iter()
            .map(|k| format!("ssl_session_ticket_key {};", pki.path(k)))
            .collect();
        tls_proxy(&pki, "k.test", &keys, &backend)
    };
    let one = proxy(&["a.tk"]);
    let two = proxy(&["a.tk"]);
    let other = proxy(&["b.tk"]);
    // Rotation: `b.tk` seals, `a.tk` still opens.
    let rotated = proxy(&["b.tk", "a.tk"]);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let get = |config: Arc<rustls::ClientConfig>, addr| async move {
            let got = https_get(addr, &config, "k.test", "/").await.expect("get");
            seen(&got.reply, "x-reused")
        };
        let config = client_config(&pki, &[version], None);
        assert_eq!(get(Arc::clone(&config), one.addr).await, ".");
        assert_eq!(
            get(Arc::clone(&config), two.addr).await,
            "r",
            "{version:?} same key"
        );
        assert_eq!(
            get(Arc::clone(&config), other.addr).await,
            ".",
            "{version:?} other key"
        );
        assert_eq!(
            get(Arc::clone(&config), rotated.addr).await,
            "r",
            "{version:?} first key"
        );
        let config = client_config(&pki, &[version], None);
        assert_eq!(get(Arc::clone(&config), one.addr).await, ".");
        assert_eq!(
            get(Arc::clone(&config), rotated.addr).await,
            "r",
            "{version:?} second key"
        );
    }
    for p in [one, two, other, rotated] {
        p.running.quit(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_verified_and_refusals_are_nginx_s_400_pages() {
    let pki = Pki::new("mtls");
    pki.issue("site", &["m.test"], false);
    let other = Pki::new("mtls-other");
    let backend = Backend::start("m");
    let conf = |mode: &str| {
        format!(
            "http {{ server {{ listen 127.0.0.1:0 ssl; server_name m.test;
                ssl_certificate {cert}; ssl_certificate_key {key};
                ssl_client_certificate {ca}; ssl_verify_client {mode}; ssl_verify_depth 2;
                {loc} }} }}",
            cert = pki.path("site.pem"),
            key = pki.path("site.key"),
            ca = pki.path("ca.pem"),
            loc = echo_vars(&backend)
        )
    };
    let proxy = start_proxy(&conf("on"));
    let v13 = [&rustls::version::TLS13];
    let good = client_config(&pki, &v13, Some(pki.client_identity("alice")));
    let got = https_get(proxy.addr, &good, "m.test", "/")
        .await
        .expect("good");
    assert_eq!(got.reply.status, 200, "{}", got.reply.text());
    assert_eq!(seen(&got.reply, "x-verify"), "SUCCESS");
    assert_eq!(seen(&got.reply, "x-dn"), "O=Sticky Test,CN=alice");
    assert_eq!(seen(&got.reply, "x-fp").len(), 40);

    let none = client_config(&pki, &v13, None);
    let got = https_get(proxy.addr, &none, "m.test", "/")
        .await
        .expect("none");
    assert_eq!(got.reply.status, 400);
    assert!(
        got.reply
            .text()
            .contains("No required SSL certificate was sent"),
        "{}",
        got.reply.text()
    );

    let stranger = client_config(&pki, &v13, Some(other.client_identity("mallory")));
    let got = https_get(proxy.addr, &stranger, "m.test", "/")
        .await
        .expect("stranger");
    assert_eq!(got.reply.status, 400);
    assert!(got.reply.text().contains("The SSL certificate error"));
    assert_eq!(
        backend.hits(),
        1,
        "refused requests never reach the backend"
    );

    let optional = start_proxy(&conf("optional"));
    let got = https_get(optional.addr, &none, "m.test", "/")
        .await
        .expect("optional");
    assert_eq!(got.reply.status, 200);
    assert_eq!(seen(&got.reply, "x-verify"), "NONE");
    let got = https_get(optional.addr, &stranger, "m.test", "/")
        .await
        .expect("optional stranger");
    assert_eq!(got.reply.status, 400);
}

/// A TLS proxy with one ECDSA certificate for `h.test`.
fn simple_tls_proxy(pki: &Pki, backend: &Backend, extra: &str) -> common::TestProxy {
    pki.issue("site", &["h.test"], false);
    start_proxy(&format!(
        "http {{ server {{ listen 127.0.0.1:0 ssl; server_name h.test;
            ssl_certificate {cert}; ssl_certificate_key {key}; {extra}
            location / {{ proxy_pass http://{peer}; }} }} }}",
        cert = pki.path("site.pem"),
        key = pki.path("site.key"),
        peer = backend.peer()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_a_tls_port_gets_nginx_s_400() {
    let pki = Pki::new("plain");
    let backend = Backend::start("p");
    let proxy = simple_tls_proxy(&pki, &backend, "");
    let text = common::raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: h.test\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(
        text.contains("<title>400 The plain HTTP request was sent to HTTPS port</title>"),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert_eq!(backend.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_and_stalled_hellos_end_the_connection_and_nothing_else() {
    let pki = Pki::new("hostile");
    let backend = Backend::start("h");
    let proxy = simple_tls_proxy(&pki, &backend, "ssl_handshake_timeout 1s;");
    let hostile: [&[u8]; 4] = [
        // A handshake record of garbage.
        b"\x16\x03\x01\x00\x10garbagegarbage!!",
        // A record header announcing more than a record may hold.
        b"\x16\x03\x01\xff\xff\x01\x00\xff\xfb",
        // An SSLv2-framed hello.
        b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10",
        // A ClientHello cut short: the handshake then stalls.
        b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03",
    ];
    for bytes in hostile {
        let started = Instant::now();
        let mut s = tokio::net::TcpStream::connect(proxy.addr)
            .await
            .expect("connect");
        s.write_all(bytes).await.expect("write");
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "the proxy closes within the handshake timeout"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            !String::from_utf8_lossy(&buf).contains("HTTP/1.1"),
            "no HTTP answer to a TLS byte stream"
        );
    }
    // A client that connects and sends nothing is cut at the timeout too.
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(proxy.addr)
        .await
        .expect("connect");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // And the proxy still serves.
    let config = client_config(&pki, &[&rustls::version::TLS13], None);
    let got = https_get(proxy.addr, &config, "h.test", "/")
        .await
        .expect("ok");
    assert_eq!(got.reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_and_bodies_go_over_one_tls_connection() {
    let pki = Pki::new("keepalive");
    let backend = Backend::start("k");
    let proxy = simple_tls_proxy(&pki, &backend, "");
    let config = client_config(&pki, &[&rustls::version::TLS13], None);
    let tcp = tokio::net::TcpStream::connect(proxy.addr)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("h.test").expect("name"), tcp)
        .await
        .expect("handshake");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http");
    tokio::spawn(conn);
    for i in 0..5u64 {
        let size = 100_000 * i + 1;
        let req = hyper::Request::builder()
            .method("POST")
            .uri(format!("/r{i}"))
            .header("host", "h.test")
            .header("x-size", (200_000 * i + 3).to_string())
            .body(common::sized(size))
            .expect("request");
        sender.ready().await.expect("ready");
        let resp = sender.send_request(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(body.len() as u64, 200_000 * i + 3);
    }
    assert_eq!(backend.hits(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_the_certificate_and_a_bad_key_keeps_the_old_one() {
    let pki = Pki::new("reload");
    let backend = Backend::start("r");
    let first = pki.issue("site", &["h.test"], false);
    let text = format!(
        "http {{ server {{ listen 127.0.0.1:0 ssl; server_name h.test;
            ssl_certificate {cert}; ssl_certificate_key {key};
            location / {{ proxy_pass http://{peer}; }} }} }}",
        cert = pki.path("site.pem"),
        key = pki.path("site.key"),
        peer = backend.peer()
    );
    let mut proxy = start_proxy(&text);
    let config = client_config(&pki, &[&rustls::version::TLS13], None);
    // A connection open across the reload keeps working.
    let tcp = tokio::net::TcpStream::connect(proxy.addr)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
        .connect(ServerName::try_from("h.test").expect("name"), tcp)
        .await
        .expect("handshake");
    let (mut kept, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http");
    tokio::spawn(conn);

    let got = https_get(proxy.addr, &config, "h.test", "/")
        .await
        .expect("1");
    assert_eq!(got.server_cert, first);
    let second = pki.issue("site", &["h.test"], false);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test.conf");
    let (next, _) = sticky_proxy::config::load_str(&text, &file).expect("reload config");
    proxy.running.reload(next).expect("reload");
    let got = https_get(proxy.addr, &config, "h.test", "/")
        .await
        .expect("2");
    assert_eq!(got.server_cert, second);

    // A key that does not match fails the load with nginx's message.
    std::fs::copy(pki.path("site.key"), pki.path("keep.key")).expect("copy");
    pki.issue("other", &["h.test"], false);
    std::fs::copy(pki.path("other.key"), pki.path("site.key")).expect("swap key");
    let err = sticky_proxy::config::load_str(&text, &file).expect_err("mismatched key refused");
    assert!(err.to_string().contains("key values mismatch"), "{err}");
    let got = https_get(proxy.addr, &config, "h.test", "/")
        .await
        .expect("3");
    assert_eq!(
        got.server_cert, second,
        "the old configuration keeps serving"
    );

    let req = hyper::Request::builder()
        .uri("/kept")
        .header("host", "h.test")
        .body(common::empty())
        .expect("request");
    let resp = kept.send_request(req).await.expect("kept connection");
    assert_eq!(resp.status(), 200);
}
