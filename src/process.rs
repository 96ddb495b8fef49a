//! The process around the proxy: the `pid` file, `proxy -s SIGNAL`, the signals
//! the running proxy obeys, and `worker_rlimit_nofile`.
//!
//! As in nginx: `proxy -s reload|quit|stop|reopen` reads the pid of the running
//! proxy from the `pid` file named in the configuration and sends it SIGHUP,
//! SIGQUIT, SIGTERM or SIGUSR1. The running proxy turns those signals (and SIGINT)
//! into [`Control`] events through [`ControlSignals`]: SIGHUP reloads the
//! configuration, SIGUSR1 reopens the log files, SIGQUIT stops gracefully (stop
//! accepting, finish what is in flight), SIGTERM and SIGINT stop at once.
//! Everything goes through `rustix` (safe wrappers of `kill(2)`, `setrlimit(2)`);
//! the crate stays free of `unsafe`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustix::process::{Pid, Resource, Rlimit, Signal};

use crate::config::include::os_error;
use crate::config::Config;

/// What `proxy -s` asks the running proxy to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `reload`: SIGHUP.
    Reload,
    /// `quit`: SIGQUIT, graceful stop.
    Quit,
    /// `stop`: SIGTERM, fast stop.
    Stop,
    /// `reopen`: SIGUSR1, reopen log files.
    Reopen,
}

impl FromStr for Command {
    type Err = String;

    fn from_str(s: &str) -> Result<Command, String> {
        match s {
            "reload" => Ok(Command::Reload),
            "quit" => Ok(Command::Quit),
            "stop" => Ok(Command::Stop),
            "reopen" => Ok(Command::Reopen),
            _ => Err(format!(
                "invalid option: \"-s {s}\" (expected stop, quit, reopen or reload)"
            )),
        }
    }
}

impl Command {
    /// The signal nginx sends for this command.
    pub fn signal(self) -> Signal {
        match self {
            Command::Reload => Signal::HUP,
            Command::Quit => Signal::QUIT,
            Command::Stop => Signal::TERM,
            Command::Reopen => Signal::USR1,
        }
    }

    /// The signal's number, for messages (`kill(1234, 1) failed`).
    pub fn signal_number(self) -> i32 {
        self.signal().as_raw()
    }
}

/// The `pid` file of `config`, made absolute against the configuration's
/// directory; an error when the configuration has none (then no running proxy
/// can be found).
pub fn pid_path(config: &Config) -> Result<PathBuf, String> {
    match &config.main.pid {
        Some(path) => Ok(config.resolve_path(path)),
        None => Err(format!(
            "no \"pid\" directive in {}: the running proxy cannot be found \
             (add e.g. \"pid /run/proxy.pid;\" and restart it)",
            config.file.display()
        )),
    }
}

/// Parses the contents of a pid file (nginx: `invalid PID number "x" in "FILE"`).
pub fn parse_pid(text: &str, path: &Path) -> Result<Pid, String> {
    let trimmed = text.trim();
    trimmed
        .parse::<i32>()
        .ok()
        // Pid::from_raw panics on negative numbers.
        .filter(|&n| n > 0)
        .and_then(Pid::from_raw)
        .ok_or_else(|| {
            format!(
                "invalid PID number \"{}\" in \"{}\"",
                trimmed.escape_default(),
                path.display()
            )
        })
}

/// Reads the pid from `path` (nginx: `open() "FILE" failed (2: No such file or
/// directory)`).
pub fn read_pid(path: &Path) -> Result<Pid, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("open() \"{}\" failed {}", path.display(), os_error(&e)))?;
    parse_pid(&text, path)
}

/// Sends `command`'s signal to `pid` (nginx: `kill(PID, SIG) failed (3: No such
/// process)`).
pub fn send(command: Command, pid: Pid) -> Result<(), String> {
    rustix::process::kill_process(pid, command.signal()).map_err(|e| {
        let e = std::io::Error::from(e);
        format!(
            "kill({}, {}) failed {}",
            pid.as_raw_nonzero(),
            command.signal_number(),
            os_error(&e)
        )
    })
}

/// `proxy -s COMMAND` with `config`: finds the pid file, reads it, signals.
pub fn signal_running(config: &Config, command: Command) -> Result<(), String> {
    let path = pid_path(config)?;
    let pid = read_pid(&path)?;
    send(command, pid)
}

/// The `pid` file of the running proxy: written at start, removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's pid and a newline to `path`.
    pub fn create(path: &Path) -> Result<PidFile, String> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("open() \"{}\" failed {}", path.display(), os_error(&e)))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own file: a newer proxy may have written its pid meanwhile.
        let ours = read_pid(&self.path)
            .is_ok_and(|pid| pid.as_raw_nonzero().get() as u32 == std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The limits to ask for to get `wanted` descriptors, given the current ones.
/// Soft and hard are both set to `wanted` as nginx does, except that the hard
/// limit is never lowered.
pub fn nofile_request(wanted: u64, current: &Rlimit) -> Rlimit {
    Rlimit {
        current: Some(wanted),
        maximum: current.maximum.map(|hard| hard.max(wanted)),
    }
}

/// `worker_rlimit_nofile N`. When raising the hard limit is not permitted, the
/// soft limit is raised as far as the hard limit allows and a warning returned.
pub fn set_nofile(wanted: u64) -> Result<Option<String>, String> {
    let current = rustix::process::getrlimit(Resource::Nofile);
    let request = nofile_request(wanted, &current);
    match rustix::process::setrlimit(Resource::Nofile, request) {
        Ok(()) => Ok(None),
        Err(first) => {
            let first = os_error(&std::io::Error::from(first));
            let Some(hard) = current.maximum else {
                return Err(format!("setrlimit(RLIMIT_NOFILE, {wanted}) failed {first}"));
            };
            let capped = Rlimit {
                current: Some(wanted.min(hard)),
                maximum: Some(hard),
            };
            rustix::process::setrlimit(Resource::Nofile, capped).map_err(|e| {
                format!(
                    "setrlimit(RLIMIT_NOFILE, {wanted}) failed {}",
                    os_error(&std::io::Error::from(e))
                )
            })?;
            Ok(Some(format!(
                "setrlimit(RLIMIT_NOFILE, {wanted}) failed {first}, using {}",
                wanted.min(hard)
            )))
        }
    }
}

/// What the running proxy is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGHUP: re-read the configuration.
    Reload,
    /// SIGUSR1: reopen the log files.
    Reopen,
    /// SIGQUIT: stop accepting, finish in-flight requests, exit.
    Quit,
    /// SIGTERM, SIGINT: exit now.
    Stop,
}

/// The signals the running proxy listens to. Create it once, early: from then on
/// those signals no longer kill the process but queue [`Control`] events.
#[derive(Debug)]
pub struct ControlSignals {
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ControlSignals {
    /// Installs the handlers (needs a tokio runtime with signals enabled).
    pub fn new() -> std::io::Result<ControlSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ControlSignals {
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            quit: signal(SignalKind::quit())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal received.
    pub async fn recv(&mut self) -> Control {
        tokio::select! {
            _ = self.hup.recv() => Control::Reload,
            _ = self.usr1.recv() => Control::Reopen,
            _ = self.quit.recv() => Control::Quit,
            _ = self.term.recv() => Control::Stop,
            _ = self.int.recv() => Control::Stop,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sticky-proxy-process-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(dir: &Path, main: &str) -> Config {
        let src = format!("{main} events {{}} http {{ server {{ listen 127.0.0.1:0; }} }}");
        load_str(&src, &dir.join("proxy.conf")).unwrap().0
    }

    #[test]
    fn commands_map_to_nginx_signals() {
        let cases = [
            ("reload", Command::Reload, Signal::HUP),
            ("quit", Command::Quit, Signal::QUIT),
            ("stop", Command::Stop, Signal::TERM),
            ("reopen", Command::Reopen, Signal::USR1),
        ];
        for (text, command, signal) in cases {
            assert_eq!(text.parse::<Command>().unwrap(), command);
            assert_eq!(command.signal(), signal, "{text}");
        }
        assert_eq!(
            "restart".parse::<Command>().unwrap_err(),
            "invalid option: \"-s restart\" (expected stop, quit, reopen or reload)"
        );
    }

    #[test]
    fn pid_file_contents_table() {
        let path = Path::new("/run/proxy.pid");
        for (text, want) in [("1234\n", Some(1234)), (" 77 ", Some(77)), ("42", Some(42))] {
            assert_eq!(
                parse_pid(text, path).ok().map(|p| p.as_raw_nonzero().get()),
                want,
                "{text:?}"
            );
        }
        for (text, shown) in [
            ("", ""),
            ("abc\n", "abc"),
            ("0", "0"),
            ("-5", "-5"),
            ("99999999999", "99999999999"),
        ] {
            assert_eq!(
                parse_pid(text, path).unwrap_err(),
                format!("invalid PID number \"{shown}\" in \"/run/proxy.pid\""),
                "{text:?}"
            );
        }
    }

    #[test]
    fn signalling_without_a_pid_directive_or_file_says_why() {
        let dir = scratch("no-pid");
        let none = config(&dir, "");
        let err = signal_running(&none, Command::Reload).unwrap_err();
        assert!(err.starts_with("no \"pid\" directive in "), "{err}");
        let missing = config(&dir, "pid run/proxy.pid;");
        assert_eq!(
            signal_running(&missing, Command::Reload).unwrap_err(),
            format!(
                "open() \"{}\" failed (2: No such file or directory)",
                dir.join("run/proxy.pid").display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pid_file_is_written_and_removed() {
        let dir = scratch("pid-file");
        let path = dir.join("proxy.pid");
        let file = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert_eq!(
            read_pid(&path).unwrap().as_raw_nonzero().get() as u32,
            std::process::id()
        );
        drop(file);
        assert!(!path.exists());
        // A file rewritten by another process is left alone.
        let file = PidFile::create(&path).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(file);
        assert!(path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nofile_request_never_lowers_the_hard_limit() {
        let cases = [
            ((1024, Some(4096)), 2048, (Some(2048), Some(4096))),
            ((1024, Some(4096)), 65536, (Some(65536), Some(65536))),
            ((1024, None), 65536, (Some(65536), None)),
            ((70000, Some(100000)), 512, (Some(512), Some(100000))),
        ];
        for ((soft, hard), wanted, (want_soft, want_hard)) in cases {
            let current = Rlimit {
                current: Some(soft),
                maximum: hard,
            };
            let got = nofile_request(wanted, &current);
            assert_eq!(
                (got.current, got.maximum),
                (want_soft, want_hard),
                "{wanted}"
            );
        }
    }

    #[test]
    fn setting_nofile_to_the_current_soft_limit_succeeds() {
        let current = rustix::process::getrlimit(Resource::Nofile);
        let soft = current.current.unwrap_or(1024);
        assert_eq!(set_nofile(soft).unwrap(), None);
        assert_eq!(
            rustix::process::getrlimit(Resource::Nofile).current,
            Some(soft)
        );
    }

    #[tokio::test]
    async fn signals_to_this_process_become_control_events() {
        let mut signals = ControlSignals::new().unwrap();
        let me = rustix::process::getpid();
        for (command, want) in [
            (Command::Reload, Control::Reload),
            (Command::Reopen, Control::Reopen),
        ] {
            send(command, me).unwrap();
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), signals.recv())
                .await
                .unwrap();
            assert_eq!(got, want);
        }
    }
}
