//! The bytes under an HTTP/2 connection: telling an h2c client from an
//! HTTP/1 one by its first bytes ([`preface`]), and the stream hyper reads,
//! which begins with the bytes already read to decide ([`Rewound`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::rt::{Read, ReadBufCursor, Write};

/// The client connection preface (RFC 9113 section 3.4): an HTTP/2 client
/// with prior knowledge starts with it.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// The whole preface: HTTP/2.
    Http2,
    /// Not the preface: HTTP/1.x.
    Http1,
    /// A beginning of the preface: more bytes decide.
    Undecided,
}

/// Reads the start of a connection (`first`: what has arrived so far).
pub fn preface(first: &[u8]) -> Preface {
    let n = first.len().min(PREFACE.len());
    if first.get(..n) != PREFACE.get(..n) {
        Preface::Http1
    } else if n == PREFACE.len() {
        Preface::Http2
    } else {
        Preface::Undecided
    }
}

/// A stream whose first bytes were already read off it (`early`): hyper
/// reads them first, then the stream.
pub struct Rewound<T> {
    early: Bytes,
    inner: T,
}

impl<T> Rewound<T> {
    pub fn new(early: Bytes, inner: T) -> Rewound<T> {
        Rewound { early, inner }
    }
}

impl<T: Read + Unpin> Read for Rewound<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.early.is_empty() {
            let n = self.early.len().min(buf.remaining());
            let early = self.early.split_to(n);
            buf.put_slice(&early);
            if self.early.is_empty() {
                // Gives the memory back at once.
                self.early = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Rewound<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_decides_once_it_is_whole_or_broken() {
        let cases: &[(&[u8], Preface)] = &[
            (b"", Preface::Undecided),
            (b"P", Preface::Undecided),
            (b"PRI * HTTP/2.0\r\n", Preface::Undecided),
            (PREFACE, Preface::Http2),
            (
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04",
                Preface::Http2,
            ),
            (b"GET / HTTP/1.1\r\n", Preface::Http1),
            (b"POST", Preface::Http1),
            (b"PRI * HTTP/1.1\r\n", Preface::Http1),
            (b"PRI * HTTP/2.0\r\n\r\nXX", Preface::Http1),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                preface(bytes),
                *want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
