//! Backends for the checker's tests: real listeners on `127.0.0.1:0`, served
//! by tasks of the test's tokio runtime.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A listener that answers each connection with `reply` once it has read
/// the request (`None`: accepts and never answers). Returns its address and a
/// channel of the requests it read.
pub async fn backend(
    reply: Option<&'static [u8]>,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1024];
                let mut got = Vec::new();
                while !got.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(got);
                match reply {
                    Some(r) => {
                        let _ = stream.write_all(r).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(5)).await,
                }
            });
        }
    });
    (addr, rx)
}

/// An address nothing listens on.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An HTTP/1.1 backend that answers every request on a connection with
/// `reply` (closing after each one with `close_each`) and counts the
/// connections it accepted.
pub async fn keepalive_backend(
    reply: &'static [u8],
    close_each: bool,
) -> (SocketAddr, Arc<AtomicUsize>) {
    serve(reply, close_each, None).await
}

/// [`keepalive_backend`] behind TLS with `config` (connections kept).
pub async fn tls_backend(
    reply: &'static [u8],
    config: Arc<rustls::ServerConfig>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    serve(reply, false, Some(tokio_rustls::TlsAcceptor::from(config))).await
}

async fn serve(
    reply: &'static [u8],
    close_each: bool,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => answer_each(stream, reply, close_each).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            answer_each(stream, reply, close_each).await;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// Answers every request read from `stream` with `reply`.
async fn answer_each(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    reply: &'static [u8],
    close_each: bool,
) {
    let mut buf = vec![0u8; 1024];
    let mut got = Vec::new();
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            got.drain(..end + 4);
            if stream.write_all(reply).await.is_err() || close_each {
                return;
            }
            let _ = stream.flush().await;
        }
    }
}

/// A self-signed certificate for `name`: the rustls settings of a server
/// showing it, and a store trusting it.
pub fn self_signed(name: &str) -> (Arc<rustls::ServerConfig>, rustls::RootCertStore) {
    let made = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let cert = made.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    (Arc::new(config), roots)
}
