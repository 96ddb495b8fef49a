//! Planning a request, with no waiting: from its head alone, a proxy-made
//! answer (414, 400, `return`, the trailing-slash redirect, the status page,
//! 404, 413) or where and how it is forwarded ([`Plan`]); then everything
//! before it goes out ([`Prepared`]): the upstream URI, the sticky request
//! side (decode, decide, strip), the upstream headers, and the encoded head.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};

use crate::compress::ClientFacts;
use crate::config::{Balance, Expires, Location, LocationConf, ProxyPass, ServerConf, ServerName};
use crate::downstream::body::RequestBody;
use crate::downstream::state::ConnState;
use crate::http1::framing::{BodyFraming, RequestFraming};
use crate::http1::names::Spelling;
use crate::http1::request::encode_request_head;
use crate::log::AccessRecord;
use crate::proxy::access::Admission;
use crate::proxy::add_headers::ResponseEdits;
use crate::proxy::attempt::idempotent;
use crate::proxy::body::{ClientBody, ProxyBody};
use crate::proxy::errors::{self, ProxyError, RedirectBase};
use crate::proxy::exchange::{head_capacity, UpstreamRequest};
use crate::proxy::files::{unconnected_redirect, Served};
use crate::proxy::handler::note_sticky;
use crate::proxy::headers::{self, UpstreamConnection};
use crate::proxy::redirect::{self, Ready};
use crate::proxy::reply::{error_response, full, made};
use crate::proxy::route::{self, Lookup};
use crate::proxy::shape::{BodySource, Shaped};
use crate::proxy::uri;
use crate::proxy::worker::Worker;
use crate::sticky::Choice;
use crate::upstream::balance::{Pick, Tried};
use crate::upstream::client::Transport;
use crate::upstream::peers::PeerSet;
use crate::vars::{self, RequestVars};

pub(super) fn unix_now(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Worker {
    #[allow(clippy::result_large_err)]
    fn plan(
        &self,
        info: &ConnState,
        req: &Request<RequestBody>,
        start: SystemTime,
        log: &mut Option<Box<AccessRecord>>,
        edits: &mut ResponseEdits,
    ) -> Result<Plan<'_>, Response<ProxyBody>> {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        // The request line's authority wins over the Host header (nginx, RFC 9112
        // section 3.2.2); the Host header is still validated.
        let host = route::named_host(
            req.uri().authority().map(|a| a.as_str().as_bytes()),
            req.headers().get(header::HOST).map(HeaderValue::as_bytes),
        );
        let routed = match host.and_then(|host| self.router.server(info.listen, host)) {
            Ok(r) => r,
            Err(e) => return Err(error_response(e.into(), true)),
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
            None => return Err(error_response(ProxyError::Internal, true)),
        };
        let (raw_path, _) = uri::split_query(target);
        let path = match uri::normalize_path(raw_path.as_bytes()) {
            Ok(p) => p,
            Err(e) => return Err(error_response(e.into(), server.conf.server_tokens)),
        };
        let (location, add_slash) = match route::lookup_location(&server.locations, &path) {
            Lookup::Location(loc) => (Some(loc), false),
            Lookup::AddSlash(loc) => (Some(loc), true),
            Lookup::NoMatch => (None, false),
        };
        let conf: &LocationConf = location.map_or(&server.conf, |l| &l.conf);
        let tokens = conf.server_tokens;
        // realip: the address the request is treated as coming from.
        let realip = conf
            .access
            .realip
            .as_ref()
            .and_then(|r| crate::access::realip::real_addr(r, info.remote, req.headers()));
        let remote = realip.unwrap_or(info.remote);
        let server_name = server_name_of(server);
        let local_ip: std::cell::OnceCell<String> = std::cell::OnceCell::new();
        let scheme = if info.is_tls() { "https" } else { "http" };
        let redirect_base = || {
            let host: &str = if !routed.host.is_empty() {
                &routed.host
            } else if !server_name.is_empty() {
                server_name
            } else {
                local_ip.get_or_init(|| info.local.ip().to_string())
            };
            RedirectBase {
                scheme,
                host,
                port: info.local.port(),
            }
        };
        let vars = |proxy_host| RequestVars {
            method: req.method(),
            request_uri: target,
            path: &path,
            version: req.version(),
            headers: req.headers(),
            host: &routed.host,
            server_name,
            remote,
            realip_remote: realip.map(|_| info.remote),
            local: info.local,
            scheme,
            tls: info.tls(),
            proxy_host,
            // What has been read of the request so far: its head.
            request_length: info.head_bytes.get(),
            connection: info.serial,
            connection_requests: info.requests.get(),
            start,
            now: start,
            pid: crate::log::pid(),
            hostname: crate::log::hostname(),
            response: None,
            upstream: &[],
            sticky: None,
        };
        // A server-level `return` answers before any location (nginx's server
        // rewrite phase): the server's own `add_header`/`expires` apply to it.
        let edit_conf: &LocationConf = if server.return_.is_some() {
            &server.conf
        } else {
            conf
        };
        if !edit_conf.add_headers.is_empty() || edit_conf.expires != Expires::Off {
            // Evaluated now, while the request's headers are here; applied to
            // whatever response this request gets.
            let proxy_host = edit_conf
                .proxy_pass
                .as_ref()
                .map_or("", |p| p.proxy_host.as_str());
            *edits = ResponseEdits::new(edit_conf, &vars(proxy_host));
        }
        if let Some(targets) = self.logs.targets(&conf.access_log) {
            let proxy_host = conf
                .proxy_pass
                .as_ref()
                .map_or("", |p| p.proxy_host.as_str());
            *log = Some(Box::new(AccessRecord::capture(targets, &vars(proxy_host))));
        }
        if let Some(ret) = server.return_.as_ref().or(conf.return_.as_ref()) {
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
            return Err(resp);
        }
        if add_slash {
            // nginx's automatic redirect: `location /app/ { proxy_pass ...; }`
            // answers `/app` with a 301 to `/app/`.
            let (_, query) = uri::split_query(target);
            let to = uri::add_slash_target(&path, query);
            let resp =
                match errors::return_response(301, Some(to.as_bytes()), &redirect_base(), tokens) {
                    Some(m) => made(m, tokens),
                    None => error_response(ProxyError::Internal, tokens),
                };
            return Err(resp);
        }
        let admission = self.admit(&conf.access, &vars(""), req.headers(), remote, tokens)?;
        if conf.access.stub_status {
            return Err(self.stub_status_page(req.method(), tokens));
        }
        if let Some(format) = conf.check_status {
            let (_, query) = uri::split_query(target);
            let (content_type, body) = self.health.status_page(&self.config, query, format);
            let mut resp = full(StatusCode::OK, body, tokens);
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return Err(resp);
        }
        let Some(pass) = conf.proxy_pass.as_ref() else {
            // No proxy_pass: files from root/alias, as nginx.
            return Err(
                match self.serve_files(server, location, conf, req, vars(""), &redirect_base()) {
                    Served::Response(resp) => *resp,
                    Served::Redirect(to) => unconnected_redirect(&to, tokens),
                    Served::Named(name) => {
                        unconnected_redirect(format!("@{name}").as_bytes(), tokens)
                    }
                },
            );
        };
        if conf.client_max_body_size > 0 {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > conf.client_max_body_size) {
                return Err(error_response(ProxyError::PayloadTooLarge, tokens));
            }
        }
        let Some(set) = self.upstreams.get(pass.upstream).map(Rc::as_ref) else {
            return Err(error_response(ProxyError::BadGateway, tokens));
        };
        // proxy_redirect / proxy_cookie_* rules that read variables: now,
        // while the request's variables are at hand.
        let rewrites = conf.details.reads_variables().then(|| {
            Ready::new(
                &conf.details,
                |t| vars::eval_to_vec(t, &vars(&pass.proxy_host)),
                || redirect::default_for(pass, location),
            )
        });
        // proxy_method / proxy_pass_request_* / proxy_set_body.
        let shaped = if conf.shape.is_default() {
            Shaped::default()
        } else {
            conf.shape
                .evaluate(|t| vars::eval_to_vec(t, &vars(&pass.proxy_host)))
        };
        // What ip_hash / hash read of the request.
        let pick = match &set.conf().balance {
            Balance::IpHash => Pick {
                client: Some(remote.ip()),
                key: Vec::new(),
            },
            Balance::Hash { key, .. } => Pick {
                client: None,
                key: vars::eval_to_vec(key, &vars(&pass.proxy_host)),
            },
            _ => Pick::default(),
        };
        // The client's target goes out unchanged unless proxy_pass has a URI part.
        let uri = match (location, pass.uri.as_deref()) {
            (Some(loc), Some(base)) => {
                let mapped = uri::upstream_uri(target, &path, &loc.matcher, Some(base));
                match mapped.parse::<Uri>() {
                    Ok(u) => Some(u),
                    Err(_) => return Err(error_response(ProxyError::BadRequest, tokens)),
                }
            }
            _ => None,
        };
        // `$sticky_*` in proxy_set_header: the sticky peer is decided here,
        // from the headers as received; `prepare` then only strips.
        let sticky_first = set.sticky().filter(|_| {
            conf.proxy_set_headers
                .iter()
                .any(|(_, t)| vars::uses_sticky(t))
        });
        let choice = sticky_first.map(|sticky| {
            let now = Instant::now();
            let tried = Tried::new();
            sticky.decide_request(
                req.headers(),
                unix_now(start),
                |i| set.is_up(i, now),
                |exclude| set.choose(exclude, &tried, now, &pick),
            )
        });
        let set_headers = if conf.proxy_set_headers.is_empty() {
            Vec::new()
        } else {
            let sticky = sticky_first
                .zip(choice.as_ref())
                .map(|(s, c)| vars::StickyVars {
                    sid: s.sid(c).unwrap_or_default(),
                    status: c.outcome.as_str(),
                    learned: s.learned_name(c, None).unwrap_or_default(),
                });
            let v = RequestVars {
                sticky,
                ..vars(&pass.proxy_host)
            };
            headers::eval_set_headers(&conf.proxy_set_headers, &v)
        };
        Ok(Plan {
            server,
            conf,
            pass,
            set,
            uri,
            set_headers,
            choice,
            admission,
            pick,
            location,
            rewrites,
            shaped,
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
        edits: &mut ResponseEdits,
    ) -> Result<Prepared<'_>, Response<ProxyBody>> {
        let start = SystemTime::now();
        let Plan {
            server,
            conf,
            pass,
            set,
            uri: mapped_uri,
            set_headers,
            choice: decided,
            admission,
            pick,
            location,
            rewrites,
            shaped,
        } = self.plan(info, req, start, log, edits)?;
        let tokens = conf.server_tokens;
        let upgrade = headers::wants_upgrade(req.headers());
        // What compression needs of the request, before its headers go out.
        let compress = conf.compress.enabled().then(|| {
            ClientFacts::of(
                req.headers(),
                req.version(),
                req.method() == Method::HEAD,
                &conf.compress,
            )
        });
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
        let choice = set.sticky().map(|sticky| match decided {
            Some(choice) => {
                sticky.strip(headers);
                choice
            }
            None => sticky.on_request(
                headers,
                now_unix,
                |i| set.is_up(i, now_instant),
                |exclude| set.choose(exclude, &tried, now_instant, &pick),
            ),
        });
        note_sticky(log, set, choice.as_ref());
        if !shaped.pass_headers {
            // proxy_pass_request_headers off: only what proxy_set_header sets.
            headers.clear();
        }
        headers::to_upstream_request(headers, set_headers, &pass.proxy_host, connection_mode);
        let peer = match choice.map(|c| c.decision) {
            Some(d) => d.peer(),
            None => set.choose(None, &tried, now_instant, &pick),
        };
        let (framing, body) = match shaped.body {
            BodySource::Client => {
                let framing = match req.body().framing() {
                    BodyFraming::None => RequestFraming::None,
                    BodyFraming::Length(n) => RequestFraming::Length(n),
                    BodyFraming::Chunked => RequestFraming::Chunked,
                };
                // The body is read (streamed on): a 100 Continue is due, as nginx.
                req.body().want();
                let body = std::mem::replace(req.body_mut(), RequestBody::empty());
                let body_timeout = conf
                    .client_body_timeout
                    .unwrap_or(server.connection.client_body_timeout);
                let body = ClientBody::stream(body, conf.client_max_body_size, body_timeout);
                (framing, body)
            }
            // The client's body is left unread (the connection drains or
            // closes it).
            BodySource::None => (RequestFraming::None, ClientBody::fixed(bytes::Bytes::new())),
            BodySource::Fixed(bytes) => {
                let n = bytes.len() as u64;
                let framing = if n == 0 {
                    RequestFraming::None
                } else {
                    RequestFraming::Length(n)
                };
                (framing, ClientBody::fixed(bytes))
            }
        };
        let method = shaped.method.as_ref().unwrap_or(req.method());
        let target = up_uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = crate::reuse::vec(head_capacity(target, req.headers()));
        // The client's lines keep its spelling, ours are written as
        // configured or as nginx writes them.
        let received = info.request_head.take().unwrap_or_default();
        let configured =
            |name: &HeaderName| headers::configured_name(&conf.proxy_set_headers, name);
        let names = Spelling {
            received: &received,
            configured: (!conf.proxy_set_headers.is_empty()).then_some(&configured),
        };
        encode_request_head(&mut head, method, target, req.headers(), framing, &names);
        drop(received);
        let head_request = method == Method::HEAD;
        let may_resend_method = conf.proxy_next_upstream.non_idempotent || idempotent(method);
        // The headers are in `head` now.
        crate::reuse::give_map(std::mem::take(req.headers_mut()));
        let request = UpstreamRequest {
            head,
            framing,
            head_request,
        };
        let has_body = !body.is_empty();
        // A bodyless request can be written again after it was sent: once on a
        // fresh connection when a pooled one turns out dead, and on another peer
        // per proxy_next_upstream (never away from a pinned peer with
        // fallback=off). A streamed body cannot be sent twice.
        let may_resend = !has_body && may_resend_method;
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
            compress,
            admission,
            pick,
            location,
            rewrites,
        })
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

/// Where and how a request is forwarded (see `Worker::plan`).
struct Plan<'w> {
    server: &'w ServerConf,
    conf: &'w LocationConf,
    pass: &'w ProxyPass,
    set: &'w PeerSet<Transport>,
    /// The upstream target when `proxy_pass` has a URI part.
    uri: Option<Uri>,
    set_headers: headers::SetHeaders,
    /// The sticky choice, when `proxy_set_header` needed it already.
    choice: Option<Choice>,
    /// What the access phases let through (limit_req delay, limit_conn counts).
    admission: Admission,
    /// What the balancing method reads of the request.
    pick: Pick,
    location: Option<&'w Location>,
    rewrites: Option<Ready<'w>>,
    shaped: Shaped,
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
    /// The request's side of compression, when the location compresses.
    pub(super) compress: Option<ClientFacts>,
    pub(super) admission: Admission,
    pub(super) pick: Pick,
    /// The matched location (`proxy_redirect default`).
    pub(super) location: Option<&'w Location>,
    /// The response rewrites evaluated for this request, when they read
    /// variables.
    pub(super) rewrites: Option<Ready<'w>>,
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
