//! What a check sends and how its reply is judged, pure: the address a check
//! connects to ([`check_target`]), whether the `check_http_send` request is a
//! `HEAD` ([`head_request`]), Tengine's verdict on a reply's status
//! ([`status_verdict`]: alive when the status is in a
//! `check_http_expect_alive` class), and for `check_keepalive_requests` where
//! the reply ends ([`judge_head`], [`ReplyBody`]) so that its connection can
//! carry the next check.
//!
//! Every reply byte is read by the one HTTP/1 codec ([`crate::http1`]): the
//! status and the head by [`locate_response_head`] and
//! [`build_response_head`] (its framing and keep-alive decided by
//! [`crate::http1::framing`] as for any backend response), a chunked body by
//! [`ChunkedDecoder`]. A check whose connection is not kept needs only the
//! status line ([`line_verdict`], as Tengine's checks): it is ended as a head
//! of its own and given to the same codec.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::config::{CheckConf, StatusClasses};
use crate::http1::chunked::{Chunk, ChunkedDecoder};
use crate::http1::framing::Framing;
use crate::http1::response::{build_response_head, locate_response_head};

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The connection could not be made.
    Connect(io::ErrorKind),
    /// Nothing within `timeout`.
    Timeout,
    /// Writing the request or reading the reply failed.
    Io(io::ErrorKind),
    /// The reply is not an HTTP status line.
    BadReply,
    /// The status is not in `check_http_expect_alive`.
    Status(u16),
    /// `type=ssl_hello`: the reply is no TLS ServerHello.
    NoServerHello,
    /// An http check over TLS: the handshake failed (the certificate did not
    /// verify, no common protocol or cipher) or a record was bad; the words
    /// say which.
    Tls(String),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Connect(kind) => write!(f, "connect failed: {kind}"),
            CheckError::Timeout => write!(f, "timed out"),
            CheckError::Io(kind) => write!(f, "i/o error: {kind}"),
            CheckError::BadReply => write!(f, "not an HTTP status line"),
            CheckError::Status(code) => write!(f, "status {code} is not expected alive"),
            CheckError::NoServerHello => write!(f, "no TLS ServerHello in the reply"),
            CheckError::Tls(words) => f.write_str(words),
        }
    }
}

/// The address a check connects to: the peer's, or its IP with `port=`.
pub fn check_target(peer: SocketAddr, conf: &CheckConf) -> SocketAddr {
    match conf.port {
        Some(port) => SocketAddr::new(peer.ip(), port),
        None => peer,
    }
}

/// The check sends `HEAD`: no body follows the reply's head, whatever it says.
pub fn head_request(conf: &CheckConf) -> bool {
    conf.http_send.starts_with(b"HEAD ")
}

/// Tengine's verdict on a reply's status code: alive when it is in one of the
/// `check_http_expect_alive` classes; a code outside 100..=599 is no HTTP
/// status.
pub fn status_verdict(status: u16, expect: StatusClasses) -> Result<(), CheckError> {
    if !(100..=599).contains(&status) {
        Err(CheckError::BadReply)
    } else if expect.contains(status) {
        Ok(())
    } else {
        Err(CheckError::Status(status))
    }
}

/// Longest status line [`status_line`] ends on the stack (a longer one, only
/// possible on a kept-alive check, is copied to the heap).
const LINE_ON_STACK: usize = 508;

/// The status code of the status line at the start of `reply` (up to its first
/// line end, or all of `reply` if it has none), read by the HTTP/1 codec: the
/// line is ended with an empty line, as a head without header lines.
pub fn status_line(reply: &[u8]) -> Option<u16> {
    let line = match reply.iter().position(|&b| b == b'\n') {
        Some(end) => reply.get(..end).unwrap_or_default(),
        None => reply,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let end = b"\r\n\r\n";
    let mut stack = [0u8; LINE_ON_STACK + 4];
    let heap: Vec<u8>;
    let head: &[u8] = match stack.get_mut(..line.len() + end.len()) {
        Some(head) => {
            let (start, rest) = head.split_at_mut(line.len());
            start.copy_from_slice(line);
            rest.copy_from_slice(end);
            head
        }
        None => {
            heap = [line, end].concat();
            &heap
        }
    };
    match locate_response_head(head) {
        Ok(Some(layout)) => Some(layout.status),
        Ok(None) | Err(_) => None,
    }
}

/// The verdict on the status line at the start of `reply`: what decides a
/// check whose connection is not kept, and one whose head is cut short.
pub fn line_verdict(reply: &[u8], expect: StatusClasses) -> Result<(), CheckError> {
    match status_line(reply) {
        Some(status) => status_verdict(status, expect),
        None => Err(CheckError::BadReply),
    }
}

/// A complete reply head judged (`check_keepalive_requests`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgedHead {
    /// The check's result: the status decides, whatever follows.
    pub verdict: Result<(), CheckError>,
    /// When the connection may carry another check after this reply: where the
    /// body starts in the reply (the head's length) and how it ends. `None`
    /// when it may not: `Connection: close`, HTTP/1.0 without `keep-alive`, a
    /// body running to the close, ambiguous or invalid framing, an interim
    /// (1xx) reply, or a head the codec refuses.
    pub body: Option<(usize, ReplyBody)>,
}

/// Judges the reply head at the start of `reply` once it is complete (`None`
/// while more bytes are needed). `head_request`: the check sent `HEAD`. A head
/// the codec refuses is judged by its status line alone, as a check whose
/// connection is not kept.
pub fn judge_head(reply: &[u8], head_request: bool, expect: StatusClasses) -> Option<JudgedHead> {
    let layout = match locate_response_head(reply) {
        Ok(Some(layout)) => layout,
        Ok(None) => return None,
        Err(_) => {
            return Some(JudgedHead {
                verdict: line_verdict(reply, expect),
                body: None,
            })
        }
    };
    let verdict = status_verdict(layout.status, expect);
    // An interim reply is followed by the final one: the connection is not in
    // step with the checks any more.
    if layout.status < 200 {
        return Some(JudgedHead {
            verdict,
            body: None,
        });
    }
    let head = Bytes::copy_from_slice(reply.get(..layout.len).unwrap_or_default());
    // The checker needs no header line: every line is left out of the map, the
    // framing facts are taken all the same.
    let body = match build_response_head(&head, &layout, head_request, |_, _| true) {
        Ok(parsed) => {
            crate::reuse::give_map(parsed.headers);
            match parsed.framing {
                _ if !parsed.keep_alive => None,
                Framing::Empty => Some(ReplyBody::Length(0)),
                Framing::Length(n) => Some(ReplyBody::Length(n)),
                Framing::Chunked => Some(ReplyBody::Chunked(ChunkedDecoder::new())),
                Framing::Close => None,
            }
        }
        Err(_) => None,
    };
    Some(JudgedHead {
        verdict,
        body: body.map(|b| (layout.len, b)),
    })
}

/// The rest of a reply's body on a kept connection, read and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// This many bytes still to come.
    Length(u64),
    /// A chunked body, decoded as it arrives.
    Chunked(ChunkedDecoder),
}

/// What [`ReplyBody::feed`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// The body goes on.
    More,
    /// The body ended with the last byte fed: the connection may carry the
    /// next check.
    End,
    /// More bytes than the body, or a malformed chunked body: the connection
    /// is out of step and serves no other check.
    Broken,
}

impl ReplyBody {
    /// Takes the next `bytes` of the reply, read after the head (nothing
    /// follows the reply before the next check's request is sent).
    pub fn feed(&mut self, bytes: &[u8]) -> Fed {
        match self {
            ReplyBody::Length(left) => match left.checked_sub(bytes.len() as u64) {
                None => Fed::Broken,
                Some(0) => {
                    *left = 0;
                    Fed::End
                }
                Some(rest) => {
                    *left = rest;
                    Fed::More
                }
            },
            ReplyBody::Chunked(decoder) => {
                let mut at = 0;
                loop {
                    match decoder.next(bytes.get(at..).unwrap_or_default()) {
                        Ok(Chunk::Data { start, len }) => at += start + len,
                        Ok(Chunk::Need) => return Fed::More,
                        Ok(Chunk::End { consumed }) if at + consumed == bytes.len() => {
                            return Fed::End
                        }
                        Ok(Chunk::End { .. }) | Err(_) => return Fed::Broken,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_classified() {
        let alive = StatusClasses::DEFAULT;
        type Case<'a> = (&'a [u8], Option<u16>, Result<(), CheckError>);
        let long_reason = format!("HTTP/1.1 200 {}\r\n", "a".repeat(2000));
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\n", Some(200), Ok(())),
            (b"HTTP/1.0 302 Found\r\nLocation: /\r\n", Some(302), Ok(())),
            (b"HTTP/1.1 204\r\n", Some(204), Ok(())),
            (b"HTTP/1.1 200", Some(200), Ok(())),
            (b"HTTP/1.1 200 OK\r", Some(200), Ok(())),
            (b"HTTP/1.1 200 OK\nServer: x\n\n", Some(200), Ok(())),
            (long_reason.as_bytes(), Some(200), Ok(())),
            (
                b"HTTP/1.1 500 Oops\r\n",
                Some(500),
                Err(CheckError::Status(500)),
            ),
            (
                b"HTTP/1.1 404 Not Found\r\n",
                Some(404),
                Err(CheckError::Status(404)),
            ),
            (
                b"HTTP/1.1 199 X\r\n",
                Some(199),
                Err(CheckError::Status(199)),
            ),
            (b"", None, Err(CheckError::BadReply)),
            (b"HTTP/1.1 20", None, Err(CheckError::BadReply)),
            (b"HTTP/1.1 2000 OK\r\n", None, Err(CheckError::BadReply)),
            (b"HTTP/1.1 abc OK\r\n", None, Err(CheckError::BadReply)),
            (b"HTTP/11 200 OK\r\n", None, Err(CheckError::BadReply)),
            (b"SSH-2.0-OpenSSH\r\n", None, Err(CheckError::BadReply)),
            (b"HTTP/1.1 999 X\r\n", Some(999), Err(CheckError::BadReply)),
            (b"http/1.1 200 OK\r\n", None, Err(CheckError::BadReply)),
            // Not HTTP/1 (the hand-written parser took any `x.y`).
            (b"HTTP/2.0 200 OK\r\n", None, Err(CheckError::BadReply)),
        ];
        for (reply, code, verdict) in cases {
            let text = String::from_utf8_lossy(reply);
            assert_eq!(status_line(reply), *code, "{text:?}");
            assert_eq!(line_verdict(reply, alive), *verdict, "{text:?}");
        }
        let only_5xx = StatusClasses(0).with(5);
        assert_eq!(line_verdict(b"HTTP/1.1 503 X\r\n", only_5xx), Ok(()));
        assert_eq!(
            line_verdict(b"HTTP/1.1 200 X\r\n", only_5xx),
            Err(CheckError::Status(200))
        );
    }

    #[test]
    fn reply_heads_tell_whether_the_connection_can_be_reused() {
        use ReplyBody::{Chunked, Length};
        let ok = Ok(());
        let judged = |verdict, body| Some(JudgedHead { verdict, body });
        let chunked = || Chunked(ChunkedDecoder::new());
        type Case<'a> = (&'a [u8], bool, Option<JudgedHead>);
        let cases: Vec<Case<'_>> = vec![
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", false, None),
            (b"HTTP/1.1 200 OK\r\n\r\n", false, judged(ok.clone(), None)),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
                false,
                judged(ok.clone(), Some((38, Length(3)))),
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length:  3 \r\n\r\n",
                false,
                judged(ok.clone(), Some((40, Length(3)))),
            ),
            // HEAD: no body whatever Content-Length says.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                true,
                judged(ok.clone(), Some((38, Length(0)))),
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                false,
                judged(ok.clone(), Some((27, Length(0)))),
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                false,
                judged(ok.clone(), Some((48, Length(0)))),
            ),
            // Chunked replies end where their last chunk says (the hand-written
            // parser never reused their connection).
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                judged(ok.clone(), Some((47, chunked()))),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                judged(ok.clone(), None),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                false,
                judged(ok.clone(), None),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                false,
                judged(ok.clone(), None),
            ),
            // A listed length is an invalid head (as nginx judges a backend's):
            // the status line decides, the connection is not reused.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\n",
                false,
                judged(ok.clone(), None),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                false,
                judged(ok.clone(), None),
            ),
            (
                b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: Close\r\n\r\n",
                false,
                judged(Err(CheckError::Status(500)), None),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                judged(ok.clone(), None),
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                false,
                judged(ok.clone(), Some((62, Length(0)))),
            ),
            // Bare LF line ends (the hand-written parser never found the end).
            (
                b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
                false,
                judged(ok.clone(), Some((35, Length(0)))),
            ),
            // An interim reply: the final one follows, the connection is out of step.
            (
                b"HTTP/1.1 100 Continue\r\n\r\n",
                false,
                judged(Err(CheckError::Status(100)), None),
            ),
            // A head the codec refuses: its status line still decides.
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                false,
                judged(ok.clone(), None),
            ),
            (
                b"garbage\r\n\r\n",
                false,
                judged(Err(CheckError::BadReply), None),
            ),
        ];
        for (reply, head_request, want) in cases {
            assert_eq!(
                judge_head(reply, head_request, StatusClasses::DEFAULT),
                want,
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    #[test]
    fn reply_bodies_end_where_their_framing_says() {
        // (body, pieces fed one after another, what each came to)
        let chunked = || ReplyBody::Chunked(ChunkedDecoder::new());
        type Case<'a> = (ReplyBody, &'a [&'a [u8]], &'a [Fed]);
        let cases: Vec<Case<'_>> = vec![
            (ReplyBody::Length(0), &[b""], &[Fed::End]),
            (ReplyBody::Length(0), &[b"x"], &[Fed::Broken]),
            (
                ReplyBody::Length(3),
                &[b"", b"ok\n"],
                &[Fed::More, Fed::End],
            ),
            (
                ReplyBody::Length(3),
                &[b"o", b"k", b"\n"],
                &[Fed::More, Fed::More, Fed::End],
            ),
            (ReplyBody::Length(3), &[b"ok\nX"], &[Fed::Broken]),
            (chunked(), &[b""], &[Fed::More]),
            (chunked(), &[b"2\r\nok\r\n0\r\n\r\n"], &[Fed::End]),
            (
                chunked(),
                &[b"2\r\no", b"k\r\n0\r\n", b"X-T: 1\r\n\r\n"],
                &[Fed::More, Fed::More, Fed::End],
            ),
            (chunked(), &[b"0\r\n\r\nHTTP"], &[Fed::Broken]),
            (chunked(), &[b"zz\r\n"], &[Fed::Broken]),
        ];
        for (mut body, pieces, want) in cases {
            let got: Vec<Fed> = pieces.iter().map(|p| body.feed(p)).collect();
            assert_eq!(got, want, "{pieces:?}");
        }
    }

    #[test]
    fn head_checks_are_told_by_the_method() {
        let mut conf = CheckConf {
            http_send: b"HEAD / HTTP/1.1\r\n\r\n".to_vec(),
            ..CheckConf::default()
        };
        assert!(head_request(&conf));
        conf.http_send = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert!(!head_request(&conf));
    }

    #[test]
    fn check_port_replaces_the_peers_port() {
        let peer: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        let mut conf = CheckConf::default();
        assert_eq!(check_target(peer, &conf), peer);
        conf.port = Some(81);
        assert_eq!(check_target(peer, &conf), "10.0.0.1:81".parse().unwrap());
    }
}
