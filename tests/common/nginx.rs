//! nginx itself, run next to the proxy in the same test when it is installed,
//! for behaviour that must match it exactly. [`Nginx::start`] writes a config
//! with its own prefix in a temporary directory, listens on a port the kernel
//! chose, and stops the process (by its id) when dropped; it returns `None`
//! (and the test prints that it skipped the comparison) when there is no
//! `nginx` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Nginx {
    /// Starts nginx with `http` as the body of its `http {}` block; every
    /// `LISTEN` in it is replaced by the address it listens on.
    pub fn start(http: &str) -> Option<Nginx> {
        let Some(bin) = binary() else {
            eprintln!("nginx is not installed: the comparison with nginx is skipped");
            return None;
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let dir = std::env::temp_dir().join(format!("proxy-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nerror_log {d}/logs/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/cb;\n proxy_temp_path {d}/pt;\n\
             fastcgi_temp_path {d}/ft;\n uwsgi_temp_path {d}/ut;\n scgi_temp_path {d}/st;\n{}\n}}\n",
            http.replace("LISTEN", &addr.to_string())
        );
        let file = dir.join("nginx.conf");
        std::fs::write(&file, conf).expect("nginx conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut n = Nginx { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline || n.child.try_wait().ok().flatten().is_some() {
                let log = std::fs::read_to_string(n.dir.join("logs/error.log")).unwrap_or_default();
                panic!("nginx did not start:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(n)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
