//! Which `server` and which `location` handle a request, exactly as nginx chooses.
//!
//! [`Router::new`] precomputes, once per configuration, one table per listen address:
//! exact names in a hash map, leading and trailing wildcards sorted longest first,
//! regexes in config order, and the default server. [`Router::server`] then picks the
//! virtual server for a connection's local address and the request's Host:
//! exact name, longest leading wildcard, longest trailing wildcard, first matching
//! regex, else the `default_server` (else the first server on that address). The
//! Host is normalized first by [`normalize_host`] (lowercase, port and trailing dot
//! stripped, validated as nginx does); an invalid Host is a
//! [`RouteError::InvalidHost`] (400). Which host a request names at all (the
//! request line's authority before the Host header) is [`named_host`].
//!
//! [`find_location`] runs nginx's location search over a server's locations:
//! an exact `=` match wins at once; otherwise the longest prefix, whose nested
//! locations are searched the same way; a `^~` longest prefix skips the regexes of
//! its level; otherwise the regexes of the level in config order (nested ones first,
//! since the nested search runs first), the first match winning; else the longest
//! prefix. [`lookup_location`] adds nginx's automatic redirect: a request for
//! `/static` where `location /static/` proxies (and no location is named `/static`)
//! gets a 301 to `/static/`. Nothing here allocates per request unless the Host has
//! upper case letters or the path is not UTF-8.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, Location, LocationMatch, ServerConf, ServerName};

/// Why no server could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// The Host header is not a valid host (400).
    InvalidHost,
    /// No server listens on the connection's local address (a bug in the caller:
    /// connections arrive only on configured listeners).
    NoListener,
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouteError::InvalidHost => "client sent invalid host header",
            RouteError::NoListener => "no server listens on this address",
        })
    }
}

impl std::error::Error for RouteError {}

/// The server chosen for a request.
#[derive(Debug, Clone)]
pub struct Routed<'r> {
    pub server: &'r Arc<ServerConf>,
    /// The normalized Host (empty when the request had none): `$host`.
    pub host: Cow<'r, str>,
}

/// Server-name tables for one listen address.
#[derive(Debug)]
struct AddrTable {
    addr: SocketAddr,
    /// Looked up on every request: FNV, as `types`. The table is the
    /// configuration's; a request only reads it, so a keyed hash buys nothing.
    exact: HashMap<Box<str>, usize, fnv::FnvBuildHasher>,
    /// `(suffix with leading dot, dot_form, server)`, longest suffix first.
    leading: Vec<(Box<str>, bool, usize)>,
    /// `(prefix with trailing dot, server)`, longest prefix first.
    trailing: Vec<(Box<str>, usize)>,
    regex: Vec<(regex::Regex, usize)>,
    default: usize,
    /// A `default_server` listen set `default` (the first one wins).
    explicit_default: bool,
    /// Servers already added to this table.
    members: Vec<usize>,
}

/// The precomputed virtual-server tables of one configuration.
#[derive(Debug)]
pub struct Router {
    servers: Vec<Arc<ServerConf>>,
    tables: Vec<AddrTable>,
}

impl Router {
    /// Builds the tables for every listen address of `config`.
    pub fn new(config: &Config) -> Router {
        Router::from_servers(&config.http.servers)
    }

    /// Builds the tables from a list of servers (config order).
    pub fn from_servers(servers: &[Arc<ServerConf>]) -> Router {
        let mut tables: Vec<AddrTable> = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            for listen in &server.listens {
                let pos = match tables.iter().position(|t| t.addr == listen.addr) {
                    Some(pos) => pos,
                    None => {
                        tables.push(AddrTable {
                            addr: listen.addr,
                            exact: HashMap::default(),
                            leading: Vec::new(),
                            trailing: Vec::new(),
                            regex: Vec::new(),
                            default: index,
                            explicit_default: false,
                            members: Vec::new(),
                        });
                        tables.len() - 1
                    }
                };
                let Some(table) = tables.get_mut(pos) else {
                    continue;
                };
                if !table.members.contains(&index) {
                    table.members.push(index);
                    add_names(table, server, index);
                }
                if listen.default_server && !table.explicit_default {
                    table.default = index;
                    table.explicit_default = true;
                }
            }
        }
        for table in &mut tables {
            // Stable sorts keep config order among equal lengths (first wins).
            table
                .leading
                .sort_by_key(|(s, _, _)| std::cmp::Reverse(s.len()));
            table
                .trailing
                .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        }
        Router {
            servers: servers.to_vec(),
            tables,
        }
    }

    /// Picks the server for a request arriving on `local` with Host `host` (`None`
    /// when the request has no Host; then the name "" is looked up, which finds
    /// `server_name ""` or the default server).
    pub fn server<'r>(
        &'r self,
        local: SocketAddr,
        host: Option<&'r [u8]>,
    ) -> Result<Routed<'r>, RouteError> {
        let host = match host {
            Some(raw) => normalize_host(raw)?,
            None => Cow::Borrowed(""),
        };
        let table = self.table(local).ok_or(RouteError::NoListener)?;
        let index = lookup(table, &host).unwrap_or(table.default);
        let server = self.servers.get(index).ok_or(RouteError::NoListener)?;
        Ok(Routed { server, host })
    }

    /// The table for `local`: the exact address, else a wildcard address
    /// (`0.0.0.0` / `[::]`) on the same port.
    fn table(&self, local: SocketAddr) -> Option<&AddrTable> {
        // An IPv4 client on a dual-stack socket shows as `[::ffff:a.b.c.d]`.
        let local = SocketAddr::new(local.ip().to_canonical(), local.port());
        self.tables
            .iter()
            .find(|t| t.addr == local)
            .or_else(|| {
                self.tables.iter().find(|t| {
                    t.addr.port() == local.port()
                        && t.addr.ip().is_unspecified()
                        && t.addr.is_ipv4() == local.is_ipv4()
                })
            })
            .or_else(|| {
                self.tables
                    .iter()
                    .find(|t| t.addr.port() == local.port() && t.addr.ip().is_unspecified())
            })
    }
}

fn add_names(table: &mut AddrTable, server: &ServerConf, index: usize) {
    for name in &server.names {
        match name {
            ServerName::Exact(n) => {
                table
                    .exact
                    .entry(n.to_ascii_lowercase().into_boxed_str())
                    .or_insert(index);
            }
            ServerName::LeadingWildcard { suffix, dot_form } => {
                let suffix = suffix.to_ascii_lowercase();
                let suffix = if suffix.starts_with('.') {
                    suffix
                } else {
                    format!(".{suffix}")
                };
                table
                    .leading
                    .push((suffix.into_boxed_str(), *dot_form, index));
            }
            ServerName::TrailingWildcard { prefix } => {
                let prefix = prefix.to_ascii_lowercase();
                let prefix = if prefix.ends_with('.') {
                    prefix
                } else {
                    format!("{prefix}.")
                };
                table.trailing.push((prefix.into_boxed_str(), index));
            }
            ServerName::Regex(re) => table.regex.push((re.clone(), index)),
        }
    }
}

fn lookup(table: &AddrTable, host: &str) -> Option<usize> {
    if let Some(&i) = table.exact.get(host) {
        return Some(i);
    }
    if !host.is_empty() {
        for (suffix, dot_form, i) in &table.leading {
            let below = host.len() > suffix.len() && host.ends_with(&**suffix);
            let itself = *dot_form && host == suffix.get(1..).unwrap_or_default();
            if below || itself {
                return Some(*i);
            }
        }
        for (prefix, i) in &table.trailing {
            if host.len() > prefix.len() && host.starts_with(&**prefix) {
                return Some(*i);
            }
        }
    }
    table
        .regex
        .iter()
        .find(|(re, _)| re.is_match(host))
        .map(|(_, i)| *i)
}

/// The host a request names (RFC 9112 section 3.2.2, as nginx reads it): the
/// authority of an absolute-form target (`GET http://two.test/ HTTP/1.1`, or an
/// HTTP/2 `:authority`) wins over the Host header for the server choice and
/// `$host`. The Host header is still checked when the authority wins, as nginx
/// does (`Host: local host` is a 400 whatever the request line says); an
/// authority with user information (`http://user@host/`) is refused, as nginx's
/// request-line parser refuses it.
pub fn named_host<'a>(
    authority: Option<&'a [u8]>,
    header: Option<&'a [u8]>,
) -> Result<Option<&'a [u8]>, RouteError> {
    let Some(authority) = authority else {
        return Ok(header);
    };
    if authority.contains(&b'@') {
        return Err(RouteError::InvalidHost);
    }
    if let Some(header) = header {
        normalize_host(header)?;
    }
    Ok(Some(authority))
}

/// nginx's Host validation and normalization (`ngx_http_validate_host`):
/// lowercase, `:port` stripped (IPv6 literals `[...]` kept whole), one trailing
/// dot stripped. Invalid, as in nginx 1.22 (checked against the binary): an empty
/// result, `..` anywhere, `/`, NUL, space and every other control byte (nginx
/// 1.21.1 and later). Invalid, as in nginx 1.29.4 and later, whose host and port
/// parsing follows RFC 3986: a port that is not digits only (`a:1:2`,
/// `one.test.:1.2`) or above 65535 (`one.test:98777`), an unclosed literal
/// (`[::1`), anything but `:port` after a literal (`[::1]x`). Also refused here
/// (nginx on Unix takes them): `\` and bytes that are not UTF-8. An empty port
/// (`one.test:`) is valid, as RFC 3986 allows. Borrows when no change is needed
/// but removing the port or dot.
pub fn normalize_host(raw: &[u8]) -> Result<Cow<'_, str>, RouteError> {
    // The usual host (a name or an IPv4 address, an optional port) is judged
    // in one pass over a byte table; an IPv6 literal takes the general path.
    let (name_len, upper) = if raw.first() == Some(&b'[') {
        literal_host(raw)?
    } else {
        let (name_len, upper) = check_name(raw, false)?;
        if let Some(port) = raw.get(name_len + 1..) {
            check_port(port)?;
        }
        (name_len, upper)
    };
    let host = raw.get(..name_len).ok_or(RouteError::InvalidHost)?;
    let host = std::str::from_utf8(host).map_err(|_| RouteError::InvalidHost)?;
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return Err(RouteError::InvalidHost);
    }
    Ok(if upper {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// What a byte of a host name is to [`check_name`].
const NAME_OK: u8 = 0;
const NAME_BAD: u8 = 1;
const NAME_DOT: u8 = 2;
const NAME_UPPER: u8 = 3;
const NAME_COLON: u8 = 4;

/// The class of every byte in a host name: control bytes, space, DEL, `/` and
/// `\` are refused; bytes past ASCII pass here and meet the UTF-8 check.
const NAME_CLASS: [u8; 256] = {
    let mut table = [NAME_OK; 256];
    let mut b = 0;
    while b <= 0x20 {
        table[b] = NAME_BAD;
        b += 1;
    }
    table[0x7f] = NAME_BAD;
    table[b'/' as usize] = NAME_BAD;
    table[b'\\' as usize] = NAME_BAD;
    table[b':' as usize] = NAME_COLON;
    table[b'.' as usize] = NAME_DOT;
    let mut c = b'A';
    while c <= b'Z' {
        table[c as usize] = NAME_UPPER;
        c += 1;
    }
    table
};

/// Checks the host name at the start of `raw`, up to a `:` (its port) or
/// the end, or the whole of an IPv6 literal's inside (`in_literal`: colons
/// belong to it): its bytes, and no `..`. Its length, and whether it has
/// upper-case letters.
fn check_name(raw: &[u8], in_literal: bool) -> Result<(usize, bool), RouteError> {
    let mut upper = false;
    let mut prev_dot = false;
    for (i, &b) in raw.iter().enumerate() {
        match NAME_CLASS[usize::from(b)] {
            NAME_COLON if !in_literal => return Ok((i, upper)),
            NAME_OK | NAME_COLON => prev_dot = false,
            NAME_DOT if prev_dot => return Err(RouteError::InvalidHost),
            NAME_DOT => prev_dot = true,
            NAME_UPPER => {
                upper = true;
                prev_dot = false;
            }
            _ => return Err(RouteError::InvalidHost),
        }
    }
    Ok((raw.len(), upper))
}

/// Checks a port: digits only (none is allowed), at most 65535.
fn check_port(port: &[u8]) -> Result<(), RouteError> {
    let mut value: u32 = 0;
    for &b in port {
        if !b.is_ascii_digit() {
            return Err(RouteError::InvalidHost);
        }
        value = value * 10 + u32::from(b - b'0');
        if value > u32::from(u16::MAX) {
            return Err(RouteError::InvalidHost);
        }
    }
    Ok(())
}

/// An IPv6 (or IPvFuture) literal host, `[...]` with an optional `:port`:
/// the length of the literal and whether it has upper-case letters.
fn literal_host(raw: &[u8]) -> Result<(usize, bool), RouteError> {
    let close = memchr::memchr(b']', raw).ok_or(RouteError::InvalidHost)?;
    let (_, upper) = check_name(raw.get(1..close).unwrap_or_default(), true)?;
    match raw.get(close + 1..).unwrap_or_default() {
        [] => {}
        [b':', port @ ..] => check_port(port)?,
        _ => return Err(RouteError::InvalidHost),
    }
    Ok((close + 1, upper))
}

/// What one level of the search found.
enum Found<'a> {
    /// Final: an exact or regex match (nginx `NGX_OK`).
    Done(&'a Location),
    /// Final: the path is a proxied location's name without its trailing slash
    /// (nginx `NGX_DONE`).
    AddSlash(&'a Location),
    /// The longest prefix at this level or below (nginx `NGX_AGAIN`).
    Prefix(&'a Location),
    None,
}

/// The outcome of the location search.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// The location that handles the request.
    Location(&'a Location),
    /// nginx's automatic redirect: the path equals the name of a location ending
    /// in `/` that proxies (`location /static/ { proxy_pass ...; }` and a request
    /// for `/static`), and no location is named exactly like the path. The answer
    /// is a 301 to the path with `/` appended (see `uri::add_slash_target`).
    AddSlash(&'a Location),
    /// No location matches: the server's own settings apply.
    NoMatch,
}

/// The location for the normalized path `path` among `locations` (a server's
/// top-level locations), or `None` when none matches (the server's own settings
/// apply). This ignores nginx's automatic trailing-slash redirect; see
/// [`lookup_location`] for it.
pub fn find_location<'a>(locations: &'a [Location], path: &[u8]) -> Option<&'a Location> {
    let text = OnceCell::new();
    match search(locations, path, &text, false) {
        Found::Done(loc) | Found::Prefix(loc) | Found::AddSlash(loc) => Some(loc),
        Found::None => None,
    }
}

/// The location search with nginx's automatic trailing-slash redirect.
pub fn lookup_location<'a>(locations: &'a [Location], path: &[u8]) -> Lookup<'a> {
    // The path as text for the regexes, made only if one is tried.
    let text = OnceCell::new();
    match search(locations, path, &text, true) {
        Found::Done(loc) | Found::Prefix(loc) => Lookup::Location(loc),
        Found::AddSlash(loc) => Lookup::AddSlash(loc),
        Found::None => Lookup::NoMatch,
    }
}

/// True when `path` is `uri` minus its trailing `/` and the location proxies.
fn slash_redirect(uri: &str, path: &[u8], loc: &Location) -> bool {
    loc.conf.proxy_pass.is_some()
        && uri.len() == path.len() + 1
        && uri.as_bytes().starts_with(path)
        && uri.ends_with('/')
}

fn search<'a, 'p>(
    locations: &'a [Location],
    path: &'p [u8],
    text: &OnceCell<Cow<'p, str>>,
    auto_redirect: bool,
) -> Found<'a> {
    let mut longest: Option<(&'a Location, usize, bool)> = None;
    let mut add_slash: Option<&'a Location> = None;
    for loc in locations {
        match &loc.matcher {
            LocationMatch::Exact(uri) => {
                if uri.as_bytes() == path {
                    return Found::Done(loc);
                }
                if auto_redirect && add_slash.is_none() && slash_redirect(uri, path, loc) {
                    add_slash = Some(loc);
                }
            }
            LocationMatch::Prefix { uri, stop_regex } => {
                let len = uri.len();
                if path.starts_with(uri.as_bytes()) && longest.is_none_or(|(_, l, _)| len > l) {
                    longest = Some((loc, len, *stop_regex));
                }
                if auto_redirect && add_slash.is_none() && slash_redirect(uri, path, loc) {
                    add_slash = Some(loc);
                }
            }
            LocationMatch::Regex { .. } => {}
        }
    }
    if let Some(loc) = add_slash {
        // A location named exactly like the path would have been found instead.
        if longest.is_none_or(|(_, len, _)| len < path.len()) {
            return Found::AddSlash(loc);
        }
    }
    let mut found = Found::None;
    let mut noregex = false;
    if let Some((loc, _, stop)) = longest {
        noregex = stop;
        found = match search(&loc.nested, path, text, auto_redirect) {
            Found::Done(inner) => return Found::Done(inner),
            Found::AddSlash(inner) => return Found::AddSlash(inner),
            Found::Prefix(inner) => Found::Prefix(inner),
            Found::None => Found::Prefix(loc),
        };
    }
    if !noregex {
        for loc in locations {
            if let LocationMatch::Regex { re, .. } = &loc.matcher {
                if re.is_match(text.get_or_init(|| String::from_utf8_lossy(path))) {
                    return match search(&loc.nested, path, text, auto_redirect) {
                        Found::Done(inner) | Found::AddSlash(inner) | Found::Prefix(inner) => {
                            Found::Done(inner)
                        }
                        Found::None => Found::Done(loc),
                    };
                }
            }
        }
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{ast::Span, AccessLog, ConnectionConf, Listen, LocationConf, NextUpstream};
    use std::path::PathBuf;
    use std::time::Duration;

    fn conf() -> Arc<LocationConf> {
        Arc::new(LocationConf {
            proxy_pass: None,
            proxy_ssl: None,
            return_: None,
            resolver: None,
            limit_except: None,
            redirect: Default::default(),
            proxy_set_headers: Vec::new(),
            proxy_hide_headers: Vec::new(),
            proxy_pass_headers: Vec::new(),
            proxy_http_version: http::Version::HTTP_10,
            proxy_connect_timeout: Duration::from_secs(60),
            proxy_read_timeout: Duration::from_secs(60),
            proxy_send_timeout: Duration::from_secs(60),
            proxy_next_upstream: NextUpstream::default(),
            proxy_next_upstream_tries: 0,
            proxy_next_upstream_timeout: Duration::ZERO,
            client_max_body_size: 1 << 20,
            access_log: AccessLog::Off,
            server_tokens: true,
            chunked_transfer_encoding: true,
            redirect_form: Default::default(),
            sticky_hide_cookie: None,
            check_status: None,
            add_headers: Vec::new(),
            add_header_names: None,
            expires: crate::config::Expires::Off,
            client_body_timeout: None,
            send_timeout: None,
            keepalive_timeout: None,
            keepalive_requests: None,
            files: Default::default(),
            compress: Default::default(),
            access: Default::default(),
            details: Default::default(),
            shape: Default::default(),
        })
    }

    fn listen(addr: &str, default_server: bool) -> Listen {
        Listen {
            addr: addr.parse().unwrap(),
            default_server,
            reuseport: false,
            backlog: 511,
            ssl: false,
            http2: false,
        }
    }

    /// Parses `server_name` arguments the way the builder stores them.
    fn name(text: &str) -> ServerName {
        if let Some(re) = text.strip_prefix('~') {
            ServerName::Regex(regex::Regex::new(re).unwrap())
        } else if let Some(suffix) = text.strip_prefix("*.") {
            ServerName::LeadingWildcard {
                suffix: format!(".{suffix}"),
                dot_form: false,
            }
        } else if text.starts_with('.') {
            ServerName::LeadingWildcard {
                suffix: text.to_string(),
                dot_form: true,
            }
        } else if let Some(prefix) = text.strip_suffix('*') {
            ServerName::TrailingWildcard {
                prefix: prefix.to_string(),
            }
        } else {
            ServerName::Exact(text.to_string())
        }
    }

    fn server(listens: Vec<Listen>, names: &[&str], line: u32) -> Arc<ServerConf> {
        Arc::new(ServerConf {
            listens,
            names: names.iter().map(|n| name(n)).collect(),
            return_: None,
            locations: Vec::new(),
            named: Vec::new(),
            conf: conf(),
            connection: ConnectionConf {
                client_header_timeout: Duration::from_secs(60),
                client_body_timeout: Duration::from_secs(60),
                send_timeout: Duration::from_secs(60),
                keepalive_timeout: Duration::from_secs(75),
                keepalive_requests: 1000,
                large_client_header_buffers: (4, 8192),
                http2: Default::default(),
                header_names: crate::http1::invalid::HeaderNames::NGINX,
            },
            tls: None,
            span: Span {
                file: Arc::new(PathBuf::from("test.conf")),
                line,
            },
        })
    }

    fn chosen(router: &Router, local: &str, host: Option<&str>) -> Result<u32, RouteError> {
        router
            .server(local.parse().unwrap(), host.map(str::as_bytes))
            .map(|r| r.server.span.line)
    }

    #[test]
    fn host_normalization_table() {
        let bad = Err(RouteError::InvalidHost);
        // (Host, result, why): the valid ones and the rule each invalid one breaks.
        let cases: &[(&[u8], Result<&str, RouteError>, &str)] = &[
            (b"example.com", Ok("example.com"), "plain"),
            (b"one.test", Ok("one.test"), "plain"),
            (b"Example.COM", Ok("example.com"), "lowercased"),
            (
                b"ONE.test.",
                Ok("one.test"),
                "lowercased, trailing dot stripped",
            ),
            (b"example.com:8080", Ok("example.com"), "port stripped"),
            (b"one.test:8080", Ok("one.test"), "port stripped"),
            (
                b"example.com.",
                Ok("example.com"),
                "one trailing dot stripped",
            ),
            (b"example.com.:80", Ok("example.com"), "dot before the port"),
            (b"one.test:", Ok("one.test"), "empty port (RFC 3986 *DIGIT)"),
            (b"one.test:0", Ok("one.test"), "port 0 is digits"),
            (b"one.test:65535", Ok("one.test"), "largest port"),
            (b"one.test:0080", Ok("one.test"), "leading zeros"),
            (b"[::1]:8080", Ok("[::1]"), "literal with port"),
            (b"[::1]:80", Ok("[::1]"), "literal with port"),
            (b"[::1]", Ok("[::1]"), "literal"),
            (b"[::1]:", Ok("[::1]"), "literal, empty port"),
            (b"[V1.A:b]", Ok("[v1.a:b]"), "IPvFuture, lowercased"),
            (b"127.0.0.1", Ok("127.0.0.1"), "IPv4"),
            (b"127.0.0.1:80", Ok("127.0.0.1"), "IPv4 with port"),
            (b"x[y]z", Ok("x[y]z"), "`[` only opens a literal first"),
            (b"caf\xc3\xa9.test", Ok("caf\u{e9}.test"), "UTF-8 kept"),
            (b"one.test:98777", bad, "port above 65535"),
            (b"one.test:65536", bad, "port above 65535"),
            (b"one.test:99999999999", bad, "port overflow"),
            (b"a:1:2", bad, "port not digits (second colon)"),
            (b"one.test.:1.2", bad, "port not digits (dot)"),
            (b"one.test:8a", bad, "port not digits"),
            (b"one.test:80 ", bad, "port not digits (space)"),
            (b"[::1", bad, "literal not closed"),
            (b"[::1]x", bad, "not `:port` after a literal"),
            (b"[::1].", bad, "not `:port` after a literal"),
            (b"local host", bad, "space"),
            (b"one.test\t", bad, "control byte"),
            (b"on\x01e", bad, "control byte"),
            (b"one.\x7ftest", bad, "DEL"),
            (b"a\0b", bad, "NUL"),
            (b"", bad, "empty"),
            (b":80", bad, "empty host"),
            (b".", bad, "empty after the dot"),
            (b"a..b", bad, "double dot"),
            (b"[a..b]", bad, "double dot in a literal"),
            (b"a/b", bad, "path separator"),
            (b"a\\b", bad, "backslash"),
            (b"\xff\xfe", bad, "not UTF-8"),
        ];
        for (raw, want, why) in cases {
            let got = normalize_host(raw);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{raw:?}: {why}");
        }
    }

    #[test]
    fn request_line_authority_wins_over_host_header() {
        let bad = Err(RouteError::InvalidHost);
        // (authority, Host header, host that names the server)
        type Case<'a> = (
            Option<&'a [u8]>,
            Option<&'a [u8]>,
            Result<Option<&'a [u8]>, RouteError>,
        );
        let cases: &[Case] = &[
            (None, Some(b"one.test"), Ok(Some(b"one.test"))),
            (None, None, Ok(None)),
            // The Host header is checked later, by Router::server.
            (None, Some(b"local host"), Ok(Some(b"local host"))),
            (Some(b"two.test"), Some(b"one.test"), Ok(Some(b"two.test"))),
            (Some(b"two.test:81"), None, Ok(Some(b"two.test:81"))),
            (Some(b"two.test"), Some(b"local host"), bad),
            (Some(b"two.test"), Some(b"a:1:2"), bad),
            (Some(b"u@two.test"), Some(b"one.test"), bad),
        ];
        for (authority, header, want) in cases {
            assert_eq!(
                named_host(*authority, *header),
                *want,
                "{authority:?} {header:?}"
            );
        }
        let router = Router::from_servers(&[
            server(vec![listen("0.0.0.0:80", false)], &["one.test"], 1),
            server(vec![listen("0.0.0.0:80", false)], &["two.test"], 2),
        ]);
        let local: SocketAddr = "1.2.3.4:80".parse().unwrap();
        let host = named_host(Some(b"TWO.test.:8080"), Some(b"one.test")).unwrap();
        let routed = router.server(local, host).unwrap();
        assert_eq!((routed.server.span.line, &*routed.host), (2, "two.test"));
    }

    #[test]
    fn server_name_precedence_matches_nginx() {
        let l = || vec![listen("0.0.0.0:80", false)];
        let router = Router::from_servers(&[
            server(l(), &["first.test"], 1),
            server(l(), &["~^(www|api)\\.regex\\.test$"], 2),
            server(l(), &["www.example.*"], 3),
            server(l(), &["*.example.com"], 4),
            server(l(), &["*.sub.example.com"], 5),
            server(l(), &["exact.example.com"], 6),
            server(l(), &[".dot.test"], 7),
            server(l(), &["~example"], 8),
            server(l(), &["www.example.com.*"], 9),
        ]);
        let cases: &[(Option<&str>, u32)] = &[
            (Some("exact.example.com"), 6),
            (Some("EXACT.example.com:80"), 6),
            (Some("a.example.com"), 4),
            (Some("a.b.example.com"), 4),
            (Some("a.sub.example.com"), 5),
            // Leading wildcard beats trailing wildcard.
            (Some("www.example.com"), 4),
            (Some("www.example.org"), 3),
            (Some("www.example.com.au"), 9),
            (Some("dot.test"), 7),
            (Some("x.dot.test"), 7),
            (Some("api.regex.test"), 2),
            (Some("example.net"), 8),
            (Some("unknown.test"), 1),
            (None, 1),
        ];
        for (host, want) in cases {
            assert_eq!(chosen(&router, "10.0.0.1:80", *host), Ok(*want), "{host:?}");
        }
    }

    #[test]
    fn default_server_catches_unknown_hosts() {
        let router = Router::from_servers(&[
            server(vec![listen("0.0.0.0:80", false)], &["a.test"], 1),
            server(vec![listen("0.0.0.0:80", true)], &["b.test"], 2),
        ]);
        let cases: &[(Option<&str>, u32)] = &[
            (Some("a.test"), 1),
            (Some("b.test"), 2),
            (Some("c.test"), 2),
            (None, 2),
        ];
        for (host, want) in cases {
            assert_eq!(
                chosen(&router, "127.0.0.1:80", *host),
                Ok(*want),
                "{host:?}"
            );
        }
    }

    #[test]
    fn empty_server_name_catches_requests_without_host() {
        let router = Router::from_servers(&[
            server(vec![listen("0.0.0.0:80", false)], &["a.test"], 1),
            server(vec![listen("0.0.0.0:80", false)], &[""], 2),
        ]);
        assert_eq!(chosen(&router, "127.0.0.1:80", None), Ok(2));
        assert_eq!(chosen(&router, "127.0.0.1:80", Some("zzz")), Ok(1));
    }

    #[test]
    fn only_servers_on_the_connection_address_are_considered() {
        let router = Router::from_servers(&[
            server(vec![listen("0.0.0.0:80", false)], &["wild.test"], 1),
            server(vec![listen("127.0.0.1:80", false)], &["local.test"], 2),
            server(vec![listen("0.0.0.0:81", false)], &["wild.test"], 3),
            server(
                vec![listen("127.0.0.1:80", false), listen("0.0.0.0:81", true)],
                &["both.test"],
                4,
            ),
        ]);
        let cases: &[(&str, Option<&str>, Result<u32, RouteError>)] = &[
            ("127.0.0.1:80", Some("wild.test"), Ok(2)),
            ("127.0.0.1:80", Some("both.test"), Ok(4)),
            ("10.1.1.1:80", Some("local.test"), Ok(1)),
            ("10.1.1.1:81", Some("wild.test"), Ok(3)),
            ("10.1.1.1:81", Some("nope.test"), Ok(4)),
            (
                "10.1.1.1:82",
                Some("wild.test"),
                Err(RouteError::NoListener),
            ),
            (
                "127.0.0.1:80",
                Some("bad/host"),
                Err(RouteError::InvalidHost),
            ),
            ("[::ffff:127.0.0.1]:80", Some("wild.test"), Ok(2)),
            ("[::1]:81", Some("wild.test"), Ok(3)),
        ];
        for (local, host, want) in cases {
            assert_eq!(chosen(&router, local, *host), *want, "{local} {host:?}");
        }
    }

    #[test]
    fn first_server_with_a_duplicate_name_wins() {
        let l = || vec![listen("0.0.0.0:80", false)];
        let router = Router::from_servers(&[
            server(l(), &["other.test"], 1),
            server(l(), &["dup.test"], 2),
            server(l(), &["dup.test"], 3),
        ]);
        assert_eq!(chosen(&router, "1.2.3.4:80", Some("dup.test")), Ok(2));
        // A server listing one address twice; two default_server flags: first wins.
        let router = Router::from_servers(&[
            server(vec![listen("0.0.0.0:80", false)], &["a.test"], 1),
            server(
                vec![listen("0.0.0.0:80", true), listen("0.0.0.0:80", false)],
                &["*.w.test"],
                2,
            ),
            server(vec![listen("0.0.0.0:80", true)], &["c.test"], 3),
        ]);
        let cases: &[(&str, u32)] = &[("x.w.test", 2), ("c.test", 3), ("zzz", 2)];
        for (host, want) in cases {
            assert_eq!(
                chosen(&router, "1.2.3.4:80", Some(host)),
                Ok(*want),
                "{host}"
            );
        }
    }

    fn prefix(uri: &str, nested: Vec<Location>) -> Location {
        Location {
            matcher: LocationMatch::Prefix {
                uri: uri.to_string(),
                stop_regex: false,
            },
            conf: conf(),
            nested,
        }
    }

    fn stop(uri: &str, nested: Vec<Location>) -> Location {
        Location {
            matcher: LocationMatch::Prefix {
                uri: uri.to_string(),
                stop_regex: true,
            },
            conf: conf(),
            nested,
        }
    }

    fn exact(uri: &str) -> Location {
        Location {
            matcher: LocationMatch::Exact(uri.to_string()),
            conf: conf(),
            nested: Vec::new(),
        }
    }

    fn re(source: &str, case_insensitive: bool, nested: Vec<Location>) -> Location {
        let pattern = if case_insensitive {
            format!("(?i){source}")
        } else {
            source.to_string()
        };
        Location {
            matcher: LocationMatch::Regex {
                re: regex::Regex::new(&pattern).unwrap(),
                case_insensitive,
                source: source.to_string(),
            },
            conf: conf(),
            nested,
        }
    }

    /// Each path of `cases` selects the location labelled as given.
    fn assert_locations(locations: &[Location], cases: &[(&str, &str)]) {
        for (path, want) in cases {
            assert_eq!(
                label(find_location(locations, path.as_bytes())),
                *want,
                "{path}"
            );
        }
    }

    fn label(loc: Option<&Location>) -> String {
        match loc.map(|l| &l.matcher) {
            None => "none".to_string(),
            Some(LocationMatch::Exact(u)) => format!("={u}"),
            Some(LocationMatch::Prefix {
                uri,
                stop_regex: false,
            }) => uri.clone(),
            Some(LocationMatch::Prefix {
                uri,
                stop_regex: true,
            }) => format!("^~{uri}"),
            Some(LocationMatch::Regex { source, .. }) => format!("~{source}"),
        }
    }

    #[test]
    fn location_order_matches_nginx() {
        // The example of nginx's documentation, plus more.
        let locations = vec![
            exact("/"),
            prefix("/", vec![]),
            prefix("/documents/", vec![]),
            stop("/images/", vec![]),
            re("\\.(gif|jpg|jpeg)$", true, vec![]),
            prefix("/documents/deep/", vec![]),
            re("^/documents/.*\\.txt$", false, vec![]),
            re("^/documents/", false, vec![]),
            exact("/exact"),
        ];
        let cases = [
            ("/", "=/"),
            ("/index.html", "/"),
            ("/documents/document.html", "~^/documents/"),
            ("/documents/a.txt", "~^/documents/.*\\.txt$"),
            ("/documents/deep/x", "~^/documents/"),
            ("/images/1.gif", "^~/images/"),
            ("/documents/1.JPG", "~\\.(gif|jpg|jpeg)$"),
            ("/exact", "=/exact"),
            ("/exact/more", "/"),
            ("/exac", "/"),
        ];
        assert_locations(&locations, &cases);
    }

    #[test]
    fn longest_prefix_is_used_when_no_regex_matches() {
        let locations = vec![
            prefix("/a", vec![]),
            prefix("/a/b", vec![]),
            prefix("/a/bc", vec![]),
            re("\\.php$", false, vec![]),
        ];
        let cases = [
            ("/a", "/a"),
            ("/a/b", "/a/b"),
            ("/a/bcd", "/a/bc"),
            ("/a/b/c", "/a/b"),
            ("/ab", "/a"),
            ("/b", "none"),
            ("/b/x.php", "~\\.php$"),
        ];
        assert_locations(&locations, &cases);
    }

    #[test]
    fn nested_locations_are_searched_like_nginx() {
        let locations = vec![
            prefix(
                "/app/",
                vec![
                    exact("/app/health"),
                    prefix("/app/static/", vec![]),
                    stop("/app/raw/", vec![]),
                    re("\\.json$", false, vec![]),
                ],
            ),
            re("\\.(json|php)$", false, vec![]),
            stop("/fixed/", vec![re("\\.php$", false, vec![])]),
            re("^/r/", false, vec![prefix("/r/in/", vec![])]),
        ];
        let cases = [
            ("/app/x", "/app/"),
            ("/app/health", "=/app/health"),
            ("/app/static/a.css", "/app/static/"),
            // The nested regex runs before the outer one.
            ("/app/a.json", "~\\.json$"),
            ("/app/a.php", "~\\.(json|php)$"),
            // A nested ^~ stops the nested regexes, not the outer ones.
            ("/app/raw/a.json", "~\\.(json|php)$"),
            ("/app/raw/a.txt", "^~/app/raw/"),
            // An outer ^~ stops the outer regexes, its nested ones still run.
            ("/fixed/a.json", "^~/fixed/"),
            ("/fixed/a.php", "~\\.php$"),
            // Inside a regex location, nested locations refine the match.
            ("/r/in/x", "/r/in/"),
            ("/r/out", "~^/r/"),
        ];
        assert_locations(&locations, &cases);
    }

    fn proxied(mut loc: Location) -> Location {
        let mut c = (*loc.conf).clone();
        c.proxy_pass = Some(crate::config::ProxyPass {
            upstream: 0,
            proxy_host: "app".into(),
            uri: None,
            vars: None,
            https: false,
        });
        loc.conf = Arc::new(c);
        loc
    }

    fn lookup_label(locations: &[Location], path: &str) -> String {
        match lookup_location(locations, path.as_bytes()) {
            Lookup::Location(loc) => label(Some(loc)),
            Lookup::AddSlash(loc) => format!("301 {}", label(Some(loc))),
            Lookup::NoMatch => "none".into(),
        }
    }

    #[test]
    fn proxied_locations_ending_in_slash_redirect_the_bare_name() {
        let locations = vec![
            prefix("/", vec![]),
            proxied(prefix("/static/", vec![])),
            prefix("/plain/", vec![]),
            proxied(prefix("/both/", vec![])),
            prefix("/both", vec![]),
            proxied(stop("/stop/", vec![])),
            re("^/stop$", false, vec![]),
            proxied(exact("/ex/")),
            prefix("/outer/", vec![proxied(prefix("/outer/in/", vec![]))]),
        ];
        let cases = [
            ("/static", "301 /static/"),
            ("/static/", "/static/"),
            ("/static/x", "/static/"),
            ("/stati", "/"),
            // Not proxied: no redirect.
            ("/plain", "/"),
            // A location named like the path wins.
            ("/both", "/both"),
            // Regexes are not consulted.
            ("/stop", "301 ^~/stop/"),
            ("/ex", "301 =/ex/"),
            ("/outer/in", "301 /outer/in/"),
        ];
        for (path, want) in cases {
            assert_eq!(lookup_label(&locations, path), want, "{path}");
        }
        // find_location ignores the redirect: plain longest-prefix rules.
        assert_eq!(label(find_location(&locations, b"/static")), "/");
        assert_eq!(label(find_location(&locations, b"/stop")), "~^/stop$");
    }

    #[test]
    fn regexes_see_invalid_utf8_paths_lossily_without_panicking() {
        let locations = vec![prefix("/", vec![]), re("^/x", false, vec![])];
        assert_eq!(label(find_location(&locations, b"/x\xff")), "~^/x");
        assert_eq!(label(find_location(&locations, b"/\xff")), "/");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod from_config_text {
    use super::*;
    use crate::proxy::uri;

    const CONF: &str = r#"
events { worker_connections 64; }
http {
    upstream app { server 127.0.0.1:9001; }
    server {
        listen 127.0.0.1:8080;
        server_name first.test;
        location / { proxy_pass http://app; }
    }
    server {
        listen 127.0.0.1:8080 default_server;
        server_name *.example.com www.example.* ~^api\d+\.test$;
        location = /exact { proxy_pass http://app/other; }
        location /test_x { proxy_pass http://app/; }
        location ^~ /static/ { proxy_pass http://app/files/; }
        location ~* \.PHP$ { proxy_pass http://app; }
        location /outer/ {
            location /outer/inner/ { proxy_pass http://app/in/; }
            location ~ \.json$ { proxy_pass http://app; }
        }
    }
}
"#;

    /// Per-request cost of the pure routing path (Host normalization, server choice,
    /// path normalization, location search, URI mapping). Run with
    /// `cargo test --release --lib route_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run by hand in release mode"]
    fn route_cost() {
        let (config, _) = crate::config::load_str(CONF, std::path::Path::new("/t/nginx.conf"))
            .unwrap_or_else(|e| panic!("{e}"));
        let router = Router::new(&config);
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let cases: &[(&[u8], &str)] = &[
            (b"first.test", "/a/b/c?x=1"),
            (b"www.example.com:8080", "/test_x/y?z=1"),
            (b"Api12.test", "/outer/inner/deep/path/file.json"),
            (b"unknown.test", "/static/img/logo.png"),
        ];
        for (host, target) in cases {
            let rounds = 200_000u32;
            let start = std::time::Instant::now();
            let mut mapped_len = 0usize;
            for _ in 0..rounds {
                let routed = router
                    .server(local, Some(std::hint::black_box(host)))
                    .unwrap();
                let (raw, _) = uri::split_query(target);
                let path = uri::normalize_path(raw.as_bytes()).unwrap();
                let loc = find_location(&routed.server.locations, &path).unwrap();
                let pass = loc.conf.proxy_pass.as_ref().unwrap();
                mapped_len +=
                    uri::upstream_uri(target, &path, &loc.matcher, pass.uri.as_deref()).len();
            }
            let ns = start.elapsed().as_nanos() / u128::from(rounds);
            assert!(mapped_len >= rounds as usize);
            println!(
                "{:>22} {:<36} {ns} ns/request",
                String::from_utf8_lossy(host),
                target
            );
        }
    }

    /// (Host, target) -> (server line with `server_name`, upstream target).
    #[test]
    fn requests_route_and_map_as_nginx_from_config_text() {
        let (config, _) = crate::config::load_str(CONF, std::path::Path::new("/t/nginx.conf"))
            .unwrap_or_else(|e| panic!("{e}"));
        let router = Router::new(&config);
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let cases: &[(Option<&str>, &str, &str, Option<&str>)] = &[
            (Some("first.test"), "/a?b=1", "first.test", Some("/a?b=1")),
            (
                Some("x.example.com"),
                "/exact?q",
                "*.example.com",
                Some("/other?q"),
            ),
            (
                Some("www.example.org"),
                "/test_x",
                "*.example.com",
                Some("/"),
            ),
            (
                Some("api7.test"),
                "/test_x/y?z=1",
                "*.example.com",
                Some("//y?z=1"),
            ),
            (
                Some("other.test"),
                "/static/a.php",
                "*.example.com",
                Some("/files/a.php"),
            ),
            (
                None,
                "/x/INDEX.php?a",
                "*.example.com",
                Some("/x/INDEX.php?a"),
            ),
            (None, "/outer/inner/x", "*.example.com", Some("/in/x")),
            (
                None,
                "/outer/a.json",
                "*.example.com",
                Some("/outer/a.json"),
            ),
            (None, "/nowhere", "*.example.com", None),
        ];
        for (host, target, server, mapped) in cases {
            let routed = router.server(local, host.map(str::as_bytes)).unwrap();
            let first_name = match routed.server.names.first() {
                Some(ServerName::Exact(n)) => n.clone(),
                Some(ServerName::LeadingWildcard { suffix, .. }) => format!("*{suffix}"),
                other => format!("{other:?}"),
            };
            assert_eq!(first_name, *server, "{host:?} {target}");
            let (raw, _) = uri::split_query(target);
            let path = uri::normalize_path(raw.as_bytes()).unwrap();
            let location = find_location(&routed.server.locations, &path);
            let got = location.and_then(|loc| {
                let pass = loc.conf.proxy_pass.as_ref()?;
                Some(
                    uri::upstream_uri(target, &path, &loc.matcher, pass.uri.as_deref())
                        .into_owned(),
                )
            });
            assert_eq!(got.as_deref(), *mapped, "{host:?} {target}");
        }
    }
}
