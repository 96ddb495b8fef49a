//! Arbitrary bytes as a backend's response through `http1::response` and
//! `http1::chunked`. The first byte is a flag byte: bit 0 the request was HEAD,
//! bit 1 the client speaks HTTP/1.0, bit 2 the client allows keep-alive, bit 3
//! the responder asks to close. Properties: the head parser and the chunked
//! decoder never panic; a head that parses has a length within the input and a
//! framing consistent with its status (HEAD and 1xx: no body), a body read
//! until close never leaves the connection reusable; the proxy's filter keeps
//! every hop-by-hop header out of a response that does not switch protocols
//! and changes no framing fact; the framing lines (`Content-Length`,
//! `Transfer-Encoding`) never reach the header map; the decoder never hands
//! out data beyond the piece it was given.
//!
//! Differential (parser -> encoder -> parser): a parsed head (filtered and
//! unfiltered) is written for the client with `encode_response_head`, with the
//! body length its `Framing` implies (`Length(n)` -> n, `Empty` -> 0, `Chunked`
//! and `Close` -> unknown) and its declared length; the written head is one
//! well-formed head with at most one `Content-Length` line, never both
//! `Content-Length` and `Transfer-Encoding`, at most one `Connection` line,
//! and parsed back it decides the framing the parser decided (`Length(n)` stays
//! `Length(n)`, `Empty` stays `Empty`, `Chunked`/`Close` become `Chunked` for
//! an HTTP/1.1 client and `Close` for an HTTP/1.0 one; HEAD and bodiless
//! statuses: `Empty`), declares the `Content-Length` the encoder reports
//! (`Committed::content_length`), and is reusable exactly when the encoder
//! said so (`101` aside: its `Connection` line is the backend's). Names: every
//! line of the map goes out with the name bytes the backend sent it with
//! (each written line but the encoder's own `Date`, framing and `Connection`
//! and `Content-Type`, which nginx always writes itself, is a line of the
//! input, byte for byte), and the encoder's own lines are spelled as nginx
//! spells them.
#![no_main]

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use sticky_proxy::http1::chunked::{Chunk, ChunkedDecoder};
use sticky_proxy::http1::framing::{bodiless, BodyOut, Framing};
use sticky_proxy::http1::names::Spelling;
use sticky_proxy::http1::response::{
    self, HeadError, ResponseContext, ResponseHead, MAX_RESPONSE_HEAD, MAX_RESPONSE_HEADERS,
};
use sticky_proxy::http1::status::received_status_text;
use sticky_proxy::proxy::headers::{self, HOP_BY_HOP};

const DATE: &[u8] = b"Wed, 02 Dec 2026 07:00:00 GMT";

/// The client the response is written for.
#[derive(Debug, Clone, Copy)]
struct Client {
    head_request: bool,
    http10: bool,
    keep_alive: bool,
    close: bool,
    /// `chunked_transfer_encoding`.
    chunked: bool,
}

/// Writes `parsed` (parsed from `received`) for `client`, reads the written
/// head back and checks that it frames the body as `parsed` said.
fn round_trip(parsed: &ResponseHead, received: &Bytes, client: Client) {
    let body_len = match parsed.framing {
        Framing::Length(n) => Some(n),
        Framing::Empty => Some(0),
        Framing::Chunked | Framing::Close => None,
    };
    let ctx = ResponseContext {
        http10: client.http10,
        head_request: client.head_request,
        keep_alive: client.keep_alive,
        body_len,
        declared_len: parsed.declared_length,
        close: client.close,
        chunked: client.chunked,
        date: DATE,
        names: Spelling::received(received),
        status_text: received_status_text(received, parsed.status),
    };
    let status = parsed.status;
    let mut out = Vec::new();
    let committed = response::encode_response_head(&mut out, status, &parsed.headers, &ctx);
    let shown = || String::from_utf8_lossy(&out).into_owned();
    // `HTTP/1.1` whatever the client's version, then the backend's own
    // status text (nginx's `status_line`), alone on its line.
    assert!(out.starts_with(b"HTTP/1.1 "));
    if let Some(text) = ctx.status_text {
        let first = out.split(|&b| b == b'\n').next().unwrap_or_default();
        assert_eq!(first, [&b"HTTP/1.1 "[..], text, b"\r"].concat(), "{:?}", shown());
    }
    assert!(out.ends_with(b"\r\n\r\n"));
    assert_eq!(
        out.windows(4).position(|w| w == b"\r\n\r\n"),
        Some(out.len() - 4),
        "an empty line inside the head: {:?}",
        shown()
    );

    // What the encoder committed to, against the framing decided.
    let no_body = client.head_request || bodiless(status);
    let want_body = if no_body {
        BodyOut::None
    } else {
        match parsed.framing {
            Framing::Length(n) => BodyOut::Length(n),
            Framing::Empty => BodyOut::Length(0),
            Framing::Chunked | Framing::Close if client.http10 || !client.chunked => BodyOut::Close,
            Framing::Chunked | Framing::Close => BodyOut::Chunked,
        }
    };
    assert_eq!(committed.body, want_body, "{:?}", shown());
    if committed.keep_alive {
        assert!(client.keep_alive && !client.close);
    }
    if committed.body == BodyOut::Close {
        assert!((client.http10 || !client.chunked) && !committed.keep_alive);
    }

    // Read the written head back, as a backend's response.
    let bytes = Bytes::from(out.clone());
    let layout = match response::locate_response_head(&bytes) {
        Ok(Some(layout)) => layout,
        Ok(None) => panic!("the written head reads back as incomplete: {:?}", shown()),
        Err(HeadError::TooBig)
            if out.len() > MAX_RESPONSE_HEAD || parsed.headers.len() + 4 > MAX_RESPONSE_HEADERS =>
        {
            // The written head outgrew the parser's limits (`: ` after each
            // name, the lines the proxy adds): not a framing matter.
            return;
        }
        Err(e) => panic!("the written head reads back as {e:?}: {:?}", shown()),
    };
    assert_eq!(layout.len, out.len(), "read back a different length");
    assert!(!layout.http10, "HTTP/1.1 to every client");
    assert_eq!(layout.status, status.as_u16());
    let count = |name: &HeaderName| {
        layout
            .headers()
            .filter(|(n, _)| out[n.clone()].eq_ignore_ascii_case(name.as_str().as_bytes()))
            .count()
    };
    let lengths = count(&header::CONTENT_LENGTH);
    let codings = count(&header::TRANSFER_ENCODING);
    assert!(
        lengths <= 1,
        "{lengths} content-length lines: {:?}",
        shown()
    );
    assert!(
        codings <= 1,
        "{codings} transfer-encoding lines: {:?}",
        shown()
    );
    assert!(
        lengths == 0 || codings == 0,
        "both content-length and transfer-encoding: {:?}",
        shown()
    );
    assert!(
        count(&header::CONNECTION) <= 1,
        "connection lines: {:?}",
        shown()
    );
    assert_eq!(
        lengths == 1,
        committed.content_length.is_some(),
        "{:?}",
        shown()
    );
    assert_eq!(
        codings == 1,
        committed.body == BodyOut::Chunked,
        "{:?}",
        shown()
    );

    // Each line from the map is a line of the input, name bytes included;
    // the encoder's own are spelled as nginx spells them.
    let input = lines(received);
    let added_date = !parsed.headers.contains_key(header::DATE);
    for (name, value) in layout.headers() {
        let (name, value) = (&out[name], &out[value]);
        let ours = [
            &header::CONTENT_LENGTH,
            &header::TRANSFER_ENCODING,
            &header::CONNECTION,
            &header::CONTENT_TYPE,
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_str().as_bytes()))
            || (added_date && name.eq_ignore_ascii_case(b"date"));
        if ours {
            assert!(
                matches!(
                    name,
                    b"Content-Length"
                        | b"Transfer-Encoding"
                        | b"Connection"
                        | b"Date"
                        | b"Content-Type"
                ),
                "{:?} is not spelled as nginx: {:?}",
                String::from_utf8_lossy(name),
                shown()
            );
        } else {
            assert!(
                input.contains(&(name, value)),
                "{:?} is no input line: {:?}",
                String::from_utf8_lossy(name),
                shown()
            );
        }
    }

    let back = response::build_response_head(&bytes, &layout, client.head_request, |_, _| false)
        .unwrap_or_else(|e| panic!("the written head is refused ({e:?}): {:?}", shown()));
    let want = if no_body {
        Framing::Empty
    } else {
        match parsed.framing {
            Framing::Length(n) => Framing::Length(n),
            Framing::Empty => Framing::Empty,
            Framing::Chunked | Framing::Close if client.http10 || !client.chunked => Framing::Close,
            Framing::Chunked | Framing::Close => Framing::Chunked,
        }
    };
    assert_eq!(
        back.framing,
        want,
        "framing {:?} written for {client:?} reads back differently: {:?}",
        parsed.framing,
        shown()
    );
    assert_eq!(
        back.declared_length,
        committed.content_length,
        "{:?}",
        shown()
    );
    if no_body && bodiless(status) {
        // A 304 passes on the length its source declared; a 1xx or 204 never
        // carries one (RFC 9110 8.6).
        let passed = parsed
            .declared_length
            .filter(|_| status == StatusCode::NOT_MODIFIED);
        assert_eq!(committed.content_length, passed);
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        assert_eq!(back.keep_alive, committed.keep_alive, "{:?}", shown());
    }
}

/// The header lines of the complete head `head` starts with, as bytes.
fn lines(head: &[u8]) -> Vec<(&[u8], &[u8])> {
    match response::locate_response_head(head) {
        Ok(Some(layout)) => layout
            .headers()
            .map(|(n, v)| (&head[n], &head[v]))
            .collect(),
        _ => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (client, data) = match data.split_first() {
        Some((&flag, rest)) => (
            Client {
                head_request: flag & 1 != 0,
                http10: flag & 2 != 0,
                keep_alive: flag & 4 != 0,
                close: flag & 8 != 0,
                chunked: flag & 16 == 0,
            },
            rest,
        ),
        None => return,
    };
    let head_request = client.head_request;
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(Some(layout)) = response::locate_response_head(&bytes) {
        assert!(layout.len <= bytes.len());
        let head = bytes.slice(..layout.len);
        let all = response::build_response_head(&head, &layout, head_request, |_, _| false);
        if let Ok(parsed) = &all {
            if head_request || parsed.status.as_u16() < 200 {
                assert_eq!(parsed.framing, Framing::Empty);
            }
            if parsed.framing == Framing::Close {
                assert!(!parsed.keep_alive);
            }
            // The framing lines are typed facts, never map entries.
            assert!(!parsed.headers.contains_key(header::CONTENT_LENGTH));
            assert!(!parsed.headers.contains_key(header::TRANSFER_ENCODING));
            if let Framing::Length(n) = parsed.framing {
                assert!(n > 0, "Length(0) response framing");
            }
        }
        let filtered = response::build_response_head(&head, &layout, head_request, |n, kind| {
            headers::left_out_of_response(n, kind, &[], &[])
        });
        match (&all, &filtered) {
            (Ok(all), Ok(filtered)) => {
                // Leaving lines out changes no framing fact.
                assert_eq!(
                    (all.framing, all.keep_alive, all.declared_length),
                    (
                        filtered.framing,
                        filtered.keep_alive,
                        filtered.declared_length
                    )
                );
                if all.status.as_u16() != 101 {
                    for name in &HOP_BY_HOP {
                        assert!(!filtered.headers.contains_key(name));
                    }
                }
                round_trip(all, &head, client);
                round_trip(filtered, &head, client);
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("filtering changed whether the head parses"),
        }
    }
    // The same bytes as a chunked body, fed in pieces of varying size.
    let mut dec = ChunkedDecoder::new();
    let mut rest = data;
    let mut step = 1;
    while !rest.is_empty() {
        let piece = &rest[..step.min(rest.len())];
        match dec.next(piece) {
            Ok(Chunk::Data { start, len }) => {
                assert!(len > 0 && start + len <= piece.len());
                rest = &rest[start + len..];
            }
            Ok(Chunk::Need) => rest = &rest[piece.len()..],
            Ok(Chunk::End { consumed }) => {
                assert!(consumed <= piece.len() && dec.is_done());
                break;
            }
            Err(_) => break,
        }
        step = step % 7 + 1;
    }
});
