//! The proxy's side of serving local files: a location that neither
//! proxies nor returns answers from its `root`/`alias` through
//! [`crate::files::serve`]; this turns the [`Outcome`] into the response
//! (status pages, the trailing-slash `301`, the file body).
//!
//! An internal redirect (an index file, a `try_files` URI or `@name`
//! fallback) is handed back as [`Served::Redirect`] / [`Served::Named`]:
//! `plan` redirects the request (`crate::proxy::internal`, at most 10 times
//! as nginx) and plans it again from the new `$uri`, whatever its location
//! does (files, proxy, `return`).

use std::time::Instant;

use http::header;
use http::{Method, Request, Response, StatusCode};

use crate::compress::ClientFacts;
use crate::config::compress::{CompressConf, StaticMode};
use crate::proxy::compress::compress_response;

use crate::config::{Location, LocationConf, LocationMatch};
use crate::downstream::body::RequestBody;
use crate::files::serve::{self, Cached, FileRequest, Outcome};
use crate::proxy::body::{ProxyBody, Sendfile};
use crate::proxy::errors::ProxyError;
use crate::proxy::errors::{self, RedirectBase};
use crate::proxy::reply::{error_response, made};
use crate::proxy::uri;
use crate::proxy::worker::Worker;
use crate::vars::RequestVars;

/// What serving from files gave.
pub(super) enum Served {
    /// The response (boxed: the redirects are small).
    Response(Box<Response<ProxyBody>>),
    /// An internal redirect to this URI (path and maybe `?args`).
    Redirect(Vec<u8>),
    /// An internal redirect to the named location `@NAME`.
    Named(String),
}

impl Worker {
    /// Answers a request for `location` (`conf` its settings) from files;
    /// `err_status`: the status an `error_page` answers it with.
    pub(super) fn serve_files(
        &self,
        location: Option<&Location>,
        conf: &LocationConf,
        req: &Request<RequestBody>,
        vars: RequestVars<'_>,
        base: &RedirectBase<'_>,
        err_status: Option<u16>,
    ) -> Served {
        let tokens = conf.server_tokens;
        // Only a regex location's `alias`/`root` reads captures of `$uri`.
        let text = match location.map(|l| &l.matcher) {
            Some(LocationMatch::Regex { re, .. }) => Some((re, String::from_utf8_lossy(vars.path))),
            _ => None,
        };
        let captures = text.as_ref().and_then(|(re, text)| re.captures(text));
        let precompressed = precompressed_variants(&conf.compress, req);
        let fr = FileRequest {
            method: req.method(),
            headers: req.headers(),
            captures,
            vars,
            conf_file: &self.config.file,
            server: errors::server_header(tokens),
            error_page: err_status.is_some_and(|c| c != 200),
            precompressed: &precompressed,
            cache: conf.files.open_file_cache.as_ref().map(|c| Cached {
                store: self.file_cache(&c.store),
                limits: c.limits,
                now: Instant::now(),
            }),
        };
        let outcome = serve::serve(&conf.files, &fr);
        drop(fr);
        match outcome {
            Outcome::Reply(r) => {
                let sendfile = conf.files.sendfile.then_some(Sendfile {
                    max_chunk: conf.files.sendfile_max_chunk,
                    nopush: conf.files.tcp_nopush,
                });
                let mut resp = reply(r, base, tokens, sendfile);
                // A precompressed file (gzip_static) gets Vary as nginx's.
                if conf.compress.gzip_vary
                    && !precompressed.is_empty()
                    && resp.headers().contains_key(header::CONTENT_ENCODING)
                {
                    crate::compress::add_vary(resp.headers_mut());
                }
                compress_made(&mut resp, conf, req, &vars);
                Served::Response(resp)
            }
            Outcome::Status(status) => {
                // nginx's 403/404 pages pass its gzip filter too.
                let mut resp = status_page(status, base, tokens);
                compress_made(&mut resp, conf, req, &vars);
                Served::Response(Box::new(resp))
            }
            Outcome::AddSlash(path) => {
                let (_, query) = uri::split_query(vars.request_uri);
                let to = uri::add_slash_target(&path, query);
                let resp = match errors::return_response(301, Some(to.as_bytes()), base, tokens) {
                    Some(m) => made(m, tokens),
                    None => error_response(ProxyError::Internal, tokens),
                };
                Served::Response(Box::new(resp))
            }
            Outcome::Named(name) => Served::Named(name),
            Outcome::Redirect(target) => Served::Redirect(target),
        }
    }
}

/// Compression of a response made here (a file, a listing, a status page),
/// and its framing when compressed (`chunked_transfer_encoding`).
fn compress_made(
    resp: &mut Response<ProxyBody>,
    conf: &LocationConf,
    req: &Request<RequestBody>,
    vars: &RequestVars<'_>,
) {
    resp.body_mut().no_chunked = !conf.chunked_transfer_encoding;
    if conf.compress.enabled() {
        let head = req.method() == Method::HEAD;
        let facts = ClientFacts::of(req.headers(), req.version(), head, &conf.compress);
        let now = super::plan::unix_now(vars.start);
        compress_response(resp, &conf.compress, &facts, now);
    }
}

/// The `gzip_static` / `brotli_static` variants a request may get, best
/// first: `on` when the client accepts the coding (and, for gzip, nginx's
/// request-side checks pass), `always` whatever it accepts.
fn precompressed_variants(
    conf: &CompressConf,
    req: &Request<RequestBody>,
) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if conf.gzip_static == StaticMode::Off && conf.brotli_static == StaticMode::Off {
        return out;
    }
    let facts = ClientFacts::of(req.headers(), req.version(), false, conf);
    let refused = facts.disabled || facts.too_old || (facts.via && conf.gzip_proxied.off);
    let gzip_ok = facts.accepts_gzip && !refused;
    if conf.brotli_static == StaticMode::Always
        || (conf.brotli_static == StaticMode::On && facts.accepts_br)
    {
        out.push((".br", "br"));
    }
    if conf.gzip_static == StaticMode::Always || (conf.gzip_static == StaticMode::On && gzip_ok) {
        out.push((".gz", "gzip"));
    }
    out
}

/// nginx's page for `status` (with `Content-Range` kept for a 416 by the caller).
fn status_page(status: StatusCode, base: &RedirectBase<'_>, tokens: bool) -> Response<ProxyBody> {
    match errors::return_response(status.as_u16(), None, base, tokens) {
        Some(m) => made(m, tokens),
        None => error_response(ProxyError::Internal, tokens),
    }
}

fn reply(
    r: serve::Reply,
    base: &RedirectBase<'_>,
    tokens: bool,
    sendfile: Option<Sendfile>,
) -> Box<Response<ProxyBody>> {
    let serve::Reply {
        status,
        headers,
        body,
        declared,
        text,
    } = r;
    let body = match (body, text) {
        (Some(body), _) => ProxyBody::file(body, sendfile),
        (None, Some(text)) => ProxyBody::full(text),
        (None, None) if status.as_u16() >= 400 => {
            // A 416 with its Content-Range: nginx's page.
            let mut resp = status_page(status, base, tokens);
            for (name, value) in &headers {
                resp.headers_mut().insert(name, value.clone());
            }
            crate::reuse::give_map(headers);
            return Box::new(resp);
        }
        (None, None) => ProxyBody::full(bytes::Bytes::new()),
    };
    // The map the files module made, `Server` first, is the response's.
    // Made in its box, where it stays until it is sent.
    let mut resp = Box::new(Response::new(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp.body_mut().declared = declared;
    resp
}
