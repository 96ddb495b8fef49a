//! The access logs of one configuration: [`AccessLogs`] resolves every
//! `access_log` setting to its [`LogTarget`]s (file + `log_format` + escaping) once
//! per configuration, and a request's line is formatted on the worker
//! ([`format_line`], which evaluates the format with
//! [`crate::vars::eval_log`]) and queued on each target's
//! [`LogFile`](super::LogFile).
//!
//! A line is written when the response body has been sent, after the handler
//! has returned: [`AccessRecord`] owns what the formats may read of the request
//! (captured when it arrives), the upstream tries ([`TryRecord`]) and the sticky
//! result; [`PendingLog`] travels with the response body, counts the bytes sent,
//! and writes the line when it is dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::LogFile;
use crate::config::{self, AccessLog, Config, Escape, Location, Template, Variable};
use crate::request_id::RequestId;
use crate::user_vars::UserVars;
use crate::vars::{self, RequestVars};

/// The access log files and formats of one configuration. `Send + Sync`: one set
/// is shared by every worker.
#[derive(Debug, Default)]
pub struct AccessLogs {
    /// By path as written in the configuration.
    files: HashMap<PathBuf, Arc<LogFile>>,
    formats: HashMap<String, (Arc<Template>, Escape)>,
    /// Each `access_log` setting of the configuration resolved, keyed by its
    /// address in that (immutable, shared) configuration.
    resolved: HashMap<usize, Arc<[LogTarget]>>,
}

impl AccessLogs {
    /// Opens every `access_log` path of `config`.
    pub fn open(config: &Config) -> Result<AccessLogs, String> {
        AccessLogs::open_reusing(config, None)
    }

    /// Like [`AccessLogs::open`], keeping the writers of `previous` for the paths
    /// that are still configured (reload). The files of paths no longer used are
    /// closed when the last configuration using them is gone.
    pub fn open_reusing(
        config: &Config,
        previous: Option<&AccessLogs>,
    ) -> Result<AccessLogs, String> {
        let mut files: HashMap<PathBuf, Arc<LogFile>> = HashMap::new();
        for access_log in config_access_logs(config) {
            let AccessLog::On(targets) = access_log else {
                continue;
            };
            for target in targets {
                if files.contains_key(&target.path) {
                    continue;
                }
                // A syslog log's name says the server it resolved to: a
                // reload that resolves the name elsewhere opens a new one.
                let resolved = match &target.syslog {
                    Some(syslog) => {
                        PathBuf::from(format!("{} ({})", target.path.display(), syslog.server))
                    }
                    None => config.resolve_path(&target.path),
                };
                let reused = previous.and_then(|p| {
                    p.files
                        .get(&target.path)
                        .filter(|f| f.name() == resolved.display().to_string())
                });
                let file = match (reused, &target.syslog) {
                    (Some(file), _) => Arc::clone(file),
                    (None, Some(syslog)) => Arc::new(super::syslog::log_file(
                        &resolved.display().to_string(),
                        syslog,
                    )?),
                    (None, None) => Arc::new(LogFile::open(&resolved)?),
                };
                files.insert(target.path.clone(), file);
            }
        }
        let formats = config
            .http
            .log_formats
            .iter()
            .map(|(name, template)| {
                let escape = config
                    .http
                    .log_format_escapes
                    .get(name)
                    .copied()
                    .unwrap_or(Escape::Default);
                (name.clone(), (Arc::clone(template), escape))
            })
            .collect();
        let mut logs = AccessLogs {
            files,
            formats,
            resolved: HashMap::new(),
        };
        for access_log in config_access_logs(config) {
            let key = access_log as *const AccessLog as usize;
            if let Some(targets) = logs.resolve(access_log) {
                logs.resolved.insert(key, targets);
            }
        }
        Ok(logs)
    }

    fn resolve(&self, access_log: &AccessLog) -> Option<Arc<[LogTarget]>> {
        let AccessLog::On(list) = access_log else {
            return None;
        };
        let targets: Vec<LogTarget> = list
            .iter()
            .filter_map(|target| {
                let file = self.files.get(&target.path)?;
                let (template, escape) = self.formats.get(&target.format)?;
                Some(LogTarget {
                    file: Arc::clone(file),
                    template: Arc::clone(template),
                    escape: *escape,
                    condition: target.condition.clone(),
                })
            })
            .collect();
        (!targets.is_empty()).then(|| targets.into())
    }

    /// The resolved targets of `access_log`, `None` for `off`. `access_log` should
    /// belong to the configuration this set was opened for (then this is one hash
    /// lookup and a reference count); any other is resolved by path and name.
    pub fn targets(&self, access_log: &AccessLog) -> Option<Arc<[LogTarget]>> {
        if let AccessLog::Off = access_log {
            return None;
        }
        match self
            .resolved
            .get(&(access_log as *const AccessLog as usize))
        {
            Some(targets) => Some(Arc::clone(targets)),
            None => self.resolve(access_log),
        }
    }

    /// Formats and queues the line of one request for every target of
    /// `access_log` (nothing for `off`). Never blocks.
    pub fn log(&self, access_log: &AccessLog, vars: &RequestVars<'_>) {
        let Some(targets) = self.targets(access_log) else {
            return;
        };
        for target in targets.iter() {
            target
                .file
                .write_line(format_line(&target.template, target.escape, vars));
        }
    }

    /// Reopens every file (SIGUSR1). Returns the errors; a file that cannot be
    /// reopened keeps its old descriptor.
    pub fn reopen(&self) -> Vec<String> {
        self.files
            .values()
            .filter_map(|f| f.reopen().err())
            .collect()
    }

    /// Writes out everything queued so far (shutdown, tests).
    pub fn flush(&self) {
        for file in self.files.values() {
            file.flush();
        }
    }

    /// Lines dropped so far, over every file.
    pub fn dropped(&self) -> u64 {
        self.files.values().map(|f| f.dropped()).sum()
    }

    /// The files in use, by path as written in the configuration.
    pub fn files(&self) -> impl Iterator<Item = (&Path, &Arc<LogFile>)> {
        self.files.iter().map(|(p, f)| (p.as_path(), f))
    }
}

/// One `access_log` target resolved: the file, the format and its escaping.
#[derive(Debug, Clone)]
pub struct LogTarget {
    pub file: Arc<LogFile>,
    pub template: Arc<Template>,
    pub escape: Escape,
    /// `if=`: no line when it evaluates to `""` or `"0"`.
    pub condition: Option<Arc<Template>>,
}

impl LogTarget {
    /// Whether the request is logged here (nginx: unless `if=` is `""` or `"0"`).
    fn wants(&self, vars: &RequestVars<'_>) -> bool {
        let Some(condition) = &self.condition else {
            return true;
        };
        // The plain value (a log line writes an empty one as `-`).
        let value = vars::eval_to_vec(condition, vars);
        !value.is_empty() && value != b"0"
    }
}

/// One upstream try, owned (see [`vars::UpstreamTry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryRecord {
    pub addr: String,
    pub status: Option<u16>,
    pub connect_time: Option<Duration>,
    pub header_time: Option<Duration>,
    pub response_time: Option<Duration>,
}

impl TryRecord {
    /// The try as the variables read it.
    pub fn as_try(&self) -> vars::UpstreamTry<'_> {
        vars::UpstreamTry {
            addr: &self.addr,
            status: self.status,
            connect_time: self.connect_time,
            header_time: self.header_time,
            response_time: self.response_time,
        }
    }
}

/// What one request's access-log line needs, owned, so the line can be written
/// when the response body has been sent (after the handler has returned). Built
/// only for requests whose location logs ([`AccessLogs::targets`]).
#[derive(Debug)]
pub struct AccessRecord {
    targets: Arc<[LogTarget]>,
    method: http::Method,
    request_uri: String,
    path: Vec<u8>,
    version: http::Version,
    headers: http::HeaderMap,
    host: String,
    server_name: String,
    remote: std::net::SocketAddr,
    realip_remote: Option<std::net::SocketAddr>,
    local: std::net::SocketAddr,
    scheme: &'static str,
    tls: Option<std::rc::Rc<crate::tls::TlsInfo>>,
    proxy_host: String,
    request_length: u64,
    connection: u64,
    connection_requests: u64,
    start: SystemTime,
    /// Every upstream try, in order.
    pub tries: Vec<TryRecord>,
    /// `$sticky_sid` and `$sticky_status`.
    pub sticky: Option<(String, &'static str)>,
    /// `$sticky_learned` (empty: none).
    pub sticky_learned: String,
    /// When the last try started, while its response body is streamed: its
    /// `$upstream_response_time` then runs to the end of the body.
    pub streaming_since: Option<std::time::Instant>,
    /// Some format reads `$sent_http_*`.
    wants_response_headers: bool,
    /// Some format reads `$upstream_http_*` / `$upstream_cookie_*`.
    wants_upstream_headers: bool,
    /// The last backend response's header lines, as received (when wanted).
    pub upstream_headers: Option<http::HeaderMap>,
    /// `$request_id`: drawn when the record was captured if a format reads
    /// it, so the line shows the value the request was proxied with.
    request_id: RequestId,
    pipelined: bool,
    /// What the rewrite module left when the request ended (user variables,
    /// captures, the URI now): nginx writes the line with the values the
    /// request ended with. `None`: the request never ran a statement.
    pub user: Option<UserVars>,
    /// The response, filled in by [`PendingLog`].
    sent: SentSoFar,
}

/// What a [`PendingLog`] counts (kept in the boxed record, so a response body
/// carries one pointer for its log).
#[derive(Debug, Default)]
struct SentSoFar {
    status: u16,
    /// The response headers, kept only when a format reads them.
    headers: http::HeaderMap,
    head_bytes: u64,
    body_bytes: u64,
}

/// The response as the client got it, for [`AccessRecord::write`].
#[derive(Debug, Clone, Copy)]
pub struct Sent<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    pub body_bytes: u64,
    /// Status line and headers included.
    pub bytes: u64,
}

impl AccessRecord {
    /// Copies what the log formats may read from `vars` (response, upstream and
    /// sticky parts are filled in later).
    pub fn capture(targets: Arc<[LogTarget]>, vars: &RequestVars<'_>) -> AccessRecord {
        AccessRecord {
            method: vars.method.clone(),
            request_uri: vars.request_uri.to_string(),
            path: vars.path.to_vec(),
            version: vars.version,
            headers: vars.headers.clone(),
            host: vars.host.to_string(),
            server_name: vars.server_name.to_string(),
            remote: vars.remote,
            realip_remote: vars.realip_remote,
            local: vars.local,
            scheme: if vars.scheme == "https" {
                "https"
            } else {
                "http"
            },
            tls: vars.tls.cloned(),
            proxy_host: vars.proxy_host.to_string(),
            request_length: vars.request_length,
            connection: vars.connection,
            connection_requests: vars.connection_requests,
            start: vars.start,
            tries: Vec::new(),
            sticky: None,
            sticky_learned: String::new(),
            streaming_since: None,
            wants_response_headers: targets_read_response_headers(&targets),
            wants_upstream_headers: targets_read(&targets, vars::reads_upstream_headers),
            upstream_headers: None,
            request_id: RequestId::holding(match vars.request_id {
                Some(id) if targets_read(&targets, |v| matches!(v, Variable::RequestId)) => {
                    id.get()
                }
                Some(id) => id.peek(),
                None => None,
            }),
            pipelined: vars.pipelined,
            user: None,
            sent: SentSoFar::default(),
            targets,
        }
    }

    /// True when a format reads the backend's header lines: the proxy then
    /// fills [`AccessRecord::upstream_headers`].
    pub fn wants_upstream_headers(&self) -> bool {
        self.wants_upstream_headers
    }

    /// Writes the line to every target, with the clock reading `now`.
    pub fn write(&self, sent: Sent<'_>, now: SystemTime) {
        let tries: Vec<vars::UpstreamTry<'_>> = self.tries.iter().map(TryRecord::as_try).collect();
        let user = self.user.as_ref();
        let path = match user.and_then(|u| u.uri.as_ref()) {
            Some((path, _)) => path,
            None => &self.path,
        };
        let request = RequestVars {
            method: &self.method,
            request_uri: &self.request_uri,
            path,
            version: self.version,
            headers: &self.headers,
            host: &self.host,
            server_name: &self.server_name,
            remote: self.remote,
            realip_remote: self.realip_remote,
            local: self.local,
            scheme: self.scheme,
            tls: self.tls.as_ref(),
            proxy_host: &self.proxy_host,
            request_length: self.request_length,
            connection: self.connection,
            connection_requests: self.connection_requests,
            start: self.start,
            now,
            pid: pid(),
            hostname: hostname(),
            response: Some(vars::ResponseVars {
                status: sent.status,
                headers: sent.headers,
                body_bytes_sent: sent.body_bytes,
                bytes_sent: sent.bytes,
            }),
            upstream: &tries,
            upstream_headers: self.upstream_headers.as_ref(),
            sticky: self.sticky.as_ref().map(|(sid, status)| vars::StickyVars {
                sid,
                status,
                learned: &self.sticky_learned,
            }),
            user,
            request_id: Some(&self.request_id),
            pipelined: self.pipelined,
        };
        for target in self.targets.iter().filter(|t| t.wants(&request)) {
            target
                .file
                .write_line(format_line(&target.template, target.escape, &request));
        }
    }
}

fn targets_read_response_headers(targets: &[LogTarget]) -> bool {
    targets_read(targets, |v| matches!(v, Variable::SentHttp(_)))
}

/// Whether a format (or an `if=`) of `targets` reads a variable `var` accepts.
fn targets_read(targets: &[LogTarget], var: impl Fn(&Variable) -> bool) -> bool {
    let reads = |t: &Template| {
        t.parts
            .iter()
            .any(|p| matches!(p, config::Part::Var(v) if var(v)))
    };
    targets
        .iter()
        .any(|t| reads(&t.template) || t.condition.as_deref().is_some_and(reads))
}

/// A request's record waiting for its response body to be sent: the body counts
/// the bytes, and dropping this (body finished or abandoned) writes the line.
#[derive(Debug)]
pub struct PendingLog {
    record: Box<AccessRecord>,
}

impl PendingLog {
    /// Starts counting for the response with `status` and `headers`.
    pub fn new(
        mut record: Box<AccessRecord>,
        status: http::StatusCode,
        headers: &http::HeaderMap,
    ) -> PendingLog {
        record.sent.status = status.as_u16();
        if record.wants_response_headers {
            record.sent.headers = headers.clone();
        }
        PendingLog { record }
    }

    /// The response head, `n` bytes, went to the client, with the
    /// `Content-Length` it carried (framing is written from typed values,
    /// not kept in the header map: `$sent_http_content_length` reads it here).
    pub fn head_sent(&mut self, n: u64, content_length: Option<u64>) {
        self.record.sent.head_bytes = n;
        if let (true, Some(len)) = (self.record.wants_response_headers, content_length) {
            self.record
                .sent
                .headers
                .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
        }
    }

    /// The request took `n` bytes on the wire, head and body
    /// (`$request_length`, known once it is over).
    pub fn request_length(&mut self, n: u64) {
        self.record.request_length = n;
    }

    /// `n` more body bytes went to the client.
    pub fn sent(&mut self, n: u64) {
        self.record.sent.body_bytes += n;
    }
}

impl Drop for PendingLog {
    fn drop(&mut self) {
        if let Some(since) = self.record.streaming_since.take() {
            if let Some(last) = self.record.tries.last_mut() {
                last.response_time = Some(since.elapsed());
            }
        }
        let sent = &self.record.sent;
        self.record.write(
            Sent {
                status: sent.status,
                headers: &sent.headers,
                body_bytes: sent.body_bytes,
                bytes: sent.head_bytes + sent.body_bytes,
            },
            SystemTime::now(),
        );
    }
}

/// `$pid`, read once (`std::process::id` is a system call each time).
pub fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// `$hostname`: the kernel's host name, read once.
pub fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// One access log line: the format evaluated with its escaping, then `\n`.
pub fn format_line(template: &Template, escape: Escape, vars: &RequestVars<'_>) -> Vec<u8> {
    let mut line = Vec::with_capacity(template.source.len() + 128);
    vars::eval_log(template, vars, escape, &mut line);
    line.push(b'\n');
    line
}

/// Every `access_log` setting of `config`: each server's, and each location's
/// (nested ones included).
fn config_access_logs(config: &Config) -> Vec<&AccessLog> {
    fn locations<'a>(list: &'a [Location], out: &mut Vec<&'a AccessLog>) {
        for location in list {
            out.push(&location.conf.access_log);
            locations(&location.nested, out);
        }
    }
    let mut out = Vec::new();
    for server in &config.http.servers {
        out.push(&server.conf.access_log);
        locations(&server.locations, &mut out);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::log::tests::scratch;
    use crate::vars::tests::{headers, vars};
    use crate::vars::{ResponseVars, StickyVars, UpstreamTry};
    use http::Method;

    fn config(dir: &Path, http_body: &str) -> Config {
        let src = format!(
            "events {{}} http {{ {http_body} server {{ listen 127.0.0.1:0; \
             location / {{ return 200; }} location /quiet {{ access_log off; return 200; }} \
             location /api {{ access_log api.log main; return 200; }} }} }}"
        );
        load_str(&src, &dir.join("proxy.conf")).unwrap().0
    }

    #[test]
    fn combined_and_custom_formats_are_byte_exact() {
        let dir = scratch("formats");
        let config = config(
            &dir,
            "log_format main '$remote_addr [$time_iso8601] \"$request\" $status $body_bytes_sent \
             up=$upstream_addr/$upstream_status/$upstream_response_time \
             sticky=$sticky_status:$sticky_sid rt=$request_time'; \
             access_log access.log;",
        );
        let logs = AccessLogs::open(&config).unwrap();
        let combined = &config.http.servers[0].locations[0].conf.access_log;
        let quiet = &config.http.servers[0].locations[1].conf.access_log;
        let api = &config.http.servers[0].locations[2].conf.access_log;
        assert_eq!(*quiet, AccessLog::Off);

        let m = Method::GET;
        let request_headers = headers(&[
            ("user-agent", "curl/8.5 \"quoted\""),
            ("referer", "http://ref.test/"),
        ]);
        let response_headers = headers(&[]);
        let tries = [
            UpstreamTry {
                addr: "127.0.0.1:8081",
                status: Some(502),
                connect_time: None,
                header_time: None,
                response_time: Some(Duration::from_millis(2)),
            },
            UpstreamTry {
                addr: "127.0.0.1:8082",
                status: Some(200),
                connect_time: Some(Duration::from_millis(1)),
                header_time: Some(Duration::from_millis(5)),
                response_time: Some(Duration::from_millis(7)),
            },
        ];
        let mut first = vars(&request_headers, &m);
        first.response = Some(ResponseVars {
            status: 200,
            headers: &response_headers,
            body_bytes_sent: 612,
            bytes_sent: 850,
        });
        first.upstream = &tries;
        first.sticky = Some(StickyVars {
            sid: "9c5f2bd6b4e52b4f17ba61d9e5a7d8b8",
            status: "new",
            learned: "",
        });
        let no_headers = headers(&[]);
        let post = Method::POST;
        let mut second = vars(&no_headers, &post);
        second.request_uri = "/api/x";
        second.response = Some(ResponseVars {
            status: 502,
            headers: &response_headers,
            body_bytes_sent: 0,
            bytes_sent: 150,
        });

        logs.log(combined, &first);
        logs.log(quiet, &first);
        logs.log(api, &first);
        logs.log(combined, &second);
        logs.log(api, &second);
        logs.flush();

        let access = std::fs::read_to_string(dir.join("access.log")).unwrap();
        assert_eq!(
            access,
            "192.0.2.7 - - [22/Nov/2026:04:20:42 +0000] \"GET /a%20b?x=1&Y=2 HTTP/1.1\" 200 612 \
             \"http://ref.test/\" \"curl/8.5 \\x22quoted\\x22\"\n\
             192.0.2.7 - - [22/Nov/2026:04:20:42 +0000] \"POST /api/x HTTP/1.1\" 502 0 \"-\" \"-\"\n"
        );
        let api_log = std::fs::read_to_string(dir.join("api.log")).unwrap();
        assert_eq!(
            api_log,
            "192.0.2.7 [2026-11-22T04:20:42+00:00] \"GET /a%20b?x=1&Y=2 HTTP/1.1\" 200 612 \
             up=127.0.0.1:8081, 127.0.0.1:8082/502, 200/0.002, 0.007 \
             sticky=new:9c5f2bd6b4e52b4f17ba61d9e5a7d8b8 rt=1.500\n\
             192.0.2.7 [2026-11-22T04:20:42+00:00] \"POST /api/x HTTP/1.1\" 502 0 \
             up=-/-/- sticky=-:- rt=1.500\n"
        );
        assert_eq!(logs.dropped(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unopenable_path_is_a_start_up_error_like_nginx() {
        let dir = scratch("unopenable");
        let config = config(
            &dir,
            "log_format main '$status'; access_log missing/dir/access.log;",
        );
        let err = AccessLogs::open(&config).unwrap_err();
        let want = format!(
            "open() \"{}\" failed (2: No such file or directory)",
            dir.join("missing/dir/access.log").display()
        );
        assert_eq!(err, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    #[test]
    fn a_record_captured_at_the_request_writes_the_full_line_later() {
        let dir = scratch("record");
        let config = config(
            &dir,
            "log_format main '$request_method $request_uri $status $body_bytes_sent \
             $upstream_addr $upstream_status $upstream_response_time \
             $sticky_status $sticky_sid \"$http_user_agent\" $sent_http_x_id $msec';",
        );
        let logs = AccessLogs::open(&config).unwrap();
        let api = &config.http.servers[0].locations[2].conf.access_log;
        let off = &config.http.servers[0].locations[1].conf.access_log;
        assert!(logs.targets(off).is_none());
        let targets = logs.targets(api).unwrap();
        // The same Arc each time: resolved once at open.
        assert!(Arc::ptr_eq(&targets, &logs.targets(api).unwrap()));

        let m = Method::GET;
        let request_headers = headers(&[("user-agent", "ua/1")]);
        let mut record = AccessRecord::capture(targets, &vars(&request_headers, &m));
        drop(request_headers);
        record.tries.push(TryRecord {
            addr: "127.0.0.1:9".into(),
            status: Some(200),
            connect_time: None,
            header_time: None,
            response_time: Some(Duration::from_millis(42)),
        });
        record.sticky = Some(("abc".into(), "hit"));
        let response_headers = headers(&[("x-id", "7")]);
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_795_321_243_500);
        record.write(
            Sent {
                status: 200,
                headers: &response_headers,
                body_bytes: 5,
                bytes: 100,
            },
            at,
        );
        logs.flush();
        assert_eq!(
            std::fs::read_to_string(dir.join("api.log")).unwrap(),
            "GET /a%20b?x=1&Y=2 200 5 127.0.0.1:9 200 0.042 hit abc \"ua/1\" 7 1795321243.500\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reload_keeps_the_writers_of_surviving_paths() {
        let dir = scratch("reuse");
        let one = config(
            &dir,
            "log_format main '$status'; access_log a.log; access_log b.log;",
        );
        let two = config(
            &dir,
            "log_format main '$status'; access_log a.log; access_log c.log;",
        );
        let first = AccessLogs::open(&one).unwrap();
        let second = AccessLogs::open_reusing(&two, Some(&first)).unwrap();
        let by_path = |logs: &AccessLogs, p: &str| {
            logs.files()
                .find(|(path, _)| *path == Path::new(p))
                .map(|(_, f)| Arc::clone(f))
        };
        assert!(Arc::ptr_eq(
            &by_path(&first, "a.log").unwrap(),
            &by_path(&second, "a.log").unwrap()
        ));
        assert!(by_path(&second, "b.log").is_none());
        assert!(by_path(&second, "c.log").is_some());
        assert!(by_path(&second, "api.log").is_some());
        // A syslog log is kept while it resolves to the same server.
        let syslog = "syslog:server=127.0.0.1:5140";
        let three = config(
            &dir,
            &format!("log_format main '$status'; access_log {syslog};"),
        );
        let third = AccessLogs::open_reusing(&three, Some(&second)).unwrap();
        let fourth = AccessLogs::open_reusing(&three, Some(&third)).unwrap();
        assert!(Arc::ptr_eq(
            &by_path(&third, syslog).unwrap(),
            &by_path(&fourth, syslog).unwrap()
        ));
        assert_eq!(
            by_path(&fourth, syslog).unwrap().name(),
            "syslog:server=127.0.0.1:5140 (127.0.0.1:5140)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
