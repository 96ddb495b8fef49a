//! HTTP/1.1 responses on the wire: a backend's response head parsed from
//! bytes, and the response head written for a client. No I/O.
//!
//! The backend's head is parsed with `httparse` ([`locate_response_head`],
//! [`build_response_head`]) into an [`http::HeaderMap`] whose values share the
//! received bytes, without the lines the caller's filter leaves out (they never
//! cost a map insert) and without the lines that frame the body: its framing
//! is decided once ([`crate::http1::framing`]) and travels as a typed value to
//! [`encode_response_head`], which writes the client's framing headers from
//! that value alone. The backend's lines go out with its spelling of their
//! names (the head keeps the received bytes), the proxy's own in nginx's case
//! ([`crate::http1::names`]).

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;
use http::header::{self, Entry, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::http1::fields::{shared_value, HeaderSpans};
use crate::http1::framing::{bodiless, BodyOut, Framing, FramingFacts};
use crate::http1::names::Spelling;
use crate::http1::status::reason;
use crate::numfmt::write_decimal;

/// Most header lines a backend response may carry (nginx's proxy module has no
/// count limit but a 4k/8k `proxy_buffer_size`; 128 lines is far beyond real
/// responses).
pub const MAX_RESPONSE_HEADERS: usize = 128;

/// Longest response head accepted (`upstream sent too big header` beyond it).
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// The header lines, less those the caller's filter left out and those
    /// that frame the body (`Content-Length`, `Transfer-Encoding`).
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The one valid `Content-Length` the head declares (passed on for a
    /// response without a body: to HEAD, a 304).
    pub declared_length: Option<u64>,
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
    /// `Content-Length` unparsable (a list included).
    BadLength,
    /// `Content-Length` or `Transfer-Encoding` given twice.
    Duplicate,
    /// A transfer coding other than exactly `chunked`.
    UnknownCoding,
    /// Both `Content-Length` and `Transfer-Encoding`.
    Ambiguous,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Invalid => write!(f, "upstream sent invalid header"),
            HeadError::TooBig => write!(f, "upstream sent too big header"),
            HeadError::BadLength => write!(f, "upstream sent invalid \"Content-Length\" header"),
            HeadError::Duplicate => write!(f, "upstream sent duplicate framing header line"),
            HeadError::UnknownCoding => {
                write!(f, "upstream sent unknown \"Transfer-Encoding\"")
            }
            HeadError::Ambiguous => write!(
                f,
                "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time"
            ),
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
/// measured, cut off the read buffer): header values share those bytes (so
/// the names of the lines passed on can be spelled from them when the head is
/// written again, [`crate::http1::names::Spelling`]). A
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
    let mut facts = FramingFacts::collecting_listed();
    for (name, value) in layout.headers() {
        let name_bytes = head.get(name).ok_or(HeadError::Invalid)?;
        let name = HeaderName::from_bytes(name_bytes).map_err(|_| HeadError::Invalid)?;
        let raw = head.get(value.clone()).ok_or(HeadError::Invalid)?;
        // The lines that frame the body are facts, never map entries: the
        // framing travels as a typed value.
        if name == header::CONTENT_LENGTH {
            facts.length(raw);
            continue;
        } else if name == header::TRANSFER_ENCODING {
            facts.transfer_encoding(raw);
            continue;
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
        let value = HeaderValue::from_maybe_shared(shared_value(head, value))
            .map_err(|_| HeadError::Invalid)?;
        if singleton(&name) {
            // A repeated singleton keeps its first line, as nginx.
            if let Entry::Vacant(slot) = headers.entry(name) {
                slot.insert(value);
            }
        } else {
            headers.append(name, value);
        }
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
    let framing = facts.response(status, head_request)?;
    Ok(ResponseHead {
        status,
        headers,
        framing,
        declared_length: facts.declared_length(),
        keep_alive: facts.response_keep_alive(layout.http10, framing),
    })
}

/// The response fields nginx takes once from a backend (a repeated line is
/// ignored, the first kept: RFC 9110 singleton fields). A `static`, so a
/// lookup builds and drops no array.
static SINGLETONS: [HeaderName; 10] = [
    header::CONTENT_TYPE,
    header::LAST_MODIFIED,
    header::ETAG,
    header::LOCATION,
    header::EXPIRES,
    header::ACCEPT_RANGES,
    header::CONTENT_RANGE,
    header::CONTENT_ENCODING,
    header::SERVER,
    header::DATE,
];

fn singleton(name: &HeaderName) -> bool {
    SINGLETONS.iter().any(|h| h == name)
}

/// What the response head is written for.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// The request is HTTP/1.0 (no chunked body; keep-alive only when
    /// asked). The status line says `HTTP/1.1` all the same, as nginx's.
    pub http10: bool,
    /// A backend's status line after its version, passed on verbatim
    /// (`200 Fine`; nginx's `status_line`), instead of the code and
    /// nginx's phrase for it.
    pub status_text: Option<&'a [u8]>,
    /// A response to HEAD: headers as for GET, no body.
    pub head_request: bool,
    /// The connection may stay open after this response (the client allows
    /// it, the server's keep-alive settings allow it, no drain is under way,
    /// the request body is consumed).
    pub keep_alive: bool,
    /// The body's exact length when known (the framing its source decided).
    pub body_len: Option<u64>,
    /// For a response without a body (to HEAD, a 304): the length its source
    /// declared, passed on (never for 1xx and 204).
    pub declared_len: Option<u64>,
    /// The responder asks to close the connection after this response.
    pub close: bool,
    /// A body of unknown length may be chunked (else the close ends it).
    pub chunked: bool,
    /// The `Date` value (`Sun, 06 Nov 1994 08:49:37 GMT`).
    pub date: &'a [u8],
    /// How the header names are spelled: as the backend sent them for the
    /// lines passed on, canonically for the proxy's own.
    pub names: Spelling<'a>,
}

/// The response head as written, and what it commits the connection to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub body: BodyOut,
    /// The `Content-Length` the head carries, if any.
    pub content_length: Option<u64>,
    /// The connection carries another request after this response.
    pub keep_alive: bool,
}

/// Writes the status line, the headers of `headers` (each name spelled as
/// `ctx.names` says, but `Content-Type`, which nginx always writes itself),
/// and what the proxy adds, in nginx's case: `Date` (when absent), the body
/// framing, and `Connection`.
pub fn encode_response_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    ctx: &ResponseContext<'_>,
) -> Committed {
    // `HTTP/1.1` whatever the request's version, as nginx (RFC 9110 6.2:
    // the highest version the server conforms to).
    out.extend_from_slice(b"HTTP/1.1 ");
    if let Some(text) = ctx.status_text {
        out.extend_from_slice(text);
    } else {
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason(status).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (name, value) in headers {
        if *name == header::DATE {
            has_date = true;
        } else if *name == header::CONNECTION
            || *name == header::CONTENT_LENGTH
            || *name == header::TRANSFER_ENCODING
        {
            // Written below from typed values, never from the map.
            continue;
        }
        // nginx writes `Content-Type` itself, whoever set it (a backend's
        // line becomes `r->headers_out.content_type`); the rest as spelled.
        out.extend_from_slice(if *name == header::CONTENT_TYPE {
            b"Content-Type"
        } else {
            ctx.names.name(name, value)
        });
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(ctx.date);
        out.extend_from_slice(b"\r\n");
    }
    let content_length = response_length(status, ctx.head_request, ctx.body_len, ctx.declared_len);
    if let Some(n) = content_length {
        write_length(out, n);
    }
    let body = if bodiless(status) || ctx.head_request {
        BodyOut::None
    } else if let Some(n) = ctx.body_len {
        BodyOut::Length(n)
    } else if ctx.http10 || !ctx.chunked {
        BodyOut::Close
    } else {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        BodyOut::Chunked
    };
    let keep_alive = ctx.keep_alive && !ctx.close && body != BodyOut::Close;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        // The upgrade's own `Connection: upgrade` was kept by the filter.
        if let Some(v) = headers.get(header::CONNECTION) {
            out.extend_from_slice(b"Connection: ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    } else if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if ctx.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Committed {
        body,
        content_length,
        keep_alive,
    }
}

/// The `Content-Length` a response says (HTTP/1 and HTTP/2 alike): its
/// body's exact length (`body_len`), or for a response without a body the
/// length its source declared (`declared_len`).
#[inline]
pub fn response_length(
    status: StatusCode,
    head_request: bool,
    body_len: Option<u64>,
    declared_len: Option<u64>,
) -> Option<u64> {
    if bodiless(status) {
        // A 304 may say the length a 200 would have; a 1xx or 204 never
        // carries one (RFC 9110 8.6), as nginx.
        declared_len.filter(|_| status == StatusCode::NOT_MODIFIED)
    } else if head_request {
        // As for GET, when the length is known.
        declared_len.or(body_len.filter(|&n| n > 0))
    } else {
        body_len
    }
}

fn write_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    write_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// The `100 Continue` interim response.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Every header line of a response head as received (`raw`: status line to
/// the empty line), framing, hop-by-hop and hidden lines included, for
/// `$upstream_http_*`; empty when `raw` is not a complete head.
pub fn head_lines(raw: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    let Ok(Some(layout)) = locate_response_head(raw) else {
        return map;
    };
    for (name, value) in layout.headers() {
        let (Some(name), Some(value)) = (raw.get(name), raw.get(value)) else {
            continue;
        };
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            map.append(name, value);
        }
    }
    map
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
                HeadError::Duplicate,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n".into(),
                HeadError::Duplicate,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n".into(),
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                    .into(),
                HeadError::Ambiguous,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".into(),
                HeadError::UnknownCoding,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .into(),
                HeadError::Duplicate,
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
    fn repeated_singleton_fields_keep_their_first_line() {
        let text = "HTTP/1.1 200 OK\r\nExpires: first\r\nSet-Cookie: a=1\r\nExpires: second\r\n\
                    Content-Type: text/plain\r\nContent-Type: text/html\r\nSet-Cookie: b=2\r\n\
                    Location: /one\r\nLocation: /two\r\nContent-Length: 0\r\n\r\n";
        let head = head_of(text, false).unwrap().unwrap();
        let all = |n: &str| -> Vec<&str> {
            head.headers
                .get_all(n)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(all("expires"), ["first"]);
        assert_eq!(all("content-type"), ["text/plain"]);
        assert_eq!(all("location"), ["/one"]);
        assert_eq!(all("set-cookie"), ["a=1", "b=2"]);
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
        // (The framing line is a typed fact, not a map entry.)
        assert_eq!(names, ["connection", "x-c"]);
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
    fn encode(
        status: u16,
        headers: &[(&str, &str)],
        ctx: ResponseContext<'_>,
    ) -> (String, Committed) {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut out = Vec::new();
        let committed =
            encode_response_head(&mut out, StatusCode::from_u16(status).unwrap(), &map, &ctx);
        (String::from_utf8(out).unwrap(), committed)
    }

    const DATE: &[u8] = b"Wed, 02 Dec 2026 07:00:00 GMT";

    fn ctx(
        http10: bool,
        head: bool,
        keep_alive: bool,
        len: Option<u64>,
    ) -> ResponseContext<'static> {
        ResponseContext {
            http10,
            head_request: head,
            keep_alive,
            body_len: len,
            declared_len: None,
            close: false,
            chunked: true,
            date: DATE,
            names: Spelling::default(),
            status_text: None,
        }
    }

    #[test]
    fn response_heads_frame_the_body_and_say_the_connection() {
        let date = "Date: Wed, 02 Dec 2026 07:00:00 GMT\r\n";
        // (status, headers, context, head, committed body, keep-alive)
        type Case<'a> = (
            u16,
            Vec<(&'a str, &'a str)>,
            ResponseContext<'a>,
            String,
            BodyOut,
            bool,
        );
        let cases: Vec<Case<'_>> = vec![
            (200, vec![("content-length", "5")], ctx(false, false, true, Some(5)),
             format!("HTTP/1.1 200 OK\r\n{date}Content-Length: 5\r\n\r\n"), BodyOut::Length(5), true),
            // The map's framing lines are never trusted: the body's is.
            (200, vec![("content-length", "5"), ("transfer-encoding", "chunked")], ctx(false, false, true, None),
             format!("HTTP/1.1 200 OK\r\n{date}Transfer-Encoding: chunked\r\n\r\n"), BodyOut::Chunked, true),
            (200, vec![("content-length", "abc")], ctx(false, false, true, Some(2)),
             format!("HTTP/1.1 200 OK\r\n{date}Content-Length: 2\r\n\r\n"), BodyOut::Length(2), true),
            (200, vec![], ctx(false, false, true, Some(3)),
             format!("HTTP/1.1 200 OK\r\n{date}Content-Length: 3\r\n\r\n"), BodyOut::Length(3), true),
            (200, vec![], ctx(false, false, true, None),
             format!("HTTP/1.1 200 OK\r\n{date}Transfer-Encoding: chunked\r\n\r\n"), BodyOut::Chunked, true),
            (200, vec![], ctx(true, false, true, None),
             format!("HTTP/1.1 200 OK\r\n{date}Connection: close\r\n\r\n"), BodyOut::Close, false),
            // To HTTP/1.0 too the status line says `HTTP/1.1`, as nginx's.
            (200, vec![], ctx(true, false, true, Some(2)),
             format!("HTTP/1.1 200 OK\r\n{date}Content-Length: 2\r\nConnection: keep-alive\r\n\r\n"), BodyOut::Length(2), true),
            // A backend's status line passed on: its text, not nginx's.
            (200, vec![], ResponseContext { status_text: Some(b"200 Fine"), ..ctx(true, false, true, Some(2)) },
             format!("HTTP/1.1 200 Fine\r\n{date}Content-Length: 2\r\nConnection: keep-alive\r\n\r\n"), BodyOut::Length(2), true),
            (503, vec![], ResponseContext { status_text: Some(b"503"), ..ctx(false, false, true, Some(2)) },
             format!("HTTP/1.1 503\r\n{date}Content-Length: 2\r\n\r\n"), BodyOut::Length(2), true),
            // nginx's own phrases, and none for a code it does not name.
            (302, vec![], ctx(false, false, true, Some(0)),
             format!("HTTP/1.1 302 Moved Temporarily\r\n{date}Content-Length: 0\r\n\r\n"), BodyOut::Length(0), true),
            (418, vec![], ctx(false, false, true, Some(0)),
             format!("HTTP/1.1 418 \r\n{date}Content-Length: 0\r\n\r\n"), BodyOut::Length(0), true),
            // `chunked_transfer_encoding off`: the close ends a body of
            // unknown length; a known length is unaffected.
            (200, vec![], ResponseContext { chunked: false, ..ctx(false, false, true, None) },
             format!("HTTP/1.1 200 OK\r\n{date}Connection: close\r\n\r\n"), BodyOut::Close, false),
            (200, vec![], ResponseContext { chunked: false, ..ctx(false, false, true, Some(2)) },
             format!("HTTP/1.1 200 OK\r\n{date}Content-Length: 2\r\n\r\n"), BodyOut::Length(2), true),
            // Closing is a field, not a header found again.
            (200, vec![], ResponseContext { close: true, ..ctx(false, false, true, Some(0)) },
             format!("HTTP/1.1 200 OK\r\n{date}Content-Length: 0\r\nConnection: close\r\n\r\n"), BodyOut::Length(0), false),
            (200, vec![("connection", "close")], ctx(false, false, true, Some(0)),
             format!("HTTP/1.1 200 OK\r\n{date}Content-Length: 0\r\n\r\n"), BodyOut::Length(0), true),
            (404, vec![], ctx(false, true, true, Some(7)),
             format!("HTTP/1.1 404 Not Found\r\n{date}Content-Length: 7\r\n\r\n"), BodyOut::None, true),
            (200, vec![("content-length", "9")], ResponseContext { declared_len: Some(9), ..ctx(false, true, false, Some(0)) },
             format!("HTTP/1.1 200 OK\r\n{date}Content-Length: 9\r\nConnection: close\r\n\r\n"), BodyOut::None, false),
            (304, vec![("date", "x")], ResponseContext { declared_len: Some(4), ..ctx(false, false, true, Some(0)) },
             "HTTP/1.1 304 Not Modified\r\nDate: x\r\nContent-Length: 4\r\n\r\n".to_string(), BodyOut::None, true),
            // Never for a 204 or 1xx (RFC 9110 8.6), as nginx.
            (204, vec![], ResponseContext { declared_len: Some(4), ..ctx(false, false, true, Some(0)) },
             format!("HTTP/1.1 204 No Content\r\n{date}\r\n"), BodyOut::None, true),
            (304, vec![("date", "x")], ctx(false, false, true, Some(0)),
             "HTTP/1.1 304 Not Modified\r\nDate: x\r\n\r\n".to_string(), BodyOut::None, true),
            // Only a backend answers 101: its status line goes on.
            (101, vec![("upgrade", "websocket"), ("connection", "upgrade")],
             ResponseContext { status_text: Some(b"101 Switching Protocols"), ..ctx(false, false, true, Some(0)) },
             format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n{date}Connection: upgrade\r\n\r\n"), BodyOut::None, true),
            (504, vec![("transfer-encoding", "chunked")], ctx(false, false, true, Some(1)),
             format!("HTTP/1.1 504 Gateway Time-out\r\n{date}Content-Length: 1\r\n\r\n"), BodyOut::Length(1), true),
        ];
        for (status, headers, ctx, want, body, keep_alive) in cases {
            let (head, committed) = encode(status, &headers, ctx);
            assert_eq!(head, want, "{status} {headers:?}");
            assert_eq!(
                committed,
                Committed {
                    body,
                    content_length: committed.content_length,
                    keep_alive
                },
                "{status} {headers:?}"
            );
        }
    }

    #[test]
    fn backend_names_go_out_as_received_and_ours_canonically() {
        let text = "HTTP/1.1 200 OK\r\nX-CuStOm: 1\r\ncontent-type: text/plain\r\n\
                    SET-COOKIE: a=1\r\nX-Empty:\r\ndAtE: d\r\nContent-Length: 2\r\n\r\n";
        let received = Bytes::from_static(text.as_bytes());
        let layout = locate_response_head(&received).unwrap().unwrap();
        let head = build_response_head(&received, &layout, false, |_, _| false).unwrap();
        let mut headers = head.headers;
        // What the proxy adds: canonical, as is `Content-Type` (nginx
        // writes it itself, as it does `Date` unless passed on).
        headers.append(header::SET_COOKIE, HeaderValue::from_static("ours=1"));
        headers.insert(header::SERVER, HeaderValue::from_static("sticky-proxy"));
        let ctx = ResponseContext {
            names: Spelling::received(&received),
            ..ctx(false, false, false, Some(2))
        };
        let mut out = Vec::new();
        encode_response_head(&mut out, StatusCode::OK, &headers, &ctx);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nX-CuStOm: 1\r\nContent-Type: text/plain\r\n\
             SET-COOKIE: a=1\r\nSet-Cookie: ours=1\r\nX-Empty: \r\ndAtE: d\r\n\
             Server: sticky-proxy\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
    }
}
