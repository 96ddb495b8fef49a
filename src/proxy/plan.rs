//! Planning a request, with no waiting: from its head alone, a proxy-made
//! answer (414, 400, `return`, the trailing-slash redirect, the status page,
//! 404, 413) or where and how it is forwarded ([`Plan`]); then everything
//! before it goes out ([`Prepared`]): the upstream URI, the sticky request
//! side (decode, decide, strip), the upstream headers, and the encoded head.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};

use crate::config::rewrite::{ErrorTarget, Overwrite};
use crate::config::{LocationConf, ProxyPass, ServerConf, ServerName, Template};
use crate::downstream::body::RequestBody;
use crate::downstream::state::ConnState;
use crate::http1::framing::{BodyFraming, RequestFraming};
use crate::http1::request::encode_request_head;
use crate::log::AccessRecord;
use crate::proxy::attempt::idempotent;
use crate::proxy::body::{ClientBody, ProxyBody};
use crate::proxy::errors::{self, ProxyError, RedirectBase};
use crate::proxy::exchange::{head_capacity, UpstreamRequest};
use crate::proxy::handler::note_sticky;
use crate::proxy::headers::{self, UpstreamConnection};
use crate::proxy::locate::{Action, Located};
use crate::proxy::redirect::{self, ErrorPageStep, Internal};
use crate::proxy::reply::{error_response, full, made};
use crate::proxy::route;
use crate::proxy::uri;
use crate::proxy::worker::Worker;
use crate::sticky::Choice;
use crate::upstream::balance::Tried;
use crate::upstream::client::Transport;
use crate::upstream::peers::PeerSet;
use crate::user_vars::UserVars;
use crate::vars::{self, RequestVars};

pub(super) fn unix_now(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Worker {
    /// The plan of a request, following internal redirects (`error_page`, named
    /// locations) until a location answers or forwards it.
    #[allow(clippy::result_large_err)]
    fn plan(
        &self,
        info: &ConnState,
        req: &mut Request<RequestBody>,
        start: SystemTime,
        log: &mut Option<Box<AccessRecord>>,
        state: &mut Option<Box<Internal>>,
    ) -> Result<Plan<'_>, Response<ProxyBody>> {
        loop {
            if let Some(st) = state.as_deref_mut() {
                if let Some((uri, headers)) = st.saved.take() {
                    *req.uri_mut() = uri;
                    *req.headers_mut() = headers;
                }
                if std::mem::take(&mut st.to_get) {
                    if req.method() != Method::HEAD {
                        *req.method_mut() = Method::GET;
                    }
                    *req.body_mut() = RequestBody::empty();
                }
            }
            let stop = match self.plan_once(info, req, start, log, state) {
                Ok(plan) => return Ok(plan),
                Err(stop) => stop,
            };
            let mut st = state.as_deref_mut();
            if let Some(st) = st.as_deref_mut() {
                st.pending_error = None;
            }
            match stop {
                Stop::Made(mut resp) => {
                    if let Some(code) = st.and_then(|s| s.err_status) {
                        if let Ok(status) = StatusCode::from_u16(code) {
                            *resp.status_mut() = status;
                        }
                    }
                    return Err(resp);
                }
                Stop::Plain(resp) => {
                    if let Some(st) = st {
                        st.err_status = None;
                    }
                    return Err(resp);
                }
                Stop::Page {
                    status,
                    resp,
                    conf,
                    uri,
                    path,
                    args,
                } => {
                    let step =
                        redirect::error_page(conf, status, state, &path, args.as_deref(), |_| uri);
                    match step {
                        ErrorPageStep::Redirected => continue,
                        ErrorPageStep::Cycle => {
                            return Err(error_response(ProxyError::Internal, conf.server_tokens))
                        }
                        // Client redirects are made by `plan_once`.
                        ErrorPageStep::None => return Err(resp),
                    }
                }
            }
        }
    }

    /// One pass of planning: the server and location for the request's URI now
    /// (or its named location), then what that location does with it.
    #[allow(clippy::result_large_err)]
    fn plan_once(
        &self,
        info: &ConnState,
        req: &Request<RequestBody>,
        start: SystemTime,
        log: &mut Option<Box<AccessRecord>>,
        state: &mut Option<Box<Internal>>,
    ) -> Result<Plan<'_>, Stop<'_>> {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        // The request line's authority wins over the Host header (nginx, RFC 9112
        // section 3.2.2); the Host header is still validated.
        let host = route::named_host(
            req.uri().authority().map(|a| a.as_str().as_bytes()),
            req.headers().get(header::HOST).map(HeaderValue::as_bytes),
        );
        let routed = match host.and_then(|host| self.router.server(info.listen, host)) {
            Ok(r) => r,
            Err(e) => return Err(Stop::Plain(error_response(e.into(), true))),
        };
        // The same server, borrowed from the worker instead of the request.
        let server: &ServerConf = match self
            .config
            .http
            .servers
            .iter()
            .find(|s| Arc::ptr_eq(s, routed.server))
        {
            Some(s) => s,
            None => return Err(Stop::Plain(error_response(ProxyError::Internal, true))),
        };
        let server_name = server_name_of(server);
        let (raw_path, raw_query) = uri::split_query(target);
        let normalized = match state.as_deref().and_then(Internal::uri) {
            Some(_) => Cow::Borrowed(&b""[..]),
            None => match uri::normalize_path(raw_path.as_bytes()) {
                Ok(p) => p,
                Err(e) => {
                    let e: ProxyError = e.into();
                    let resp = error_response(e, server.conf.server_tokens);
                    return Err(Stop::Plain(resp));
                }
            },
        };
        // The rewrite module's statements see the request with its user
        // variables as they are when a template is evaluated.
        let view = RequestView {
            req,
            info,
            host: &routed.host,
            server_name,
            target,
            start,
        };
        let eval = |t: &Template, uv: &UserVars| {
            let path = uv.uri.as_ref().map_or(&normalized[..], |(p, _)| p);
            vars::eval_to_vec(t, &view.vars(path, "", Some(uv)))
        };
        let located = self.locate(server, state, &routed.host, &normalized, raw_query, &eval)?;
        let Located {
            location,
            add_slash,
            conf,
            action,
        } = located;
        let state = state.as_deref();
        let (path, query): (&[u8], Option<&str>) = match state.and_then(Internal::uri) {
            Some(uri) => uri,
            None => (&normalized, raw_query),
        };
        let tokens = conf.server_tokens;
        let local_ip: std::cell::OnceCell<String> = std::cell::OnceCell::new();
        let redirect_base = || {
            let host: &str = if !routed.host.is_empty() {
                &routed.host
            } else if !server_name.is_empty() {
                server_name
            } else {
                local_ip.get_or_init(|| info.local.ip().to_string())
            };
            RedirectBase {
                scheme: "http",
                host,
                port: info.local.port(),
            }
        };
        let vars = |proxy_host| view.vars(path, proxy_host, state.map(|s| &s.vars));
        // An error answered at this location: its `error_page`, if one applies.
        let fail = |status: u16, resp: Response<ProxyBody>| {
            let Some(page) = redirect::page_applies(conf, status, state) else {
                return Stop::Plain(resp);
            };
            let page_uri = match &page.target {
                ErrorTarget::Uri(t) => vars::eval_to_vec(t, &vars("")),
                ErrorTarget::Named(_) => Vec::new(),
                ErrorTarget::Redirect(t) => {
                    let url = vars::eval_to_vec(t, &vars(""));
                    let code = match page.overwrite {
                        Overwrite::Code(c @ (301 | 302 | 303 | 307 | 308)) => c,
                        _ => 302,
                    };
                    return match errors::return_response(code, Some(&url), &redirect_base(), tokens)
                    {
                        Some(m) => Stop::Plain(made(m, tokens)),
                        None => Stop::Plain(error_response(ProxyError::Internal, tokens)),
                    };
                }
            };
            Stop::Page {
                status,
                resp,
                conf,
                uri: page_uri,
                path: path.to_vec(),
                args: query.map(str::to_string),
            }
        };
        if let Some(status) = state.and_then(|s| s.pending_error) {
            let resp = match StatusCode::from_u16(status) {
                Ok(s) => made(
                    errors::MadeResponse {
                        status: s,
                        location: None,
                        content_type: Some(errors::HTML),
                        body: errors::error_page(s, tokens),
                    },
                    tokens,
                ),
                Err(_) => error_response(ProxyError::Internal, tokens),
            };
            return Err(fail(status, resp));
        }
        if log.is_none() {
            if let Some(targets) = self.logs.targets(&conf.access_log) {
                let proxy_host = conf
                    .proxy_pass
                    .as_ref()
                    .map_or("", |p| p.proxy_host.as_str());
                *log = Some(Box::new(AccessRecord::capture(targets, &vars(proxy_host))));
            }
        }
        let uri_changed = state.is_some_and(|s| s.vars.uri.is_some());
        let ret = match action {
            Action::NotFound => {
                return Err(fail(404, error_response(ProxyError::NotFound, tokens)));
            }
            Action::Redirect(code, url) => {
                let resp = match errors::return_response(code, Some(&url), &redirect_base(), tokens)
                {
                    Some(m) => made(m, tokens),
                    None => error_response(ProxyError::Internal, tokens),
                };
                return Err(Stop::Made(resp));
            }
            Action::Return(ret) => Some(ret),
            Action::None => conf.return_.as_ref(),
        };
        if let Some(ret) = ret {
            let text = ret.text.as_ref().map(|t| vars::eval_to_vec(t, &vars("")));
            let resp = match errors::return_response(
                ret.code,
                text.as_deref(),
                &redirect_base(),
                tokens,
            ) {
                Some(m) => made(m, tokens),
                None => error_response(ProxyError::Internal, tokens),
            };
            if ret.code >= 400 && ret.text.is_none() {
                return Err(fail(ret.code, resp));
            }
            return Err(Stop::Made(resp));
        }
        if add_slash {
            // nginx's automatic redirect: `location /app/ { proxy_pass ...; }`
            // answers `/app` with a 301 to `/app/`.
            let to = uri::add_slash_target(path, query);
            let resp =
                match errors::return_response(301, Some(to.as_bytes()), &redirect_base(), tokens) {
                    Some(m) => made(m, tokens),
                    None => error_response(ProxyError::Internal, tokens),
                };
            return Err(Stop::Made(resp));
        }
        if let Some(format) = conf.check_status {
            let (content_type, body) = self.health.status_page(&self.config, query, format);
            let mut resp = full(StatusCode::OK, body, tokens);
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return Err(Stop::Made(resp));
        }
        let Some(pass) = conf.proxy_pass.as_ref() else {
            return Err(fail(404, error_response(ProxyError::NotFound, tokens)));
        };
        if conf.client_max_body_size > 0 {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > conf.client_max_body_size) {
                return Err(fail(
                    413,
                    error_response(ProxyError::PayloadTooLarge, tokens),
                ));
            }
        }
        let mut upstream = pass.upstream;
        let mut proxy_host = None;
        let mut var_uri = None;
        if let Some(pv) = &pass.vars {
            // `proxy_pass` with variables: the URL now; its host names an
            // upstream, its URI part replaces the request's as it is.
            let url = vars::eval_to_vec(&pv.url, &vars(""));
            let url = String::from_utf8_lossy(&url);
            let Some(rest) = url
                .get(..7)
                .filter(|p| p.eq_ignore_ascii_case("http://"))
                .and_then(|_| url.get(7..))
            else {
                tracing::error!("invalid URL prefix in \"{url}\"");
                return Err(Stop::Plain(error_response(ProxyError::Internal, tokens)));
            };
            let (host_port, path_part) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            if pv.dynamic_host {
                let named = self.config.http.upstreams.iter();
                match named
                    .clone()
                    .position(|u| u.name.eq_ignore_ascii_case(host_port))
                {
                    Some(i) => upstream = i,
                    None => {
                        let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
                        if host.parse::<std::net::IpAddr>().is_ok() {
                            tracing::error!(
                                "no upstream \"{host_port}\": an address in \"proxy_pass\" with variables is not supported yet"
                            );
                        } else {
                            tracing::error!("no resolver defined to resolve {host}");
                        }
                        return Err(fail(502, error_response(ProxyError::BadGateway, tokens)));
                    }
                }
                proxy_host = Some(host_port.to_string());
            }
            var_uri = (!path_part.is_empty()).then(|| path_part.to_string());
        }
        let Some(set) = self.upstreams.get(upstream).map(Rc::as_ref) else {
            return Err(Stop::Plain(error_response(ProxyError::BadGateway, tokens)));
        };
        // The client's target goes out unchanged unless proxy_pass has a URI part
        // or the request was redirected (then its URI now, escaped).
        let redirected_target = uri_changed.then(|| uri::escaped_target(path, query));
        let uri = match (location, pass.uri.as_deref(), redirected_target) {
            _ if var_uri.is_some() => match var_uri.as_deref().map(str::parse::<Uri>) {
                Some(Ok(u)) => Some(u),
                _ => return Err(Stop::Plain(error_response(ProxyError::BadRequest, tokens))),
            },
            (Some(loc), Some(base), t) => {
                let target = t.as_deref().unwrap_or(target);
                let mapped = uri::upstream_uri(target, path, &loc.matcher, Some(base));
                match mapped.parse::<Uri>() {
                    Ok(u) => Some(u),
                    Err(_) => {
                        return Err(Stop::Plain(error_response(ProxyError::BadRequest, tokens)))
                    }
                }
            }
            (_, _, Some(t)) => match t.parse::<Uri>() {
                Ok(u) => Some(u),
                Err(_) => return Err(Stop::Plain(error_response(ProxyError::BadRequest, tokens))),
            },
            _ => None,
        };
        let set_headers = if conf.proxy_set_headers.is_empty() {
            Vec::new()
        } else {
            let host = proxy_host.as_deref().unwrap_or(&pass.proxy_host);
            headers::eval_set_headers(&conf.proxy_set_headers, &vars(host))
        };
        Ok(Plan {
            server,
            conf,
            pass,
            set,
            uri,
            set_headers,
            proxy_host,
        })
    }

    /// Everything about a request that happens before it goes out, with no
    /// waiting: the plan, the upstream URI, the sticky request side (decode,
    /// decide, strip), the upstream headers, and the encoded request head.
    /// Kept out of `handle` so that its locals (URIs, header maps) are not
    /// part of the request's future, which is moved as a whole.
    #[allow(clippy::result_large_err)]
    pub(super) fn prepare(
        &self,
        info: &ConnState,
        req: &mut Request<RequestBody>,
        log: &mut Option<Box<AccessRecord>>,
        state: &mut Option<Box<Internal>>,
    ) -> Result<Prepared<'_>, Response<ProxyBody>> {
        let start = SystemTime::now();
        let Plan {
            server,
            conf,
            pass,
            set,
            uri: mapped_uri,
            set_headers,
            proxy_host,
        } = self.plan(info, req, start, log, state)?;
        let tokens = conf.server_tokens;
        if !conf.redirect.error_pages.is_empty() {
            // An error met while proxying may still send the request to an
            // `error_page`, which plans the client's request again.
            let st = state.get_or_insert_with(Box::default);
            st.saved = Some((req.uri().clone(), req.headers().clone()));
        }
        let upgrade = headers::wants_upgrade(req.headers());
        let up_uri = match mapped_uri {
            Some(u) => u,
            None => match origin_form(std::mem::take(req.uri_mut())) {
                Some(u) => u,
                None => return Err(error_response(ProxyError::BadRequest, tokens)),
            },
        };
        let connection_mode = if upgrade {
            UpstreamConnection::Upgrade
        } else if set.keeps_alive() {
            UpstreamConnection::KeepAlive
        } else {
            UpstreamConnection::Close
        };
        let now_unix = unix_now(start);
        let now_instant = Instant::now();
        let tried = Tried::new();
        let headers = req.headers_mut();
        // Sticky request side (decode, decide, strip) before the headers go out.
        let choice = set.sticky().map(|sticky| {
            sticky.on_request(
                headers,
                now_unix,
                |i| set.is_up(i, now_instant),
                |exclude| set.choose(exclude, &tried, now_instant),
            )
        });
        note_sticky(log, set, choice.as_ref());
        let proxy_host = proxy_host.as_deref().unwrap_or(&pass.proxy_host);
        headers::to_upstream_request(headers, set_headers, proxy_host, connection_mode);
        let peer = match choice.map(|c| c.decision) {
            Some(d) => d.peer(),
            None => set.choose(None, &tried, now_instant),
        };
        let framing = match req.body().framing() {
            BodyFraming::None => RequestFraming::None,
            BodyFraming::Length(n) => RequestFraming::Length(n),
            BodyFraming::Chunked => RequestFraming::Chunked,
        };
        // The body is read (streamed on): a 100 Continue is due, as nginx.
        req.body().want();
        let body = std::mem::replace(req.body_mut(), RequestBody::empty());
        let body = ClientBody::stream(body, conf.client_max_body_size, client_body_timeout(server));
        let target = up_uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = crate::reuse::vec(head_capacity(target, req.headers()));
        encode_request_head(&mut head, req.method(), target, req.headers(), framing);
        // The headers are in `head` now.
        crate::reuse::give_map(std::mem::take(req.headers_mut()));
        let request = UpstreamRequest {
            head,
            framing,
            head_request: req.method() == Method::HEAD,
        };
        let has_body = !body.is_empty();
        // A bodyless request can be written again after it was sent: once on a
        // fresh connection when a pooled one turns out dead, and on another peer
        // per proxy_next_upstream (never away from a pinned peer with
        // fallback=off). A streamed body cannot be sent twice.
        let may_resend =
            !has_body && (conf.proxy_next_upstream.non_idempotent || idempotent(req.method()));
        Ok(Prepared {
            conf,
            set,
            upgrade,
            choice,
            peer,
            request,
            body: has_body.then_some(body),
            may_resend,
            now_unix,
            now_instant,
        })
    }
}

fn client_body_timeout(server: &ServerConf) -> Duration {
    server.connection.client_body_timeout
}

/// What planning reads of a request to evaluate its variables.
struct RequestView<'a> {
    req: &'a Request<RequestBody>,
    info: &'a ConnState,
    host: &'a str,
    server_name: &'a str,
    target: &'a str,
    start: SystemTime,
}

impl<'a> RequestView<'a> {
    /// The variables of the request with its URI now `path` (no response yet).
    fn vars(
        &self,
        path: &'a [u8],
        proxy_host: &'a str,
        user: Option<&'a UserVars>,
    ) -> RequestVars<'a> {
        RequestVars {
            method: self.req.method(),
            request_uri: self.target,
            path,
            version: self.req.version(),
            headers: self.req.headers(),
            host: self.host,
            server_name: self.server_name,
            remote: self.info.remote,
            local: self.info.local,
            scheme: "http",
            proxy_host,
            // What has been read of the request so far: its head.
            request_length: self.info.head_bytes.get(),
            connection: self.info.serial,
            connection_requests: self.info.requests.get(),
            start: self.start,
            now: self.start,
            pid: crate::log::pid(),
            hostname: crate::log::hostname(),
            response: None,
            upstream: &[],
            sticky: None,
            user,
        }
    }
}

/// The first `server_name` of a server (`$server_name`).
fn server_name_of(server: &ServerConf) -> &str {
    match server.names.first() {
        Some(ServerName::Exact(n)) => n,
        Some(ServerName::LeadingWildcard { suffix, .. }) => suffix,
        Some(ServerName::TrailingWildcard { prefix }) => prefix,
        Some(ServerName::Regex(re)) => re.as_str(),
        None => "",
    }
}

/// The request target in origin form (`/path?query`): an origin-form URI is
/// moved as is, an absolute-form one (`GET http://host/path`) loses its scheme
/// and authority.
fn origin_form(uri: Uri) -> Option<Uri> {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return Some(uri);
    }
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    pq.parse().ok()
}

/// Why planning stopped short of forwarding (see `Worker::plan_once`).
pub(super) enum Stop<'w> {
    /// A response made at the location (`return`, redirects, the status page).
    Made(Response<ProxyBody>),
    /// A plain error response, no `error_page` applies.
    Plain(Response<ProxyBody>),
    /// An error with an `error_page`: an internal redirect to `uri` (the page's
    /// URI evaluated; empty for a named location) from the URI `path?args`.
    Page {
        status: u16,
        /// The plain error response, should the page not apply after all.
        resp: Response<ProxyBody>,
        conf: &'w LocationConf,
        uri: Vec<u8>,
        path: Vec<u8>,
        args: Option<String>,
    },
}

/// Where and how a request is forwarded (see `Worker::plan`).
struct Plan<'w> {
    server: &'w ServerConf,
    conf: &'w LocationConf,
    pass: &'w ProxyPass,
    set: &'w PeerSet<Transport>,
    /// The upstream target when `proxy_pass` has a URI part.
    uri: Option<Uri>,
    set_headers: headers::SetHeaders,
    /// `$proxy_host` when the `proxy_pass` host has variables.
    proxy_host: Option<String>,
}

/// A request made ready to go out (see `Worker::prepare`).
pub(super) struct Prepared<'w> {
    pub(super) conf: &'w LocationConf,
    pub(super) set: &'w PeerSet<Transport>,
    pub(super) upgrade: bool,
    pub(super) choice: Option<Choice>,
    pub(super) peer: Option<usize>,
    pub(super) request: UpstreamRequest,
    /// The client's body, when it has one.
    pub(super) body: Option<ClientBody>,
    /// Whether the request may be written again after it was sent.
    pub(super) may_resend: bool,
    pub(super) now_unix: i64,
    pub(super) now_instant: Instant,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origin_form_keeps_path_and_query_only() {
        let cases = [
            ("/a/b?c=d", "/a/b?c=d"),
            ("http://example.com/x?y", "/x?y"),
            ("http://example.com", "/"),
            ("/", "/"),
        ];
        for (input, want) in cases {
            let got = origin_form(input.parse().unwrap()).unwrap();
            assert_eq!(got.to_string(), want, "{input}");
        }
    }
}
