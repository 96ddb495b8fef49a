//! The builder: syntax tree ([`Directive`]s) in, typed and validated [`Config`] out.
//!
//! It owns every rule that gives a directive meaning: the context where it may
//! appear, its argument count, duplicates, units, defaults and the http -> server ->
//! location (-> nested location) inheritance of nginx. Every error is nginx's text
//! with the directive's file and line. Host names of upstream `server` lines,
//! `proxy_pass` targets and `listen` addresses are resolved here, once, at load time.
//!
//! The walk is: main context (with `events`), then the `http` block in two passes:
//! first every `upstream` block (so `proxy_pass` may name an upstream defined later,
//! as in nginx), then everything else. Within a block, a level's own directives are
//! collected before its children (servers, locations) are built, so a setting written
//! after a nested block is still inherited by it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use super::ast::{Directive, Span};
use super::error::{ConfigError, ConfigWarning};
use super::template::{self, Escape, Template};
use super::units;
use super::{
    AccessLog, AccessLogTarget, CheckConf, CheckType, Config, ConnectionConf, ErrorLog, HttpConf,
    Listen, Location, LocationConf, LocationMatch, LogLevel, MainConf, NextUpstream, PeerConf,
    ProxyPass, Return, ServerConf, ServerName, StatusClasses, StatusFormat, UpstreamConf,
    WorkerProcesses,
};
use crate::sticky::{Hash, Mode, StickyConf, UNLIMITED_SECS};

type Res<T> = Result<T, ConfigError>;

/// Every directive name the builder knows, in any context: a known name in the wrong
/// place is `"x" directive is not allowed here`, anything else `unknown directive`.
const KNOWN: &[&str] = &[
    "worker_processes",
    "worker_rlimit_nofile",
    "error_log",
    "pid",
    "daemon",
    "master_process",
    "user",
    "events",
    "worker_connections",
    "use",
    "multi_accept",
    "accept_mutex",
    "accept_mutex_delay",
    "http",
    "upstream",
    "server",
    "listen",
    "server_name",
    "location",
    "proxy_pass",
    "return",
    "proxy_set_header",
    "proxy_hide_header",
    "proxy_pass_header",
    "proxy_http_version",
    "proxy_connect_timeout",
    "proxy_read_timeout",
    "proxy_send_timeout",
    "proxy_next_upstream",
    "proxy_next_upstream_tries",
    "proxy_next_upstream_timeout",
    "proxy_buffering",
    "proxy_buffer_size",
    "proxy_buffers",
    "client_max_body_size",
    "client_header_timeout",
    "client_body_timeout",
    "send_timeout",
    "keepalive_timeout",
    "keepalive_requests",
    "large_client_header_buffers",
    "access_log",
    "log_format",
    "server_tokens",
    "session_sticky",
    "session_sticky_hide_cookie",
    "session_sticky_header",
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "types",
    "default_type",
    "charset",
    "gzip",
    "keepalive",
    "include",
    "check",
    "check_http_send",
    "check_http_expect_alive",
    "check_keepalive_requests",
    "check_shm_size",
    "check_status",
];

/// nginx's predefined `combined` format.
pub const COMBINED_FORMAT: &str = "$remote_addr - $remote_user [$time_local] \
\"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

/// Builds the typed configuration of the main file `file` from its expanded tree.
pub fn build(file: &Path, tree: &[Directive]) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let mut b = Builder {
        warnings: Vec::new(),
    };
    let mut worker_processes = None;
    let mut worker_rlimit_nofile = None;
    let mut pid = None;
    let mut error_log: Option<ErrorLog> = None;
    let mut worker_connections = None;
    let mut events_seen = false;
    let mut http: Option<(HttpConf, Option<ErrorLog>)> = None;

    for d in tree {
        match d.name.as_str() {
            "worker_processes" => {
                simple(d, 1, 1)?;
                let v = arg(d, 0);
                let value = if v == "auto" {
                    WorkerProcesses::Auto
                } else {
                    match v.parse::<usize>() {
                        Ok(n) if n > 0 => WorkerProcesses::Count(n),
                        _ => return Err(directive_err(d, "invalid value")),
                    }
                };
                set_once(&mut worker_processes, value, d)?;
            }
            "worker_rlimit_nofile" => {
                simple(d, 1, 1)?;
                let n: u64 = number(d, arg(d, 0))?;
                set_once(&mut worker_rlimit_nofile, n, d)?;
            }
            "pid" => {
                simple(d, 1, 1)?;
                set_once(&mut pid, PathBuf::from(arg(d, 0)), d)?;
            }
            "error_log" => {
                let log = error_log_directive(d)?;
                if error_log.is_some() {
                    b.warn(
                        d,
                        "additional \"error_log\" is ignored: only one error log is kept",
                    );
                } else {
                    error_log = Some(log);
                }
            }
            "daemon" | "master_process" => {
                simple(d, 1, 1)?;
                if flag(d)? {
                    let why = if d.name == "daemon" {
                        "the proxy always runs in the foreground"
                    } else {
                        "the proxy runs as one process with worker threads"
                    };
                    b.warn(d, &format!("\"{} on\" is ignored: {why}", d.name));
                }
            }
            "user" => {
                simple(d, 1, 2)?;
                b.warn(
                    d,
                    "\"user\" directive is ignored: the proxy runs as the invoking user",
                );
            }
            "events" => {
                let block = block(d, 0, 0)?;
                if events_seen {
                    return Err(duplicate(d));
                }
                events_seen = true;
                b.events(block, &mut worker_connections)?;
            }
            "http" => {
                let block = block(d, 0, 0)?;
                if http.is_some() {
                    return Err(duplicate(d));
                }
                http = Some(b.http(block)?);
            }
            _ => return Err(not_allowed(d)),
        }
    }

    let Some((http, http_error_log)) = http else {
        return Err(ConfigError::without_span(format!(
            "no \"http\" block in {}",
            file.display()
        )));
    };
    let main = MainConf {
        worker_processes: worker_processes.unwrap_or(WorkerProcesses::Count(1)),
        worker_rlimit_nofile,
        pid,
        error_log: error_log.or(http_error_log).unwrap_or(ErrorLog {
            path: "stderr".to_string(),
            level: LogLevel::Error,
        }),
        worker_connections: worker_connections.unwrap_or(512),
    };
    let config = Config {
        file: file.to_path_buf(),
        main,
        http,
    };
    Ok((config, b.warnings))
}

struct Builder {
    warnings: Vec<ConfigWarning>,
}

/// State shared across the `http` block while it is built.
struct HttpState {
    /// The named `upstream` blocks, in file order.
    named: Vec<UpstreamConf>,
    /// Implicit upstreams made for `proxy_pass http://HOST:PORT`.
    implicit: Vec<UpstreamConf>,
    log_formats: HashMap<String, Arc<Template>>,
    log_format_escapes: HashMap<String, Escape>,
    /// `access_log` format names to check once every `log_format` is known.
    format_uses: Vec<(String, Span)>,
    /// Addresses that already have a `default_server`.
    default_servers: HashSet<SocketAddr>,
}

/// The inheritable settings written at one level (http, server or location).
/// `None` = not set at this level; [`Layer::inherit`] fills from the parent.
#[derive(Debug, Clone, Default)]
struct Layer {
    set_headers: Option<Vec<(HeaderName, Template)>>,
    hide_headers: Option<Vec<HeaderName>>,
    pass_headers: Option<Vec<HeaderName>>,
    http_version: Option<http::Version>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
    next_upstream: Option<NextUpstream>,
    next_upstream_tries: Option<u32>,
    next_upstream_timeout: Option<Duration>,
    client_max_body_size: Option<u64>,
    access_log: Option<AccessLog>,
    server_tokens: Option<bool>,
    hide_cookie: Option<String>,
}

macro_rules! inherit_fields {
    ($child:expr, $parent:expr, $($field:ident),*) => {
        $( if $child.$field.is_none() { $child.$field = $parent.$field.clone(); } )*
    };
}

impl Layer {
    fn inherit(mut self, parent: &Layer) -> Layer {
        inherit_fields!(
            self,
            parent,
            set_headers,
            hide_headers,
            pass_headers,
            http_version,
            connect_timeout,
            read_timeout,
            send_timeout,
            next_upstream,
            next_upstream_tries,
            next_upstream_timeout,
            client_max_body_size,
            access_log,
            server_tokens,
            hide_cookie
        );
        self
    }

    fn finish(&self, proxy_pass: Option<ProxyPass>, return_: Option<Return>) -> LocationConf {
        let sixty = Duration::from_secs(60);
        LocationConf {
            proxy_pass,
            return_,
            proxy_set_headers: self.set_headers.clone().unwrap_or_default(),
            proxy_hide_headers: self.hide_headers.clone().unwrap_or_default(),
            proxy_pass_headers: self.pass_headers.clone().unwrap_or_default(),
            proxy_http_version: self.http_version.unwrap_or(http::Version::HTTP_10),
            proxy_connect_timeout: self.connect_timeout.unwrap_or(sixty),
            proxy_read_timeout: self.read_timeout.unwrap_or(sixty),
            proxy_send_timeout: self.send_timeout.unwrap_or(sixty),
            proxy_next_upstream: self.next_upstream.clone().unwrap_or(NextUpstream {
                error: true,
                timeout: true,
                ..NextUpstream::default()
            }),
            proxy_next_upstream_tries: self.next_upstream_tries.unwrap_or(0),
            proxy_next_upstream_timeout: self.next_upstream_timeout.unwrap_or(Duration::ZERO),
            client_max_body_size: self.client_max_body_size.unwrap_or(1 << 20),
            access_log: self.access_log.clone().unwrap_or(AccessLog::Off),
            server_tokens: self.server_tokens.unwrap_or(true),
            sticky_hide_cookie: self.hide_cookie.clone(),
            check_status: None,
        }
    }
}

/// Connection-level settings written at http or server level.
#[derive(Debug, Clone, Default)]
struct ConnLayer {
    client_header_timeout: Option<Duration>,
    client_body_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
    keepalive_timeout: Option<Duration>,
    keepalive_requests: Option<u64>,
    large_client_header_buffers: Option<(usize, usize)>,
}

impl ConnLayer {
    fn inherit(mut self, parent: &ConnLayer) -> ConnLayer {
        inherit_fields!(
            self,
            parent,
            client_header_timeout,
            client_body_timeout,
            send_timeout,
            keepalive_timeout,
            keepalive_requests,
            large_client_header_buffers
        );
        self
    }

    fn finish(&self) -> ConnectionConf {
        let sixty = Duration::from_secs(60);
        ConnectionConf {
            client_header_timeout: self.client_header_timeout.unwrap_or(sixty),
            client_body_timeout: self.client_body_timeout.unwrap_or(sixty),
            send_timeout: self.send_timeout.unwrap_or(sixty),
            keepalive_timeout: self.keepalive_timeout.unwrap_or(Duration::from_secs(75)),
            keepalive_requests: self.keepalive_requests.unwrap_or(1000),
            large_client_header_buffers: self.large_client_header_buffers.unwrap_or((4, 8192)),
        }
    }
}

/// What a nested location needs to know about its parent.
struct ParentLocation<'a> {
    name: &'a str,
    exact: bool,
}

// ---------------------------------------------------------------------------
// Small checks shared by every directive.

fn arg(d: &Directive, i: usize) -> &str {
    d.args.get(i).map_or("", |a| a.value.as_str())
}

fn err(message: impl Into<String>, d: &Directive) -> ConfigError {
    ConfigError::new(message, &d.span)
}

/// nginx's `"NAME" directive MESSAGE` (e.g. `invalid value`).
fn directive_err(d: &Directive, what: &str) -> ConfigError {
    err(format!("\"{}\" directive {what}", d.name), d)
}

fn duplicate(d: &Directive) -> ConfigError {
    directive_err(d, "is duplicate")
}

fn not_allowed(d: &Directive) -> ConfigError {
    if KNOWN.contains(&d.name.as_str()) {
        directive_err(d, "is not allowed here")
    } else {
        err(format!("unknown directive \"{}\"", d.name), d)
    }
}

fn arity(d: &Directive, min: usize, max: usize) -> Res<()> {
    if d.args.len() < min || d.args.len() > max {
        return Err(err(
            format!("invalid number of arguments in \"{}\" directive", d.name),
            d,
        ));
    }
    Ok(())
}

/// A directive ending in `;` with `min..=max` arguments.
fn simple(d: &Directive, min: usize, max: usize) -> Res<()> {
    if d.block.is_some() {
        return Err(err(
            format!("directive \"{}\" is not terminated by \";\"", d.name),
            d,
        ));
    }
    arity(d, min, max)
}

/// A block directive with `min..=max` arguments; returns its block.
fn block(d: &Directive, min: usize, max: usize) -> Res<&[Directive]> {
    let Some(block) = &d.block else {
        return Err(err(
            format!("directive \"{}\" has no opening \"{{\"", d.name),
            d,
        ));
    };
    arity(d, min, max)?;
    Ok(block)
}

fn set_once<T>(slot: &mut Option<T>, value: T, d: &Directive) -> Res<()> {
    if slot.is_some() {
        return Err(duplicate(d));
    }
    *slot = Some(value);
    Ok(())
}

fn flag(d: &Directive) -> Res<bool> {
    match arg(d, 0).to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(err(
            format!(
                "invalid value \"{}\" in \"{}\" directive, it must be \"on\" or \"off\"",
                arg(d, 0),
                d.name
            ),
            d,
        )),
    }
}

fn time(d: &Directive, value: &str) -> Res<Duration> {
    units::parse_time(value).map_err(|_| directive_err(d, "invalid value"))
}

fn size(d: &Directive, value: &str) -> Res<u64> {
    units::parse_size(value).map_err(|_| directive_err(d, "invalid value"))
}

/// The directive's one argument as a whole number above zero, or nginx's
/// `invalid value "V" in "NAME" directive`.
fn positive<T: FromStr + PartialOrd + Default>(d: &Directive) -> Res<T> {
    match arg(d, 0).parse::<T>() {
        Ok(n) if n > T::default() && arg(d, 0).bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(err(
            format!(
                "invalid value \"{}\" in \"{}\" directive",
                arg(d, 0),
                d.name
            ),
            d,
        )),
    }
}

fn number<T: FromStr>(d: &Directive, value: &str) -> Res<T> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(directive_err(d, "invalid number"));
    }
    value
        .parse()
        .map_err(|_| directive_err(d, "invalid number"))
}

fn template_arg(d: &Directive, value: &str) -> Res<Template> {
    template::parse(value).map_err(|m| err(m, d))
}

fn header_name(d: &Directive, value: &str) -> Res<HeaderName> {
    HeaderName::from_bytes(value.as_bytes())
        .map_err(|_| err(format!("invalid header name \"{value}\""), d))
}

fn error_log_directive(d: &Directive) -> Res<ErrorLog> {
    simple(d, 1, 2)?;
    let level = match d.args.get(1) {
        None => LogLevel::Error,
        Some(a) => match a.value.as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "notice" => LogLevel::Notice,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "crit" => LogLevel::Crit,
            "alert" => LogLevel::Alert,
            "emerg" => LogLevel::Emerg,
            other => return Err(err(format!("invalid log level \"{other}\""), d)),
        },
    };
    Ok(ErrorLog {
        path: arg(d, 0).to_string(),
        level,
    })
}

fn compile_regex(d: &Directive, source: &str, case_insensitive: bool) -> Res<regex::Regex> {
    let pattern = if case_insensitive {
        format!("(?i){source}")
    } else {
        source.to_string()
    };
    regex::Regex::new(&pattern).map_err(|e| {
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        err(format!("regex \"{source}\" compile failed: {reason}"), d)
    })
}

/// Splits `HOST[:PORT]` / `[V6][:PORT]` / `IP:PORT`; resolves into addresses.
/// The error is nginx's reason (`host not found`, `invalid port`, ...).
fn resolve(
    text: &str,
    default_port: u16,
    allow_zero_port: bool,
) -> Result<Vec<SocketAddr>, String> {
    if text.starts_with("unix:") {
        return Err("unix domain sockets are not supported".to_string());
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        if sa.port() == 0 && !allow_zero_port {
            return Err("invalid port".to_string());
        }
        return Ok(vec![sa]);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        if ip.is_ipv4() {
            return Ok(vec![SocketAddr::new(ip, default_port)]);
        }
        return Err("invalid host".to_string());
    }
    if let Some(inner) = text.strip_prefix('[') {
        let Some((v6, rest)) = inner.split_once(']') else {
            return Err("invalid host".to_string());
        };
        let ip: IpAddr = v6.parse().map_err(|_| "invalid host".to_string())?;
        let port = if rest.is_empty() {
            default_port
        } else {
            let p = rest
                .strip_prefix(':')
                .ok_or_else(|| "invalid host".to_string())?;
            parse_port(p, allow_zero_port)?
        };
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, parse_port(port, allow_zero_port)?),
        None => (text, default_port),
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    if host.contains(':') || host.contains('/') || host.contains('*') {
        return Err("invalid host".to_string());
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| "host not found".to_string())?
        .collect();
    if addrs.is_empty() {
        return Err("host not found".to_string());
    }
    Ok(addrs)
}

fn parse_port(text: &str, allow_zero: bool) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) if !allow_zero => Err("invalid port".to_string()),
        Ok(p) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err("invalid port".to_string()),
    }
}

/// A cookie name: an RFC 6265 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// A cookie attribute value (`domain=`, `path=`): visible ASCII without `;`.
fn is_attribute_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}

/// `session_sticky [param=value ...]`, validated exactly (spec section 1).
fn sticky_directive(d: &Directive, warnings: &mut Vec<ConfigWarning>) -> Res<StickyConf> {
    simple(d, 0, usize::MAX)?;
    let mut conf = StickyConf::default();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut option_indirect = false;
    for a in &d.args {
        let raw = a.value.as_str();
        let invalid = || err(format!("invalid parameter \"{raw}\""), d);
        let Some((key, value)) = raw.split_once('=') else {
            return Err(invalid());
        };
        if !matches!(
            key,
            "cookie"
                | "domain"
                | "path"
                | "maxage"
                | "mode"
                | "option"
                | "maxidle"
                | "maxlife"
                | "fallback"
                | "hash"
        ) || value.is_empty()
        {
            return Err(invalid());
        }
        if !seen.insert(key) {
            return Err(err(
                format!("duplicate parameter \"{key}\" in \"session_sticky\" directive"),
                d,
            ));
        }
        let seconds = || units::parse_seconds(value).map_err(|_| invalid());
        match key {
            "cookie" if is_token(value) => conf.cookie = value.to_string(),
            "domain" if is_attribute_value(value) => conf.domain = Some(value.to_string()),
            "path" if is_attribute_value(value) => conf.path = value.to_string(),
            "maxage" => conf.maxage = Some(seconds()?),
            "maxidle" => conf.maxidle = Some(seconds()?),
            "maxlife" => conf.maxlife = Some(seconds()?),
            "mode" => {
                conf.mode = match value {
                    "insert" => Mode::Insert,
                    "rewrite" => Mode::Rewrite,
                    "prefix" => Mode::Prefix,
                    _ => return Err(invalid()),
                }
            }
            "option" => {
                option_indirect = match value {
                    "indirect" => true,
                    "direct" => false,
                    _ => return Err(invalid()),
                }
            }
            "fallback" => {
                conf.fallback = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(invalid()),
                }
            }
            "hash" => {
                conf.hash = match value {
                    "md5" => Hash::Md5,
                    "plain" => Hash::Plain,
                    _ => return Err(invalid()),
                }
            }
            _ => return Err(invalid()),
        }
    }
    match (conf.maxidle, conf.maxlife) {
        (Some(_), None) => conf.maxlife = Some(UNLIMITED_SECS),
        (None, Some(_)) => conf.maxidle = Some(UNLIMITED_SECS),
        _ => {}
    }
    if option_indirect && conf.mode == Mode::Rewrite {
        warnings.push(ConfigWarning {
            message: "\"option=indirect\" has no effect with \"mode=rewrite\" and is ignored"
                .to_string(),
            span: d.span.clone(),
        });
    } else {
        conf.indirect = option_indirect;
    }
    Ok(conf)
}

impl Builder {
    fn warn(&mut self, d: &Directive, message: &str) {
        self.warnings.push(ConfigWarning {
            message: message.to_string(),
            span: d.span.clone(),
        });
    }

    /// nginx's `conflicting server name "x" on ADDR, ignored` for an exact name
    /// that an earlier server already claims on the same address.
    fn warn_conflicting_names(
        &mut self,
        d: &Directive,
        server: &ServerConf,
        seen: &mut HashSet<(SocketAddr, String)>,
    ) {
        for listen in &server.listens {
            for name in &server.names {
                let ServerName::Exact(name) = name else {
                    continue;
                };
                if name.is_empty() {
                    continue;
                }
                if !seen.insert((listen.addr, name.clone())) {
                    self.warn(
                        d,
                        &format!(
                            "conflicting server name \"{name}\" on {}, ignored",
                            listen.addr
                        ),
                    );
                }
            }
        }
    }

    /// Two peers of a sticky upstream with the same server id cannot be told apart
    /// by the cookie; the first one would get every pinned request.
    fn warn_shared_sids(
        &mut self,
        d: &Directive,
        upstream: &str,
        conf: &StickyConf,
        peers: &[PeerConf],
    ) {
        let mut seen: HashSet<&str> = HashSet::new();
        for p in peers {
            let sid = match (conf.hash, &p.id) {
                (Hash::Plain, Some(id)) => id.as_str(),
                _ => p.name.as_str(),
            };
            if !seen.insert(sid) {
                self.warn(
                    d,
                    &format!(
                        "servers of upstream \"{upstream}\" share the server id of \"{sid}\"; \
                         sticky cookies cannot tell them apart"
                    ),
                );
            }
        }
    }

    fn ignored(&mut self, d: &Directive, why: &str) {
        self.warn(d, &format!("\"{}\" directive is ignored: {why}", d.name));
    }

    fn events(&mut self, block: &[Directive], worker_connections: &mut Option<usize>) -> Res<()> {
        for d in block {
            match d.name.as_str() {
                "worker_connections" => {
                    simple(d, 1, 1)?;
                    let n = match arg(d, 0).parse::<usize>() {
                        Ok(n) if n > 0 && arg(d, 0).bytes().all(|b| b.is_ascii_digit()) => n,
                        _ => return Err(err(format!("invalid number \"{}\"", arg(d, 0)), d)),
                    };
                    set_once(worker_connections, n, d)?;
                }
                "use" => {
                    simple(d, 1, 1)?;
                    self.ignored(d, "the proxy picks its own event mechanism");
                }
                "multi_accept" | "accept_mutex" => {
                    simple(d, 1, 1)?;
                    flag(d)?;
                    self.ignored(d, "each worker thread accepts on its own listener");
                }
                "accept_mutex_delay" => {
                    simple(d, 1, 1)?;
                    time(d, arg(d, 0))?;
                    self.ignored(d, "each worker thread accepts on its own listener");
                }
                _ => return Err(not_allowed(d)),
            }
        }
        Ok(())
    }

    fn http(&mut self, block: &[Directive]) -> Res<(HttpConf, Option<ErrorLog>)> {
        let mut st = HttpState {
            named: Vec::new(),
            implicit: Vec::new(),
            log_formats: HashMap::new(),
            log_format_escapes: HashMap::new(),
            format_uses: Vec::new(),
            default_servers: HashSet::new(),
        };
        let combined = template::parse(COMBINED_FORMAT).map_err(ConfigError::without_span)?;
        st.log_formats
            .insert("combined".to_string(), Arc::new(combined));
        st.log_format_escapes
            .insert("combined".to_string(), Escape::Default);

        // Pass 1: upstream blocks.
        for d in block.iter().filter(|d| d.name == "upstream") {
            let up = self.upstream(d)?;
            if st
                .named
                .iter()
                .any(|u| u.name.eq_ignore_ascii_case(&up.name))
            {
                return Err(err(format!("duplicate upstream \"{}\"", up.name), d));
            }
            st.named.push(up);
        }

        // Pass 2: everything else; servers after the http level is complete.
        let mut layer = Layer::default();
        let mut conn = ConnLayer::default();
        let mut error_log = None;
        let mut servers = Vec::new();
        for d in block {
            match d.name.as_str() {
                "upstream" => {}
                "server" => {
                    block_of(d)?;
                    servers.push(d);
                }
                "error_log" => {
                    let log = error_log_directive(d)?;
                    if error_log.is_none() {
                        error_log = Some(log);
                    }
                }
                "check_shm_size" => {
                    simple(d, 1, 1)?;
                    size(d, arg(d, 0))?;
                    self.ignored(d, "health state lives in process memory");
                }
                _ => {
                    if !self.common(d, &mut layer, &mut st)? && !self.connection(d, &mut conn)? {
                        return Err(not_allowed(d));
                    }
                }
            }
        }
        let mut built = Vec::new();
        let mut names_seen: HashSet<(SocketAddr, String)> = HashSet::new();
        for d in servers {
            let server = self.server(d, &layer, &conn, &mut st)?;
            self.warn_conflicting_names(d, &server, &mut names_seen);
            built.push(Arc::new(server));
        }
        for (format, span) in &st.format_uses {
            if !st.log_formats.contains_key(format) {
                return Err(ConfigError::new(
                    format!("unknown log format \"{format}\""),
                    span,
                ));
            }
        }
        let upstreams = st
            .named
            .into_iter()
            .chain(st.implicit)
            .map(Arc::new)
            .collect();
        Ok((
            HttpConf {
                upstreams,
                servers: built,
                log_formats: st.log_formats,
                log_format_escapes: st.log_format_escapes,
            },
            error_log,
        ))
    }

    fn upstream(&mut self, d: &Directive) -> Res<UpstreamConf> {
        let body = block(d, 1, 1)?;
        let name = arg(d, 0).to_string();
        let mut peers = Vec::new();
        let mut has_server = false;
        let mut sticky = None;
        let mut keepalive = None;
        let mut keepalive_timeout = None;
        let mut keepalive_requests = None;
        let mut check: Option<CheckConf> = None;
        let mut http_send: Option<(Vec<u8>, &Directive)> = None;
        let mut expect_alive: Option<(StatusClasses, &Directive)> = None;
        let mut check_keepalive: Option<(u32, &Directive)> = None;
        for x in body {
            match x.name.as_str() {
                "server" => {
                    simple(x, 1, usize::MAX)?;
                    peers.extend(upstream_server(x)?);
                    has_server = true;
                }
                "check" => {
                    let conf = self.check_directive(x)?;
                    set_once(&mut check, conf, x)?;
                }
                "check_http_send" => {
                    simple(x, 1, 1)?;
                    if arg(x, 0).is_empty() {
                        return Err(directive_err(x, "invalid value"));
                    }
                    set_once(&mut http_send, (arg(x, 0).as_bytes().to_vec(), x), x)?;
                }
                "check_http_expect_alive" => {
                    simple(x, 1, usize::MAX)?;
                    set_once(&mut expect_alive, (expect_alive_directive(x)?, x), x)?;
                }
                "check_keepalive_requests" => {
                    simple(x, 1, 1)?;
                    let n = positive::<u32>(x)?;
                    set_once(&mut check_keepalive, (n, x), x)?;
                }
                "session_sticky" => {
                    let conf = sticky_directive(x, &mut self.warnings)?;
                    set_once(&mut sticky, conf, x)?;
                }
                "keepalive" => {
                    simple(x, 1, 1)?;
                    let n = positive::<usize>(x)?;
                    set_once(&mut keepalive, n, x)?;
                }
                "keepalive_timeout" => {
                    simple(x, 1, 1)?;
                    set_once(&mut keepalive_timeout, time(x, arg(x, 0))?, x)?;
                }
                "keepalive_requests" => {
                    simple(x, 1, 1)?;
                    set_once(&mut keepalive_requests, number(x, arg(x, 0))?, x)?;
                }
                _ => return Err(not_allowed(x)),
            }
        }
        if !has_server {
            return Err(err("no servers are inside upstream", d));
        }
        if let Some(conf) = &sticky {
            self.warn_shared_sids(d, &name, conf, &peers);
        }
        match check.as_mut() {
            Some(check) => {
                if let Some((send, x)) = http_send {
                    if check.kind != CheckType::Http {
                        self.ignored(x, "the check is not \"type=http\"");
                    }
                    check.http_send = send;
                }
                if let Some((classes, x)) = expect_alive {
                    if check.kind != CheckType::Http {
                        self.ignored(x, "the check is not \"type=http\"");
                    }
                    check.expect_alive = classes;
                }
                if let Some((n, x)) = check_keepalive {
                    if check.kind != CheckType::Http {
                        self.ignored(x, "the check is not \"type=http\"");
                    } else {
                        if n > 1 && !asks_keep_alive(&check.http_send) {
                            self.warn(
                                x,
                                "\"check_keepalive_requests\" needs a \"check_http_send\" request that keeps the connection open (HTTP/1.1, or \"Connection: keep-alive\"): the backend may close it after every check",
                            );
                        }
                        check.keepalive_requests = n;
                    }
                }
            }
            None => {
                for x in [
                    http_send.map(|h| h.1),
                    expect_alive.map(|e| e.1),
                    check_keepalive.map(|k| k.1),
                ]
                .into_iter()
                .flatten()
                {
                    self.ignored(x, "there is no \"check\" in this upstream");
                }
            }
        }
        Ok(UpstreamConf {
            name,
            implicit: false,
            peers,
            sticky,
            keepalive,
            keepalive_timeout: keepalive_timeout.unwrap_or(Duration::from_secs(60)),
            keepalive_requests: keepalive_requests.unwrap_or(1000),
            check,
        })
    }

    /// Tengine's `check interval=MS [fall=N] [rise=N] [timeout=MS]
    /// [default_down=true|false] [type=tcp|http|...] [port=N]`.
    fn check_directive(&mut self, d: &Directive) -> Res<CheckConf> {
        simple(d, 0, usize::MAX)?;
        let mut conf = CheckConf::default();
        let mut seen: HashSet<&str> = HashSet::new();
        for a in &d.args {
            let raw = a.value.as_str();
            let invalid = || err(format!("invalid parameter \"{raw}\""), d);
            let Some((key, value)) = raw.split_once('=') else {
                return Err(invalid());
            };
            if value.is_empty() {
                return Err(invalid());
            }
            if !seen.insert(key) {
                return Err(err(
                    format!("duplicate parameter \"{key}\" in \"check\" directive"),
                    d,
                ));
            }
            let count = || match value.parse::<u32>() {
                Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(invalid()),
            };
            match key {
                "interval" => conf.interval = check_millis(value).ok_or_else(invalid)?,
                "timeout" => conf.timeout = check_millis(value).ok_or_else(invalid)?,
                "rise" => conf.rise = count()?,
                "fall" => conf.fall = count()?,
                "default_down" => {
                    conf.default_down = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid()),
                    }
                }
                "port" => {
                    conf.port = match parse_port(value, true) {
                        Ok(0) => None,
                        Ok(p) => Some(p),
                        Err(_) => return Err(invalid()),
                    }
                }
                "type" => {
                    conf.kind = match value {
                        "tcp" => CheckType::Tcp,
                        "http" => CheckType::Http,
                        "ssl_hello" | "mysql" | "ajp" | "fastcgi" => {
                            self.warn(
                                d,
                                &format!(
                                    "\"type={value}\" in \"check\" directive is checked as \"type=tcp\" (a connect test)"
                                ),
                            );
                            CheckType::Tcp
                        }
                        _ => return Err(invalid()),
                    }
                }
                _ => return Err(invalid()),
            }
        }
        Ok(conf)
    }

    /// Directives allowed at http, server and location level. `Ok(false)` when `d`
    /// is not one of them.
    fn common(&mut self, d: &Directive, layer: &mut Layer, st: &mut HttpState) -> Res<bool> {
        match d.name.as_str() {
            "proxy_set_header" => {
                simple(d, 2, 2)?;
                let name = header_name(d, arg(d, 0))?;
                let value = arg(d, 1);
                if value.contains(['\r', '\n']) {
                    return Err(err(format!("invalid header value \"{value}\""), d));
                }
                let value = template_arg(d, value)?;
                layer
                    .set_headers
                    .get_or_insert_with(Vec::new)
                    .push((name, value));
            }
            "proxy_hide_header" | "proxy_pass_header" => {
                simple(d, 1, 1)?;
                let name = header_name(d, arg(d, 0))?;
                let list = if d.name == "proxy_hide_header" {
                    &mut layer.hide_headers
                } else {
                    &mut layer.pass_headers
                };
                list.get_or_insert_with(Vec::new).push(name);
            }
            "proxy_http_version" => {
                simple(d, 1, 1)?;
                let v = match arg(d, 0) {
                    "1.0" => http::Version::HTTP_10,
                    "1.1" => http::Version::HTTP_11,
                    other => return Err(err(format!("invalid value \"{other}\""), d)),
                };
                set_once(&mut layer.http_version, v, d)?;
            }
            "proxy_connect_timeout"
            | "proxy_read_timeout"
            | "proxy_send_timeout"
            | "proxy_next_upstream_timeout" => {
                simple(d, 1, 1)?;
                let t = time(d, arg(d, 0))?;
                let slot = match d.name.as_str() {
                    "proxy_connect_timeout" => &mut layer.connect_timeout,
                    "proxy_read_timeout" => &mut layer.read_timeout,
                    "proxy_send_timeout" => &mut layer.send_timeout,
                    _ => &mut layer.next_upstream_timeout,
                };
                set_once(slot, t, d)?;
            }
            "proxy_next_upstream" => {
                simple(d, 1, usize::MAX)?;
                let v = next_upstream(d)?;
                set_once(&mut layer.next_upstream, v, d)?;
            }
            "proxy_next_upstream_tries" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.next_upstream_tries, number(d, arg(d, 0))?, d)?;
            }
            "client_max_body_size" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.client_max_body_size, size(d, arg(d, 0))?, d)?;
            }
            "server_tokens" => {
                simple(d, 1, 1)?;
                let on = match arg(d, 0) {
                    "on" => true,
                    "off" => false,
                    other => return Err(err(format!("invalid value \"{other}\""), d)),
                };
                set_once(&mut layer.server_tokens, on, d)?;
            }
            "access_log" => self.access_log(d, layer, st)?,
            "log_format" => log_format(d, st)?,
            "session_sticky_hide_cookie" | "session_sticky_header" => {
                simple(d, 1, 1)?;
                let raw = arg(d, 0);
                let name = match raw.strip_prefix("upstream=") {
                    Some(n) if !n.is_empty() => n,
                    _ => return Err(err(format!("invalid parameter \"{raw}\""), d)),
                };
                let Some(up) = st.named.iter().find(|u| u.name.eq_ignore_ascii_case(name)) else {
                    return Err(err(
                        format!(
                            "upstream \"{name}\" in \"{}\" directive is not defined",
                            d.name
                        ),
                        d,
                    ));
                };
                if up.sticky.is_none() {
                    return Err(err(
                        format!(
                            "upstream \"{name}\" in \"{}\" directive has no \"session_sticky\"",
                            d.name
                        ),
                        d,
                    ));
                }
                set_once(&mut layer.hide_cookie, up.name.clone(), d)?;
            }
            "sendfile" | "tcp_nopush" | "tcp_nodelay" => {
                simple(d, 1, 1)?;
                flag(d)?;
                self.ignored(d, "the proxy streams responses itself");
            }
            "proxy_buffering" => {
                simple(d, 1, 1)?;
                flag(d)?;
                self.ignored(d, "bodies are always streamed");
            }
            "proxy_buffer_size" => {
                simple(d, 1, 1)?;
                size(d, arg(d, 0))?;
                self.ignored(d, "bodies are always streamed");
            }
            "proxy_buffers" => {
                simple(d, 2, 2)?;
                number::<u64>(d, arg(d, 0))?;
                size(d, arg(d, 1))?;
                self.ignored(d, "bodies are always streamed");
            }
            "types" => {
                block(d, 0, 0)?;
                self.ignored(d, "the proxy does not serve files");
            }
            "default_type" | "charset" => {
                simple(d, 1, 1)?;
                self.ignored(d, "the proxy does not serve files");
            }
            "gzip" => {
                simple(d, 1, 1)?;
                if flag(d)? {
                    self.ignored(d, "compression is not supported");
                } else {
                    self.ignored(d, "responses are never compressed");
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn access_log(&mut self, d: &Directive, layer: &mut Layer, st: &mut HttpState) -> Res<()> {
        simple(d, 1, usize::MAX)?;
        let path = arg(d, 0);
        if path == "off" {
            if let Some(extra) = d.args.get(1) {
                return Err(err(format!("invalid parameter \"{}\"", extra.value), d));
            }
            layer.access_log = Some(AccessLog::Off);
            return Ok(());
        }
        if path.contains('$') {
            return Err(err(
                "variables in \"access_log\" paths are not supported",
                d,
            ));
        }
        let format = match d.args.get(1) {
            Some(a) => a.value.clone(),
            None => "combined".to_string(),
        };
        for a in d.args.iter().skip(2) {
            let p = a.value.as_str();
            if p.starts_with("buffer=")
                || p.starts_with("flush=")
                || p == "gzip"
                || p.starts_with("gzip=")
            {
                self.warn(
                    d,
                    &format!("\"{p}\" parameter of \"access_log\" is ignored: lines are written as they come"),
                );
            } else {
                return Err(err(format!("invalid parameter \"{p}\""), d));
            }
        }
        st.format_uses.push((format.clone(), d.span.clone()));
        let target = AccessLogTarget {
            path: PathBuf::from(path),
            format,
        };
        match &mut layer.access_log {
            Some(AccessLog::On(list)) => list.push(target),
            Some(AccessLog::Off) => {}
            None => layer.access_log = Some(AccessLog::On(vec![target])),
        }
        Ok(())
    }

    /// Connection-level directives (http and server only). `Ok(false)` when `d` is
    /// not one of them.
    fn connection(&mut self, d: &Directive, conn: &mut ConnLayer) -> Res<bool> {
        match d.name.as_str() {
            "client_header_timeout" | "client_body_timeout" | "send_timeout" => {
                simple(d, 1, 1)?;
                let t = time(d, arg(d, 0))?;
                let slot = match d.name.as_str() {
                    "client_header_timeout" => &mut conn.client_header_timeout,
                    "client_body_timeout" => &mut conn.client_body_timeout,
                    _ => &mut conn.send_timeout,
                };
                set_once(slot, t, d)?;
            }
            "keepalive_timeout" => {
                simple(d, 1, 2)?;
                let t = time(d, arg(d, 0))?;
                if let Some(a) = d.args.get(1) {
                    time(d, &a.value)?;
                    self.warn(d, "the \"Keep-Alive: timeout=\" header time of \"keepalive_timeout\" is ignored");
                }
                set_once(&mut conn.keepalive_timeout, t, d)?;
            }
            "keepalive_requests" => {
                simple(d, 1, 1)?;
                set_once(&mut conn.keepalive_requests, number(d, arg(d, 0))?, d)?;
            }
            "large_client_header_buffers" => {
                simple(d, 2, 2)?;
                let n: usize = number(d, arg(d, 0))?;
                let s = size(d, arg(d, 1))?;
                if n == 0 || s == 0 {
                    return Err(directive_err(d, "invalid value"));
                }
                let s = usize::try_from(s).map_err(|_| directive_err(d, "invalid value"))?;
                set_once(&mut conn.large_client_header_buffers, (n, s), d)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn server(
        &mut self,
        d: &Directive,
        http_layer: &Layer,
        http_conn: &ConnLayer,
        st: &mut HttpState,
    ) -> Res<ServerConf> {
        let body = block(d, 0, 0)?;
        let mut layer = Layer::default();
        let mut conn = ConnLayer::default();
        let mut listens: Vec<Listen> = Vec::new();
        let mut names = Vec::new();
        let mut return_ = None;
        let mut location_dirs = Vec::new();
        for x in body {
            match x.name.as_str() {
                "listen" => self.listen(x, &mut listens, st)?,
                "server_name" => {
                    simple(x, 1, usize::MAX)?;
                    for a in &x.args {
                        names.push(server_name(x, &a.value)?);
                    }
                }
                "location" => {
                    block_of(x)?;
                    location_dirs.push(x);
                }
                "return" => self.return_directive(x, &mut return_)?,
                "error_log" => {
                    error_log_directive(x)?;
                    self.ignored(x, "one error log serves the whole process");
                }
                _ => {
                    if !self.common(x, &mut layer, st)? && !self.connection(x, &mut conn)? {
                        return Err(not_allowed(x));
                    }
                }
            }
        }
        if listens.is_empty() {
            listens.push(Listen {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80),
                default_server: false,
                reuseport: false,
                backlog: 511,
            });
        }
        if names.is_empty() {
            names.push(ServerName::Exact(String::new()));
        }
        let merged = layer.inherit(http_layer);
        let locations = self.locations(&location_dirs, &merged, None, st)?;
        Ok(ServerConf {
            listens,
            names,
            return_,
            locations,
            conf: Arc::new(merged.finish(None, None)),
            connection: conn.inherit(http_conn).finish(),
            span: d.span.clone(),
        })
    }

    fn listen(&mut self, d: &Directive, listens: &mut Vec<Listen>, st: &mut HttpState) -> Res<()> {
        simple(d, 1, usize::MAX)?;
        let text = arg(d, 0);
        let addrs = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let port = parse_port(text, true).map_err(|m| listen_err(d, &m, text))?;
            vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)]
        } else if let Some(port) = text.strip_prefix("*:") {
            let port = parse_port(port, true).map_err(|m| listen_err(d, &m, text))?;
            vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)]
        } else {
            resolve(text, 80, true).map_err(|m| listen_err(d, &m, text))?
        };
        let mut default_server = false;
        let mut reuseport = false;
        let mut backlog = 511;
        for a in d.args.iter().skip(1) {
            let p = a.value.as_str();
            match p {
                "default_server" | "default" => default_server = true,
                "reuseport" => reuseport = true,
                "bind" => {}
                "ssl" | "http2" | "quic" | "proxy_protocol" => {
                    return Err(err(
                        format!(
                        "the \"{p}\" parameter of the \"listen\" directive is not supported yet"
                    ),
                        d,
                    ))
                }
                _ => match p.strip_prefix("backlog=") {
                    Some(n) => {
                        backlog = match n.parse::<i32>() {
                            Ok(v) if v > 0 => v,
                            _ => return Err(err(format!("invalid backlog \"{p}\""), d)),
                        }
                    }
                    None => return Err(err(format!("invalid parameter \"{p}\""), d)),
                },
            }
        }
        for addr in addrs {
            if listens.iter().any(|l| l.addr == addr) {
                return Err(err(format!("a duplicate listen {addr}"), d));
            }
            if default_server && !st.default_servers.insert(addr) {
                return Err(err(format!("a duplicate default server for {addr}"), d));
            }
            listens.push(Listen {
                addr,
                default_server,
                reuseport,
                backlog,
            });
        }
        Ok(())
    }

    fn return_directive(&mut self, d: &Directive, slot: &mut Option<Return>) -> Res<()> {
        simple(d, 1, 2)?;
        let first = arg(d, 0);
        let ret = if d.args.len() == 1
            && (first.starts_with("http://")
                || first.starts_with("https://")
                || first.starts_with("$scheme"))
        {
            Return {
                code: 302,
                text: Some(template_arg(d, first)?),
            }
        } else {
            let code = match first.parse::<u16>() {
                Ok(c) if c <= 999 && first.bytes().all(|b| b.is_ascii_digit()) => c,
                _ => return Err(err(format!("invalid return code \"{first}\""), d)),
            };
            let text = match d.args.get(1) {
                Some(a) => Some(template_arg(d, &a.value)?),
                None => None,
            };
            Return { code, text }
        };
        if slot.is_some() {
            self.warn(d, "\"return\" after another \"return\" is never reached");
        } else {
            *slot = Some(ret);
        }
        Ok(())
    }

    /// Builds sibling locations, rejecting duplicates as nginx does.
    fn locations(
        &mut self,
        dirs: &[&Directive],
        parent_layer: &Layer,
        parent: Option<&ParentLocation<'_>>,
        st: &mut HttpState,
    ) -> Res<Vec<Location>> {
        let mut seen: HashSet<(bool, String)> = HashSet::new();
        let mut out = Vec::new();
        for d in dirs {
            let loc = self.location(d, parent_layer, parent, st)?;
            let key = match &loc.matcher {
                LocationMatch::Exact(uri) => Some((true, uri.clone())),
                LocationMatch::Prefix { uri, .. } => Some((false, uri.clone())),
                LocationMatch::Regex { .. } => None,
            };
            if let Some(key) = key {
                if !seen.insert(key.clone()) {
                    return Err(err(format!("duplicate location \"{}\"", key.1), d));
                }
            }
            out.push(loc);
        }
        Ok(out)
    }

    fn location(
        &mut self,
        d: &Directive,
        parent_layer: &Layer,
        parent: Option<&ParentLocation<'_>>,
        st: &mut HttpState,
    ) -> Res<Location> {
        let body = block(d, 1, 2)?;
        let (matcher, name) = location_matcher(d)?;
        let is_regex = matches!(matcher, LocationMatch::Regex { .. });
        if let Some(p) = parent {
            if p.exact {
                return Err(err(
                    format!(
                        "location \"{name}\" cannot be inside the exact location \"{}\"",
                        p.name
                    ),
                    d,
                ));
            }
            if !is_regex && !name.starts_with(p.name) {
                return Err(err(
                    format!("location \"{name}\" is outside location \"{}\"", p.name),
                    d,
                ));
            }
        }
        let mut layer = Layer::default();
        let mut proxy_pass = None;
        let mut return_ = None;
        let mut check_status = None;
        let mut nested_dirs = Vec::new();
        for x in body {
            match x.name.as_str() {
                "location" => {
                    block_of(x)?;
                    nested_dirs.push(x);
                }
                "proxy_pass" => {
                    let pp = proxy_pass_directive(x, is_regex, st)?;
                    set_once(&mut proxy_pass, pp, x)?;
                }
                "return" => self.return_directive(x, &mut return_)?,
                "check_status" => {
                    simple(x, 0, 1)?;
                    let format = match x.args.first() {
                        None => StatusFormat::Html,
                        Some(a) => match StatusFormat::from_name(&a.value) {
                            Some(f) => f,
                            None => {
                                return Err(err(format!("invalid parameter \"{}\"", a.value), x))
                            }
                        },
                    };
                    set_once(&mut check_status, format, x)?;
                }
                _ => {
                    if !self.common(x, &mut layer, st)? {
                        return Err(not_allowed(x));
                    }
                }
            }
        }
        if check_status.is_some() && (proxy_pass.is_some() || return_.is_some()) {
            return Err(err(
                "\"check_status\" cannot be combined with \"proxy_pass\" or \"return\" in one location",
                d,
            ));
        }
        let merged = layer.inherit(parent_layer);
        let me = ParentLocation {
            name: &name,
            exact: matches!(matcher, LocationMatch::Exact(_)),
        };
        let nested = self.locations(&nested_dirs, &merged, Some(&me), st)?;
        let mut conf = merged.finish(proxy_pass, return_);
        conf.check_status = check_status;
        Ok(Location {
            matcher,
            conf: Arc::new(conf),
            nested,
        })
    }
}

/// Checks that a block directive really has a block (its arguments are checked
/// when it is built).
fn block_of(d: &Directive) -> Res<()> {
    if d.block.is_none() {
        return Err(err(
            format!("directive \"{}\" has no opening \"{{\"", d.name),
            d,
        ));
    }
    Ok(())
}

fn listen_err(d: &Directive, reason: &str, text: &str) -> ConfigError {
    err(
        format!("{reason} in \"{text}\" of the \"listen\" directive"),
        d,
    )
}

/// One upstream `server ADDRESS [params]` line: one peer per resolved address.
fn upstream_server(d: &Directive) -> Res<Vec<PeerConf>> {
    let text = arg(d, 0);
    let mut weight = 1;
    let mut max_fails = 1;
    let mut fail_timeout = Duration::from_secs(10);
    let mut down = false;
    let mut backup = false;
    let mut drain = false;
    let mut id = None;
    for a in d.args.iter().skip(1) {
        let p = a.value.as_str();
        let invalid = || err(format!("invalid parameter \"{p}\""), d);
        match p {
            "down" => down = true,
            "backup" => backup = true,
            "drain" => drain = true,
            _ => {
                let Some((key, value)) = p.split_once('=') else {
                    return Err(invalid());
                };
                match key {
                    "weight" => {
                        weight = match value.parse::<u32>() {
                            Ok(w) if w > 0 && value.bytes().all(|b| b.is_ascii_digit()) => w,
                            _ => return Err(invalid()),
                        }
                    }
                    "max_fails" => {
                        max_fails = match value.parse::<u32>() {
                            Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => n,
                            _ => return Err(invalid()),
                        }
                    }
                    "fail_timeout" => {
                        fail_timeout = units::parse_time(value).map_err(|_| invalid())?;
                    }
                    "id" if !value.is_empty() => id = Some(value.to_string()),
                    _ => return Err(invalid()),
                }
            }
        }
    }
    let addrs = resolve(text, 80, false)
        .map_err(|reason| err(format!("{reason} in upstream \"{text}\""), d))?;
    Ok(addrs
        .into_iter()
        .map(|addr| PeerConf {
            name: addr.to_string(),
            addr,
            server: text.to_string(),
            weight,
            max_fails,
            fail_timeout,
            down,
            backup,
            id: id.clone(),
            drain,
        })
        .collect())
}

/// A `check` time: bare digits are milliseconds (Tengine), anything else an nginx
/// time value (`3s`, `500ms`). Zero is rejected.
fn check_millis(value: &str) -> Option<Duration> {
    let t = if value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_millis(value.parse().ok()?)
    } else {
        units::parse_time(value).ok()?
    };
    (!t.is_zero()).then_some(t)
}

/// True when the raw check request `send` leaves the connection open: an
/// HTTP/1.1 request line, or `Connection: keep-alive`, and no
/// `Connection: close`.
fn asks_keep_alive(send: &[u8]) -> bool {
    let text = String::from_utf8_lossy(send).to_ascii_lowercase();
    let request_line = text.lines().next().unwrap_or_default();
    let headers = || text.lines().skip(1).map(|l| l.replace(' ', ""));
    !headers().any(|h| h.starts_with("connection:") && h.contains("close"))
        && (request_line.trim_end().ends_with("http/1.1")
            || headers().any(|h| h.starts_with("connection:") && h.contains("keep-alive")))
}

/// `check_http_expect_alive http_2xx ...`.
fn expect_alive_directive(d: &Directive) -> Res<StatusClasses> {
    let mut classes = StatusClasses(0);
    for a in &d.args {
        let class = match a.value.as_str() {
            "http_2xx" => 2,
            "http_3xx" => 3,
            "http_4xx" => 4,
            "http_5xx" => 5,
            other => return Err(err(format!("invalid parameter \"{other}\""), d)),
        };
        classes = classes.with(class);
    }
    Ok(classes)
}

fn next_upstream(d: &Directive) -> Res<NextUpstream> {
    let mut v = NextUpstream::default();
    let mut off = false;
    for a in &d.args {
        match a.value.as_str() {
            "error" => v.error = true,
            "timeout" => v.timeout = true,
            "invalid_header" => v.invalid_header = true,
            "non_idempotent" => v.non_idempotent = true,
            "off" => off = true,
            other => {
                let status = match other {
                    "http_500" => 500,
                    "http_502" => 502,
                    "http_503" => 503,
                    "http_504" => 504,
                    "http_403" => 403,
                    "http_404" => 404,
                    "http_429" => 429,
                    _ => return Err(err(format!("invalid value \"{other}\""), d)),
                };
                if !v.statuses.contains(&status) {
                    v.statuses.push(status);
                }
            }
        }
    }
    if off {
        return Ok(NextUpstream::default());
    }
    Ok(v)
}

fn log_format(d: &Directive, st: &mut HttpState) -> Res<()> {
    simple(d, 2, usize::MAX)?;
    let name = arg(d, 0).to_string();
    let mut strings = d.args.get(1..).unwrap_or_default();
    let mut escape = Escape::Default;
    if let Some(mode) = arg(d, 1).strip_prefix("escape=") {
        escape = match mode {
            "default" => Escape::Default,
            "json" => Escape::Json,
            "none" => Escape::None,
            other => return Err(err(format!("unknown log format escaping \"{other}\""), d)),
        };
        strings = d.args.get(2..).unwrap_or_default();
    }
    if strings.is_empty() {
        return Err(err(
            "invalid number of arguments in \"log_format\" directive",
            d,
        ));
    }
    if st.log_formats.contains_key(&name) {
        return Err(err(format!("duplicate \"log_format\" name \"{name}\""), d));
    }
    let source: String = strings.iter().map(|a| a.value.as_str()).collect();
    let t = template_arg(d, &source)?;
    st.log_formats.insert(name.clone(), Arc::new(t));
    st.log_format_escapes.insert(name, escape);
    Ok(())
}

fn server_name(d: &Directive, raw: &str) -> Res<ServerName> {
    if let Some(re) = raw.strip_prefix('~') {
        return Ok(ServerName::Regex(compile_regex(d, re, true)?));
    }
    let name = raw.to_ascii_lowercase();
    let bad = || err(format!("invalid server name or wildcard \"{raw}\""), d);
    if let Some(rest) = name.strip_prefix("*.") {
        if rest.is_empty() || rest.contains('*') {
            return Err(bad());
        }
        return Ok(ServerName::LeadingWildcard {
            suffix: format!(".{rest}"),
            dot_form: false,
        });
    }
    if let Some(rest) = name.strip_prefix('.') {
        if rest.is_empty() || rest.contains('*') {
            return Err(bad());
        }
        return Ok(ServerName::LeadingWildcard {
            suffix: name.clone(),
            dot_form: true,
        });
    }
    if let Some(prefix) = name.strip_suffix('*') {
        if !prefix.ends_with('.') || prefix.len() < 2 || prefix.contains('*') {
            return Err(bad());
        }
        return Ok(ServerName::TrailingWildcard {
            prefix: prefix.to_string(),
        });
    }
    if name.contains('*') {
        return Err(bad());
    }
    Ok(ServerName::Exact(name))
}

/// `location [=|^~|~|~*] URI` (also the glued forms `=/x`, `~^/x`); returns the
/// matcher and the location's name (URI or regex source) for messages.
fn location_matcher(d: &Directive) -> Res<(LocationMatch, String)> {
    let (modifier, uri) = if d.args.len() == 2 {
        (arg(d, 0), arg(d, 1))
    } else {
        let a = arg(d, 0);
        if a.starts_with('@') {
            return Err(err(format!("named location \"{a}\" is not supported"), d));
        }
        ["~*", "^~", "=", "~"]
            .iter()
            .find_map(|m| {
                a.strip_prefix(m)
                    .filter(|rest| !rest.is_empty())
                    .map(|rest| (*m, rest))
            })
            .unwrap_or(("", a))
    };
    let matcher = match modifier {
        "" => LocationMatch::Prefix {
            uri: uri.to_string(),
            stop_regex: false,
        },
        "^~" => LocationMatch::Prefix {
            uri: uri.to_string(),
            stop_regex: true,
        },
        "=" => LocationMatch::Exact(uri.to_string()),
        "~" | "~*" => {
            let case_insensitive = modifier == "~*";
            LocationMatch::Regex {
                re: compile_regex(d, uri, case_insensitive)?,
                case_insensitive,
                source: uri.to_string(),
            }
        }
        other => return Err(err(format!("invalid location modifier \"{other}\""), d)),
    };
    Ok((matcher, uri.to_string()))
}

fn proxy_pass_directive(d: &Directive, in_regex: bool, st: &mut HttpState) -> Res<ProxyPass> {
    simple(d, 1, 1)?;
    let url = arg(d, 0);
    if url.contains('$') {
        return Err(err("variables in \"proxy_pass\" are not supported", d));
    }
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        url.get("http://".len()..).unwrap_or_default()
    } else if lower.starts_with("https://") {
        return Err(err(
            format!("\"proxy_pass\" to https:// is not supported yet in \"{url}\""),
            d,
        ));
    } else {
        return Err(err("invalid URL prefix", d));
    };
    let (host_port, uri) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let uri = (!uri.is_empty()).then(|| uri.to_string());
    if host_port.is_empty() {
        return Err(err(format!("no host in upstream \"{rest}\""), d));
    }
    if uri.is_some() && in_regex {
        return Err(err(
            "\"proxy_pass\" cannot have URI part in location given by regular expression, \
             or inside named location, or inside \"if\" statement, or inside \"limit_except\" block",
            d,
        ));
    }
    // `[v6]:port` has its colon after the bracket; a name has at most one colon.
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (host_port, None),
    };
    if let Some(index) = st
        .named
        .iter()
        .position(|u| u.name.eq_ignore_ascii_case(host))
    {
        if let Some(port) = port {
            return Err(err(
                format!("upstream \"{host}\" may not have port {port}"),
                d,
            ));
        }
        return Ok(ProxyPass {
            upstream: index,
            proxy_host: host_port.to_string(),
            uri,
        });
    }
    let index = match st.implicit.iter().position(|u| u.name == host_port) {
        Some(i) => i,
        None => {
            let addrs = resolve(host_port, 80, false)
                .map_err(|reason| err(format!("{reason} in upstream \"{host_port}\""), d))?;
            st.implicit.push(UpstreamConf {
                name: host_port.to_string(),
                implicit: true,
                peers: addrs
                    .into_iter()
                    .map(|addr| PeerConf {
                        name: addr.to_string(),
                        addr,
                        server: host_port.to_string(),
                        weight: 1,
                        max_fails: 1,
                        fail_timeout: Duration::from_secs(10),
                        down: false,
                        backup: false,
                        id: None,
                        drain: false,
                    })
                    .collect(),
                sticky: None,
                keepalive: None,
                keepalive_timeout: Duration::from_secs(60),
                keepalive_requests: 1000,
                check: None,
            });
            st.implicit.len() - 1
        }
    };
    Ok(ProxyPass {
        upstream: st.named.len() + index,
        proxy_host: host_port.to_string(),
        uri,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{load_str, Part, Variable};

    fn ok(src: &str) -> (Config, Vec<ConfigWarning>) {
        load_str(src, Path::new("/etc/proxy/test.conf")).unwrap_or_else(|e| panic!("{e}\n{src}"))
    }

    fn header_names(conf: &LocationConf) -> Vec<&str> {
        conf.proxy_set_headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let (c, warnings) =
            ok("http { server { location / { proxy_pass http://127.0.0.1:9000; } } }");
        assert!(warnings.is_empty());
        assert_eq!(c.main.worker_processes, WorkerProcesses::Count(1));
        assert_eq!(c.main.worker_connections, 512);
        assert_eq!(c.main.pid, None);
        assert_eq!(
            c.main.error_log,
            ErrorLog {
                path: "stderr".into(),
                level: LogLevel::Error
            }
        );
        let s = &c.http.servers[0];
        assert_eq!(
            s.listens,
            [Listen {
                addr: "0.0.0.0:80".parse().expect("addr"),
                default_server: false,
                reuseport: false,
                backlog: 511
            }]
        );
        assert!(matches!(&s.names[..], [ServerName::Exact(n)] if n.is_empty()));
        assert_eq!(s.connection, ConnLayer::default().finish());
        assert_eq!(s.connection.keepalive_timeout, Duration::from_secs(75));
        let l = &s.locations[0].conf;
        assert_eq!(l.proxy_http_version, http::Version::HTTP_10);
        assert_eq!(l.proxy_connect_timeout, Duration::from_secs(60));
        assert_eq!(l.proxy_read_timeout, Duration::from_secs(60));
        assert_eq!(l.proxy_send_timeout, Duration::from_secs(60));
        assert!(l.proxy_next_upstream.error && l.proxy_next_upstream.timeout);
        assert!(!l.proxy_next_upstream.invalid_header && l.proxy_next_upstream.statuses.is_empty());
        assert_eq!(l.proxy_next_upstream_tries, 0);
        assert_eq!(l.proxy_next_upstream_timeout, Duration::ZERO);
        assert_eq!(l.client_max_body_size, 1 << 20);
        assert_eq!(l.access_log, AccessLog::Off);
        assert!(l.server_tokens);
        assert!(l.proxy_set_headers.is_empty() && l.sticky_hide_cookie.is_none());
        assert_eq!(c.http.log_formats.len(), 1);
        assert_eq!(c.http.log_formats["combined"].source, COMBINED_FORMAT);
    }

    #[test]
    fn proxy_set_header_list_is_replaced_wholesale_per_level() {
        let (c, _) = ok("http {
              proxy_set_header A a;
              proxy_set_header B b;
              server {
                location /plain { }
                location /own { proxy_set_header C c;
                  location /own/nested { }
                  location /own/reset { proxy_set_header D d; }
                }
              }
              server { proxy_set_header E e; location / { } }
            }");
        let s = &c.http.servers[0];
        assert_eq!(header_names(&s.conf), ["a", "b"]);
        assert_eq!(header_names(&s.locations[0].conf), ["a", "b"]);
        let own = &s.locations[1];
        assert_eq!(header_names(&own.conf), ["c"]);
        assert_eq!(header_names(&own.nested[0].conf), ["c"]);
        assert_eq!(header_names(&own.nested[1].conf), ["d"]);
        assert_eq!(header_names(&c.http.servers[1].locations[0].conf), ["e"]);
    }

    #[test]
    fn settings_written_after_a_block_are_still_inherited() {
        let (c, _) = ok("http {
              server { location / { } proxy_read_timeout 7s; }
              proxy_connect_timeout 3s;
              keepalive_timeout 0;
            }");
        let s = &c.http.servers[0];
        assert_eq!(
            s.locations[0].conf.proxy_read_timeout,
            Duration::from_secs(7)
        );
        assert_eq!(
            s.locations[0].conf.proxy_connect_timeout,
            Duration::from_secs(3)
        );
        assert_eq!(s.connection.keepalive_timeout, Duration::ZERO);
    }

    #[test]
    fn proxy_pass_targets_resolve_to_named_or_implicit_upstreams() {
        let (c, _) = ok("http {
              server {
                location /a { proxy_pass http://later; }
                location /b { proxy_pass http://127.0.0.1:9000/x/; }
                location /c { proxy_pass http://127.0.0.1:9000; }
                location /d { proxy_pass http://127.0.0.1; }
                location /e { proxy_pass HTTP://LATER/; }
              }
              upstream later { server 127.0.0.1:9100; }
            }");
        let targets: Vec<(usize, String, Option<String>)> = c.http.servers[0]
            .locations
            .iter()
            .map(|l| {
                let p = l.conf.proxy_pass.clone().expect("proxy_pass");
                (p.upstream, p.proxy_host, p.uri)
            })
            .collect();
        assert_eq!(
            targets,
            [
                (0, "later".into(), None),
                (1, "127.0.0.1:9000".into(), Some("/x/".into())),
                (1, "127.0.0.1:9000".into(), None),
                (2, "127.0.0.1".into(), None),
                (0, "LATER".into(), Some("/".into())),
            ]
        );
        let names: Vec<(&str, bool, &str)> = c
            .http
            .upstreams
            .iter()
            .map(|u| (u.name.as_str(), u.implicit, u.peers[0].name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("later", false, "127.0.0.1:9100"),
                ("127.0.0.1:9000", true, "127.0.0.1:9000"),
                ("127.0.0.1", true, "127.0.0.1:80"),
            ]
        );
    }

    #[test]
    fn peers_are_named_like_nginx() {
        let (c, _) = ok("http { upstream u {
              server 127.0.0.1;
              server [::1]:9000;
              server [::1];
              server localhost:9001 weight=5 id=loc;
            } }");
        let peers = &c.http.upstreams[0].peers;
        assert_eq!(peers[0].name, "127.0.0.1:80");
        assert_eq!(peers[1].name, "[::1]:9000");
        assert_eq!(peers[2].name, "[::1]:80");
        let local: Vec<&PeerConf> = peers
            .iter()
            .filter(|p| p.server == "localhost:9001")
            .collect();
        assert!(!local.is_empty());
        for p in local {
            assert!(p.addr.ip().is_loopback() && p.addr.port() == 9001);
            assert_eq!((p.weight, p.id.as_deref()), (5, Some("loc")));
            assert_eq!(p.name, p.addr.to_string());
        }
    }

    #[test]
    fn session_sticky_parameters_and_implied_limits() {
        let cases: &[(&str, StickyConf)] = &[
            ("", StickyConf::default()),
            (
                "maxidle=30m",
                StickyConf {
                    maxidle: Some(1800),
                    maxlife: Some(UNLIMITED_SECS),
                    ..StickyConf::default()
                },
            ),
            (
                "maxlife=100",
                StickyConf {
                    maxidle: Some(UNLIMITED_SECS),
                    maxlife: Some(100),
                    ..StickyConf::default()
                },
            ),
            (
                "cookie=SRV domain=.a.example path=/app maxage=1d option=indirect hash=plain fallback=off",
                StickyConf {
                    cookie: "SRV".into(),
                    domain: Some(".a.example".into()),
                    path: "/app".into(),
                    maxage: Some(86400),
                    indirect: true,
                    hash: Hash::Plain,
                    fallback: false,
                    ..StickyConf::default()
                },
            ),
            (
                "mode=prefix option=direct",
                StickyConf {
                    mode: Mode::Prefix,
                    ..StickyConf::default()
                },
            ),
        ];
        for (params, expected) in cases {
            let (c, warnings) = ok(&format!(
                "http {{ upstream u {{ server 127.0.0.1:9000; session_sticky {params}; }} }}"
            ));
            assert_eq!(
                c.http.upstreams[0].sticky.as_ref(),
                Some(expected),
                "{params}"
            );
            assert!(warnings.is_empty(), "{params}");
        }
    }

    #[test]
    fn indirect_with_rewrite_warns_and_is_cleared() {
        let (c, warnings) = ok("http {\n upstream u {\n server 127.0.0.1:9000;\n session_sticky mode=rewrite option=indirect;\n }\n}");
        let sticky = c.http.upstreams[0].sticky.clone().expect("sticky");
        assert_eq!((sticky.mode, sticky.indirect), (Mode::Rewrite, false));
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].message,
            "\"option=indirect\" has no effect with \"mode=rewrite\" and is ignored"
        );
        assert_eq!(warnings[0].span.line, 4);
    }

    #[test]
    fn listen_forms() {
        let cases: &[(&str, &str)] = &[
            ("8080", "0.0.0.0:8080"),
            ("*:8081", "0.0.0.0:8081"),
            ("127.0.0.1", "127.0.0.1:80"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:8082", "[::1]:8082"),
            ("[::1]", "[::1]:80"),
        ];
        for (text, expected) in cases {
            let (c, _) = ok(&format!(
                "http {{ server {{ listen {text} reuseport backlog=64; }} }}"
            ));
            let l = &c.http.servers[0].listens[0];
            assert_eq!(l.addr.to_string(), *expected, "{text}");
            assert!(
                l.reuseport && !l.default_server && l.backlog == 64,
                "{text}"
            );
        }
        let (c, _) = ok("http { server { listen localhost:8083 default; } }");
        for l in &c.http.servers[0].listens {
            assert!(l.addr.ip().is_loopback() && l.addr.port() == 8083 && l.default_server);
        }
    }

    #[test]
    fn return_forms() {
        let (c, _) = ok("http { server {
              location /a { return 204; }
              location /b { return http://example.com/; }
              location /c { return 301 https://example.com$request_uri; }
              location /d { return 200 \"host=$host\"; }
              location /e { return 404; return 500; }
            } }");
        let got: Vec<(u16, Option<Vec<Part>>)> = c.http.servers[0]
            .locations
            .iter()
            .map(|l| {
                let r = l.conf.return_.clone().expect("return");
                (r.code, r.text.map(|t| t.parts))
            })
            .collect();
        let lit = |s: &str| Part::Literal(s.to_string());
        assert_eq!(
            got,
            [
                (204, None),
                (302, Some(vec![lit("http://example.com/")])),
                (
                    301,
                    Some(vec![
                        lit("https://example.com"),
                        Part::Var(Variable::RequestUri)
                    ])
                ),
                (200, Some(vec![lit("host="), Part::Var(Variable::Host)])),
                (404, None),
            ]
        );
    }

    #[test]
    fn server_name_kinds() {
        let (c, _) = ok("http { server { server_name Example.COM _ \"\" .dot.example *.star.example www.tail.*; } }");
        let got: Vec<String> = c.http.servers[0]
            .names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect();
        assert_eq!(
            got,
            [
                "Exact(\"example.com\")",
                "Exact(\"_\")",
                "Exact(\"\")",
                "LeadingWildcard { suffix: \".dot.example\", dot_form: true }",
                "LeadingWildcard { suffix: \".star.example\", dot_form: false }",
                "TrailingWildcard { prefix: \"www.tail.\" }",
            ]
        );
    }

    #[test]
    fn location_modifiers_separate_and_glued() {
        let (c, _) = ok("http { server {
              location = /e1 { } location =/e2 { }
              location ^~ /p1 { } location ^~/p2 { } location /p3 { }
              location ~ ^/r1 { } location ~^/r2 { } location ~* \\.PHP$ { } location ~*\\.js$ { }
            } }");
        let got: Vec<String> = c.http.servers[0]
            .locations
            .iter()
            .map(|l| match &l.matcher {
                LocationMatch::Exact(u) => format!("= {u}"),
                LocationMatch::Prefix { uri, stop_regex } => {
                    format!("{}{uri}", if *stop_regex { "^~ " } else { "" })
                }
                LocationMatch::Regex {
                    case_insensitive,
                    source,
                    ..
                } => format!("{} {source}", if *case_insensitive { "~*" } else { "~" }),
            })
            .collect();
        assert_eq!(
            got,
            [
                "= /e1",
                "= /e2",
                "^~ /p1",
                "^~ /p2",
                "/p3",
                "~ ^/r1",
                "~ ^/r2",
                "~* \\.PHP$",
                "~* \\.js$"
            ]
        );
        let matches = |i: usize, path: &str| match &c.http.servers[0].locations[i].matcher {
            LocationMatch::Regex { re, .. } => re.is_match(path),
            _ => false,
        };
        assert!(matches(5, "/r1/x") && !matches(5, "/R1/x"));
        assert!(matches(7, "/index.php") && matches(7, "/INDEX.PHP"));
        assert!(matches(8, "/app.JS"));
    }

    #[test]
    fn proxy_next_upstream_values() {
        let cases: &[(&str, NextUpstream)] = &[
            ("off", NextUpstream::default()),
            ("error off timeout", NextUpstream::default()),
            (
                "invalid_header http_500 http_500 http_429 non_idempotent",
                NextUpstream {
                    invalid_header: true,
                    statuses: vec![500, 429],
                    non_idempotent: true,
                    ..NextUpstream::default()
                },
            ),
        ];
        for (values, expected) in cases {
            let (c, _) = ok(&format!(
                "http {{ proxy_next_upstream {values}; server {{ }} }}"
            ));
            assert_eq!(
                &c.http.servers[0].conf.proxy_next_upstream, expected,
                "{values}"
            );
        }
    }

    #[test]
    fn accepted_but_ignored_directives_warn() {
        let (c, warnings) = ok("daemon off;\nmaster_process on;\nhttp {\n sendfile on;\n tcp_nodelay on;\n types { text/html html; }\n default_type text/plain;\n charset utf-8;\n gzip off;\n proxy_buffering off;\n proxy_buffer_size 4k;\n proxy_buffers 8 4k;\n server { }\n}\n");
        assert_eq!(c.http.servers.len(), 1);
        let lines: Vec<u32> = warnings.iter().map(|w| w.span.line).collect();
        assert_eq!(lines, [2, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(
            warnings[1].message,
            "\"sendfile\" directive is ignored: the proxy streams responses itself"
        );
    }

    #[test]
    fn check_parameters_defaults_and_units() {
        let d = CheckConf::default();
        let cases: &[(&str, CheckConf)] = &[
            ("", d.clone()),
            (
                "interval=3000 rise=2 fall=5 timeout=1000 type=http",
                CheckConf {
                    interval: Duration::from_secs(3),
                    kind: CheckType::Http,
                    ..d.clone()
                },
            ),
            (
                "interval=100 rise=1 fall=3 timeout=50 default_down=false port=8081",
                CheckConf {
                    interval: Duration::from_millis(100),
                    rise: 1,
                    fall: 3,
                    timeout: Duration::from_millis(50),
                    default_down: false,
                    port: Some(8081),
                    ..d.clone()
                },
            ),
            (
                "interval=2s timeout=500ms port=0 type=tcp",
                CheckConf {
                    interval: Duration::from_secs(2),
                    timeout: Duration::from_millis(500),
                    ..d.clone()
                },
            ),
        ];
        for (params, expected) in cases {
            let (c, _) = ok(&format!(
                "http {{ upstream u {{ server 127.0.0.1:9000; check {params}; }} }}"
            ));
            assert_eq!(
                c.http.upstreams[0].check.as_ref(),
                Some(expected),
                "{params}"
            );
        }
        assert_eq!(d.interval, Duration::from_millis(30_000));
        assert_eq!((d.rise, d.fall, d.default_down), (2, 5, true));
        assert_eq!(d.http_send, b"GET / HTTP/1.0\r\n\r\n");
        let (c, _) = ok("http { upstream u { server 127.0.0.1:9000; } }");
        assert_eq!(c.http.upstreams[0].check, None);
    }

    #[test]
    fn check_http_send_and_expect_alive_fill_the_check() {
        let (c, warnings) = ok("http { upstream u { server 127.0.0.1:9000;
            check_http_expect_alive http_2xx http_4xx;
            check type=http;
            check_http_send \"HEAD /health HTTP/1.0\\r\\n\\r\\n\";
            check_keepalive_requests 100; } }");
        let check = c.http.upstreams[0].check.clone().expect("check");
        assert_eq!(check.http_send, b"HEAD /health HTTP/1.0\r\n\r\n");
        assert!(check.expect_alive.contains(204) && check.expect_alive.contains(404));
        assert!(!check.expect_alive.contains(302) && !check.expect_alive.contains(500));
        assert_eq!(check.keepalive_requests, 100);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].message.starts_with(
                "\"check_keepalive_requests\" needs a \"check_http_send\" request that keeps"
            ),
            "an HTTP/1.0 request closes the connection: {warnings:?}"
        );
    }

    /// `check_keepalive_requests` of the first upstream's check.
    fn check_keepalive(c: &Config) -> Option<u32> {
        c.http.upstreams[0]
            .check
            .as_ref()
            .map(|k| k.keepalive_requests)
    }

    #[test]
    fn check_keepalive_requests_sets_connection_reuse() {
        let base = "http { upstream u { server 127.0.0.1:9000; check type=http;";
        let keep = "check_http_send \"HEAD / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n\";";
        let (c, warnings) = ok(&format!("{base} {keep} check_keepalive_requests 50; }} }}"));
        let check = c.http.upstreams[0].check.clone().expect("check");
        assert_eq!(check.keepalive_requests, 50);
        assert!(warnings.is_empty(), "{warnings:?}");
        // Default: one check per connection.
        let (c, _) = ok(&format!("{base} }} }}"));
        assert_eq!(check_keepalive(&c), Some(1));
        // 1 needs no keep-alive request.
        let (_, warnings) = ok(&format!("{base} check_keepalive_requests 1; }} }}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        // Without a type=http check, or without a check, it is ignored.
        let (c, warnings) =
            ok("http { upstream u { server 127.0.0.1:9000; check; check_keepalive_requests 5; } }");
        assert_eq!(check_keepalive(&c), Some(1));
        assert_eq!(
            warnings[0].message,
            "\"check_keepalive_requests\" directive is ignored: the check is not \"type=http\""
        );
        let (_, warnings) =
            ok("http { upstream u { server 127.0.0.1:9000; check_keepalive_requests 5; } }");
        assert_eq!(
            warnings[0].message,
            "\"check_keepalive_requests\" directive is ignored: there is no \"check\" in this upstream"
        );
    }

    #[test]
    fn keep_alive_check_requests_are_recognised() {
        let cases: &[(&[u8], bool)] = &[
            (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", true),
            (b"GET /h HTTP/1.1\r\n\r\n", true),
            (b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
            (b"HEAD / HTTP/1.0\r\n\r\n", false),
            (b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (b"HEAD / HTTP/1.1\r\nconnection : Close\r\n\r\n", false),
        ];
        for (send, keeps) in cases {
            assert_eq!(
                asks_keep_alive(send),
                *keeps,
                "{}",
                String::from_utf8_lossy(send)
            );
        }
    }

    #[test]
    fn check_oddities_warn_instead_of_failing() {
        let (c, warnings) = ok("http {\n check_shm_size 1m;\n upstream u {\n server 127.0.0.1:9000;\n check type=ssl_hello;\n check_http_send \"GET / HTTP/1.0\\r\\n\\r\\n\";\n }\n upstream v {\n server 127.0.0.1:9000;\n check_http_expect_alive http_2xx;\n }\n}\n");
        let lines: Vec<u32> = warnings.iter().map(|w| w.span.line).collect();
        // Upstream blocks are built first (pass 1), then the rest of http.
        assert_eq!(lines, [5, 6, 10, 2], "{warnings:?}");
        assert_eq!(
            warnings[0].message,
            "\"type=ssl_hello\" in \"check\" directive is checked as \"type=tcp\" (a connect test)"
        );
        assert_eq!(
            warnings[2].message,
            "\"check_http_expect_alive\" directive is ignored: there is no \"check\" in this upstream"
        );
        assert_eq!(
            c.http.upstreams[0].check.as_ref().map(|k| k.kind),
            Some(CheckType::Tcp)
        );
        assert_eq!(c.http.upstreams[1].check, None);
    }

    #[test]
    fn check_status_formats_and_drain() {
        let (c, _) = ok(
            "http { upstream u { server 127.0.0.1:9000 drain; server 127.0.0.1:9001; }
            server { location /a { check_status; } location /b { check_status csv; }
                     location /c { check_status json; } location /d { proxy_pass http://u; } } }",
        );
        let formats: Vec<Option<StatusFormat>> = c.http.servers[0]
            .locations
            .iter()
            .map(|l| l.conf.check_status)
            .collect();
        assert_eq!(
            formats,
            [
                Some(StatusFormat::Html),
                Some(StatusFormat::Csv),
                Some(StatusFormat::Json),
                None
            ]
        );
        assert_eq!(c.http.servers[0].conf.check_status, None);
        let drains: Vec<bool> = c.http.upstreams[0].peers.iter().map(|p| p.drain).collect();
        assert_eq!(drains, [true, false]);
    }

    #[test]
    fn access_logs_and_log_formats() {
        let (c, _) = ok("http {
              log_format plain escape=none 'a=' '$arg_a';
              access_log /tmp/a.log;
              access_log /tmp/b.log plain buffer=32k;
              server { location / { access_log off; } location /x { } }
            }");
        assert_eq!(c.http.log_format_escapes["plain"], Escape::None);
        assert_eq!(c.http.log_formats["plain"].source, "a=$arg_a");
        let s = &c.http.servers[0];
        assert_eq!(s.locations[0].conf.access_log, AccessLog::Off);
        assert_eq!(
            s.locations[1].conf.access_log,
            AccessLog::On(vec![
                AccessLogTarget {
                    path: "/tmp/a.log".into(),
                    format: "combined".into()
                },
                AccessLogTarget {
                    path: "/tmp/b.log".into(),
                    format: "plain".into()
                },
            ])
        );
    }

    #[test]
    fn hide_cookie_is_inherited_and_alias_accepted() {
        let (c, _) = ok("http {
              upstream s { server 127.0.0.1:9000; session_sticky; }
              session_sticky_header upstream=s;
              server { location / { } }
            }");
        let l = &c.http.servers[0].locations[0].conf;
        assert_eq!(l.sticky_hide_cookie.as_deref(), Some("s"));
    }

    #[test]
    fn main_and_connection_settings() {
        let (c, _) = ok("worker_processes auto;\nworker_rlimit_nofile 1024;\npid /tmp/p.pid;\nevents { worker_connections 64; }\nhttp {\n error_log /tmp/e.log info;\n client_header_timeout 5s;\n large_client_header_buffers 2 16k;\n keepalive_requests 10;\n server { client_body_timeout 1m; send_timeout 500ms; }\n}\n");
        assert_eq!(c.main.worker_processes, WorkerProcesses::Auto);
        assert_eq!(c.main.worker_rlimit_nofile, Some(1024));
        assert_eq!(c.main.worker_connections, 64);
        assert_eq!(c.main.error_log.level, LogLevel::Info);
        let conn = &c.http.servers[0].connection;
        assert_eq!(conn.client_header_timeout, Duration::from_secs(5));
        assert_eq!(conn.client_body_timeout, Duration::from_secs(60));
        assert_eq!(conn.send_timeout, Duration::from_millis(500));
        assert_eq!(conn.large_client_header_buffers, (2, 16384));
        assert_eq!(conn.keepalive_requests, 10);
    }

    #[test]
    fn conflicting_names_and_shared_server_ids_warn() {
        let (_, warnings) = ok("http {
              upstream u { server 127.0.0.1:9000 id=a; server 127.0.0.1:9001 id=a;
                           session_sticky hash=plain; }
              upstream v { server 127.0.0.1:9000 id=a; server 127.0.0.1:9001 id=a;
                           session_sticky; }
              server { listen 127.0.0.1:8080; server_name a.example; }
              server { listen 127.0.0.1:8080; server_name A.example b.example; }
              server { listen 127.0.0.1:8081; server_name a.example; }
            }");
        let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "servers of upstream \"u\" share the server id of \"a\"; sticky cookies cannot tell them apart",
                "conflicting server name \"a.example\" on 127.0.0.1:8080, ignored",
            ]
        );
    }

    #[test]
    fn address_resolution_reasons() {
        let cases: &[(&str, bool, Result<&str, &str>)] = &[
            ("127.0.0.1:9000", false, Ok("127.0.0.1:9000")),
            ("127.0.0.1", false, Ok("127.0.0.1:80")),
            ("[::1]:9000", false, Ok("[::1]:9000")),
            ("[::1]", false, Ok("[::1]:80")),
            ("127.0.0.1:0", true, Ok("127.0.0.1:0")),
            ("127.0.0.1:0", false, Err("invalid port")),
            ("127.0.0.1:65536", false, Err("invalid port")),
            ("127.0.0.1:+80", false, Err("invalid port")),
            ("localhost:", false, Err("invalid port")),
            (":80", false, Err("no host")),
            ("::1", false, Err("invalid host")),
            ("[::1", false, Err("invalid host")),
            ("[::1]9000", false, Err("invalid host")),
            ("[nope]:80", false, Err("invalid host")),
            ("a:b:80", false, Err("invalid host")),
            (
                "unix:/tmp/s.sock",
                false,
                Err("unix domain sockets are not supported"),
            ),
            ("no-such-host.invalid", false, Err("host not found")),
        ];
        for (text, zero, expected) in cases {
            let got = resolve(text, 80, *zero).map(|a| a[0].to_string());
            assert_eq!(got.as_deref().map_err(String::as_str), *expected, "{text}");
        }
    }

    #[test]
    fn a_hand_built_tree_without_http_is_rejected() {
        let tree = vec![Directive {
            name: "worker_processes".into(),
            args: vec![crate::config::ast::Arg {
                value: "2".into(),
                quoted: false,
                span: Span {
                    file: Arc::new(PathBuf::from("/x.conf")),
                    line: 1,
                },
            }],
            block: None,
            span: Span {
                file: Arc::new(PathBuf::from("/x.conf")),
                line: 1,
            },
        }];
        let e = build(Path::new("/x.conf"), &tree).expect_err("no http");
        assert_eq!(e.to_string(), "no \"http\" block in /x.conf");
    }
}
