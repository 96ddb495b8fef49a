//! The response bytes of an HTTP/1 connection waiting to go out, and the
//! write that sends them (vectored, small data coalesced with the head).

use std::future::poll_fn;
use std::io::IoSlice;
use std::task::Poll;

use bytes::{Buf, Bytes};

use crate::downstream::body::ClientIo;
use crate::downstream::state::ConnState;
use crate::http1::chunked::{write_chunk_size, LAST_CHUNK};

/// Response data up to this size is copied next to the head (one write for
/// both); larger pieces are written from their own buffer.
const COALESCE: usize = 16 * 1024;

/// Response bytes waiting to go out, in order: `head` (the head, chunk
/// framing and small data), `data` (a large piece, not copied), `tail`.
pub(super) struct Out {
    pub(super) head: Vec<u8>,
    pub(super) data: Bytes,
    pub(super) tail: &'static [u8],
}

impl Out {
    pub(super) fn is_empty(&self) -> bool {
        self.head.is_empty() && self.data.is_empty() && self.tail.is_empty()
    }

    /// Queues one piece of body data (framed as a chunk when `chunked`).
    /// Returns true when it must be written before anything else is queued.
    pub(super) fn push(&mut self, data: Bytes, chunked: bool) -> bool {
        if chunked {
            write_chunk_size(&mut self.head, data.len());
        }
        if data.len() <= COALESCE && self.head.len() + data.len() <= 2 * COALESCE {
            self.head.extend_from_slice(&data);
            if chunked {
                self.head.extend_from_slice(b"\r\n");
            }
            false
        } else {
            self.data = data;
            self.tail = if chunked { b"\r\n" } else { b"" };
            true
        }
    }

    /// Queues the end of a chunked body.
    pub(super) fn push_last_chunk(&mut self) {
        if self.data.is_empty() && self.tail.is_empty() {
            self.head.extend_from_slice(LAST_CHUNK);
        } else {
            self.tail = b"\r\n0\r\n\r\n";
        }
    }

    /// Writes everything queued. While the socket takes nothing the
    /// connection is marked as blocked on a write (`send_timeout`).
    pub(super) async fn flush(&mut self, io: &ClientIo, info: &ConnState) -> std::io::Result<()> {
        let mut at = 0;
        let written = poll_fn(|cx| {
            while at < self.head.len() || !self.data.is_empty() || !self.tail.is_empty() {
                let slices = [
                    IoSlice::new(self.head.get(at..).unwrap_or_default()),
                    IoSlice::new(&self.data),
                    IoSlice::new(self.tail),
                ];
                let mut n = match io.poll_write(cx, &slices) {
                    Poll::Pending => {
                        info.write_blocked();
                        return Poll::Pending;
                    }
                    Poll::Ready(r) => r?,
                };
                let from_head = n.min(self.head.len() - at);
                at += from_head;
                n -= from_head;
                let from_data = n.min(self.data.len());
                self.data.advance(from_data);
                n -= from_data;
                self.tail = self.tail.get(n..).unwrap_or_default();
            }
            match io.poll_flush(cx) {
                Poll::Pending => {
                    info.write_blocked();
                    Poll::Pending
                }
                done => done,
            }
        })
        .await;
        self.head.clear();
        info.write_done();
        written
    }
}
