//! Which `server` and which `location` handle a request, exactly as nginx chooses.
//!
//! [`Router::new`] precomputes, once per configuration, one table per listen address:
//! exact names in a hash map, leading and trailing wildcards sorted longest first,
//! regexes in config order, and the default server. [`Router::server`] then picks the
//! virtual server for a connection's local address and the request's Host:
//! exact name, longest leading wildcard, longest trailing wildcard, first matching
//! regex, else the `default_server` (else the first server on that address). The
//! Host is normalized first by [`normalize_host`] (lowercase, port and trailing dot
//! stripped); an invalid Host is a [`RouteError::InvalidHost`] (400).
//!
//! [`find_location`] runs nginx's location search over a server's locations:
//! an exact `=` match wins at once; otherwise the longest prefix, whose nested
//! locations are searched the same way; a `^~` longest prefix skips the regexes of
//! its level; otherwise the regexes of the level in config order (nested ones first,
//! since the nested search runs first), the first match winning; else the longest
//! prefix. Nothing here allocates per request unless the Host has upper case letters.

use std::borrow::Cow;
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
    exact: HashMap<Box<str>, usize>,
    /// `(suffix with leading dot, dot_form, server)`, longest suffix first.
    leading: Vec<(Box<str>, bool, usize)>,
    /// `(prefix with trailing dot, server)`, longest prefix first.
    trailing: Vec<(Box<str>, usize)>,
    regex: Vec<(regex::Regex, usize)>,
    default: usize,
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
                            exact: HashMap::new(),
                            leading: Vec::new(),
                            trailing: Vec::new(),
                            regex: Vec::new(),
                            default: index,
                        });
                        tables.len() - 1
                    }
                };
                let Some(table) = tables.get_mut(pos) else {
                    continue;
                };
                if table.regex.iter().any(|(_, i)| *i == index)
                    || table.exact.values().any(|i| *i == index)
                    || table.leading.iter().any(|(_, _, i)| *i == index)
                    || table.trailing.iter().any(|(_, i)| *i == index)
                {
                    // Same server listed twice on this address.
                } else {
                    add_names(table, server, index);
                }
                if listen.default_server {
                    table.default = index;
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

/// nginx's Host validation and normalization: lowercase, `:port` stripped (IPv6
/// literals `[...]` kept whole), one trailing dot stripped. Invalid: empty result,
/// `..`, `/`, `\`, NUL, bytes that are not UTF-8. Borrows when no change is needed
/// but removing the port or dot.
pub fn normalize_host(raw: &[u8]) -> Result<Cow<'_, str>, RouteError> {
    let raw = std::str::from_utf8(raw).map_err(|_| RouteError::InvalidHost)?;
    let bytes = raw.as_bytes();
    let mut len = bytes.len();
    let mut literal = false;
    let mut in_port = false;
    let mut prev_dot = false;
    let mut upper = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_port {
            // nginx ignores what follows the host part, but not NUL or slashes.
            if matches!(b, 0 | b'/' | b'\\') {
                return Err(RouteError::InvalidHost);
            }
            continue;
        }
        match b {
            b'.' => {
                if prev_dot {
                    return Err(RouteError::InvalidHost);
                }
                prev_dot = true;
                continue;
            }
            b':' if !literal => {
                len = i;
                in_port = true;
            }
            b'[' if i == 0 => literal = true,
            b']' if literal => {
                len = i + 1;
                in_port = true;
            }
            0 | b'/' | b'\\' => return Err(RouteError::InvalidHost),
            b'A'..=b'Z' => upper = true,
            _ => {}
        }
        prev_dot = false;
    }
    let mut host = raw.get(..len).ok_or(RouteError::InvalidHost)?;
    if let Some(stripped) = host.strip_suffix('.') {
        host = stripped;
    }
    if host.is_empty() {
        return Err(RouteError::InvalidHost);
    }
    Ok(if upper {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// What one level of the search found.
enum Found<'a> {
    /// Final: an exact or regex match (nginx `NGX_OK`).
    Done(&'a Location),
    /// The longest prefix at this level or below (nginx `NGX_AGAIN`).
    Prefix(&'a Location),
    None,
}

/// The location for the normalized path `path` among `locations` (a server's
/// top-level locations), or `None` when none matches (the server's own settings
/// apply).
pub fn find_location<'a>(locations: &'a [Location], path: &[u8]) -> Option<&'a Location> {
    let text = String::from_utf8_lossy(path);
    match search(locations, path, &text) {
        Found::Done(loc) | Found::Prefix(loc) => Some(loc),
        Found::None => None,
    }
}

fn search<'a>(locations: &'a [Location], path: &[u8], text: &str) -> Found<'a> {
    let mut longest: Option<(&'a Location, usize, bool)> = None;
    for loc in locations {
        match &loc.matcher {
            LocationMatch::Exact(uri) => {
                if uri.as_bytes() == path {
                    return Found::Done(loc);
                }
            }
            LocationMatch::Prefix { uri, stop_regex } => {
                let len = uri.len();
                if path.starts_with(uri.as_bytes()) && longest.map_or(true, |(_, l, _)| len > l) {
                    longest = Some((loc, len, *stop_regex));
                }
            }
            LocationMatch::Regex { .. } => {}
        }
    }
    let mut found = Found::None;
    let mut noregex = false;
    if let Some((loc, _, stop)) = longest {
        noregex = stop;
        found = match search(&loc.nested, path, text) {
            Found::Done(inner) => return Found::Done(inner),
            Found::Prefix(inner) => Found::Prefix(inner),
            Found::None => Found::Prefix(loc),
        };
    }
    if !noregex {
        for loc in locations {
            if let LocationMatch::Regex { re, .. } = &loc.matcher {
                if re.is_match(text) {
                    return match search(&loc.nested, path, text) {
                        Found::Done(inner) | Found::Prefix(inner) => Found::Done(inner),
                        Found::None => Found::Done(loc),
                    };
                }
            }
        }
    }
    found
}
