//! Everything about a request that happens before it goes out, with no
//! waiting ([`Prepared`]): the plan (`crate::proxy::plan`), the upstream URI,
//! the sticky request side (decode, decide, strip), the upstream headers and
//! the encoded request head, the request body as it goes out.

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use http::header::HeaderName;
use http::{Method, Request, Uri};

use crate::compress::ClientFacts;
use crate::config::{Location, LocationConf};
use crate::downstream::body::RequestBody;
use crate::downstream::state::ConnState;
use crate::http1::framing::{BodyFraming, RequestFraming};
use crate::http1::names::Spelling;
use crate::http1::request::encode_request_head;
use crate::log::AccessRecord;
use crate::proxy::access::Limited;
use crate::proxy::add_headers::ResponseEdits;
use crate::proxy::attempt::idempotent;
use crate::proxy::body::ClientBody;
use crate::proxy::dynamic::Pending;
use crate::proxy::errors::ProxyError;
use crate::proxy::exchange::{head_capacity, UpstreamRequest};
use crate::proxy::forward::Plan;
use crate::proxy::handler::note_sticky;
use crate::proxy::headers::{self, UpstreamConnection};
use crate::proxy::internal::Internal;
use crate::proxy::plan::{unix_now, NotPlanned};
use crate::proxy::redirect::Ready;
use crate::proxy::reply::error_response;
use crate::proxy::shape::BodySource;
use crate::proxy::worker::Worker;
use crate::sticky::Choice;
use crate::upstream::balance::{Pick, Tried};
use crate::upstream::client::Transport;
use crate::upstream::peers::PeerSet;

impl Worker {
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
        state: &mut Option<Box<Internal>>,
        limited: &mut Limited,
    ) -> Result<Prepared<'_>, NotPlanned<'_>> {
        let start = SystemTime::now();
        let Plan {
            server,
            conf,
            pass,
            set,
            lookup,
            uri: mapped_uri,
            set_headers,
            proxy_host,
            choice: decided,
            pick,
            location,
            rewrites,
            shaped,
            key,
        } = self.plan(info, req, start, log, edits, state, limited)?;
        let tokens = conf.server_tokens;
        if !conf.redirect.error_pages.is_empty() {
            // An error met while proxying may still send the request to an
            // `error_page`, which plans the client's request again.
            let st = state.get_or_insert_with(Box::default);
            st.saved = Some((req.uri().clone(), req.headers().clone()));
        }
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
                None => return Err(error_response(ProxyError::BadRequest, tokens).into()),
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
        note_sticky(log, &set, choice.as_ref());
        if !shaped.pass_headers {
            // proxy_pass_request_headers off: only what proxy_set_header sets.
            headers.clear();
        }
        let proxy_host = proxy_host.as_deref().unwrap_or(&pass.proxy_host);
        headers::to_upstream_request(headers, set_headers, proxy_host, connection_mode);
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
        // A subrequest goes out as GET (nginx), its `$request_method` the
        // client's.
        let method = match &shaped.method {
            Some(m) => m,
            None if limited.subrequest => &Method::GET,
            None => req.method(),
        };
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
            key,
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
            lookup,
            upgrade,
            choice,
            peer,
            request,
            body: has_body.then_some(body),
            may_resend,
            now_unix,
            now_instant,
            compress,
            pick,
            location,
            rewrites,
        })
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

/// A request made ready to go out (see `Worker::prepare`).
pub(super) struct Prepared<'w> {
    pub(super) conf: &'w LocationConf,
    pub(super) set: Rc<PeerSet<Transport>>,
    /// A host to resolve before the request goes out (see `Plan::lookup`).
    pub(super) lookup: Option<Pending>,
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
