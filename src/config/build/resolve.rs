//! Address parsing and name resolution for `listen`, upstream `server` lines and
//! `proxy_pass` targets: `HOST[:PORT]`, `[V6][:PORT]`, `IP:PORT`. The one part of
//! the builder that does I/O (the system resolver, at load time only); the error
//! is nginx's reason (`host not found`, `invalid port`, ...) for the caller to
//! place in its message.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The peers of a `server` (or `proxy_pass`) address: `unix:/path` (one
/// Unix-socket peer named `unix:/path`, its inet address unused) or what
/// [`resolve`] makes of it. Each peer is `(name, address, unix path)`.
pub(super) fn peer_addrs(
    text: &str,
    default_port: u16,
) -> Result<Vec<(String, SocketAddr, Option<std::path::PathBuf>)>, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("no path".to_string());
        }
        let unused = SocketAddr::from(([0, 0, 0, 0], 0));
        return Ok(vec![(text.to_string(), unused, Some(path.into()))]);
    }
    Ok(resolve(text, default_port, false)?
        .into_iter()
        .map(|a| (a.to_string(), a, None))
        .collect())
}

/// Splits `HOST[:PORT]` / `[V6][:PORT]` / `IP:PORT`; resolves into addresses.
/// The error is nginx's reason (`host not found`, `invalid port`, ...).
pub(super) fn resolve(
    text: &str,
    default_port: u16,
    allow_zero_port: bool,
) -> Result<Vec<SocketAddr>, String> {
    if text.starts_with("unix:") {
        return Err("unix domain sockets are not supported".to_string());
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        if sa.port() == 0 && !allow_zero_port {
            return Err("invalid port".to_string());
        }
        return Ok(vec![sa]);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        if ip.is_ipv4() {
            return Ok(vec![SocketAddr::new(ip, default_port)]);
        }
        return Err("invalid host".to_string());
    }
    if let Some(inner) = text.strip_prefix('[') {
        let Some((v6, rest)) = inner.split_once(']') else {
            return Err("invalid host".to_string());
        };
        let ip: IpAddr = v6.parse().map_err(|_| "invalid host".to_string())?;
        let port = if rest.is_empty() {
            default_port
        } else {
            let p = rest
                .strip_prefix(':')
                .ok_or_else(|| "invalid host".to_string())?;
            parse_port(p, allow_zero_port)?
        };
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (host, port) = host_and_port(text, default_port, allow_zero_port)?;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| "host not found".to_string())?
        .collect();
    if addrs.is_empty() {
        return Err("host not found".to_string());
    }
    Ok(addrs)
}

/// `HOST[:PORT]` of a name (not an address): the host and the port, unresolved.
fn host_and_port(
    text: &str,
    default_port: u16,
    allow_zero_port: bool,
) -> Result<(&str, u16), String> {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, parse_port(port, allow_zero_port)?),
        None => (text, default_port),
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    if host.contains(':') || host.contains('/') || host.contains('*') {
        return Err("invalid host".to_string());
    }
    Ok((host, port))
}

/// For `server NAME resolve`: `Ok(None)` when `text` is an address (`IP`,
/// `IP:PORT`, `[V6]...`: nothing to resolve at run time), else the name and
/// port to resolve at run time. The error is nginx's reason.
pub(super) fn run_time_name(text: &str, default_port: u16) -> Result<Option<(&str, u16)>, String> {
    if text.starts_with("unix:") {
        return Err("unix domain sockets are not supported".to_string());
    }
    if text.parse::<SocketAddr>().is_ok() || text.parse::<IpAddr>().is_ok() || text.starts_with('[')
    {
        return Ok(None);
    }
    host_and_port(text, default_port, false).map(Some)
}

pub(super) fn parse_port(text: &str, allow_zero: bool) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) if !allow_zero => Err("invalid port".to_string()),
        Ok(p) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err("invalid port".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_resolution_reasons() {
        let cases: &[(&str, bool, Result<&str, &str>)] = &[
            ("127.0.0.1:9000", false, Ok("127.0.0.1:9000")),
            ("127.0.0.1", false, Ok("127.0.0.1:80")),
            ("[::1]:9000", false, Ok("[::1]:9000")),
            ("[::1]", false, Ok("[::1]:80")),
            ("127.0.0.1:0", true, Ok("127.0.0.1:0")),
            ("127.0.0.1:0", false, Err("invalid port")),
            ("127.0.0.1:65536", false, Err("invalid port")),
            ("127.0.0.1:+80", false, Err("invalid port")),
            ("localhost:", false, Err("invalid port")),
            (":80", false, Err("no host")),
            ("::1", false, Err("invalid host")),
            ("[::1", false, Err("invalid host")),
            ("[::1]9000", false, Err("invalid host")),
            ("[nope]:80", false, Err("invalid host")),
            ("a:b:80", false, Err("invalid host")),
            (
                "unix:/tmp/s.sock",
                false,
                Err("unix domain sockets are not supported"),
            ),
            ("no-such-host.invalid", false, Err("host not found")),
        ];
        for (text, zero, expected) in cases {
            let got = resolve(text, 80, *zero).map(|a| a[0].to_string());
            assert_eq!(got.as_deref().map_err(String::as_str), *expected, "{text}");
        }
    }

    #[test]
    fn run_time_names_are_split_not_resolved() {
        type Split<'a> = Result<Option<(&'a str, u16)>, &'a str>;
        let cases: &[(&str, Split)] = &[
            ("backend.svc", Ok(Some(("backend.svc", 80)))),
            ("backend.svc:8080", Ok(Some(("backend.svc", 8080)))),
            (
                "no-such-host.invalid:81",
                Ok(Some(("no-such-host.invalid", 81))),
            ),
            ("127.0.0.1:9000", Ok(None)),
            ("127.0.0.1", Ok(None)),
            ("[::1]:9000", Ok(None)),
            ("backend.svc:0", Err("invalid port")),
            ("backend.svc:x", Err("invalid port")),
            (":80", Err("no host")),
            ("a/b", Err("invalid host")),
        ];
        for (text, expected) in cases {
            let got = run_time_name(text, 80);
            assert_eq!(got, expected.map_err(String::from), "{text}");
        }
    }
}
