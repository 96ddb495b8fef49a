//! Logs: the access log (`access_log`, `log_format`) and the error log
//! (`error_log FILE LEVEL` mapped onto `tracing`).
//!
//! **Access log.** Every distinct path gets one [`LogFile`], shared by all worker
//! threads. A request's line is formatted on the worker with
//! [`crate::vars::eval_log`] and handed to the file's bounded queue with a
//! non-blocking `try_send`; a dedicated writer thread per file takes everything
//! queued and writes it with one `write` per batch. Under load the writer polls
//! the queue every 10 ms, so queueing a line never wakes a thread (no system
//! call on the request path); after 200 ms without lines it blocks until the
//! next one. The request path never waits for the disk: when the queue is full
//! (the disk cannot keep up) the line is dropped and counted, and the writer
//! reports the count at `warn` once it catches up. Lines are therefore written in
//! the order they were queued, but may be lost under sustained overload; nothing
//! else is ever lost: [`LogFile::flush`] and dropping the last handle write out
//! everything queued.
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
//! Relative paths (`access_log`, `error_log`, `pid`) are relative to the prefix
//! ([`crate::config::Config::prefix`]: `-p PREFIX`, else the directory of the main
//! configuration file, as `include` is), see [`resolve_path`].
//!
//! Modules: `writer` (one [`LogFile`]: queue, writer thread, batching, reopen),
//! `access` ([`AccessLogs`], [`AccessRecord`], [`PendingLog`], the line),
//! `error` (the `tracing` subscriber and its line format). Dates are formatted by
//! [`crate::timefmt`]. Everything public is re-exported here: callers use
//! `crate::log::X`.

mod access;
mod error;
mod syslog;
mod writer;

use std::path::{Path, PathBuf};

use crate::config::include::os_error;

pub use access::{
    format_line, hostname, pid, AccessLogs, AccessRecord, LogTarget, PendingLog, Sent, TryRecord,
};
pub use error::{init_error_log, level_filter, ErrorLog};
pub use syslog::SyslogWriter;
pub use writer::{LogFile, Opener, QUEUE_LINES};

/// `path` as written in the configuration, made absolute against the directory
/// `prefix` when it is relative (see [`crate::config::Config::prefix`]).
pub fn resolve_path(prefix: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || prefix.as_os_str().is_empty() {
        return path.to_path_buf();
    }
    prefix.join(path)
}

/// Opens `path` for appending, creating it; the error reads like nginx's.
fn open_append(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("open() \"{}\" failed {}", path.display(), os_error(&e)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A fresh scratch directory for one test.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sticky-proxy-log-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn relative_paths_are_relative_to_the_prefix() {
        let cases = [
            ("/etc/proxy", "logs/a.log", "/etc/proxy/logs/a.log"),
            ("/etc/proxy/", "logs/a.log", "/etc/proxy/logs/a.log"),
            ("/etc/proxy", "/var/log/a.log", "/var/log/a.log"),
            ("", "a.log", "a.log"),
            ("conf", "a.log", "conf/a.log"),
        ];
        for (conf, path, want) in cases {
            assert_eq!(
                resolve_path(Path::new(conf), Path::new(path)),
                PathBuf::from(want),
                "{conf} {path}"
            );
        }
    }
}
