//! A frame-level HTTP/2 client for the attack tests (tests/http2_attacks.rs):
//! it writes exactly the frames a test builds, malformed or abusive ones
//! included, and reads what the server answers.
//!
//! Writing: frames are built by hand ([`frame`] and its helpers); header
//! blocks use only HPACK's "literal header field without indexing, new name"
//! representation without Huffman coding (RFC 7541 section 6.2.2), which is
//! a length-prefixed copy of the bytes.
//! Reading: the server's frames are parsed, and its header blocks decoded, by
//! the `h2` crate's own codec (public under its `unstable` feature), in a
//! reader task that keeps an [`Outcome`]: statuses, resets, GOAWAY, PING and
//! SETTINGS acknowledgements, bytes of DATA, and when the connection closed.
//! Test code only.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use h2::frame::Frame;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub use h2::Reason;

/// The client connection preface (RFC 9113 section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 section 6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
}

/// SETTINGS identifiers.
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
}

/// One frame: the 9-byte head (length, type, flags, stream id) and `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    assert!(len < 1 << 24, "frame payload too long for the length field");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(pairs.len() * 6);
    for (id, value) in pairs {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &payload)
}

pub fn settings_ack() -> Vec<u8> {
    frame(kind::SETTINGS, flag::ACK, 0, &[])
}

pub fn ping(data: [u8; 8]) -> Vec<u8> {
    frame(kind::PING, 0, 0, &data)
}

pub fn rst_stream(stream: u32, code: Reason) -> Vec<u8> {
    frame(kind::RST_STREAM, 0, stream, &u32::from(code).to_be_bytes())
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

pub fn data(stream: u32, payload: &[u8], end_stream: bool) -> Vec<u8> {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    frame(kind::DATA, flags, stream, payload)
}

/// A HEADERS frame carrying `block` (END_HEADERS set when `end_headers`).
pub fn headers(stream: u32, block: &[u8], end_stream: bool, end_headers: bool) -> Vec<u8> {
    let mut flags = 0;
    if end_stream {
        flags |= flag::END_STREAM;
    }
    if end_headers {
        flags |= flag::END_HEADERS;
    }
    frame(kind::HEADERS, flags, stream, block)
}

pub fn continuation(stream: u32, block: &[u8], end_headers: bool) -> Vec<u8> {
    let flags = if end_headers { flag::END_HEADERS } else { 0 };
    frame(kind::CONTINUATION, flags, stream, block)
}

pub fn goaway(last_stream: u32, code: Reason) -> Vec<u8> {
    let mut payload = last_stream.to_be_bytes().to_vec();
    payload.extend_from_slice(&u32::from(code).to_be_bytes());
    frame(kind::GOAWAY, 0, 0, &payload)
}

/// An HPACK integer with an N-bit prefix (RFC 7541 section 5.1); `first`
/// holds the representation's bits above the prefix.
fn hpack_int(prefix_bits: u8, first: u8, mut value: usize, out: &mut Vec<u8>) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header field as a literal without indexing, new name, no Huffman.
pub fn literal(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + name.len() + value.len());
    out.push(0x00);
    hpack_int(7, 0, name.len(), &mut out);
    out.extend_from_slice(name.as_bytes());
    hpack_int(7, 0, value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

/// The header block of a request: the four pseudo-header fields (scheme
/// `http`), then `extra` in order.
pub fn request_block(method: &str, path: &str, authority: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in [
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        out.extend_from_slice(&literal(name, value.as_bytes()));
    }
    out
}

/// `GET path` on `stream`, headers and END_STREAM in one frame.
pub fn get(stream: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    headers(
        stream,
        &request_block("GET", path, "localhost", extra),
        true,
        true,
    )
}

/// What the server did on a connection, as the reader task saw it.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// GOAWAY received: last stream id and error code.
    pub goaway: Option<(u32, Reason)>,
    /// The GOAWAY's debug data, as text.
    pub goaway_debug: String,
    /// RST_STREAM frames received: stream id and error code.
    pub resets: Vec<(u32, Reason)>,
    /// Response heads received: stream id and `:status`.
    pub statuses: Vec<(u32, u16)>,
    /// Streams whose response ended (END_STREAM on HEADERS or DATA).
    pub ended: Vec<u32>,
    pub data_bytes: usize,
    pub pings_acked: usize,
    pub settings_acks: usize,
    /// The server's own SETTINGS (not acknowledgements).
    pub server_settings: Vec<h2::frame::Settings>,
    pub frames: usize,
    /// When the connection ended (EOF or error) and how.
    pub closed: Option<(Instant, String)>,
}

impl Outcome {
    pub fn status_of(&self, stream: u32) -> Option<u16> {
        self.statuses
            .iter()
            .find(|(s, _)| *s == stream)
            .map(|(_, st)| *st)
    }

    pub fn reset_of(&self, stream: u32) -> Option<Reason> {
        self.resets
            .iter()
            .find(|(s, _)| *s == stream)
            .map(|(_, r)| *r)
    }

    pub fn goaway_reason(&self) -> Option<Reason> {
        self.goaway.map(|(_, r)| r)
    }

    /// Short text for test output.
    pub fn summary(&self) -> String {
        let mut statuses: Vec<u16> = self.statuses.iter().map(|(_, s)| *s).collect();
        statuses.sort_unstable();
        statuses.dedup();
        let mut reset_codes: Vec<String> =
            self.resets.iter().map(|(_, r)| format!("{r:?}")).collect();
        reset_codes.sort();
        reset_codes.dedup();
        format!(
            "frames={} statuses={} {:?} resets={} {:?} goaway={:?} {:?} pings_acked={} settings_acks={} data={} closed={:?}",
            self.frames,
            self.statuses.len(),
            statuses,
            self.resets.len(),
            reset_codes,
            self.goaway,
            self.goaway_debug,
            self.pings_acked,
            self.settings_acks,
            self.data_bytes,
            self.closed.as_ref().map(|(_, why)| why.as_str()),
        )
    }
}

/// The read half behind h2's codec, which wants a writer it never uses here.
struct ReadOnly(OwnedReadHalf);

impl AsyncRead for ReadOnly {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadOnly {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::Unsupported.into()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

type Reader = h2::Codec<ReadOnly, Bytes>;

async fn next_frame(codec: &mut Reader) -> Option<Result<Frame, h2::proto::Error>> {
    std::future::poll_fn(|cx| Pin::new(&mut *codec).poll_next(cx)).await
}

/// Records one frame in `out`.
fn record(out: &mut Outcome, frame: Frame) {
    out.frames += 1;
    match frame {
        Frame::Headers(h) => {
            let id = u32::from(h.stream_id());
            let end = h.is_end_stream();
            let (pseudo, _) = h.into_parts();
            if let Some(status) = pseudo.status {
                out.statuses.push((id, status.as_u16()));
            }
            if end {
                out.ended.push(id);
            }
        }
        Frame::Data(d) => {
            out.data_bytes += d.payload().len();
            if d.is_end_stream() {
                out.ended.push(u32::from(d.stream_id()));
            }
        }
        Frame::Reset(r) => out.resets.push((u32::from(r.stream_id()), r.reason())),
        Frame::GoAway(g) => {
            out.goaway = Some((u32::from(g.last_stream_id()), g.reason()));
            out.goaway_debug = String::from_utf8_lossy(g.debug_data()).into_owned();
        }
        Frame::Ping(p) if p.is_ack() => out.pings_acked += 1,
        Frame::Settings(s) if s.is_ack() => out.settings_acks += 1,
        Frame::Settings(s) => out.server_settings.push(s),
        _ => {}
    }
}

/// Result of [`Conn::flood`].
#[derive(Debug)]
pub struct Flood {
    /// Chunks written in full.
    pub written: usize,
    /// Why writing stopped early: the connection broke, or a write made no
    /// progress for the stall limit (the server stopped reading).
    pub stopped: Option<String>,
    pub elapsed: Duration,
}

impl Flood {
    /// "N UNIT written in TIME (why it stopped)", with `per_chunk` units in
    /// each chunk written: how the attack tests report a flood.
    pub fn written_as(&self, per_chunk: usize, unit: &str) -> String {
        format!(
            "{} {unit} written in {:?} ({:?})",
            self.written * per_chunk,
            self.elapsed,
            self.stopped
        )
    }
}

/// A client connection after the preface and the SETTINGS exchange.
pub struct Conn {
    writer: OwnedWriteHalf,
    seen: Arc<Mutex<Outcome>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Conn {
    /// Connects, sends the preface and an empty SETTINGS, waits for the
    /// server's SETTINGS and acknowledges them.
    pub async fn connect(addr: SocketAddr) -> Conn {
        Conn::connect_with(addr, &[]).await
    }

    /// As [`Conn::connect`], with these client SETTINGS.
    pub async fn connect_with(addr: SocketAddr, client_settings: &[(u16, u32)]) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream.set_nodelay(true);
        let (read, mut writer) = stream.into_split();
        let mut hello = PREFACE.to_vec();
        hello.extend_from_slice(&settings(client_settings));
        writer.write_all(&hello).await.expect("write the preface");
        let mut codec: Reader = h2::Codec::new(ReadOnly(read));
        let mut seen = Outcome::default();
        let deadline = Duration::from_secs(5);
        loop {
            match tokio::time::timeout(deadline, next_frame(&mut codec)).await {
                Ok(Some(Ok(f))) => {
                    let server_settings = matches!(&f, Frame::Settings(s) if !s.is_ack());
                    record(&mut seen, f);
                    if server_settings {
                        break;
                    }
                }
                other => panic!("no SETTINGS from the server: {other:?}"),
            }
        }
        writer
            .write_all(&settings_ack())
            .await
            .expect("ack SETTINGS");
        let seen = Arc::new(Mutex::new(seen));
        let shared = Arc::clone(&seen);
        let reader = tokio::spawn(async move {
            loop {
                let item = next_frame(&mut codec).await;
                let mut out = shared.lock().expect("outcome lock");
                match item {
                    Some(Ok(f)) => record(&mut out, f),
                    Some(Err(e)) => {
                        out.closed = Some((Instant::now(), format!("read error: {e:?}")));
                        break;
                    }
                    None => {
                        out.closed = Some((Instant::now(), "EOF".to_string()));
                        break;
                    }
                }
            }
        });
        Conn {
            writer,
            seen,
            reader,
        }
    }

    /// Writes `bytes`; an error when the server closed the connection or
    /// stopped reading for 5 s.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(5), self.writer.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write stalled 5 s: the server stopped reading".to_string()),
        }
    }

    /// Writes `chunk(i)` for i = 0, 1, ... until `count` chunks are written,
    /// `limit` passes, the connection breaks, or a write stalls for `stall`.
    pub async fn flood(
        &mut self,
        count: usize,
        limit: Duration,
        stall: Duration,
        mut chunk: impl FnMut(usize) -> Vec<u8>,
    ) -> Flood {
        let start = Instant::now();
        let mut written = 0;
        let mut stopped = None;
        while written < count && start.elapsed() < limit {
            let bytes = chunk(written);
            match tokio::time::timeout(stall, self.writer.write_all(&bytes)).await {
                Ok(Ok(())) => written += 1,
                Ok(Err(e)) => {
                    stopped = Some(format!("write failed: {e}"));
                    break;
                }
                Err(_) => {
                    stopped = Some(format!(
                        "write stalled {stall:?}: the server stopped reading"
                    ));
                    break;
                }
            }
            if self.seen.lock().expect("outcome lock").closed.is_some() {
                stopped = Some("the server closed the connection".to_string());
                break;
            }
        }
        Flood {
            written,
            stopped,
            elapsed: start.elapsed(),
        }
    }

    /// Stops reading the server's frames (they pile up in the socket
    /// buffers, then in the server): a client that never reads.
    pub fn stop_reading(&mut self) {
        self.reader.abort();
    }

    /// Whether this connection is still established as the kernel sees it
    /// from the client's side (/proc/net/tcp): false once the server closed
    /// it (FIN or reset), whether or not the client reads.
    pub fn established(&self) -> bool {
        let Ok(local) = self.writer.local_addr() else {
            return false;
        };
        let port = format!(":{:04X}", local.port());
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        table.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, rem_address, st (01: ESTABLISHED)
            cols.len() > 3 && cols[1].ends_with(&port) && cols[3] == "01"
        })
    }

    /// A copy of what the server sent so far.
    pub fn outcome(&self) -> Outcome {
        self.seen.lock().expect("outcome lock").clone()
    }

    /// Waits until `done` holds for what was received, or `limit` passes;
    /// returns what was received.
    pub async fn wait_for(&self, limit: Duration, done: impl Fn(&Outcome) -> bool) -> Outcome {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.outcome();
            if done(&now) || Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits up to `limit` for the server to close the connection.
    pub async fn wait_closed(&self, limit: Duration) -> Outcome {
        self.wait_for(limit, |o| o.closed.is_some()).await
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A fresh connection gets `200` for `GET path` within `limit`: the time it
/// took, or what happened instead.
pub async fn healthy(addr: SocketAddr, path: &str, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let attempt = async {
        let mut conn = Conn::connect(addr).await;
        conn.send(&get(1, path, &[])).await?;
        let out = conn.wait_for(limit, |o| o.ended.contains(&1)).await;
        match out.status_of(1) {
            Some(200) if out.ended.contains(&1) => Ok(start.elapsed()),
            _ => Err(format!("no complete 200: {}", out.summary())),
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}
