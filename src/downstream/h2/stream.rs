//! One HTTP/2 stream: the request hyper decoded, made into the request the
//! [`Handler`] knows from HTTP/1 ([`prepare`]: pseudo-headers to the request
//! target and `Host`, cookie crumbs joined), its body read from hyper's
//! [`Incoming`] ([`StreamBody`]), and the handler's response handed to hyper
//! ([`StreamResponse`]: no body for HEAD and bodiless statuses, data sliced
//! to `http2_chunk_size`, the request ended once when hyper lets go of it).

use std::any::Any;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::Shared;
use crate::downstream::body::{broken, RequestBody};
use crate::downstream::handler::{BoxError, Handler, ResponseBody};
use crate::downstream::state::ConnState;
use crate::http1::framing::{bodiless, BodyFraming};
use crate::http1::request::RequestError;
use crate::http1::response::response_length;
use crate::http1::trailers;

/// An HTTP/2 stream's request body, as the handler reads it.
pub struct StreamBody {
    incoming: Incoming,
    /// Body bytes read so far (`$request_length`, with the head).
    read: Rc<Cell<u64>>,
    /// What `Content-Length` said is still to come.
    left: Option<u64>,
    ended: bool,
    /// The request's trailer fields (a HEADERS frame after the DATA), those
    /// that may pass on ([`trailers::allowed`]); its size is bounded by
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`, as the head's.
    trailers: Option<HeaderMap>,
}

impl StreamBody {
    /// True when nothing (more) will come.
    pub(crate) fn is_end(&self) -> bool {
        self.ended || self.incoming.is_end_stream()
    }

    /// The bytes still to come, when the client said (`Content-Length`).
    pub(crate) fn exact_len(&self) -> Option<u64> {
        if self.is_end() {
            Some(0)
        } else {
            self.left
        }
    }

    /// The request's trailer fields, once the body has ended
    /// ([`StreamBody::poll_data`] gave `None`); given once.
    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// The next piece of the body, `None` at its end (its trailers, if any,
    /// are then kept for [`StreamBody::take_trailers`]).
    pub(crate) fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::io::Result<Bytes>>> {
        while !self.ended {
            match ready!(Pin::new(&mut self.incoming).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => {
                            if let Ok(fields) = frame.into_trailers() {
                                self.trailers = trailers::allowed(fields);
                            }
                            continue;
                        }
                    };
                    if data.is_empty() {
                        continue;
                    }
                    self.read.set(self.read.get() + data.len() as u64);
                    if let Some(left) = self.left.as_mut() {
                        *left = left.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Some(Err(e)) => {
                    self.ended = true;
                    tracing::debug!("request body stream: {e}");
                    return Poll::Ready(Some(Err(broken(
                        "client reset the stream before the end of the body",
                    ))));
                }
                None => self.ended = true,
            }
        }
        Poll::Ready(None)
    }
}

/// Makes the decoded HTTP/2 request head the one HTTP/1 would give: the
/// request target in origin form, `:authority` as `Host` (it wins over a
/// `Host` field, RFC 9113 section 8.3.1), the cookie crumbs joined into one
/// `Cookie` field (section 8.2.3) before the sticky core and `$cookie_*` see
/// them. A method nginx never serves is refused as HTTP/1 refuses it.
pub fn prepare(parts: &mut http::request::Parts) -> Result<(), RequestError> {
    if parts.method == Method::TRACE || parts.method == Method::CONNECT {
        return Err(RequestError::MethodNotAllowed);
    }
    if let Some(authority) = parts.uri.authority() {
        let host =
            HeaderValue::from_str(authority.as_str()).map_err(|_| RequestError::BadRequest)?;
        parts.headers.insert(header::HOST, host);
    }
    parts.uri = match parts.uri.path_and_query() {
        Some(target) => Uri::from(target.clone()),
        None => Uri::from_static("/"),
    };
    join_cookies(&mut parts.headers);
    Ok(())
}

/// Joins every `cookie` field into one, `; ` between the crumbs (empty ones
/// left out).
fn join_cookies(headers: &mut HeaderMap) {
    let mut crumbs = headers.get_all(header::COOKIE).iter();
    if crumbs.next().is_none() || crumbs.next().is_none() {
        return;
    }
    let mut joined = Vec::new();
    for crumb in headers.get_all(header::COOKIE) {
        if crumb.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(crumb.as_bytes());
    }
    // From field values already checked: always valid.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// How a stream's request body goes on to an HTTP/1.1 backend: with its
/// `Content-Length`, else chunked; chunked too when the client announces
/// trailer fields (a `Trailer` field, RFC 9110 section 6.6.2), the only
/// framing that can carry them on.
fn body_framing(headers: &HeaderMap, ended: bool) -> BodyFraming {
    if ended {
        return BodyFraming::None;
    }
    if headers.contains_key(header::TRAILER) {
        return BodyFraming::Chunked;
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .map_or(&b""[..], HeaderValue::as_bytes);
    match crate::http1::fields::parse_decimal(length) {
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::Chunked,
    }
}

/// The bytes of a head as HTTP/1 would spell it: what `$request_length`
/// and `$bytes_sent` count for a stream (HPACK's encoding is the
/// connection's business).
fn head_len(first_line: usize, headers: &HeaderMap) -> u64 {
    let fields: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (first_line + fields + 2) as u64
}

/// The response body handed to hyper.
pub struct StreamResponse<B: ResponseBody> {
    inner: B,
    /// HEAD, or a status without a body: nothing is sent.
    skip: bool,
    /// `http2_chunk_size`.
    chunk: usize,
    /// What is left of a piece larger than `chunk`.
    rest: Bytes,
    /// The request head's length, and its body's bytes read.
    head_bytes: u64,
    read: Rc<Cell<u64>>,
    /// The stream's state: `send_timeout` runs while data handed to hyper
    /// waits for the client's window.
    state: Rc<ConnState>,
    /// Counts the stream as open on its connection until it ends.
    _open: OpenStream,
}

impl<B: ResponseBody> StreamResponse<B> {
    fn next_piece(&mut self) -> Bytes {
        let n = self.rest.len().min(self.chunk.max(1));
        self.rest.split_to(n)
    }
}

impl<B: ResponseBody> Drop for StreamResponse<B> {
    fn drop(&mut self) {
        // Sent, reset or abandoned: the request ends here, once.
        self.inner.finish(self.head_bytes + self.read.get());
    }
}

impl<B: ResponseBody> Body for StreamResponse<B> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.skip {
            return Poll::Ready(None);
        }
        // hyper asks for more: what it was given has gone to the client.
        this.state.write_done();
        if !this.rest.is_empty() {
            this.state.write_blocked();
            return Poll::Ready(Some(Ok(Frame::data(this.next_piece()))));
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    this.rest = data;
                    this.state.write_blocked();
                    Poll::Ready(Some(Ok(Frame::data(this.next_piece()))))
                }
                // Trailers pass through.
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.skip || (self.rest.is_empty() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.skip {
            SizeHint::with_exact(0)
        } else if self.rest.is_empty() {
            self.inner.size_hint()
        } else {
            SizeHint::default()
        }
    }
}

/// Counts one open stream of a connection (the connection is idle, and its
/// `keepalive_timeout` runs, when none is).
pub struct OpenStream(Rc<super::Streams>);

impl OpenStream {
    pub fn new(streams: &Rc<super::Streams>) -> OpenStream {
        streams.opened();
        OpenStream(Rc::clone(streams))
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.closed();
    }
}

/// A stream left unanswered (`return 444`): hyper resets it
/// (`INTERNAL_ERROR`), as nginx does.
#[derive(Debug)]
pub struct Unanswered;

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stream is left unanswered (444)")
    }
}

impl std::error::Error for Unanswered {}

/// Serves one stream: the handler's answer to its request.
pub async fn serve<H: Handler + 'static, F: Fn() -> Rc<H>>(
    shared: Rc<Shared<F>>,
    state: Rc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<StreamResponse<H::Body>>, Unanswered> {
    let open = OpenStream::new(&shared.streams);
    let conn = &shared.conn;
    let served = conn.requests.get() + 1;
    conn.requests.set(served);
    if served >= conn.keepalive_requests.get() {
        // `keepalive_requests`: this is the last stream (GOAWAY).
        shared.streams.last.set(true);
    }
    state.requests.set(served);
    let handler = (shared.handler)();
    let config: Weak<dyn Any> = Rc::downgrade(&handler) as Weak<dyn Any>;
    match &mut *shared.config.borrow_mut() {
        Some(first) if !first.ptr_eq(&config) => shared.streams.last.set(true),
        Some(_) => {}
        unset => *unset = Some(config),
    }
    let (mut parts, incoming) = req.into_parts();
    let prepared = prepare(&mut parts);
    let first_line = parts.method.as_str().len()
        + parts.uri.path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/2.0\r\n".len()
        + 1;
    let head_bytes = head_len(first_line, &parts.headers);
    state.head_bytes.set(head_bytes);
    let head_request = parts.method == Method::HEAD;
    let read = Rc::new(Cell::new(0));
    let mut resp = match prepared {
        Err(e) => Box::new(handler.refuse(e)),
        Ok(()) => {
            let framing = body_framing(&parts.headers, incoming.is_end_stream());
            let left = match framing {
                BodyFraming::Length(n) => Some(n),
                _ => None,
            };
            let body = RequestBody {
                io: None,
                framing,
                stream: (framing != BodyFraming::None).then(|| {
                    Box::new(StreamBody {
                        incoming,
                        read: Rc::clone(&read),
                        left,
                        ended: false,
                        trailers: None,
                    })
                }),
            };
            let mut req = Request::from_parts(parts, body);
            let resp = handler.handle(Rc::clone(&state), &mut req).await;
            drop(state.request_head.take());
            resp
        }
    };
    drop(state.response_head.take());
    if resp.body().unanswered() {
        // The request ends (its log line) as the response is dropped.
        resp.body_mut().finish(head_bytes + read.get());
        return Err(Unanswered);
    }
    let status = resp.status();
    let body = resp.body_mut();
    let content_length = response_length(
        status,
        head_request,
        body.size_hint().exact(),
        body.declared_length(),
    );
    let skip = bodiless(status) || head_request;
    let headers = resp.headers_mut();
    if let Some(n) = content_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    let sent = head_len("HTTP/2.0 200 \r\n".len(), headers);
    let (parts, mut body) = resp.into_parts();
    if !state.client_gone() {
        body.head_sent(sent as usize, content_length);
    }
    let body = StreamResponse {
        inner: body,
        skip,
        chunk: shared.settings.chunk_size,
        rest: Bytes::new(),
        head_bytes,
        read,
        state,
        _open: open,
    };
    Ok(Response::from_parts(parts, body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn pseudo_headers_become_the_request_target_and_host() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, Option<&'a str>);
        let cases: &[Case] = &[
            ("https://a.example/x?y=1", &[], "/x?y=1", Some("a.example")),
            // :authority wins over a Host field.
            (
                "http://a.example:8080/",
                &[("host", "b.example")],
                "/",
                Some("a.example:8080"),
            ),
            // No :authority: the Host field stays.
            (
                "/only/path",
                &[("host", "c.example")],
                "/only/path",
                Some("c.example"),
            ),
            ("/nohost", &[], "/nohost", None),
        ];
        for (uri, headers, target, host) in cases {
            let mut p = parts("GET", uri, headers);
            prepare(&mut p).unwrap();
            assert_eq!(p.uri.to_string(), *target, "{uri}");
            assert_eq!(
                p.headers.get(header::HOST).map(|v| v.to_str().unwrap()),
                *host,
                "{uri}"
            );
            assert_eq!(
                p.headers.get_all(header::HOST).iter().count(),
                usize::from(host.is_some())
            );
        }
    }

    #[test]
    fn cookie_crumbs_are_joined_in_order() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["a=1"], Some("a=1")),
            (&["a=1", "route=abc", "b=2"], Some("a=1; route=abc; b=2")),
            (&["route=abc", "", "z=9"], Some("route=abc; z=9")),
            (&["a=1; b=2", "c=3"], Some("a=1; b=2; c=3")),
        ];
        for (crumbs, joined) in cases {
            let headers: Vec<(&str, &str)> = crumbs.iter().map(|c| ("cookie", *c)).collect();
            let mut p = parts("GET", "http://h/", &headers);
            prepare(&mut p).unwrap();
            let all: Vec<&str> = p
                .headers
                .get_all(header::COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(all.first().copied(), *joined, "{crumbs:?}");
            assert!(all.len() <= 1, "{crumbs:?}: {all:?}");
        }
    }

    #[test]
    fn methods_nginx_never_serves_are_refused() {
        for method in ["TRACE", "CONNECT"] {
            let uri = if method == "CONNECT" {
                "h:443"
            } else {
                "http://h/"
            };
            let mut p = parts(method, uri, &[]);
            assert_eq!(
                prepare(&mut p),
                Err(RequestError::MethodNotAllowed),
                "{method}"
            );
        }
        let mut p = parts("OPTIONS", "http://h/", &[]);
        assert_eq!(prepare(&mut p), Ok(()));
    }

    #[test]
    fn a_body_goes_on_with_its_length_unless_trailers_are_announced() {
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, BodyFraming);
        let cases: &[Case] = &[
            (&[], true, BodyFraming::None),
            (&[("content-length", "5")], true, BodyFraming::None),
            (&[("content-length", "5")], false, BodyFraming::Length(5)),
            (&[], false, BodyFraming::Chunked),
            (&[("content-length", "x")], false, BodyFraming::Chunked),
            (
                &[("content-length", "5"), ("trailer", "x-sum")],
                false,
                BodyFraming::Chunked,
            ),
            (&[("trailer", "x-sum")], true, BodyFraming::None),
        ];
        for (headers, ended, want) in cases {
            let p = parts("POST", "/", headers);
            assert_eq!(body_framing(&p.headers, *ended), *want, "{headers:?}");
        }
    }

    #[test]
    fn a_head_counts_as_http1_would_spell_it() {
        let p = parts("GET", "/", &[("host", "a"), ("x-long", "0123456789")]);
        // "host: a\r\n" (9) + "x-long: 0123456789\r\n" (20) + "\r\n" + line.
        assert_eq!(head_len(16, &p.headers), 16 + 9 + 20 + 2);
    }
}
