//! Trailer fields passed from one hop to the next: which fields may travel
//! in a trailer section ([`allowed`]), a chunked body's section as received
//! read into fields ([`parse_section`]), and the end of a chunked body that
//! carries them ([`last_chunk`]). No I/O.
//!
//! RFC 9110 section 6.5.1: a sender must not put in trailers the fields that
//! frame the message, route it, modify the request, authenticate, control
//! the response or describe how to process its content; a recipient may not
//! merge such fields into the header section. Those and the hop-by-hop
//! fields are dropped here, whatever the peer sent.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};

/// The fields a trailer section never passes on.
const FORBIDDEN: &[HeaderName] = &[
    // Framing and hop-by-hop.
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::TRAILER,
    header::TE,
    header::CONNECTION,
    header::UPGRADE,
    // Routing.
    header::HOST,
    // Request modifiers: controls and conditionals.
    header::CACHE_CONTROL,
    header::EXPECT,
    header::MAX_FORWARDS,
    header::PRAGMA,
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    // Authentication, and the cookies that often stand for it.
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::WWW_AUTHENTICATE,
    header::PROXY_AUTHENTICATE,
    header::COOKIE,
    header::SET_COOKIE,
    // Response control data.
    header::AGE,
    header::DATE,
    header::EXPIRES,
    header::LOCATION,
    header::RETRY_AFTER,
    header::VARY,
    header::WARNING,
    // Content processing.
    header::CONTENT_ENCODING,
    header::CONTENT_TYPE,
    header::CONTENT_RANGE,
];

/// Hop-by-hop fields without an `http` constant.
const FORBIDDEN_NAMES: &[&str] = &["keep-alive", "proxy-connection"];

/// Whether a trailer field named `name` may be passed on.
pub fn is_allowed(name: &HeaderName) -> bool {
    !FORBIDDEN.contains(name) && !FORBIDDEN_NAMES.contains(&name.as_str())
}

/// `trailers` without the fields a trailer section must not pass on
/// (`None` when none is left).
pub fn allowed(mut trailers: HeaderMap) -> Option<HeaderMap> {
    if trailers.keys().any(|n| !is_allowed(n)) {
        let mut only = HeaderMap::new();
        // `drain` names a field once, before the first of its values.
        let mut current = None;
        for (name, value) in trailers.drain() {
            if let Some(name) = name {
                current = is_allowed(&name).then_some(name);
            }
            if let Some(name) = &current {
                only.append(name.clone(), value);
            }
        }
        trailers = only;
    }
    (!trailers.is_empty()).then_some(trailers)
}

/// The fields of a chunked body's trailer section as received (`name:
/// value` lines, each ending in LF or CRLF), those that may pass on
/// ([`allowed`]); a line that is no valid field (no colon, a bad name, a
/// folded line, a control character in the value) is left out.
pub fn parse_section(section: &[u8]) -> Option<HeaderMap> {
    let mut fields = HeaderMap::new();
    for line in section.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            fields.append(name, value);
        }
    }
    allowed(fields)
}

/// The last chunk of a chunked body with `trailers` as its trailer section
/// (each value already a checked field value: no CR, LF or NUL).
pub fn last_chunk(trailers: &HeaderMap) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(fields: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in fields {
            m.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn fields_rfc_9110_keeps_out_of_trailers_are_dropped() {
        let cases: &[(&str, bool)] = &[
            ("grpc-status", true),
            ("x-checksum", true),
            ("server-timing", true),
            ("digest", true),
            ("content-length", false),
            ("transfer-encoding", false),
            ("host", false),
            ("trailer", false),
            ("te", false),
            ("connection", false),
            ("keep-alive", false),
            ("proxy-connection", false),
            ("authorization", false),
            ("cookie", false),
            ("set-cookie", false),
            ("content-type", false),
            ("content-encoding", false),
            ("cache-control", false),
            ("if-none-match", false),
            ("location", false),
            ("date", false),
        ];
        for (name, kept) in cases {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(is_allowed(&name), *kept, "{name}");
        }
    }

    #[test]
    fn a_section_keeps_its_allowed_fields_in_order_with_repeats() {
        let got = allowed(map(&[
            ("x-a", "1"),
            ("content-length", "5"),
            ("x-b", "2"),
            ("x-a", "3"),
            ("host", "h"),
            ("host", "i"),
            ("x-c", "4"),
        ]))
        .unwrap();
        let fields: Vec<(&str, &str)> = got
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            [("x-a", "1"), ("x-a", "3"), ("x-b", "2"), ("x-c", "4")]
        );
        assert_eq!(allowed(map(&[("content-length", "1")])), None);
        assert_eq!(allowed(HeaderMap::new()), None);
    }

    #[test]
    fn a_received_section_gives_its_valid_allowed_fields() {
        type Case<'a> = (&'a [u8], &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (b"", &[]),
            (b"X-Sum: abc\r\n", &[("x-sum", "abc")]),
            (
                b"grpc-status:0\r\nGrpc-Message:  ok \nX-A: 1\r\n",
                &[("grpc-status", "0"), ("grpc-message", "ok"), ("x-a", "1")],
            ),
            // Forbidden fields, a line without a colon, a bad name, a folded
            // line, a space before the colon.
            (
                b"Content-Length: 5\r\nnocolon\r\nBad Name: x\r\n folded: y\r\nX-B : 2\r\nX-C: 3\r\n",
                &[("x-c", "3")],
            ),
            (b"X-D: a\x01b\r\n", &[]),
        ];
        for (raw, want) in cases {
            let got: Vec<(String, String)> = parse_section(raw)
                .map(|m| {
                    m.iter()
                        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn the_last_chunk_carries_the_trailer_section() {
        assert_eq!(&last_chunk(&HeaderMap::new())[..], b"0\r\n\r\n");
        assert_eq!(
            &last_chunk(&map(&[("x-sum", "abc"), ("grpc-status", "0")]))[..],
            b"0\r\nx-sum: abc\r\ngrpc-status: 0\r\n\r\n"
        );
    }
}
