//! The preaccess and access phases of a request, in nginx's order:
//! `limit_req` (which may delay the request), `limit_conn`, then `allow`/
//! `deny` and `auth_basic` combined by `satisfy`; and the `stub_status`
//! page. The decisions are `crate::access`'s; this file applies them to one
//! request and makes the refusals (403, 401 with `WWW-Authenticate`, the
//! limits' status) and the error-log lines nginx writes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::access::conf::{AccessConf, AuthBasic, AuthRequest};
use crate::access::htpasswd::{self, Verdict};
use crate::access::rules::{self, Check};
use crate::access::stub_status;
use crate::access::zones::{ConnGuard, ConnVerdict, CountGuard, ReqVerdict};
use crate::config::{LogLevel, Template};
use crate::proxy::auth_request::{AuthDone, AuthVerdict};
use crate::proxy::body::ProxyBody;
use crate::proxy::errors::{MadeResponse, ProxyError};
use crate::proxy::reply::{error_response, full, made};
use crate::proxy::worker::Worker;
use crate::vars::{self, RequestVars};

/// What a request holds once admitted: its `limit_conn` counts and its
/// `stub_status` count, released (dropped) when its response ends.
#[derive(Default)]
pub struct Held {
    pub(super) _request: Option<CountGuard>,
    pub(super) _conns: Vec<ConnGuard>,
}

/// What the preaccess phase did for a request, kept across its internal
/// redirects: nginx checks `limit_req` and `limit_conn` once per request
/// (`r->main->limit_req_status`, `limit_conn_status`: a location reached by
/// `error_page`, `try_files` or a named location does not count the request
/// again), and the `limit_conn` counts are held until the request ends.
#[derive(Default)]
pub(super) struct Limited {
    /// A `limit_req` evaluated a key for this request.
    req_checked: bool,
    /// A `limit_conn` evaluated a key for this request.
    conn_checked: bool,
    /// `limit_req` delay to wait before the request goes on.
    pub(super) delay: Duration,
    pub(super) conns: Vec<ConnGuard>,
    /// An `auth_request` subrequest: no access phase and no access-log line
    /// (nginx's `log_subrequest off`), not counted by `stub_status`, `GET`
    /// to the backend.
    pub(super) subrequest: bool,
}

impl Limited {
    /// The start of a subrequest of this request: the limits this request
    /// checked are not checked again.
    pub(super) fn for_subrequest(&self) -> Limited {
        Limited {
            req_checked: self.req_checked,
            conn_checked: self.conn_checked,
            subrequest: true,
            ..Limited::default()
        }
    }

    /// Takes over what the subrequest `sub` checked (nginx keeps the flags on
    /// the main request).
    pub(super) fn checked_by(&mut self, sub: &Limited) {
        self.req_checked |= sub.req_checked;
        self.conn_checked |= sub.conn_checked;
    }
}

/// What the access phase made of a request it did not refuse.
#[derive(Debug)]
pub(super) enum Admitted<'c> {
    Pass,
    /// The location's `auth_request` decides: its subrequest must run first.
    Ask(&'c AuthRequest),
}

/// A page for `code` (nginx's error page).
fn refusal(code: u16, tokens: bool) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    made(MadeResponse::status_page(status, tokens), tokens)
}

/// Logs at an nginx level through `tracing`.
fn log_at(level: LogLevel, message: std::fmt::Arguments<'_>) {
    match level {
        LogLevel::Debug => tracing::debug!("{message}"),
        LogLevel::Info | LogLevel::Notice => tracing::info!("{message}"),
        LogLevel::Warn => tracing::warn!("{message}"),
        _ => tracing::error!("{message}"),
    }
}

/// One level lower (nginx logs delays one level below refusals).
fn lower(level: LogLevel) -> LogLevel {
    match level {
        LogLevel::Error => LogLevel::Warn,
        LogLevel::Warn => LogLevel::Notice,
        LogLevel::Notice => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

impl Worker {
    /// Counts a request for `stub_status` until its response ends.
    pub(super) fn count_request(&self) -> CountGuard {
        self.access.counters().request()
    }

    /// Runs the preaccess and access phases of `conf` for a request from
    /// `remote` (after realip); the limits only when `limited` says they were
    /// not checked for this request yet, the access checks only for a main
    /// request. `auth` is the outcome of the location's `auth_request`, once
    /// its subrequest ran.
    #[allow(clippy::result_large_err, clippy::too_many_arguments)]
    pub(super) fn admit<'c>(
        &self,
        conf: &'c AccessConf,
        vars: &RequestVars<'_>,
        headers: &HeaderMap,
        remote: SocketAddr,
        tokens: bool,
        limited: &mut Limited,
        auth_done: Option<&AuthDone>,
    ) -> Result<Admitted<'c>, Response<ProxyBody>> {
        let key = |t: &Template| vars::eval_to_vec(t, vars);
        if !conf.limit_req.list.is_empty() && !limited.req_checked {
            let verdict = self.access.limit_req(&conf.limit_req, key, Instant::now());
            limited.req_checked = verdict != ReqVerdict::Declined;
            match verdict {
                ReqVerdict::Declined => {}
                ReqVerdict::Pass(delay) => {
                    if !delay.is_zero() {
                        log_at(
                            lower(conf.limit_req.log_level),
                            format_args!(
                                "delaying request, {} ms, client: {}",
                                delay.as_millis(),
                                remote.ip()
                            ),
                        );
                    }
                    limited.delay = delay;
                }
                ReqVerdict::Busy { zone, excess } => {
                    log_at(
                        conf.limit_req.log_level,
                        format_args!(
                            "limiting requests, excess: {}.{:03} by zone \"{zone}\", client: {}",
                            excess / 1000,
                            excess % 1000,
                            remote.ip()
                        ),
                    );
                    return Err(refusal(conf.limit_req.status, tokens));
                }
            }
        }
        if !conf.limit_conn.list.is_empty() && !limited.conn_checked {
            match self.access.limit_conn(&conf.limit_conn, key) {
                ConnVerdict::Declined => {}
                ConnVerdict::Pass(guards) => {
                    limited.conn_checked = true;
                    limited.conns = guards;
                }
                ConnVerdict::Busy { zone } => {
                    limited.conn_checked = true;
                    log_at(
                        conf.limit_conn.log_level,
                        format_args!(
                            "limiting connections by zone \"{zone}\", client: {}",
                            remote.ip()
                        ),
                    );
                    return Err(refusal(conf.limit_conn.status, tokens));
                }
            }
        }
        // nginx runs no access phase for a subrequest.
        if limited.subrequest
            || (conf.rules.is_empty() && conf.auth_basic.is_none() && conf.auth_request.is_none())
        {
            return Ok(Admitted::Pass);
        }
        let address = rules::address_check(&conf.rules, remote.ip());
        if address == Check::Forbidden {
            tracing::error!("access forbidden by rule, client: {}", remote.ip());
            if !conf.satisfy_any {
                return Err(refusal(403, tokens));
            }
        }
        let auth = match &conf.auth_basic {
            Some(auth) if !(conf.satisfy_any && address == Check::Allowed) => {
                basic_check(auth, vars, headers, remote).map_err(|e| error_response(e, tokens))?
            }
            _ => Check::Declined,
        };
        // `auth_request` runs last (nginx's order), unless the checks before
        // it decided already.
        let decided = if conf.satisfy_any {
            address == Check::Allowed || auth == Check::Allowed
        } else {
            auth == Check::Unauthorized
        };
        let request = match (&conf.auth_request, auth_done) {
            (None, _) => Check::Declined,
            (Some(_), _) if decided => Check::Declined,
            (Some(ask), None) => return Ok(Admitted::Ask(ask)),
            (Some(_), Some(done)) => match done.verdict() {
                AuthVerdict::Allowed => Check::Allowed,
                AuthVerdict::Refused(401) => Check::Unauthorized,
                AuthVerdict::Refused(_) => Check::Forbidden,
                AuthVerdict::Error => return Err(error_response(ProxyError::Internal, tokens)),
            },
        };
        match rules::satisfy(conf.satisfy_any, &[address, auth, request]) {
            None => Ok(Admitted::Pass),
            Some(401) => {
                let realm = conf
                    .auth_basic
                    .as_ref()
                    .map(|a| vars::eval_to_vec(&a.realm, vars))
                    .unwrap_or_default();
                let mut resp = refusal(401, tokens);
                if auth == Check::Unauthorized {
                    let mut value = b"Basic realm=\"".to_vec();
                    value.extend(
                        realm
                            .iter()
                            .filter(|&&b| b != b'"' && b != b'\r' && b != b'\n'),
                    );
                    value.push(b'"');
                    if let Ok(v) = HeaderValue::from_bytes(&value) {
                        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                }
                // An `auth_request` challenge is added to whatever response
                // the request ends with (`Worker::run`).
                Err(resp)
            }
            Some(code) => Err(refusal(code, tokens)),
        }
    }

    /// The `stub_status` page (GET and HEAD only, as nginx).
    pub(super) fn stub_status_page(&self, method: &Method, tokens: bool) -> Response<ProxyBody> {
        if method != Method::GET && method != Method::HEAD {
            return error_response(ProxyError::MethodNotAllowed, tokens);
        }
        let text = stub_status::render(&self.access.counters().snapshot());
        let mut resp = full(StatusCode::OK, text, tokens);
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        resp
    }
}

/// `auth_basic`: the credentials of the request against the user file, read
/// now (nginx reads it at every request). A file that cannot be read is a 500.
fn basic_check(
    auth: &AuthBasic,
    vars: &RequestVars<'_>,
    headers: &HeaderMap,
    remote: SocketAddr,
) -> Result<Check, ProxyError> {
    let Some((user, password)) = vars::basic_credentials(headers) else {
        return Ok(Check::Unauthorized);
    };
    let path = vars::eval_to_vec(&auth.user_file, vars);
    let path = String::from_utf8_lossy(&path).into_owned();
    let file = std::fs::read(&path).map_err(|e| {
        tracing::error!("open() \"{path}\" failed ({e}), client: {}", remote.ip());
        ProxyError::Internal
    })?;
    let name = String::from_utf8_lossy(&user);
    let Some(hash) = htpasswd::find_user(&file, &user) else {
        tracing::error!(
            "user \"{name}\" was not found in \"{path}\", client: {}",
            remote.ip()
        );
        return Ok(Check::Unauthorized);
    };
    match htpasswd::verify(&password, hash) {
        Verdict::Match => Ok(Check::Allowed),
        Verdict::Mismatch => {
            tracing::error!(
                "user \"{name}\": password mismatch, client: {}",
                remote.ip()
            );
            Ok(Check::Unauthorized)
        }
        Verdict::Unsupported => {
            tracing::error!(
                "user \"{name}\": the password hash format in \"{path}\" is not supported, client: {}",
                remote.ip()
            );
            Err(ProxyError::Internal)
        }
    }
}
