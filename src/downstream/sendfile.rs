//! A file's body sent with sendfile(2): the kernel copies the file's pages
//! from the page cache to the socket, and the bytes never enter user space
//! (`sendfile on`, as nginx).
//!
//! Only on a plain TCP connection, for a body that is one stretch of a file
//! sent as is with its `Content-Length` ([`ResponseBody::take_file_range`]),
//! longer than [`WITH_HEAD`] (a shorter one is read into the head's buffer
//! and leaves with it in one write); TLS, compression,
//! `multipart/byteranges` and chunked bodies keep the read and write path of
//! `conn`. [`file_range`] decides, [`send`] writes the head
//! (the socket corked around head and file with `tcp_nopush on`) and then the
//! file, one sendfile(2) call at a time on the socket's readiness: a full
//! socket waits for writability, with the connection marked as blocked on a
//! write (`send_timeout`); each call sends at most `sendfile_max_chunk`, and
//! after a full chunk the connection lets the others of its worker run. A
//! file that shrank while it was sent (sendfile says 0) ends the response:
//! the connection closes, as nginx does, since the promised length cannot be
//! kept.

use std::fs::File;
use std::future::poll_fn;
use std::os::unix::fs::FileExt;
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::downstream::body::{ClientIo, ClientStream};
use crate::downstream::handler::{FileRange, ResponseBody};
use crate::downstream::out::Out;
use crate::downstream::state::ConnState;

/// The most one sendfile(2) call moves (Linux's own limit, 2 GiB - 4 KiB).
const MAX_CALL: u64 = 0x7fff_f000;

/// The longest body that goes out with its head in one write rather than by
/// sendfile(2): read into the head's buffer, head and body leave in one
/// `writev` and the head shares the body's first TCP segment, where
/// sendfile(2) makes the head a segment of its own (nginx joins them only
/// with `tcp_nopush on`). The same number of system calls (`pread` for
/// `sendfile`); measured on loopback, a 1-4 KB file costs 20-30% less CPU
/// per request this way; reading larger bodies cost the same at 8-16 KB and
/// more from 32 KB (docs/performance.md, "Session 29").
const WITH_HEAD: u64 = 4096;

/// Whether a body of `len` bytes goes by sendfile(2) (else with its head).
#[inline(always)]
fn by_sendfile(len: u64) -> bool {
    len > WITH_HEAD
}

/// The file range of `body` when the connection can send it itself: a plain
/// TCP connection and a body of `left` bytes declared by its
/// `Content-Length`. `None`: the body's data go out as they are read.
#[inline(always)]
pub(super) fn file_range<B: ResponseBody>(
    io: &ClientIo,
    body: &mut B,
    left: Option<u64>,
) -> Option<FileRange> {
    match (&io.stream, left) {
        (ClientStream::Plain(_), Some(_)) => body.take_file_range(),
        _ => None,
    }
}

/// Writes the head queued in `out`, then `left` bytes of `range` (the
/// body's length: never more): with the head when they are at most
/// [`WITH_HEAD`], else by sendfile(2). True when all of it went out; false
/// when the response was cut short (the client went away, the file shrank,
/// or the range is shorter than the length announced), which closes the
/// connection.
pub(super) async fn send<B: ResponseBody>(
    io: &ClientIo,
    info: &ConnState,
    out: &mut Out,
    range: FileRange,
    left: u64,
    body: &mut B,
) -> bool {
    let ClientStream::Plain(stream) = &io.stream else {
        return false;
    };
    let len = range.len.min(left);
    if !by_sendfile(len) {
        if let Err(e) = read_into(&mut out.head, &range.file, range.offset, len) {
            // A server-side failure (the file shrank, or the disk failed):
            // the head goes alone, and the close tells the client the body
            // is missing, as when sendfile(2) finds the file short.
            tracing::error!("response to {} cut short: {e}", info.remote);
            let _ = out.flush(io, info).await;
            return false;
        }
        let sent = out.flush(io, info).await.map(|()| body.file_sent(len));
        return went_out(sent, info) && len == left;
    }
    let corked = range.nopush && cork(stream, true);
    let sent = match out.flush(io, info).await {
        Ok(()) => send_range(stream, info, &range, len, |n| body.file_sent(n)).await,
        Err(e) => Err(e),
    };
    if corked {
        // The last partial packet goes now.
        cork(stream, false);
    }
    went_out(sent, info) && len == left
}

/// Appends `len` bytes of `file` from `offset` to `buf`. An `UnexpectedEof`
/// error when the file ends first; on any error `buf` is left as it was.
fn read_into(buf: &mut Vec<u8>, file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    let start = buf.len();
    let len = usize::try_from(len).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    buf.resize(start + len, 0);
    let read = file.read_exact_at(buf.get_mut(start..).unwrap_or_default(), offset);
    if let Err(e) = read {
        buf.truncate(start);
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return Err(std::io::Error::new(
                e.kind(),
                format!("the file is shorter than its {len} bytes from {offset}"),
            ));
        }
        return Err(e);
    }
    Ok(())
}

/// True when `sent` says the body went out; else logs why it was cut short
/// (at `error` when the file was, as nginx) and is false.
fn went_out(sent: std::io::Result<()>, info: &ConnState) -> bool {
    match sent {
        Ok(()) => true,
        Err(e) => {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                tracing::error!("response to {} cut short: {e}", info.remote);
            } else {
                tracing::info!("response to {} cut short: {e}", info.remote);
            }
            false
        }
    }
}

/// Sets or clears `TCP_CORK`; false when the socket refused.
fn cork(stream: &TcpStream, on: bool) -> bool {
    socket2::SockRef::from(stream).set_cork(on).is_ok()
}

/// Sends `len` bytes of `range`'s file from its offset, telling `sent` of
/// each piece that went out. An `UnexpectedEof` error when the file ends
/// first.
async fn send_range(
    stream: &TcpStream,
    info: &ConnState,
    range: &FileRange,
    len: u64,
    mut sent: impl FnMut(u64),
) -> std::io::Result<()> {
    let mut offset = range.offset;
    let end = range.offset.saturating_add(len);
    let chunk = match range.max_chunk {
        0 => MAX_CALL,
        n => n.min(MAX_CALL),
    };
    while offset < end {
        let want = (end - offset).min(chunk);
        let count = usize::try_from(want).unwrap_or(usize::MAX);
        let n =
            poll_fn(|cx| poll_sendfile(cx, stream, info, &range.file, &mut offset, count)).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "sendfile() reported that the file was truncated at {offset} (of {})",
                    range.offset.saturating_add(range.len)
                ),
            ));
        }
        sent(n as u64);
        if n as u64 == chunk && offset < end {
            // A full `sendfile_max_chunk`: the worker's other connections
            // get their turn before the next.
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

/// One sendfile(2) call of at most `count` bytes from `offset` (moved on by
/// what was sent) when the socket can take some; `Ok(0)` at the file's end.
fn poll_sendfile(
    cx: &mut Context<'_>,
    stream: &TcpStream,
    info: &ConnState,
    file: &File,
    offset: &mut u64,
    count: usize,
) -> Poll<std::io::Result<usize>> {
    loop {
        match stream.poll_write_ready(cx) {
            Poll::Pending => {
                info.write_blocked();
                return Poll::Pending;
            }
            Poll::Ready(ready) => ready?,
        }
        let called = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, file, Some(&mut *offset), count)
                .map_err(std::io::Error::from)
        });
        match called {
            Ok(n) => {
                info.write_done();
                return Poll::Ready(Ok(n));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_small_body_is_read_after_the_head_and_a_short_file_is_an_error() {
        let path = std::env::temp_dir().join(format!("sp-with-head-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        for (offset, len, want, ok) in [
            (0, 10, &b"HEAD0123456789"[..], true),
            (3, 4, b"HEAD3456", true),
            (9, 1, b"HEAD9", true),
            (0, 0, b"HEAD", true),
            // Shorter than promised: the error, and the head as it was.
            (6, 8, b"HEAD", false),
            (10, 1, b"HEAD", false),
            (20, 5, b"HEAD", false),
        ] {
            let mut buf = b"HEAD".to_vec();
            let got = read_into(&mut buf, &file, offset, len);
            assert_eq!(buf, want, "{offset} {len}");
            match got {
                Ok(()) => assert!(ok, "{offset} {len}"),
                Err(e) => {
                    assert!(!ok, "{offset} {len}: {e}");
                    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn small_bodies_go_with_their_head_and_the_rest_by_sendfile() {
        for (len, sendfile) in [
            (1, false),
            (1024, false),
            (WITH_HEAD - 1, false),
            (WITH_HEAD, false),
            (WITH_HEAD + 1, true),
            (1 << 20, true),
            (u64::MAX, true),
        ] {
            assert_eq!(by_sendfile(len), sendfile, "{len}");
        }
    }
}
