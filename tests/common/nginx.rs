//! nginx itself as a reference: runs the system's `nginx` (when installed) on
//! 127.0.0.1 with the same `http` block the proxy is tested with, so a test can
//! compare what both answer. Started in the foreground (`daemon off;
//! master_process off;`) in its own temporary prefix and killed by its PID on
//! drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Status, `Location` and the body reduced to what does not depend on the
/// server that answered: the request line an echo backend saw, the title of an
/// HTML status page, or the text; the server's own `:port` is left out of the
/// `Location`. What a comparison with nginx compares.
pub type Summary = (u16, Option<String>, String);

/// The [`Summary`] of a reply from the server on `port`.
pub fn summary(r: &super::Reply, port: u16) -> Summary {
    let text = r.text();
    let body = match (r.backend(), r.seen_request_line()) {
        (Some(_), Some(line)) => format!("backend {line}"),
        _ => match text.find("<title>") {
            Some(i) => text[i + "<title>".len()..]
                .split("</title>")
                .next()
                .unwrap_or("")
                .to_string(),
            None => text,
        },
    };
    let location = r
        .header("location")
        .map(|l| l.replace(&format!(":{port}/"), "/"));
    (r.status, location, body)
}

/// A running nginx.
pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

/// The `nginx` binary, or `None` (and a message) when it is not installed.
fn binary() -> Option<PathBuf> {
    let found = super::nginx_binary();
    if found.is_none() {
        eprintln!("nginx is not installed: the comparison with nginx is skipped");
    }
    found
}

impl Nginx {
    /// Starts nginx with `http_body` (the inside of `http { }`, where `LISTEN`
    /// stands for the address it must listen on). `None` when nginx is absent.
    pub fn start(http_body: &str) -> Option<Nginx> {
        Nginx::start_at(super::dead_addr(), http_body)
    }

    /// [`Nginx::start`] with `LISTEN` standing for `addr`.
    pub fn start_at(addr: SocketAddr, http_body: &str) -> Option<Nginx> {
        let bin = binary()?;
        let dir = std::env::temp_dir().join(format!(
            "sticky-proxy-nginx-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::create_dir_all(dir.join("logs")).expect("nginx prefix");
        let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|t| format!("{t}_temp_path {};\n", dir.join(t).display()))
            .collect();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {}/logs/error.log info;\npid {}/logs/nginx.pid;\n\
             events {{ worker_connections 64; }}\nhttp {{\naccess_log off;\n{temp}{}\n}}\n",
            dir.display(),
            dir.display(),
            http_body.replace("LISTEN", &addr.to_string())
        );
        let file = dir.join("nginx.conf");
        std::fs::write(&file, conf).expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline || nginx.child.try_wait().ok().flatten().is_some() {
                let log =
                    std::fs::read_to_string(nginx.dir.join("logs/error.log")).unwrap_or_default();
                panic!("nginx did not start:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(nginx)
    }

    /// The process id (nginx runs as one process here).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
