//! Answering a request from the filesystem, as nginx's `try_files`, `index`,
//! `autoindex` and static modules do, in that order: the file named by the
//! request's `$uri` under `root`/`alias` (mapped by [`crate::files::path`]),
//! with its validators, conditional answers and ranges. The answer is an
//! [`Outcome`]: a response to send, an nginx status page, the trailing-slash
//! redirect, or an internal redirect to another URI (index files and
//! `try_files` URI fallbacks), which the caller resolves.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use crate::config::files::{
    DocRoot, FilesConf, OpenFileLimits, PathPart, PathTemplate, TryFallback,
};
use crate::files::body::{FileBody, Piece};
use crate::files::cache::FileCache;
use crate::files::cond;
use crate::files::open::Meta;
use crate::files::path::{self, PathError};
use crate::files::range::{self, Ranges};
use crate::vars::{self, RequestVars};

/// What a request to a file location gets.
#[derive(Debug)]
pub enum Outcome {
    /// A response made here.
    Reply(Reply),
    /// nginx's page for this status (404, 403, 405, 400, 500, `=CODE`).
    Status(StatusCode),
    /// `301` to this URI with a `/` added (a directory asked without it):
    /// the request's `$uri`, or the `try_files` argument that found the
    /// directory (`try_files /b$uri/ ...` redirects to `/b$uri/`, as nginx).
    AddSlash(Vec<u8>),
    /// An internal redirect to this URI (path, maybe `?args`): an index file
    /// found, or the URI fallback of `try_files`.
    Redirect(Vec<u8>),
    /// An internal redirect to the named location `@NAME`.
    Named(String),
}

/// A response for a file or a directory listing.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// `None`: no body (HEAD, 304); `declared` is then the length announced.
    pub body: Option<FileBody>,
    pub declared: Option<u64>,
    /// A listing made in memory.
    pub text: Option<Bytes>,
}

/// The request as the file modules see it.
pub struct FileRequest<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The location's regex captures of `$uri` (`alias` in a regex location).
    pub captures: Option<regex::Captures<'a>>,
    pub vars: RequestVars<'a>,
    /// The main configuration file: the default `root html` is the `html`
    /// directory beside it.
    pub conf_file: &'a Path,
    /// Precompressed variants to look for, in order (`gzip_static`,
    /// `brotli_static`): the suffix added to the path and its coding.
    pub precompressed: &'a [(&'static str, &'static str)],
    /// The worker's `open_file_cache` store for the location, if it has one.
    pub cache: Option<Cached>,
    /// The `Server` field every response made here starts with.
    pub server: HeaderValue,
    /// The request is an `error_page`'s, answered with that error status
    /// (not 200): as nginx's filters, which see that status, no 304 or 412,
    /// no ranges, no `Last-Modified` or `Accept-Ranges` (the `ETag` stays).
    pub error_page: bool,
}

/// An `open_file_cache` in force: the worker's store, its settings, and the
/// request's time.
pub struct Cached {
    pub store: Rc<RefCell<FileCache>>,
    pub limits: OpenFileLimits,
    pub now: Instant,
}

/// Opens `path` (`disable_symlinks` as `conf` says), through the location's
/// `open_file_cache` when it has one.
fn open_file(
    conf: &FilesConf,
    req: &FileRequest<'_>,
    path: &Path,
) -> io::Result<(Arc<File>, Meta)> {
    let no_symlinks = conf.disable_symlinks;
    match &req.cache {
        Some(c) => {
            c.store
                .borrow_mut()
                .open(&c.limits, path, no_symlinks, c.now, super::open::open)
        }
        None => super::open::open(path, no_symlinks).map(|(f, m)| (Arc::new(f), m)),
    }
}

/// The `try_files` phase and then the content phase for `req.vars.path`.
pub fn serve(conf: &FilesConf, req: &FileRequest<'_>) -> Outcome {
    let Some(tf) = &conf.try_files else {
        return content(conf, req, req.vars.path);
    };
    for t in &tf.files {
        let uri = vars::eval_to_vec(&t.name, &req.vars);
        let dir = t.dir;
        let Ok(p) = map(conf, req, &uri) else {
            continue;
        };
        // With an `open_file_cache`, as the content phase will see it (nginx
        // looks `try_files` up through the cache too).
        let found = if req.cache.is_some() {
            open_file(conf, req, &p).is_ok_and(|(_, m)| m.is_dir() == dir)
        } else {
            std::fs::metadata(&p).is_ok_and(|m| m.is_dir() == dir)
                && !(conf.disable_symlinks && super::open::open(&p, true).is_err())
        };
        if found {
            return content(conf, req, &uri);
        }
    }
    match &tf.fallback {
        TryFallback::Code(c) => {
            Outcome::Status(StatusCode::from_u16(*c).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        }
        TryFallback::Uri(t) => Outcome::Redirect(vars::eval_to_vec(t, &req.vars)),
        TryFallback::Named(n) => Outcome::Named(n.clone()),
    }
}

/// The file path of `uri` under the location's root or alias.
pub fn map(conf: &FilesConf, req: &FileRequest<'_>, uri: &[u8]) -> Result<PathBuf, PathError> {
    match &conf.doc_root {
        None => {
            let conf_dir = req.conf_file.parent().unwrap_or_else(|| Path::new("."));
            let mut dir = conf_dir.as_os_str().as_bytes().to_vec();
            dir.extend_from_slice(b"/html");
            path::root(&dir, uri)
        }
        Some(DocRoot::Root(t)) => {
            let (trusted, mut rest) = eval_path(t, req);
            if rest.is_empty() {
                path::root(trusted.as_bytes(), uri)
            } else {
                rest.extend_from_slice(uri);
                path::under(trusted.as_bytes(), &rest)
            }
        }
        Some(DocRoot::Alias {
            path: t,
            prefix_len,
        }) => {
            let (trusted, rest) = eval_path(t, req);
            if rest.is_empty() {
                path::alias(trusted.as_bytes(), uri, *prefix_len)
            } else {
                let mut untrusted = rest;
                untrusted.extend_from_slice(uri.get(*prefix_len..).unwrap_or_default());
                path::under(trusted.as_bytes(), &untrusted)
            }
        }
        Some(DocRoot::AliasRegex(t)) => {
            let (trusted, rest) = eval_path(t, req);
            path::under(trusted.as_bytes(), &rest)
        }
    }
}

/// A root/alias path template evaluated: its trusted literal head and the
/// rest (variables and captures, untrusted).
fn eval_path<'t>(t: &'t PathTemplate, req: &FileRequest<'_>) -> (&'t str, Vec<u8>) {
    let trusted = t.trusted_prefix();
    let mut rest = Vec::new();
    if t.is_literal() {
        // `root /srv/www`, the common case: nothing to evaluate.
        return (trusted, rest);
    }
    let mut skip = trusted.len();
    for part in &t.parts {
        match part {
            PathPart::Text(tpl) => {
                let mut v = Vec::new();
                vars::eval(tpl, &req.vars, vars::Style::Plain, &mut v);
                let cut = skip.min(v.len());
                skip -= cut;
                rest.extend_from_slice(v.get(cut..).unwrap_or_default());
            }
            PathPart::Capture(n) => {
                if let Some(m) = req.captures.as_ref().and_then(|c| c.get(*n)) {
                    rest.extend_from_slice(m.as_str().as_bytes());
                }
            }
        }
    }
    (trusted, rest)
}

/// The content phase: index, autoindex, then the file itself.
fn content(conf: &FilesConf, req: &FileRequest<'_>, uri: &[u8]) -> Outcome {
    if uri.last() == Some(&b'/') {
        return directory(conf, req, uri);
    }
    let method = req.method;
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        return Outcome::Status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let path = match map(conf, req, uri) {
        Ok(p) => p,
        Err(_) => return Outcome::Status(StatusCode::BAD_REQUEST),
    };
    if method != Method::POST {
        if let Some(out) = precompressed(conf, req, uri, &path) {
            return out;
        }
    }
    let (file, meta) = match open_file(conf, req, &path) {
        Ok(f) => f,
        Err(e) => return open_failed(conf, &path, &e),
    };
    if meta.is_dir() {
        return Outcome::AddSlash(uri.to_vec());
    }
    if method == Method::POST {
        return Outcome::Status(StatusCode::METHOD_NOT_ALLOWED);
    }
    if !meta.is_file() {
        tracing::error!("\"{}\" is not a regular file", path.display());
        return Outcome::Status(StatusCode::NOT_FOUND);
    }
    file_reply(conf, req, file, &meta, conf.content_type(uri))
}

/// `gzip_static` / `brotli_static`: `FILE.gz` (or `.br`) served as the
/// file with its `Content-Encoding`, when it exists.
fn precompressed(
    conf: &FilesConf,
    req: &FileRequest<'_>,
    uri: &[u8],
    path: &Path,
) -> Option<Outcome> {
    for (suffix, coding) in req.precompressed {
        let mut p = path.as_os_str().to_os_string();
        p.push(suffix);
        let Ok((file, meta)) = open_file(conf, req, Path::new(&p)) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let mut out = file_reply(conf, req, file, &meta, conf.content_type(uri));
        if let Outcome::Reply(r) = &mut out {
            r.headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        return Some(out);
    }
    None
}

/// A request for a directory (`$uri` ends in `/`): the first index file
/// that exists (an internal redirect to it), else a listing (`autoindex
/// on`), else 403 (404 when the directory itself is missing).
fn directory(conf: &FilesConf, req: &FileRequest<'_>, uri: &[u8]) -> Outcome {
    let method = req.method;
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        return Outcome::Status(StatusCode::METHOD_NOT_ALLOWED);
    }
    for name in &conf.index {
        let name = vars::eval_to_vec(name, &req.vars);
        if name.first() == Some(&b'/') {
            // An absolute index is the last resort, redirected to as is.
            return Outcome::Redirect(name);
        }
        let mut target = uri.to_vec();
        target.extend_from_slice(&name);
        let Ok(p) = map(conf, req, &target) else {
            continue;
        };
        if open_file(conf, req, &p).is_ok_and(|(_, m)| !m.is_dir()) {
            return Outcome::Redirect(target);
        }
    }
    let dir = match map(conf, req, uri) {
        Ok(p) => p,
        Err(_) => return Outcome::Status(StatusCode::BAD_REQUEST),
    };
    match open_file(conf, req, &dir) {
        Ok((_, m)) if m.is_dir() => {}
        Ok(_) => return Outcome::Status(StatusCode::NOT_FOUND),
        Err(e) => return open_failed(conf, &dir, &e),
    }
    // nginx's autoindex lists for GET and HEAD only: a POST gets the 403.
    if conf.autoindex && method != Method::POST {
        return super::autoindex::listing(conf, req, uri, &dir);
    }
    tracing::error!("directory index of \"{}\" is forbidden", dir.display());
    Outcome::Status(StatusCode::FORBIDDEN)
}

/// nginx's answer to a failed `open()`: 404 (logged unless `log_not_found
/// off`), 403 for a permission or symbolic-link refusal, 500 otherwise.
#[cold]
fn open_failed(conf: &FilesConf, path: &Path, e: &io::Error) -> Outcome {
    let code = e.raw_os_error().unwrap_or(0);
    let status = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ if code == rustix::io::Errno::NOTDIR.raw_os_error()
            || code == rustix::io::Errno::NAMETOOLONG.raw_os_error() =>
        {
            StatusCode::NOT_FOUND
        }
        _ if code == rustix::io::Errno::LOOP.raw_os_error() => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status != StatusCode::NOT_FOUND || conf.log_not_found {
        tracing::error!("open() \"{}\" failed ({e})", path.display());
    }
    Outcome::Status(status)
}

/// Boundaries of `multipart/byteranges` answers: a process-wide counter,
/// as nginx's.
static BOUNDARY: AtomicU64 = AtomicU64::new(1);

/// The response for a regular file: validators, 304/412, ranges, HEAD.
fn file_reply(
    conf: &FilesConf,
    req: &FileRequest<'_>,
    file: Arc<File>,
    meta: &Meta,
    ct: HeaderValue,
) -> Outcome {
    let size = meta.size;
    // A modification time before the epoch counts as the epoch.
    let mtime = meta.mtime_unix.max(0);
    let validators = super::validators::values(mtime, size);
    let etag = conf.etag.then_some(validators.etag);
    // The request's conditions first, then the head.
    let tag = etag.as_ref().map(HeaderValue::as_bytes);
    let conds = if req.error_page {
        cond::Conditions::default()
    } else {
        cond::Conditions::of(req.headers)
    };
    if cond::precondition_failed(&conds, mtime, tag) {
        return Outcome::Status(StatusCode::PRECONDITION_FAILED);
    }
    let not_modified = cond::not_modified(&conds, mtime, tag, conf.if_modified_since);
    let wanted = match conds.range {
        Some(r) if !not_modified && cond::range_applies(&conds, mtime, tag) => {
            range::ranges(r, size, conf.max_ranges)
        }
        _ => Ranges::Full,
    };
    // From the worker's free list: the proxy gives it back. The response's
    // own map: `Server` first, as nginx writes it.
    let mut headers = crate::reuse::header_map(6);
    headers.insert(header::SERVER, req.server.clone());
    if !req.error_page {
        headers.insert(header::LAST_MODIFIED, validators.last_modified);
    }
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag);
    }
    if not_modified {
        return Outcome::Reply(Reply {
            status: StatusCode::NOT_MODIFIED,
            headers,
            body: None,
            declared: None,
            text: None,
        });
    }
    let (status, body) = match wanted {
        Ranges::Full => {
            // Only a whole answer says it (nginx's range filter adds it on
            // the way past, not to a 206 or 416).
            if conf.max_ranges != Some(0) && !req.error_page {
                headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
            headers.insert(header::CONTENT_TYPE, ct);
            (StatusCode::OK, FileBody::range(file, 0, size))
        }
        Ranges::Unsatisfiable => return unsatisfiable(headers, size),
        Ranges::Partial(list) => (
            StatusCode::PARTIAL_CONTENT,
            partial(&mut headers, file, &list, size, ct),
        ),
    };
    if req.method == Method::HEAD {
        return Outcome::Reply(Reply {
            status,
            headers,
            declared: Some(body.remaining()),
            body: None,
            text: None,
        });
    }
    Outcome::Reply(Reply {
        status,
        headers,
        body: Some(body),
        declared: None,
        text: None,
    })
}

/// A `Range` no byte of the file satisfies: 416 with `Content-Range:
/// bytes */SIZE` (nginx's page is made by the caller). Cold, as the ranges
/// below: kept out of the common answer's code.
#[cold]
fn unsatisfiable(headers: HeaderMap, size: u64) -> Outcome {
    crate::reuse::give_map(headers);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        headers.insert(header::CONTENT_RANGE, v);
    }
    Outcome::Reply(Reply {
        status: StatusCode::RANGE_NOT_SATISFIABLE,
        headers,
        body: None,
        declared: None,
        text: None,
    })
}

/// The body of a `206`, and its `Content-Range` or `multipart/byteranges`
/// type in `headers`.
#[cold]
fn partial(
    headers: &mut HeaderMap,
    file: Arc<File>,
    list: &[(u64, u64)],
    size: u64,
    ct: HeaderValue,
) -> FileBody {
    if let [(s, e)] = list[..] {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {s}-{e}/{size}")) {
            headers.insert(header::CONTENT_RANGE, v);
        }
        headers.insert(header::CONTENT_TYPE, ct);
        return FileBody::range(file, s, e + 1);
    }
    let boundary = format!("{:020}", BOUNDARY.fetch_add(1, Ordering::Relaxed));
    let content_type = String::from_utf8_lossy(ct.as_bytes());
    let mut pieces = Vec::with_capacity(list.len() * 2 + 1);
    for &(s, e) in list {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {s}-{e}/{size}\r\n\r\n"
        );
        pieces.push(Piece::Text(Bytes::from(head)));
        pieces.push(Piece::File {
            start: s,
            end: e + 1,
        });
    }
    pieces.push(Piece::Text(Bytes::from(format!("\r\n--{boundary}--\r\n"))));
    let ct = format!("multipart/byteranges; boundary={boundary}");
    if let Ok(v) = HeaderValue::from_str(&ct) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    FileBody::new(file, pieces)
}
