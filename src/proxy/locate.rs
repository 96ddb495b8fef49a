//! nginx's phases between a request's head and what answers it: the server's
//! rewrite statements (or its `return`), location matching (or the named
//! location an internal redirect names), the settings of `limit_except` for
//! the methods it restricts, `internal`, the captures of a
//! `location ~`, and the location's rewrite statements, matched again after
//! each `rewrite` that changes the URI. A request that meets no statement and
//! no capture allocates nothing here.

use crate::access::limit_except;
use crate::config::{Location, LocationConf, LocationMatch, Return, ServerConf};
use crate::proxy::errors::ProxyError;
use crate::proxy::internal::{self, Entered, Internal};
use crate::proxy::plan::Stop;
use crate::proxy::reply::error_response;
use crate::proxy::route::{self, Lookup};
use crate::proxy::script::{self, Flow};
use crate::proxy::worker::Worker;

impl Worker {
    /// nginx's phases up to the content: the server's rewrite statements (or its
    /// `return`), location matching (or the named location), `internal`, and the
    /// location's rewrite statements, again after each `rewrite` that changes
    /// the URI (at most [`internal::MAX_URI_CHANGES`] times). A request meeting
    /// no statement allocates nothing here.
    #[allow(clippy::result_large_err, clippy::too_many_arguments)]
    pub(super) fn locate<'w>(
        &'w self,
        server: &'w ServerConf,
        method: &http::Method,
        state: &mut Option<Box<Internal>>,
        host: &str,
        normalized: &[u8],
        raw_query: Option<&str>,
        eval: &script::Eval<'_>,
    ) -> Result<Located<'w>, Stop<'w>> {
        let pending = state.as_deref().is_some_and(|s| s.pending_error.is_some());
        let entered_named = state.as_deref().and_then(Internal::named).is_some();
        // The groups of a `server_name ~regex` that matches the host.
        for p in server.conf.redirect.name_patterns.iter() {
            if let Some(caps) = p.re.captures(host) {
                let st = state.get_or_insert_with(Box::default);
                st.vars.matched(host, &caps, &p.named);
                break;
            }
        }
        let mut action = Action::None;
        if !pending && !entered_named {
            let server_script = &server.conf.redirect.script;
            if !server_script.is_empty() {
                let st = state.get_or_insert_with(Box::default);
                let log = server.conf.redirect.rewrite_log;
                let ran = script::run(
                    server_script,
                    &mut st.vars,
                    normalized,
                    raw_query,
                    eval,
                    log,
                );
                if st.vars.uri.is_some() {
                    st.target = Some(Entered::Uri);
                }
                action = match ran.flow {
                    Flow::Return(r) => Action::Return(r),
                    Flow::Redirect { code, url } => Action::Redirect(code, url),
                    Flow::Last | Flow::Done { .. } => Action::None,
                };
            } else if let Some(r) = &server.return_ {
                action = Action::Return(r);
            }
            if !matches!(action, Action::None) {
                // Answered in the server's rewrite phase, before any location
                // is found: the server's settings apply (`add_header`, ...).
                return Ok(Located {
                    location: None,
                    add_slash: false,
                    conf: &server.conf,
                    action,
                });
            }
        }
        loop {
            let st = state.as_deref();
            let (path, _) = st
                .and_then(Internal::uri)
                .unwrap_or((normalized, raw_query));
            let (location, add_slash, conf) = match st.and_then(Internal::named) {
                Some(name) => match server.named.iter().find(|n| n.name == name) {
                    Some(n) => (None, false, &*n.conf),
                    None => {
                        tracing::error!("could not find named location \"{name}\"");
                        let resp = error_response(ProxyError::Internal, server.conf.server_tokens);
                        return Err(Stop::Plain(resp.into()));
                    }
                },
                None => match route::lookup_location(&server.locations, path) {
                    Lookup::Location(loc) => (Some(loc), false, &*loc.conf),
                    Lookup::AddSlash(loc) => (Some(loc), true, &*loc.conf),
                    Lookup::NoMatch => (None, false, &*server.conf),
                },
            };
            // `limit_except`: another method gets the block's settings before
            // the location's rewrite statements (which the block has none of).
            let conf = limit_except::conf_for(conf, method);
            if let (Some(loc), Some(named)) = (location, &conf.redirect.captures) {
                if let LocationMatch::Regex { re, .. } = &loc.matcher {
                    let text = String::from_utf8_lossy(path).into_owned();
                    if let Some(caps) = re.captures(&text) {
                        let st = state.get_or_insert_with(Box::default);
                        st.vars.matched(&text, &caps, named);
                    }
                }
            }
            let st = state.as_deref();
            let mut located = Located {
                location,
                add_slash,
                conf,
                action,
            };
            let no_script = location.is_none() && st.and_then(Internal::named).is_none();
            if pending || !matches!(located.action, Action::None) {
                return Ok(located);
            }
            if conf.redirect.internal && st.is_none_or(|s| s.target.is_none()) {
                located.action = Action::NotFound;
                return Ok(located);
            }
            if no_script || conf.redirect.script.is_empty() {
                return Ok(located);
            }
            let st = state.get_or_insert_with(Box::default);
            let log = conf.redirect.rewrite_log;
            let ran = script::run(
                &conf.redirect.script,
                &mut st.vars,
                normalized,
                raw_query,
                eval,
                log,
            );
            if let Some(c) = ran.conf {
                located.conf = c;
            }
            match ran.flow {
                Flow::Return(r) => located.action = Action::Return(r),
                Flow::Redirect { code, url } => located.action = Action::Redirect(code, url),
                Flow::Done { rematch: false } => {}
                Flow::Last | Flow::Done { rematch: true } => {
                    let uri = st
                        .vars
                        .uri
                        .as_ref()
                        .map(|(p, _)| p.clone())
                        .unwrap_or_default();
                    if internal::count_change(st, "processing", &uri).is_err() {
                        let resp = error_response(ProxyError::Internal, conf.server_tokens);
                        return Err(Stop::Plain(resp.into()));
                    }
                    // A rewritten request is an internal one (nginx).
                    st.target = Some(Entered::Uri);
                    action = Action::None;
                    continue;
                }
            }
            return Ok(located);
        }
    }
}

/// Where a request landed after the rewrite phases (see `Worker::locate`).
pub(super) struct Located<'w> {
    pub(super) location: Option<&'w Location>,
    pub(super) add_slash: bool,
    pub(super) conf: &'w LocationConf,
    pub(super) action: Action<'w>,
}

/// What the rewrite phases decided beside the location.
pub(super) enum Action<'w> {
    None,
    /// `return` (of the server, a script, or ...).
    Return(&'w Return),
    /// A `rewrite` that redirects the client.
    Redirect(u16, Vec<u8>),
    /// An `internal` location asked for directly.
    NotFound,
}
