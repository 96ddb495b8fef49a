//! The request path of one request, as orchestration over the pure parts:
//! the plan ([`crate::proxy::plan`]), the failover state machine
//! ([`crate::proxy::attempt`]) driving one I/O exchange per try
//! ([`crate::proxy::exchange`]), and the response built for the client
//! (headers filtered, the sticky `Set-Cookie`, `Server`, the body streamed
//! with its backend connection returned to the pool at its end, or a tunnel
//! after `101`). This is the [`Handler`] the connection loops drive.

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use http::header;
use http::{Request, Response, StatusCode};

use crate::config::{Location, LocationConf};
use crate::downstream::body::RequestBody;
use crate::downstream::handler::Handler;
use crate::downstream::state::ConnState;
use crate::http1::request::RequestError;
use crate::log::{AccessRecord, PendingLog, TryRecord};
use crate::proxy::access::{Held, Limited};
use crate::proxy::add_headers::ResponseEdits;
use crate::proxy::attempt::{Budget, Event, Failover, Failure, Health, Step};
use crate::proxy::body::{Checkin, ProxyBody};
use crate::proxy::compress::compress_response;
use crate::proxy::errors::{self, ProxyError};
use crate::proxy::exchange::{open, send, Answer, Missed};
use crate::proxy::headers;
use crate::proxy::internal::{self, Internal};
use crate::proxy::plan::NotPlanned;
use crate::proxy::prepare::Prepared;
use crate::proxy::redirect::{self, Ready};
use crate::proxy::reply::error_response;
use crate::proxy::worker::Worker;
use crate::sticky::Choice;
use crate::upstream::client::Transport;
use crate::upstream::peers::PeerSet;
use crate::upstream::pool::Conn;

impl Handler for Worker {
    type Body = ProxyBody;

    /// Answers one client request. Takes its worker and connection by `Rc` so
    /// that this future is the one the connection's coroutine keeps for the
    /// request: the pipeline is one coroutine (labelled blocks instead of
    /// nested `async fn`s), because every nesting level is a copy of the
    /// child's whole state per request.
    async fn handle(
        self: Rc<Self>,
        conn: Rc<ConnState>,
        req: &mut Request<RequestBody>,
    ) -> Box<Response<ProxyBody>> {
        // limit_req / limit_conn: checked once per request, across its
        // internal redirects; the connection counts held until it ends.
        let mut limited = Limited::default();
        self.run(conn, req, &mut limited, None).await
    }

    fn refuse(&self, error: RequestError) -> Response<ProxyBody> {
        // The head was not parsed: no location, so `server_tokens on`.
        error_response(error.into(), true)
    }
}

impl Worker {
    /// The request path of a request (`limited.subrequest`: an auth
    /// subrequest, which starts from the internal state `internal`).
    pub(super) async fn run(
        self: Rc<Self>,
        conn: Rc<ConnState>,
        req: &mut Request<RequestBody>,
        limited: &mut Limited,
        mut internal: Option<Box<Internal>>,
    ) -> Box<Response<ProxyBody>> {
        let info: &ConnState = &conn;
        let counted = (!limited.subrequest).then(|| self.count_request());
        let mut log_slot: Option<Box<AccessRecord>> = None;
        let log = &mut log_slot;
        // `add_header` / `expires` of the request's location, once it is known.
        let mut edits = ResponseEdits::default();
        // Auth subrequests made: one per location reached, so bounded as
        // internal redirects are (a planning pass that does not reach the
        // same location again, its `if` reading the clock say, cannot loop).
        let mut asked: u8 = 0;
        // Only a request that is internally redirected (or may be, by an
        // `error_page` after proxying, or waits for an auth subrequest) gets
        // the `internal` state.
        let mut resp = 'request: loop {
            let resp = 'respond: {
                let Prepared {
                    conf,
                    set,
                    lookup,
                    upgrade,
                    choice,
                    peer,
                    request,
                    mut body,
                    may_resend,
                    now_unix,
                    now_instant,
                    compress,
                    pick,
                    location,
                    mut rewrites,
                } = match self.prepare(info, req, log, &mut edits, &mut internal, limited) {
                    Ok(prepared) => prepared,
                    Err(NotPlanned::Answer(made)) => {
                        // limit_req delays a local answer (a file, an
                        // index) as it does a proxied one.
                        if let Some(wait) = turn(limited) {
                            wait.await;
                        }
                        break 'respond made;
                    }
                    Err(NotPlanned::Auth { conf, auth }) => {
                        asked += 1;
                        if asked > internal::MAX_URI_CHANGES + 1 {
                            tracing::error!("too many auth subrequests");
                            let tokens = conf.server_tokens;
                            break 'respond Box::new(error_response(ProxyError::Internal, tokens));
                        }
                        // The preaccess phase's delay comes before the access
                        // phase's subrequest.
                        if let Some(wait) = turn(limited) {
                            wait.await;
                        }
                        let worker = Rc::clone(&self);
                        let sub =
                            worker.auth_subrequest(Rc::clone(&conn), req, conf, auth, limited);
                        let done = Box::pin(sub).await;
                        internal.get_or_insert_with(Box::default).auth = Some(Box::new(done));
                        continue 'request;
                    }
                };
                // The client's body waits unread meanwhile, as in nginx.
                if let Some(wait) = turn(limited) {
                    wait.await;
                }
                let tokens = conf.server_tokens;
                // A `proxy_pass` host to resolve first (nginx resolves it
                // once the request is ready to go out).
                let (set, peer) = match lookup {
                    None => (set, peer),
                    Some(pending) => match Box::pin(self.resolve_pending(pending, &pick)).await {
                        Some(found) => found,
                        None => {
                            if internal::error_page_pending(conf, 502, &mut internal) {
                                continue 'request;
                            }
                            break 'respond Box::new(error_response(
                                ProxyError::BadGateway,
                                tokens,
                            ));
                        }
                    },
                };
                let set: &PeerSet<Transport> = &set;
                let budget = Budget {
                    tries: conf.proxy_next_upstream_tries,
                    deadline: (!conf.proxy_next_upstream_timeout.is_zero())
                        .then(|| now_instant.checked_add(conf.proxy_next_upstream_timeout))
                        .flatten(),
                    may_resend,
                };
                let sticky = set.sticky().map(|s| &s.conf);
                let mut failover = Failover::new(
                    &conf.proxy_next_upstream,
                    sticky,
                    budget,
                    choice,
                    peer,
                    now_unix,
                );
                let mut step = failover.start();
                let mut first_send = Some(now_instant);
                loop {
                    let p = match step {
                        Step::Try(p) => p,
                        Step::Refuse(failure) => {
                            let error = failure.error();
                            if internal::error_page_pending(
                                conf,
                                error.status().as_u16(),
                                &mut internal,
                            ) {
                                continue 'request;
                            }
                            break 'respond Box::new(error_response(error, tokens));
                        }
                        // Only ever after an answer, handled below.
                        Step::Deliver => {
                            break 'respond Box::new(error_response(ProxyError::Internal, tokens))
                        }
                    };
                    let active = set.stats().begin(p);
                    // A request that may be redirected keeps its tries for
                    // the `add_header` where it leads.
                    let keep = edits.wants_tries() || internal.is_some();
                    let noted = log.is_some() || keep;
                    let try_started = noted.then(Instant::now);
                    // One try at `p`: a pooled connection (with one transparent retry
                    // on a fresh connection if the pooled one turns out closed) or a
                    // new one. The rare connect is boxed so its future does not widen
                    // every request's.
                    // `$upstream_connect_time`: 0 for a pooled connection.
                    let mut connect_time = None;
                    let outcome: Result<Answer, Missed> = 'attempt: {
                        let mut pooled = set.checkout(p, &request.key, now_instant);
                        loop {
                            let conn = match pooled.take() {
                                Some(c) => {
                                    connect_time = noted.then_some(Duration::ZERO);
                                    c
                                }
                                None => match Box::pin(open(set, p, conf, &request.key)).await {
                                    Ok(io) => {
                                        connect_time = try_started.map(|t| t.elapsed());
                                        Conn::fresh(io)
                                    }
                                    Err(failure) => {
                                        break 'attempt Err(Missed {
                                            failure,
                                            unsent: true,
                                        })
                                    }
                                },
                            };
                            let reused = conn.reused;
                            // The request's own clock reading serves its first
                            // send; a retry reads the clock again.
                            let sent_at = first_send.take().unwrap_or_else(Instant::now);
                            match send(info, conn, &request, &mut body, conf, sent_at).await {
                                Ok(answer) => break 'attempt Ok(answer),
                                // Closed by the backend while idle: once more on a new
                                // connection, if the request can still go out.
                                Err(m)
                                    if reused
                                        && m.failure == Failure::Error
                                        && (m.unsent || may_resend) => {}
                                Err(m) => break 'attempt Err(m),
                            }
                        }
                    };
                    if noted {
                        let status = outcome
                            .as_ref()
                            .map(|(head, _, _)| head.status)
                            .map_err(|m| m.failure);
                        let edits = keep.then_some(&mut edits);
                        let times = TryTimes {
                            started: try_started,
                            connect: connect_time,
                        };
                        note_try(log, edits, set, p, status, times);
                    }
                    let event = match &outcome {
                        Ok((head, _, _)) => Event::Answered(head.status.as_u16()),
                        Err(m) => Event::Failed {
                            failure: m.failure,
                            unsent: m.unsent,
                        },
                    };
                    let now = Instant::now();
                    let before = failover.choice().copied();
                    let (health, next) =
                        failover.on(event, now, |ex, tried| set.choose(ex, tried, now, &pick));
                    match health {
                        Health::Succeeded => set.succeeded(p),
                        Health::Failed => set.failed(p, now),
                        Health::Unchanged => {}
                    }
                    if failover.choice().copied() != before {
                        note_sticky(log, set, failover.choice());
                    }
                    if next != Step::Deliver {
                        step = next;
                        continue;
                    }
                    let Ok(mut answer) = outcome else {
                        break 'respond Box::new(error_response(ProxyError::Internal, tokens));
                    };
                    match internal::answer_status(conf, answer.0.status, &mut internal) {
                        Some(status) => answer.0.status = status,
                        None => {
                            // Intercepted: where the `error_page` leads,
                            // `$upstream_http_*` reads this response's lines.
                            if let Some(st) = internal.as_mut() {
                                st.vars.upstream_headers = received_lines(info);
                            }
                            continue 'request;
                        }
                    }
                    let choice = failover.choice();
                    if let Some(c) = choice {
                        set.stats().note_outcome(p, c.outcome);
                    }
                    note_sticky(log, set, choice);
                    if let Some(record) = log {
                        record.streaming_since = try_started;
                    }
                    let tls = info.is_tls();
                    let backend_edits = Edits {
                        location,
                        rewrites: rewrites.take(),
                    };
                    let mut resp = Box::new(self.answer(
                        set,
                        conf,
                        p,
                        answer,
                        choice,
                        now_unix,
                        upgrade,
                        tls,
                        log,
                        backend_edits,
                    ));
                    if let Some(facts) = &compress {
                        compress_response(&mut resp, &conf.compress, facts, now_unix);
                    }
                    resp.body_mut().no_chunked = !conf.chunked_transfer_encoding;
                    // The backend's status line, unless an `error_page` set
                    // the status (nginx's `err_status` clears `status_line`).
                    resp.body_mut().status_line =
                        internal.as_ref().is_none_or(|st| st.err_status.is_none());
                    // Ours, unless the backend's passed (`proxy_pass_header
                    // Server`), as nginx.
                    resp.headers_mut()
                        .entry(header::SERVER)
                        .or_insert_with(|| errors::server_header(tokens));
                    resp.body_mut().active = Some(active);
                    break 'respond resp;
                }
            };
            break 'request resp;
        };
        if let Some(done) = internal.as_ref().and_then(|st| st.auth.as_deref()) {
            // nginx adds a refusing subrequest's challenge to the request's
            // headers: its `error_page` answer carries it too.
            if done.status == 401 {
                done.copy_challenge(resp.headers_mut());
            }
        }
        if !edits.is_empty() {
            let status = resp.status();
            // `$upstream_http_*`: the backend's head as received, kept until
            // the client's head is written.
            let upstream_head = if edits.wants_upstream_head() {
                received_head(info)
            } else {
                None
            };
            edits.apply(
                status,
                resp.headers_mut(),
                SystemTime::now(),
                upstream_head.as_deref(),
            );
            resp.body_mut().names = edits.names();
        }
        resp.body_mut().held = Held {
            _request: counted,
            _conns: std::mem::take(&mut limited.conns),
        };
        if let Some(mut record) = log_slot {
            // The line reads the user variables the request ended with.
            record.user = internal.map(|st| st.vars);
            if record.wants_upstream_headers() {
                record.upstream_headers = received_lines(info);
            }
            let pending = PendingLog::new(record, resp.status(), resp.headers());
            resp.body_mut().log = Some(pending);
        }
        resp
    }

    /// The backend's response, edited for the client: headers filtered, sticky
    /// cookie, body streamed with the connection returned to the pool at its end,
    /// or a tunnel after `101`.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        set: &PeerSet<Transport>,
        conf: &LocationConf,
        peer: usize,
        answer: Answer,
        choice: Option<&Choice>,
        now_unix: i64,
        upgrade: bool,
        tls: bool,
        log: &mut Option<Box<AccessRecord>>,
        edits: Edits<'_>,
    ) -> Response<ProxyBody> {
        let (head, upstream_body, requests) = answer;
        let status = head.status;
        let declared = head.declared_length;
        let switching = status == StatusCode::SWITCHING_PROTOCOLS;
        let mut headers = head.headers;
        // Hop-by-hop and hidden lines never reached the map, but a 101's
        // `Connection` and `Upgrade`, edited here.
        if switching {
            headers::filter_response(
                &mut headers,
                &conf.proxy_hide_headers,
                &conf.proxy_pass_headers,
                true,
            );
        }
        // proxy_redirect / proxy_cookie_*: the backend's headers, before the
        // sticky cookie is set (which they never rewrite).
        if redirect::worth_rewriting(&conf.details, &headers) {
            let ready = edits.rewrites.unwrap_or_else(|| {
                Ready::new(&conf.details, redirect::literal, || {
                    conf.proxy_pass
                        .as_ref()
                        .map(|pass| redirect::default_for(pass, edits.location))
                        .unwrap_or_default()
                })
            });
            ready.apply(&mut headers);
        }
        if let (Some(sticky), Some(choice)) = (set.sticky(), choice) {
            let applied = sticky.on_response(status, &mut headers, choice, now_unix, tls);
            if let (Some(record), Some(name)) = (log, sticky.learned_name(choice, Some(&applied))) {
                name.clone_into(&mut record.sticky_learned);
            }
        }
        let body = if switching {
            // Only an upgrade the client asked for becomes a tunnel.
            let (true, Some(backend)) = (upgrade, upstream_body.into_upgraded()) else {
                return error_response(ProxyError::BadGateway, conf.server_tokens);
            };
            ProxyBody::tunnel(backend)
        } else {
            let checkin = Checkin {
                pool: set.pool(),
                peer,
                requests,
            };
            let mut body = ProxyBody::upstream(upstream_body, checkin, conf.proxy_read_timeout);
            body.declared = declared;
            body
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        resp
    }
}

/// The last backend response head as received (`$upstream_http_*`): kept
/// in `info` until the client's head is written.
fn received_head(info: &ConnState) -> Option<bytes::Bytes> {
    let raw = info.response_head.take();
    info.response_head.set(raw.clone());
    raw
}

/// Every header line of [`received_head`].
fn received_lines(info: &ConnState) -> Option<http::HeaderMap> {
    received_head(info)
        .as_deref()
        .map(crate::http1::response::head_lines)
}

/// The response-header rewrites of the request's location.
pub(super) struct Edits<'w> {
    location: Option<&'w Location>,
    /// Evaluated while planning when they read variables.
    rewrites: Option<Ready<'w>>,
}

/// limit_req: the wait before the request's turn (the delay its limits set,
/// taken once), `None` when it has none: no future is made then.
#[inline]
fn turn(limited: &mut Limited) -> Option<tokio::time::Sleep> {
    let delay = std::mem::take(&mut limited.delay);
    (!delay.is_zero()).then(|| tokio::time::sleep(delay))
}

/// When one upstream try started, and how long its connection took to open
/// (zero for a pooled one; `None`: none was opened).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TryTimes {
    pub started: Option<Instant>,
    pub connect: Option<Duration>,
}

/// Records one upstream try for `$upstream_addr`, `$upstream_status` and the
/// `$upstream_*_time` variables (when the request is logged, or an
/// `add_header` reads them).
pub(super) fn note_try(
    log: &mut Option<Box<AccessRecord>>,
    edits: Option<&mut ResponseEdits>,
    set: &PeerSet<Transport>,
    peer: usize,
    outcome: Result<StatusCode, Failure>,
    times: TryTimes,
) {
    let elapsed = times.started.map(|t| t.elapsed());
    let (status, header_time) = match outcome {
        Ok(status) => (status.as_u16(), elapsed),
        Err(failure) => (failure.error().status().as_u16(), None),
    };
    let record = TryRecord {
        addr: set.name(peer).unwrap_or_default().to_string(),
        status: Some(status),
        connect_time: times.connect,
        header_time,
        response_time: elapsed,
    };
    if let Some(edits) = edits {
        edits.note_try(record.clone());
    }
    if let Some(log) = log {
        log.tries.push(record);
    }
}

/// Records the sticky outcome (`$sticky_status`) and the sid of the chosen peer
/// (`$sticky_sid`) when the request is logged.
pub(super) fn note_sticky(
    log: &mut Option<Box<AccessRecord>>,
    set: &PeerSet<Transport>,
    choice: Option<&Choice>,
) {
    if let (Some(record), Some(sticky), Some(choice)) = (log, set.sticky(), choice) {
        let sid = sticky.sid(choice).unwrap_or_default().to_string();
        record.sticky = Some((sid, choice.outcome.as_str()));
        let learned = sticky.learned_name(choice, None).unwrap_or_default();
        learned.clone_into(&mut record.sticky_learned);
    }
}
