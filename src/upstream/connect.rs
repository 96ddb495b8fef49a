//! Opening a connection to a backend: TCP, a Unix stream socket, or TCP and
//! a TLS handshake, each within `proxy_connect_timeout`. What is exchanged on
//! the connection afterwards is `upstream::client`'s.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;

use crate::upstream::client::Transport;
use crate::upstream::stream::{self, ConnKey, Stream};

/// Why a new backend connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// `proxy_connect_timeout` expired.
    Timeout,
    /// Refused, unreachable, reset.
    Io(std::io::Error),
    /// The TLS handshake failed (or the backend's certificate did not verify).
    Tls(std::io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => write!(f, "upstream timed out while connecting"),
            ConnectError::Io(e) => write!(f, "connect() to upstream failed: {e}"),
            ConnectError::Tls(e) => write!(f, "upstream SSL handshake failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Opens a connection to `addr` within `timeout` (0: no limit).
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Transport, ConnectError> {
    let stream = if timeout.is_zero() {
        TcpStream::connect(addr).await
    } else {
        tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout)?
    }
    .map_err(ConnectError::Io)?;
    // Small requests and responses: do not let Nagle hold the last segment.
    stream.set_nodelay(true).map_err(ConnectError::Io)?;
    Ok(Transport {
        stream: Stream::Tcp(stream),
        buf: BytesMut::new(),
        key: ConnKey::Plain,
    })
}

/// Opens a connection to the Unix stream socket at `path` within `timeout`
/// (0: no limit). TLS over a Unix socket is not supported.
pub async fn connect_unix(
    path: &std::path::Path,
    timeout: Duration,
    key: &ConnKey,
) -> Result<Transport, ConnectError> {
    if !matches!(key, ConnKey::Plain) {
        return Err(ConnectError::Tls(std::io::Error::other(
            "TLS to a unix socket is not supported",
        )));
    }
    let stream = if timeout.is_zero() {
        tokio::net::UnixStream::connect(path).await
    } else {
        tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
            .await
            .map_err(|_| ConnectError::Timeout)?
    }
    .map_err(ConnectError::Io)?;
    Ok(Transport {
        stream: Stream::Unix(stream),
        buf: BytesMut::new(),
        key: ConnKey::Plain,
    })
}

/// Opens a connection to `addr` and, for a TLS `key`, runs the handshake:
/// both within `timeout` (0: no limit), as nginx's `proxy_connect_timeout`
/// covers the SSL handshake.
pub async fn connect_keyed(
    addr: SocketAddr,
    timeout: Duration,
    key: &ConnKey,
) -> Result<Transport, ConnectError> {
    let ConnKey::Tls(target) = key else {
        return connect(addr, timeout).await;
    };
    let started = async {
        let mut io = connect(addr, Duration::ZERO).await?;
        let Stream::Tcp(tcp) = io.stream else {
            return Err(ConnectError::Io(std::io::ErrorKind::InvalidInput.into()));
        };
        io.stream = stream::handshake(tcp, target)
            .await
            .map_err(ConnectError::Tls)?;
        io.key = key.clone();
        Ok(io)
    };
    if timeout.is_zero() {
        started.await
    } else {
        tokio::time::timeout(timeout, started)
            .await
            .map_err(|_| ConnectError::Timeout)?
    }
}
