//! nginx's internal redirects (`ngx_http_internal_redirect` and
//! `ngx_http_named_location`): a request re-enters location matching with a new
//! URI (or goes to a named location), at most [`MAX_URI_CHANGES`] times, after
//! which it is answered 500 as nginx does ("rewrite or internal redirection
//! cycle"). `error_page` decides here whether an error becomes such a redirect.
//!
//! The state lives in an [`Internal`] that a request only gets when it is first
//! redirected: a request that never is pays one `None` check per step.
//! Pure: no I/O, no clock.

use http::{HeaderMap, Uri};

use crate::config::rewrite::{ErrorTarget, Overwrite};
use crate::config::{LocationConf, Template};
use crate::user_vars::UserVars;

/// nginx's `NGX_HTTP_MAX_URI_CHANGES`: redirects a request may take.
pub const MAX_URI_CHANGES: u8 = 10;

/// Where a redirected request goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Location matching again with this (decoded) path and query.
    Uri { path: Vec<u8>, args: Option<String> },
    /// The server's named location (`@name`); URI and method unchanged.
    Named(String),
}

/// How a redirected request entered its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// By location matching on its new URI.
    Uri,
    /// At the named location.
    Named(String),
}

/// The state of a request that was internally redirected.
#[derive(Debug, Clone)]
pub struct Internal {
    /// `None` until the request is first redirected (the state may exist before,
    /// to keep the client's request while it is proxied).
    pub target: Option<Entered>,
    /// The URI now (`vars.uri`: set by a redirect or a rewrite), the user
    /// variables and the regex captures.
    pub vars: UserVars,
    /// Redirects still allowed.
    pub changes_left: u8,
    /// The status the final response is sent with (`error_page` without `=`
    /// or with `=CODE`); `None` keeps the response's own.
    pub err_status: Option<u16>,
    /// An `error_page` was followed and `recursive_error_pages` is off: no
    /// further error page applies.
    pub error_page_used: bool,
    /// The method becomes GET (HEAD stays) before the request re-enters, and
    /// its body is dropped: an `error_page` URI.
    pub to_get: bool,
    /// The client's target and headers, kept while a request that may yet be
    /// redirected by `error_page` is proxied (the proxied request consumes them).
    pub saved: Option<(Uri, HeaderMap)>,
    /// An error the proxy met after planning (a failed or intercepted upstream
    /// response) that has an `error_page`: the request is planned again to the
    /// same location, which answers with this status through its page.
    pub pending_error: Option<u16>,
    /// The outcome of an `auth_request` subrequest, for the planning pass
    /// that reaches its location again (`crate::proxy::auth_request`).
    pub auth: Option<Box<crate::proxy::auth_request::AuthDone>>,
}

impl Internal {
    /// The state of a request not redirected yet.
    pub fn new() -> Internal {
        Internal {
            target: None,
            vars: UserVars::default(),
            changes_left: MAX_URI_CHANGES + 1,
            err_status: None,
            error_page_used: false,
            to_get: false,
            saved: None,
            pending_error: None,
            auth: None,
        }
    }

    /// The URI now, when a redirect or a rewrite changed it.
    pub fn uri(&self) -> Option<(&[u8], Option<&str>)> {
        self.vars
            .uri
            .as_ref()
            .map(|(p, a)| (p.as_slice(), a.as_deref()))
    }

    /// The named location the request was sent to, if any.
    pub fn named(&self) -> Option<&str> {
        match &self.target {
            Some(Entered::Named(name)) => Some(name),
            _ => None,
        }
    }
}

impl Default for Internal {
    fn default() -> Self {
        Internal::new()
    }
}

/// True when an error `status` at `conf` has an `error_page` that applies
/// (nginx: not after a page already followed without `recursive_error_pages`,
/// nor after the redirect limit).
pub fn page_applies<'c>(
    conf: &'c LocationConf,
    status: u16,
    state: Option<&Internal>,
) -> Option<&'c crate::config::rewrite::ErrorPage> {
    if state.is_some_and(|st| st.error_page_used || st.changes_left == 0) {
        return None;
    }
    conf.redirect.error_page(status)
}

/// Why a redirect was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle;

/// Redirects the request to `target` (the one function every internal redirect
/// goes through: `error_page`, named locations, and later `rewrite ... last`,
/// `try_files` and `index`). `path`/`args` are the URI the request has now (used
/// for a named target). `Err(Cycle)` after [`MAX_URI_CHANGES`] redirects: the
/// request must be answered 500.
pub fn internal_redirect(
    state: &mut Option<Box<Internal>>,
    target: Target,
    path: &[u8],
    args: Option<&str>,
) -> Result<(), Cycle> {
    let st = state.get_or_insert_with(Box::default);
    let to = match &target {
        Target::Uri { path, .. } => path.as_slice(),
        Target::Named(name) => name.as_bytes(),
    };
    count_change(st, "internally redirecting to", to)?;
    st.target = Some(match target {
        Target::Uri { path, args } => {
            st.vars.uri = Some((path, args));
            Entered::Uri
        }
        Target::Named(name) => {
            if st.vars.uri.is_none() {
                st.vars.uri = Some((path.to_vec(), args.map(str::to_string)));
            }
            Entered::Named(name)
        }
    });
    Ok(())
}

/// Counts one change of URI (a redirect, or a `rewrite` in a location, after
/// which the locations are matched again): `Err(Cycle)` past
/// [`MAX_URI_CHANGES`], logged as nginx (`rewrite or internal redirection cycle
/// while DOING "URI"`).
pub fn count_change(st: &mut Internal, doing: &str, uri: &[u8]) -> Result<(), Cycle> {
    st.changes_left = st.changes_left.saturating_sub(1);
    if st.changes_left == 0 {
        let uri = String::from_utf8_lossy(uri);
        tracing::error!("rewrite or internal redirection cycle while {doing} \"{uri}\"");
        return Err(Cycle);
    }
    Ok(())
}

/// After proxying: when the error `status` at `conf` has an `error_page`, marks
/// the request to be planned again with that error pending (see
/// [`Internal::pending_error`]) and returns true.
pub fn error_page_pending(
    conf: &LocationConf,
    status: u16,
    state: &mut Option<Box<Internal>>,
) -> bool {
    if page_applies(conf, status, state.as_deref()).is_none() {
        return false;
    }
    let st = state.get_or_insert_with(Box::default);
    st.pending_error = Some(status);
    true
}

/// The status a backend's answer is sent with, or `None` when
/// `proxy_intercept_errors` hands it to an `error_page` (the request is then
/// planned again, see [`error_page_pending`]). A request that was never
/// redirected at a location without `proxy_intercept_errors` takes the first
/// test only.
#[inline]
pub fn answer_status(
    conf: &LocationConf,
    status: http::StatusCode,
    state: &mut Option<Box<Internal>>,
) -> Option<http::StatusCode> {
    if state.is_none() && !conf.redirect.intercept_errors {
        return Some(status);
    }
    answer_status_slow(conf, status, state)
}

#[cold]
fn answer_status_slow(
    conf: &LocationConf,
    status: http::StatusCode,
    state: &mut Option<Box<Internal>>,
) -> Option<http::StatusCode> {
    let code = status.as_u16();
    if conf.redirect.intercept_errors && code >= 300 && error_page_pending(conf, code, state) {
        return None;
    }
    let forced = state.as_ref().and_then(|st| st.err_status);
    Some(
        forced
            .and_then(|c| http::StatusCode::from_u16(c).ok())
            .unwrap_or(status),
    )
}

/// What `error_page` makes of an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPageStep {
    /// No page applies: the plain error response.
    None,
    /// The request was redirected (its state updated): plan it again.
    Redirected,
    /// The redirect cycle limit was hit: 500.
    Cycle,
}

/// nginx's `ngx_http_special_response_handler` with `error_page`: whether the
/// error `status` of a request at location `conf` becomes an internal redirect
/// (a page that redirects the client, `error_page 404 http://...`, is made by
/// the planner, which has the request's redirect base; it is `None` here). `path`/`args` are the request's URI now; `eval` gives
/// the value of a template (the page URI may have variables).
pub fn error_page(
    conf: &LocationConf,
    status: u16,
    state: &mut Option<Box<Internal>>,
    path: &[u8],
    args: Option<&str>,
    eval: impl FnOnce(&Template) -> Vec<u8>,
) -> ErrorPageStep {
    let Some(page) = page_applies(conf, status, state.as_deref()) else {
        return ErrorPageStep::None;
    };
    let err_status = match page.overwrite {
        Overwrite::Keep => Some(status),
        Overwrite::Page => None,
        Overwrite::Code(c) => Some(c),
    };
    let (target, to_get) = match &page.target {
        ErrorTarget::Uri(t) => {
            let uri = eval(t);
            let (p, a) = match uri.iter().position(|&b| b == b'?') {
                Some(i) => (
                    uri.get(..i).unwrap_or_default().to_vec(),
                    Some(
                        String::from_utf8_lossy(uri.get(i + 1..).unwrap_or_default()).into_owned(),
                    ),
                ),
                None => (uri, None),
            };
            (Target::Uri { path: p, args: a }, true)
        }
        ErrorTarget::Named(name) => (Target::Named(name.clone()), false),
        ErrorTarget::Redirect(_) => return ErrorPageStep::None,
    };
    if internal_redirect(state, target, path, args).is_err() {
        return ErrorPageStep::Cycle;
    }
    if let Some(st) = state.as_deref_mut() {
        st.err_status = err_status;
        st.to_get = to_get;
        st.error_page_used = !conf.redirect.recursive_error_pages;
    }
    ErrorPageStep::Redirected
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_redirect_is_a_cycle() {
        let mut state = None;
        for i in 0..MAX_URI_CHANGES {
            let target = Target::Uri {
                path: format!("/{i}").into_bytes(),
                args: None,
            };
            assert_eq!(
                internal_redirect(&mut state, target, b"/", None),
                Ok(()),
                "{i}"
            );
        }
        let st = state.as_deref().unwrap();
        assert_eq!(st.uri(), Some((&b"/9"[..], None)));
        assert_eq!(
            internal_redirect(&mut state, Target::Named("@x".into()), b"/", None),
            Err(Cycle)
        );
    }

    #[test]
    fn a_named_target_keeps_the_uri() {
        let mut state = None;
        internal_redirect(&mut state, Target::Named("@x".into()), b"/a b", Some("q=1")).unwrap();
        let st = state.as_deref().unwrap();
        assert_eq!(st.uri(), Some((&b"/a b"[..], Some("q=1"))));
        assert_eq!(st.target, Some(Entered::Named("@x".into())));
    }
}
