//! Message framing (RFC 9112 section 6.3), decided in exactly one place for
//! every HTTP/1 head the proxy reads: client requests, backend responses and
//! the health checker's replies.
//!
//! A parser feeds each `Content-Length`, `Transfer-Encoding` and `Connection`
//! line to a [`FramingFacts`] as it goes by, then asks it for the framing:
//! [`FramingFacts::request`] (nginx's strict rules for clients) or
//! [`FramingFacts::response`] (what a backend's body runs to). The answer
//! travels as a typed value ([`BodyFraming`], [`Framing`]) from the parsed head
//! to whoever reads the body and to the encoder of the other side, which never
//! reads `Content-Length` or `Transfer-Encoding` again from a header map.

use http::header::HeaderName;
use http::StatusCode;

use crate::http1::fields::{connection_tokens, parse_decimal, ConnectionToken};
use crate::http1::request::RequestError;
use crate::http1::response::HeadError;

/// How the request body is delimited (RFC 9112 section 6.3, request side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: no `Content-Length` and no `Transfer-Encoding`.
    None,
    /// Exactly this many bytes (`Content-Length`, possibly 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// How the request body is framed on the wire towards a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body, and no framing header.
    None,
    /// `Content-Length` and the bytes raw.
    Length(u64),
    /// A body of unknown length: `Transfer-Encoding: chunked` is added.
    Chunked,
}

/// How a response body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a response to HEAD, 1xx, 204, 304, or `Content-Length: 0`.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the sender closes the connection.
    Close,
}

/// How the response body goes on the wire to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyOut {
    /// Nothing after the head (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes follow.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client and a body of unknown
    /// length).
    Close,
}

/// True for the statuses whose responses never have a body.
pub fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// The framing facts of one head, gathered line by line.
#[derive(Debug, Default)]
pub struct FramingFacts {
    /// `Content-Length` lines seen.
    length_lines: u8,
    /// A `Content-Length` line held a list (`5, 5`).
    length_list: bool,
    /// The one `Content-Length` value, if all agree.
    length: Option<u64>,
    /// A `Content-Length` value was unparsable or disagreed with another.
    bad_length: bool,
    /// `Transfer-Encoding` lines seen.
    te_lines: u8,
    /// The last `Transfer-Encoding` line is exactly `chunked`.
    te_chunked_only: bool,
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    /// Collect the names `Connection` lists into [`FramingFacts::listed`].
    collect_listed: bool,
    /// Names the `Connection` headers list besides `keep-alive`, `close` and
    /// `upgrade` (rare: nothing is allocated without them).
    pub listed: Vec<HeaderName>,
}

impl FramingFacts {
    /// Facts of a response head, keeping the names `Connection` lists (they
    /// are hop-by-hop and must not be forwarded).
    pub fn collecting_listed() -> FramingFacts {
        FramingFacts {
            collect_listed: true,
            ..FramingFacts::default()
        }
    }

    /// A `Content-Length` line's value.
    pub fn length(&mut self, raw: &[u8]) {
        self.length_lines = self.length_lines.saturating_add(1);
        for (i, part) in raw.split(|&b| b == b',').enumerate() {
            self.length_list |= i > 0;
            match parse_decimal(part.trim_ascii()) {
                Some(n) if self.length.is_none_or(|l| l == n) => self.length = Some(n),
                _ => self.bad_length = true,
            }
        }
    }

    /// A `Transfer-Encoding` line's value.
    pub fn transfer_encoding(&mut self, raw: &[u8]) {
        self.te_lines = self.te_lines.saturating_add(1);
        self.te_chunked_only = raw.trim_ascii().eq_ignore_ascii_case(b"chunked");
    }

    /// A `Connection` line's value.
    pub fn connection(&mut self, raw: &[u8]) {
        for token in connection_tokens(raw) {
            match token {
                ConnectionToken::Close => self.close = true,
                ConnectionToken::KeepAlive => self.keep_alive = true,
                ConnectionToken::Upgrade => {}
                ConnectionToken::Named(token) if self.collect_listed => {
                    // A token that is no header name names no header.
                    if let Ok(name) = HeaderName::from_bytes(token) {
                        if !self.listed.contains(&name) {
                            self.listed.push(name);
                        }
                    }
                }
                ConnectionToken::Named(_) => {}
            }
        }
    }

    /// The body framing of a client's request, with nginx's refusals: a
    /// repeated or unparsable `Content-Length` (400), `Transfer-Encoding`
    /// repeated, together with `Content-Length` or in HTTP/1.0 (400), a
    /// transfer coding other than `chunked` (501).
    pub fn request(&self, http10: bool) -> Result<BodyFraming, RequestError> {
        if self.length_lines > 1 || self.length_list || self.bad_length || self.te_lines > 1 {
            return Err(RequestError::BadRequest);
        }
        match (self.te_lines > 0, self.length) {
            (true, Some(_)) => Err(RequestError::BadRequest),
            (true, None) if http10 => Err(RequestError::BadRequest),
            (true, None) if self.te_chunked_only => Ok(BodyFraming::Chunked),
            (true, None) => Err(RequestError::NotImplemented),
            (false, None) => Ok(BodyFraming::None),
            (false, Some(n)) => Ok(BodyFraming::Length(n)),
        }
    }

    /// Whether the client allows another request after this one (HTTP/1.1
    /// without `Connection: close`, HTTP/1.0 with `keep-alive`).
    pub fn request_keep_alive(&self, http10: bool) -> bool {
        if http10 {
            self.keep_alive
        } else {
            !self.close
        }
    }

    /// The body framing of a response to a request (`head_request`: HEAD),
    /// as nginx (1.23+) judges a backend's head, whatever the status: a
    /// repeated `Content-Length` or `Transfer-Encoding`, an unparsable length
    /// (a list included), a coding other than exactly `chunked`, or both
    /// headers at once make the head invalid (502, the connection is not
    /// reused): RFC 9112 6.3 calls such a message invalid, and passing it on
    /// is a response-splitting risk.
    pub fn response(&self, status: StatusCode, head_request: bool) -> Result<Framing, HeadError> {
        if self.length_lines > 1 || self.te_lines > 1 {
            return Err(HeadError::Duplicate);
        }
        if self.te_lines > 0 && self.length_lines > 0 {
            return Err(HeadError::Ambiguous);
        }
        if self.te_lines > 0 && !self.te_chunked_only {
            return Err(HeadError::UnknownCoding);
        }
        if self.bad_length || self.length_list {
            return Err(HeadError::BadLength);
        }
        if head_request || bodiless(status) {
            return Ok(Framing::Empty);
        }
        if self.te_lines > 0 {
            return Ok(Framing::Chunked);
        }
        Ok(match self.length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        })
    }

    /// The `Content-Length` a valid response declares (what a response to
    /// HEAD, or a 304, passes on).
    pub fn declared_length(&self) -> Option<u64> {
        self.length
            .filter(|_| !self.bad_length && !self.length_list && self.te_lines == 0)
    }

    /// Whether the sender's connection may carry another message after this
    /// response: persistent (HTTP/1.1 without `close`, HTTP/1.0 with
    /// `keep-alive`) and a body whose end is known.
    pub fn response_keep_alive(&self, http10: bool, framing: Framing) -> bool {
        let persistent = if http10 { self.keep_alive } else { !self.close };
        persistent && framing != Framing::Close
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header lines: `cl` Content-Length, `te` Transfer-Encoding, else Connection.
    type Lines<'a> = &'a [(&'a str, &'a str)];

    fn facts(lines: Lines<'_>) -> FramingFacts {
        let mut f = FramingFacts::collecting_listed();
        for (name, value) in lines {
            match *name {
                "cl" => f.length(value.as_bytes()),
                "te" => f.transfer_encoding(value.as_bytes()),
                _ => f.connection(value.as_bytes()),
            }
        }
        f
    }

    #[test]
    fn request_framing_follows_nginx() {
        use BodyFraming as B;
        use RequestError as E;
        let cases: &[(Lines<'_>, bool, Result<BodyFraming, RequestError>)] = &[
            (&[], false, Ok(B::None)),
            (&[("cl", "0")], false, Ok(B::Length(0))),
            (&[("cl", "12")], false, Ok(B::Length(12))),
            (&[("cl", " 12 ")], true, Ok(B::Length(12))),
            (&[("cl", "12"), ("cl", "12")], false, Err(E::BadRequest)),
            (&[("cl", "5, 5")], false, Err(E::BadRequest)),
            (&[("cl", "abc")], false, Err(E::BadRequest)),
            (&[("cl", "-1")], false, Err(E::BadRequest)),
            (&[("te", "chunked")], false, Ok(B::Chunked)),
            (&[("te", "Chunked ")], false, Ok(B::Chunked)),
            (&[("te", "chunked")], true, Err(E::BadRequest)),
            (&[("te", "chunked"), ("cl", "3")], false, Err(E::BadRequest)),
            (
                &[("te", "chunked"), ("te", "chunked")],
                false,
                Err(E::BadRequest),
            ),
            (&[("te", "gzip")], false, Err(E::NotImplemented)),
            (&[("te", "gzip, chunked")], false, Err(E::NotImplemented)),
        ];
        for (lines, http10, want) in cases {
            assert_eq!(
                facts(lines).request(*http10),
                *want,
                "{lines:?} 1.0={http10}"
            );
        }
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        use Framing as F;
        let ok = StatusCode::OK;
        let cases: &[(Lines<'_>, StatusCode, bool, Result<Framing, HeadError>)] = &[
            (&[], ok, false, Ok(F::Close)),
            (&[("cl", "0")], ok, false, Ok(F::Empty)),
            (&[("cl", "7")], ok, false, Ok(F::Length(7))),
            (&[("te", "chunked")], ok, false, Ok(F::Chunked)),
            (&[("te", " Chunked ")], ok, false, Ok(F::Chunked)),
            (&[("cl", "7")], ok, true, Ok(F::Empty)),
            (
                &[("cl", "7")],
                StatusCode::NOT_MODIFIED,
                false,
                Ok(F::Empty),
            ),
            (
                &[("te", "chunked")],
                StatusCode::NO_CONTENT,
                false,
                Ok(F::Empty),
            ),
            (&[], StatusCode::CONTINUE, false, Ok(F::Empty)),
            // Invalid as nginx 1.23+ judges it: 502, whatever the status.
            (&[("cl", "7, 7")], ok, false, Err(HeadError::BadLength)),
            (&[("cl", "x")], ok, false, Err(HeadError::BadLength)),
            (&[("cl", "")], ok, false, Err(HeadError::BadLength)),
            (
                &[("cl", "7"), ("cl", "7")],
                ok,
                false,
                Err(HeadError::Duplicate),
            ),
            (
                &[("cl", "7"), ("cl", "8")],
                ok,
                false,
                Err(HeadError::Duplicate),
            ),
            (
                &[("te", "chunked"), ("te", "chunked")],
                ok,
                false,
                Err(HeadError::Duplicate),
            ),
            (
                &[("te", "gzip, chunked")],
                ok,
                false,
                Err(HeadError::UnknownCoding),
            ),
            (&[("te", "gzip")], ok, false, Err(HeadError::UnknownCoding)),
            (
                &[("te", "chunked, chunked")],
                ok,
                false,
                Err(HeadError::UnknownCoding),
            ),
            (
                &[("cl", "5"), ("te", "chunked")],
                ok,
                false,
                Err(HeadError::Ambiguous),
            ),
            (
                &[("cl", "abc"), ("te", "chunked")],
                ok,
                false,
                Err(HeadError::Ambiguous),
            ),
            (
                &[("cl", "5"), ("te", "chunked")],
                ok,
                true,
                Err(HeadError::Ambiguous),
            ),
            (
                &[("cl", "7"), ("cl", "7")],
                StatusCode::NOT_MODIFIED,
                false,
                Err(HeadError::Duplicate),
            ),
        ];
        for (lines, status, head, want) in cases {
            assert_eq!(facts(lines).response(*status, *head), *want, "{lines:?}");
        }
    }

    #[test]
    fn declared_length_is_one_valid_value_without_transfer_encoding() {
        assert_eq!(facts(&[("cl", "7")]).declared_length(), Some(7));
        assert_eq!(facts(&[("cl", "7, 7")]).declared_length(), None);
        assert_eq!(facts(&[("cl", "x")]).declared_length(), None);
        assert_eq!(
            facts(&[("cl", "7"), ("te", "chunked")]).declared_length(),
            None
        );
        assert_eq!(facts(&[]).declared_length(), None);
    }

    #[test]
    fn keep_alive_needs_a_persistent_connection_and_unambiguous_framing() {
        let cases: &[(Lines<'_>, bool, Framing, bool)] = &[
            (&[("cl", "3")], false, Framing::Length(3), true),
            (
                &[("cl", "3"), ("c", "close")],
                false,
                Framing::Length(3),
                false,
            ),
            (&[("cl", "3")], true, Framing::Length(3), false),
            (
                &[("cl", "3"), ("c", "keep-alive")],
                true,
                Framing::Length(3),
                true,
            ),
            (&[], false, Framing::Close, false),
            (&[("te", "chunked")], false, Framing::Chunked, true),
        ];
        for (lines, http10, framing, want) in cases {
            let f = facts(lines);
            assert_eq!(f.response_keep_alive(*http10, *framing), *want, "{lines:?}");
        }
        assert!(facts(&[]).request_keep_alive(false));
        assert!(!facts(&[("c", "close")]).request_keep_alive(false));
        assert!(!facts(&[]).request_keep_alive(true));
        assert!(facts(&[("c", "Keep-Alive")]).request_keep_alive(true));
    }

    #[test]
    fn listed_names_are_collected_once_and_only_when_asked() {
        let f = facts(&[("c", "close, X-Foo, x-foo, upgrade, bad name")]);
        assert_eq!(f.listed, vec![HeaderName::from_static("x-foo")]);
        let mut plain = FramingFacts::default();
        plain.connection(b"X-Foo");
        assert!(plain.listed.is_empty());
    }
}
