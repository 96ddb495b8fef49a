//! HTTP/1.x towards the clients, the I/O half: one client connection, served
//! by one coroutine on the worker's thread.
//!
//! [`serve`] reads a request head (`http1::request`), hands the request to
//! the [`Handler`] (the proxy), writes the response head (`http1::response`,
//! from the typed facts of the [`ResponseBody`]) and streams its body, and goes on with the next request of a kept-alive
//! connection (pipelined ones are answered in order: they wait in the read
//! buffer). The request body is a [`RequestBody`] reading from the same
//! connection: the pipeline streams it to the backend while the connection's
//! coroutine waits for the response, and `Expect: 100-continue` is answered
//! when the body is first asked for. A small response (head and body in hand)
//! is one `writev`; a large body goes out in the pieces it arrives in, with
//! no copy; a file's body on plain TCP goes out with sendfile(2)
//! (`downstream::sendfile`). After a `101 Switching Protocols` the
//! connection becomes a byte tunnel to the backend.
//!
//! Timeouts are the worker sweeper's (`ConnState::sweep`): the connection only
//! notes since when it has been waiting for a request and since when a write
//! has been blocked (`send_timeout`). Signals from the worker (evict, drain,
//! give buffers back) reach the coroutine through `ConnState`: an eviction
//! drops it, and a drain closes the connection when it is idle or after the
//! response in progress. An idle connection holds no buffer and no
//! per-request state (see [`serve`]).

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Poll};
use std::time::{Instant, SystemTime};

use crate::downstream::body::{BodyState, ClientIo, ClientStream, Idle, RequestBody};
use crate::downstream::handler::{Handler, ResponseBody};
use crate::downstream::out::Out;
use crate::downstream::sendfile;
use crate::downstream::state::{ConnState, Signal};
use crate::downstream::tunnel::{tunnel, Upgraded};
use crate::http1::chunked::ChunkedDecoder;
use crate::http1::framing::{BodyFraming, BodyOut};
use crate::http1::names::Spelling;
use crate::http1::request::{self, Limits, RequestError, RequestHead};
use crate::http1::response::{self, ResponseContext, CONTINUE};
use crate::http1::status::received_status_text;
use bytes::Bytes;
use http::{Method, Request, Response, Version};
use http_body::Body;

/// Bytes asked of the kernel per read of a request head.
const HEAD_READ: usize = 4 * 1024;
/// The connection settings of one listen address.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `large_client_header_buffers`.
    pub limits: Limits,
    /// `keepalive_timeout` and `keepalive_requests` allow a second request.
    pub keep_alive: bool,
}

/// What follows a response.
enum Next {
    /// The connection waits for the next request.
    Continue,
    Close,
    /// A `101`: the connection becomes a tunnel to this far end.
    Tunnel(Upgraded),
}

/// Serves the requests of one client connection until it closes (or is told
/// to). `handler` gives the handler current when each request arrives (the
/// configuration of the moment: a reload never changes a request half way).
///
/// Between requests a connection holds only this small future, its state and
/// its socket: it waits for readability with no buffer, and the state of
/// serving requests (read and write buffers from the worker's free lists, the
/// handler's and the response's futures) lives in a box while the connection
/// is active ([`serve_active`]), so thousands of idle keep-alive clients cost
/// what nginx's do, and a busy client allocates nothing per request.
pub async fn serve<H: Handler>(
    stream: ClientStream,
    state: Rc<ConnState>,
    settings: Settings,
    handler: impl Fn() -> Rc<H>,
) {
    serve_io(ClientIo::new(stream), state, settings, handler).await
}

/// [`serve`] on a connection whose first bytes may already be read (an h2c
/// listener looked at them for the HTTP/2 preface).
pub(super) async fn serve_io<H: Handler>(
    io: ClientIo,
    state: Rc<ConnState>,
    settings: Settings,
    handler: impl Fn() -> Rc<H>,
) {
    let io = Rc::new(io);
    loop {
        // Idle, holding nothing until bytes arrive (a pipelined request
        // already buffered is served at once).
        if !io.has_buffered() {
            state.set_holding(false);
            match poll_fn(|cx| io.poll_idle(cx, &state)).await {
                Idle::Readable | Idle::Shed => {}
                Idle::End => return,
            }
        }
        match Box::pin(serve_active(&io, &state, settings, &handler)).await {
            Active::Idle => {}
            Active::Closed => return,
            Active::Tunnel(far) => {
                // A tunnel is never idle: neither the idle timeout nor the
                // `worker_connections` eviction applies to it.
                state.waiting_since.set(None);
                match Rc::try_unwrap(io) {
                    Ok(io) => match io.into_parts() {
                        (ClientStream::Plain(stream), early) => {
                            Box::pin(tunnel(stream, early, far)).await
                        }
                        (ClientStream::Tls(stream), early) => {
                            Box::pin(tunnel(stream.into_inner(), early, far)).await
                        }
                    },
                    Err(_) => tracing::debug!("upgrade abandoned: the request body is still read"),
                }
                return;
            }
        }
    }
}

/// How an active spell of a connection ended.
enum Active {
    /// The connection went idle and gave its request state back.
    Idle,
    Closed,
    /// A `101`: the connection becomes a tunnel to this far end.
    Tunnel(Upgraded),
}

/// Serves requests while the connection is busy. A connection that has served
/// a single request gives everything back as soon as it waits (most idle
/// keep-alive clients); one that has served more (a busy client) waits here,
/// keeping its buffers, until its next request or until it has waited for
/// `SHED_AFTER` (the worker's sweeper asks).
async fn serve_active<H: Handler>(
    io: &Rc<ClientIo>,
    state: &Rc<ConnState>,
    settings: Settings,
    handler: &impl Fn() -> Rc<H>,
) -> Active {
    let mut out = Out {
        head: crate::reuse::vec(1024),
        data: Bytes::new(),
        tail: b"",
    };
    // `$pipe`: the next request's bytes were already read when the one
    // before it ended (nginx's `r->pipeline`).
    let mut pipelined = false;
    let ended = loop {
        match serve_one(io, state, settings, handler, &mut out, pipelined).await {
            Next::Continue if io.skip_body() => {}
            Next::Continue | Next::Close => break Active::Closed,
            Next::Tunnel(far) => break Active::Tunnel(far),
        }
        pipelined = io.has_buffered();
        if pipelined {
            continue;
        }
        if state.requests.get() < 2 {
            io.release();
            break Active::Idle;
        }
        state.set_holding(true);
        match poll_fn(|cx| io.poll_idle(cx, state)).await {
            Idle::Readable => {}
            Idle::Shed => {
                io.release();
                break Active::Idle;
            }
            Idle::End => break Active::Closed,
        }
    };
    crate::reuse::give_vec(std::mem::take(&mut out.head));
    ended
}

/// One request of the connection: its head read, the handler's response
/// written, and the request ended. `pipelined`: its bytes were buffered when
/// the request before it ended (`$pipe`).
async fn serve_one<H: Handler>(
    io: &Rc<ClientIo>,
    state: &Rc<ConnState>,
    settings: Settings,
    handler: &impl Fn() -> Rc<H>,
    out: &mut Out,
    pipelined: bool,
) -> Next {
    // The request's parts live in blocks that end before the response is
    // written, so this future keeps only what is needed across it.
    let (facts, mut resp) = {
        let (mut req, facts) = {
            // A head refused as it is parsed, or a good one on a connection
            // whose every request is refused (plain HTTP on a TLS port, a
            // client certificate `ssl_verify_client` refuses): nginx answers
            // with its 4xx page and closes. One answering site for both.
            let refused = match read_head(io, state, settings.limits).await {
                Ok(Some(head)) => match state.refusal() {
                    None => Ok(head),
                    Some(refusal) => Err((refusal, head.received.len() as u64)),
                },
                Ok(None) => return Next::Close,
                Err(e) => {
                    tracing::info!("client {} sent a bad request: {e:?}", state.remote);
                    Err((e, 0))
                }
            };
            let mut head = match refused {
                Ok(head) => head,
                Err((e, head_len)) => {
                    let mut resp = handler().refuse(e);
                    let _ = respond(io, state, out, &mut resp, RequestFacts::REFUSED).await;
                    resp.body_mut().finish(head_len);
                    return Next::Close;
                }
            };
            state.waiting_since.set(None);
            if !head.dropped.is_empty() {
                log_dropped(&head, state);
            }
            state.head_bytes.set(head.received.len() as u64);
            state
                .request_head
                .set(Some(std::mem::take(&mut head.received)));
            let served = state.requests.get() + 1;
            state.requests.set(served);
            state.request_started(pipelined);
            let (req, mut facts) = request_of(io, head);
            facts.keep_alive &= settings.keep_alive && served < state.keepalive_requests.get();
            (req, facts)
        };
        // Lent, not given, to the handler: its future stays smaller.
        // Dropped here, with what it still holds. While it waits (for a
        // backend, say) and the request's body is all read, a client that
        // closes the connection is noticed, as nginx does
        // (`proxy_ignore_client_abort off`): the handler sees it through
        // `ConnState::client_gone` and gives up (499).
        let resp = {
            let handled = handler().handle(Rc::clone(state), &mut req);
            let mut handled = std::pin::pin!(handled);
            let mut watch = true;
            poll_fn(|cx| loop {
                if let Poll::Ready(resp) = handled.as_mut().poll(cx) {
                    return Poll::Ready(resp);
                }
                if !watch || state.client_gone() || !io.body_done() {
                    return Poll::Pending;
                }
                match io.poll_client_gone(cx) {
                    Poll::Ready(true) => state.client_closed(),
                    Poll::Ready(false) => watch = false,
                    Poll::Pending => return Poll::Pending,
                }
            })
            .await
        };
        // Whatever the handler did not take of the head goes now; the
        // request's header map back to the free list it came from.
        drop(state.request_head.take());
        crate::reuse::give_map(std::mem::take(req.headers_mut()));
        (facts, resp)
    };
    let next = respond(io, state, out, &mut resp, facts).await;
    // The response is sent (or given up on): the request ends now, and the
    // connection's idle time starts when the response's source ended.
    let request_length = state.head_bytes.get() + io.body_bytes.get();
    let ended = resp.body_mut().finish(request_length);
    state
        .waiting_since
        .set(Some(ended.unwrap_or_else(Instant::now)));
    next
}

/// nginx's `info` line for each header line `ignore_invalid_headers` dropped.
#[cold]
fn log_dropped(head: &RequestHead, state: &ConnState) {
    for line in &head.dropped {
        let text = head.received.get(line.clone()).unwrap_or_default();
        tracing::info!(
            "client sent invalid header line: \"{}\" while reading client request headers, client: {}",
            text.escape_ascii(),
            state.remote.ip()
        );
    }
}

/// What the connection needs to know of a request after it was handled.
#[derive(Clone, Copy)]
struct RequestFacts {
    http10: bool,
    head_request: bool,
    /// The client and the server's settings allow another request on the
    /// connection.
    keep_alive: bool,
}

impl RequestFacts {
    /// A request whose head was refused: answered as HTTP/1.1, then closed.
    const REFUSED: RequestFacts = RequestFacts {
        http10: false,
        head_request: false,
        keep_alive: false,
    };
}

/// The request for the handler, its body read from `io` as the handler asks
/// for it (a `100 Continue` goes first if the client waits for one).
fn request_of(io: &Rc<ClientIo>, head: RequestHead) -> (Request<RequestBody>, RequestFacts) {
    let RequestHead {
        parts,
        framing,
        keep_alive,
        expect_continue,
        received: _,
        dropped: _,
    } = head;
    io.body_bytes.set(0);
    let facts = RequestFacts {
        http10: parts.version == Version::HTTP_10,
        head_request: parts.method == Method::HEAD,
        keep_alive,
    };
    let body = match framing {
        BodyFraming::None => RequestBody::empty(),
        BodyFraming::Length(0) if !expect_continue => RequestBody {
            io: None,
            framing,
            stream: None,
        },
        framing => {
            *io.body.borrow_mut() = match framing {
                BodyFraming::Length(0) => BodyState::Done,
                BodyFraming::Length(n) => BodyState::Length(n),
                _ => BodyState::Chunked(ChunkedDecoder::new()),
            };
            let waiting = expect_continue && io.buf.borrow().is_empty();
            io.continue_left
                .set(if waiting { CONTINUE.len() } else { 0 });
            io.continue_asked.set(false);
            RequestBody {
                io: Some(Rc::clone(io)),
                framing,
                stream: None,
            }
        }
    };
    (Request::from_parts(parts, body), facts)
}

/// Waits for a complete request head. `Ok(None)`: the client closed the
/// connection (or went quiet and a drain began) between requests.
async fn read_head(
    io: &ClientIo,
    state: &ConnState,
    limits: Limits,
) -> Result<Option<RequestHead>, RequestError> {
    // How much of the buffer the last parse saw (0: none yet).
    let mut seen = 0;
    poll_fn(|cx| loop {
        {
            let mut buf = io.buf.borrow_mut();
            if !buf.is_empty() {
                if seen == 0 || request::worth_parsing(&buf, &mut seen, limits) {
                    if let Some(head) = request::parse_request_head(&mut buf, limits)? {
                        return Poll::Ready(Ok(Some(head)));
                    }
                    seen = buf.len();
                }
            } else if state.signal() != Signal::None {
                return Poll::Ready(Ok(None));
            }
        }
        match ready!(io.poll_fill(cx, HEAD_READ)) {
            Ok(0) | Err(_) => return Poll::Ready(Ok(None)),
            Ok(_) => {}
        }
    })
    .await
}

/// Writes `resp`: its head, then its body as the pipeline produces it. The
/// connection stays open after it only if `may_keep_alive` (the client and
/// the server's settings allow it), no drain is under way, and the request
/// body is consumed. The response is lent, not given: the caller drops it once
/// it is sent, and this future (part of the connection's, per request) stays
/// small.
async fn respond<B: ResponseBody>(
    io: &ClientIo,
    info: &ConnState,
    out: &mut Out,
    resp: &mut Response<B>,
    facts: RequestFacts,
) -> Next {
    let RequestFacts {
        http10,
        head_request,
        keep_alive: may_keep_alive,
    } = facts;
    if resp.body().unanswered() {
        return Next::Close;
    }
    // A `100 Continue` for a body nobody asked for is not sent; one due is
    // finished before the response.
    if io.continue_left.get() == CONTINUE.len() && !io.continue_asked.get() {
        io.continue_left.set(0);
        if !io.body_in_hand() {
            // The client may send the body anyway: the connection cannot
            // be trusted to be at a request boundary.
            *io.body.borrow_mut() = BodyState::Broken;
        }
    } else if poll_fn(|cx| io.poll_continue(cx)).await.is_err() {
        return Next::Close;
    }
    let keep_alive = may_keep_alive
        && info.may_keep_alive()
        && info.signal() == Signal::None
        && io.body_in_hand();
    let status = resp.status();
    let (headers, body) = (std::mem::take(resp.headers_mut()), resp.body_mut());
    // The backend's head the values passed on share (if any).
    let received = info.response_head.take().unwrap_or_default();
    let committed = with_date(|date| {
        let configured = |name: &http::HeaderName| body.configured_name(name);
        let ctx = ResponseContext {
            http10,
            head_request,
            keep_alive,
            body_len: body.size_hint().exact(),
            declared_len: body.declared_length(),
            close: body.closes(),
            chunked: body.chunked(),
            date,
            names: Spelling {
                received: &received,
                configured: body.has_configured_names().then_some(&configured),
            },
            status_text: body
                .passes_status_line()
                .then(|| received_status_text(&received, status))
                .flatten(),
        };
        response::encode_response_head(&mut out.head, status, &headers, &ctx)
    });
    crate::reuse::give_map(headers);
    drop(received);
    body.head_sent(out.head.len(), committed.content_length);
    let tunnel = body.take_upgrade();
    let chunked = committed.body == BodyOut::Chunked;
    let mut left = match committed.body {
        BodyOut::Length(n) => Some(n),
        _ => None,
    };
    let complete = if committed.body == BodyOut::None || left == Some(0) {
        true
    } else if let Some(range) = sendfile::file_range(io, body, left) {
        // One stretch of a file on plain TCP: sendfile(2) after the head,
        // or a small one read into the head's buffer.
        let n = left.unwrap_or_default();
        if !sendfile::send(io, info, out, range, n, body).await {
            return Next::Close;
        }
        true
    } else {
        loop {
            // Whatever is queued goes out before waiting for the backend.
            let polled = match poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await
            {
                Poll::Ready(polled) => polled,
                Poll::Pending => {
                    if !out.is_empty() && out.flush(io, info).await.is_err() {
                        return Next::Close;
                    }
                    poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
                }
            };
            let mut data = match polled {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => data,
                    _ => continue,
                },
                Some(Err(e)) => {
                    // Cut short: what was sent stays sent, and the missing end
                    // (length or last chunk) tells the client.
                    tracing::info!("response to {} cut short: {e}", info.remote);
                    let _ = out.flush(io, info).await;
                    return Next::Close;
                }
                None => {
                    if chunked {
                        out.push_last_chunk();
                    }
                    break left.is_none_or(|n| n == 0);
                }
            };
            if let Some(n) = left.as_mut() {
                // Never more than announced.
                data.truncate((*n).min(data.len() as u64) as usize);
                *n -= data.len() as u64;
            }
            let must_write = out.push(data, chunked);
            let ended = body.is_end_stream() || left == Some(0);
            if ended && chunked {
                out.push_last_chunk();
            }
            if ended {
                break left.is_none_or(|n| n == 0);
            }
            if must_write && out.flush(io, info).await.is_err() {
                return Next::Close;
            }
        }
    };
    let flushed = out.flush(io, info).await.is_ok();
    match tunnel {
        Some(backend) if flushed => Next::Tunnel(backend),
        _ if flushed && complete && committed.keep_alive => Next::Continue,
        _ => Next::Close,
    }
}

thread_local! {
    /// The `Date` of this second, formatted once per second per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the current `Date` header value.
fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut date = cell.borrow_mut();
        if date.0 != secs {
            *date = (secs, crate::timefmt::http_date(now).to_string());
        }
        f(date.1.as_bytes())
    })
}
