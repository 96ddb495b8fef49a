//! nginx's realip module, pure: the client address a request should be
//! treated as coming from, given the connection's address, the configured
//! header and the trusted `set_real_ip_from` blocks.
//!
//! Only a connection from a trusted address is rewritten. `X-Real-IP` (or any
//! single-address header) gives the address as is. `X-Forwarded-For` is read
//! from the right: the last address is taken; with `real_ip_recursive on`, as
//! long as the address taken is itself trusted, the one before it is taken
//! (nginx's `ngx_http_get_forwarded_addr`). Several `X-Forwarded-For` lines
//! count as one list in order. A value that is not an address leaves the
//! client as it was.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

use crate::access::cidr::Cidr;
use crate::access::conf::{RealIp, RealIpHeader};

/// The address the request is treated as coming from; `None` when it stays
/// the connection's.
pub fn real_addr(conf: &RealIp, remote: SocketAddr, headers: &HeaderMap) -> Option<SocketAddr> {
    let trusted = |ip: IpAddr| conf.from.iter().any(|c: &Cidr| c.contains(ip));
    if !trusted(remote.ip()) {
        return None;
    }
    match &conf.header {
        RealIpHeader::Single(name) => {
            let value = headers.get(name)?.as_bytes();
            parse_addr(trim(value)).map(|(ip, port)| SocketAddr::new(ip, port.unwrap_or(0)))
        }
        RealIpHeader::XForwardedFor => {
            let mut list = Vec::new();
            for v in headers.get_all("x-forwarded-for") {
                if !list.is_empty() {
                    list.push(b',');
                }
                list.extend_from_slice(v.as_bytes());
            }
            if list.is_empty() {
                return None;
            }
            forwarded(&list, conf.recursive, &trusted)
                .map(|(ip, port)| SocketAddr::new(ip, port.unwrap_or(0)))
        }
    }
}

/// The address taken from an `X-Forwarded-For` list (see the module docs).
fn forwarded(
    mut list: &[u8],
    recursive: bool,
    trusted: &impl Fn(IpAddr) -> bool,
) -> Option<(IpAddr, Option<u16>)> {
    let mut found = None;
    loop {
        // Trailing separators, then the last item.
        while let [rest @ .., b' ' | b','] = list {
            list = rest;
        }
        let start = list
            .iter()
            .rposition(|&b| b == b' ' || b == b',')
            .map_or(0, |i| i + 1);
        let item = list.get(start..)?;
        let Some(addr) = parse_addr(item) else {
            return found;
        };
        found = Some(addr);
        if !recursive || start == 0 || !trusted(addr.0) {
            return found;
        }
        list = list.get(..start.saturating_sub(1))?;
        if list.iter().all(|&b| b == b' ' || b == b',') {
            return found;
        }
    }
}

/// `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`.
fn parse_addr(text: &[u8]) -> Option<(IpAddr, Option<u16>)> {
    let text = std::str::from_utf8(text).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((ip, None));
    }
    let sa: SocketAddr = text.parse().ok()?;
    Some((sa.ip(), Some(sa.port())))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::access::cidr;

    fn conf(from: &[&str], header: &str, recursive: bool) -> RealIp {
        RealIp {
            from: from.iter().map(|b| cidr::parse(b).unwrap().0).collect(),
            header: if header == "X-Forwarded-For" {
                RealIpHeader::XForwardedFor
            } else {
                RealIpHeader::Single(header.parse().unwrap())
            },
            recursive,
        }
    }

    fn run(c: &RealIp, remote: &str, lines: &[(&str, &str)]) -> Option<String> {
        let mut h = HeaderMap::new();
        for (n, v) in lines {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        real_addr(c, format!("{remote}:5000").parse().unwrap(), &h).map(|a| a.ip().to_string())
    }

    #[test]
    fn x_forwarded_for_like_nginx() {
        let plain = conf(&["10.0.0.0/8"], "X-Forwarded-For", false);
        let rec = conf(&["10.0.0.0/8"], "X-Forwarded-For", true);
        let xff = "x-forwarded-for";
        // (conf, connection from, headers, result)
        type Case<'a> = (
            &'a RealIp,
            &'a str,
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
        );
        let cases: &[Case<'_>] = &[
            (
                &plain,
                "10.1.1.1",
                &[(xff, "203.0.113.1")],
                Some("203.0.113.1"),
            ),
            (&plain, "192.0.2.1", &[(xff, "203.0.113.1")], None),
            (
                &plain,
                "10.1.1.1",
                &[(xff, "1.1.1.1, 10.0.0.2")],
                Some("10.0.0.2"),
            ),
            (
                &rec,
                "10.1.1.1",
                &[(xff, "1.1.1.1, 10.0.0.2")],
                Some("1.1.1.1"),
            ),
            (
                &rec,
                "10.1.1.1",
                &[(xff, "1.1.1.1, 2.2.2.2, 10.0.0.2, 10.0.0.3")],
                Some("2.2.2.2"),
            ),
            (
                &rec,
                "10.1.1.1",
                &[(xff, "10.0.0.9, 10.0.0.2")],
                Some("10.0.0.9"),
            ),
            (
                &rec,
                "10.1.1.1",
                &[(xff, "1.1.1.1"), (xff, "10.0.0.4")],
                Some("1.1.1.1"),
            ),
            (&plain, "10.1.1.1", &[(xff, "1.1.1.1 ,, ")], Some("1.1.1.1")),
            (&plain, "10.1.1.1", &[(xff, "unknown")], None),
            (
                &rec,
                "10.1.1.1",
                &[(xff, "bogus, 10.0.0.2")],
                Some("10.0.0.2"),
            ),
            (
                &plain,
                "10.1.1.1",
                &[(xff, "[2001:db8::1]:443")],
                Some("2001:db8::1"),
            ),
            (&plain, "10.1.1.1", &[], None),
        ];
        for (c, remote, lines, want) in cases {
            assert_eq!(
                run(c, remote, lines).as_deref(),
                *want,
                "{remote} {lines:?}"
            );
        }
    }

    #[test]
    fn single_address_headers() {
        let c = conf(&["127.0.0.1", "::1"], "X-Real-IP", false);
        assert_eq!(
            run(&c, "127.0.0.1", &[("x-real-ip", " 192.0.2.5 ")]).as_deref(),
            Some("192.0.2.5")
        );
        assert_eq!(run(&c, "127.0.0.2", &[("x-real-ip", "192.0.2.5")]), None);
        assert_eq!(
            run(&c, "127.0.0.1", &[("x-real-ip", "192.0.2.5, 1.1.1.1")]),
            None
        );
        let custom = conf(&["0.0.0.0/0"], "CF-Connecting-IP", false);
        assert_eq!(
            run(&custom, "8.8.8.8", &[("cf-connecting-ip", "2001:db8::7")]).as_deref(),
            Some("2001:db8::7")
        );
    }
}
