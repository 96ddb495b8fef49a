//! The proxy binary run as a child process, for the tests that watch the
//! process from outside (its resident memory and CPU time in /proc) while
//! clients misbehave. Started from config text in its own temporary
//! directory, killed by its PID on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ProxyProcess {
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl ProxyProcess {
    /// Starts `proxy -c FILE` with `main` (main-context lines) and `http_body`
    /// (the inside of `http { }`), where `LISTEN` stands for the address to
    /// listen on (a free port on 127.0.0.1). The error log, at `info`, is
    /// `DIR/error.log`.
    pub fn start(main: &str, http_body: &str) -> ProxyProcess {
        let addr = super::dead_addr();
        let dir = std::env::temp_dir().join(format!(
            "sticky-proxy-child-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::create_dir_all(&dir).expect("proxy scratch dir");
        let conf = format!(
            "error_log {}/error.log info;\n{main}\nevents {{ worker_connections 1024; }}\nhttp {{\naccess_log off;\n{}\n}}\n",
            dir.display(),
            http_body.replace("LISTEN", &addr.to_string())
        );
        let file = dir.join("proxy.conf");
        std::fs::write(&file, &conf).expect("write proxy.conf");
        let child = Command::new(env!("CARGO_BIN_EXE_proxy"))
            .arg("-c")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the proxy binary");
        let mut p = ProxyProcess { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline || p.child.try_wait().ok().flatten().is_some() {
                panic!("the proxy did not start:\n{conf}\n{}", p.error_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Resident memory of process `pid` in kB (VmRSS), 0 when unreadable.
pub fn rss_kb(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// Peak resident memory of process `pid` in kB (VmHWM), 0 when unreadable.
pub fn peak_rss_kb(pid: u32) -> u64 {
    proc_status(pid, "VmHWM:")
}

fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}
