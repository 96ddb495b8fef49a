//! `open_file_cache` against the live proxy (issue 18): a cached file is
//! served from its open descriptor until `open_file_cache_valid` has passed
//! (a file replaced or deleted meanwhile is still served, as nginx does),
//! `open_file_cache_errors on` keeps a missing file missing for as long,
//! `min_uses`, `inactive` and `max` decide which descriptors stay open (seen
//! in this process's /proc/self/fd: the proxy runs in it). Where nginx is
//! installed, it answers the same requests in the same order.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::nginx::Nginx;
use common::*;

/// A fresh directory with `files` (name, content).
fn dir_with(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(f, c)| (*f, c.as_bytes())).collect();
    fresh_dir(&format!("sp-ofc-{name}"), &files)
}

/// Replaces `dir/name` with new content as a deployment does: a new file
/// renamed over the old one (a new inode).
fn replace(dir: &Path, name: &str, content: &str) {
    let tmp = dir.join(format!(".{name}.new"));
    std::fs::write(&tmp, content).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// Descriptors of this process open on `path`.
fn open_fds(path: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

/// Descriptors on `path` once the count reaches `want` (a response's own
/// descriptor closes when the proxy is done with its connection), or after
/// 2 s.
async fn settled_fds(path: &Path, want: usize) -> usize {
    for _ in 0..200 {
        if open_fds(path) == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    open_fds(path)
}

/// Whether the proxy holds `path` open once its connections are done (the
/// cache's descriptor, which a response shares, and nothing more).
async fn held(path: &Path) -> bool {
    tokio::time::sleep(Duration::from_millis(300)).await;
    open_fds(path) == 1
}

/// `/c/` cached, `/e/` cached with `open_file_cache_errors on`, `/n/` not
/// cached, all serving `dir`; `valid` seconds of `open_file_cache_valid`.
fn server_body(listen: &str, dir: &Path, valid: u64) -> String {
    let d = dir.display();
    format!(
        "server {{\n listen {listen};\n default_type text/plain;\n\
         location /c/ {{ alias {d}/; open_file_cache max=10 inactive=60s; open_file_cache_valid {valid}s; }}\n\
         location /e/ {{ alias {d}/; open_file_cache max=10; open_file_cache_valid {valid}s; open_file_cache_errors on; }}\n\
         location /n/ {{ alias {d}/; }}\n}}\n"
    )
}

async fn answer(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = get(addr, path, &[]).await;
    let body = if r.status == 200 {
        String::from_utf8_lossy(&r.body).into_owned()
    } else {
        String::new()
    };
    (r.status, body)
}

/// The requests of the test, in order, with what each must answer; `who`
/// names the server in failures.
async fn replaced_and_deleted_files(who: &str, addr: SocketAddr, dir: &Path) {
    let expect = |path: &'static str, status: u16, body: &'static str| (path, status, body);
    let check = |steps: Vec<(&'static str, u16, &'static str)>| async move {
        for (path, status, body) in steps {
            assert_eq!(
                answer(addr, path).await,
                (status, body.to_string()),
                "{who}: {path}"
            );
        }
    };
    check(vec![
        expect("/c/a.txt", 200, "one"),
        expect("/e/missing.txt", 404, ""),
    ])
    .await;
    replace(dir, "a.txt", "two!");
    std::fs::write(dir.join("missing.txt"), "here").expect("write");
    check(vec![
        // Within `valid`: the descriptor opened first, the error seen first.
        expect("/c/a.txt", 200, "one"),
        expect("/e/missing.txt", 404, ""),
        // Not cached: the files as they are.
        expect("/n/a.txt", 200, "two!"),
        expect("/n/missing.txt", 200, "here"),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    check(vec![
        expect("/c/a.txt", 200, "two!"),
        expect("/e/missing.txt", 200, "here"),
    ])
    .await;
    std::fs::remove_file(dir.join("a.txt")).expect("rm");
    check(vec![
        expect("/c/a.txt", 200, "two!"),
        expect("/n/a.txt", 404, ""),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    check(vec![expect("/c/a.txt", 404, "")]).await;
}

#[tokio::test]
async fn cached_files_are_checked_again_after_valid_as_nginx_does() {
    let ours_dir = dir_with("valid-ours", &[("a.txt", "one")]);
    let nginx_dir = dir_with("valid-nginx", &[("a.txt", "one")]);
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n{}}}\n",
        server_body("127.0.0.1:0", &ours_dir, 3)
    ));
    // The cached location keeps the file open; the other one does not.
    // (Another file than the test's: its `valid` starts with the test.)
    std::fs::write(ours_dir.join("w.txt"), "w").expect("write");
    get(p.addr, "/c/w.txt", &[]).await;
    assert!(held(&ours_dir.join("w.txt")).await);
    std::fs::write(ours_dir.join("b.txt"), "b").expect("write");
    get(p.addr, "/n/b.txt", &[]).await;
    assert_eq!(settled_fds(&ours_dir.join("b.txt"), 0).await, 0);
    let nginx = Nginx::start(&server_body("LISTEN", &nginx_dir, 3));
    let theirs = async {
        match &nginx {
            Some(n) => replaced_and_deleted_files("nginx", n.addr, &nginx_dir).await,
            None => eprintln!("nginx not installed: only ours"),
        }
    };
    tokio::join!(
        replaced_and_deleted_files("ours", p.addr, &ours_dir),
        theirs
    );
    let _ = std::fs::remove_dir_all(&ours_dir);
    let _ = std::fs::remove_dir_all(&nginx_dir);
}

#[tokio::test]
async fn min_uses_inactive_and_max_decide_which_descriptors_stay_open() {
    let dir = dir_with("limits", &[("a.txt", "a"), ("b.txt", "b"), ("c.txt", "c")]);
    let d = dir.display();
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:0;\n\
         location /u/ {{ alias {d}/; open_file_cache max=10 inactive=3s; open_file_cache_min_uses 2; }}\n\
         location /m/ {{ alias {d}/; open_file_cache max=1; }}\n }}\n}}\n"
    ));
    // min_uses 2: the second request keeps the descriptor.
    assert_eq!(get(p.addr, "/u/a.txt", &[]).await.status, 200);
    assert_eq!(settled_fds(&dir.join("a.txt"), 0).await, 0);
    assert_eq!(get(p.addr, "/u/a.txt", &[]).await.status, 200);
    assert!(held(&dir.join("a.txt")).await);
    // inactive 3s (the two uses above are well within it): unused that
    // long, the entry leaves at the next lookup.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(get(p.addr, "/u/b.txt", &[]).await.status, 200);
    assert_eq!(settled_fds(&dir.join("a.txt"), 0).await, 0);
    // max=1 (another cache): the newest file pushes out the older one.
    assert_eq!(get(p.addr, "/m/b.txt", &[]).await.body, "b");
    assert!(held(&dir.join("b.txt")).await);
    assert_eq!(get(p.addr, "/m/c.txt", &[]).await.body, "c");
    assert_eq!(settled_fds(&dir.join("b.txt"), 0).await, 0);
    assert!(held(&dir.join("c.txt")).await);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `try_files` looks files up through the cache, as nginx does: a cached file
/// deleted meanwhile is still found (and served), a missing one falls back.
async fn try_files_sequence(who: &str, addr: SocketAddr, dir: &Path) {
    assert_eq!(
        answer(addr, "/x.txt").await,
        (200, "x".to_string()),
        "{who}"
    );
    std::fs::remove_file(dir.join("x.txt")).expect("rm");
    assert_eq!(
        answer(addr, "/x.txt").await,
        (200, "x".to_string()),
        "{who}: cached"
    );
    assert_eq!(
        answer(addr, "/y.txt").await,
        (200, "fallback".to_string()),
        "{who}: missing"
    );
}

#[tokio::test]
async fn try_files_sees_the_cache_as_nginx_does() {
    let body = |listen: &str, dir: &Path| {
        format!(
            "server {{\n listen {listen};\n default_type text/plain;\n root {};\n\
             location / {{ open_file_cache max=10; open_file_cache_valid 30s; try_files $uri /fallback.txt; }}\n}}\n",
            dir.display()
        )
    };
    let files = [("x.txt", "x"), ("fallback.txt", "fallback")];
    let ours_dir = dir_with("tf-ours", &files);
    let p = start_proxy(&format!(
        "events {{}}\nhttp {{\n{}}}\n",
        body("127.0.0.1:0", &ours_dir)
    ));
    try_files_sequence("ours", p.addr, &ours_dir).await;
    let nginx_dir = dir_with("tf-nginx", &files);
    match Nginx::start(&body("LISTEN", &nginx_dir)) {
        Some(n) => try_files_sequence("nginx", n.addr, &nginx_dir).await,
        None => eprintln!("nginx not installed: only ours"),
    }
    let _ = std::fs::remove_dir_all(&ours_dir);
    let _ = std::fs::remove_dir_all(&nginx_dir);
}
