//! `syslog:` log destinations (`access_log syslog:server=ADDR,...`,
//! `error_log syslog:...`), parsed as nginx's `ngx_syslog_parse_args`:
//! `server=` (an IP address or name with an optional port, 514 by default,
//! or `unix:PATH`), `facility=`, `severity=`, `tag=`, `nohostname`. Pure:
//! the name of a server is resolved by the caller's `resolve`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where and how log lines go to syslog.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Syslog {
    pub server: SyslogServer,
    /// 0..=23 (`kern` .. `local7`); nginx's default is `local7`.
    pub facility: u8,
    /// 0..=7 (`emerg` .. `debug`); nginx's default is `info`. An error log
    /// sends each line with its own level instead.
    pub severity: u8,
    /// `tag=`, `nginx` by default (as nginx's, so existing syslog filters
    /// keep matching).
    pub tag: String,
    /// No hostname in the header (`nohostname`).
    pub nohostname: bool,
}

/// The syslog server: a UDP address or a local datagram socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SyslogServer {
    Udp(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for SyslogServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogServer::Udp(addr) => write!(f, "{addr}"),
            SyslogServer::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// nginx's facility names, in number order.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock", "authpriv",
    "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// nginx's severity names, in number order.
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
];

/// The longest `tag=` nginx accepts.
const MAX_TAG: usize = 32;

/// The destination `path` names when it starts with `syslog:`; `Ok(None)`
/// for a file. `resolve` turns `HOST[:PORT]` into an address (port 514 when
/// it names none), or says why not. Errors are nginx's texts.
pub fn parse(
    path: &str,
    resolve: impl Fn(&str) -> Result<SocketAddr, String>,
) -> Result<Option<Syslog>, String> {
    let Some(args) = path.strip_prefix("syslog:") else {
        return Ok(None);
    };
    let mut server = None;
    let mut syslog = Syslog {
        server: SyslogServer::Unix(PathBuf::new()),
        facility: 23,
        severity: 6,
        tag: "nginx".to_string(),
        nohostname: false,
    };
    for param in args.split(',') {
        if param == "nohostname" {
            syslog.nohostname = true;
        } else if let Some(value) = param.strip_prefix("server=") {
            if server.is_some() {
                return Err("duplicate syslog \"server\"".to_string());
            }
            server = Some(match value.strip_prefix("unix:") {
                Some(p) if !p.is_empty() => SyslogServer::Unix(PathBuf::from(p)),
                Some(_) => return Err("no path in syslog server \"unix:\"".to_string()),
                None => SyslogServer::Udp(resolve(value)?),
            });
        } else if let Some(value) = param.strip_prefix("facility=") {
            syslog.facility = position(&FACILITIES, value)
                .ok_or_else(|| format!("unknown syslog facility \"{value}\""))?;
        } else if let Some(value) = param.strip_prefix("severity=") {
            syslog.severity = position(&SEVERITIES, value)
                .ok_or_else(|| format!("unknown syslog severity \"{value}\""))?;
        } else if let Some(value) = param.strip_prefix("tag=") {
            if value.len() > MAX_TAG {
                return Err(format!("syslog tag length exceeds {MAX_TAG}"));
            }
            if !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(
                    "syslog \"tag\" only allows alphanumeric characters and underscore".to_string(),
                );
            }
            syslog.tag = value.to_string();
        } else {
            return Err(format!("unknown syslog parameter \"{param}\""));
        }
    }
    syslog.server = server.ok_or_else(|| "no syslog server specified".to_string())?;
    Ok(Some(syslog))
}

fn position(names: &[&str], value: &str) -> Option<u8> {
    names
        .iter()
        .position(|n| *n == value)
        .and_then(|i| u8::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(host: &str) -> Result<SocketAddr, String> {
        let host = host.replace("localhost", "127.0.0.1");
        host.parse()
            .or_else(|_| format!("{host}:514").parse())
            .or_else(|_| format!("[{host}]:514").parse())
            .map_err(|_| format!("host not found in \"{host}\""))
    }

    #[test]
    fn nginx_s_syslog_parameters() {
        let udp = |a: &str| SyslogServer::Udp(a.parse().unwrap_or_else(|_| panic!("{a}")));
        let cases: [(&str, SyslogServer, u8, u8, &str, bool); 6] = [
            (
                "syslog:server=127.0.0.1",
                udp("127.0.0.1:514"),
                23,
                6,
                "nginx",
                false,
            ),
            (
                "syslog:server=localhost:1514,tag=web",
                udp("127.0.0.1:1514"),
                23,
                6,
                "web",
                false,
            ),
            (
                "syslog:server=[::1]",
                udp("[::1]:514"),
                23,
                6,
                "nginx",
                false,
            ),
            (
                "syslog:server=[::1]:9,facility=local0,severity=warn,nohostname",
                udp("[::1]:9"),
                16,
                4,
                "nginx",
                true,
            ),
            (
                "syslog:server=unix:/dev/log,facility=kern,severity=emerg",
                SyslogServer::Unix("/dev/log".into()),
                0,
                0,
                "nginx",
                false,
            ),
            (
                "syslog:tag=a_1,server=1.2.3.4:5",
                udp("1.2.3.4:5"),
                23,
                6,
                "a_1",
                false,
            ),
        ];
        for (path, server, facility, severity, tag, nohostname) in cases {
            let want = Syslog {
                server,
                facility,
                severity,
                tag: tag.to_string(),
                nohostname,
            };
            assert_eq!(parse(path, resolve), Ok(Some(want)), "{path}");
        }
        assert_eq!(parse("/var/log/syslog:x", resolve), Ok(None));
    }

    #[test]
    fn bad_parameters_get_nginx_s_errors() {
        let cases = [
            ("syslog:", "unknown syslog parameter \"\""),
            ("syslog:tag=x", "no syslog server specified"),
            ("syslog:server=a.invalid", "host not found in \"a.invalid\""),
            (
                "syslog:server=1.2.3.4,facility=local8",
                "unknown syslog facility \"local8\"",
            ),
            (
                "syslog:server=1.2.3.4,severity=info2",
                "unknown syslog severity \"info2\"",
            ),
            (
                "syslog:server=1.2.3.4,tag=a-b",
                "syslog \"tag\" only allows alphanumeric characters and underscore",
            ),
            (
                "syslog:server=1.2.3.4,tag=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "syslog tag length exceeds 32",
            ),
            (
                "syslog:server=1.2.3.4,server=1.2.3.5",
                "duplicate syslog \"server\"",
            ),
            ("syslog:server=unix:", "no path in syslog server \"unix:\""),
            (
                "syslog:server=1.2.3.4,bogus",
                "unknown syslog parameter \"bogus\"",
            ),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path, resolve), Err(want.to_string()), "{path}");
        }
    }
}
