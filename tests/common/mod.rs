//! Test harness: echo backends on 127.0.0.1:0, the proxy started in-process from
//! config text, and a small HTTP/1.1 client.
//!
//! A [`Backend`] answers every request with a body describing what it received:
//! `backend NAME`, the request line, then every header as `name: value`, one per
//! line. Request headers steer it: `x-status: N` sets the status, `x-set-cookie:
//! V` adds `Set-Cookie: V`, `x-location: V` / `x-refresh: V` answer with that
//! `Location` / `Refresh`, `x-size: N` answers with N bytes of body (streamed),
//! `x-resp-header: NAME: VALUE` (repeatable) adds a response header, and a
//! request body is read to the end and its length reported as `body N`.
//! A backend can be stopped and started again on the same port.

#![allow(dead_code)]

pub mod dns;
pub mod h2;
pub mod h2raw;
pub mod nginx;
pub mod pki;
pub mod proxy_process;
pub mod unix;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sticky_proxy::server::{Proxy, RunningProxy};

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// An in-process echo backend.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    /// Requests served since start (all runs).
    pub hits: Arc<AtomicUsize>,
    /// TCP connections accepted since start (all runs).
    pub conns: Arc<AtomicUsize>,
    /// The TLS handshakes finished, when the backend speaks TLS
    /// ([`Backend::start_tls`]).
    pub handshakes: Arc<std::sync::Mutex<Vec<pki::Handshake>>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    /// Starts a backend on a fresh port.
    pub fn start(name: &str) -> Backend {
        Backend::start_at(name, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a backend on `addr` (port 0: a fresh one; or another loopback
    /// address such as 127.0.0.2 with the port of a backend on 127.0.0.1: one
    /// DNS name, one port, several peers).
    pub fn start_at(name: &str, addr: SocketAddr) -> Backend {
        Backend::start_with(name, addr, None)
    }

    /// Starts an HTTPS backend on a fresh port with the rustls `config`.
    pub fn start_tls(name: &str, config: Arc<rustls::ServerConfig>) -> Backend {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        Backend::start_with(name, SocketAddr::from(([127, 0, 0, 1], 0)), Some(acceptor))
    }

    fn start_with(name: &str, addr: SocketAddr, tls: Option<tokio_rustls::TlsAcceptor>) -> Backend {
        let listener = std::net::TcpListener::bind(addr).expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let mut b = Backend {
            name: name.to_string(),
            addr,
            hits: Arc::new(AtomicUsize::new(0)),
            conns: Arc::new(AtomicUsize::new(0)),
            handshakes: Arc::default(),
            tls,
            stop: None,
            thread: None,
        };
        b.run(listener);
        b
    }

    /// `127.0.0.1:PORT`, the peer name the proxy hashes.
    pub fn peer(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// md5 of the peer name: the sid Tengine gives this backend.
    pub fn sid(&self) -> String {
        sticky_proxy::sticky::sid::md5_sid(&self.peer())
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn run(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let name = self.name.clone();
        let hits = Arc::clone(&self.hits);
        let conns = Arc::clone(&self.conns);
        let tls = self.tls.clone();
        let handshakes = Arc::clone(&self.handshakes);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("backend runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
                std::thread::spawn(move || {
                    let _ = rx.recv();
                    let _ = stop_tx.send(());
                });
                let mut tasks = Vec::new();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            conns.fetch_add(1, Ordering::SeqCst);
                            let name = name.clone();
                            let hits = Arc::clone(&hits);
                            let tls = tls.clone();
                            let handshakes = Arc::clone(&handshakes);
                            tasks.push(tokio::spawn(async move {
                                let svc = service_fn(move |req| {
                                    hits.fetch_add(1, Ordering::SeqCst);
                                    echo(name.clone(), req)
                                });
                                let http = hyper::server::conn::http1::Builder::new();
                                match tls {
                                    None => {
                                        let _ = http
                                            .serve_connection(TokioIo::new(stream), svc)
                                            .with_upgrades()
                                            .await;
                                    }
                                    Some(acceptor) => {
                                        let Ok(stream) = acceptor.accept(stream).await else {
                                            return;
                                        };
                                        handshakes
                                            .lock()
                                            .unwrap()
                                            .push(pki::Handshake::of(stream.get_ref().1));
                                        let _ = http
                                            .serve_connection(TokioIo::new(stream), svc)
                                            .with_upgrades()
                                            .await;
                                    }
                                }
                            }));
                        }
                    }
                }
                for t in tasks {
                    t.abort();
                }
            });
        });
        self.stop = Some(tx);
        self.thread = Some(thread);
    }

    /// Stops accepting and closes every connection.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Starts again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let listener = bind_reuse(self.addr);
        self.run(listener);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind_reuse(addr: SocketAddr) -> std::net::TcpListener {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_reuse_address(true).expect("reuseaddr");
    socket.bind(&addr.into()).expect("rebind backend");
    socket.listen(128).expect("listen");
    socket.into()
}

async fn echo(name: String, req: Request<Incoming>) -> Result<Response<BoxBody>, Infallible> {
    let mut text = format!("backend {name}\n{} {}\n", req.method(), req.uri());
    for (k, v) in req.headers() {
        text.push_str(&format!(
            "{}: {}\n",
            k,
            String::from_utf8_lossy(v.as_bytes())
        ));
    }
    let status = header(&req, "x-status")
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(200);
    let set_cookies: Vec<String> = req
        .headers()
        .get_all("x-set-cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let resp_headers: Vec<(String, String)> = req
        .headers()
        .get_all("x-resp-header")
        .iter()
        .filter_map(|v| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            v.split_once(": ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    // `x-location` / `x-refresh`: answered as `Location` / `Refresh`.
    let redirects: Vec<(&str, String)> = [("location", "x-location"), ("refresh", "x-refresh")]
        .into_iter()
        .filter_map(|(name, from)| header(&req, from).map(|v| (name, v)))
        .collect();
    let size = header(&req, "x-size").and_then(|s| s.parse::<u64>().ok());
    let chunked = req.headers().contains_key("x-chunked");
    let delay = header(&req, "x-delay-ms").and_then(|s| s.parse::<u64>().ok());
    let upgrade = req.headers().contains_key("upgrade");
    if upgrade {
        return Ok(upgrade_echo(req));
    }
    let mut body = req.into_body();
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    received += d.len() as u64;
                }
            }
            Err(_) => break,
        }
    }
    if received > 0 {
        text.push_str(&format!("body {received}\n"));
    }
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let body: BoxBody = match size {
        Some(n) => streamed(n, !chunked),
        None => Full::new(Bytes::from(text)).boxed(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut().insert("server", "echo".parse().unwrap());
    for c in set_cookies {
        resp.headers_mut().append("set-cookie", c.parse().unwrap());
    }
    for (k, v) in resp_headers {
        let name = hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap();
        resp.headers_mut().append(name, v.parse().unwrap());
    }
    for (name, v) in redirects {
        resp.headers_mut().insert(name, v.parse().unwrap());
    }
    Ok(resp)
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// `n` bytes of `x` in 64 KiB chunks, produced as the client reads them;
/// with `Content-Length` when `exact`, chunked otherwise.
fn streamed(n: u64, exact: bool) -> BoxBody {
    Counted {
        left: n,
        chunk: Bytes::from(vec![b'x'; 64 * 1024]),
        exact,
    }
    .boxed()
}

/// A body of `left` bytes made on demand.
pub struct Counted {
    pub left: u64,
    pub chunk: Bytes,
    /// Whether the size is told (`Content-Length`; else the body is chunked).
    pub exact: bool,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64);
        self.left -= n;
        let data = self.chunk.slice(..n as usize);
        std::task::Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.exact {
            hyper::body::SizeHint::with_exact(self.left)
        } else {
            hyper::body::SizeHint::default()
        }
    }
}

/// Answers an upgrade with 101 and then echoes bytes back, upper-cased.
fn upgrade_echo(mut req: Request<Incoming>) -> Response<BoxBody> {
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(up) = on.await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut io = TokioIo::new(up);
            let mut buf = [0u8; 1024];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let upper: Vec<u8> = buf[..n].iter().map(u8::to_ascii_uppercase).collect();
                if io.write_all(&upper).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()).boxed());
    *resp.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    resp.headers_mut()
        .insert("connection", "upgrade".parse().unwrap());
    resp.headers_mut()
        .insert("upgrade", "echo".parse().unwrap());
    resp
}

/// The proxy running in-process.
pub struct TestProxy {
    pub running: RunningProxy,
    pub addr: SocketAddr,
}

/// Loads `text` as the configuration (includes relative to the crate root) and
/// starts the proxy. Panics with the config error when the text is rejected.
pub fn start_proxy(text: &str) -> TestProxy {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test.conf");
    let (config, _warnings) = match sticky_proxy::config::load_str(text, &file) {
        Ok(c) => c,
        Err(e) => panic!("config rejected: {e}\n{text}"),
    };
    let running = Proxy::start(config).expect("proxy starts");
    let addr = running.addr();
    TestProxy { running, addr }
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Reads `resp` whole (HTTP/1.1 or HTTP/2).
    pub async fn read(resp: Response<Incoming>) -> Result<Reply, hyper::Error> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Which backend answered (`None` for a proxy-made response).
    pub fn backend(&self) -> Option<String> {
        self.text()
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("backend "))
            .map(str::to_string)
    }

    /// Values of a request header as the backend received it.
    pub fn seen(&self, name: &str) -> Vec<String> {
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        self.text()
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// The request line the backend received (`GET /x HTTP/1.1` without version).
    pub fn seen_request_line(&self) -> Option<String> {
        self.text().lines().nth(1).map(str::to_string)
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The `NAME=VALUE` value of the first Set-Cookie for `name`.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.set_cookies().iter().find_map(|c| {
            c.split(';')
                .next()
                .and_then(|p| p.strip_prefix(&prefix))
                .map(str::to_string)
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// A keep-alive client connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<BoxBody>,
    pub addr: SocketAddr,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to proxy");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Client { sender, addr }
    }

    /// Sends a request; `headers` are added as given (a Host is added if absent).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: BoxBody,
    ) -> Result<Reply, hyper::Error> {
        Reply::read(self.send_raw(method, path, headers, body).await?).await
    }

    pub async fn send_raw(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: BoxBody,
    ) -> Result<Response<Incoming>, hyper::Error> {
        let mut req = Request::builder().method(method).uri(path);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req = req.header("host", "localhost");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body).expect("request");
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, empty())
            .await
            .expect("request through the proxy")
    }
}

pub fn empty() -> BoxBody {
    Full::new(Bytes::new()).boxed()
}

pub fn full(data: impl Into<Bytes>) -> BoxBody {
    Full::new(data.into()).boxed()
}

/// A body of `n` bytes produced on demand.
pub fn sized(n: u64) -> BoxBody {
    Counted {
        left: n,
        chunk: Bytes::from(vec![b'y'; 64 * 1024]),
        exact: true,
    }
    .boxed()
}

/// One GET on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    Client::connect(addr).await.get(path, headers).await
}

/// Writes `bytes` on a fresh connection, then reads until the proxy closes the
/// connection or `wait` passes without data.
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An address nothing listens on (bound then released).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

/// `n` addresses nothing listens on, all different: held bound together, then
/// released, so two of them can never be the same port (as two calls of
/// [`dead_addr`] can).
pub fn dead_addrs(n: usize) -> Vec<SocketAddr> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter().map(|l| l.local_addr().expect("addr")).collect()
}

/// The nginx binary on PATH (or in the usual sbin directories), for the tests
/// that compare with nginx itself; `None` when nginx is not installed.
pub fn nginx_binary() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let usual = ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"];
    std::env::split_paths(&path)
        .chain(usual.map(std::path::PathBuf::from))
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// `bin` started the way nginx's own test tooling (nginx-tests'
/// `lib/Test/Nginx.pm`) starts nginx: `-p PREFIX/ -c nginx.conf -e error.log -g
/// GLOBALS`, output discarded. Used for both this proxy and nginx.
pub fn spawn_like_test_nginx(bin: &Path, prefix: &Path, globals: &str) -> std::process::Child {
    std::process::Command::new(bin)
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .args(["-c", "nginx.conf", "-e", "error.log", "-g", globals])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the server")
}

/// An upstream `app` with `sticky` over `servers`, one server block proxying `/`.
pub fn sticky_conf(sticky: &str, servers: &[String]) -> String {
    let servers: String = servers
        .iter()
        .map(|s| format!("    server {s};\n"))
        .collect();
    format!(
        "events {{}}\nhttp {{\n  upstream app {{\n    {sticky};\n{servers}  }}\n  server {{\n    listen 127.0.0.1:0;\n    location / {{ proxy_pass http://app; }}\n  }}\n}}\n"
    )
}

/// Waits until `path` holds `lines` lines, and returns them.
pub fn read_lines(path: &Path, lines: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let got: Vec<String> = text.lines().map(str::to_string).collect();
        if got.len() >= lines || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `tests/SCRIPT` with bash and the proxy binary as its argument, prints
/// its output, and checks it ended with `marker` (or skipped, printing
/// `skipped: ...` first, when a tool it needs is missing).
pub fn run_external_script(script: &str, binary: &str, marker: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let out = match std::process::Command::new("bash")
        .arg(&path)
        .arg(binary)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run bash: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(marker) || stdout.starts_with("skipped:"),
        "{stdout}"
    );
}

/// A fresh directory `stem-PID` in the temporary directory, holding `files`
/// (name, content).
pub fn fresh_dir(stem: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{stem}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (file, content) in files {
        std::fs::write(dir.join(file), content).expect("write");
    }
    dir
}
