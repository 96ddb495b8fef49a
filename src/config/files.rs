//! The typed settings of local file serving (`root`, `alias`, `index`,
//! `try_files`, `types`, `autoindex`, ...), resolved for one location.
//! Built by `config::build::files`; read by `crate::files`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use super::template::Template;

/// A path written with variables and, in a regex location, captures (`$1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pub source: String,
    pub parts: Vec<PathPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPart {
    /// Text with nginx variables.
    Text(Template),
    /// `$1` .. `$9`: a capture of the location's regex.
    Capture(usize),
}

impl PathTemplate {
    /// Plain text, no variable nor capture: all of it is [`Self::trusted_prefix`].
    pub fn is_literal(&self) -> bool {
        match &self.parts[..] {
            [PathPart::Text(t)] => matches!(&t.parts[..], [super::Part::Literal(_)]),
            _ => false,
        }
    }

    /// The literal text before the first variable or capture: the part of
    /// the path the administrator wrote, trusted by the path-safety check.
    pub fn trusted_prefix(&self) -> &str {
        match self.parts.first() {
            Some(PathPart::Text(t)) => match t.parts.first() {
                Some(super::Part::Literal(s)) => s,
                _ => "",
            },
            _ => "",
        }
    }
}

/// `types { }`: extension (lowercase) -> MIME type.
pub type MimeTypes = HashMap<String, HeaderValue, fnv::FnvBuildHasher>;

/// Where the files of a location are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocRoot {
    /// `root PATH`: PATH followed by the whole `$uri`.
    Root(PathTemplate),
    /// `alias PATH` in a prefix or exact location: the location's prefix
    /// (`prefix_len` bytes of `$uri`) replaced by PATH.
    Alias {
        path: PathTemplate,
        prefix_len: usize,
    },
    /// `alias PATH` in a regex location: PATH (with captures) is the whole path.
    AliasRegex(PathTemplate),
}

/// The last argument of `try_files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryFallback {
    /// `=CODE`.
    Code(u16),
    /// A URI: an internal redirect.
    Uri(Template),
    /// `@name`: an internal redirect to a named location.
    Named(String),
}

/// `try_files FILE ... LAST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryFiles {
    pub files: Vec<TryFile>,
    pub fallback: TryFallback,
}

/// One `try_files` argument before the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryFile {
    /// A `$uri`-like template, without the trailing `/` written (`$uri/`
    /// tests `$uri`), as nginx keeps it: a directory found goes on as that
    /// URI, and one without its `/` gets the trailing-slash redirect.
    pub name: Template,
    /// The argument ends in `/`: it is a directory test (a file test else),
    /// whatever the value turns out to end with.
    pub dir: bool,
}

/// `if_modified_since off|exact|before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfModifiedSince {
    Off,
    Exact,
    Before,
}

/// `autoindex_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoindexFormat {
    Html,
    Json,
}

/// Local file serving, for one location.
#[derive(Debug, Clone)]
pub struct FilesConf {
    /// `None`: nginx's default `root html`, the `html` directory next to the
    /// main configuration file.
    pub doc_root: Option<DocRoot>,
    /// Default `index index.html`.
    pub index: Vec<Template>,
    pub try_files: Option<TryFiles>,
    /// Default `text/plain`. MIME types are kept as `Content-Type` values,
    /// shared (not copied) by every response that names them.
    pub default_type: HeaderValue,
    /// Extension (lowercase) -> MIME type. Default: nginx's built-in three.
    pub types: Arc<MimeTypes>,
    /// `charset NAME` (`None` = `off`): added to `Content-Type` of the types
    /// in `charset_types`.
    pub charset: Option<String>,
    pub charset_types: Vec<String>,
    /// Default on.
    pub etag: bool,
    /// Default exact.
    pub if_modified_since: IfModifiedSince,
    /// `None` = unlimited; 0 = ranges off.
    pub max_ranges: Option<u32>,
    /// Default on.
    pub log_not_found: bool,
    /// `disable_symlinks on`: no component of the path may be a symbolic link.
    pub disable_symlinks: bool,
    pub autoindex: bool,
    /// Default on.
    pub autoindex_exact_size: bool,
    pub autoindex_localtime: bool,
    pub autoindex_format: AutoindexFormat,
    /// `sendfile on`: a file's body goes from the page cache to a plain TCP
    /// socket with sendfile(2). Default off, as nginx.
    pub sendfile: bool,
    /// `sendfile_max_chunk`: the most one sendfile(2) call sends before the
    /// connection lets others run; 0 = no limit. Default 2m (nginx 1.21.4+).
    pub sendfile_max_chunk: u64,
    /// `tcp_nopush on`: with sendfile, the socket is corked (`TCP_CORK`) while
    /// the head and the file go out, so the head shares the file's first
    /// packet. Default off.
    pub tcp_nopush: bool,
    /// `open_file_cache` (`None`: off, the default).
    pub open_file_cache: Option<OpenFileCache>,
}

/// `open_file_cache max=N [inactive=TIME]` and the `open_file_cache_valid`,
/// `_min_uses` and `_errors` in force where it applies
/// (`crate::files::cache`).
#[derive(Debug, Clone)]
pub struct OpenFileCache {
    /// One cache per `open_file_cache` directive, shared by the levels below
    /// it: each worker keeps one store per distinct `Arc`.
    pub store: Arc<()>,
    pub limits: OpenFileLimits,
}

/// The settings of one `open_file_cache` and its `open_file_cache_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimits {
    pub max: usize,
    pub inactive: Duration,
    /// `open_file_cache_valid`, default 60 s.
    pub valid: Duration,
    /// `open_file_cache_min_uses`, default 1.
    pub min_uses: u32,
    /// `open_file_cache_errors`, default off.
    pub errors: bool,
}

impl FilesConf {
    /// The MIME type of `name` by its extension, with the charset when it
    /// applies: the `Content-Type` value of a file response.
    pub fn content_type(&self, name: &[u8]) -> HeaderValue {
        let ext = name
            .iter()
            .rposition(|&b| b == b'.')
            .and_then(|i| name.get(i + 1..))
            .and_then(|e| std::str::from_utf8(e).ok())
            .filter(|e| !e.contains('/'));
        let found = ext.and_then(|e| {
            // Lower-cased only when it has capitals (on every file response).
            if e.bytes().any(|b| b.is_ascii_uppercase()) {
                self.types.get(&e.to_ascii_lowercase())
            } else {
                self.types.get(e)
            }
        });
        let ty = found.unwrap_or(&self.default_type);
        match &self.charset {
            // `text/html` always, as nginx ("in addition to text/html").
            Some(cs)
                if ty.as_bytes() == b"text/html"
                    || self
                        .charset_types
                        .iter()
                        .any(|t| t.as_bytes() == ty.as_bytes()) =>
            {
                let mut v = ty.as_bytes().to_vec();
                v.extend_from_slice(b"; charset=");
                v.extend_from_slice(cs.as_bytes());
                HeaderValue::from_bytes(&v).unwrap_or_else(|_| ty.clone())
            }
            _ => ty.clone(),
        }
    }
}

/// nginx's `charset_types` default.
const CHARSET_TYPES: &[&str] = &[
    "text/html",
    "text/xml",
    "text/plain",
    "text/vnd.wap.wml",
    "application/javascript",
    "application/rss+xml",
];

impl Default for FilesConf {
    /// nginx's defaults (`root html`, `index index.html`, its three built-in
    /// types, `default_type text/plain`, `etag on`, ...).
    fn default() -> Self {
        let builtin = [
            ("html", "text/html"),
            ("gif", "image/gif"),
            ("jpg", "image/jpeg"),
        ];
        FilesConf {
            doc_root: None,
            index: vec![Template::literal("index.html")],
            try_files: None,
            default_type: HeaderValue::from_static("text/plain"),
            types: Arc::new(
                builtin
                    .iter()
                    .map(|(e, t)| ((*e).to_string(), HeaderValue::from_static(t)))
                    .collect(),
            ),
            charset: None,
            charset_types: CHARSET_TYPES.iter().map(|s| (*s).to_string()).collect(),
            etag: true,
            if_modified_since: IfModifiedSince::Exact,
            max_ranges: None,
            log_not_found: true,
            disable_symlinks: false,
            autoindex: false,
            autoindex_exact_size: true,
            autoindex_localtime: false,
            autoindex_format: AutoindexFormat::Html,
            open_file_cache: None,
            sendfile: false,
            sendfile_max_chunk: 2 * 1024 * 1024,
            tcp_nopush: false,
        }
    }
}
