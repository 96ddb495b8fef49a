//! The configuration: nginx syntax in, a typed, validated, immutable [`Config`] out.
//!
//! `parse` reads bytes into the syntax tree of [`ast`] (with `include` expanded by
//! `include`); `build` checks contexts, arity, units and values and produces
//! [`Config`]. Every error carries the file and line (`error::ConfigError`). Nothing
//! here listens, connects or reads the clock; host names in `server` and `listen` are
//! resolved by the builder at load time.

pub mod ast;
pub mod build;
pub mod error;
pub mod include;
pub mod map;
pub mod parse;
pub mod rewrite;
pub mod template;
pub mod units;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{ConfigError, ConfigWarning};
pub use template::{Escape, Part, Template, Variable};

use crate::sticky::StickyConf;

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main file this was loaded from.
    pub file: PathBuf,
    pub main: MainConf,
    pub http: HttpConf,
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
}

/// Reads the main file, expands includes, builds the typed config.
pub fn load(path: &std::path::Path) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let tree = include::load(path)?;
    build::build(path, &tree)
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

/// One upstream peer (one resolved address of a `server` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConf {
    /// nginx-style peer name: `IP:PORT` or `[v6]:PORT`. The md5 sid is computed from it.
    pub name: String,
    pub addr: SocketAddr,
    /// The `server` argument as written (`backend.local:8080`).
    pub server: String,
    pub weight: u32,
    /// Default 1; 0 disables passive failure accounting.
    pub max_fails: u32,
    /// Default 10s.
    pub fail_timeout: Duration,
    pub down: bool,
    pub backup: bool,
    /// `id=` (Tengine): the sid under `hash=plain`.
    pub id: Option<String>,
    /// `drain`: keeps serving the sessions pinned to it but is never chosen for a
    /// new session.
    pub drain: bool,
}

/// What an active health check does (`check type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckType {
    /// A TCP connect that succeeds within the timeout.
    Tcp,
    /// `check_http_send` written raw; the status line of the reply is classified
    /// by `check_http_expect_alive`.
    Http,
}

impl CheckType {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Tcp => "tcp",
            CheckType::Http => "http",
        }
    }
}

/// Status classes accepted by `check_http_expect_alive` (`http_2xx` ... `http_5xx`),
/// as a bit set: bit `n` stands for the class `n`xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusClasses(pub u8);

impl StatusClasses {
    /// Tengine's default: `http_2xx http_3xx`.
    pub const DEFAULT: StatusClasses = StatusClasses((1 << 2) | (1 << 3));

    /// The set with class `class` (2..=5) added.
    pub fn with(self, class: u8) -> StatusClasses {
        StatusClasses(self.0 | (1u8 << (class & 7)))
    }

    /// True when `status` falls in one of the classes.
    pub fn contains(self, status: u16) -> bool {
        let class = status / 100;
        (2..=5).contains(&class) && self.0 & (1u8 << class) != 0
    }
}

/// Tengine's `check` (with `check_http_send` / `check_http_expect_alive`): active
/// health checks of every peer of an upstream. Defaults are Tengine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConf {
    /// `interval=` (milliseconds), default 30000.
    pub interval: Duration,
    /// `rise=`: consecutive successes that bring a down peer up, default 2.
    pub rise: u32,
    /// `fall=`: consecutive failures that take an up peer down, default 5.
    pub fall: u32,
    /// `timeout=` (milliseconds) of one check, default 1000.
    pub timeout: Duration,
    /// `default_down=`: the state of every peer before its first checks, default true.
    pub default_down: bool,
    /// `type=`, default tcp.
    pub kind: CheckType,
    /// `port=`: check this port instead of the peer's (`0`/unset = the peer's).
    pub port: Option<u16>,
    /// `check_http_send`, default `GET / HTTP/1.0\r\n\r\n`.
    pub http_send: Vec<u8>,
    /// `check_http_expect_alive`, default `http_2xx http_3xx`.
    pub expect_alive: StatusClasses,
    /// `check_keepalive_requests`: checks one connection serves (`type=http`),
    /// default 1 (a new connection per check).
    pub keepalive_requests: u32,
}

impl Default for CheckConf {
    fn default() -> Self {
        CheckConf {
            interval: Duration::from_millis(30_000),
            rise: 2,
            fall: 5,
            timeout: Duration::from_millis(1000),
            default_down: true,
            kind: CheckType::Tcp,
            port: None,
            http_send: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            expect_alive: StatusClasses::DEFAULT,
            keepalive_requests: 1,
        }
    }
}

/// `check_status [html|csv|json]`: the format of the status page when the request
/// has no `?format=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Html,
    Csv,
    Json,
    /// Prometheus text exposition (`?format=prometheus`; not a Tengine value).
    Prometheus,
}

impl StatusFormat {
    /// The format named `name` (`html`, `csv`, `json`, `prometheus`).
    pub fn from_name(name: &str) -> Option<StatusFormat> {
        match name {
            "html" => Some(StatusFormat::Html),
            "csv" => Some(StatusFormat::Csv),
            "json" => Some(StatusFormat::Json),
            "prometheus" => Some(StatusFormat::Prometheus),
            _ => None,
        }
    }
}

/// An `upstream` block, or an implicit one for `proxy_pass http://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConf {
    /// The block's name, or `HOST:PORT` as written for an implicit upstream.
    pub name: String,
    pub implicit: bool,
    /// Never empty.
    pub peers: Vec<PeerConf>,
    pub sticky: Option<StickyConf>,
    /// `keepalive N`: idle connections cached per worker; `None` = no keep-alive to
    /// the backends (nginx default).
    pub keepalive: Option<usize>,
    /// Upstream `keepalive_timeout`, default 60s.
    pub keepalive_timeout: Duration,
    /// Upstream `keepalive_requests`, default 1000.
    pub keepalive_requests: u64,
    /// Tengine's `check`: active health checks; `None` = none.
    pub check: Option<CheckConf>,
}

/// A `listen` directive, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    pub default_server: bool,
    pub reuseport: bool,
    /// Default 511 as nginx on Linux.
    pub backlog: i32,
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
}

/// `proxy_pass` with variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyVars {
    pub url: Template,
    /// The host has variables: the upstream is looked up per request.
    pub dynamic_host: bool,
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
}

/// Settings that live at http/server/location level, resolved for one location
/// (or for a server, used when no location matches).
#[derive(Debug, Clone)]
pub struct LocationConf {
    pub proxy_pass: Option<ProxyPass>,
    pub return_: Option<Return>,
    /// `proxy_set_header` list; nginx semantics: a level that sets any replaces the
    /// inherited list entirely. An empty template removes the header.
    pub proxy_set_headers: Vec<(http::HeaderName, Template)>,
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
    /// `session_sticky_hide_cookie upstream=NAME` (accepted and checked; we strip
    /// whenever the mode calls for it).
    pub sticky_hide_cookie: Option<String>,
    /// `check_status [FORMAT]` (location only, not inherited): this location serves
    /// the health status page in this default format.
    pub check_status: Option<StatusFormat>,
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
    /// Where the server block starts, for messages.
    pub span: ast::Span,
}
