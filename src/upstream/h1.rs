//! HTTP/1.1 towards the backends, the pure half: the request head written as
//! bytes, the response head parsed from bytes, the response body's framing, and
//! the chunked transfer-coding in both directions. No I/O: `upstream::client`
//! moves the bytes.
//!
//! The request head is encoded once per request ([`encode_request_head`]) and
//! kept as bytes, so resending it (a pooled connection found closed, or
//! `proxy_next_upstream`) costs no header copies. The response head is parsed
//! with `httparse` ([`locate_response_head`], [`build_response_head`]) into an
//! [`http::HeaderMap`] whose values share the received bytes, without the lines
//! the caller's filter leaves out (they never cost a map insert); its body
//! framing follows RFC 9112 section 6.3 ([`Framing`]).

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};

use crate::wire::{connection_tokens, parse_decimal, ConnectionToken, HeaderSpans};

/// Most header lines a backend response may carry (nginx's proxy module has no
/// count limit but a 4k/8k `proxy_buffer_size`; 128 lines is far beyond real
/// responses).
pub const MAX_RESPONSE_HEADERS: usize = 128;

/// Longest response head accepted (`upstream sent too big header` beyond it).
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body (or `Content-Length: 0` as the client sent it).
    None,
    /// The client's `Content-Length` is forwarded and the bytes go out raw.
    Length,
    /// A body of unknown length: `Transfer-Encoding: chunked` is added.
    Chunked,
}

/// Writes `METHOD target HTTP/1.1`, the headers as they are in `headers`, the
/// framing header `framing` needs, and the empty line.
pub fn encode_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if framing == RequestFraming::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The size line of one chunk of `len` bytes (`len` in hex, CRLF).
pub fn chunk_size_line(len: usize) -> Bytes {
    Bytes::from(format!("{len:x}\r\n"))
}

/// The end of a chunked body: the last chunk and an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// How the backend's response body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a response to HEAD, 1xx, 204, 304, or `Content-Length: 0`.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the backend closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request after this response (HTTP/1.1
    /// without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`,
    /// and a body whose end is known).
    pub keep_alive: bool,
}

/// Why a backend's response head was refused (502 `upstream sent invalid
/// header` in nginx's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x syntax (bad status line, bad header line).
    Invalid,
    /// More than [`MAX_RESPONSE_HEADERS`] lines or [`MAX_RESPONSE_HEAD`] bytes.
    TooBig,
    /// `Content-Length` unparsable or given twice with different values.
    BadLength,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Invalid => write!(f, "upstream sent invalid header"),
            HeadError::TooBig => write!(f, "upstream sent too big header"),
            HeadError::BadLength => write!(f, "upstream sent invalid \"Content-Length\" header"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Header lines whose spans a [`HeadLayout`] keeps without allocating.
const INLINE_SPANS: usize = 24;

/// Where a response head ends in a buffer, and the ranges of its parts (so the
/// caller can cut the head off its buffer and share the bytes).
#[derive(Debug)]
pub struct HeadLayout {
    /// Length of the head, empty line included.
    pub len: usize,
    pub status: u16,
    /// HTTP/1.0 (`false`: HTTP/1.1).
    pub http10: bool,
    /// Name and value spans of the header lines.
    spans: HeaderSpans<INLINE_SPANS>,
}

impl HeadLayout {
    /// Name and value ranges of each header line, within the head.
    pub fn headers(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        self.spans.iter()
    }
}

/// Finds a complete response head at the start of `buf`: `Ok(None)` when more
/// bytes are needed.
pub fn locate_response_head(buf: &[u8]) -> Result<Option<HeadLayout>, HeadError> {
    // Uninitialised slots: parsing a short head does not pay for clearing all.
    let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut lines);
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_RESPONSE_HEAD {
                Err(HeadError::TooBig)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooBig),
        Err(_) => return Err(HeadError::Invalid),
    };
    if len > MAX_RESPONSE_HEAD {
        return Err(HeadError::TooBig);
    }
    // Offsets fit in u32: the head is at most MAX_RESPONSE_HEAD bytes.
    Ok(Some(HeadLayout {
        len,
        status: resp.code.unwrap_or(0),
        http10: resp.version == Some(0),
        spans: HeaderSpans::of(buf, resp.headers),
    }))
}

/// What a response header line is to the filter of [`build_response_head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineKind {
    /// A `Connection` header of the response lists the line's name (beyond
    /// `keep-alive`, `close` and `upgrade`, which name no end-to-end header).
    pub named_in_connection: bool,
    /// The response is `101 Switching Protocols`.
    pub switching: bool,
}

/// Builds the response head from `head` (the bytes [`locate_response_head`]
/// measured, cut off the read buffer): header values share those bytes. A
/// response to a HEAD request (`head_request`) has no body whatever its headers
/// say. The lines `leave_out` selects are left out of the map (the proxy would
/// remove them anyway: hop-by-hop, hidden); the framing facts are taken from
/// every line, left out or not. A name a `Connection` header lists is offered
/// to `leave_out` again, as named, once all lines are read (it may come before the
/// `Connection` line).
pub fn build_response_head(
    head: &Bytes,
    layout: &HeadLayout,
    head_request: bool,
    leave_out: impl Fn(&HeaderName, LineKind) -> bool,
) -> Result<ResponseHead, HeadError> {
    let status = StatusCode::from_u16(layout.status).map_err(|_| HeadError::Invalid)?;
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    // Room for what the proxy adds (Set-Cookie, Server) without regrowing.
    let mut headers = crate::reuse::header_map(layout.spans.len() + 2);
    // What frames the body and the connection, noted as the lines go by (no
    // lookups in the finished map).
    let mut facts = Facts::default();
    for (name, value) in layout.headers() {
        let name_bytes = head.get(name).ok_or(HeadError::Invalid)?;
        let name = HeaderName::from_bytes(name_bytes).map_err(|_| HeadError::Invalid)?;
        let raw = head.get(value.clone()).ok_or(HeadError::Invalid)?;
        // Headers that frame the body or the connection are noted whatever
        // `leave_out` says.
        if name == header::CONTENT_LENGTH {
            facts.length(raw);
        } else if name == header::TRANSFER_ENCODING {
            facts.transfer_encoding(raw);
        } else if name == header::CONNECTION {
            facts.connection(raw);
        }
        let kind = LineKind {
            named_in_connection: false,
            switching,
        };
        if leave_out(&name, kind) {
            continue;
        }
        let value =
            HeaderValue::from_maybe_shared(head.slice(value)).map_err(|_| HeadError::Invalid)?;
        headers.append(name, value);
    }
    let named = LineKind {
        named_in_connection: true,
        switching,
    };
    for name in &facts.listed {
        if leave_out(name, named) {
            headers.remove(name);
        }
    }
    let framing = facts.framing(status, head_request)?;
    let persistent = if layout.http10 {
        facts.keep_alive
    } else {
        !facts.close
    };
    // A body read until close cannot leave the connection reusable, nor can a
    // message that is both chunked and length-delimited (RFC 9112 6.3 item 3).
    let ambiguous = facts.transfer_encoding.is_some() && facts.has_length;
    let keep_alive = persistent && framing != Framing::Close && !ambiguous;
    Ok(ResponseHead {
        status,
        version: if layout.http10 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        },
        headers,
        framing,
        keep_alive,
    })
}

/// The framing facts of a response head, gathered line by line.
#[derive(Debug, Default)]
struct Facts {
    /// `Transfer-Encoding` present: whether its final coding is chunked.
    transfer_encoding: Option<bool>,
    has_length: bool,
    /// The one `Content-Length` value, if all agree.
    length: Option<u64>,
    /// A `Content-Length` value was unparsable or disagreed with another.
    bad_length: bool,
    close: bool,
    keep_alive: bool,
    /// Names the `Connection` headers list besides `keep-alive`, `close` and
    /// `upgrade` (rare: nothing is allocated without them).
    listed: Vec<HeaderName>,
}

impl Facts {
    fn length(&mut self, raw: &[u8]) {
        self.has_length = true;
        for part in raw.split(|&b| b == b',') {
            match parse_decimal(part.trim_ascii()) {
                Some(n) if self.length.is_none_or(|l| l == n) => self.length = Some(n),
                _ => self.bad_length = true,
            }
        }
    }

    fn transfer_encoding(&mut self, raw: &[u8]) {
        // The final coding is in the last line; `rsplit` always yields once.
        let last = raw.rsplit(|&b| b == b',').next().unwrap_or_default();
        self.transfer_encoding = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
    }

    fn connection(&mut self, raw: &[u8]) {
        for token in connection_tokens(raw) {
            match token {
                ConnectionToken::Close => self.close = true,
                ConnectionToken::KeepAlive => self.keep_alive = true,
                ConnectionToken::Upgrade => {}
                ConnectionToken::Named(token) => {
                    // A token that is no header name names no header.
                    if let Ok(name) = HeaderName::from_bytes(token) {
                        if !self.listed.contains(&name) {
                            self.listed.push(name);
                        }
                    }
                }
            }
        }
    }

    /// The body framing (RFC 9112 section 6.3).
    fn framing(&self, status: StatusCode, head_request: bool) -> Result<Framing, HeadError> {
        if head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok(Framing::Empty);
        }
        // Chunked only when it is the final coding; anything else runs to close.
        match self.transfer_encoding {
            Some(true) => return Ok(Framing::Chunked),
            Some(false) => return Ok(Framing::Close),
            None => {}
        }
        if self.bad_length {
            return Err(HeadError::BadLength);
        }
        Ok(match self.length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        })
    }
}

/// The chunked transfer-coding of a response body, decoded as bytes arrive.
/// Chunk extensions and trailer fields are read and dropped (as nginx does
/// without `proxy_pass_trailers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Bytes of the current chunk not yet handed out.
    remaining: u64,
    /// Digits read in the current size line (a bound against absurd lines).
    digits: u8,
    /// Bytes of trailer section read (bounded by [`MAX_RESPONSE_HEAD`]).
    trailer: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Hex digits of a chunk size.
    Size,
    /// After the size: whitespace or `;extension` up to the line end.
    Extension,
    /// The `\n` after a `\r` in a size line.
    SizeLf,
    /// Chunk data.
    Data,
    /// The `\r` after chunk data.
    DataCr,
    /// The `\n` after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    TrailerLine,
    /// The `\n` ending the empty line that ends the body.
    EndLf,
    Done,
}

/// What [`ChunkedDecoder::next`] found in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Chunk data at `buf[start..start + len]`; everything up to its end is
    /// consumed.
    Data { start: usize, len: usize },
    /// All of the buffer was framing; more bytes are needed.
    Need,
    /// The body ended after `consumed` bytes of the buffer (what follows is not
    /// part of this response).
    End { consumed: usize },
}

/// A malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError;

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream sent invalid chunked response")
    }
}

impl std::error::Error for ChunkError {}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            remaining: 0,
            digits: 0,
            trailer: 0,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Reads framing from `buf` up to the next chunk data, the end of the body,
    /// or the end of `buf`. Data returned is taken as consumed.
    pub fn next(&mut self, buf: &[u8]) -> Result<Chunk, ChunkError> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                ChunkState::Size => match char::from(b).to_digit(16) {
                    Some(d) => {
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(ChunkError);
                        }
                        self.remaining = self.remaining * 16 + u64::from(d);
                    }
                    None if self.digits == 0 => return Err(ChunkError),
                    None => match b {
                        b'\r' => self.state = ChunkState::SizeLf,
                        b'\n' => self.end_size_line(),
                        b';' | b' ' | b'\t' => self.state = ChunkState::Extension,
                        _ => return Err(ChunkError),
                    },
                },
                ChunkState::Extension => match b {
                    b'\r' => self.state = ChunkState::SizeLf,
                    b'\n' => self.end_size_line(),
                    0..=8 | 11..=31 | 127 => return Err(ChunkError),
                    _ => {}
                },
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.end_size_line();
                }
                ChunkState::Data => {
                    let left = (buf.len() - i) as u64;
                    let len = self.remaining.min(left) as usize;
                    self.remaining -= len as u64;
                    if self.remaining == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    return Ok(Chunk::Data { start: i, len });
                }
                ChunkState::DataCr => match b {
                    b'\r' => self.state = ChunkState::DataLf,
                    b'\n' => self.state = ChunkState::Size,
                    _ => return Err(ChunkError),
                },
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = ChunkState::Size;
                }
                ChunkState::TrailerStart => match b {
                    b'\r' => self.state = ChunkState::EndLf,
                    b'\n' => {
                        self.state = ChunkState::Done;
                        return Ok(Chunk::End { consumed: i + 1 });
                    }
                    _ => self.state = ChunkState::TrailerLine,
                },
                ChunkState::TrailerLine => {
                    self.trailer += 1;
                    if self.trailer > MAX_RESPONSE_HEAD {
                        return Err(ChunkError);
                    }
                    if b == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
                ChunkState::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = ChunkState::Done;
                    return Ok(Chunk::End { consumed: i + 1 });
                }
                ChunkState::Done => return Ok(Chunk::End { consumed: i }),
            }
            i += 1;
        }
        if self.state == ChunkState::Done {
            return Ok(Chunk::End { consumed: i });
        }
        Ok(Chunk::Need)
    }

    fn end_size_line(&mut self) {
        self.digits = 0;
        self.state = if self.remaining == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn head_of(text: &str, head_request: bool) -> Result<Option<ResponseHead>, HeadError> {
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let Some(layout) = locate_response_head(&bytes)? else {
            return Ok(None);
        };
        let head = bytes.slice(..layout.len);
        build_response_head(&head, &layout, head_request, |_, _| false).map(Some)
    }

    #[test]
    fn request_head_is_written_as_nginx_would() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("app"));
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("x-two", HeaderValue::from_static("1"));
        h.append("x-two", HeaderValue::from_static("2"));
        let cases = [
            (
                RequestFraming::None,
                "GET /p?q=1 HTTP/1.1\r\nhost: app\r\ncookie: a=1\r\nx-two: 1\r\nx-two: 2\r\n\r\n",
            ),
            (
                RequestFraming::Length,
                "GET /p?q=1 HTTP/1.1\r\nhost: app\r\ncookie: a=1\r\nx-two: 1\r\nx-two: 2\r\n\r\n",
            ),
            (
                RequestFraming::Chunked,
                "GET /p?q=1 HTTP/1.1\r\nhost: app\r\ncookie: a=1\r\nx-two: 1\r\nx-two: 2\r\n\
                 transfer-encoding: chunked\r\n\r\n",
            ),
        ];
        for (framing, want) in cases {
            let mut out = Vec::new();
            encode_request_head(&mut out, &Method::GET, "/p?q=1", &h, framing);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{framing:?}");
        }
    }

    #[test]
    fn partial_heads_ask_for_more_bytes() {
        for text in [
            "",
            "HTTP/1.1 200",
            "HTTP/1.1 200 OK\r\n",
            "HTTP/1.1 200 OK\r\nA: b\r\n",
        ] {
            assert!(head_of(text, false).unwrap().is_none(), "{text:?}");
        }
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let cases: &[(&str, bool, Framing, bool)] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
                false,
                Framing::Length(12),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n",
                false,
                Framing::Length(7),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
                true,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                false,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
                false,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 101 Switching\r\nUpgrade: ws\r\n\r\n",
                false,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
                false,
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                Framing::Close,
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                false,
                Framing::Chunked,
                false,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false, Framing::Close, false),
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false,
                Framing::Length(1),
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 1\r\n\r\n",
                false,
                Framing::Length(1),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
                false,
                Framing::Length(1),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
                false,
                Framing::Length(1),
                true,
            ),
        ];
        for (text, head_request, framing, keep_alive) in cases {
            let head = head_of(text, *head_request).unwrap().unwrap();
            assert_eq!(head.framing, *framing, "{text:?}");
            assert_eq!(head.keep_alive, *keep_alive, "{text:?}");
        }
    }

    #[test]
    fn bad_response_heads_are_refused() {
        let many: String = (0..MAX_RESPONSE_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let huge = format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}",
            "a".repeat(MAX_RESPONSE_HEAD)
        );
        let cases: Vec<(String, HeadError)> = vec![
            ("HTTP/1.1 2000 OK\r\n\r\n".into(), HeadError::Invalid),
            ("HTTP/2 200 OK\r\n\r\n".into(), HeadError::Invalid),
            ("SSH-2.0-OpenSSH\r\n\r\n".into(), HeadError::Invalid),
            (
                "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n".into(),
                HeadError::Invalid,
            ),
            (
                "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n".into(),
                HeadError::Invalid,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n".into(),
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".into(),
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".into(),
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n".into(),
                HeadError::BadLength,
            ),
            (format!("HTTP/1.1 200 OK\r\n{many}\r\n"), HeadError::TooBig),
            (huge, HeadError::TooBig),
        ];
        for (text, want) in cases {
            let got = head_of(&text, false).err();
            assert_eq!(got, Some(want), "{:?}", &text[..text.len().min(60)]);
        }
    }

    #[test]
    fn header_values_share_the_received_bytes_and_keep_order() {
        let text =
            "HTTP/1.1 302 Found\r\nSet-Cookie: a=1\r\nLocation: /x\r\nSet-Cookie: b=2\r\n\r\nBODY";
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let layout = locate_response_head(&bytes).unwrap().unwrap();
        assert_eq!(&bytes[layout.len..], b"BODY");
        let head =
            build_response_head(&bytes.slice(..layout.len), &layout, false, |_, _| false).unwrap();
        assert_eq!(head.status, StatusCode::FOUND);
        let cookies: Vec<_> = head.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(head.headers["location"], "/x");
    }

    #[test]
    fn hidden_headers_are_left_out_and_long_heads_keep_every_line() {
        let many: String = (0..40).map(|i| format!("X-{i}: v{i}\r\n")).collect();
        let text =
            format!("HTTP/1.1 200 OK\r\nServer: b\r\n{many}Date: d\r\nContent-Length: 0\r\n\r\n");
        let bytes = Bytes::from(text);
        let layout = locate_response_head(&bytes).unwrap().unwrap();
        let hidden = |n: &HeaderName, _: LineKind| {
            *n == header::SERVER || *n == header::DATE || *n == header::CONTENT_LENGTH
        };
        let head = build_response_head(&bytes.slice(..layout.len), &layout, false, hidden).unwrap();
        assert_eq!(head.headers.len(), 40);
        assert!(!head.headers.contains_key("server") && !head.headers.contains_key("date"));
        assert_eq!(head.headers["x-39"], "v39");
        // A framing header left out of the map still frames the body.
        assert!(!head.headers.contains_key("content-length"));
        assert_eq!(head.framing, Framing::Empty);
    }

    #[test]
    fn names_a_connection_header_lists_are_offered_again_once_all_lines_are_read() {
        let text = "HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: close, x-a, X-B, keep-alive, \
                    upgrade, ,bad name\r\nX-B: 2\r\nX-C: 3\r\nContent-Length: 0\r\n\r\n";
        let bytes = Bytes::from(text);
        let layout = locate_response_head(&bytes).unwrap().unwrap();
        let offered = std::cell::RefCell::new(Vec::new());
        let head = build_response_head(&bytes, &layout, false, |n, kind| {
            offered
                .borrow_mut()
                .push((n.as_str().to_owned(), kind.named_in_connection));
            kind.named_in_connection
        })
        .unwrap();
        // (Removed from the map afterwards: the order of the rest may change.)
        let mut names: Vec<_> = head.headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["connection", "content-length", "x-c"]);
        let named: Vec<_> = offered
            .borrow()
            .iter()
            .filter(|(_, named)| *named)
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(named, ["x-a", "x-b"]);
        // The framing facts come from the Connection line all the same.
        assert!(!head.keep_alive);
    }

    /// Decodes `input` fed in pieces of `step` bytes; returns the data and what
    /// followed the body.
    fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), ChunkError> {
        let mut dec = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            if pending.is_empty() {
                if fed >= input.len() {
                    return Err(ChunkError);
                }
                let end = (fed + step).min(input.len());
                pending.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            match dec.next(&pending)? {
                Chunk::Data { start, len } => {
                    data.extend_from_slice(&pending[start..start + len]);
                    pending.drain(..start + len);
                }
                Chunk::Need => pending.clear(),
                Chunk::End { consumed } => {
                    pending.drain(..consumed);
                    pending.extend_from_slice(&input[fed..]);
                    return Ok((data, pending));
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT",
                b"hello world",
                b"NEXT",
            ),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", b""),
            (b"5;name=value\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (b"5 ; ext\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (b"5\nhello\n0\n\n", b"hello", b""),
            (
                b"5\r\nhello\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n",
                b"hello",
                b"",
            ),
            (b"0\r\n\r\n", b"", b""),
            (b"000\r\n\r\n", b"", b""),
        ];
        for (input, want, rest) in cases {
            for step in [1, 2, 3, 7, input.len()] {
                let (data, after) = decode(input, step).unwrap();
                assert_eq!(
                    data,
                    *want,
                    "{:?} step {step}",
                    String::from_utf8_lossy(input)
                );
                assert_eq!(
                    after,
                    *rest,
                    "{:?} step {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        let cases: &[&[u8]] = &[
            b"\r\n",
            b"x\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\rX",
            b"1000000000000000\r\n",
            b"5;\x01\r\n",
            b"0\r\n\rX",
        ];
        for input in cases {
            assert_eq!(
                decode(input, 1).err(),
                Some(ChunkError),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunk_size_lines_are_hex() {
        assert_eq!(&chunk_size_line(10)[..], b"a\r\n");
        assert_eq!(&chunk_size_line(65536)[..], b"10000\r\n");
    }
}
