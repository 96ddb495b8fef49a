//! Log lines sent to syslog (`syslog:server=...`), one datagram per line, as
//! nginx's `ngx_syslog_send`: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: LINE` (BSD
//! syslog, RFC 3164; the time in UTC as every other time the proxy logs;
//! without the hostname under `nohostname`), over UDP or a local datagram
//! socket. A line that cannot be sent (no listener, a full socket buffer) is
//! dropped, as nginx does: logging never blocks a worker or the writer.

use std::io::{self, Write};
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::SystemTime;

use super::writer::{LogFile, Opener, QUEUE_LINES};
use crate::config::syslog::{Syslog, SyslogServer};
use crate::timefmt;

/// The socket lines go out on.
enum Socket {
    Udp(UdpSocket),
    /// With the socket's path, for a `connect` that failed when opened.
    Unix(UnixDatagram, std::path::PathBuf),
}

/// A [`Write`] that sends each line written to it as one syslog message.
pub struct SyslogWriter {
    socket: Socket,
    conf: Syslog,
    /// A line not yet ended by `\n` (the writer thread writes whole lines;
    /// kept for any other caller).
    partial: Vec<u8>,
    /// The message being built (reused).
    message: Vec<u8>,
}

impl SyslogWriter {
    /// A socket connected to the configured server (nginx's error texts).
    pub fn open(conf: &Syslog) -> Result<SyslogWriter, String> {
        let socket = match &conf.server {
            SyslogServer::Udp(addr) => {
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(local).map_err(|e| format!("socket() failed ({e})"))?;
                s.connect(addr)
                    .map_err(|e| format!("connect() to {addr} failed ({e})"))?;
                s.set_nonblocking(true)
                    .map_err(|e| format!("fcntl(O_NONBLOCK) failed ({e})"))?;
                Socket::Udp(s)
            }
            SyslogServer::Unix(path) => {
                let s = UnixDatagram::unbound().map_err(|e| format!("socket() failed ({e})"))?;
                s.set_nonblocking(true)
                    .map_err(|e| format!("fcntl(O_NONBLOCK) failed ({e})"))?;
                // A socket that is not there yet (syslogd not started) is
                // tried again at each line.
                let _ = s.connect(path);
                Socket::Unix(s, path.clone())
            }
        };
        Ok(SyslogWriter {
            socket,
            conf: conf.clone(),
            partial: Vec::new(),
            message: Vec::with_capacity(1024),
        })
    }

    /// What it was opened with.
    pub fn conf(&self) -> &Syslog {
        &self.conf
    }

    /// Sends `line` (without its `\n`) with `severity`, at `now`. Errors are
    /// dropped with the line.
    pub fn send(&mut self, line: &[u8], severity: u8, now: SystemTime) {
        self.message.clear();
        header(
            &self.conf,
            severity,
            now,
            super::hostname(),
            &mut self.message,
        );
        self.message.extend_from_slice(line);
        let _ = match &self.socket {
            Socket::Udp(s) => s.send(&self.message),
            Socket::Unix(s, path) => s
                .send(&self.message)
                .or_else(|_| s.send_to(&self.message, path)),
        };
    }
}

impl Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now = SystemTime::now();
        let severity = self.conf.severity;
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(end);
            if self.partial.is_empty() {
                self.send(line, severity, now);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.send(&whole, severity, now);
            }
            rest = after.get(1..).unwrap_or_default();
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An access log writing to syslog: the lines are queued and sent by the
/// writer thread as a file's are; `name` is the destination as written.
pub fn log_file(name: &str, conf: &Syslog) -> Result<LogFile, String> {
    let conf = conf.clone();
    let opener: Opener =
        Box::new(move || SyslogWriter::open(&conf).map(|w| Box::new(w) as Box<dyn Write + Send>));
    LogFile::with_opener(name, opener, QUEUE_LINES)
}

/// `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: ` (nginx's `ngx_syslog_add_header`).
pub fn header(conf: &Syslog, severity: u8, now: SystemTime, hostname: &str, out: &mut Vec<u8>) {
    let pri = u16::from(conf.facility) * 8 + u16::from(severity);
    let _ = write!(out, "<{pri}>{} ", timefmt::syslog(now));
    if !conf.nohostname {
        out.extend_from_slice(hostname.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(conf.tag.as_bytes());
    out.extend_from_slice(b": ");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn conf(server: SyslogServer) -> Syslog {
        Syslog {
            server,
            facility: 23,
            severity: 6,
            tag: "nginx".to_string(),
            nohostname: false,
        }
    }

    #[test]
    fn headers_are_nginx_s() {
        // 2026-12-05 04:51:13 UTC; a day below 10 is space-padded.
        let at = UNIX_EPOCH + Duration::from_secs(1_796_446_273);
        let mut out = Vec::new();
        let udp = SyslogServer::Udp("127.0.0.1:514".parse().unwrap());
        header(&conf(udp.clone()), 6, at, "vm", &mut out);
        assert_eq!(out, b"<190>Dec  5 04:51:13 vm nginx: ");
        out.clear();
        let quiet = Syslog {
            facility: 16,
            tag: "web_1".to_string(),
            nohostname: true,
            ..conf(udp)
        };
        header(&quiet, 3, at, "vm", &mut out);
        assert_eq!(out, b"<131>Dec  5 04:51:13 web_1: ");
    }

    #[test]
    fn each_line_is_one_datagram() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let mut w = SyslogWriter::open(&conf(SyslogServer::Udp(addr))).unwrap();
        w.write_all(b"one\ntwo\nthr").unwrap();
        w.write_all(b"ee\n").unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            let n = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        for (message, line) in got.iter().zip(["one", "two", "three"]) {
            assert!(message.starts_with("<190>"), "{message}");
            assert!(message.ends_with(&format!(" nginx: {line}")), "{message}");
        }
        // No listener: the line is dropped, nothing fails.
        drop(server);
        w.write_all(b"lost\n").unwrap();
    }
}
