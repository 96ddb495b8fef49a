//! Large static files through sendfile(2) (issue 18): `sendfile on|off`,
//! `sendfile_max_chunk`, `tcp_nopush`, against the live proxy on plain TCP.
//! Each answer is compared byte for byte with the file; the same requests go
//! to a `sendfile off` location (read and written through user space) so
//! both paths are held to one behaviour: whole files larger than a socket
//! buffer, single ranges, HEAD, keep-alive after the file, a slow reader
//! (back-pressure, constant memory), a reader that stalls (`send_timeout`),
//! and a file truncated while it is sent (the connection ends, the proxy
//! goes on serving).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests of this file run one at a time: they hold files of tens of
/// megabytes, and one of them measures the process's memory.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bytes that differ from position to position (a shifted copy would show).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A fresh directory holding `files` (name, content).
fn dir_with(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    fresh_dir(&format!("sp-sendfile-{name}"), files)
}

/// A server with `/on/` (sendfile on, a small `sendfile_max_chunk`),
/// `/nopush/` (sendfile and tcp_nopush on), `/off/` (sendfile off) and
/// `/gz/` (sendfile on, gzip on: compressed through user space), all
/// serving `dir`, plus `extra` server directives.
fn conf(dir: &Path, extra: &str) -> String {
    let d = dir.display();
    format!(
        "events {{}}\nhttp {{\n  types {{ text/plain txt; application/octet-stream bin; }}\n  server {{\n    listen 127.0.0.1:0;\n    {extra}\n    location /on/ {{ alias {d}/; sendfile on; sendfile_max_chunk 256k; }}\n    location /nopush/ {{ alias {d}/; sendfile on; tcp_nopush on; }}\n    location /off/ {{ alias {d}/; sendfile off; }}\n    location /gz/ {{ alias {d}/; sendfile on; gzip on; gzip_types text/plain; }}\n  }}\n}}\n"
    )
}

/// The test process's resident memory (the proxy runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Sends a GET for `path` on a new connection and reads the response head.
/// Returns the stream, the head's text and the body bytes read with it.
async fn open_get(addr: std::net::SocketAddr, path: &str) -> (TcpStream, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("head in time")
            .expect("read");
        assert!(n > 0, "closed before the head");
        got.extend_from_slice(&buf[..n]);
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = got.split_off(at + 4);
            return (s, String::from_utf8_lossy(&got).into_owned(), body);
        }
    }
}

/// Reads until the proxy closes the connection (or `limit` bytes), failing
/// after `wait` without progress: never a hang.
async fn read_rest(s: &mut TcpStream, into: &mut Vec<u8>, limit: usize, wait: Duration) -> bool {
    let mut buf = vec![0u8; 256 * 1024];
    while into.len() < limit {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(n)) => into.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no byte and no close in {wait:?}"),
        }
    }
    false
}

#[tokio::test]
async fn large_files_are_byte_identical_with_sendfile_on_and_off_and_keep_alive_goes_on() {
    let _serial = SERIAL.lock().await;
    let big = pattern(3 * 1024 * 1024 + 17, 1);
    let text = "sticky proxy sendfile line\n".repeat(120_000);
    // The longest body sent with its head (4 KiB), and one byte more: by
    // sendfile(2).
    let edge = pattern(4096, 3);
    let over = pattern(4097, 4);
    let dir = dir_with(
        "whole",
        &[
            ("big.bin", &big),
            ("small.bin", b"tiny"),
            ("edge.bin", &edge),
            ("over.bin", &over),
            ("page.txt", text.as_bytes()),
        ],
    );
    let log = dir.join("access.log");
    let p = start_proxy(&conf(
        &dir,
        &format!(
            "log_format sizes '$uri $status $body_bytes_sent $bytes_sent';\n    access_log {} sizes;",
            log.display()
        ),
    ));
    // One keep-alive connection for everything: each file response leaves
    // it at the start of the next request.
    let mut c = Client::connect(p.addr).await;
    for prefix in ["/on/", "/nopush/", "/off/", "/on/"] {
        let r = c.get(&format!("{prefix}big.bin"), &[]).await;
        assert_eq!(r.status, 200, "{prefix}");
        assert_eq!(r.header("content-length"), Some(big.len().to_string()));
        assert!(r.body == big[..], "{prefix}: body differs from the file");
        let r = c.get(&format!("{prefix}small.bin"), &[]).await;
        assert_eq!((r.status, r.text().as_str()), (200, "tiny"), "{prefix}");
        for (name, file) in [("edge.bin", &edge), ("over.bin", &over)] {
            let r = c.get(&format!("{prefix}{name}"), &[]).await;
            assert_eq!(r.status, 200, "{prefix}{name}");
            assert_eq!(r.header("content-length"), Some(file.len().to_string()));
            assert!(
                r.body == file[..],
                "{prefix}{name}: body differs from the file"
            );
        }
    }
    // gzip with sendfile on: compressed through user space, chunked.
    let r = c.get("/gz/page.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(r.header("content-length"), None);
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut plain)
        .expect("gunzip");
    assert!(plain == text, "gzip body differs");
    // $body_bytes_sent counts what sendfile sent; $bytes_sent the head too.
    let lines = read_lines(&log, 17);
    assert_eq!(lines.len(), 17, "{lines:?}");
    for (name, len) in [
        ("big.bin", big.len()),
        ("edge.bin", 4096),
        ("over.bin", 4097),
    ] {
        let of_file: Vec<&String> = lines.iter().filter(|l| l.contains(name)).collect();
        assert_eq!(of_file.len(), 4, "{name}: {lines:?}");
        for line in of_file {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f[1], "200", "{line}");
            assert_eq!(f[2], len.to_string(), "{line}");
            let total: usize = f[3].parse().expect("bytes_sent");
            assert!(total > len + 100 && total < len + 400, "{line}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn single_ranges_and_head_of_a_large_file() {
    let _serial = SERIAL.lock().await;
    let big = pattern(3 * 1024 * 1024, 2);
    let dir = dir_with("range", &[("big.bin", &big)]);
    let p = start_proxy(&conf(&dir, ""));
    let mut c = Client::connect(p.addr).await;
    let size = big.len();
    for prefix in ["/on/", "/off/"] {
        let path = format!("{prefix}big.bin");
        for (range, from, to) in [
            ("bytes=1000-2000999", 1000, 2_000_999),
            ("bytes=-1048577", size - 1_048_577, size - 1),
            ("bytes=3000000-", 3_000_000, size - 1),
            ("bytes=0-0", 0, 0),
        ] {
            let r = c.get(&path, &[("range", range)]).await;
            assert_eq!(r.status, 206, "{prefix} {range}");
            assert_eq!(
                r.header("content-range"),
                Some(format!("bytes {from}-{to}/{size}")),
                "{prefix} {range}"
            );
            assert!(r.body == big[from..=to], "{prefix} {range}: wrong bytes");
        }
        // Two ranges: multipart, through user space whatever `sendfile`.
        let r = c
            .get(&path, &[("range", "bytes=0-9,2000000-2000009")])
            .await;
        assert_eq!(r.status, 206);
        let body = r.body.to_vec();
        let find = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(find(&big[0..10]) && find(&big[2_000_000..2_000_010]));
        // HEAD: the length, no body; the connection goes on.
        let r = c.send("HEAD", &path, &[], empty()).await.expect("HEAD");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(size.to_string()));
        assert!(r.body.is_empty());
        let r = c.get(&path, &[("range", "bytes=5-9")]).await;
        assert!(r.body == big[5..10]);
    }
    // Unsatisfiable: 416 with no file bytes.
    let r = c.get("/on/big.bin", &[("range", "bytes=4000000-")]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{size}")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_slow_reader_gets_the_whole_file_with_back_pressure_and_constant_memory() {
    let _serial = SERIAL.lock().await;
    let size = 32 * 1024 * 1024;
    let big = pattern(size, 3);
    let dir = dir_with("slow", &[("big.bin", &big)]);
    let p = start_proxy(&conf(&dir, "send_timeout 30s;"));
    for prefix in ["/on/", "/off/"] {
        let before = rss();
        let (mut s, head, first) = open_get(p.addr, &format!("{prefix}big.bin")).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains(&format!("Content-Length: {size}")), "{head}");
        // The client reads nothing for a while: the proxy can only fill the
        // socket buffers, and holds no copy of the file meanwhile.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let stalled = rss();
        assert!(
            stalled < before + 12 * 1024 * 1024,
            "{prefix}: memory grew by {} bytes while the client stalled",
            stalled.saturating_sub(before)
        );
        // Then it reads slowly (small pieces with pauses), then at full
        // speed; each piece is checked against the file where it belongs.
        assert!(first[..] == big[..first.len()]);
        let mut at = first.len();
        let mut buf = vec![0u8; 32 * 1024];
        let slow_until = Instant::now() + Duration::from_millis(500);
        while at < size {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .expect("progress")
                .expect("read");
            assert!(n > 0, "{prefix}: closed at {at} of {size}");
            assert!(
                buf[..n] == big[at..at + n],
                "{prefix}: bytes differ at {at}"
            );
            at += n;
            if Instant::now() < slow_until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        assert_eq!(at, size);
        assert!(
            rss() < before + 12 * 1024 * 1024,
            "{prefix}: memory grew while the file was sent"
        );
        // The connection is kept alive: a next request is answered.
        s.write_all(b"GET /on/big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n")
            .await
            .expect("write");
        let mut reply = Vec::new();
        let mut b = [0u8; 1024];
        while !reply.ends_with(&big[..2]) {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
                .await
                .expect("second answer")
                .expect("read");
            assert!(n > 0, "closed after the file");
            reply.extend_from_slice(&b[..n]);
        }
        assert!(reply.starts_with(b"HTTP/1.1 206"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_reader_that_stalls_is_closed_after_send_timeout() {
    let _serial = SERIAL.lock().await;
    let size = 32 * 1024 * 1024;
    let dir = dir_with("stall", &[("big.bin", &pattern(size, 4))]);
    let p = start_proxy(&conf(&dir, "send_timeout 1s;"));
    for prefix in ["/on/", "/off/"] {
        let (mut s, head, mut body) = open_get(p.addr, &format!("{prefix}big.bin")).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // What the socket buffers held arrives, then the close.
        let closed = read_rest(&mut s, &mut body, size, Duration::from_secs(5)).await;
        assert!(closed, "{prefix}: not closed");
        assert!(body.len() < size, "{prefix}: the whole file went out");
    }
    // The proxy goes on serving.
    let r = get(p.addr, "/on/big.bin", &[("range", "bytes=0-3")]).await;
    assert_eq!(r.status, 206);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_file_truncated_while_it_is_sent_ends_the_connection() {
    let _serial = SERIAL.lock().await;
    let size = 32 * 1024 * 1024;
    let big = pattern(size, 5);
    let dir = dir_with("trunc", &[("other.bin", b"still here")]);
    let log = dir.join("access.log");
    let p = start_proxy(&conf(
        &dir,
        &format!(
            "log_format sizes '$uri $status $body_bytes_sent';\n    access_log {} sizes;",
            log.display()
        ),
    ));
    for (i, prefix) in ["/on/", "/off/"].into_iter().enumerate() {
        let name = format!("big{i}.bin");
        std::fs::write(dir.join(&name), &big).expect("write");
        let (mut s, head, mut body) = open_get(p.addr, &format!("{prefix}{name}")).await;
        assert!(head.contains(&format!("Content-Length: {size}")), "{head}");
        // The proxy is blocked on the full socket: the file shrinks.
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(&name))
            .expect("open")
            .set_len(1024 * 1024)
            .expect("truncate");
        let closed = read_rest(&mut s, &mut body, size, Duration::from_secs(5)).await;
        assert!(closed, "{prefix}: not closed");
        assert!(body.len() < size, "{prefix}: {} bytes", body.len());
        // Up to the new end, the file's bytes. Past it, user space copies
        // hold the old bytes; sendfile's queued bytes are the file's pages
        // themselves, which the truncation zeroed (as with nginx): the
        // client knows from the early close that the answer is incomplete.
        let kept = body.len().min(1024 * 1024);
        assert!(body[..kept] == big[..kept], "{prefix}: bytes differ");
        let past_ok = |(i, &b): (usize, &u8)| b == big[kept + i] || (prefix == "/on/" && b == 0);
        assert!(
            body[kept..].iter().enumerate().all(past_ok),
            "{prefix}: past the end"
        );
        // The proxy keeps serving others.
        let r = get(p.addr, &format!("{prefix}other.bin"), &[]).await;
        assert_eq!((r.status, r.text().as_str()), (200, "still here"));
    }
    // Logged with what went out, not with the length promised.
    let lines = read_lines(&log, 4);
    let cut: Vec<&String> = lines.iter().filter(|l| l.contains("/big")).collect();
    assert_eq!(cut.len(), 2, "{lines:?}");
    for line in cut {
        let sent: usize = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("n");
        assert!(sent < size, "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
