//! Arbitrary bytes as a client's request head through `http1::request`. The
//! first byte gives the header count limit (low 3 bits, 1 to 8) and where the
//! input is split (high 5 bits), the second the line limit (16 to 8192,
//! quadratic so small limits come up often). Properties: never panics; a head
//! that parses was cut off the front of the buffer (what is left is the rest of
//! the input) within the total limit, with the framing its header lines say
//! (`Length(n)`: one `Content-Length` line of value n, possibly 0, and no
//! `Transfer-Encoding`; `Chunked`: one `Transfer-Encoding: chunked` line, no
//! `Content-Length`, HTTP/1.1; `None`: neither line);
//! its method only uppercase letters, `_` and `-` (nginx's);
//! `Ok(None)` leaves the buffer untouched and only happens within the total;
//! a head found in a prefix of the input is the head found in the whole
//! (same length, method, target, version, headers and framing), and a prefix
//! refused means the whole is refused. A parsed head's headers go back out
//! through `encode_response_head`, which writes one well-formed head (at most
//! one `Content-Length` line, the one it reports, never with
//! `Transfer-Encoding`, at most one `Connection` line: the client's framing and
//! `Connection` lines are never copied) that the upstream response parser reads
//! back whole.
//!
//! Differential (parser -> encoder -> parser): a parsed head's `BodyFraming`,
//! as the `RequestFraming` the proxy sends, is written for a backend with
//! `encode_request_head` (with a `Host` when the client gave none); parsed back
//! with `parse_request_head` it is one whole head with the same method, target,
//! framing and other headers (and, for an HTTP/1.1 client, keep-alive and
//! `Expect: 100-continue`), with at most one framing line. Names: every line
//! written but the framing one and an added `Host` is a line of the client's
//! head, name bytes included (its spelling kept), and those two are spelled
//! as nginx spells them.
#![no_main]

use bytes::BytesMut;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use sticky_proxy::http1::fields::parse_decimal;
use sticky_proxy::http1::framing::{bodiless, BodyFraming, BodyOut, RequestFraming};
use sticky_proxy::http1::invalid::HeaderNames;
use sticky_proxy::http1::names::Spelling;
use sticky_proxy::http1::request::{
    self as h1, Limits, RequestError, RequestHead, MAX_REQUEST_HEADERS,
};
use sticky_proxy::http1::response::{self, ResponseContext};
use sticky_proxy::http1::status::received_status_text;

/// What one parse did: the result and how many bytes it cut off the buffer.
type Outcome = Result<Option<(RequestHead, usize)>, RequestError>;

/// Parses `input` with `limits` and checks what holds for any one parse.
fn parse_once(input: &[u8], limits: Limits) -> Outcome {
    let mut buf = BytesMut::from(input);
    let result = h1::parse_request_head(&mut buf, limits);
    match result {
        Ok(Some(head)) => {
            let consumed = input.len() - buf.len();
            assert!(buf.len() < input.len(), "a head was parsed from no bytes");
            assert_eq!(
                &buf[..],
                &input[consumed..],
                "the rest is not the input's suffix"
            );
            assert!(
                consumed <= limits.total,
                "head of {consumed} > total {}",
                limits.total
            );
            assert!(
                input[..consumed].ends_with(b"\n"),
                "the head does not end a line"
            );
            check_head(&head);
            Ok(Some((head, consumed)))
        }
        Ok(None) => {
            assert_eq!(&buf[..], input, "Ok(None) changed the buffer");
            assert!(input.len() <= limits.total, "waiting past the total limit");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn check_head(head: &RequestHead) {
    let parts = &head.parts;
    assert!(parts.version == Version::HTTP_10 || parts.version == Version::HTTP_11);
    let http10 = parts.version == Version::HTTP_10;
    assert_ne!(parts.method, Method::CONNECT);
    // nginx's methods: uppercase letters, `_` and `-` only.
    assert!(parts
        .method
        .as_str()
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-'));
    assert!(parts.headers.len() <= MAX_REQUEST_HEADERS);
    assert!(parts.headers.get_all(http::header::HOST).iter().count() <= 1);
    let lengths: Vec<_> = parts
        .headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .collect();
    let codings: Vec<_> = parts
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .collect();
    match head.framing {
        // `Length(0)` only for an explicit `Content-Length: 0`.
        BodyFraming::Length(n) => {
            assert!(codings.is_empty(), "Length framing with transfer-encoding");
            assert_eq!(
                lengths.len(),
                1,
                "Length framing without one content-length"
            );
            assert_eq!(parse_decimal(lengths[0].as_bytes().trim_ascii()), Some(n));
        }
        BodyFraming::Chunked => {
            assert!(!http10, "chunked HTTP/1.0 request");
            assert!(lengths.is_empty(), "chunked framing with content-length");
            assert_eq!(
                codings.len(),
                1,
                "chunked framing without one transfer-encoding"
            );
            assert!(codings[0]
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked"));
        }
        BodyFraming::None => {
            assert!(
                lengths.is_empty() && codings.is_empty(),
                "framing lines but no framing"
            );
        }
    }
    if head.expect_continue {
        assert!(!http10);
    }
}

/// Two outcomes describe the same request head.
fn assert_same(a: &Outcome, b: &Outcome, what: &str) {
    match (a, b) {
        (Ok(Some((x, xn))), Ok(Some((y, yn)))) => {
            assert_eq!(xn, yn, "{what}: head lengths differ");
            assert_eq!(x.parts.method, y.parts.method, "{what}");
            assert_eq!(x.parts.uri, y.parts.uri, "{what}");
            assert_eq!(x.parts.version, y.parts.version, "{what}");
            assert_eq!(x.parts.headers, y.parts.headers, "{what}");
            assert_eq!(x.framing, y.framing, "{what}");
            assert_eq!(x.keep_alive, y.keep_alive, "{what}");
            assert_eq!(x.expect_continue, y.expect_continue, "{what}");
        }
        (Ok(None), Ok(None)) => {}
        (Err(x), Err(y)) => assert_eq!(x, y, "{what}"),
        _ => panic!("{what}: {:?} vs {:?}", kind(a), kind(b)),
    }
}

fn kind(o: &Outcome) -> Result<Option<usize>, RequestError> {
    match o {
        Ok(Some((_, n))) => Ok(Some(*n)),
        Ok(None) => Ok(None),
        Err(e) => Err(*e),
    }
}

const STATUSES: [u16; 10] = [200, 204, 304, 101, 100, 404, 206, 299, 500, 999];

/// Writes a response with the request's headers and checks its shape.
fn encode(head: &RequestHead, consumed: usize) {
    let parts = &head.parts;
    let status = StatusCode::from_u16(STATUSES[consumed % STATUSES.len()]).expect("valid status");
    let body_len = match head.framing {
        BodyFraming::Length(n) => Some(n),
        BodyFraming::None => Some(0),
        BodyFraming::Chunked => None,
    };
    let ctx = ResponseContext {
        http10: parts.version == Version::HTTP_10,
        head_request: parts.method == Method::HEAD,
        keep_alive: head.keep_alive,
        body_len: body_len.filter(|_| consumed % 3 != 0),
        declared_len: body_len.filter(|_| consumed % 5 < 2),
        close: consumed % 4 == 1,
        chunked: consumed % 7 != 3,
        date: b"Wed, 02 Dec 2026 07:00:00 GMT",
        names: Spelling::received(&head.received),
        // The request's own bytes as a "received" head: the status-line
        // reader sees arbitrary input (a request line never matches).
        status_text: received_status_text(&head.received, status),
    };
    let headers: &HeaderMap = &parts.headers;
    let mut out = Vec::new();
    let committed = response::encode_response_head(&mut out, status, headers, &ctx);
    // `HTTP/1.1` whatever the request's version, as nginx.
    assert!(out.starts_with(b"HTTP/1.1 "));
    assert!(out.ends_with(b"\r\n\r\n"));
    let end = out.windows(4).position(|w| w == b"\r\n\r\n");
    assert_eq!(end, Some(out.len() - 4), "an empty line inside the head");
    if committed.keep_alive {
        assert!(ctx.keep_alive);
    }
    if committed.body == BodyOut::Close {
        assert!((ctx.http10 || !ctx.chunked) && !committed.keep_alive);
    }
    if committed.keep_alive {
        assert!(!ctx.close);
    }
    if ctx.head_request || bodiless(status) {
        assert_eq!(committed.body, BodyOut::None);
    }
    if bodiless(status) {
        // A 304 passes on the length its source declared; a 1xx or 204 never
        // carries one (RFC 9110 8.6).
        let passed = ctx.declared_len.filter(|_| status == StatusCode::NOT_MODIFIED);
        assert_eq!(committed.content_length, passed);
    } else if !ctx.head_request {
        assert_eq!(committed.content_length, ctx.body_len);
    }
    let shown = || String::from_utf8_lossy(&out).into_owned();
    match response::locate_response_head(&out) {
        Ok(Some(layout)) => {
            assert_eq!(layout.len, out.len(), "read back a different length");
            let lines = |name: &HeaderName| -> Vec<&[u8]> {
                layout
                    .headers()
                    .filter(|(n, _)| out[n.clone()].eq_ignore_ascii_case(name.as_str().as_bytes()))
                    .map(|(_, v)| &out[v])
                    .collect()
            };
            let lengths = lines(&header::CONTENT_LENGTH);
            let codings = lines(&header::TRANSFER_ENCODING);
            assert!(lengths.len() <= 1, "content-length lines: {:?}", shown());
            assert!(codings.len() <= 1, "transfer-encoding lines: {:?}", shown());
            assert!(
                lengths.is_empty() || codings.is_empty(),
                "both framings: {:?}",
                shown()
            );
            assert!(
                lines(&header::CONNECTION).len() <= 1,
                "connection lines: {:?}",
                shown()
            );
            let written = lengths
                .first()
                .map(|v| parse_decimal(v).expect("a decimal"));
            assert_eq!(written, committed.content_length, "{:?}", shown());
            assert_eq!(
                codings.len() == 1,
                committed.body == BodyOut::Chunked,
                "{:?}",
                shown()
            );
        }
        Ok(None) => panic!("the written head reads back as incomplete: {:?}", shown()),
        // The upstream parser has its own limits (header count); not this target's concern.
        Err(_) => {}
    }
}

/// Limits no written head of an accepted request reaches.
const WIDE: Limits = Limits {
    line: 1 << 20,
    total: 1 << 22,
    names: HeaderNames::NGINX,
};

/// Writes the request for a backend with the framing the parser decided and
/// parses it back: the same request, framed the same way.
fn forward(head: &RequestHead) {
    let parts = &head.parts;
    let framing = match head.framing {
        BodyFraming::None => RequestFraming::None,
        BodyFraming::Length(n) => RequestFraming::Length(n),
        BodyFraming::Chunked => RequestFraming::Chunked,
    };
    let mut headers = parts.headers.clone();
    let added_host = !headers.contains_key(header::HOST);
    if added_host {
        headers.insert(header::HOST, HeaderValue::from_static("backend.invalid"));
    }
    let target = parts.uri.to_string();
    let mut out = Vec::new();
    let names = Spelling::received(&head.received);
    h1::encode_request_head(&mut out, &parts.method, &target, &headers, framing, &names);
    let shown = || String::from_utf8_lossy(&out).into_owned();
    let mut buf = BytesMut::from(&out[..]);
    let back = match h1::parse_request_head(&mut buf, WIDE) {
        Ok(Some(back)) => back,
        Err(RequestError::HeaderTooLarge) if headers.len() + 1 > MAX_REQUEST_HEADERS => return,
        other => panic!(
            "the request written for {:?} reads back as {:?}: {:?}",
            head.framing,
            other.map(|o| o.map(|h| h.framing)),
            shown()
        ),
    };
    assert!(
        buf.is_empty(),
        "the written head is not one whole head: {:?}",
        shown()
    );
    assert_eq!(
        back.framing,
        head.framing,
        "framing changed on the way: {:?}",
        shown()
    );
    assert_eq!(back.parts.version, Version::HTTP_11);
    assert_eq!(back.parts.method, parts.method);
    assert_eq!(back.parts.uri.to_string(), target);
    if parts.version == Version::HTTP_11 {
        assert_eq!(back.keep_alive, head.keep_alive, "{:?}", shown());
        assert_eq!(back.expect_continue, head.expect_continue, "{:?}", shown());
    }
    // Every other header line goes through as it was, in order.
    for name in headers.keys() {
        if *name == header::CONTENT_LENGTH || *name == header::TRANSFER_ENCODING {
            continue;
        }
        let sent: Vec<_> = headers.get_all(name).iter().collect();
        let got: Vec<_> = back.parts.headers.get_all(name).iter().collect();
        assert_eq!(sent, got, "{name}: {:?}", shown());
    }
    let framing_lines = |map: &HeaderMap| {
        map.get_all(header::CONTENT_LENGTH).iter().count()
            + map.get_all(header::TRANSFER_ENCODING).iter().count()
    };
    let want_lines = usize::from(framing != RequestFraming::None);
    assert_eq!(
        framing_lines(&back.parts.headers),
        want_lines,
        "framing lines: {:?}",
        shown()
    );
    // Nothing else was added or lost.
    assert_eq!(
        back.parts.headers.len(),
        headers.len() - framing_lines(&headers) + want_lines,
        "{:?}",
        shown()
    );
    // The client's lines go on as it wrote them, ours as nginx writes them.
    let (Some(input), Some(written)) = (request_lines(&head.received), request_lines(&out)) else {
        panic!("a parsed head no longer parses: {:?}", shown());
    };
    for (name, value) in written {
        let is = |h: &HeaderName| name.eq_ignore_ascii_case(h.as_str().as_bytes());
        if is(&header::CONTENT_LENGTH) || is(&header::TRANSFER_ENCODING) {
            assert!(
                name == b"Content-Length" || name == b"Transfer-Encoding",
                "framing line spelled {:?}: {:?}",
                String::from_utf8_lossy(name),
                shown()
            );
        } else if added_host && is(&header::HOST) {
            assert_eq!(name, b"Host", "{:?}", shown());
        } else {
            assert!(
                input.contains(&(name, value)),
                "{:?} is no line of the client's: {:?}",
                String::from_utf8_lossy(name),
                shown()
            );
        }
    }
}

/// The header lines of a complete request head, as httparse reads them.
fn request_lines(head: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut slots = vec![httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS + 1];
    let mut req = httparse::Request::new(&mut slots);
    // The proxy drops lines with invalid names (`ignore_invalid_headers on`,
    // its default): read the client's head the same way.
    let mut config = httparse::ParserConfig::default();
    config.ignore_invalid_headers_in_requests(true);
    match config.parse_request(&mut req, head) {
        Ok(httparse::Status::Complete(_)) => Some(
            req.headers
                .iter()
                .map(|h| (h.name.as_bytes(), h.value))
                .collect(),
        ),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let [b0, b1, ref input @ ..] = *data else {
        return;
    };
    let count = 1 + usize::from(b0 & 7);
    let b1 = usize::from(b1);
    let size = 16 + b1 * b1 * (8192 - 16) / (255 * 255);
    let limits = Limits::new(count, size);
    let split = input.len() * usize::from(b0 >> 3) / 31;

    let whole = parse_once(input, limits);
    if let Ok(Some((head, consumed))) = &whole {
        encode(head, *consumed);
        forward(head);
    }

    // A head complete within a prefix of the input is the head of the whole.
    let first = parse_once(&input[..split], limits);
    match &first {
        Ok(Some(_)) => assert_same(&first, &whole, "head in a prefix"),
        // More bytes never make a refused head acceptable.
        Err(e) => assert!(
            whole.is_err(),
            "prefix {split} refused with {e:?}, whole parses"
        ),
        Ok(None) => {}
    }
});
