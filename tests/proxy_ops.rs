//! Running the proxy as an operator does: `proxy -s SIGNAL` against a proxy
//! started from the binary, through the `pid` file, and the messages when that
//! cannot work. Configurations listen on 127.0.0.1:0 only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sticky-ops-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::write(&path, text).expect("write file");
        path
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn proxy(args: &[&str], conf: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proxy"))
        .args(args)
        .arg("-c")
        .arg(conf)
        .output()
        .expect("run proxy")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running `proxy` process, killed if the test fails before it stops.
struct Running(Child);

impl Running {
    fn start(conf: &Path) -> Running {
        let child = Command::new(env!("CARGO_BIN_EXE_proxy"))
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start proxy");
        Running(child)
    }

    /// Waits up to `limit` for the process to exit.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

const SERVER: &str = "events {} http { server { listen 127.0.0.1:0; return 200 ok; } }";

#[test]
fn signal_without_pid_directive_is_a_clear_error() {
    let dir = Scratch::new("no-pid");
    let conf = dir.write("proxy.conf", SERVER);
    let out = proxy(&["-s", "reload"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "proxy: [error] no \"pid\" directive in {}: the running proxy cannot be found \
             (add e.g. \"pid /run/proxy.pid;\" and restart it)\n",
            conf.display()
        )
    );
}

#[test]
fn signal_when_not_running_names_the_pid_file_like_nginx() {
    let dir = Scratch::new("not-running");
    let conf = dir.write("proxy.conf", &format!("pid proxy.pid; {SERVER}"));
    let out = proxy(&["-s", "quit"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "proxy: [error] open() \"{}\" failed (2: No such file or directory)\n",
            dir.path("proxy.pid").display()
        )
    );
}

#[test]
fn unknown_signal_name_is_rejected() {
    let dir = Scratch::new("bad-signal");
    let conf = dir.write("proxy.conf", SERVER);
    let out = proxy(&["-s", "restart"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("invalid option: \"-s restart\" (expected stop, quit, reopen or reload)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn signal_with_a_broken_config_reports_the_config_error() {
    let dir = Scratch::new("broken");
    let conf = dir.write(
        "proxy.conf",
        "pid proxy.pid; http { server { listen 127.0.0.1:0 }",
    );
    let out = proxy(&["-s", "reload"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("proxy: [emerg] "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stop_signal_ends_the_running_proxy_and_removes_the_pid_file() {
    let dir = Scratch::new("stop");
    let conf = dir.write("proxy.conf", &format!("pid proxy.pid; {SERVER}"));
    let mut running = Running::start(&conf);
    let pid_file = dir.path("proxy.pid");
    assert!(wait_for(&pid_file, Duration::from_secs(10)), "no pid file");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid, format!("{}\n", running.0.id()));
    let out = proxy(&["-s", "stop"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let status = running.wait(Duration::from_secs(10)).expect("proxy exits");
    assert!(status.success(), "{status:?}");
    assert!(!pid_file.exists());
}
