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
//!
//! One file per directive family: `args` (argument counts and values, the shared
//! error texts), `inherit` (the http -> server -> location layers, their inheritance
//! and defaults), `common` (the directives written into those layers), `server`,
//! `location` (with `return` and `proxy_pass`), `upstream` (with the `check_*`
//! health-check directives), `sticky` (`session_sticky`), `log` and `resolve` (the
//! one place that does I/O: address parsing and name resolution). This file walks
//! the main context, `events` and `http`, and holds the state they share.

mod access;
mod args;
mod common;
mod compress;
mod errpage;
mod files;
mod headers;
mod http2;
mod inherit;
mod key_file;
mod limit_except;
mod location;
mod log;
mod map;
mod proxy_details;
mod proxy_ssl;
mod resolve;
mod resolver;
mod script;
mod server;
mod sticky;
mod tls;
mod tuning;
mod upstream;
mod uservars;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ast::{Directive, Span};
use super::error::{ConfigError, ConfigWarning};
use super::template::{self, Escape, Template};
use super::{Config, ErrorLog, HttpConf, LogLevel, MainConf, UpstreamConf, WorkerProcesses};
use args::{
    arg, block, block_of, directive_err, duplicate, err, flag, not_allowed, number, set_once,
    simple, size, time,
};
use inherit::{ConnLayer, Layer};
pub use location::url_scheme;
use log::error_log_directive;
pub use log::COMBINED_FORMAT;
use resolver::ResolverScope;
use tuning::{Ctx, TuningSeen};

type Res<T> = Result<T, ConfigError>;

/// Builds the typed configuration of the main file `file` from its expanded tree.
pub fn build(file: &Path, tree: &[Directive]) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let _user_vars = uservars::Scope::enter(tree);
    let mut b = Builder {
        warnings: Vec::new(),
        tuning_seen: TuningSeen::default(),
        conf_dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut worker_processes = None;
    let mut worker_rlimit_nofile = None;
    let mut pid = None;
    let mut shutdown_timeout = None;
    let mut error_log: Option<ErrorLog> = None;
    let mut worker_connections = None;
    let mut events_seen = false;
    let (mut daemon, mut master_process) = (None, None);
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
            "worker_shutdown_timeout" => {
                simple(d, 1, 1)?;
                set_once(&mut shutdown_timeout, time(d, arg(d, 0))?, d)?;
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
                let on = flag(d)?;
                let seen = if d.name == "daemon" {
                    &mut daemon
                } else {
                    &mut master_process
                };
                set_once(seen, on, d)?;
                if on {
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
            _ => {
                if !b.tuning(d, Ctx::Main, tree)? {
                    return Err(not_allowed(d));
                }
            }
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
            syslog: None,
        }),
        worker_connections: worker_connections.unwrap_or(512),
        worker_shutdown_timeout: shutdown_timeout,
    };
    let config = Config {
        file: file.to_path_buf(),
        main,
        http,
        options: super::LoadOptions::default(),
    };
    Ok((config, b.warnings))
}

/// Walks the tree and collects warnings. Each directive family adds its methods in
/// its own file (`impl Builder` in `server`, `location`, `upstream`, ...).
struct Builder {
    warnings: Vec<ConfigWarning>,
    tuning_seen: TuningSeen,
    /// The main file's directory: nginx's conf prefix.
    conf_dir: PathBuf,
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
    /// `limit_req_zone` / `limit_conn_zone`, collected before anything uses them.
    limit_zones: Vec<crate::access::conf::ZoneConf>,
    /// The `ssl_*` settings of the `http` level.
    tls: tls::TlsLayer,
}

impl Builder {
    fn warn(&mut self, d: &Directive, message: &str) {
        self.warnings.push(ConfigWarning {
            message: message.to_string(),
            span: d.span.clone(),
        });
    }

    /// A file the configuration names (`ssl_certificate`,
    /// `auth_basic_user_file`, ...) as nginx's `ngx_conf_full_name` makes it:
    /// a relative one is under the main file's directory (also when the line
    /// is in an included file elsewhere); a value starting with a variable is
    /// left as it is.
    fn conf_file(&self, value: &str) -> String {
        if value.starts_with('$') || Path::new(value).is_absolute() {
            return value.to_string();
        }
        self.conf_dir.join(value).to_string_lossy().into_owned()
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
                _ => {
                    if !self.tuning(d, Ctx::Events, block)? {
                        return Err(not_allowed(d));
                    }
                }
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
            limit_zones: Vec::new(),
            tls: tls::TlsLayer::default(),
        };
        let combined = template::parse(COMBINED_FORMAT).map_err(ConfigError::without_span)?;
        st.log_formats
            .insert("combined".to_string(), Arc::new(combined));
        st.log_format_escapes
            .insert("combined".to_string(), Escape::Default);

        // Pass 1: upstream blocks. nginx reads the file top to bottom and stops at
        // the first error, so a broken block's error is held until pass 2 reaches
        // its place: errors earlier in the file are reported first. A broken
        // upstream still gets its name registered (with no peers) so that an
        // earlier `proxy_pass` to it does not fail for the wrong reason; the
        // configuration is never returned in that case.
        let mut first_error: Option<(usize, ConfigError)> = None;
        let resolver = ResolverScope::of_http(block)?;
        for (i, d) in block
            .iter()
            .enumerate()
            .filter(|(_, d)| d.name == "upstream")
        {
            let built = self.upstream(d, &resolver).and_then(|up| {
                if st
                    .named
                    .iter()
                    .any(|u| u.name.eq_ignore_ascii_case(&up.name))
                {
                    return Err(err(format!("duplicate upstream \"{}\"", up.name), d));
                }
                Ok(up)
            });
            match built {
                Ok(up) => st.named.push(up),
                Err(e) => {
                    st.named.push(broken_upstream(d));
                    first_error.get_or_insert((i, e));
                }
            }
        }

        // Zones may be used before they are defined, as nginx allows.
        for d in block
            .iter()
            .filter(|d| d.name == "limit_req_zone" || d.name == "limit_conn_zone")
        {
            let zone = access::zone_directive(d, &st.limit_zones)?;
            st.limit_zones.push(zone);
        }

        // Pass 2: everything else, in file order up to the first error; servers
        // after the http level is complete (or, when it has an error, the servers
        // written before it, whose errors come first).
        let mut layer = Layer {
            resolver: resolver.clone(),
            ..Layer::default()
        };
        let mut conn = ConnLayer::default();
        let mut error_log = None;
        let mut servers = Vec::new();
        let stop = first_error.as_ref().map_or(block.len(), |(i, _)| *i);
        for (i, d) in block.iter().enumerate().take(stop) {
            let step =
                self.http_directive(d, block, &mut layer, &mut conn, &mut error_log, &mut st);
            if let Err(e) = step {
                first_error = Some((i, e));
                break;
            }
            if d.name == "server" {
                servers.push((i, d));
            }
        }
        if first_error.is_none() {
            map::check_cycles()?;
        }
        let mut built = Vec::new();
        let mut names_seen: HashSet<(SocketAddr, String)> = HashSet::new();
        for (i, d) in servers {
            if first_error.as_ref().is_some_and(|(at, _)| *at < i) {
                break;
            }
            let server = self.server(d, &layer, &conn, &mut st)?;
            self.warn_conflicting_names(d, &server, &mut names_seen);
            built.push(Arc::new(server));
        }
        if let Some((_, e)) = first_error {
            return Err(e);
        }
        self.warn_mixed_check_schemes(block, &st.named, &built);
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
                limit_zones: st.limit_zones,
            },
            error_log,
        ))
    }

    /// One directive of the `http` block other than `upstream` (built in pass 1);
    /// a `server` block is only checked for its `{` here and built later.
    fn http_directive(
        &mut self,
        d: &Directive,
        level: &[Directive],
        layer: &mut Layer,
        conn: &mut ConnLayer,
        error_log: &mut Option<ErrorLog>,
        st: &mut HttpState,
    ) -> Res<()> {
        match d.name.as_str() {
            "upstream" | "resolver" | "resolver_timeout" | "limit_req_zone" | "limit_conn_zone" => {
            }
            "server" => block_of(d)?,
            "error_log" => {
                let log = error_log_directive(d)?;
                if error_log.is_none() {
                    *error_log = Some(log);
                }
            }
            "check_shm_size" => {
                simple(d, 1, 1)?;
                size(d, arg(d, 0))?;
                self.ignored(d, "health state lives in process memory");
            }
            "map" | "split_clients" => map::computed_block(d)?,
            "geo" => map::geo_block(d, &mut self.warnings)?,
            _ => {
                if !self.common(d, layer, st)?
                    && !self.connection(d, conn)?
                    && !self.http2_directive(d, &mut conn.http2, Ctx::Http)?
                    && !self.tuning(d, Ctx::Http, level)?
                    && !self.tls_directive(d, &mut st.tls)?
                {
                    return Err(not_allowed(d));
                }
            }
        }
        Ok(())
    }
}

/// The stand-in for an `upstream` block that failed to build: its name only.
fn broken_upstream(d: &Directive) -> UpstreamConf {
    UpstreamConf {
        name: arg(d, 0).to_string(),
        implicit: false,
        peers: Vec::new(),
        sticky: None,
        keepalive: None,
        keepalive_timeout: std::time::Duration::ZERO,
        resolve: None,
        keepalive_requests: 0,
        check: None,
        balance: Default::default(),
        keepalive_time: std::time::Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::config::load_str;

    /// Builds `src` as the main file `/etc/proxy/test.conf`; panics on an error.
    pub(super) fn ok(src: &str) -> (Config, Vec<ConfigWarning>) {
        load_str(src, Path::new("/etc/proxy/test.conf")).unwrap_or_else(|e| panic!("{e}\n{src}"))
    }

    /// The error text of building `src` (empty when it builds).
    pub(super) fn fails(src: &str) -> String {
        load_str(src, Path::new("/etc/proxy/test.conf"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn load_module_and_env_load_with_a_warning() {
        let (_, warnings) =
            ok("load_module modules/ngx_http_geoip_module.so;\nenv TZ;\nhttp { }\n");
        let said: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].starts_with("\"load_module\" directive is ignored: "),
            "{said:?}"
        );
        assert!(
            said[1].starts_with("\"env\" directive is ignored: "),
            "{said:?}"
        );
        assert!(fails("http { load_module x.so; }")
            .contains("\"load_module\" directive is not allowed here"));
    }

    #[test]
    fn main_and_connection_settings() {
        let (c, _) = ok("worker_processes auto;\nworker_rlimit_nofile 1024;\nworker_shutdown_timeout 10s;\npid /tmp/p.pid;\nevents { worker_connections 64; }\nhttp {\n error_log /tmp/e.log info;\n client_header_timeout 5s;\n large_client_header_buffers 2 16k;\n keepalive_requests 10;\n server { client_body_timeout 1m; send_timeout 500ms; }\n}\n");
        assert_eq!(c.main.worker_processes, WorkerProcesses::Auto);
        assert_eq!(c.main.worker_rlimit_nofile, Some(1024));
        assert_eq!(
            c.main.worker_shutdown_timeout,
            Some(Duration::from_secs(10))
        );
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
