//! Logs: the access log (`access_log`, `log_format`) and the error log
//! (`error_log FILE LEVEL` mapped onto `tracing`).
//!
//! **Access log.** Every distinct path gets one [`LogFile`], shared by all worker
//! threads. A request's line is formatted on the worker with
//! [`crate::proxy::vars::eval_log`] and handed to the file's bounded queue with a
//! non-blocking `try_send`; a dedicated writer thread per file takes everything
//! queued and writes it with one `write` per batch. Under load the writer polls
//! the queue every 10 ms, so queueing a line never wakes a thread (no system
//! call on the request path); after 200 ms without lines it blocks until the
//! next one. The request path never waits for the disk: when the queue is full
//! (the disk cannot keep up) the line is dropped and counted, and the writer
//! reports the count at `warn` once it catches up. Lines are therefore written in the order they were queued, but may be lost
//! under sustained overload; nothing else is ever lost: [`LogFile::flush`] and
//! dropping the last handle write out everything queued.
//!
//! [`AccessLogs`] is the set of files and formats one configuration uses. A reload
//! builds a new set with [`AccessLogs::open_reusing`], which keeps the writers of
//! paths that survive (their queue and file stay as they are) and opens the new
//! ones. [`AccessLogs::reopen`] (SIGUSR1, `proxy -s reopen`) makes every writer
//! close and reopen its path, for logrotate.
//!
//! **Error log.** [`init_error_log`] installs a global `tracing` subscriber that
//! writes nginx-shaped lines (`2026/11/22 04:20:42 [error] 123#124: message`) to
//! stderr or to a file, at the configured level. The returned [`ErrorLog`] handle
//! reopens the file and changes path or level on reload.
//!
//! Relative paths (`access_log`, `error_log`, `pid`) are relative to the directory
//! of the main configuration file, as `include` is ([`resolve_path`]).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, Registry};

use crate::config::include::os_error;
use crate::config::{self, AccessLog, Config, Escape, Location, LogLevel, Template};
use crate::proxy::vars::{self, RequestVars};

/// Lines a file's queue holds before new ones are dropped.
pub const QUEUE_LINES: usize = 16_384;

/// The writer thread writes once it has gathered this many bytes, or when the
/// queue is empty, whichever comes first.
const BATCH_BYTES: usize = 64 * 1024;

/// How often a busy writer takes what is queued.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Empty polls after which the writer blocks until the next line (so an idle
/// proxy has no thread waking up).
const IDLE_POLLS: u32 = 20;

/// How long [`LogFile::flush`] and [`LogFile::reopen`] wait for the writer.
const CONTROL_WAIT: Duration = Duration::from_secs(5);

/// `path` as written in the configuration, made absolute against the directory
/// of the main configuration file `config_file` when it is relative.
pub fn resolve_path(config_file: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match config_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// Opens `path` for appending, creating it; the error reads like nginx's.
fn open_append(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("open() \"{}\" failed {}", path.display(), os_error(&e)))
}

// ---------------------------------------------------------------------------
// One log file and its writer thread
// ---------------------------------------------------------------------------

/// Opens (or reopens) the destination of a [`LogFile`].
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Write + Send>, String> + Send>;

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
    Reopen(SyncSender<Result<(), String>>),
}

/// One access log destination: a bounded queue and the thread that writes it.
/// Shared (`Arc`) by every worker and by successive configurations that log to
/// the same path. Dropping the last handle writes out what is queued and joins
/// the thread.
pub struct LogFile {
    name: String,
    tx: Option<SyncSender<Msg>>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFile")
            .field("name", &self.name)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl LogFile {
    /// Opens `path` for appending (error: `open() "PATH" failed (2: ...)`) and
    /// starts its writer thread.
    pub fn open(path: &Path) -> Result<LogFile, String> {
        let owned = path.to_path_buf();
        let opener: Opener =
            Box::new(move || open_append(&owned).map(|f| Box::new(f) as Box<dyn Write + Send>));
        LogFile::with_opener(&path.display().to_string(), opener, QUEUE_LINES)
    }

    /// A log writing wherever `opener` says (tests use in-memory writers), with a
    /// queue of `capacity` lines. `opener` runs now and on every reopen.
    pub fn with_opener(name: &str, opener: Opener, capacity: usize) -> Result<LogFile, String> {
        let out = opener()?;
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = WriterThread {
            name: name.to_string(),
            opener,
            out,
            rx,
            dropped: Arc::clone(&dropped),
            reported: 0,
            failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run())
            .map_err(|e| format!("cannot start the log writer for \"{name}\": {e}"))?;
        Ok(LogFile {
            name: name.to_string(),
            tx: Some(tx),
            dropped,
            thread: Some(thread),
        })
    }

    /// The path (or name) written to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues one line (which should end in `\n`). Never blocks: when the queue
    /// is full the line is dropped and counted.
    pub fn write_line(&self, line: Vec<u8>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (up to a few seconds) until every line queued before this call is
    /// written and flushed. Not for the request path.
    pub fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(CONTROL_WAIT);
        }
    }

    /// Writes out what is queued, closes the file and opens the path again (a
    /// renamed file is left alone and a new one created). On failure the old file
    /// stays in use and the error is returned.
    pub fn reopen(&self) -> Result<(), String> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        tx.send(Msg::Reopen(ack_tx))
            .map_err(|_| format!("the writer of \"{}\" has stopped", self.name))?;
        ack_rx
            .recv_timeout(CONTROL_WAIT)
            .map_err(|_| format!("the writer of \"{}\" did not answer", self.name))?
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain it and stop.
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the access log writer of \"{}\" panicked", self.name);
            }
        }
    }
}

/// The writer thread's state.
struct WriterThread {
    name: String,
    opener: Opener,
    out: Box<dyn Write + Send>,
    rx: Receiver<Msg>,
    dropped: Arc<AtomicU64>,
    /// The `dropped` count already reported.
    reported: u64,
    /// The last write failed (so the next failure is not logged again).
    failing: bool,
}

impl WriterThread {
    /// Busy: every [`POLL_INTERVAL`] take whatever is queued and write it, so
    /// queueing a line never has to wake this thread (no system call on the
    /// request path). Idle for [`IDLE_POLLS`] rounds: block until the next
    /// message instead of polling.
    fn run(mut self) {
        let mut batch: Vec<u8> = Vec::with_capacity(BATCH_BYTES);
        let mut idle = IDLE_POLLS;
        'serve: loop {
            let mut received = 0usize;
            if idle >= IDLE_POLLS {
                // Fails once every sender is gone and the queue is empty.
                let Ok(msg) = self.rx.recv() else { break };
                self.handle(msg, &mut batch);
                received += 1;
            }
            let mut gone = false;
            loop {
                match self.rx.try_recv() {
                    Ok(msg) => {
                        self.handle(msg, &mut batch);
                        received += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            self.write(&mut batch);
            self.report_dropped();
            if gone {
                break 'serve;
            }
            idle = if received == 0 { idle + 1 } else { 0 };
            if idle < IDLE_POLLS {
                std::thread::sleep(POLL_INTERVAL);
            }
        }
        self.write(&mut batch);
        let _ = self.out.flush();
        self.report_dropped();
    }

    fn handle(&mut self, msg: Msg, batch: &mut Vec<u8>) {
        match msg {
            Msg::Line(line) => {
                batch.extend_from_slice(&line);
                if batch.len() >= BATCH_BYTES {
                    self.write(batch);
                }
            }
            Msg::Flush(ack) => {
                self.write(batch);
                let _ = self.out.flush();
                let _ = ack.send(());
            }
            Msg::Reopen(ack) => {
                self.write(batch);
                let _ = self.out.flush();
                let result = (self.opener)().map(|out| self.out = out);
                if let Err(e) = &result {
                    tracing::error!("{e}: still writing to the old file");
                }
                let _ = ack.send(result);
            }
        }
    }

    fn write(&mut self, batch: &mut Vec<u8>) {
        if batch.is_empty() {
            return;
        }
        match self.out.write_all(batch) {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    tracing::error!("write() to \"{}\" failed {}", self.name, os_error(&e));
                }
                self.failing = true;
            }
        }
        batch.clear();
    }

    fn report_dropped(&mut self) {
        let total = self.dropped.load(Ordering::Relaxed);
        if total > self.reported {
            tracing::warn!(
                "access log \"{}\": {} lines dropped because writing could not keep up",
                self.name,
                total - self.reported
            );
            self.reported = total;
        }
    }
}

// ---------------------------------------------------------------------------
// The access logs of one configuration
// ---------------------------------------------------------------------------

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
                let resolved = resolve_path(&config.file, &target.path);
                let reused = previous.and_then(|p| {
                    p.files
                        .get(&target.path)
                        .filter(|f| f.name() == resolved.display().to_string())
                });
                let file = match reused {
                    Some(file) => Arc::clone(file),
                    None => Arc::new(LogFile::open(&resolved)?),
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
    local: std::net::SocketAddr,
    scheme: &'static str,
    proxy_host: String,
    request_length: u64,
    connection: u64,
    connection_requests: u64,
    start: SystemTime,
    /// Every upstream try, in order.
    pub tries: Vec<TryRecord>,
    /// `$sticky_sid` and `$sticky_status`.
    pub sticky: Option<(String, &'static str)>,
    /// When the last try started, while its response body is streamed: its
    /// `$upstream_response_time` then runs to the end of the body.
    pub streaming_since: Option<std::time::Instant>,
    /// Some format reads `$sent_http_*`.
    wants_response_headers: bool,
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
            local: vars.local,
            scheme: if vars.scheme == "https" {
                "https"
            } else {
                "http"
            },
            proxy_host: vars.proxy_host.to_string(),
            request_length: vars.request_length,
            connection: vars.connection,
            connection_requests: vars.connection_requests,
            start: vars.start,
            tries: Vec::new(),
            sticky: None,
            streaming_since: None,
            wants_response_headers: targets_read_response_headers(&targets),
            sent: SentSoFar::default(),
            targets,
        }
    }

    /// Writes the line to every target, with the clock reading `now`.
    pub fn write(&self, sent: Sent<'_>, now: SystemTime) {
        let tries: Vec<vars::UpstreamTry<'_>> = self
            .tries
            .iter()
            .map(|t| vars::UpstreamTry {
                addr: &t.addr,
                status: t.status,
                connect_time: t.connect_time,
                header_time: t.header_time,
                response_time: t.response_time,
            })
            .collect();
        let request = RequestVars {
            method: &self.method,
            request_uri: &self.request_uri,
            path: &self.path,
            version: self.version,
            headers: &self.headers,
            host: &self.host,
            server_name: &self.server_name,
            remote: self.remote,
            local: self.local,
            scheme: self.scheme,
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
            sticky: self
                .sticky
                .as_ref()
                .map(|(sid, status)| vars::StickyVars { sid, status }),
        };
        for target in self.targets.iter() {
            target
                .file
                .write_line(format_line(&target.template, target.escape, &request));
        }
    }
}

fn targets_read_response_headers(targets: &[LogTarget]) -> bool {
    targets.iter().any(|t| {
        t.template
            .parts
            .iter()
            .any(|p| matches!(p, config::Part::Var(config::Variable::SentHttp(_))))
    })
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

    /// The response head, `n` bytes, went to the client.
    pub fn head_sent(&mut self, n: u64) {
        self.record.sent.head_bytes = n;
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
fn hostname() -> &'static str {
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

// ---------------------------------------------------------------------------
// The error log
// ---------------------------------------------------------------------------

/// Where error-log lines go.
enum ErrorTarget {
    Stderr,
    File { path: PathBuf, file: std::fs::File },
}

impl ErrorTarget {
    fn open(conf: &config::ErrorLog, config_file: &Path) -> Result<ErrorTarget, String> {
        if conf.path == "stderr" {
            return Ok(ErrorTarget::Stderr);
        }
        let path = resolve_path(config_file, Path::new(&conf.path));
        let file = open_append(&path)?;
        Ok(ErrorTarget::File { path, file })
    }
}

/// The error log's destination, shared by the subscriber and the handle.
#[derive(Clone)]
struct ErrorSink(Arc<Mutex<ErrorTarget>>);

/// Writes one formatted event (tracing's fmt layer writes each event whole).
struct ErrorSinkWriter(Arc<Mutex<ErrorTarget>>);

impl Write for ErrorSinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut target = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *target {
            ErrorTarget::Stderr => io::stderr().write(buf),
            ErrorTarget::File { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut target = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *target {
            ErrorTarget::Stderr => io::stderr().write_all(buf),
            ErrorTarget::File { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ErrorSink {
    type Writer = ErrorSinkWriter;

    fn make_writer(&'a self) -> ErrorSinkWriter {
        ErrorSinkWriter(Arc::clone(&self.0))
    }
}

/// The `tracing` level that keeps `level` and everything more severe.
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info | LogLevel::Notice => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Crit | LogLevel::Alert | LogLevel::Emerg => LevelFilter::ERROR,
    }
}

/// nginx's error-log line: `2026/11/22 04:20:42 [warn] 1234#1240: message`.
struct NginxFormat {
    pid: u32,
}

impl<S, N> FormatEvent<S, N> for NginxFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let c = vars::civil(SystemTime::now());
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG | tracing::Level::TRACE => "debug",
        };
        write!(
            writer,
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02} [{level}] {}#{}: ",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            self.pid,
            rustix::thread::gettid().as_raw_nonzero()
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The installed error log: reopen it (SIGUSR1) or point it elsewhere (reload).
#[derive(Clone)]
pub struct ErrorLog {
    sink: ErrorSink,
    level: reload::Handle<LevelFilter, Registry>,
    config_file: PathBuf,
}

impl std::fmt::Debug for ErrorLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorLog")
            .field("config_file", &self.config_file)
            .finish()
    }
}

/// Builds the error-log subscriber for `conf` without installing it.
fn error_subscriber(
    conf: &config::ErrorLog,
    config_file: &Path,
) -> Result<(impl tracing::Subscriber + Send + Sync, ErrorLog), String> {
    let sink = ErrorSink(Arc::new(Mutex::new(ErrorTarget::open(conf, config_file)?)));
    let (filter, level) = reload::Layer::new(level_filter(conf.level));
    let fmt = tracing_subscriber::fmt::layer()
        .event_format(NginxFormat {
            pid: std::process::id(),
        })
        .with_ansi(false)
        .with_writer(sink.clone());
    let subscriber = Registry::default().with(filter).with(fmt);
    Ok((
        subscriber,
        ErrorLog {
            sink,
            level,
            config_file: config_file.to_path_buf(),
        },
    ))
}

/// Sends `tracing` output where `error_log` says, at its level, for the whole
/// process. `config_file` anchors a relative path. Fails when the file cannot be
/// opened or a subscriber is already installed.
pub fn init_error_log(conf: &config::ErrorLog, config_file: &Path) -> Result<ErrorLog, String> {
    let (subscriber, handle) = error_subscriber(conf, config_file)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| format!("cannot set up logging: {e}"))?;
    Ok(handle)
}

impl ErrorLog {
    /// Closes and reopens the error log file (nothing to do for stderr).
    pub fn reopen(&self) -> Result<(), String> {
        let mut target = self.sink.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let ErrorTarget::File { path, file } = &mut *target {
            *file = open_append(path)?;
        }
        Ok(())
    }

    /// Points the log at `conf` (reload): a new path is opened (the old one is
    /// kept if that fails), the level changes at once.
    pub fn reconfigure(&self, conf: &config::ErrorLog) -> Result<(), String> {
        let wanted = if conf.path == "stderr" {
            None
        } else {
            Some(resolve_path(&self.config_file, Path::new(&conf.path)))
        };
        {
            let mut target = self.sink.0.lock().unwrap_or_else(PoisonError::into_inner);
            let same = match (&*target, &wanted) {
                (ErrorTarget::Stderr, None) => true,
                (ErrorTarget::File { path, .. }, Some(w)) => path == w,
                _ => false,
            };
            if !same {
                *target = ErrorTarget::open(conf, &self.config_file)?;
            }
        }
        self.level
            .modify(|filter| *filter = level_filter(conf.level))
            .map_err(|e| format!("cannot change the error log level: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::proxy::vars::tests::{headers, vars};
    use crate::proxy::vars::{ResponseVars, StickyVars, UpstreamTry};
    use http::Method;
    use std::sync::atomic::AtomicBool;

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sticky-proxy-log-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(dir: &Path, http_body: &str) -> Config {
        let src = format!(
            "events {{}} http {{ {http_body} server {{ listen 127.0.0.1:0; \
             location / {{ return 200; }} location /quiet {{ access_log off; return 200; }} \
             location /api {{ access_log api.log main; return 200; }} }} }}"
        );
        load_str(&src, &dir.join("proxy.conf")).unwrap().0
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_directory() {
        let cases = [
            (
                "/etc/proxy/proxy.conf",
                "logs/a.log",
                "/etc/proxy/logs/a.log",
            ),
            ("/etc/proxy/proxy.conf", "/var/log/a.log", "/var/log/a.log"),
            ("proxy.conf", "a.log", "a.log"),
            ("conf/proxy.conf", "a.log", "conf/a.log"),
        ];
        for (conf, path, want) in cases {
            assert_eq!(
                resolve_path(Path::new(conf), Path::new(path)),
                PathBuf::from(want),
                "{conf} {path}"
            );
        }
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
    fn reopen_after_rename_writes_a_new_file() {
        let dir = scratch("reopen");
        let path = dir.join("access.log");
        let file = LogFile::open(&path).unwrap();
        file.write_line(b"one\n".to_vec());
        file.flush();
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        file.write_line(b"two\n".to_vec());
        file.reopen().unwrap();
        file.write_line(b"three\n".to_vec());
        drop(file);
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_reopen_keeps_the_old_file() {
        let dir = scratch("reopen-fail");
        let path = dir.join("sub").join("access.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = LogFile::open(&path).unwrap();
        std::fs::rename(dir.join("sub"), dir.join("moved")).unwrap();
        let err = file.reopen().unwrap_err();
        assert!(err.starts_with("open() \""), "{err}");
        assert!(err.contains("(2: "), "{err}");
        file.write_line(b"kept\n".to_vec());
        drop(file);
        assert_eq!(
            std::fs::read_to_string(dir.join("moved").join("access.log")).unwrap(),
            "kept\n"
        );
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

    /// A writer that blocks until `gate` is set, collecting what it gets.
    struct Gated {
        gate: Arc<AtomicBool>,
        entered: Arc<AtomicBool>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.entered.store(true, Ordering::SeqCst);
            while !self.gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_lines_instead_of_blocking() {
        let gate = Arc::new(AtomicBool::new(false));
        let entered = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (g, e, o) = (Arc::clone(&gate), Arc::clone(&entered), Arc::clone(&got));
        let opener: Opener = Box::new(move || {
            Ok(Box::new(Gated {
                gate: Arc::clone(&g),
                entered: Arc::clone(&e),
                got: Arc::clone(&o),
            }) as Box<dyn Write + Send>)
        });
        let file = LogFile::with_opener("gated", opener, 4).unwrap();
        // The writer takes the first line and gets stuck writing it.
        file.write_line(b"0\n".to_vec());
        while !entered.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = std::time::Instant::now();
        for i in 1..100 {
            file.write_line(format!("{i}\n").into_bytes());
        }
        // Never blocked on the stuck writer: four lines queued, the rest dropped.
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(file.dropped(), 95);
        gate.store(true, Ordering::SeqCst);
        drop(file);
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "0\n1\n2\n3\n4\n");
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn error_log_lines_look_like_nginx_and_respect_the_level() {
        let dir = scratch("error-log");
        let conf = config::ErrorLog {
            path: "error.log".into(),
            level: LogLevel::Warn,
        };
        let config_file = dir.join("proxy.conf");
        let (subscriber, handle) = error_subscriber(&conf, &config_file).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not shown");
            tracing::warn!("upstream {} is slow", "app");
            std::fs::rename(dir.join("error.log"), dir.join("error.log.1")).unwrap();
            handle.reopen().unwrap();
            tracing::error!(peer = "127.0.0.1:1", "connect() failed");
            handle
                .reconfigure(&config::ErrorLog {
                    path: "error.log".into(),
                    level: LogLevel::Info,
                })
                .unwrap();
            tracing::info!("now shown");
        });
        let old = std::fs::read_to_string(dir.join("error.log.1")).unwrap();
        let new = std::fs::read_to_string(dir.join("error.log")).unwrap();
        let pattern =
            regex::Regex::new(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(warn|error|info)\] \d+#\d+: ")
                .unwrap();
        let strip = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| {
                    assert!(pattern.is_match(l), "{l}");
                    pattern.replace(l, "[$1] ").into_owned()
                })
                .collect()
        };
        assert_eq!(strip(&old), ["[warn] upstream app is slow"]);
        assert_eq!(
            strip(&new),
            [
                "[error] connect() failed peer=\"127.0.0.1:1\"",
                "[info] now shown"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn level_mapping_table() {
        let cases = [
            (LogLevel::Debug, LevelFilter::DEBUG),
            (LogLevel::Info, LevelFilter::INFO),
            (LogLevel::Notice, LevelFilter::INFO),
            (LogLevel::Warn, LevelFilter::WARN),
            (LogLevel::Error, LevelFilter::ERROR),
            (LogLevel::Crit, LevelFilter::ERROR),
            (LogLevel::Alert, LevelFilter::ERROR),
            (LogLevel::Emerg, LevelFilter::ERROR),
        ];
        for (level, want) in cases {
            assert_eq!(level_filter(level), want, "{level:?}");
        }
    }
}
