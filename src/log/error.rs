//! The error log: `error_log FILE LEVEL` mapped onto `tracing`.
//! [`init_error_log`] installs a global subscriber that writes nginx-shaped lines
//! (`2026/11/22 04:20:42 [error] 123#124: message`, timestamp from
//! [`crate::timefmt::error_log`]) to stderr or to a file, at the configured
//! level. The returned [`ErrorLog`] handle reopens the file (SIGUSR1) and changes
//! path or level on reload.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, Registry};

use super::syslog::SyslogWriter;
use super::{open_append, resolve_path};
use crate::config::{self, LogLevel};
use crate::timefmt;

/// Where error-log lines go.
enum ErrorTarget {
    Stderr,
    File {
        path: PathBuf,
        file: std::fs::File,
    },
    /// `syslog:`: each line one message, its level the severity.
    Syslog(Box<SyslogWriter>),
}

impl ErrorTarget {
    fn open(conf: &config::ErrorLog, prefix: &Path) -> Result<ErrorTarget, String> {
        if conf.path == "stderr" {
            return Ok(ErrorTarget::Stderr);
        }
        if let Some(syslog) = &conf.syslog {
            return Ok(ErrorTarget::Syslog(Box::new(SyslogWriter::open(
                syslog, false,
            )?)));
        }
        let path = resolve_path(prefix, Path::new(&conf.path));
        let file = open_append(&path)?;
        Ok(ErrorTarget::File { path, file })
    }
}

/// The error log's destination, shared by the subscriber and the handle.
#[derive(Clone)]
struct ErrorSink(Arc<Mutex<ErrorTarget>>);

/// Writes one formatted event (tracing's fmt layer writes each event whole),
/// of the level it was made for.
struct ErrorSinkWriter(Arc<Mutex<ErrorTarget>>, tracing::Level);

impl Write for ErrorSinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut target = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *target {
            ErrorTarget::Stderr => io::stderr().write_all(buf),
            ErrorTarget::File { file, .. } => file.write_all(buf),
            ErrorTarget::Syslog(w) => {
                let line = buf.strip_suffix(b"\n").unwrap_or(buf);
                w.send(line, severity(&self.1), SystemTime::now());
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ErrorSink {
    type Writer = ErrorSinkWriter;

    fn make_writer(&'a self) -> ErrorSinkWriter {
        ErrorSinkWriter(Arc::clone(&self.0), tracing::Level::ERROR)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> ErrorSinkWriter {
        ErrorSinkWriter(Arc::clone(&self.0), *meta.level())
    }
}

/// The syslog severity of a line of `level` (nginx's: its level's number).
fn severity(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        tracing::Level::DEBUG | tracing::Level::TRACE => 7,
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
        write_prefix(
            &mut writer,
            SystemTime::now(),
            event.metadata().level(),
            self.pid,
            rustix::thread::gettid().as_raw_nonzero().get(),
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// nginx's name for a `tracing` level.
fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "error",
        tracing::Level::WARN => "warn",
        tracing::Level::INFO => "info",
        tracing::Level::DEBUG | tracing::Level::TRACE => "debug",
    }
}

/// The start of an error-log line at `now`, from thread `tid` of process `pid`:
/// `2026/11/22 04:20:42 [warn] 1234#1240: `.
fn write_prefix(
    out: &mut impl std::fmt::Write,
    now: SystemTime,
    level: &tracing::Level,
    pid: u32,
    tid: i32,
) -> std::fmt::Result {
    write!(
        out,
        "{} [{}] {pid}#{tid}: ",
        timefmt::error_log(now),
        level_name(level)
    )
}

/// The installed error log: reopen it (SIGUSR1) or point it elsewhere (reload).
#[derive(Clone)]
pub struct ErrorLog {
    sink: ErrorSink,
    level: reload::Handle<LevelFilter, Registry>,
    prefix: PathBuf,
}

impl std::fmt::Debug for ErrorLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorLog")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Builds the error-log subscriber for `conf` without installing it.
fn error_subscriber(
    conf: &config::ErrorLog,
    prefix: &Path,
) -> Result<(impl tracing::Subscriber + Send + Sync, ErrorLog), String> {
    let sink = ErrorSink(Arc::new(Mutex::new(ErrorTarget::open(conf, prefix)?)));
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
            prefix: prefix.to_path_buf(),
        },
    ))
}

/// Sends `tracing` output where `error_log` says, at its level, for the whole
/// process. The directory `prefix` anchors a relative path. Fails when the file cannot be
/// opened or a subscriber is already installed.
pub fn init_error_log(conf: &config::ErrorLog, prefix: &Path) -> Result<ErrorLog, String> {
    let (subscriber, handle) = error_subscriber(conf, prefix)?;
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
            Some(resolve_path(&self.prefix, Path::new(&conf.path)))
        };
        {
            let mut target = self.sink.0.lock().unwrap_or_else(PoisonError::into_inner);
            let same = match (&*target, &wanted) {
                (ErrorTarget::Syslog(w), _) => Some(w.conf()) == conf.syslog.as_ref(),
                (_, _) if conf.syslog.is_some() => false,
                (ErrorTarget::Stderr, None) => true,
                (ErrorTarget::File { path, .. }, Some(w)) => path == w,
                _ => false,
            };
            if !same {
                *target = ErrorTarget::open(conf, &self.prefix)?;
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
    use crate::log::tests::scratch;

    #[test]
    fn error_log_lines_look_like_nginx_and_respect_the_level() {
        let dir = scratch("error-log");
        let conf = config::ErrorLog {
            path: "error.log".into(),
            level: LogLevel::Warn,
            syslog: None,
        };
        let prefix = dir.clone();
        let (subscriber, handle) = error_subscriber(&conf, &prefix).unwrap();
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
                    syslog: None,
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
    fn line_prefix_at_a_fixed_instant() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_321_242);
        let cases = [
            (
                tracing::Level::ERROR,
                "2026/11/22 04:20:42 [error] 123#124: ",
            ),
            (tracing::Level::WARN, "2026/11/22 04:20:42 [warn] 123#124: "),
            (tracing::Level::INFO, "2026/11/22 04:20:42 [info] 123#124: "),
            (
                tracing::Level::DEBUG,
                "2026/11/22 04:20:42 [debug] 123#124: ",
            ),
            (
                tracing::Level::TRACE,
                "2026/11/22 04:20:42 [debug] 123#124: ",
            ),
        ];
        for (level, want) in cases {
            let mut out = String::new();
            write_prefix(&mut out, now, &level, 123, 124).unwrap();
            assert_eq!(out, want, "{level}");
        }
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
