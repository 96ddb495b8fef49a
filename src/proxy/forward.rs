//! Where and how a planned request is forwarded to its `proxy_pass`: the
//! upstream (named by the URL when it has variables), the upstream URI, what
//! the balancer and the sticky choice read of the request, the response
//! rewrites and request shaping that read variables, and the headers set for
//! the backend ([`Plan`]).

use std::rc::Rc;
use std::time::Instant;

use http::header;
use http::Uri;

use crate::config::{Balance, Location, LocationConf, ProxyPass, ServerConf};
use crate::proxy::dynamic::{self, Dynamic, Pending};
use crate::proxy::errors::ProxyError;
use crate::proxy::headers;
use crate::proxy::plan::{unix_now, Here, Stop};
use crate::proxy::redirect::{self, Ready};
use crate::proxy::reply::error_response;
use crate::proxy::shape::Shaped;
use crate::proxy::uri;
use crate::proxy::worker::Worker;
use crate::sticky::Choice;
use crate::upstream::balance::{Pick, Tried};
use crate::upstream::client::Transport;
use crate::upstream::peers::PeerSet;
use crate::upstream::stream::ConnKey;
use crate::vars::{self, RequestVars};

impl Worker {
    /// The plan of a request that `here` forwards to `pass`, once the access
    /// phases let it through.
    #[allow(clippy::result_large_err)]
    pub(super) fn forward<'w>(
        &'w self,
        here: &Here<'w, '_>,
        pass: &'w ProxyPass,
    ) -> Result<Plan<'w>, Stop<'w>> {
        let Here {
            server,
            conf,
            location,
            path,
            query,
            tokens,
            ..
        } = *here;
        let req = here.view.req;
        let target = here.view.target;
        let uri_changed = here.state.is_some_and(|s| s.vars.uri.is_some());
        if conf.client_max_body_size > 0 {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > conf.client_max_body_size) {
                return Err(here.fail(
                    413,
                    error_response(ProxyError::PayloadTooLarge, tokens).into(),
                ));
            }
        }
        let mut upstream = pass.upstream;
        let mut proxy_host = None;
        let mut var_uri = None;
        // A host no upstream names: a peer set of the request's own.
        let mut own_set = None;
        let mut lookup = None;
        let mut https = pass.https;
        if let Some(pv) = &pass.vars {
            // `proxy_pass` with variables: the URL now; its host names an
            // upstream, its URI part replaces the request's as it is.
            let url = vars::eval_to_vec(&pv.url, &here.vars(""));
            let url = String::from_utf8_lossy(&url);
            let Some((tls, rest)) = crate::config::build::url_scheme(&url)
                .filter(|(tls, _)| pv.dynamic_scheme || *tls == pass.https)
            else {
                tracing::error!("invalid URL prefix in \"{url}\"");
                return Err(Stop::Plain(
                    error_response(ProxyError::Internal, tokens).into(),
                ));
            };
            https = tls;
            let (host_port, path_part) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            if pv.dynamic_host {
                let named = self.config.http.upstreams.iter();
                match named
                    .clone()
                    .position(|u| u.name.eq_ignore_ascii_case(host_port))
                {
                    Some(i) => upstream = i,
                    None => match dynamic::target(host_port, conf.resolver.as_ref()) {
                        Dynamic::Set(set) => own_set = Some(set),
                        Dynamic::Resolve(set, pending) => {
                            own_set = Some(set);
                            lookup = Some(pending);
                        }
                        Dynamic::Refused(502) => {
                            return Err(here
                                .fail(502, error_response(ProxyError::BadGateway, tokens).into()));
                        }
                        Dynamic::Refused(_) => {
                            return Err(Stop::Plain(
                                error_response(ProxyError::Internal, tokens).into(),
                            ));
                        }
                    },
                }
                proxy_host = Some(host_port.to_string());
            }
            var_uri = (!path_part.is_empty()).then(|| path_part.to_string());
        }
        let Some(set) = own_set.or_else(|| self.upstreams.get(upstream).map(Rc::clone)) else {
            return Err(Stop::Plain(
                error_response(ProxyError::BadGateway, tokens).into(),
            ));
        };
        let host = proxy_host.as_deref().unwrap_or(&pass.proxy_host);
        // TLS to the backend: the settings and the name to verify (and send).
        let key = match conf.proxy_ssl.as_ref().filter(|_| https) {
            None => ConnKey::Plain,
            Some(tls) => {
                let name = match &tls.name {
                    Some(t) => String::from_utf8_lossy(&vars::eval_to_vec(t, &here.vars(host)))
                        .into_owned(),
                    None => host.to_string(),
                };
                match crate::tls::client::server_name(&name) {
                    Some(name) => ConnKey::tls(tls, name),
                    None => {
                        tracing::error!("invalid \"proxy_ssl_name\" \"{name}\"");
                        return Err(
                            here.fail(502, error_response(ProxyError::BadGateway, tokens).into())
                        );
                    }
                }
            }
        };
        // proxy_redirect / proxy_cookie_* rules that read variables: now,
        // while the request's variables are at hand.
        let rewrites = conf.details.reads_variables().then(|| {
            Ready::new(
                &conf.details,
                |t| vars::eval_to_vec(t, &here.vars(host)),
                || redirect::default_for(pass, location),
            )
        });
        // proxy_method / proxy_pass_request_* / proxy_set_body.
        let shaped = if conf.shape.is_default() {
            Shaped::default()
        } else {
            conf.shape
                .evaluate(|t| vars::eval_to_vec(t, &here.vars(host)))
        };
        // What ip_hash / hash read of the request.
        let pick = match &set.conf().balance {
            Balance::IpHash => Pick {
                client: Some(here.view.remote.ip()),
                key: Vec::new(),
            },
            Balance::Hash { key, .. } => Pick {
                client: None,
                key: vars::eval_to_vec(key, &here.vars(host)),
            },
            _ => Pick::default(),
        };
        // The client's target goes out unchanged unless proxy_pass has a URI part
        // or the request was redirected (then its URI now, escaped).
        let redirected_target = uri_changed.then(|| uri::escaped_target(path, query));
        let uri = match (location, pass.uri.as_deref(), redirected_target) {
            _ if var_uri.is_some() => match var_uri.as_deref().map(str::parse::<Uri>) {
                Some(Ok(u)) => Some(u),
                _ => {
                    return Err(Stop::Plain(
                        error_response(ProxyError::BadRequest, tokens).into(),
                    ))
                }
            },
            (Some(loc), Some(base), t) => {
                let target = t.as_deref().unwrap_or(target);
                let mapped = uri::upstream_uri(target, path, &loc.matcher, Some(base));
                match mapped.parse::<Uri>() {
                    Ok(u) => Some(u),
                    Err(_) => {
                        return Err(Stop::Plain(
                            error_response(ProxyError::BadRequest, tokens).into(),
                        ))
                    }
                }
            }
            (_, _, Some(t)) => match t.parse::<Uri>() {
                Ok(u) => Some(u),
                Err(_) => {
                    return Err(Stop::Plain(
                        error_response(ProxyError::BadRequest, tokens).into(),
                    ))
                }
            },
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
                unix_now(here.view.start),
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
                ..here.vars(host)
            };
            headers::eval_set_headers(&conf.proxy_set_headers, &v)
        };
        Ok(Plan {
            server,
            conf,
            pass,
            set,
            lookup,
            uri,
            set_headers,
            proxy_host,
            choice,
            pick,
            location,
            rewrites,
            shaped,
            key,
        })
    }
}

/// Where and how a request is forwarded (see `Worker::plan`).
pub(super) struct Plan<'w> {
    pub(super) server: &'w ServerConf,
    pub(super) conf: &'w LocationConf,
    pub(super) pass: &'w ProxyPass,
    pub(super) set: Rc<PeerSet<Transport>>,
    /// A host to resolve before the request goes out (`set` is empty until then).
    pub(super) lookup: Option<Pending>,
    /// The upstream target when `proxy_pass` has a URI part.
    pub(super) uri: Option<Uri>,
    pub(super) set_headers: headers::SetHeaders,
    /// `$proxy_host` when the `proxy_pass` host has variables.
    pub(super) proxy_host: Option<String>,
    /// The sticky choice, when `proxy_set_header` needed it already.
    pub(super) choice: Option<Choice>,
    /// What the balancing method reads of the request.
    pub(super) pick: Pick,
    pub(super) location: Option<&'w Location>,
    pub(super) rewrites: Option<Ready<'w>>,
    pub(super) shaped: Shaped,
    /// Plain, or TLS with which settings to which name.
    pub(super) key: ConnKey,
}
