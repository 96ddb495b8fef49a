//! Log lines sent to syslog (`syslog:server=...`), one datagram per line, as
//! nginx's `ngx_syslog_send`: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: LINE` (BSD
//! syslog, RFC 3164; the time in UTC as every other time the proxy logs;
//! without the hostname under `nohostname`), over UDP or a local datagram
//! socket. A line that cannot be sent (no listener, no room) is dropped, as
//! nginx does: an error-log line at once (the workers write it), an
//! access-log line after its writer thread waited a second for room; the
//! access log's lost lines are counted and reported.

use std::io::{self, Write};
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, SystemTime};

use super::writer::{LogFile, Opener, QUEUE_LINES};
use crate::config::syslog::{Syslog, SyslogServer};
use crate::timefmt;

/// The socket lines go out on, unconnected: each line is sent to the
/// server's address, so a route or a syslogd that comes up later (or
/// restarts) is found again, and opening never fails for want of one.
enum Socket {
    Udp(UdpSocket, std::net::SocketAddr),
    Unix(UnixDatagram, std::path::PathBuf),
}

/// How long an access log's writer thread waits for room in the socket's
/// buffer before it drops a line.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// A [`Write`] that sends each line written to it as one syslog message.
pub struct SyslogWriter {
    socket: Socket,
    conf: Syslog,
    /// A line not yet ended by `\n` (the writer thread writes whole lines;
    /// kept for any other caller).
    partial: Vec<u8>,
    /// The message being built (reused).
    message: Vec<u8>,
    /// Lines that could not be sent since the last report.
    lost: u64,
    /// When lost lines were last reported (at most every [`REPORT_EVERY`]).
    reported: Option<std::time::Instant>,
}

/// How often lost access-log lines are reported, at most.
const REPORT_EVERY: Duration = Duration::from_secs(10);

impl SyslogWriter {
    /// A socket for the configured server (nginx's error texts). `blocking`:
    /// a send waits up to [`SEND_WAIT`] for room (an access log's own writer
    /// thread); else a line that finds no room is dropped at once (the error
    /// log, written from the workers).
    pub fn open(conf: &Syslog, blocking: bool) -> Result<SyslogWriter, String> {
        let wait = |r: std::io::Result<()>| r.map_err(|e| format!("setsockopt() failed ({e})"));
        let socket = match &conf.server {
            SyslogServer::Udp(addr) => {
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(local).map_err(|e| format!("socket() failed ({e})"))?;
                wait(s.set_nonblocking(!blocking))?;
                wait(s.set_write_timeout(Some(SEND_WAIT)))?;
                Socket::Udp(s, *addr)
            }
            SyslogServer::Unix(path) => {
                let s = UnixDatagram::unbound().map_err(|e| format!("socket() failed ({e})"))?;
                wait(s.set_nonblocking(!blocking))?;
                wait(s.set_write_timeout(Some(SEND_WAIT)))?;
                Socket::Unix(s, path.clone())
            }
        };
        Ok(SyslogWriter {
            socket,
            conf: conf.clone(),
            partial: Vec::new(),
            message: Vec::with_capacity(1024),
            lost: 0,
            reported: None,
        })
    }

    /// Says how many lines could not be sent, as a file log reports the
    /// lines it dropped.
    fn report(&mut self) {
        tracing::warn!(
            "{} access log lines could not be sent to syslog server {}",
            std::mem::take(&mut self.lost),
            self.conf.server
        );
        self.reported = Some(std::time::Instant::now());
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
        let sent = match &self.socket {
            Socket::Udp(s, addr) => s.send_to(&self.message, addr),
            Socket::Unix(s, path) => s.send_to(&self.message, path),
        };
        if sent.is_err() {
            self.lost += 1;
        }
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
        let due = self.reported.is_none_or(|at| at.elapsed() >= REPORT_EVERY);
        if self.lost > 0 && due {
            self.report();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.lost > 0 {
            self.report();
        }
        Ok(())
    }
}

/// An access log writing to syslog: the lines are queued and sent by the
/// writer thread as a file's are; `name` is the destination as written.
pub fn log_file(name: &str, conf: &Syslog) -> Result<LogFile, String> {
    let conf = conf.clone();
    let opener: Opener = Box::new(move || {
        SyslogWriter::open(&conf, true).map(|w| Box::new(w) as Box<dyn Write + Send>)
    });
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
        let mut w = SyslogWriter::open(&conf(SyslogServer::Udp(addr)), true).unwrap();
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
