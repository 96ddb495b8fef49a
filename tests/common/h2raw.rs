//! A frame-level HTTP/2 client for the attack tests (tests/http2_attacks.rs):
//! it writes exactly the frames a test builds, malformed or abusive ones
//! included, and reads what the server answers.
//!
//! Writing: frames are built by hand ([`frame`] and its helpers); header
//! blocks use only HPACK's "literal header field without indexing, new name"
//! representation without Huffman coding (RFC 7541 section 6.2.2), which is
//! a length-prefixed copy of the bytes.
//! Reading: the server's frames are split by their 9-byte heads here, and
//! its header blocks decoded by `loona-hpack`, in a reader task that keeps an [`Outcome`]: statuses, resets, GOAWAY, PING and
//! SETTINGS acknowledgements, bytes of DATA, and when the connection closed.
//! Test code only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    pub server_settings: Vec<Vec<(u16, u32)>>,
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

/// A frame the server sent, as the tests look at it (a HEADERS frame with
/// its CONTINUATIONs is one frame, its block decoded).
#[derive(Debug)]
enum Frame {
    Headers {
        stream: u32,
        end_stream: bool,
        status: Option<u16>,
    },
    Data {
        stream: u32,
        len: usize,
        end_stream: bool,
    },
    Reset {
        stream: u32,
        reason: Reason,
    },
    GoAway {
        last_stream: u32,
        reason: Reason,
        debug: Vec<u8>,
    },
    Ping {
        ack: bool,
    },
    Settings {
        ack: bool,
        pairs: Vec<(u16, u32)>,
    },
    Other,
}

/// Reads the server's frames off the socket: the frame layout of RFC 9113
/// section 4.1, header blocks decoded by an HPACK decoder that keeps the
/// connection's dynamic table.
struct Reader {
    read: OwnedReadHalf,
    buf: BytesMut,
    /// SETTINGS_MAX_FRAME_SIZE this client announced.
    max_frame: usize,
    hpack: loona_hpack::Decoder<'static>,
}

const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

impl Reader {
    fn new(read: OwnedReadHalf, client_settings: &[(u16, u32)]) -> Reader {
        let mut hpack = loona_hpack::Decoder::new();
        let mut max_frame = 16_384;
        for &(id, value) in client_settings {
            match id {
                setting::HEADER_TABLE_SIZE => hpack.set_max_allowed_table_size(value as usize),
                setting::MAX_FRAME_SIZE => max_frame = value as usize,
                _ => {}
            }
        }
        Reader {
            read,
            buf: BytesMut::with_capacity(32 * 1024),
            max_frame,
            hpack,
        }
    }

    /// The next frame: its type, flags, stream and payload. None at EOF
    /// between frames.
    async fn raw(&mut self) -> Option<Result<(u8, u8, u32, Bytes), String>> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if len > self.max_frame {
                    return Some(Err(format!("frame of {len} bytes over {}", self.max_frame)));
                }
                if self.buf.len() >= 9 + len {
                    let head = self.buf.split_to(9);
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    let payload = self.buf.split_to(len).freeze();
                    return Some(Ok((head[3], head[4], stream, payload)));
                }
            }
            match self.read.read_buf(&mut self.buf).await {
                Ok(0) if self.buf.is_empty() => return None,
                Ok(0) => return Some(Err("EOF inside a frame".to_string())),
                Ok(_) => {}
                Err(e) => return Some(Err(format!("read: {e}"))),
            }
        }
    }

    async fn next(&mut self) -> Option<Result<Frame, String>> {
        let (kind, flags, stream, payload) = match self.raw().await? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        Some(self.parse(kind, flags, stream, payload).await)
    }

    async fn parse(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Bytes,
    ) -> Result<Frame, String> {
        let code = |b: &[u8]| Reason::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let short = |need: usize| {
            if payload.len() < need {
                Err(format!("frame type {kind} of {} bytes", payload.len()))
            } else {
                Ok(())
            }
        };
        Ok(match kind {
            kind::DATA => Frame::Data {
                stream,
                len: unpadded(flags, &payload)?.len(),
                end_stream: flags & flag::END_STREAM != 0,
            },
            kind::HEADERS => {
                let mut fragment = unpadded(flags, &payload)?;
                if flags & PRIORITY != 0 {
                    fragment = fragment
                        .get(5..)
                        .ok_or("HEADERS too short for its priority")?;
                }
                let mut block = fragment.to_vec();
                let mut end_headers = flags & flag::END_HEADERS != 0;
                while !end_headers {
                    match self.raw().await {
                        Some(Ok((kind::CONTINUATION, more, id, part))) if id == stream => {
                            block.extend_from_slice(&part);
                            end_headers = more & flag::END_HEADERS != 0;
                        }
                        Some(Ok((other, ..))) => {
                            return Err(format!("frame type {other} inside a header block"))
                        }
                        Some(Err(e)) => return Err(e),
                        None => return Err("EOF inside a header block".to_string()),
                    }
                }
                let fields = self
                    .hpack
                    .decode(&block)
                    .map_err(|e| format!("HPACK: {e}"))?;
                let status = fields
                    .iter()
                    .find(|(name, _)| name == b":status")
                    .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok());
                Frame::Headers {
                    stream,
                    end_stream: flags & flag::END_STREAM != 0,
                    status,
                }
            }
            kind::RST_STREAM => {
                short(4)?;
                Frame::Reset {
                    stream,
                    reason: code(&payload),
                }
            }
            kind::GOAWAY => {
                short(8)?;
                Frame::GoAway {
                    last_stream: u32::from_be_bytes([
                        payload[0], payload[1], payload[2], payload[3],
                    ]) & 0x7fff_ffff,
                    reason: code(&payload[4..]),
                    debug: payload[8..].to_vec(),
                }
            }
            kind::PING => Frame::Ping {
                ack: flags & flag::ACK != 0,
            },
            kind::SETTINGS if payload.len() % 6 != 0 => {
                return Err(format!("SETTINGS of {} bytes", payload.len()))
            }
            kind::CONTINUATION => return Err("CONTINUATION outside a header block".to_string()),
            kind::SETTINGS => Frame::Settings {
                ack: flags & flag::ACK != 0,
                pairs: payload
                    .chunks_exact(6)
                    .map(|c| {
                        (
                            u16::from_be_bytes([c[0], c[1]]),
                            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                        )
                    })
                    .collect(),
            },
            _ => Frame::Other,
        })
    }
}

/// A DATA or HEADERS payload without its padding (the PADDED flag).
fn unpadded(flags: u8, payload: &[u8]) -> Result<&[u8], String> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let pad = *payload
        .first()
        .ok_or("PADDED frame without its pad length")? as usize;
    payload
        .get(1..payload.len().saturating_sub(pad))
        .filter(|_| pad < payload.len())
        .ok_or_else(|| format!("padding of {pad} bytes in a payload of {}", payload.len()))
}

/// Records one frame in `out`.
fn record(out: &mut Outcome, frame: Frame) {
    out.frames += 1;
    match frame {
        Frame::Headers {
            stream,
            end_stream,
            status,
        } => {
            if let Some(status) = status {
                out.statuses.push((stream, status));
            }
            if end_stream {
                out.ended.push(stream);
            }
        }
        Frame::Data {
            stream,
            len,
            end_stream,
        } => {
            out.data_bytes += len;
            if end_stream {
                out.ended.push(stream);
            }
        }
        Frame::Reset { stream, reason } => out.resets.push((stream, reason)),
        Frame::GoAway {
            last_stream,
            reason,
            debug,
        } => {
            out.goaway = Some((last_stream, reason));
            out.goaway_debug = String::from_utf8_lossy(&debug).into_owned();
        }
        Frame::Ping { ack: true } => out.pings_acked += 1,
        Frame::Settings { ack: true, .. } => out.settings_acks += 1,
        Frame::Settings { ack: false, pairs } => out.server_settings.push(pairs),
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
        let mut codec = Reader::new(read, client_settings);
        let mut seen = Outcome::default();
        let deadline = Duration::from_secs(5);
        loop {
            match tokio::time::timeout(deadline, codec.next()).await {
                Ok(Some(Ok(f))) => {
                    let server_settings = matches!(&f, Frame::Settings { ack: false, .. });
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
                let item = codec.next().await;
                let mut out = shared.lock().expect("outcome lock");
                match item {
                    Some(Ok(f)) => record(&mut out, f),
                    Some(Err(e)) => {
                        out.closed = Some((Instant::now(), format!("read error: {e}")));
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
