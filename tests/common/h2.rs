//! An HTTP/2 client for the tests (hyper's, on the `h2` crate): h2c with
//! prior knowledge, or over TLS with ALPN `h2`; its answers are the same
//! [`Reply`] the HTTP/1.1 client gives.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::client::conn::http2::SendRequest;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{empty, BoxBody, Reply};

/// One HTTP/2 connection to the proxy; clones share it (concurrent streams).
#[derive(Clone)]
pub struct H2Client {
    sender: SendRequest<BoxBody>,
    /// `http` (h2c) or `https`.
    scheme: &'static str,
    /// Becomes true when the connection has ended (after a GOAWAY, say).
    ended: tokio::sync::watch::Receiver<bool>,
}

impl H2Client {
    /// h2c: the connection preface right away, no upgrade.
    pub async fn connect(addr: SocketAddr) -> H2Client {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to proxy");
        H2Client::handshake(TokioIo::new(stream), "http").await
    }

    /// HTTP/2 over TLS; panics unless ALPN chose `h2`.
    pub async fn connect_tls(
        addr: SocketAddr,
        roots: rustls::RootCertStore,
        sni: &str,
    ) -> H2Client {
        let tls = tls_connect(addr, roots, sni, &[b"h2", b"http/1.1"]).await;
        assert_eq!(
            tls.get_ref().1.alpn_protocol(),
            Some(&b"h2"[..]),
            "ALPN did not choose h2"
        );
        H2Client::handshake(TokioIo::new(tls), "https").await
    }

    async fn handshake<T>(io: T, scheme: &'static str) -> H2Client
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("HTTP/2 handshake");
        let (tx, ended) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = conn.await;
            let _ = tx.send(true);
        });
        H2Client {
            sender,
            scheme,
            ended,
        }
    }

    /// Sends a request to `authority` (`:authority`); each header as given,
    /// in order (several `cookie` lines stay several crumbs).
    pub async fn send(
        &self,
        method: &str,
        authority: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: BoxBody,
    ) -> Result<Reply, hyper::Error> {
        Reply::read(
            self.send_raw(method, authority, path, headers, body)
                .await?,
        )
        .await
    }

    /// Sends a request; the response as it arrives (its body unread: the
    /// client's window is not opened until it is read).
    pub async fn send_raw(
        &self,
        method: &str,
        authority: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: BoxBody,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}://{authority}{path}", self.scheme));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body).expect("request");
        let mut sender = self.sender.clone();
        sender.ready().await?;
        sender.send_request(req).await
    }

    /// Whether the connection ends within `wait`.
    pub async fn ends_within(&self, wait: std::time::Duration) -> bool {
        let mut ended = self.ended.clone();
        let waited = tokio::time::timeout(wait, ended.wait_for(|e| *e)).await;
        waited.is_ok()
    }

    /// A GET to `localhost`.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", "localhost", path, headers, empty())
            .await
            .expect("request through the proxy")
    }
}

/// A TLS connection offering the ALPN protocols `alpn`.
pub async fn tls_connect(
    addr: SocketAddr,
    roots: rustls::RootCertStore,
    sni: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to proxy");
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("TLS handshake")
}

/// A self-signed certificate for `names`, written as `DIR/NAME.pem` and
/// `DIR/NAME.key`; the root store that trusts it.
pub fn self_signed(dir: &std::path::Path, file: &str, names: &[&str]) -> rustls::RootCertStore {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let made = rcgen::generate_simple_self_signed(names).expect("certificate");
    std::fs::create_dir_all(dir).expect("cert dir");
    std::fs::write(dir.join(format!("{file}.pem")), made.cert.pem()).expect("write cert");
    std::fs::write(
        dir.join(format!("{file}.key")),
        made.signing_key.serialize_pem(),
    )
    .expect("write key");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("root");
    roots
}

/// A configuration with servers sharing one `ssl` listener, each
/// `(server_name, more directives)`, the first the default, all with the
/// certificate `self_signed` wrote as `dir/site.*`, proxying to `backend`.
pub fn ssl_servers_conf(dir: &std::path::Path, backend: &str, servers: &[(&str, &str)]) -> String {
    let certs = format!(
        "ssl_certificate {0}/site.pem; ssl_certificate_key {0}/site.key;",
        dir.display()
    );
    let servers: String = servers
        .iter()
        .map(|(name, extra)| {
            format!(
                " server {{ listen 127.0.0.1:0 ssl; server_name {name}; {extra} {certs} location / {{ proxy_pass http://app; }} }}\n"
            )
        })
        .collect();
    format!("events {{}}\nhttp {{\n upstream app {{ server {backend}; }}\n{servers}}}\n")
}
