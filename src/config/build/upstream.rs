//! `upstream` blocks: their `server` lines (one peer per resolved address, with
//! `weight`, `max_fails`, `fail_timeout`, `down`, `backup`, `drain`, `id`),
//! `keepalive*`, `session_sticky` (parsed in `sticky`), and Tengine's health
//! checks: `check` and the `check_http_send`, `check_http_expect_alive` and
//! `check_keepalive_requests` that fill it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::args::{
    arg, block, directive_err, err, not_allowed, number, positive, set_once, simple, template_arg,
    time,
};
use super::resolve::{parse_port, peer_addrs, run_time_name};
use super::resolver::{ResolverScope, UpstreamDns};
use super::sticky::sticky_directive;
use super::{Builder, Res};
use crate::config::ast::Directive;
use crate::config::units;
use crate::config::upstream_use::upstream_use;
use crate::config::{
    Balance, CheckConf, CheckType, PeerConf, ServerConf, StatusClasses, UpstreamConf,
};

impl Builder {
    /// Warns of each upstream of `named` (the `upstream` blocks of the http
    /// `block`) whose `check type=http` stays plain though `proxy_pass
    /// https://` names it, because some `proxy_pass http://` names it too.
    pub(super) fn warn_mixed_check_schemes(
        &mut self,
        block: &[Directive],
        named: &[UpstreamConf],
        servers: &[Arc<ServerConf>],
    ) {
        for (u, up) in named.iter().enumerate() {
            if !up
                .check
                .as_ref()
                .is_some_and(CheckConf::follows_peer_scheme)
            {
                continue;
            }
            let used = upstream_use(servers, u);
            if used.first_https.is_none() || !used.plain {
                continue;
            }
            let at = block
                .iter()
                .find(|d| d.name == "upstream" && arg(d, 0) == up.name);
            if let Some(d) = at {
                let message = format!(
                    "upstream \"{}\" is used by both \"proxy_pass http://\" and \
                     \"proxy_pass https://\": its \"check type=http\" speaks plain HTTP",
                    up.name
                );
                self.warn(d, &message);
            }
        }
    }

    pub(super) fn upstream(&mut self, d: &Directive, http: &ResolverScope) -> Res<UpstreamConf> {
        let body = block(d, 1, 1)?;
        let name = arg(d, 0).to_string();
        let mut peers = Vec::new();
        let mut has_server = false;
        let mut sticky = None;
        let mut keepalive = None;
        let mut keepalive_timeout = None;
        let mut keepalive_requests = None;
        let mut check: Option<CheckConf> = None;
        let mut http_send: Option<(Vec<u8>, &Directive)> = None;
        let mut expect_alive: Option<(StatusClasses, &Directive)> = None;
        let mut check_keepalive: Option<(u32, &Directive)> = None;
        let mut dns = UpstreamDns::default();
        let mut balance: Option<Balance> = None;
        let mut keepalive_time = None;
        for x in body {
            if dns.directive(x)? {
                continue;
            }
            match x.name.as_str() {
                "server" => {
                    simple(x, 1, usize::MAX)?;
                    let server = upstream_server(x)?;
                    let backup = match &server {
                        Server::Fixed(fixed) => fixed.iter().any(|p| p.backup),
                        Server::Resolve(template) => template.backup,
                    };
                    // nginx: a hashing method written first refuses `backup`.
                    if backup
                        && balance
                            .as_ref()
                            .is_some_and(|b| !matches!(b, Balance::RoundRobin | Balance::LeastConn))
                    {
                        return Err(err(
                            "balancing method does not support parameter \"backup\"",
                            x,
                        ));
                    }
                    match server {
                        Server::Fixed(fixed) => peers.extend(fixed),
                        Server::Resolve(template) => dns.add_server(template),
                    }
                    has_server = true;
                }
                "ip_hash" | "hash" | "least_conn" | "random" => {
                    let method = balance_directive(x)?;
                    if balance.is_some() {
                        self.warn(x, "load balancing method redefined");
                    }
                    balance = Some(method);
                }
                "keepalive_time" => {
                    simple(x, 1, 1)?;
                    set_once(&mut keepalive_time, time(x, arg(x, 0))?, x)?;
                }
                "check" => {
                    let conf = self.check_directive(x)?;
                    set_once(&mut check, conf, x)?;
                }
                "check_http_send" => {
                    simple(x, 1, 1)?;
                    if arg(x, 0).is_empty() {
                        return Err(directive_err(x, "invalid value"));
                    }
                    set_once(&mut http_send, (arg(x, 0).as_bytes().to_vec(), x), x)?;
                }
                "check_http_expect_alive" => {
                    simple(x, 1, usize::MAX)?;
                    set_once(&mut expect_alive, (expect_alive_directive(x)?, x), x)?;
                }
                "check_keepalive_requests" => {
                    simple(x, 1, 1)?;
                    let n = positive::<u32>(x)?;
                    set_once(&mut check_keepalive, (n, x), x)?;
                }
                "session_sticky" => {
                    let conf = sticky_directive(x, &mut self.warnings)?;
                    set_once(&mut sticky, conf, x)?;
                }
                "keepalive" => {
                    simple(x, 1, 1)?;
                    let n = positive::<usize>(x)?;
                    set_once(&mut keepalive, n, x)?;
                }
                "keepalive_timeout" => {
                    simple(x, 1, 1)?;
                    set_once(&mut keepalive_timeout, time(x, arg(x, 0))?, x)?;
                }
                "keepalive_requests" => {
                    simple(x, 1, 1)?;
                    set_once(&mut keepalive_requests, number(x, arg(x, 0))?, x)?;
                }
                _ => return Err(not_allowed(x)),
            }
        }
        if !has_server {
            return Err(err("no servers are inside upstream", d));
        }
        let resolve = dns.finish(d, &name, http, peers.len())?;
        if let Some(conf) = &sticky {
            self.warn_shared_sids(d, &name, conf, &peers);
        }
        match check.as_mut() {
            Some(check) => {
                if let Some((send, x)) = http_send {
                    if check.kind != CheckType::Http {
                        self.ignored(x, "the check is not \"type=http\"");
                    }
                    check.http_send = send;
                }
                if let Some((classes, x)) = expect_alive {
                    if check.kind != CheckType::Http {
                        self.ignored(x, "the check is not \"type=http\"");
                    }
                    check.expect_alive = classes;
                }
                if let Some((n, x)) = check_keepalive {
                    if check.kind != CheckType::Http {
                        self.ignored(x, "the check is not \"type=http\"");
                    } else {
                        if n > 1 && !asks_keep_alive(&check.http_send) {
                            self.warn(
                                x,
                                "\"check_keepalive_requests\" needs a \"check_http_send\" request that keeps the connection open (HTTP/1.1, or \"Connection: keep-alive\"): the backend may close it after every check",
                            );
                        }
                        check.keepalive_requests = n;
                    }
                }
            }
            None => {
                for x in [
                    http_send.map(|h| h.1),
                    expect_alive.map(|e| e.1),
                    check_keepalive.map(|k| k.1),
                ]
                .into_iter()
                .flatten()
                {
                    self.ignored(x, "there is no \"check\" in this upstream");
                }
            }
        }
        Ok(UpstreamConf {
            name,
            implicit: false,
            peers,
            sticky,
            keepalive,
            keepalive_timeout: keepalive_timeout.unwrap_or(Duration::from_secs(60)),
            keepalive_requests: keepalive_requests.unwrap_or(1000),
            check,
            resolve,
            balance: balance.unwrap_or_default(),
            keepalive_time: keepalive_time.unwrap_or(Duration::from_secs(3600)),
        })
    }

    /// Tengine's `check interval=MS [fall=N] [rise=N] [timeout=MS]
    /// [default_down=true|false] [type=tcp|http|...] [port=N]`.
    fn check_directive(&mut self, d: &Directive) -> Res<CheckConf> {
        simple(d, 0, usize::MAX)?;
        let mut conf = CheckConf::default();
        let mut seen: HashSet<&str> = HashSet::new();
        for a in &d.args {
            let raw = a.value.as_str();
            let invalid = || err(format!("invalid parameter \"{raw}\""), d);
            let Some((key, value)) = raw.split_once('=') else {
                return Err(invalid());
            };
            if value.is_empty() {
                return Err(invalid());
            }
            if !seen.insert(key) {
                return Err(err(
                    format!("duplicate parameter \"{key}\" in \"check\" directive"),
                    d,
                ));
            }
            let count = || match value.parse::<u32>() {
                Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(invalid()),
            };
            match key {
                "interval" => conf.interval = check_millis(value).ok_or_else(invalid)?,
                "timeout" => conf.timeout = check_millis(value).ok_or_else(invalid)?,
                "rise" => conf.rise = count()?,
                "fall" => conf.fall = count()?,
                "default_down" => {
                    conf.default_down = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid()),
                    }
                }
                "port" => {
                    conf.port = match parse_port(value, true) {
                        Ok(0) => None,
                        Ok(p) => Some(p),
                        Err(_) => return Err(invalid()),
                    }
                }
                "type" => {
                    conf.kind = match value {
                        "tcp" => CheckType::Tcp,
                        "http" => CheckType::Http,
                        "ssl_hello" => CheckType::SslHello,
                        "mysql" | "ajp" | "fastcgi" => {
                            self.warn(
                                d,
                                &format!(
                                    "\"type={value}\" in \"check\" directive is checked as \"type=tcp\" (a connect test)"
                                ),
                            );
                            CheckType::Tcp
                        }
                        _ => return Err(invalid()),
                    }
                }
                _ => return Err(invalid()),
            }
        }
        Ok(conf)
    }
}

/// What one upstream `server` line stands for.
enum Server {
    /// One peer per address the line resolved to at load time.
    Fixed(Vec<PeerConf>),
    /// `server NAME resolve`: the template of the peers the name will resolve
    /// to at run time (its `addr` has the port and an unspecified IP).
    Resolve(PeerConf),
}

/// One upstream `server ADDRESS [params]` line.
fn upstream_server(d: &Directive) -> Res<Server> {
    let text = arg(d, 0);
    let mut weight = 1;
    let mut max_fails = 1;
    let mut fail_timeout = Duration::from_secs(10);
    let mut down = false;
    let mut backup = false;
    let mut drain = false;
    let mut id = None;
    let mut run_time = false;
    let mut max_conns = 0;
    for a in d.args.iter().skip(1) {
        let p = a.value.as_str();
        let invalid = || err(format!("invalid parameter \"{p}\""), d);
        match p {
            "resolve" => run_time = true,
            "down" => down = true,
            "backup" => backup = true,
            "drain" => drain = true,
            _ => {
                let Some((key, value)) = p.split_once('=') else {
                    return Err(invalid());
                };
                match key {
                    "weight" => {
                        weight = match value.parse::<u32>() {
                            Ok(w) if w > 0 && value.bytes().all(|b| b.is_ascii_digit()) => w,
                            _ => return Err(invalid()),
                        }
                    }
                    "max_fails" => {
                        max_fails = match value.parse::<u32>() {
                            Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => n,
                            _ => return Err(invalid()),
                        }
                    }
                    "fail_timeout" => {
                        fail_timeout = units::parse_time(value).map_err(|_| invalid())?;
                    }
                    "id" if !value.is_empty() => id = Some(value.to_string()),
                    "max_conns" => {
                        max_conns = match value.parse::<u32>() {
                            Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => n,
                            _ => return Err(invalid()),
                        }
                    }
                    _ => return Err(invalid()),
                }
            }
        }
    }
    let in_upstream = |reason: String| err(format!("{reason} in upstream \"{text}\""), d);
    let peer = |(name, addr, unix): (String, SocketAddr, Option<std::path::PathBuf>)| PeerConf {
        name,
        addr,
        unix,
        server: text.to_string(),
        weight,
        max_fails,
        fail_timeout,
        down,
        backup,
        id: id.clone(),
        drain,
        max_conns,
    };
    if run_time {
        if let Some((_, port)) = run_time_name(text, 80).map_err(in_upstream)? {
            let addr = SocketAddr::from(([0, 0, 0, 0], port));
            return Ok(Server::Resolve(peer((addr.to_string(), addr, None))));
        }
    }
    let addrs = peer_addrs(text, 80).map_err(in_upstream)?;
    Ok(Server::Fixed(addrs.into_iter().map(peer).collect()))
}

/// `ip_hash;`, `hash KEY [consistent];`, `least_conn;`,
/// `random [two [least_conn]];`.
fn balance_directive(d: &Directive) -> Res<Balance> {
    let invalid = |v: &str| err(format!("invalid parameter \"{v}\""), d);
    Ok(match d.name.as_str() {
        "ip_hash" | "least_conn" => {
            simple(d, 0, 0)?;
            if d.name == "ip_hash" {
                Balance::IpHash
            } else {
                Balance::LeastConn
            }
        }
        "hash" => {
            simple(d, 1, 2)?;
            let consistent = match d.args.get(1).map(|a| a.value.as_str()) {
                None => false,
                Some("consistent") => true,
                Some(other) => return Err(invalid(other)),
            };
            Balance::Hash {
                key: template_arg(d, arg(d, 0))?,
                consistent,
            }
        }
        _ => {
            simple(d, 0, 2)?;
            match (
                d.args.first().map(|a| a.value.as_str()),
                d.args.get(1).map(|a| a.value.as_str()),
            ) {
                (None, _) => Balance::Random { two: false },
                (Some("two"), None | Some("least_conn")) => Balance::Random { two: true },
                (Some("two"), Some(other)) => return Err(invalid(other)),
                (Some(other), _) => return Err(invalid(other)),
            }
        }
    })
}

/// A `check` time: bare digits are milliseconds (Tengine), anything else an nginx
/// time value (`3s`, `500ms`). Zero is rejected.
fn check_millis(value: &str) -> Option<Duration> {
    let t = if value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_millis(value.parse().ok()?)
    } else {
        units::parse_time(value).ok()?
    };
    (!t.is_zero()).then_some(t)
}

/// True when the raw check request `send` leaves the connection open: an
/// HTTP/1.1 request line, or `Connection: keep-alive`, and no
/// `Connection: close`.
fn asks_keep_alive(send: &[u8]) -> bool {
    let text = String::from_utf8_lossy(send).to_ascii_lowercase();
    let request_line = text.lines().next().unwrap_or_default();
    let headers = || text.lines().skip(1).map(|l| l.replace(' ', ""));
    !headers().any(|h| h.starts_with("connection:") && h.contains("close"))
        && (request_line.trim_end().ends_with("http/1.1")
            || headers().any(|h| h.starts_with("connection:") && h.contains("keep-alive")))
}

/// `check_http_expect_alive http_2xx ...`.
fn expect_alive_directive(d: &Directive) -> Res<StatusClasses> {
    let mut classes = StatusClasses(0);
    for a in &d.args {
        let class = match a.value.as_str() {
            "http_2xx" => 2,
            "http_3xx" => 3,
            "http_4xx" => 4,
            "http_5xx" => 5,
            other => return Err(err(format!("invalid parameter \"{other}\""), d)),
        };
        classes = classes.with(class);
    }
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::build::tests::ok;
    use crate::config::{CheckConf, CheckType, Config, PeerConf};

    #[test]
    fn peers_are_named_like_nginx() {
        let (c, _) = ok("http { upstream u {
              server 127.0.0.1;
              server [::1]:9000;
              server [::1];
              server localhost:9001 weight=5 id=loc;
            } }");
        let peers = &c.http.upstreams[0].peers;
        assert_eq!(peers[0].name, "127.0.0.1:80");
        assert_eq!(peers[1].name, "[::1]:9000");
        assert_eq!(peers[2].name, "[::1]:80");
        let local: Vec<&PeerConf> = peers
            .iter()
            .filter(|p| p.server == "localhost:9001")
            .collect();
        assert!(!local.is_empty());
        for p in local {
            assert!(p.addr.ip().is_loopback() && p.addr.port() == 9001);
            assert_eq!((p.weight, p.id.as_deref()), (5, Some("loc")));
            assert_eq!(p.name, p.addr.to_string());
        }
    }

    #[test]
    fn check_parameters_defaults_and_units() {
        let d = CheckConf::default();
        let cases: &[(&str, CheckConf)] = &[
            ("", d.clone()),
            (
                "interval=3000 rise=2 fall=5 timeout=1000 type=http",
                CheckConf {
                    interval: Duration::from_secs(3),
                    kind: CheckType::Http,
                    ..d.clone()
                },
            ),
            (
                "interval=100 rise=1 fall=3 timeout=50 default_down=false port=8081",
                CheckConf {
                    interval: Duration::from_millis(100),
                    rise: 1,
                    fall: 3,
                    timeout: Duration::from_millis(50),
                    default_down: false,
                    port: Some(8081),
                    ..d.clone()
                },
            ),
            (
                "interval=2s timeout=500ms port=0 type=tcp",
                CheckConf {
                    interval: Duration::from_secs(2),
                    timeout: Duration::from_millis(500),
                    ..d.clone()
                },
            ),
        ];
        for (params, expected) in cases {
            let (c, _) = ok(&format!(
                "http {{ upstream u {{ server 127.0.0.1:9000; check {params}; }} }}"
            ));
            assert_eq!(
                c.http.upstreams[0].check.as_ref(),
                Some(expected),
                "{params}"
            );
        }
        assert_eq!(d.interval, Duration::from_millis(30_000));
        assert_eq!((d.rise, d.fall, d.default_down), (2, 5, true));
        assert_eq!(d.http_send, b"GET / HTTP/1.0\r\n\r\n");
        let (c, _) = ok("http { upstream u { server 127.0.0.1:9000; } }");
        assert_eq!(c.http.upstreams[0].check, None);
    }

    #[test]
    fn check_http_send_and_expect_alive_fill_the_check() {
        let (c, warnings) = ok("http { upstream u { server 127.0.0.1:9000;
            check_http_expect_alive http_2xx http_4xx;
            check type=http;
            check_http_send \"HEAD /health HTTP/1.0\\r\\n\\r\\n\";
            check_keepalive_requests 100; } }");
        let check = c.http.upstreams[0].check.clone().expect("check");
        assert_eq!(check.http_send, b"HEAD /health HTTP/1.0\r\n\r\n");
        assert!(check.expect_alive.contains(204) && check.expect_alive.contains(404));
        assert!(!check.expect_alive.contains(302) && !check.expect_alive.contains(500));
        assert_eq!(check.keepalive_requests, 100);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].message.starts_with(
                "\"check_keepalive_requests\" needs a \"check_http_send\" request that keeps"
            ),
            "an HTTP/1.0 request closes the connection: {warnings:?}"
        );
    }

    /// `check_keepalive_requests` of the first upstream's check.
    fn check_keepalive(c: &Config) -> Option<u32> {
        c.http.upstreams[0]
            .check
            .as_ref()
            .map(|k| k.keepalive_requests)
    }

    #[test]
    fn check_keepalive_requests_sets_connection_reuse() {
        let base = "http { upstream u { server 127.0.0.1:9000; check type=http;";
        let keep = "check_http_send \"HEAD / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n\";";
        let (c, warnings) = ok(&format!("{base} {keep} check_keepalive_requests 50; }} }}"));
        let check = c.http.upstreams[0].check.clone().expect("check");
        assert_eq!(check.keepalive_requests, 50);
        assert!(warnings.is_empty(), "{warnings:?}");
        // Default: one check per connection.
        let (c, _) = ok(&format!("{base} }} }}"));
        assert_eq!(check_keepalive(&c), Some(1));
        // 1 needs no keep-alive request.
        let (_, warnings) = ok(&format!("{base} check_keepalive_requests 1; }} }}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        // Without a type=http check, or without a check, it is ignored.
        let (c, warnings) =
            ok("http { upstream u { server 127.0.0.1:9000; check; check_keepalive_requests 5; } }");
        assert_eq!(check_keepalive(&c), Some(1));
        assert_eq!(
            warnings[0].message,
            "\"check_keepalive_requests\" directive is ignored: the check is not \"type=http\""
        );
        let (_, warnings) =
            ok("http { upstream u { server 127.0.0.1:9000; check_keepalive_requests 5; } }");
        assert_eq!(
            warnings[0].message,
            "\"check_keepalive_requests\" directive is ignored: there is no \"check\" in this upstream"
        );
    }

    #[test]
    fn keep_alive_check_requests_are_recognised() {
        let cases: &[(&[u8], bool)] = &[
            (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", true),
            (b"GET /h HTTP/1.1\r\n\r\n", true),
            (b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
            (b"HEAD / HTTP/1.0\r\n\r\n", false),
            (b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (b"HEAD / HTTP/1.1\r\nconnection : Close\r\n\r\n", false),
        ];
        for (send, keeps) in cases {
            assert_eq!(
                asks_keep_alive(send),
                *keeps,
                "{}",
                String::from_utf8_lossy(send)
            );
        }
    }

    #[test]
    fn check_oddities_warn_instead_of_failing() {
        let (c, warnings) = ok("http {\n check_shm_size 1m;\n upstream u {\n server 127.0.0.1:9000;\n check type=mysql;\n check_http_send \"GET / HTTP/1.0\\r\\n\\r\\n\";\n }\n upstream v {\n server 127.0.0.1:9000;\n check_http_expect_alive http_2xx;\n }\n}\n");
        let lines: Vec<u32> = warnings.iter().map(|w| w.span.line).collect();
        // Upstream blocks are built first (pass 1), then the rest of http.
        assert_eq!(lines, [5, 6, 10, 2], "{warnings:?}");
        assert_eq!(
            warnings[0].message,
            "\"type=mysql\" in \"check\" directive is checked as \"type=tcp\" (a connect test)"
        );
        assert_eq!(
            warnings[2].message,
            "\"check_http_expect_alive\" directive is ignored: there is no \"check\" in this upstream"
        );
        assert_eq!(
            c.http.upstreams[0].check.as_ref().map(|k| k.kind),
            Some(CheckType::Tcp)
        );
        assert_eq!(c.http.upstreams[1].check, None);
    }

    #[test]
    fn an_upstream_checked_by_http_and_named_by_both_schemes_is_warned_of() {
        let src = |check: &str, second: &str| {
            format!(
                "http {{\n upstream u {{\n server 127.0.0.1:9000;\n {check}\n }}\n server {{\n \
                 location /a {{ proxy_pass https://u; }}\n \
                 location /b {{ proxy_pass {second}://u; }}\n }}\n}}\n"
            )
        };
        let (_, warnings) = ok(&src("check type=http;", "http"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].span.line, 2);
        assert_eq!(
            warnings[0].message,
            "upstream \"u\" is used by both \"proxy_pass http://\" and \
             \"proxy_pass https://\": its \"check type=http\" speaks plain HTTP"
        );
        // One scheme, a check of another port, or no http check: nothing to say.
        for (check, second) in [
            ("check type=http;", "https"),
            ("check type=http port=8080;", "http"),
            ("check type=tcp;", "http"),
            ("", "http"),
        ] {
            let (_, warnings) = ok(&src(check, second));
            assert!(warnings.is_empty(), "{check} {second}: {warnings:?}");
        }
    }

    #[test]
    fn balancing_methods_parse_like_nginx() {
        use crate::config::Balance;
        let cases: &[(&str, Balance)] = &[
            ("", Balance::RoundRobin),
            ("ip_hash;", Balance::IpHash),
            ("least_conn;", Balance::LeastConn),
            ("random;", Balance::Random { two: false }),
            ("random two;", Balance::Random { two: true }),
            ("random two least_conn;", Balance::Random { two: true }),
        ];
        for (method, want) in cases {
            let (c, _) = ok(&format!(
                "http {{ upstream u {{ {method} server 127.0.0.1:1; }} }}"
            ));
            assert_eq!(&c.http.upstreams[0].balance, want, "{method}");
        }
        let (c, warnings) = ok("http { upstream u { ip_hash; hash $request_uri consistent;
            server 127.0.0.1:1 max_conns=5; keepalive_time 30s; } }");
        let u = &c.http.upstreams[0];
        assert!(
            matches!(&u.balance, Balance::Hash { key, consistent: true } if key.source == "$request_uri")
        );
        assert_eq!(warnings[0].message, "load balancing method redefined");
        assert_eq!(u.peers[0].max_conns, 5);
        assert_eq!(u.keepalive_time, Duration::from_secs(30));
        let (c, _) =
            ok("http { upstream u { server 127.0.0.1:1; server 127.0.0.1:2 backup; ip_hash; } }");
        assert_eq!(
            c.http.upstreams[0].balance,
            Balance::IpHash,
            "nginx accepts backup before ip_hash"
        );
        let errors: &[(&str, &str)] = &[
            (
                "ip_hash; server 127.0.0.1:1; server 127.0.0.1:2 backup;",
                "balancing method does not support parameter \"backup\"",
            ),
            (
                "hash $uri; server 127.0.0.1:1 backup;",
                "balancing method does not support parameter \"backup\"",
            ),
            (
                "random three; server 127.0.0.1:1;",
                "invalid parameter \"three\"",
            ),
            (
                "hash; server 127.0.0.1:1;",
                "invalid number of arguments in \"hash\" directive",
            ),
            (
                "hash $uri x; server 127.0.0.1:1;",
                "invalid parameter \"x\"",
            ),
            (
                "ip_hash x; server 127.0.0.1:1;",
                "invalid number of arguments in \"ip_hash\" directive",
            ),
            (
                "server 127.0.0.1:1 max_conns=x;",
                "invalid parameter \"max_conns=x\"",
            ),
        ];
        for (body, message) in errors {
            let src = format!("http {{ upstream u {{ {body} }} }}");
            let e = crate::config::load_str(&src, std::path::Path::new("/t.conf")).expect_err(&src);
            assert_eq!(e.message, *message, "{body}");
        }
        // least_conn keeps backups.
        ok("http { upstream u { least_conn; server 127.0.0.1:1; server 127.0.0.1:2 backup; } }");
    }
}
