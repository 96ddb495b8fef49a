//! The byte stream under a backend connection: plain TCP (the hot path, read
//! and written straight through tokio's socket calls), TLS (rustls through
//! tokio-rustls, `proxy_pass https://`) or a Unix stream socket (`server
//! unix:/path`), and the [`ConnKey`] that keeps the
//! keep-alive pool from handing a connection of one kind to a request that
//! wants another.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use crate::tls::client::BackendTls;

/// A backend connection's socket.
pub enum Stream {
    Tcp(TcpStream),
    /// Boxed: a plain connection stays small.
    Tls(Box<TlsStream<TcpStream>>),
    /// `server unix:/path`.
    Unix(UnixStream),
}

/// What a pooled connection is, beyond its peer: plain, or TLS with one
/// location's settings to one name. Two keys are equal only when a
/// connection made for one serves the other.
#[derive(Clone, Debug, Default)]
pub enum ConnKey {
    #[default]
    Plain,
    Tls(Box<TlsTarget>),
}

/// TLS settings and the name a connection verified (and sent as SNI).
#[derive(Clone, Debug)]
pub struct TlsTarget {
    /// Held so that its address, the identity compared, is not reused while
    /// a connection made with it lives.
    pub tls: Arc<BackendTls>,
    pub name: ServerName<'static>,
}

impl PartialEq for ConnKey {
    fn eq(&self, other: &ConnKey) -> bool {
        match (self, other) {
            (ConnKey::Plain, ConnKey::Plain) => true,
            (ConnKey::Tls(a), ConnKey::Tls(b)) => Arc::ptr_eq(&a.tls, &b.tls) && a.name == b.name,
            _ => false,
        }
    }
}

impl ConnKey {
    /// TLS with `tls` to `name`.
    pub fn tls(tls: &Arc<BackendTls>, name: ServerName<'static>) -> ConnKey {
        ConnKey::Tls(Box::new(TlsTarget {
            tls: Arc::clone(tls),
            name,
        }))
    }
}

/// Runs the TLS handshake of a new connection for `target`.
pub async fn handshake(tcp: TcpStream, target: &TlsTarget) -> std::io::Result<Stream> {
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&target.tls.config));
    let tls = connector.connect(target.name.clone(), tcp).await?;
    Ok(Stream::Tls(Box::new(tls)))
}

impl Stream {
    /// True when the idle connection is closed or has bytes nobody asked
    /// for. TLS: what the socket has is read through rustls with a waker
    /// that is never woken (a session ticket is taken in, and is no reason
    /// to drop the connection).
    #[inline]
    pub(super) fn idle_closed(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self {
            Stream::Tcp(stream) => {
                idle_socket_closed(stream.poll_read_ready(&mut cx), |b| stream.try_read(b))
            }
            Stream::Unix(stream) => {
                idle_socket_closed(stream.poll_read_ready(&mut cx), |b| stream.try_read(b))
            }
            Stream::Tls(tls) => {
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                !Pin::new(tls.as_mut())
                    .poll_read(&mut cx, &mut buf)
                    .is_pending()
            }
        }
    }
}

/// An idle socket is closed (or has bytes nobody asked for) when it became
/// readable and a read does not say "would block". No system call unless
/// tokio saw it become readable.
#[inline]
fn idle_socket_closed(
    ready: Poll<std::io::Result<()>>,
    try_read: impl FnOnce(&mut [u8]) -> std::io::Result<usize>,
) -> bool {
    match ready {
        Poll::Pending => false,
        Poll::Ready(Err(_)) => true,
        Poll::Ready(Ok(())) => {
            let mut probe = [0u8; 1];
            !matches!(
                try_read(&mut probe),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            )
        }
    }
}

/// A TLS read, out of line so that the plain arms stay small enough to inline.
#[inline(never)]
fn tls_read(
    s: &mut TlsStream<TcpStream>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<std::io::Result<()>> {
    // Records rustls still holds go out first: a request whose last write
    // found the socket full is sent before its response is awaited.
    if let Poll::Ready(Err(e)) = Pin::new(&mut *s).poll_flush(cx) {
        return Poll::Ready(Err(e));
    }
    match Pin::new(s).poll_read(cx, buf) {
        // A backend that closes without close_notify ends its stream (nginx
        // reads such a close as the end too).
        Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
        other => other,
    }
}

/// A TLS write, out of line as [`tls_read`].
#[inline(never)]
fn tls_write(
    s: &mut TlsStream<TcpStream>,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<std::io::Result<usize>> {
    let n = std::task::ready!(Pin::new(&mut *s).poll_write(cx, data))?;
    // What rustls could not hand to the socket yet goes with the next write,
    // flush or read.
    if let Poll::Ready(Err(e)) = Pin::new(s).poll_flush(cx) {
        tracing::debug!("upstream TLS flush: {e}");
    }
    Poll::Ready(Ok(n))
}

impl AsyncRead for Stream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => tls_read(s, cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, data),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, data),
            Stream::Tls(s) => tls_write(s, cx, data),
        }
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    #[inline]
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
