//! Trailer fields passed from one hop to the next: which fields may travel
//! in a trailer section ([`allowed`]) and the end of a chunked body that
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
    fn the_last_chunk_carries_the_trailer_section() {
        assert_eq!(&last_chunk(&HeaderMap::new())[..], b"0\r\n\r\n");
        assert_eq!(
            &last_chunk(&map(&[("x-sum", "abc"), ("grpc-status", "0")]))[..],
            b"0\r\nx-sum: abc\r\ngrpc-status: 0\r\n\r\n"
        );
    }
}
