//! Arbitrary bytes as a client's request head through `downstream::h1`. The
//! first byte gives the header count limit (low 3 bits, 1 to 8) and where the
//! input is split (high 5 bits), the second the line limit (16 to 8192,
//! quadratic so small limits come up often). Properties: never panics; a head
//! that parses was cut off the front of the buffer (what is left is the rest of
//! the input) within the total limit, with a body length that is never 0;
//! `Ok(None)` leaves the buffer untouched and only happens within the total;
//! a head found in a prefix of the input is the head found in the whole
//! (same length, method, target, version, headers and framing), and a prefix
//! refused means the whole is refused. A parsed
//! head's headers go back out through `encode_response_head`, which
//! writes one well-formed head that the upstream response parser reads back
//! whole.
#![no_main]

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use sticky_proxy::downstream::h1::{
    self, BodyFraming, BodyOut, Limits, RequestError, RequestHead, ResponseContext,
    MAX_REQUEST_HEADERS,
};
use sticky_proxy::upstream;

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
            assert_eq!(&buf[..], &input[consumed..], "the rest is not the input's suffix");
            assert!(consumed <= limits.total, "head of {consumed} > total {}", limits.total);
            assert!(input[..consumed].ends_with(b"\n"), "the head does not end a line");
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
    assert!(parts.headers.len() <= MAX_REQUEST_HEADERS);
    assert!(parts.headers.get_all(http::header::HOST).iter().count() <= 1);
    match head.framing {
        BodyFraming::Length(n) => assert!(n > 0, "Length(0) framing"),
        BodyFraming::Chunked => assert!(!http10, "chunked HTTP/1.0 request"),
        BodyFraming::None => {}
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
        date: b"Wed, 02 Dec 2026 07:00:00 GMT",
    };
    let headers: &HeaderMap = &parts.headers;
    let mut out = Vec::new();
    let committed = h1::encode_response_head(&mut out, status, headers, &ctx);
    assert!(out.starts_with(if ctx.http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " }));
    assert!(out.ends_with(b"\r\n\r\n"));
    let end = out.windows(4).position(|w| w == b"\r\n\r\n");
    assert_eq!(end, Some(out.len() - 4), "an empty line inside the head");
    if committed.keep_alive {
        assert!(ctx.keep_alive);
    }
    if committed.body == BodyOut::Close {
        assert!(ctx.http10 && !committed.keep_alive);
    }
    if ctx.head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        assert_eq!(committed.body, BodyOut::None);
    }
    match upstream::h1::locate_response_head(&Bytes::from(out.clone())) {
        Ok(Some(layout)) => assert_eq!(layout.len, out.len(), "read back a different length"),
        Ok(None) => panic!("the written head reads back as incomplete: {:?}", String::from_utf8_lossy(&out)),
        // The upstream parser has its own limits (header count); not this target's concern.
        Err(_) => {}
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
    }

    // A head complete within a prefix of the input is the head of the whole.
    let first = parse_once(&input[..split], limits);
    match &first {
        Ok(Some(_)) => assert_same(&first, &whole, "head in a prefix"),
        // More bytes never make a refused head acceptable.
        Err(e) => assert!(whole.is_err(), "prefix {split} refused with {e:?}, whole parses"),
        Ok(None) => {}
    }
});
