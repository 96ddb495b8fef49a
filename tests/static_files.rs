//! Serving local files against the live proxy (issue 18): root, alias (with
//! regex captures), index, try_files, types, default_type, charset, etag,
//! if_modified_since, Last-Modified, Range (single, multiple, max_ranges,
//! 416), HEAD, log_not_found, disable_symlinks, autoindex, and nginx's
//! 301/403/404 answers. Each test makes its own document tree in a temporary
//! directory.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A fresh directory tree for one test: `files` as (relative path, content).
fn tree(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sp-static-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, content) in files {
        let p = dir.join(path);
        if path.ends_with('/') {
            std::fs::create_dir_all(&p).expect("mkdir");
        } else {
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, content).expect("write");
        }
    }
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn conf(server: &str) -> String {
    format!("events {{}}\nhttp {{\n  server {{\n    listen 127.0.0.1:0;\n{server}\n  }}\n}}\n")
}

/// `METHOD path` without a body, on a new connection.
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> Reply {
    Client::connect(addr)
        .await
        .send(method, path, &[], empty())
        .await
        .expect(method)
}

async fn head(addr: std::net::SocketAddr, path: &str) -> Reply {
    request(addr, "HEAD", path).await
}

#[tokio::test]
async fn root_serves_files_with_types_validators_and_nginx_errors() {
    let d = tree(
        "root",
        &[
            ("index.html", b"<h1>home</h1>"),
            ("a.css", b"body{}"),
            ("data.bin", b"\x00\x01"),
            ("notes.txt", b"hello"),
            ("sub/", b""),
            ("noindex/x.txt", b"x"),
        ],
    );
    let p = start_proxy(&conf(&format!(
        "root {};\n types {{ text/html html; text/css css; text/plain txt; }}\n default_type application/octet-stream;\n charset utf-8;",
        d.display()
    )));
    let r = get(p.addr, "/a.css", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "body{}");
    assert_eq!(r.header("content-type").as_deref(), Some("text/css"));
    assert_eq!(r.header("content-length").as_deref(), Some("6"));
    assert_eq!(r.header("accept-ranges").as_deref(), Some("bytes"));
    let etag = r.header("etag").expect("etag");
    let lm = r.header("last-modified").expect("last-modified");
    assert!(etag.starts_with('"') && etag.ends_with("-6\""), "{etag}");
    // charset applies to text/plain (charset_types), not to text/css.
    let r = get(p.addr, "/notes.txt", &[]).await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let r = get(p.addr, "/data.bin", &[]).await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    // Conditional requests.
    let r = get(p.addr, "/a.css", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = get(p.addr, "/a.css", &[("if-modified-since", &lm)]).await;
    assert_eq!(r.status, 304);
    let r = get(
        p.addr,
        "/a.css",
        &[("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")],
    )
    .await;
    assert_eq!(r.status, 200);
    // HEAD: the length, no body.
    let r = head(p.addr, "/notes.txt").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("5"));
    assert!(r.body.is_empty());
    // index, directory without slash, directory without index, missing.
    let r = get(p.addr, "/", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "<h1>home</h1>"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let r = get(p.addr, "/sub?x=1", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location").as_deref(),
        Some(format!("http://localhost:{}/sub/?x=1", p.addr.port()).as_str())
    );
    assert_eq!(get(p.addr, "/noindex/", &[]).await.status, 403);
    assert_eq!(get(p.addr, "/missing.txt", &[]).await.status, 404);
    assert_eq!(get(p.addr, "/missing/", &[]).await.status, 404);
    // Hostile paths: normalized away or refused, never outside the root.
    for path in [
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/a/..%2f..%2fetc/passwd",
    ] {
        let r = get(p.addr, path, &[]).await;
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
    }
    let r = get(p.addr, "/%00.txt", &[]).await;
    assert_eq!(r.status, 400);
    let r = get(p.addr, "/%c0%ae%c0%ae/etc/passwd", &[]).await;
    assert_eq!(r.status, 400);
    let r = get(p.addr, "/..%5c..%5cetc%5cpasswd", &[]).await;
    assert_eq!(r.status, 400);
    // POST to a file: 405, as nginx.
    let r = Client::connect(p.addr)
        .await
        .send("POST", "/a.css", &[], full("x"))
        .await
        .expect("POST");
    assert_eq!(r.status, 405);
    std::fs::remove_dir_all(&d).expect("cleanup");
}

/// `return`'s own body is typed as nginx types it: by `$uri`'s extension in
/// `types`, else `default_type`, also an empty 2xx; none for a 204; an
/// error's page is `text/html`.
#[tokio::test]
async fn return_bodies_are_typed_by_the_uri() {
    let p = start_proxy(&conf(
        "types { application/json json; }\n default_type application/octet-stream;\n \
         location = /a.json { return 200 \"{}\"; }\n location = /plain { return 200 \"ok\"; }\n \
         location = /empty { return 200; }\n location = /none { return 204; }\n \
         location = /gone { return 410; }",
    ));
    for (path, status, want) in [
        ("/a.json", 200, Some("application/json")),
        ("/plain", 200, Some("application/octet-stream")),
        ("/empty", 200, Some("application/octet-stream")),
        ("/none", 204, None),
        ("/gone", 410, Some("text/html")),
    ] {
        let r = request(p.addr, "GET", path).await;
        assert_eq!(
            (r.status, r.header("content-type").as_deref()),
            (status, want),
            "{path}"
        );
    }
}

#[tokio::test]
async fn ranges_single_multiple_and_unsatisfiable() {
    let d = tree("range", &[("f.txt", b"0123456789")]);
    let p = start_proxy(&conf(&format!(
        "root {};\n location /limited/ {{ alias {}/; max_ranges 1; }}\n location /off/ {{ alias {}/; max_ranges 0; }}",
        d.display(),
        d.display(),
        d.display()
    )));
    let r = get(p.addr, "/f.txt", &[("range", "bytes=2-4")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.text(), "234");
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 2-4/10"));
    assert_eq!(r.header("content-length").as_deref(), Some("3"));
    // As nginx: only a whole answer says `Accept-Ranges`.
    assert_eq!(r.header("accept-ranges"), None);
    let r = get(p.addr, "/f.txt", &[("range", "bytes=-3")]).await;
    assert_eq!((r.status, r.text().as_str()), (206, "789"));
    let r = get(p.addr, "/f.txt", &[("range", "bytes=0-1,8-")]).await;
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").expect("content-type");
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart");
    let want = format!(
        "\r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\
         \r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89\
         \r\n--{boundary}--\r\n"
    );
    assert_eq!(r.text(), want);
    assert_eq!(r.header("content-length"), Some(want.len().to_string()));
    let r = get(p.addr, "/f.txt", &[("range", "bytes=10-")]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes */10"));
    assert_eq!(r.header("accept-ranges"), None);
    // max_ranges 1: two ranges get the whole file; max_ranges 0: ranges off.
    let r = get(p.addr, "/limited/f.txt", &[("range", "bytes=0-1,3-4")]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "0123456789"));
    let r = get(p.addr, "/limited/f.txt", &[("range", "bytes=3-4")]).await;
    assert_eq!((r.status, r.text().as_str()), (206, "34"));
    let r = get(p.addr, "/off/f.txt", &[("range", "bytes=3-4")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("accept-ranges"), None);
    // If-Range with another validator: the whole file.
    let r = get(
        p.addr,
        "/f.txt",
        &[("range", "bytes=3-4"), ("if-range", "\"nope\"")],
    )
    .await;
    assert_eq!(r.status, 200);
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn alias_prefix_and_regex_with_captures() {
    let d = tree(
        "alias",
        &[
            ("pics/a.png", b"PNG"),
            ("secret.txt", b"no"),
            ("v2/x.js", b"js"),
        ],
    );
    let p = start_proxy(&conf(&format!(
        "location /img/ {{ alias {d}/pics/; }}\n location /nos {{ alias {d}/pics; }}\n location ~ ^/assets/(v\\d+)/(.+)$ {{ alias {d}/$1/$2; }}",
        d = d.display()
    )));
    assert_eq!(get(p.addr, "/img/a.png", &[]).await.text(), "PNG");
    // The famous alias traversal: `/img../secret.txt` does not match /img/,
    // and without the slash no sibling is reachable.
    assert_eq!(get(p.addr, "/nos/a.png", &[]).await.text(), "PNG");
    assert_eq!(get(p.addr, "/nos../secret.txt", &[]).await.status, 400);
    assert_eq!(get(p.addr, "/assets/v2/x.js", &[]).await.text(), "js");
    assert_eq!(get(p.addr, "/assets/v3/x.js", &[]).await.status, 404);
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn try_files_order_code_and_uri_fallbacks() {
    let d = tree(
        "try",
        &[
            ("a.html", b"A"),
            ("dir/index.html", b"DIRINDEX"),
            ("fallback.html", b"FALLBACK"),
            ("file/", b""),
            ("app/", b""),
            ("b/a2/d/", b""),
        ],
    );
    let p = start_proxy(&conf(&format!(
        "root {};\n location / {{ try_files $uri $uri.html $uri/ /fallback.html; }}\n location /strict/ {{ try_files $uri =418; }}\n location /file/ {{ try_files $uri =404; }}\n location /app/ {{ try_files $uri @app; }}\n location @app {{ return 200 \"app $uri\"; }}\n location /a2/ {{ try_files /b$uri/ =418; }}\n location /slash/ {{ try_files / =418; }}",
        d.display()
    )));
    assert_eq!(get(p.addr, "/a.html", &[]).await.text(), "A");
    assert_eq!(get(p.addr, "/a", &[]).await.text(), "A");
    // `$uri/` tests `$uri` for a directory, as nginx (which strips the
    // `/`): found, the request goes on as `/dir`, a directory asked without
    // its slash: the 301 to `/dir/`, whose index then serves.
    let r = get(p.addr, "/dir", &[]).await;
    assert_eq!(r.status, 301);
    assert!(
        r.header("location").is_some_and(|l| l.ends_with("/dir/")),
        "{:?}",
        r.header("location")
    );
    assert_eq!(get(p.addr, "/dir/", &[]).await.text(), "DIRINDEX");
    assert_eq!(get(p.addr, "/nothing", &[]).await.text(), "FALLBACK");
    assert_eq!(get(p.addr, "/strict/none", &[]).await.status, 418);
    // A file test never matches a directory, whatever `$uri` ends with:
    // `/file/` is no file (404), and `/app/` goes to the named location
    // (the common `try_files $uri @app;`), not to a 403.
    assert_eq!(get(p.addr, "/file/", &[]).await.status, 404);
    let r = get(p.addr, "/app/", &[]).await;
    assert_eq!((r.status, r.text()), (200, "app /app/".to_string()));
    // The redirect goes to the argument that found the directory, not to
    // the request's `$uri` (nginx: `/b/a2/d/`, and `/` for `try_files /`).
    let path_of = |r: &Reply| {
        let l = r.header("location").unwrap_or_default();
        l.splitn(4, '/').nth(3).map(|p| format!("/{p}"))
    };
    let r = get(p.addr, "/a2/d?x=1", &[]).await;
    assert_eq!(
        (r.status, path_of(&r).as_deref()),
        (301, Some("/b/a2/d/?x=1"))
    );
    let r = get(p.addr, "/slash/x", &[]).await;
    assert_eq!((r.status, path_of(&r).as_deref()), (301, Some("/")));
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn index_list_variables_and_autoindex() {
    let d = tree(
        "index",
        &[
            ("one/default.htm", b"HTM"),
            ("list/b.txt", b"bb"),
            ("list/sub/", b""),
            ("list/.hidden", b"h"),
        ],
    );
    let p = start_proxy(&conf(&format!(
        "root {};\n index index.html default.htm;\n location /list/ {{ autoindex on; }}\n location /json/ {{ alias {}/list/; autoindex on; autoindex_format json; }}",
        d.display(),
        d.display()
    )));
    assert_eq!(get(p.addr, "/one/", &[]).await.text(), "HTM");
    let r = get(p.addr, "/list/", &[]).await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("<title>Index of /list/</title>"), "{html}");
    let sub = html.find("<a href=\"sub/\">sub/</a>").expect("sub listed");
    let file = html
        .find("<a href=\"b.txt\">b.txt</a>")
        .expect("file listed");
    assert!(sub < file, "directories first: {html}");
    assert!(!html.contains(".hidden"));
    let r = get(p.addr, "/json/", &[]).await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let json = r.text();
    assert!(
        json.starts_with("[\n{ \"name\":\"sub\", \"type\":\"directory\""),
        "{json}"
    );
    assert!(
        json.contains("\"name\":\"b.txt\", \"type\":\"file\""),
        "{json}"
    );
    assert!(json.contains("\"size\":2 }"), "{json}");
    // nginx lists for GET and HEAD only.
    assert_eq!(request(p.addr, "POST", "/list/").await.status, 403);
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn autoindex_links_and_redirects_escape_names_as_nginx() {
    let d = tree(
        "escape",
        &[
            ("list/q\"on<x>&.txt", b"1"),
            ("list/big.bin", &[0u8; 10752]),
            ("d<x>/index.html", b"D"),
        ],
    );
    let p = start_proxy(&conf(&format!(
        "root {};\n location /list/ {{ autoindex on; autoindex_exact_size off; }}",
        d.display()
    )));
    let html = get(p.addr, "/list/", &[]).await.text();
    // A name cannot end the attribute or add markup: the link is escaped
    // as a URI component, the text as HTML.
    assert!(
        html.contains("<a href=\"q%22on%3Cx%3E%26.txt\">q&quot;on&lt;x&gt;&amp;.txt</a>"),
        "{html}"
    );
    // nginx's short sizes: 7 wide after the date, 10752 bytes is 10.5K,
    // rounded up.
    let big = html
        .lines()
        .find(|l| l.starts_with("<a href=\"big.bin\">big.bin</a>"))
        .expect("big.bin listed");
    let (date, size) = big.split_at(big.len() - 8);
    assert_eq!(size, "     11K", "{big:?}");
    assert!(date.ends_with(|c: char| c.is_ascii_digit()), "{big:?}");
    // The trailing-slash redirect escapes the path as nginx's NGX_ESCAPE_URI.
    let r = get(p.addr, "/d%3Cx%3E", &[]).await;
    assert_eq!(r.status, 301);
    assert!(
        r.header("location")
            .is_some_and(|l| l.ends_with("/d%3Cx%3E/")),
        "{:?}",
        r.header("location")
    );
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn an_error_page_file_ignores_ranges_and_conditions_and_charset_types_keep_html() {
    let d = tree(
        "errpage",
        &[("404.html", b"custom not found"), ("a.html", b"<p>a</p>")],
    );
    let p = start_proxy(&conf(&format!(
        "root {};\n error_page 404 /404.html;\n charset utf-8;\n charset_types text/plain;\n location /ok/ {{ error_page 404 =200 /404.html; }}",
        d.display()
    )));
    // As nginx: the page goes out whole with the error status: no 206, no
    // 304, no 412, no Last-Modified or Accept-Ranges (its ETag stays).
    let page = get(p.addr, "/nope", &[]).await;
    assert_eq!(
        (page.status, page.text()),
        (404, "custom not found".to_string())
    );
    assert_eq!(page.header("last-modified"), None);
    assert_eq!(page.header("accept-ranges"), None);
    let etag = page.header("etag").expect("etag");
    for h in [
        ("Range", "bytes=0-3"),
        ("If-None-Match", etag.as_str()),
        ("If-Match", "\"zzz\""),
    ] {
        let r = get(p.addr, "/nope", &[h]).await;
        assert_eq!(
            (r.status, r.text()),
            (404, "custom not found".to_string()),
            "{h:?}"
        );
        assert_eq!(r.header("content-range"), None, "{h:?}");
    }
    // With `=200` it is answered as a 200 would be: a range is a 206.
    let r = get(p.addr, "/ok/nope", &[("Range", "bytes=0-3")]).await;
    assert_eq!((r.status, r.text()), (206, "cust".to_string()));
    // The page itself, asked directly, is a file like any other.
    let r = get(p.addr, "/404.html", &[("Range", "bytes=0-3")]).await;
    assert_eq!((r.status, r.text()), (206, "cust".to_string()));
    // `charset_types` adds to text/html, as nginx.
    let r = get(p.addr, "/a.html", &[]).await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn disable_symlinks_on_refuses_links_off_follows_them() {
    let d = tree("links", &[("real/f.txt", b"REAL")]);
    std::os::unix::fs::symlink(d.join("real"), d.join("link")).expect("symlink");
    let p = start_proxy(&conf(&format!(
        "root {};\n location /strict/ {{ alias {}/; disable_symlinks on; }}",
        d.display(),
        d.display()
    )));
    assert_eq!(get(p.addr, "/link/f.txt", &[]).await.text(), "REAL");
    assert_eq!(get(p.addr, "/strict/real/f.txt", &[]).await.text(), "REAL");
    assert_eq!(get(p.addr, "/strict/link/f.txt", &[]).await.status, 403);
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn large_files_stream_whole_and_etag_off() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let d = tree("large", &[("big.bin", &data)]);
    let p = start_proxy(&conf(&format!("root {};\n etag off;", d.display())));
    let r = get(p.addr, "/big.bin", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body[..] == data[..]);
    assert_eq!(r.header("etag"), None);
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[tokio::test]
async fn a_fifo_under_the_root_is_404_and_does_not_hold_the_worker() {
    let d = tree("fifo", &[("a.txt", b"A")]);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        d.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .expect("mkfifo");
    // A separate process, killed at the end: a worker stuck in a blocking
    // open would keep an in-process proxy from shutting down.
    let p = common::proxy_process::ProxyProcess::start(
        "",
        &format!("server {{ listen LISTEN; root {}; }}", d.display()),
    );
    // Nobody writes to the FIFO: a blocking open would never return.
    let wait = std::time::Duration::from_secs(5);
    let r = tokio::time::timeout(wait, get(p.addr, "/pipe", &[]))
        .await
        .expect("the FIFO is answered at once");
    assert_eq!(r.status, 404);
    let r = tokio::time::timeout(wait, get(p.addr, "/a.txt", &[]))
        .await
        .expect("the worker still answers");
    assert_eq!(r.text(), "A");
    std::fs::remove_dir_all(&d).expect("cleanup");
}

/// The same requests to the proxy and to nginx over the same tree
/// (tests/compare/static_vs_nginx.py: try_files, alias with captures,
/// index, ranges, autoindex, error_page files, charset, `return` types,
/// gzip_proxied): run where nginx and python3 are installed, skipped else.
#[test]
fn the_same_answers_as_nginx_where_nginx_is_installed() {
    let python3 = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    // nginx where the other comparisons find it (also in /usr/sbin when it
    // is not on PATH); the script runs it as `nginx`.
    let Some(nginx) = common::nginx_binary() else {
        println!("skipped: nginx is not installed");
        return;
    };
    if !python3 {
        println!("skipped: nginx or python3 is not installed");
        return;
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compare/static_vs_nginx.py");
    let dir = nginx.parent().map(Path::to_path_buf).unwrap_or_default();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&path)))
        .expect("a PATH");
    let out = std::process::Command::new("python3")
        .env("PATH", path)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_proxy"))
        .output()
        .expect("run the comparison");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "answers differ from nginx's:\n{text}");
}
