//! Planning a request, with no waiting: from its head alone, a proxy-made
//! answer (414, 400, `return`, the trailing-slash redirect, the access
//! phases' refusals, the status pages, files, 404, 413), following internal
//! redirects (`error_page`, named locations, `try_files`), or where and how
//! it is forwarded (`crate::proxy::forward`). What happens next, before it
//! goes out, is `crate::proxy::prepare`.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::access::conf::AuthRequest;
use crate::config::rewrite::{ErrorTarget, Overwrite};
use crate::config::{Expires, Location, LocationConf, ServerConf, ServerName, Template};
use crate::downstream::body::RequestBody;
use crate::downstream::state::ConnState;
use crate::log::AccessRecord;
use crate::proxy::access::{Admitted, Limited};
use crate::proxy::add_headers::ResponseEdits;
use crate::proxy::auth_request;
use crate::proxy::body::ProxyBody;
use crate::proxy::errors::{self, ProxyError, RedirectBase};
use crate::proxy::files::Served;
use crate::proxy::forward::Plan;
use crate::proxy::internal::{self, ErrorPageStep, Internal, Target};
use crate::proxy::locate::{Action, Located};
use crate::proxy::reply::{error_response, full, made};
use crate::proxy::route;
use crate::proxy::uri;
use crate::proxy::view::{real_remote, RequestView};
use crate::proxy::worker::Worker;
use crate::user_vars::UserVars;
use crate::vars::{self, RequestVars};

pub(super) fn unix_now(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Worker {
    /// The plan of a request, following internal redirects (`error_page`, named
    /// locations, `try_files`) until a location answers or forwards it.
    #[allow(clippy::result_large_err, clippy::too_many_arguments)]
    pub(super) fn plan(
        &self,
        info: &ConnState,
        req: &mut Request<RequestBody>,
        start: SystemTime,
        log: &mut Option<Box<AccessRecord>>,
        edits: &mut ResponseEdits,
        state: &mut Option<Box<Internal>>,
        limited: &mut Limited,
    ) -> Result<Plan<'_>, NotPlanned<'_>> {
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
            // The state this pass starts from, to plan it again from there
            // once an auth subrequest ran.
            let before = state.clone();
            let stop = match self.plan_once(info, req, start, log, edits, state, limited) {
                Ok(plan) => return Ok(plan),
                Err(Stop::Auth { conf, auth }) => {
                    *state = before;
                    return Err(NotPlanned::Auth { conf, auth });
                }
                Err(stop) => stop,
            };
            let mut st = state.as_deref_mut();
            if let Some(st) = st.as_deref_mut() {
                st.pending_error = None;
            }
            match stop {
                Stop::Made(mut resp) => {
                    if let Some(code) = st.and_then(|s| s.err_status) {
                        // nginx sets the status before its filters: with
                        // `=200` a file's range, 304 or 412 still answers
                        // as for any 200 (the files module decided them).
                        let conditional = matches!(resp.status().as_u16(), 206 | 304 | 412);
                        if let Ok(status) = StatusCode::from_u16(code) {
                            if !(code == 200 && conditional) {
                                *resp.status_mut() = status;
                            }
                        }
                    }
                    return Err(resp.into());
                }
                Stop::Plain(resp) => {
                    if let Some(st) = st {
                        st.err_status = None;
                    }
                    return Err(resp.into());
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
                        internal::error_page(conf, status, state, &path, args.as_deref(), |_| uri);
                    match step {
                        ErrorPageStep::Redirected => continue,
                        ErrorPageStep::Cycle => {
                            return Err(
                                error_response(ProxyError::Internal, conf.server_tokens).into()
                            )
                        }
                        // Client redirects are made by `plan_once`.
                        ErrorPageStep::None => return Err(resp.into()),
                    }
                }
                Stop::Auth { .. } => {}
                Stop::Redirect {
                    target,
                    path,
                    args,
                    tokens,
                } => {
                    if internal::internal_redirect(state, target, &path, args.as_deref()).is_err() {
                        return Err(error_response(ProxyError::Internal, tokens).into());
                    }
                }
            }
        }
    }

    /// One pass of planning: the server and location for the request's URI now
    /// (or its named location), then what that location does with it.
    #[allow(clippy::result_large_err, clippy::too_many_arguments)]
    fn plan_once(
        &self,
        info: &ConnState,
        req: &Request<RequestBody>,
        start: SystemTime,
        log: &mut Option<Box<AccessRecord>>,
        edits: &mut ResponseEdits,
        state: &mut Option<Box<Internal>>,
        limited: &mut Limited,
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
            Err(e) => return Err(Stop::Plain(error_response(e.into(), true).into())),
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
            None => {
                return Err(Stop::Plain(
                    error_response(ProxyError::Internal, true).into(),
                ))
            }
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
                    return Err(Stop::Plain(resp.into()));
                }
            },
        };
        // The rewrite module's statements see the request with its user
        // variables as they are when a template is evaluated, and the client
        // address the server's realip settings give.
        let (remote, realip_remote) = real_remote(&server.conf, info, req);
        let view = RequestView {
            req,
            info,
            host: &routed.host,
            server_name,
            target,
            start,
            remote,
            realip_remote,
        };
        let eval = |t: &Template, uv: &UserVars| {
            let path = uv.uri.as_ref().map_or(&normalized[..], |(p, _)| p);
            vars::eval_to_vec(t, &view.vars(path, "", Some(uv)))
        };
        let located = self.locate(
            server,
            req.method(),
            state,
            &routed.host,
            &normalized,
            raw_query,
            &eval,
        )?;
        let Located {
            location,
            add_slash,
            conf,
            action,
        } = located;
        // `send_timeout`, `keepalive_timeout` and `keepalive_requests` are
        // the location's (nginx reads them from the location the request
        // ends in), else the request's server's.
        info.location_limits(
            conf.send_timeout.unwrap_or(server.connection.send_timeout),
            conf.keepalive_timeout
                .unwrap_or(server.connection.keepalive_timeout),
            conf.keepalive_requests
                .unwrap_or(server.connection.keepalive_requests),
        );
        // realip: the address the request is treated as coming from, by the
        // settings of the location it landed in.
        let (remote, realip_remote) = real_remote(conf, info, req);
        let view = RequestView {
            remote,
            realip_remote,
            ..view
        };
        // `auth_request_set`, once this location's subrequest ran: set in
        // the access phase, before anything later reads them.
        if let Some(st) = state.as_deref_mut() {
            if let Some(done) = st.auth.as_deref().filter(|d| d.is_for(conf)) {
                let path = st.vars.uri.as_ref().map_or(&normalized[..], |(p, _)| p);
                let vars = view.vars(path, "", Some(&st.vars));
                let values = auth_request::set_values(conf, done, vars);
                for (var, value) in values {
                    st.vars.set(var, value);
                }
            }
        }
        let state = state.as_deref();
        let (path, query): (&[u8], Option<&str>) = match state.and_then(Internal::uri) {
            Some(uri) => uri,
            None => (&normalized, raw_query),
        };
        let here = Here {
            server,
            conf,
            location,
            view,
            path,
            query,
            state,
            tokens: conf.server_tokens,
            local_ip: OnceCell::new(),
        };
        let tokens = here.tokens;
        // `add_header` / `expires` of this location: evaluated now, while the
        // request's headers are here; applied to whatever response it gets.
        *edits = if !conf.add_headers.is_empty() || conf.expires != Expires::Off {
            let proxy_host = conf
                .proxy_pass
                .as_ref()
                .map_or("", |p| p.proxy_host.as_str());
            ResponseEdits::new(conf, &here.vars(proxy_host), std::mem::take(edits))
        } else {
            ResponseEdits::none(std::mem::take(edits))
        };
        if let Some(status) = state.and_then(|s| s.pending_error) {
            let resp = match StatusCode::from_u16(status) {
                Ok(s) => made(errors::MadeResponse::status_page(s, tokens), tokens),
                Err(_) => error_response(ProxyError::Internal, tokens),
            };
            return Err(here.fail(status, resp.into()));
        }
        if log.is_none() && !limited.subrequest {
            if let Some(targets) = self.logs.targets(&conf.access_log) {
                let proxy_host = conf
                    .proxy_pass
                    .as_ref()
                    .map_or("", |p| p.proxy_host.as_str());
                *log = Some(Box::new(AccessRecord::capture(
                    targets,
                    &here.vars(proxy_host),
                )));
            }
        }
        let ret = match action {
            Action::NotFound => {
                return Err(here.fail(404, error_response(ProxyError::NotFound, tokens).into()));
            }
            Action::Redirect(code, url) => {
                return Err(Stop::Made(here.redirect(code, &url).into()))
            }
            Action::Return(ret) => Some(ret),
            Action::None => conf.return_.as_ref(),
        };
        if let Some(ret) = ret {
            let text = ret
                .text
                .as_ref()
                .map(|t| vars::eval_to_vec(t, &here.vars("")));
            let mut resp = match errors::return_response(
                ret.code,
                text.as_deref(),
                &here.redirect_base(),
                tokens,
            ) {
                Some(m) => made(m, tokens),
                None => error_response(ProxyError::Internal, tokens),
            };
            // nginx types what `return` sends itself (its text, or the empty
            // body of a code below 400) as a file of `$uri`: by its extension
            // in `types`, else `default_type` (and `charset`); not a
            // redirect's or an error's page, not a 204.
            let typed = (text.is_some() || ret.code < 400) && ret.code != 204;
            if typed && !errors::is_redirect(ret.code) {
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, conf.files.content_type(path));
            }
            // 444 closes: no `error_page` applies to it, as in nginx.
            if ret.code >= 400 && ret.code != 444 && ret.text.is_none() {
                return Err(here.fail(ret.code, resp.into()));
            }
            return Err(Stop::Made(resp.into()));
        }
        if add_slash {
            // nginx's automatic redirect: `location /app/ { proxy_pass ...; }`
            // answers `/app` with a 301 to `/app/`.
            let to = uri::add_slash_target(path, query);
            return Err(Stop::Made(here.redirect(301, to.as_bytes()).into()));
        }
        let vars = here.vars("");
        let auth_done = state
            .and_then(|s| s.auth.as_deref())
            .filter(|d| d.is_for(conf));
        let access = &conf.access;
        match self.admit(
            access,
            &vars,
            req.headers(),
            remote,
            tokens,
            limited,
            auth_done,
        ) {
            Ok(Admitted::Pass) => {}
            Ok(Admitted::Ask(auth)) => return Err(Stop::Auth { conf, auth }),
            Err(refused) => return Err(here.made_or_fail(refused.into())),
        }
        if conf.access.stub_status {
            return Err(here.made_or_fail(self.stub_status_page(req.method(), tokens).into()));
        }
        if let Some(format) = conf.check_status {
            let (content_type, body) = self.health.status_page(&self.config, query, format);
            let mut resp = full(StatusCode::OK, body, tokens);
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return Err(Stop::Made(resp.into()));
        }
        let Some(pass) = conf.proxy_pass.as_ref() else {
            // No proxy_pass: files from root/alias, as nginx; their internal
            // redirects plan the request again.
            let base = here.redirect_base();
            let err_status = here.state.and_then(|s| s.err_status);
            let target = match self.serve_files(location, conf, req, vars, &base, err_status) {
                Served::Response(resp) => return Err(here.made_or_fail(resp)),
                Served::Redirect(to) => {
                    let (raw, args) = match to.iter().position(|&b| b == b'?') {
                        Some(i) => (
                            to.get(..i).unwrap_or_default(),
                            Some(
                                String::from_utf8_lossy(to.get(i + 1..).unwrap_or_default())
                                    .into_owned(),
                            ),
                        ),
                        None => (&to[..], None),
                    };
                    let path =
                        uri::normalize_path(raw).map_or_else(|_| raw.to_vec(), Cow::into_owned);
                    Target::Uri { path, args }
                }
                Served::Named(name) => Target::Named(format!("@{name}")),
            };
            return Err(Stop::Redirect {
                target,
                path: path.to_vec(),
                args: query.map(str::to_string),
                tokens,
            });
        };
        self.forward(&here, pass)
    }
}

/// One planning pass at the location a request landed in: what the
/// location's answers and its forwarding (`Here::forward`) read.
pub(super) struct Here<'w, 'a> {
    pub(super) server: &'w ServerConf,
    pub(super) conf: &'w LocationConf,
    pub(super) location: Option<&'w Location>,
    pub(super) view: RequestView<'a>,
    /// The request's URI now.
    pub(super) path: &'a [u8],
    pub(super) query: Option<&'a str>,
    pub(super) state: Option<&'a Internal>,
    pub(super) tokens: bool,
    local_ip: OnceCell<String>,
}

impl<'w> Here<'w, '_> {
    /// The request's variables here (no response yet).
    pub(super) fn vars<'s>(&'s self, proxy_host: &'s str) -> RequestVars<'s> {
        self.view
            .vars(self.path, proxy_host, self.state.map(|s| &s.vars))
    }

    /// What a relative redirect made here is completed with.
    fn redirect_base(&self) -> RedirectBase<'_> {
        let view = &self.view;
        let form = self.conf.redirect_form;
        // nginx: Host, else the server's first name, else the local address;
        // `server_name_in_redirect on`: the name first.
        let host: &str = if !view.host.is_empty() && !form.server_name {
            view.host
        } else if !view.server_name.is_empty() {
            view.server_name
        } else if !view.host.is_empty() {
            view.host
        } else {
            self.local_ip
                .get_or_init(|| view.info.local.ip().to_string())
        };
        RedirectBase {
            scheme: view.info.scheme(),
            host,
            port: form.port.then(|| view.info.local.port()),
            absolute: form.absolute,
        }
    }

    /// A redirect of the client with `code` to `url`.
    fn redirect(&self, code: u16, url: &[u8]) -> Response<ProxyBody> {
        match errors::return_response(code, Some(url), &self.redirect_base(), self.tokens) {
            Some(m) => made(m, self.tokens),
            None => error_response(ProxyError::Internal, self.tokens),
        }
    }

    /// An error answered here: its `error_page`, if one applies.
    pub(super) fn fail(&self, status: u16, resp: Box<Response<ProxyBody>>) -> Stop<'w> {
        let Some(page) = internal::page_applies(self.conf, status, self.state) else {
            return Stop::Plain(resp);
        };
        let page_uri = match &page.target {
            ErrorTarget::Uri(t) => vars::eval_to_vec(t, &self.vars("")),
            ErrorTarget::Named(_) => Vec::new(),
            ErrorTarget::Redirect(t) => {
                let url = vars::eval_to_vec(t, &self.vars(""));
                let code = match page.overwrite {
                    Overwrite::Code(c @ (301 | 302 | 303 | 307 | 308)) => c,
                    _ => 302,
                };
                return Stop::Plain(self.redirect(code, &url).into());
            }
        };
        Stop::Page {
            status,
            resp,
            conf: self.conf,
            uri: page_uri,
            path: self.path.to_vec(),
            args: self.query.map(str::to_string),
        }
    }

    /// A response made here: an error status still goes through `error_page`.
    fn made_or_fail(&self, resp: Box<Response<ProxyBody>>) -> Stop<'w> {
        match resp.status().as_u16() {
            status @ 400.. => self.fail(status, resp),
            _ => Stop::Made(resp),
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

/// Why planning stopped short of forwarding (see `Worker::plan_once`).
pub(super) enum Stop<'w> {
    /// A response made at the location (`return`, redirects, the status page).
    /// Boxed, as every response here: it is moved through the planning
    /// steps to the connection, a pointer instead of its 450 bytes.
    Made(Box<Response<ProxyBody>>),
    /// A plain error response, no `error_page` applies.
    Plain(Box<Response<ProxyBody>>),
    /// An error with an `error_page`: an internal redirect to `uri` (the page's
    /// URI evaluated; empty for a named location) from the URI `path?args`.
    Page {
        status: u16,
        /// The plain error response, should the page not apply after all.
        resp: Box<Response<ProxyBody>>,
        conf: &'w LocationConf,
        uri: Vec<u8>,
        path: Vec<u8>,
        args: Option<String>,
    },
    /// An internal redirect from serving files (`try_files`, `index`) to a
    /// location that does not serve files, or to a named location, from the
    /// URI `path?args`.
    Redirect {
        target: Target,
        path: Vec<u8>,
        args: Option<String>,
        tokens: bool,
    },
    /// The access phase of `conf` waits for its `auth_request` subrequest.
    Auth {
        conf: &'w LocationConf,
        auth: &'w AuthRequest,
    },
}

/// Why a request was not planned to go out.
pub(super) enum NotPlanned<'w> {
    /// Answered by the proxy.
    Answer(Box<Response<ProxyBody>>),
    /// Planning waits for the `auth_request` subrequest of `conf`; its
    /// outcome goes into the request's state before it is planned again.
    Auth {
        conf: &'w LocationConf,
        auth: &'w AuthRequest,
    },
}

impl From<Response<ProxyBody>> for NotPlanned<'_> {
    fn from(resp: Response<ProxyBody>) -> Self {
        NotPlanned::Answer(Box::new(resp))
    }
}

impl From<Box<Response<ProxyBody>>> for NotPlanned<'_> {
    fn from(resp: Box<Response<ProxyBody>>) -> Self {
        NotPlanned::Answer(resp)
    }
}
