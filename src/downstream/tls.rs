//! TLS towards the clients: the handshake of a connection accepted on an
//! `ssl` listener, before the HTTP/1 loop (`conn`) serves it over the TLS
//! stream.
//!
//! The first byte tells TLS (a handshake record, `0x16`, or an SSLv2 hello)
//! from plain HTTP, as nginx does: a plain-HTTP client is served by the same
//! loop, which answers its request with nginx's `400 The plain HTTP request
//! was sent to HTTPS port`. For TLS, the ClientHello is read first, its SNI
//! name chooses the server's settings and certificates (`choose`, given by
//! the server layer: nothing here knows the routing), and the handshake
//! finishes with them. The whole is bounded by the handshake timeout; a
//! malformed or truncated hello ends the connection with rustls' error, never
//! more.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::downstream::body::ClientStream;
use crate::tls::{ServerTls, TlsInfo};

/// What a connection on a TLS listener turned out to be.
pub enum Accepted {
    /// A finished handshake: the stream and its facts.
    Tls(ClientStream, TlsInfo),
    /// The client speaks plain HTTP.
    PlainHttp(ClientStream),
}

/// Whether `first`, a connection's first byte, starts a TLS handshake record
/// (or an SSLv2-framed hello, which rustls then refuses).
pub fn starts_tls(first: u8) -> bool {
    first == 0x16 || first & 0x80 != 0
}

/// Runs the server side of a handshake within `timeout`. `None`: the client
/// closed, stalled, or the handshake failed (logged at `info`, as nginx
/// does).
pub async fn accept(
    stream: TcpStream,
    choose: impl FnOnce(Option<&str>) -> (Arc<ServerTls>, bool),
    timeout: Duration,
) -> Option<Accepted> {
    let remote = stream.peer_addr().ok();
    let handshake = async move {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) => {}
            _ => return None,
        }
        if !first.first().copied().is_some_and(starts_tls) {
            return Some(Accepted::PlainHttp(ClientStream::Plain(stream)));
        }
        let start = match LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await
        {
            Ok(start) => start,
            Err(e) => {
                tracing::info!("SSL handshake with {remote:?} failed: {e}");
                return None;
            }
        };
        let (site, http2) = choose(start.client_hello().server_name());
        let config = if http2 { &site.config_h2 } else { &site.config };
        match start.into_stream(Arc::clone(config)).await {
            Ok(tls) => {
                let info = site.info(tls.get_ref().1);
                Some(Accepted::Tls(
                    ClientStream::Tls(Box::new(std::cell::RefCell::new(tls))),
                    info,
                ))
            }
            Err(e) => {
                tracing::info!("SSL handshake with {remote:?} failed: {e}");
                None
            }
        }
    };
    if timeout.is_zero() {
        return handshake.await;
    }
    match tokio::time::timeout(timeout, handshake).await {
        Ok(accepted) => accepted,
        Err(_) => {
            tracing::info!("client {remote:?} timed out while SSL handshaking");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::starts_tls;

    #[test]
    fn first_byte_tells_tls_from_plain_http() {
        for b in [0x16u8, 0x80, 0xff] {
            assert!(starts_tls(b), "{b:#x}");
        }
        for b in *b"GPHDOCT\r\n\x00\x15\x17" {
            assert!(!starts_tls(b), "{b:#x}");
        }
    }
}
