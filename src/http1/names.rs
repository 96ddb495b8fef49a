//! Header names as they go on the wire. An [`http::HeaderMap`] keeps every
//! name lower-cased; nginx writes a name it passes on as it received it (the
//! backend's spelling towards the client, the client's towards the backend),
//! a name the configuration gives as written there (`proxy_set_header
//! X-Real-IP ...`), and its own in their canonical case (`Server`, `Date`,
//! `Content-Length`, `Host`). The encoders ask [`Spelling::name`] for each
//! line.
//!
//! Nothing is recorded on the side while a head is parsed: the parsers cut
//! each header value out of the received head without copying it, so a value
//! that still lies in that head's bytes is one the proxy passes on, and its
//! name is the token before the `:` that precedes it there. A value the proxy
//! made (or replaced) lies elsewhere, and its name is the configured or the
//! canonical spelling. The received bytes are checked to be the map's name
//! up to case before they are written, so whatever a map holds, the name
//! written is its own.

use http::header::{self, HeaderName, HeaderValue};

/// Looks up the spelling the configuration gives a header name.
pub type Configured<'a> = &'a dyn Fn(&HeaderName) -> Option<&'a [u8]>;

/// Where the wire spelling of a head's header names comes from.
#[derive(Clone, Copy, Default)]
pub struct Spelling<'a> {
    /// The head the map's passed-on values were parsed from (empty: none).
    pub received: &'a [u8],
    /// The configured names (`proxy_set_header`), for values the proxy made.
    pub configured: Option<Configured<'a>>,
}

impl std::fmt::Debug for Spelling<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spelling")
            .field("received", &self.received.len())
            .field("configured", &self.configured.is_some())
            .finish()
    }
}

impl<'a> Spelling<'a> {
    /// Names spelled as in `head`, canonical otherwise.
    pub fn received(head: &'a [u8]) -> Spelling<'a> {
        Spelling {
            received: head,
            configured: None,
        }
    }

    /// The bytes `name` is written with on the line of `value`: as received
    /// when `value` was parsed from the received head, else as configured,
    /// else canonical ([`canonical`]).
    pub fn name<'n>(&self, name: &'n HeaderName, value: &HeaderValue) -> &'n [u8]
    where
        'a: 'n,
    {
        // (No received head: a response made here.)
        if !self.received.is_empty() {
            if let Some(spelled) = received_name(self.received, name, value) {
                return spelled;
            }
        }
        if let Some(spelled) = self.configured.and_then(|lookup| lookup(name)) {
            return spelled;
        }
        canonical(name)
    }
}

/// The name before `value` in `head`, when `value` lies in `head` after a
/// `name:` (any case, optional spaces before the value).
fn received_name<'h>(head: &'h [u8], name: &HeaderName, value: &HeaderValue) -> Option<&'h [u8]> {
    let at = (value.as_bytes().as_ptr() as usize).checked_sub(head.as_ptr() as usize)?;
    let before = head.get(..at)?;
    let colon = before.iter().rposition(|&b| b != b' ' && b != b'\t')?;
    if before.get(colon) != Some(&b':') {
        return None;
    }
    let lower = name.as_str().as_bytes();
    let spelled = before.get(colon.checked_sub(lower.len())?..colon)?;
    spelled.eq_ignore_ascii_case(lower).then_some(spelled)
}

/// The names the proxy writes itself, in the case nginx writes them (the
/// list [`canonical`] knows, kept for its test).
#[cfg(test)]
static CANONICAL: [&[u8]; 27] = [
    b"Server",
    b"Set-Cookie",
    b"Host",
    b"Connection",
    b"Date",
    b"Content-Type",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Location",
    b"Cookie",
    b"Upgrade",
    b"Keep-Alive",
    b"Cache-Control",
    b"Expires",
    b"Last-Modified",
    b"ETag",
    b"Accept-Ranges",
    b"Content-Range",
    b"Content-Encoding",
    b"Vary",
    b"WWW-Authenticate",
    b"Retry-After",
    b"Allow",
    b"X-Forwarded-For",
    b"X-Forwarded-Proto",
    b"X-Real-IP",
    b"TE",
];

/// The canonical spelling of `name` (`Content-Length`) for the names the
/// proxy writes itself; any other name as the map holds it (lower case).
/// On every header line written: a `match` on the length first, then on the
/// few names of that length (no walk over the whole list).
pub fn canonical(name: &HeaderName) -> &[u8] {
    // The names of a file response, compared as the map's own names (no
    // text; ~120 instructions per file response less than the `match`),
    // then the others by length.
    if *name == header::SERVER {
        return b"Server";
    } else if *name == header::CONTENT_TYPE {
        return b"Content-Type";
    } else if *name == header::LAST_MODIFIED {
        return b"Last-Modified";
    } else if *name == header::ETAG {
        return b"ETag";
    } else if *name == header::ACCEPT_RANGES {
        return b"Accept-Ranges";
    }
    let lower = name.as_str().as_bytes();
    let spelled: &'static [u8] = match lower.len() {
        2 if lower == b"te" => b"TE",
        4 => match lower {
            b"host" => b"Host",
            b"date" => b"Date",
            b"vary" => b"Vary",
            _ => return lower,
        },
        5 if lower == b"allow" => b"Allow",
        6 if lower == b"cookie" => b"Cookie",
        7 => match lower {
            b"upgrade" => b"Upgrade",
            b"expires" => b"Expires",
            _ => return lower,
        },
        8 if lower == b"location" => b"Location",
        9 if lower == b"x-real-ip" => b"X-Real-IP",
        10 => match lower {
            b"set-cookie" => b"Set-Cookie",
            b"connection" => b"Connection",
            b"keep-alive" => b"Keep-Alive",
            _ => return lower,
        },
        11 if lower == b"retry-after" => b"Retry-After",
        13 => match lower {
            b"cache-control" => b"Cache-Control",
            b"content-range" => b"Content-Range",
            _ => return lower,
        },
        14 if lower == b"content-length" => b"Content-Length",
        15 if lower == b"x-forwarded-for" => b"X-Forwarded-For",
        16 => match lower {
            b"content-encoding" => b"Content-Encoding",
            b"www-authenticate" => b"WWW-Authenticate",
            _ => return lower,
        },
        17 => match lower {
            b"transfer-encoding" => b"Transfer-Encoding",
            b"x-forwarded-proto" => b"X-Forwarded-Proto",
            _ => return lower,
        },
        _ => return lower,
    };
    spelled
}

/// A header name and the exact bytes the configuration writes it with
/// (`proxy_set_header X-Real-IP ...` sends `X-Real-IP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpelledName {
    name: HeaderName,
    spelled: Box<str>,
}

impl SpelledName {
    /// `name` as `text` writes it (`text` must be `name` up to case, as when
    /// `name` was parsed from it; otherwise the lower-case form is kept).
    pub fn new(name: HeaderName, text: &str) -> SpelledName {
        let spelled = if text.eq_ignore_ascii_case(name.as_str()) {
            text
        } else {
            name.as_str()
        };
        SpelledName {
            spelled: spelled.into(),
            name,
        }
    }

    /// The name, lower-cased (what a map is keyed by).
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The bytes the name is written with.
    pub fn as_bytes(&self) -> &[u8] {
        self.spelled.as_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::header;

    /// The `len` bytes at `from` of `head` as a value sharing them.
    fn value_at(head: &Bytes, from: usize, len: usize) -> HeaderValue {
        HeaderValue::from_maybe_shared(head.slice(from..from + len)).unwrap()
    }

    #[test]
    fn a_received_value_is_written_with_the_name_before_it() {
        let head = Bytes::from_static(b"X-CuStOm: 1\r\nsErVeR:\t\tb\r\nx-low:c\r\n\r\n");
        let names = Spelling::received(&head);
        // (name in the map, where its value lies, how long, written as)
        let cases: [(&str, usize, usize, &[u8]); 3] = [
            ("x-custom", 10, 1, b"X-CuStOm"),
            ("server", 22, 1, b"sErVeR"),
            ("x-low", 31, 1, b"x-low"),
        ];
        for (name, at, len, want) in cases {
            let name = HeaderName::from_static(name);
            let value = value_at(&head, at, len);
            assert_eq!(names.name(&name, &value), want, "{name}");
        }
    }

    #[test]
    fn a_value_made_elsewhere_is_written_configured_or_canonical() {
        let head = Bytes::from_static(b"X-A: 1\r\nServer: x\r\n\r\n");
        let in_head = value_at(&head, 5, 1);
        let made = HeaderValue::from_static("1");
        let configured = |n: &HeaderName| (n == "x-real-ip").then_some(&b"X-Real-IP"[..]);
        let names = Spelling {
            received: &head,
            configured: Some(&configured),
        };
        let cases: [(&str, &HeaderValue, &[u8]); 7] = [
            // Ours: canonical, as nginx writes them.
            ("server", &made, b"Server"),
            ("content-length", &made, b"Content-Length"),
            ("etag", &made, b"ETag"),
            // As configured.
            ("x-real-ip", &made, b"X-Real-IP"),
            // Neither: as the map holds it.
            ("x-other", &made, b"x-other"),
            // A value in the head under another name is not that name's
            // spelling: the check against the map's name refuses it.
            ("x-b", &in_head, b"x-b"),
            ("x-a", &in_head, b"X-A"),
        ];
        for (name, value, want) in cases {
            let name = HeaderName::from_static(name);
            assert_eq!(names.name(&name, value), want, "{name}");
        }
        // No received head, no configured names: canonical or as held.
        let none = Spelling::default();
        assert_eq!(none.name(&header::DATE, &in_head), b"Date");
        assert_eq!(none.name(&HeaderName::from_static("x-a"), &in_head), b"x-a");
    }

    #[test]
    fn values_that_point_at_odd_places_fall_back() {
        let head = Bytes::from_static(b"X-A: 1\r\n: 2\r\nX-B 3\r\n\r\n");
        let names = Spelling::received(&head);
        let x_a = HeaderName::from_static("x-a");
        // At the head's start: nothing before it.
        assert_eq!(names.name(&x_a, &value_at(&head, 0, 1)), b"x-a");
        // After a colon with no name, after a name with no colon.
        assert_eq!(names.name(&x_a, &value_at(&head, 10, 1)), b"x-a");
        assert_eq!(
            names.name(&HeaderName::from_static("x-b"), &value_at(&head, 17, 1)),
            b"x-b"
        );
        // A detached empty value: canonical. One cut from the head (as the
        // parsers cut them) keeps its name.
        assert_eq!(
            names.name(&header::SERVER, &HeaderValue::from_static("")),
            b"Server"
        );
        let head = Bytes::from_static(b"X-Empty:\r\n\r\n");
        let empty = HeaderValue::from_maybe_shared(crate::http1::fields::shared_value(&head, 8..8));
        assert_eq!(
            Spelling::received(&head).name(&HeaderName::from_static("x-empty"), &empty.unwrap()),
            b"X-Empty"
        );
    }

    #[test]
    fn every_canonical_name_is_its_header_name_up_to_case() {
        for spelled in &CANONICAL {
            let lower = spelled.to_ascii_lowercase();
            let name = HeaderName::from_bytes(&lower).unwrap();
            assert_eq!(canonical(&name), *spelled);
        }
        // Any other name (same lengths as canonical ones, or not): as held.
        for other in [
            "x-a",
            "te2",
            "hist",
            "servers",
            "x-real-id",
            "content-types",
            "x",
        ] {
            let name = HeaderName::from_static(other);
            assert_eq!(canonical(&name), other.as_bytes());
        }
    }

    #[test]
    fn configured_names_keep_their_spelling() {
        let name = HeaderName::from_static("x-real-ip");
        let spelled = SpelledName::new(name.clone(), "X-Real-IP");
        assert_eq!(spelled.name(), &name);
        assert_eq!(spelled.as_bytes(), b"X-Real-IP");
        // Text that is not the name: the name's own form.
        assert_eq!(SpelledName::new(name, "other").as_bytes(), b"x-real-ip");
    }
}
