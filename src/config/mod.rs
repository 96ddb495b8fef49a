//! The configuration: nginx syntax in, a typed, validated, immutable [`Config`] out.
//!
//! `parse` reads bytes into the syntax tree of [`ast`] (with `include` expanded by
//! `include`); `build` checks contexts, arity, units and values and produces
//! [`Config`]. Every error carries the file and line (`error::ConfigError`). Nothing
//! here listens, connects or reads the clock; host names in `server` and `listen` are
//! resolved by the builder at load time (`server NAME resolve` names at run time,
//! by `upstream::dns`).

pub mod ast;
pub mod build;
pub mod compress;
pub mod error;
pub mod files;
pub mod http2;
pub mod include;
pub mod map;
pub mod parse;
pub mod rewrite;
pub mod syslog;
pub mod template;
pub mod units;
pub mod upstream;
pub mod upstream_use;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::{ConfigError, ConfigWarning};
pub use http2::Http2Conf;
pub use template::{Escape, Part, Template, Variable};
pub use upstream::{
    Balance, CheckConf, CheckType, PeerConf, ResolveConf, ResolverConf, StatusClasses,
    StatusFormat, UpstreamConf,
};

use crate::http1::names::SpelledName;

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main file this was loaded from.
    pub file: PathBuf,
    pub main: MainConf,
    pub http: HttpConf,
    /// What the command line added (`-p`, `-g`, `-e`); a reload reads the file
    /// again with the same options.
    pub options: LoadOptions,
}

/// What the command line adds to a configuration file, as nginx's `-p`, `-g` and
/// `-e`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `-p PREFIX`: relative `pid`, `error_log` and `access_log` paths resolve
    /// against it. `None`: against the directory of the main file.
    pub prefix: Option<PathBuf>,
    /// `-g DIRECTIVES`: main-context directives read before the file; an error in
    /// them is reported `in command line`.
    pub globals: Option<String>,
    /// `-e FILE|stderr`: the error log when the configuration names none.
    pub error_log: Option<String>,
}

/// The directory relative paths of the configuration whose main file is `file`
/// resolve against: `-p PREFIX`, else the directory of `file`.
pub fn prefix_for(file: &Path, options: &LoadOptions) -> PathBuf {
    match &options.prefix {
        Some(prefix) => prefix.clone(),
        None => file.parent().map(Path::to_path_buf).unwrap_or_default(),
    }
}

/// The name errors in `-g` directives carry (`... in command line`).
pub const COMMAND_LINE: &str = "command line";

impl Config {
    /// The directory relative paths (`pid`, logs) resolve against: `-p PREFIX`,
    /// else the directory of the main file.
    pub fn prefix(&self) -> PathBuf {
        match &self.options.prefix {
            Some(prefix) => prefix.clone(),
            None => self
                .file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }

    /// `path` as written in the configuration, made absolute against
    /// [`Config::prefix`] when it is relative.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        crate::log::resolve_path(&self.prefix(), path)
    }
}

/// `worker_processes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerProcesses {
    Auto,
    Count(usize),
}

/// nginx log levels, least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Crit,
    Alert,
    Emerg,
}

/// `error_log FILE [LEVEL]`; `path` may be `stderr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLog {
    pub path: String,
    pub level: LogLevel,
    /// `syslog:...`: lines go to syslog, each with its level as severity.
    pub syslog: Option<syslog::Syslog>,
}

/// Main-context and `events` settings.
#[derive(Debug, Clone)]
pub struct MainConf {
    /// Default `Count(1)` as in nginx.
    pub worker_processes: WorkerProcesses,
    pub worker_rlimit_nofile: Option<u64>,
    /// nginx's default is `logs/nginx.pid`; ours is `None` (no pid file) unless set.
    pub pid: Option<PathBuf>,
    /// Default: stderr at `error`.
    pub error_log: ErrorLog,
    /// `events { worker_connections N; }`, default 512.
    pub worker_connections: usize,
    /// `worker_shutdown_timeout`: how long a graceful stop lets requests in
    /// flight run (`None`: the proxy's 30 s).
    pub worker_shutdown_timeout: Option<Duration>,
}

/// The `http` block.
#[derive(Debug, Clone)]
pub struct HttpConf {
    /// Every upstream: the named `upstream` blocks first, in file order, then the
    /// implicit one-server upstreams made for `proxy_pass http://HOST:PORT`.
    pub upstreams: Vec<Arc<UpstreamConf>>,
    pub servers: Vec<Arc<ServerConf>>,
    /// `log_format` definitions by name, `combined` always present.
    pub log_formats: HashMap<String, Arc<Template>>,
    /// The `escape=` mode of each `log_format` (same keys as `log_formats`).
    pub log_format_escapes: HashMap<String, Escape>,
    /// `limit_req_zone` and `limit_conn_zone`, in file order.
    pub limit_zones: Vec<crate::access::conf::ZoneConf>,
}

/// Reads the main file, expands includes, builds the typed config.
pub fn load(path: &std::path::Path) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    load_with(path, &LoadOptions::default())
}

/// Like [`load`] with the command line's `-p`, `-g` and `-e` applied.
pub fn load_with(
    path: &Path,
    options: &LoadOptions,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let tree = with_globals(include::load(path)?, options)?;
    build_with(path, &tree, options)
}

/// The `-g` directives of `options` followed by `tree` (the file's directives):
/// nginx reads the command line's directives first.
pub fn with_globals(
    tree: Vec<ast::Directive>,
    options: &LoadOptions,
) -> Result<Vec<ast::Directive>, ConfigError> {
    let Some(globals) = &options.globals else {
        return Ok(tree);
    };
    let mut all = parse::parse(
        globals.as_bytes(),
        std::sync::Arc::new(PathBuf::from(COMMAND_LINE)),
    )
    .map_err(|mut e| {
        if let Some(span) = &mut e.span {
            span.line = 0;
        }
        if e.message.starts_with("unexpected end of file") {
            e.message = "unexpected end of parameter, expecting \";\"".to_string();
        }
        e
    })?;
    mark_command_line(&mut all);
    all.extend(tree);
    Ok(all)
}

/// Line 0 marks a span of the command line: it is shown as `command line`.
fn mark_command_line(tree: &mut [ast::Directive]) {
    for d in tree {
        d.span.line = 0;
        for a in &mut d.args {
            a.span.line = 0;
        }
        if let Some(block) = &mut d.block {
            mark_command_line(block);
        }
    }
}

/// Builds an expanded tree (globals included) into the typed config with `options`.
pub fn build_with(
    path: &Path,
    tree: &[ast::Directive],
    options: &LoadOptions,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let (mut config, warnings) = build::build(path, tree)?;
    config.options = options.clone();
    // `-e` is the error log when neither the main context nor `http` names one.
    let names_error_log = |dirs: &[ast::Directive]| dirs.iter().any(|d| d.name == "error_log");
    let http = tree
        .iter()
        .filter(|d| d.name == "http")
        .filter_map(|d| d.block.as_deref());
    if let Some(path) = &options.error_log {
        if !names_error_log(tree) && !http.clone().any(names_error_log) {
            config.main.error_log = ErrorLog {
                path: path.clone(),
                level: LogLevel::Error,
                syslog: None,
            };
        }
    }
    Ok((config, warnings))
}

/// Like [`load`] for text in memory; `file` is the notional path (includes are
/// relative to its directory; messages name it).
pub fn load_str(
    src: &str,
    file: &std::path::Path,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let tree = include::load_str(src.as_bytes(), file)?;
    build::build(file, &tree)
}

impl HttpConf {
    pub fn upstream(&self, name: &str) -> Option<&Arc<UpstreamConf>> {
        self.upstreams.iter().find(|u| u.name == name)
    }
}

/// A `listen` directive, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    pub default_server: bool,
    pub reuseport: bool,
    /// Default 511 as nginx on Linux.
    pub backlog: i32,
    /// `ssl`: clients speak TLS on this address.
    pub ssl: bool,
    /// `http2` (deprecated since nginx 1.25.1 for the `http2` directive):
    /// HTTP/2 on this address, whatever its servers say.
    pub http2: bool,
}

/// One `server_name` entry.
#[derive(Debug, Clone)]
pub enum ServerName {
    /// Exact name, lowercased (`example.com`, also `_` and `""`).
    Exact(String),
    /// `*.example.com` (stored as `.example.com`) or `.example.com` (which also
    /// matches `example.com` itself; `dot_form` true).
    LeadingWildcard { suffix: String, dot_form: bool },
    /// `www.example.*` (stored as `www.example.`).
    TrailingWildcard { prefix: String },
    /// `~regex`.
    Regex(regex::Regex),
}

/// The match part of a `location`.
#[derive(Debug, Clone)]
pub enum LocationMatch {
    /// `location = /uri`
    Exact(String),
    /// `location /uri` (`stop_regex` false) or `location ^~ /uri` (true).
    Prefix { uri: String, stop_regex: bool },
    /// `location ~ re` / `location ~* re` (`case_insensitive`).
    Regex {
        re: regex::Regex,
        case_insensitive: bool,
        source: String,
    },
}

/// A `location` block, with its settings fully resolved (inheritance applied).
#[derive(Debug, Clone)]
pub struct Location {
    pub matcher: LocationMatch,
    pub conf: Arc<LocationConf>,
    /// Nested locations, in file order.
    pub nested: Vec<Location>,
}

/// A named location (`location @name { ... }`, server level only).
#[derive(Debug, Clone)]
pub struct NamedLocation {
    /// The name with its `@`.
    pub name: String,
    pub conf: Arc<LocationConf>,
}

/// `return CODE [TEXT]` / `return CODE URL` / `return URL` (302).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    pub code: u16,
    /// Body text, or the `Location` URL for 301/302/303/307/308.
    pub text: Option<Template>,
}

/// `proxy_pass http://TARGET[/uri]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPass {
    /// Index into [`HttpConf::upstreams`].
    pub upstream: usize,
    /// The `host[:port]` text of the URL, the value of `$proxy_host`.
    pub proxy_host: String,
    /// The URI part (`/`, `/base/`); `None` when the URL has none.
    pub uri: Option<String>,
    /// The URL when it has variables (evaluated per request).
    pub vars: Option<ProxyVars>,
    /// `https://`: TLS to the backends.
    pub https: bool,
}

/// `absolute_redirect`, `server_name_in_redirect` and `port_in_redirect`:
/// how a redirect the proxy writes itself (`return 301 /x`, the slash a
/// directory or prefix location adds, `error_page ... =301 /x`) spells its
/// `Location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectForm {
    /// `absolute_redirect` (on): `scheme://host[:port]` before a path.
    pub absolute: bool,
    /// `server_name_in_redirect` (off): the server's first name, not Host.
    pub server_name: bool,
    /// `port_in_redirect` (on): a port other than the scheme's default.
    pub port: bool,
}

impl Default for RedirectForm {
    fn default() -> Self {
        RedirectForm {
            absolute: true,
            server_name: false,
            port: true,
        }
    }
}

/// `proxy_pass` with variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyVars {
    pub url: Template,
    /// The host has variables: the upstream is looked up per request.
    pub dynamic_host: bool,
    /// The scheme has variables too (`proxy_pass $url;`): `http://` or
    /// `https://` is read from the URL per request (the host then always
    /// has variables).
    pub dynamic_scheme: bool,
}

/// Which failures make `proxy_next_upstream` try another peer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NextUpstream {
    pub error: bool,
    pub timeout: bool,
    pub invalid_header: bool,
    /// The statuses listed (`http_500` ... `http_429`).
    pub statuses: Vec<u16>,
    pub non_idempotent: bool,
}

/// `access_log` at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    /// One or more logs: path and `log_format` name.
    On(Vec<AccessLogTarget>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogTarget {
    pub path: PathBuf,
    pub format: String,
    /// `if=CONDITION`: the line is written only when it evaluates to
    /// neither `""` nor `"0"`.
    pub condition: Option<Arc<Template>>,
    /// `syslog:...`: lines go to syslog (`path` is then the text as written).
    pub syslog: Option<syslog::Syslog>,
}

/// `add_header NAME VALUE [always]` (or `add_trailer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddHeader {
    /// As written (nginx sends it so: `X-Frame-Options`).
    pub name: SpelledName,
    /// Evaluated with the request's variables; an empty value adds nothing.
    pub value: Template,
    /// `always`: also on statuses other than 200, 201, 204, 206, 301, 302, 303,
    /// 304, 307 and 308.
    pub always: bool,
}

/// `expires`: the `Expires` and `Cache-Control` written on responses of the
/// statuses `add_header` uses without `always`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expires {
    /// `off` (the default): nothing changes.
    #[default]
    Off,
    /// `epoch`: `Expires: Thu, 01 Jan 1970 00:00:01 GMT`, `Cache-Control: no-cache`.
    Epoch,
    /// `max`: `Expires: Thu, 31 Dec 2037 23:55:55 GMT`, `max-age=315360000`.
    Max,
    /// `[+|-]TIME`: seconds after the time of the response (negative: before).
    Access(i64),
    /// `modified [+|-]TIME`: seconds after the response's `Last-Modified` (as
    /// `Access` when it has none).
    Modified(i64),
    /// `@TIME`: the next time of day TIME (seconds after midnight, UTC).
    Daily(i64),
}

/// Settings that live at http/server/location level, resolved for one location
/// (or for a server, used when no location matches).
#[derive(Debug, Clone)]
pub struct LocationConf {
    pub proxy_pass: Option<ProxyPass>,
    /// TLS to the backends, when `proxy_pass` is `https://` (`proxy_ssl_*`).
    pub proxy_ssl: Option<Arc<crate::tls::client::BackendTls>>,
    pub return_: Option<Return>,
    /// `proxy_set_header` list; nginx semantics: a level that sets any replaces the
    /// inherited list entirely. An empty template removes the header. The
    /// name is sent as written.
    pub proxy_set_headers: Vec<(SpelledName, Template)>,
    pub proxy_hide_headers: Vec<http::HeaderName>,
    pub proxy_pass_headers: Vec<http::HeaderName>,
    /// `proxy_http_version`, default 1.0 in nginx; we always speak 1.1 to backends
    /// and keep the value for `-T`.
    pub proxy_http_version: http::Version,
    pub proxy_connect_timeout: Duration,
    pub proxy_read_timeout: Duration,
    pub proxy_send_timeout: Duration,
    pub proxy_next_upstream: NextUpstream,
    /// 0 = unlimited.
    pub proxy_next_upstream_tries: u32,
    /// Zero = unlimited.
    pub proxy_next_upstream_timeout: Duration,
    /// 0 = no limit. Default 1 MiB.
    pub client_max_body_size: u64,
    pub access_log: AccessLog,
    pub server_tokens: bool,
    /// `chunked_transfer_encoding` (default on): off, an HTTP/1.1 response of
    /// unknown length is ended by closing the connection.
    pub chunked_transfer_encoding: bool,
    /// How the redirects the proxy writes itself spell their `Location`.
    pub redirect_form: RedirectForm,
    /// `session_sticky_hide_cookie upstream=NAME` (accepted and checked; we strip
    /// whenever the mode calls for it).
    pub sticky_hide_cookie: Option<String>,
    /// `check_status [FORMAT]` (location only, not inherited): this location serves
    /// the health status page in this default format.
    pub check_status: Option<StatusFormat>,
    /// `add_header` list; as `proxy_set_header`, a level that has any replaces
    /// the inherited list.
    pub add_headers: Vec<AddHeader>,
    /// The names of `add_headers` written otherwise than lower-cased (their
    /// wire spelling), `None` when there is none.
    pub add_header_names: Option<Arc<[SpelledName]>>,
    /// `expires`, default off.
    pub expires: Expires,
    /// `client_body_timeout` written in a location (or a parent location); `None`:
    /// the server's ([`ConnectionConf::client_body_timeout`]).
    pub client_body_timeout: Option<Duration>,
    /// `send_timeout` written in a location (or a parent location); `None`:
    /// the server's ([`ConnectionConf::send_timeout`]).
    pub send_timeout: Option<Duration>,
    /// `keepalive_timeout` / `keepalive_requests` written in a location (or
    /// a parent location); `None`: the server's.
    pub keepalive_timeout: Option<Duration>,
    pub keepalive_requests: Option<u64>,
    /// `resolver` with `resolver_timeout` in effect here (a `proxy_pass` with
    /// variables whose host names no upstream is resolved with it).
    pub resolver: Option<Arc<ResolverConf>>,
    /// `limit_except METHOD ... { }`: the methods let through as the
    /// location is, and the location's settings for every other method.
    pub limit_except: Option<Arc<crate::access::limit_except::LimitExcept>>,
    /// Local file serving, used when the location neither proxies nor returns.
    pub files: Arc<files::FilesConf>,
    /// Response compression (`gzip*`, `brotli*`).
    pub compress: Arc<compress::CompressConf>,
    /// Access rules, auth, realip, request and connection limits, `stub_status`.
    pub access: crate::access::conf::AccessConf,
    /// `proxy_redirect`, `proxy_cookie_domain`, `proxy_cookie_path`.
    pub details: crate::proxy::redirect::ProxyDetails,
    /// `proxy_method`, `proxy_pass_request_headers`/`_body`, `proxy_set_body`.
    pub shape: crate::proxy::shape::RequestShape,
    /// `error_page`, `internal`, `proxy_intercept_errors`,
    /// `recursive_error_pages`.
    pub redirect: rewrite::RedirectConf,
}

/// Connection-level settings (http/server level only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConf {
    /// Default 60s.
    pub client_header_timeout: Duration,
    /// Default 60s.
    pub client_body_timeout: Duration,
    /// Default 60s.
    pub send_timeout: Duration,
    /// Default 75s; zero disables keep-alive.
    pub keepalive_timeout: Duration,
    /// Default 1000.
    pub keepalive_requests: u64,
    /// `large_client_header_buffers NUMBER SIZE`, default 4 8k.
    pub large_client_header_buffers: (usize, usize),
    /// `http2` and `http2_*`.
    pub http2: Http2Conf,
    /// `ignore_invalid_headers` (default on) and `underscores_in_headers`
    /// (default off).
    pub header_names: crate::http1::invalid::HeaderNames,
}

/// A `server` block.
#[derive(Debug, Clone)]
pub struct ServerConf {
    /// Never empty: nginx's default is `*:80` (we default to `0.0.0.0:80` too).
    pub listens: Vec<Listen>,
    pub names: Vec<ServerName>,
    /// Server-level `return` (runs before location matching, as nginx's rewrite phase).
    pub return_: Option<Return>,
    pub locations: Vec<Location>,
    /// `location @name` blocks, reached only by `error_page` (and, later,
    /// `try_files`) redirects.
    pub named: Vec<NamedLocation>,
    /// Settings inherited by locations, used as is when no location matches.
    pub conf: Arc<LocationConf>,
    pub connection: ConnectionConf,
    /// The server's TLS (`ssl_certificate` and the other `ssl_*`), with its
    /// certificates loaded.
    pub tls: Option<Arc<crate::tls::ServerTls>>,
    /// Where the server block starts, for messages.
    pub span: ast::Span,
}
