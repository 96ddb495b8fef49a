//! nginx variables: evaluating a [`Template`] against one request. Pure (no
//! I/O, no clock); used by the proxy (`proxy_set_header`, `return`) and by the
//! access log, which is why it is neither's.
//!
//! [`RequestVars`] borrows the parts of a request the engine already holds (method,
//! URI, headers, addresses) plus optional response, upstream and sticky data, and
//! the clock reading `now` (this module never reads the clock). [`eval`] appends the
//! value of a template to a byte buffer; values that are unknown or absent are empty,
//! or `-` when the caller asks for log style ([`Style::Log`]) as nginx's access log
//! prints them.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Version};

use crate::config::map::{Computed, ComputedRef};
use crate::config::template::{Escape, TlsVariable};
use crate::config::{Part, Template, Variable};
use crate::numfmt;
use crate::request_id::RequestId;
use crate::timefmt;
use crate::tls::TlsInfo;
use crate::user_vars::UserVars;

mod response;
pub use response::{eval as eval_response, reads_response, reads_upstream_headers, ResponseFacts};

/// How empty values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Empty stays empty (`proxy_set_header`, `return`).
    Plain,
    /// An empty or absent variable prints `-` (access log).
    Log,
}

/// One attempt at an upstream peer, for the `$upstream_*` variables (nginx joins the
/// tries with `, `).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTry<'a> {
    /// Peer name (`127.0.0.1:8081`).
    pub addr: &'a str,
    /// Status received, or the status the proxy decided for this try (502/504).
    pub status: Option<u16>,
    pub connect_time: Option<Duration>,
    pub header_time: Option<Duration>,
    pub response_time: Option<Duration>,
}

/// The response sent to the client (known at log time).
#[derive(Debug, Clone, Copy)]
pub struct ResponseVars<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    /// Body bytes sent to the client.
    pub body_bytes_sent: u64,
    /// All bytes sent to the client (status line and headers included).
    pub bytes_sent: u64,
}

/// Sticky outcome for `$sticky_sid` / `$sticky_status` / `$sticky_learned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StickyVars<'a> {
    pub sid: &'a str,
    /// `new`, `hit`, `expired`, `unknown`, `fallback` or `forged`.
    pub status: &'a str,
    /// The learned cookie's name (learn mode), else empty.
    pub learned: &'a str,
}

/// True when `template` reads a `$sticky_*` variable (the proxy then decides
/// the sticky peer before evaluating it).
pub fn uses_sticky(template: &Template) -> bool {
    template.parts.iter().any(|p| {
        matches!(
            p,
            Part::Var(Variable::StickySid | Variable::StickyStatus | Variable::StickyLearned)
        )
    })
}

/// Everything a variable may read. All borrowed: building one allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestVars<'a> {
    pub method: &'a Method,
    /// The raw request target path and query as received (`$request_uri`), e.g.
    /// `/a%20b?x=1`.
    pub request_uri: &'a str,
    /// The normalized, decoded path (`$uri`).
    pub path: &'a [u8],
    pub version: Version,
    pub headers: &'a HeaderMap,
    /// Normalized Host (lowercase, no port); empty when the request had none.
    pub host: &'a str,
    /// The first `server_name` of the chosen server.
    pub server_name: &'a str,
    /// The client address (`$remote_addr`), after realip.
    pub remote: SocketAddr,
    /// The connection's own address when realip replaced `remote`.
    pub realip_remote: Option<SocketAddr>,
    pub local: SocketAddr,
    /// `http`, or `https` on a TLS connection.
    pub scheme: &'a str,
    /// The client connection's TLS facts (`None`: plain HTTP).
    pub tls: Option<&'a std::rc::Rc<TlsInfo>>,
    /// `$proxy_host` when the location proxies.
    pub proxy_host: &'a str,
    /// Bytes of request line, headers and body read.
    pub request_length: u64,
    /// Connection serial number and requests served on it (`$connection`,
    /// `$connection_requests`).
    pub connection: u64,
    pub connection_requests: u64,
    /// When the first byte of the request was read.
    pub start: SystemTime,
    /// The clock reading for the time variables.
    pub now: SystemTime,
    pub pid: u32,
    pub hostname: &'a str,
    pub response: Option<ResponseVars<'a>>,
    pub upstream: &'a [UpstreamTry<'a>],
    /// Every header line of the last backend response (`$upstream_http_*`,
    /// `$upstream_cookie_*`); `None` when none is at hand.
    pub upstream_headers: Option<&'a HeaderMap>,
    pub sticky: Option<StickyVars<'a>>,
    /// What the rewrite module changed (user variables, captures, the URI's
    /// arguments); `None` for a request it never touched.
    pub user: Option<&'a UserVars>,
    /// The request's `$request_id` slot (drawn on first read); `None` where
    /// there is no request (the variable is then empty).
    pub request_id: Option<&'a RequestId>,
    /// The request's bytes were already buffered when the one before it
    /// ended (`$pipe`).
    pub pipelined: bool,
}

/// Appends the value of `template` to `out`.
pub fn eval(template: &Template, vars: &RequestVars<'_>, style: Style, out: &mut Vec<u8>) {
    for part in &template.parts {
        match part {
            Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
            Part::Var(var) => {
                let before = out.len();
                eval_var(var, vars, out);
                if style == Style::Log && out.len() == before {
                    out.push(b'-');
                }
            }
        }
    }
}

/// Appends an access-log line for `template` (a `log_format`) with nginx's
/// `escape=` rules applied to variable values: `Default` writes `"`, `\\` and bytes
/// below 0x20 or from 0x7f as `\xHH`; `Json` escapes for a JSON string; `None`
/// writes values as they are. An empty value prints `-`, except with `Json`, where
/// it stays empty (nginx).
pub fn eval_log(template: &Template, vars: &RequestVars<'_>, escape: Escape, out: &mut Vec<u8>) {
    for part in &template.parts {
        match part {
            Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
            Part::Var(var) => {
                let start = out.len();
                eval_var(var, vars, out);
                let value = out.get(start..).unwrap_or_default();
                if value.is_empty() {
                    if escape != Escape::Json {
                        out.push(b'-');
                    }
                } else if value.iter().any(|&b| needs_escape(b, escape)) {
                    let raw = out.split_off(start);
                    escape_log(&raw, escape, out);
                }
            }
        }
    }
}

fn needs_escape(b: u8, escape: Escape) -> bool {
    match escape {
        Escape::None => false,
        Escape::Default => b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b),
        Escape::Json => b == b'"' || b == b'\\' || b < 0x20,
    }
}

pub(crate) fn escape_log(raw: &[u8], escape: Escape, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        if !needs_escape(b, escape) {
            out.push(b);
            continue;
        }
        match (escape, b) {
            (Escape::Json, b'"') => out.extend_from_slice(b"\\\""),
            (Escape::Json, b'\\') => out.extend_from_slice(b"\\\\"),
            (Escape::Json, b'\n') => out.extend_from_slice(b"\\n"),
            (Escape::Json, b'\r') => out.extend_from_slice(b"\\r"),
            (Escape::Json, b'\t') => out.extend_from_slice(b"\\t"),
            (Escape::Json, 0x08) => out.extend_from_slice(b"\\b"),
            (Escape::Json, 0x0c) => out.extend_from_slice(b"\\f"),
            (Escape::Json, _) => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => {
                out.extend_from_slice(b"\\x");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
    }
}

/// The value of `template` as a fresh buffer ([`Style::Plain`]).
pub fn eval_to_vec(template: &Template, vars: &RequestVars<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.source.len() + 16);
    eval(template, vars, Style::Plain, &mut out);
    out
}

/// The value of a TLS variable on a TLS connection (nginx's texts).
fn tls_value(var: TlsVariable, tls: &TlsInfo, out: &mut Vec<u8>) {
    let text: &str = match var {
        TlsVariable::Https => "on",
        TlsVariable::Protocol => tls.protocol,
        TlsVariable::Cipher => tls.cipher,
        TlsVariable::ServerName => &tls.server_name,
        TlsVariable::SessionReused => {
            if tls.reused {
                "r"
            } else {
                "."
            }
        }
        TlsVariable::ClientVerify => &tls.client_verify,
        TlsVariable::ClientSDn => &tls.client_s_dn,
        TlsVariable::ClientFingerprint => &tls.client_fingerprint,
    };
    out.extend_from_slice(text.as_bytes());
}

/// Appends the value of one variable (empty when absent).
pub fn eval_var(var: &Variable, v: &RequestVars<'_>, out: &mut Vec<u8>) {
    match var {
        Variable::Host => {
            let host = if v.host.is_empty() {
                v.server_name
            } else {
                v.host
            };
            out.extend_from_slice(host.as_bytes());
        }
        Variable::Http(name) => header_value(v.headers, name, out),
        Variable::Cookie(name) => {
            if let Some(value) = cookie(v.headers, name) {
                out.extend_from_slice(value);
            }
        }
        Variable::Arg(name) => {
            if let Some(value) = arg(query(v.request_uri), name) {
                out.extend_from_slice(value.as_bytes());
            }
        }
        Variable::RemoteAddr => push_display(out, v.remote.ip()),
        Variable::RemotePort => numfmt::write_decimal(out, u64::from(v.remote.port())),
        Variable::BinaryRemoteAddr => match v.remote.ip() {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        },
        Variable::RealipRemoteAddr => push_display(out, v.realip_remote.unwrap_or(v.remote).ip()),
        Variable::RealipRemotePort => {
            numfmt::write_decimal(out, u64::from(v.realip_remote.unwrap_or(v.remote).port()))
        }
        Variable::RemoteUser => {
            if let Some(user) = remote_user(v.headers) {
                out.extend_from_slice(&user);
            }
        }
        Variable::ServerAddr => push_display(out, v.local.ip()),
        Variable::ServerPort => numfmt::write_decimal(out, u64::from(v.local.port())),
        Variable::ServerName => out.extend_from_slice(v.server_name.as_bytes()),
        Variable::ServerProtocol => out.extend_from_slice(protocol(v.version).as_bytes()),
        Variable::Http2 => out.extend_from_slice(http2(v.version, v.tls.is_some()).as_bytes()),
        Variable::Scheme => out.extend_from_slice(v.scheme.as_bytes()),
        Variable::Tls(var) => {
            if let Some(tls) = v.tls {
                tls_value(*var, tls, out);
            }
        }
        Variable::RequestMethod => out.extend_from_slice(v.method.as_str().as_bytes()),
        Variable::RequestUri => out.extend_from_slice(v.request_uri.as_bytes()),
        Variable::Uri => out.extend_from_slice(v.path),
        Variable::Args | Variable::QueryString => out.extend_from_slice(args(v).as_bytes()),
        Variable::IsArgs => {
            if !args(v).is_empty() {
                out.push(b'?');
            }
        }
        Variable::User(i) => {
            if let Some(value) = v.user.and_then(|u| u.get(*i)) {
                out.extend_from_slice(value);
            }
        }
        Variable::Capture(n) => {
            if let Some(u) = v.user {
                out.extend_from_slice(u.capture(*n));
            }
        }
        Variable::Computed(r) => computed(r, v, out),
        Variable::Request => {
            out.extend_from_slice(v.method.as_str().as_bytes());
            out.push(b' ');
            out.extend_from_slice(v.request_uri.as_bytes());
            out.push(b' ');
            out.extend_from_slice(protocol(v.version).as_bytes());
        }
        Variable::RequestLength => numfmt::write_decimal(out, v.request_length),
        Variable::ProxyHost => out.extend_from_slice(v.proxy_host.as_bytes()),
        Variable::ProxyAddXForwardedFor => x_forwarded_for(v.headers, v.remote.ip(), out),
        Variable::Status
        | Variable::SentHttp(_)
        | Variable::BodyBytesSent
        | Variable::BytesSent
        | Variable::RequestTime
        | Variable::UpstreamAddr
        | Variable::UpstreamStatus
        | Variable::UpstreamResponseTime
        | Variable::UpstreamConnectTime
        | Variable::UpstreamHeaderTime
        | Variable::UpstreamHttp(_)
        | Variable::UpstreamCookie(_) => response::eval(var, &ResponseFacts::of(v), out),
        Variable::TimeLocal => out.extend_from_slice(timefmt::time_local(v.now).as_bytes()),
        Variable::TimeIso8601 => out.extend_from_slice(timefmt::time_iso8601(v.now).as_bytes()),
        Variable::Msec => out.extend_from_slice(timefmt::msec(v.now).as_bytes()),
        Variable::Pid => numfmt::write_decimal(out, u64::from(v.pid)),
        Variable::Connection => numfmt::write_decimal(out, v.connection),
        Variable::ConnectionRequests => numfmt::write_decimal(out, v.connection_requests),
        Variable::Hostname => out.extend_from_slice(v.hostname.as_bytes()),
        Variable::RequestId => {
            if let Some(id) = v.request_id {
                id.write(out);
            }
        }
        Variable::Pipe => out.push(if v.pipelined { b'p' } else { b'.' }),
        Variable::UpstreamCacheStatus => {}
        Variable::StickySid => {
            if let Some(s) = &v.sticky {
                out.extend_from_slice(s.sid.as_bytes());
            }
        }
        Variable::StickyStatus => {
            if let Some(s) = &v.sticky {
                out.extend_from_slice(s.status.as_bytes());
            }
        }
        Variable::StickyLearned => {
            if let Some(s) = &v.sticky {
                out.extend_from_slice(s.learned.as_bytes());
            }
        }
    }
}

/// `$http2`: the protocol of an HTTP/2 request (`h2` over TLS, `h2c` in
/// cleartext), empty for any other.
pub fn http2(version: Version, tls: bool) -> &'static str {
    match (version, tls) {
        (Version::HTTP_2, true) => "h2",
        (Version::HTTP_2, false) => "h2c",
        _ => "",
    }
}

/// `HTTP/1.1` and friends.
pub fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The query part of a request target (after the first `?`), or "".
/// The value of a `map` or `split_clients` variable: its source evaluated,
/// then the value chosen for it (a map value's `$1`.. are the groups of the
/// map's regex that matched).
fn computed(r: &ComputedRef, v: &RequestVars<'_>, out: &mut Vec<u8>) {
    match r.slot.get() {
        Some(Computed::Map(m)) => {
            let key = eval_to_vec(&m.source, v);
            let key = String::from_utf8_lossy(&key);
            let Some(found) = m.find(&key) else { return };
            for part in &found.value.parts {
                match (part, &found.captures) {
                    (Part::Literal(text), _) => out.extend_from_slice(text.as_bytes()),
                    (Part::Var(Variable::Capture(n)), Some(caps)) => {
                        if let Some(g) = caps.get(usize::from(*n)) {
                            out.extend_from_slice(g.as_str().as_bytes());
                        }
                    }
                    (Part::Var(Variable::User(i)), Some(caps))
                        if found.named.iter().any(|(_, var)| var == i) =>
                    {
                        let group = found.named.iter().find(|(_, var)| var == i);
                        if let Some(g) = group.and_then(|(g, _)| caps.get(*g)) {
                            out.extend_from_slice(g.as_str().as_bytes());
                        }
                    }
                    (Part::Var(var), _) => eval_var(var, v, out),
                }
            }
        }
        Some(Computed::Split(s)) => {
            let key = eval_to_vec(&s.source, v);
            out.extend_from_slice(s.find(&key).as_bytes());
        }
        Some(Computed::Geo(g)) => {
            let ip = match &g.source {
                None => Some(v.remote.ip()),
                Some(t) => std::str::from_utf8(&eval_to_vec(t, v))
                    .ok()
                    .and_then(|text| text.parse::<std::net::IpAddr>().ok()),
            };
            out.extend_from_slice(g.find(ip).as_bytes());
        }
        None => {}
    }
}

/// `$args`: the arguments after a rewrite, else the request's.
fn args<'a>(v: &RequestVars<'a>) -> &'a str {
    match v.user.and_then(UserVars::args) {
        Some(a) => a,
        None => query(v.request_uri),
    }
}

pub fn query(request_uri: &str) -> &str {
    request_uri.split_once('?').map_or("", |(_, q)| q)
}

/// `$arg_NAME`: the raw value of the first query argument NAME (ASCII case-insensitive,
/// as nginx).
pub fn arg<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// `$cookie_NAME`: the value of the first cookie NAME in the Cookie headers (name
/// matched ASCII case-insensitively, as nginx), read by the sticky core's
/// cookie scanner.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .find_map(|value| crate::sticky::cookie::find_in_value_ignore_case(value.as_bytes(), name))
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Appends request header NAME (`_` read as `-`, case-insensitive); several headers
/// of the name are joined with `, ` (`; ` for Cookie), as nginx 1.23+. Names longer
/// than 64 bytes (no real header) evaluate empty.
fn header_value(headers: &HeaderMap, name: &str, out: &mut Vec<u8>) {
    let mut buf = [0u8; 64];
    let bytes = name.as_bytes();
    let key: &[u8] = if bytes.len() <= buf.len() {
        let dst = &mut buf[..bytes.len()];
        for (d, &s) in dst.iter_mut().zip(bytes) {
            *d = if s == b'_' {
                b'-'
            } else {
                s.to_ascii_lowercase()
            };
        }
        dst
    } else {
        return;
    };
    // A `&str` key is looked up without building a `HeaderName` (no allocation);
    // a name that is not a valid header name finds nothing.
    let Ok(key) = std::str::from_utf8(key) else {
        return;
    };
    let sep: &[u8] = if key == "cookie" { b"; " } else { b", " };
    for (i, value) in headers.get_all(key).iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(value.as_bytes());
    }
}

/// The user name of `Authorization: Basic ...`.
fn remote_user(headers: &HeaderMap) -> Option<Vec<u8>> {
    basic_credentials(headers).map(|(user, _)| user)
}

/// The user name and password of `Authorization: Basic ...` (`None` when the
/// header is absent, of another scheme, or malformed).
pub fn basic_credentials(headers: &HeaderMap) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let mut user = crate::base64::decode(trim(rest))?;
    let colon = user.iter().position(|&b| b == b':')?;
    let password = user.split_off(colon + 1);
    user.truncate(colon);
    Some((user, password))
}

fn join_tries(
    tries: &[UpstreamTry<'_>],
    out: &mut Vec<u8>,
    mut each: impl FnMut(&UpstreamTry<'_>, &mut Vec<u8>),
) {
    for (i, t) in tries.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        each(t, out);
    }
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn push_display(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(VecWriter(out), "{value}");
}

/// Seconds with millisecond resolution: `0.012`.
fn push_seconds(out: &mut Vec<u8>, d: Duration) {
    push_display(
        out,
        format_args!("{}.{:03}", d.as_secs(), d.subsec_millis()),
    );
}

fn push_opt_seconds(out: &mut Vec<u8>, d: Option<Duration>) {
    match d {
        Some(d) => push_seconds(out, d),
        None => out.push(b'-'),
    }
}

/// `$proxy_add_x_forwarded_for`: the client's `X-Forwarded-For` values joined with
/// `, `, then `, ` and the client address; just the address when there were none.
pub fn x_forwarded_for(headers: &HeaderMap, remote: IpAddr, out: &mut Vec<u8>) {
    for value in headers.get_all("x-forwarded-for") {
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b", ");
    }
    ip_text(remote, out);
}

/// The client address as `$remote_addr` prints it.
pub fn ip_text(ip: IpAddr, out: &mut Vec<u8>) {
    push_display(out, ip);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use http::HeaderValue;

    /// 2026-11-22T04:20:42.123Z.
    pub(crate) fn now() -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_millis(1_795_321_242_123)
    }

    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    pub(crate) fn vars<'a>(headers: &'a HeaderMap, method: &'a Method) -> RequestVars<'a> {
        RequestVars {
            method,
            request_uri: "/a%20b?x=1&Y=2",
            path: b"/a b",
            version: Version::HTTP_11,
            headers,
            host: "example.com",
            server_name: "srv.test",
            remote: "192.0.2.7:51000".parse().unwrap(),
            realip_remote: None,
            local: "127.0.0.1:8080".parse().unwrap(),
            scheme: "http",
            tls: None,
            proxy_host: "app",
            request_length: 321,
            connection: 17,
            connection_requests: 3,
            start: now() - Duration::from_millis(1_500),
            now: now(),
            pid: 4242,
            hostname: "box",
            response: None,
            upstream: &[],
            upstream_headers: None,
            sticky: None,
            user: None,
            request_id: None,
            pipelined: false,
        }
    }

    fn one(var: Variable, v: &RequestVars<'_>) -> String {
        let mut out = Vec::new();
        eval_var(&var, v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tls_variables_are_empty_on_plain_http_and_nginx_s_on_tls() {
        let h = headers(&[]);
        let m = Method::GET;
        let plain = vars(&h, &m);
        let info = std::rc::Rc::new(TlsInfo {
            protocol: "TLSv1.3",
            cipher: "TLS_AES_128_GCM_SHA256",
            server_name: "one.test".into(),
            reused: true,
            client_verify: "SUCCESS".into(),
            client_s_dn: "CN=client,O=Test".into(),
            client_fingerprint: "00ff".into(),
            refusal: None,
        });
        let tls = RequestVars {
            tls: Some(&info),
            scheme: "https",
            ..plain
        };
        let cases = [
            (TlsVariable::Https, "on"),
            (TlsVariable::Protocol, "TLSv1.3"),
            (TlsVariable::Cipher, "TLS_AES_128_GCM_SHA256"),
            (TlsVariable::ServerName, "one.test"),
            (TlsVariable::SessionReused, "r"),
            (TlsVariable::ClientVerify, "SUCCESS"),
            (TlsVariable::ClientSDn, "CN=client,O=Test"),
            (TlsVariable::ClientFingerprint, "00ff"),
        ];
        for (var, want) in cases {
            assert_eq!(one(Variable::Tls(var), &tls), want, "{var:?}");
            assert_eq!(one(Variable::Tls(var), &plain), "", "{var:?}");
        }
        let fresh = TlsInfo {
            reused: false,
            ..(*info).clone()
        };
        let fresh = std::rc::Rc::new(fresh);
        let v = RequestVars {
            tls: Some(&fresh),
            ..plain
        };
        assert_eq!(one(Variable::Tls(TlsVariable::SessionReused), &v), ".");
        assert_eq!(
            crate::config::template::variable("ssl_client_s_dn"),
            Some(Variable::Tls(TlsVariable::ClientSDn))
        );
    }

    #[test]
    fn request_variables_table() {
        let h = headers(&[
            ("user-agent", "curl/8"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("cookie", "a=1; route=abc ; B=2"),
            ("cookie", "c=3"),
            ("authorization", "Basic dXNlcjpwYXNz"),
        ]);
        let m = Method::POST;
        let v = vars(&h, &m);
        let cases = [
            (Variable::Host, "example.com"),
            (Variable::Http("user_agent".into()), "curl/8"),
            (Variable::Http("user-agent".into()), "curl/8"),
            (Variable::Http("USER_AGENT".into()), "curl/8"),
            (Variable::Http("x_multi".into()), "a, b"),
            (Variable::Http("cookie".into()), "a=1; route=abc ; B=2; c=3"),
            (Variable::Http("absent".into()), ""),
            (Variable::Http("bad name".into()), ""),
            (Variable::Cookie("route".into()), "abc"),
            (Variable::Cookie("b".into()), "2"),
            (Variable::Cookie("c".into()), "3"),
            (Variable::Cookie("none".into()), ""),
            (Variable::Arg("x".into()), "1"),
            (Variable::Arg("y".into()), "2"),
            (Variable::Arg("z".into()), ""),
            (Variable::RemoteAddr, "192.0.2.7"),
            (Variable::RemotePort, "51000"),
            (Variable::RemoteUser, "user"),
            (Variable::ServerAddr, "127.0.0.1"),
            (Variable::ServerPort, "8080"),
            (Variable::ServerName, "srv.test"),
            (Variable::ServerProtocol, "HTTP/1.1"),
            (Variable::Http2, ""),
            (Variable::Scheme, "http"),
            (Variable::RequestMethod, "POST"),
            (Variable::RequestUri, "/a%20b?x=1&Y=2"),
            (Variable::Uri, "/a b"),
            (Variable::Args, "x=1&Y=2"),
            (Variable::QueryString, "x=1&Y=2"),
            (Variable::IsArgs, "?"),
            (Variable::Request, "POST /a%20b?x=1&Y=2 HTTP/1.1"),
            (Variable::RequestLength, "321"),
            (Variable::ProxyHost, "app"),
            (Variable::ProxyAddXForwardedFor, "10.0.0.1, 192.0.2.7"),
            (Variable::RequestTime, "1.500"),
            (Variable::TimeLocal, "22/Nov/2026:04:20:42 +0000"),
            (Variable::TimeIso8601, "2026-11-22T04:20:42+00:00"),
            (Variable::Msec, "1795321242.123"),
            (Variable::Pid, "4242"),
            (Variable::Connection, "17"),
            (Variable::ConnectionRequests, "3"),
            (Variable::Hostname, "box"),
            (Variable::UpstreamCacheStatus, ""),
            // Absent response, upstream and sticky data.
            (Variable::Status, "000"),
            (Variable::BodyBytesSent, "0"),
            (Variable::BytesSent, "0"),
            (Variable::SentHttp("content_type".into()), ""),
            (Variable::UpstreamAddr, ""),
            (Variable::UpstreamStatus, ""),
            (Variable::UpstreamResponseTime, ""),
            (Variable::UpstreamConnectTime, ""),
            (Variable::UpstreamHeaderTime, ""),
            (Variable::UpstreamHttp("server".into()), ""),
            (Variable::UpstreamCookie("sid".into()), ""),
            (Variable::StickySid, ""),
            (Variable::StickyStatus, ""),
            (Variable::StickyLearned, ""),
        ];
        for (var, want) in cases {
            assert_eq!(one(var.clone(), &v), want, "{var:?}");
        }
    }

    #[test]
    fn response_upstream_and_sticky_variables_table() {
        let h = headers(&[]);
        let resp_h = headers(&[("content-type", "text/plain"), ("set-cookie", "a=1")]);
        let m = Method::GET;
        let tries = [
            UpstreamTry {
                addr: "127.0.0.1:8081",
                status: Some(502),
                connect_time: None,
                header_time: None,
                response_time: Some(Duration::from_millis(3)),
            },
            UpstreamTry {
                addr: "127.0.0.1:8082",
                status: Some(200),
                connect_time: Some(Duration::from_micros(1_500)),
                header_time: Some(Duration::from_millis(12)),
                response_time: Some(Duration::from_millis(1_234)),
            },
        ];
        let mut v = vars(&h, &m);
        v.host = "";
        v.request_uri = "/plain";
        v.response = Some(ResponseVars {
            status: 200,
            headers: &resp_h,
            body_bytes_sent: 11,
            bytes_sent: 150,
        });
        v.upstream = &tries;
        let up_h = headers(&[
            ("content-disposition", "attachment"),
            ("set-cookie", "other=1; Path=/"),
            ("set-cookie", "sid = abc ; HttpOnly"),
            ("x-two", "a"),
            ("x-two", "b"),
        ]);
        v.upstream_headers = Some(&up_h);
        v.sticky = Some(StickyVars {
            sid: "d41d8cd9",
            status: "hit",
            learned: "JSESSIONID",
        });
        let cases = [
            // $host falls back to the server name.
            (Variable::Host, "srv.test"),
            (Variable::IsArgs, ""),
            (Variable::Args, ""),
            (Variable::RemoteUser, ""),
            (Variable::ProxyAddXForwardedFor, "192.0.2.7"),
            (Variable::Status, "200"),
            (Variable::BodyBytesSent, "11"),
            (Variable::BytesSent, "150"),
            (Variable::SentHttp("content_type".into()), "text/plain"),
            (Variable::SentHttp("set_cookie".into()), "a=1"),
            (Variable::UpstreamAddr, "127.0.0.1:8081, 127.0.0.1:8082"),
            (Variable::UpstreamStatus, "502, 200"),
            (Variable::UpstreamResponseTime, "0.003, 1.234"),
            (Variable::UpstreamConnectTime, "-, 0.001"),
            (Variable::UpstreamHeaderTime, "-, 0.012"),
            (Variable::StickySid, "d41d8cd9"),
            (Variable::StickyStatus, "hit"),
            (Variable::StickyLearned, "JSESSIONID"),
            (
                Variable::UpstreamHttp("content-disposition".into()),
                "attachment",
            ),
            (Variable::UpstreamHttp("x_two".into()), "a, b"),
            (Variable::UpstreamHttp("absent".into()), ""),
            (Variable::UpstreamCookie("sid".into()), "abc"),
            (Variable::UpstreamCookie("other".into()), "1"),
            (Variable::UpstreamCookie("none".into()), ""),
        ];
        for (var, want) in cases {
            assert_eq!(one(var.clone(), &v), want, "{var:?}");
        }
    }

    #[test]
    fn request_id_is_drawn_once_per_request_and_pipe_says_p_or_dot() {
        let h = headers(&[]);
        let m = Method::GET;
        let slot = RequestId::new();
        let mut v = vars(&h, &m);
        // No request: empty.
        assert_eq!(one(Variable::RequestId, &v), "");
        v.request_id = Some(&slot);
        assert_eq!(slot.peek(), None, "not drawn until read");
        let first = one(Variable::RequestId, &v);
        assert_eq!(first.len(), 32);
        assert!(first
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            one(Variable::RequestId, &v),
            first,
            "stable within a request"
        );
        slot.reset();
        assert_ne!(
            one(Variable::RequestId, &v),
            first,
            "a new request, a new id"
        );
        let cases = [(false, "."), (true, "p")];
        for (pipelined, want) in cases {
            let v = RequestVars { pipelined, ..v };
            assert_eq!(one(Variable::Pipe, &v), want, "{pipelined}");
        }
        assert_eq!(
            crate::config::template::variable("request_id"),
            Some(Variable::RequestId)
        );
        assert_eq!(
            crate::config::template::variable("pipe"),
            Some(Variable::Pipe)
        );
        // nginx's request-header names and the cache status without a cache.
        let h = headers(&[("content-type", "text/x"), ("content-length", "12")]);
        let v = vars(&h, &m);
        for (name, want) in [
            ("content_type", "text/x"),
            ("Content_Length", "12"),
            ("upstream_cache_status", ""),
        ] {
            let var = crate::config::template::variable(name).unwrap();
            assert_eq!(one(var, &v), want, "{name}");
        }
    }

    #[test]
    fn log_style_prints_a_dash_for_empty_values() {
        let h = headers(&[]);
        let m = Method::GET;
        let v = vars(&h, &m);
        let template = Template {
            source: "$remote_addr - $remote_user [$time_local] \"$http_referer\" $sticky_status"
                .into(),
            parts: vec![
                Part::Var(Variable::RemoteAddr),
                Part::Literal(" - ".into()),
                Part::Var(Variable::RemoteUser),
                Part::Literal(" [".into()),
                Part::Var(Variable::TimeLocal),
                Part::Literal("] \"".into()),
                Part::Var(Variable::Http("referer".into())),
                Part::Literal("\" ".into()),
                Part::Var(Variable::StickyStatus),
            ],
        };
        let mut log = Vec::new();
        eval(&template, &v, Style::Log, &mut log);
        assert_eq!(
            String::from_utf8(log).unwrap(),
            "192.0.2.7 - - [22/Nov/2026:04:20:42 +0000] \"-\" -"
        );
        assert_eq!(
            String::from_utf8(eval_to_vec(&template, &v)).unwrap(),
            "192.0.2.7 -  [22/Nov/2026:04:20:42 +0000] \"\" "
        );
    }

    #[test]
    fn log_escaping_follows_nginx_modes() {
        let h = headers(&[("user-agent", "a\"b\\c\té")]);
        let m = Method::GET;
        let v = vars(&h, &m);
        let template = Template {
            source: "\"$http_user_agent\" $remote_user|$request_method".into(),
            parts: vec![
                Part::Literal("\"".into()),
                Part::Var(Variable::Http("user_agent".into())),
                Part::Literal("\" ".into()),
                Part::Var(Variable::RemoteUser),
                Part::Literal("|".into()),
                Part::Var(Variable::RequestMethod),
            ],
        };
        let cases: [(Escape, &[u8]); 3] = [
            (Escape::Default, b"\"a\\x22b\\x5Cc\\x09\\xC3\\xA9\" -|GET"),
            (Escape::Json, "\"a\\\"b\\\\c\\té\" |GET".as_bytes()),
            (Escape::None, "\"a\"b\\c\té\" -|GET".as_bytes()),
        ];
        for (escape, want) in cases {
            let mut out = Vec::new();
            eval_log(&template, &v, escape, &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(want),
                "{escape:?}"
            );
        }
    }

    #[test]
    fn remote_user_ignores_other_schemes_and_bad_base64() {
        let m = Method::GET;
        for (auth, want) in [
            ("Bearer dXNlcjpwYXNz", ""),
            ("Basic !!!", ""),
            ("Basic dXNlcg==", ""),
            ("basic YWxpY2U6eA==", "alice"),
        ] {
            let h = headers(&[("authorization", auth)]);
            assert_eq!(one(Variable::RemoteUser, &vars(&h, &m)), want, "{auth}");
        }
    }

    #[test]
    fn x_forwarded_for_table() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "192.0.2.7"),
            (&[("x-forwarded-for", "10.0.0.1")], "10.0.0.1, 192.0.2.7"),
            (
                &[
                    ("x-forwarded-for", "10.0.0.1, 10.0.0.2"),
                    ("x-forwarded-for", "10.0.0.3"),
                ],
                "10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7",
            ),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            x_forwarded_for(&headers(input), "192.0.2.7".parse().unwrap(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), *want, "{input:?}");
        }
        let mut out = Vec::new();
        x_forwarded_for(&headers(&[]), "2001:db8::1".parse().unwrap(), &mut out);
        assert_eq!(out, b"2001:db8::1");
    }

    #[test]
    fn http2_names_the_protocol_of_http2_requests_only() {
        let cases = [
            (Version::HTTP_2, true, "h2", "HTTP/2.0"),
            (Version::HTTP_2, false, "h2c", "HTTP/2.0"),
            (Version::HTTP_11, true, "", "HTTP/1.1"),
            (Version::HTTP_10, false, "", "HTTP/1.0"),
        ];
        for (version, tls, h2, proto) in cases {
            assert_eq!(http2(version, tls), h2, "{version:?} {tls}");
            assert_eq!(protocol(version), proto, "{version:?}");
        }
    }
}
