//! gzip and brotli against the live proxy (issue 18, item 3): proxied bodies
//! of any length (with Content-Length or chunked) and local files are
//! compressed as they stream, Content-Length dropped (chunked), ETag
//! weakened, Vary added; never a HEAD, a 206, or a response that already
//! has a Content-Encoding; gzip_proxied decided from the backend's headers.

mod common;

use std::io::Read;

use common::*;

fn conf(backend: &Backend, http: &str, locations: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n  {http}\n  upstream app {{ server {}; }}\n  server {{\n    listen 127.0.0.1:0;\n{locations}\n  }}\n}}\n",
        backend.peer()
    )
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

const TEXT: (&str, &str) = ("x-resp-header", "Content-Type: text/plain");

#[tokio::test]
async fn proxied_bodies_are_gzipped_streamed_whatever_their_length() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(
        &b,
        "gzip on; gzip_types text/plain; gzip_vary on; gzip_comp_level 6;",
        "location / { proxy_pass http://app; }",
    ));
    let ae = ("accept-encoding", "gzip, deflate");
    // 1 MB with Content-Length, and 3 MB chunked.
    for (size, chunked) in [(1_000_000u64, false), (3_000_000, true)] {
        let size_s = size.to_string();
        let mut h = vec![ae, TEXT, ("x-size", size_s.as_str())];
        if chunked {
            h.push(("x-chunked", "1"));
        }
        let r = get(p.addr, "/big", &h).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
        assert_eq!(r.header("content-length"), None);
        assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
        assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
        assert!(r.body.len() < 20_000, "{} bytes", r.body.len());
        let plain = gunzip(&r.body);
        assert_eq!(plain.len() as u64, size);
        assert!(plain.iter().all(|&c| c == b'x'));
    }
    // No Accept-Encoding: as is, with Vary.
    let r = get(p.addr, "/big", &[TEXT, ("x-size", "1000")]).await;
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-length").as_deref(), Some("1000"));
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
    // Not a listed type, too short, already encoded, a 500, a HEAD: as is.
    let r = get(
        p.addr,
        "/x",
        &[
            ae,
            ("x-size", "1000"),
            ("x-resp-header", "Content-Type: image/png"),
        ],
    )
    .await;
    assert_eq!(r.header("content-encoding"), None);
    let r = get(p.addr, "/x", &[ae, TEXT, ("x-size", "19")]).await;
    assert_eq!(r.header("content-encoding"), None);
    let r = get(
        p.addr,
        "/x",
        &[
            ae,
            TEXT,
            ("x-size", "1000"),
            ("x-resp-header", "Content-Encoding: br"),
        ],
    )
    .await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("br"));
    assert_eq!(r.body.len(), 1000);
    let r = get(
        p.addr,
        "/x",
        &[ae, TEXT, ("x-size", "1000"), ("x-status", "500")],
    )
    .await;
    assert_eq!(r.header("content-encoding"), None);
    let r = Client::connect(p.addr)
        .await
        .send("HEAD", "/x", &[ae, TEXT, ("x-size", "1000")], empty())
        .await
        .expect("HEAD");
    assert_eq!(r.header("content-encoding"), None);
    // The ETag is weakened.
    let r = get(
        p.addr,
        "/x",
        &[
            ae,
            TEXT,
            ("x-size", "1000"),
            ("x-resp-header", "ETag: \"v1\""),
        ],
    )
    .await;
    assert_eq!(r.header("etag").as_deref(), Some("W/\"v1\""));
}

#[tokio::test]
async fn gzip_proxied_decides_from_the_backend_headers() {
    let b = Backend::start("a");
    let p = start_proxy(&conf(
        &b,
        "gzip on; gzip_types text/plain;",
        "location /off { proxy_pass http://app; }
         location /any { gzip_proxied any; proxy_pass http://app; }
         location /nc { gzip_proxied no-cache expired; proxy_pass http://app; }
         location /auth { gzip_proxied auth; proxy_pass http://app; }",
    ));
    let base = [
        ("accept-encoding", "gzip"),
        TEXT,
        ("x-size", "1000"),
        ("via", "1.1 cdn"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h = base.to_vec();
        h.extend_from_slice(extra);
        h
    };
    let gz = |r: &Reply| r.header("content-encoding").as_deref() == Some("gzip");
    assert!(!gz(&get(p.addr, "/off", &with(&[])).await));
    assert!(gz(&get(p.addr, "/any", &with(&[])).await));
    let nc = ("x-resp-header", "Cache-Control: no-cache");
    let public = ("x-resp-header", "Cache-Control: public");
    let past = ("x-resp-header", "Expires: Thu, 01 Jan 1970 00:00:01 GMT");
    let future = ("x-resp-header", "Expires: Fri, 01 Jan 2100 00:00:00 GMT");
    assert!(gz(&get(p.addr, "/nc", &with(&[nc])).await));
    assert!(!gz(&get(p.addr, "/nc", &with(&[public])).await));
    assert!(gz(&get(p.addr, "/nc", &with(&[past])).await));
    assert!(!gz(&get(p.addr, "/nc", &with(&[future])).await));
    assert!(gz(&get(
        p.addr,
        "/auth",
        &with(&[("authorization", "Basic eDp5")])
    )
    .await));
    // Without Via, gzip_proxied does not apply.
    let direct = [("accept-encoding", "gzip"), TEXT, ("x-size", "1000")];
    assert!(gz(&get(p.addr, "/off", &direct).await));
}

#[tokio::test]
async fn files_are_compressed_but_never_ranges_and_brotli_wins_when_accepted() {
    let b = Backend::start("a");
    let dir = std::env::temp_dir().join(format!("sp-gzip-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("a.txt"), &text).expect("write");
    let p = start_proxy(&conf(
        &b,
        "gzip on; gzip_types text/plain; types { text/plain txt; }",
        &format!(
            "location / {{ root {d}; }}\n location /br/ {{ alias {d}/; brotli on; brotli_types text/plain; }}",
            d = dir.display()
        ),
    ));
    let r = get(p.addr, "/a.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(r.header("accept-ranges"), None);
    assert!(r.header("etag").expect("etag").starts_with("W/\""));
    assert_eq!(gunzip(&r.body), text.as_bytes());
    let r = get(
        p.addr,
        "/a.txt",
        &[("accept-encoding", "gzip"), ("range", "bytes=0-4")],
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.text(), "line ");
    let r = get(p.addr, "/br/a.txt", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("br"));
    let mut plain = Vec::new();
    brotli::Decompressor::new(&r.body[..], 4096)
        .read_to_end(&mut plain)
        .expect("valid brotli");
    assert_eq!(plain, text.as_bytes());
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn gzip_static_serves_the_precompressed_file() {
    let b = Backend::start("a");
    let dir = std::env::temp_dir().join(format!("sp-gzip-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("app.js"), b"plain").expect("write");
    std::fs::write(dir.join("app.js.gz"), b"PRECOMPRESSED").expect("write");
    std::fs::write(dir.join("only.js.gz"), b"GZ ONLY").expect("write");
    let p = start_proxy(&conf(
        &b,
        "types { application/javascript js; }",
        &format!(
            "location / {{ root {d}; gzip_static on; gzip_vary on; }}\n location /always/ {{ alias {d}/; gzip_static always; }}",
            d = dir.display()
        ),
    ));
    let r = get(p.addr, "/app.js", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.text(), "PRECOMPRESSED");
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/javascript")
    );
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
    let r = get(p.addr, "/app.js", &[]).await;
    assert_eq!(r.text(), "plain");
    assert_eq!(r.header("content-encoding"), None);
    // always: whatever the client accepts, even without the plain file.
    let r = get(p.addr, "/always/only.js", &[]).await;
    assert_eq!(r.text(), "GZ ONLY");
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
