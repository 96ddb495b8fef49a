//! nginx's `auth_request` (ngx_http_auth_request_module): in the access
//! phase, a subrequest to the configured URI decides whether the request goes
//! on. The subrequest runs through the same pipeline as any request
//! ([`Worker::run`]), as nginx runs it: location matching from the URI (an
//! `internal` location may answer), the rewrite and preaccess phases (the
//! limits only where its main request has not checked them), no access phase,
//! no access-log line, method `GET` to the backend (`$request_method` stays
//! the client's), the client's headers, no body. Its response body is
//! dropped.
//!
//! The verdict ([`AuthVerdict`]): a 2xx allows, 401 and 403 are returned (a 401
//! with the subrequest's `WWW-Authenticate` lines), anything else (a backend
//! that fails or times out answers 502/504 here) is a 500.
//!
//! How the request path resumes: planning stops at the access phase of a
//! location with `auth_request` (`Stop::Auth`), with the request's internal
//! state as it was before that planning pass; the handler runs the
//! subrequest, records its outcome in the state ([`AuthDone`]) and plans the
//! request again, which reaches the same location and finds the outcome:
//! `auth_request_set` values are set there, and the access phase decides.

use std::rc::Rc;

use http::header;
use http::{HeaderMap, Request};

use crate::access::conf::AuthRequest;
use crate::config::LocationConf;
use crate::downstream::body::RequestBody;
use crate::downstream::state::ConnState;
use crate::proxy::access::Limited;
use crate::proxy::errors::ProxyError;
use crate::proxy::internal::{self, Internal, Target};
use crate::proxy::reply::error_response;
use crate::proxy::worker::Worker;
use crate::vars::{self, RequestVars, ResponseVars};

/// The outcome of a location's auth subrequest, kept in the request's
/// [`Internal`] state until the request is planned again.
#[derive(Debug, Clone)]
pub struct AuthDone {
    /// The location settings it was made for (identity only, never read
    /// through).
    conf: *const LocationConf,
    /// The subrequest's response status and headers.
    pub status: u16,
    pub headers: HeaderMap,
}

/// What a subrequest's status means for its main request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    Allowed,
    /// 401 or 403.
    Refused(u16),
    /// Any other status: the request is answered 500.
    Error,
}

impl AuthDone {
    /// True when this outcome was made for the location settings `conf`.
    pub fn is_for(&self, conf: &LocationConf) -> bool {
        std::ptr::eq(self.conf, conf)
    }

    /// nginx's reading of the subrequest's status.
    pub fn verdict(&self) -> AuthVerdict {
        verdict(self.status)
    }

    /// Adds the subrequest's `WWW-Authenticate` lines to `headers` (a 401).
    pub fn copy_challenge(&self, headers: &mut HeaderMap) {
        for v in self.headers.get_all(header::WWW_AUTHENTICATE) {
            headers.append(header::WWW_AUTHENTICATE, v.clone());
        }
    }
}

/// nginx's reading of an auth subrequest's `status`.
pub fn verdict(status: u16) -> AuthVerdict {
    match status {
        200..=299 => AuthVerdict::Allowed,
        401 | 403 => AuthVerdict::Refused(status),
        _ => {
            tracing::error!("auth request unexpected status: {status}");
            AuthVerdict::Error
        }
    }
}

/// `auth_request_set`: the values of the location's variables from the
/// outcome `done` (to be set in the request's user variables), each
/// evaluated with `vars` (the main request's variables) and the subrequest's
/// response (`$upstream_http_*`, `$sent_http_*`, `$status`). Set whatever the
/// verdict, as nginx.
pub fn set_values(
    conf: &LocationConf,
    done: &AuthDone,
    vars: RequestVars<'_>,
) -> Vec<(u16, Vec<u8>)> {
    let sets = &conf.access.auth_request_set;
    if sets.is_empty() {
        return Vec::new();
    }
    let vars = RequestVars {
        response: Some(ResponseVars {
            status: done.status,
            headers: &done.headers,
            body_bytes_sent: 0,
            bytes_sent: 0,
        }),
        upstream_headers: Some(&done.headers),
        ..vars
    };
    sets.iter()
        .map(|s| (s.var, vars::eval_to_vec(&s.value, &vars)))
        .collect()
}

/// The subrequest for `auth` of the main request `main` (its method kept for
/// `$request_method`, its headers, no body, no upgrade).
fn subrequest(main: &Request<RequestBody>) -> Request<RequestBody> {
    let mut sub = Request::new(RequestBody::empty());
    *sub.method_mut() = main.method().clone();
    *sub.uri_mut() = main.uri().clone();
    *sub.version_mut() = main.version();
    let mut headers = main.headers().clone();
    // Never a tunnel.
    headers.remove(header::UPGRADE);
    *sub.headers_mut() = headers;
    sub
}

impl Worker {
    /// Runs the auth subrequest of the location `conf` for the main request
    /// `main`, whose limits so far are `limited`: its outcome, to be put in
    /// the main request's state.
    pub(super) async fn auth_subrequest(
        self: Rc<Self>,
        conn: Rc<ConnState>,
        main: &Request<RequestBody>,
        conf: &LocationConf,
        auth: &AuthRequest,
        limited: &mut Limited,
    ) -> AuthDone {
        let mut sub = subrequest(main);
        let mut state: Option<Box<Internal>> = None;
        let target = Target::Uri {
            path: auth.path.as_bytes().to_vec(),
            args: auth.args.clone(),
        };
        // Entered as an internal redirect: `internal` locations answer it.
        let resp = match internal::internal_redirect(&mut state, target, b"", None) {
            Ok(()) => {
                // The client's header spelling serves the main request's own
                // head again.
                let head = conn.request_head.take();
                conn.request_head.set(head.clone());
                let mut sub_limited = limited.for_subrequest();
                let resp =
                    Box::pin(self.run(Rc::clone(&conn), &mut sub, &mut sub_limited, state)).await;
                limited.checked_by(&sub_limited);
                conn.request_head.set(head);
                resp
            }
            Err(_) => Box::new(error_response(ProxyError::Internal, true)),
        };
        let (parts, body) = resp.into_parts();
        // The subrequest's body is not sent anywhere (nginx: header only).
        drop(body);
        AuthDone {
            conf,
            status: parts.status.as_u16(),
            headers: parts.headers,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn statuses_read_as_nginx() {
        let cases = [
            (200, AuthVerdict::Allowed),
            (204, AuthVerdict::Allowed),
            (299, AuthVerdict::Allowed),
            (401, AuthVerdict::Refused(401)),
            (403, AuthVerdict::Refused(403)),
            (301, AuthVerdict::Error),
            (404, AuthVerdict::Error),
            (500, AuthVerdict::Error),
            (502, AuthVerdict::Error),
            (504, AuthVerdict::Error),
            (100, AuthVerdict::Error),
        ];
        for (status, want) in cases {
            assert_eq!(verdict(status), want, "{status}");
        }
    }

    #[test]
    fn a_challenge_is_copied_line_by_line() {
        let mut sub = HeaderMap::new();
        sub.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer a"),
        );
        sub.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic b"),
        );
        sub.append(header::SERVER, HeaderValue::from_static("x"));
        let done = AuthDone {
            conf: std::ptr::null(),
            status: 401,
            headers: sub,
        };
        let mut out = HeaderMap::new();
        done.copy_challenge(&mut out);
        let got: Vec<_> = out.get_all(header::WWW_AUTHENTICATE).iter().collect();
        assert_eq!(got, ["Bearer a", "Basic b"]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn the_subrequest_keeps_method_and_headers_without_body_or_upgrade() {
        let mut main = Request::new(RequestBody::empty());
        *main.method_mut() = http::Method::POST;
        *main.uri_mut() = "/a?b=1".parse().unwrap();
        main.headers_mut()
            .insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        main.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let sub = subrequest(&main);
        assert_eq!(sub.method(), http::Method::POST);
        assert_eq!(sub.uri(), "/a?b=1");
        assert_eq!(
            sub.headers().get(header::AUTHORIZATION).unwrap(),
            "Bearer t"
        );
        assert!(sub.headers().get(header::UPGRADE).is_none());
    }
}
