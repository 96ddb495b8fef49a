//! Header edits between client and backend, each a small function over
//! [`http::HeaderMap`].
//!
//! Request side: [`eval_set_headers`] evaluates the `proxy_set_header` list against
//! the request (while the client headers are still borrowed), then
//! [`to_upstream_request`] turns the client's headers, in place, into the headers
//! sent upstream: hop-by-hop headers out, `Host: $proxy_host` unless set, the
//! evaluated values applied (an empty value removes the header), the `Connection`
//! header chosen by the engine ([`UpstreamConnection`]).
//! Response side: [`filter_response`] removes hop-by-hop headers and the hidden ones
//! (nginx's default `proxy_hide_header` list plus the configured ones, minus
//! `proxy_pass_header`). No header value is ever built from bytes containing CR, LF
//! or NUL: [`HeaderValue::from_bytes`] rejects them and the header is dropped.

use std::net::IpAddr;

use http::header::{self, HeaderName, HeaderValue};
use http::HeaderMap;

use crate::config::Template;
use crate::proxy::vars::{self, RequestVars, Style};

/// Hop-by-hop headers (RFC 9110 7.6.1 plus the legacy ones), never forwarded.
pub const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Response headers nginx hides by default (`proxy_hide_header` defaults of
/// ngx_http_proxy_module): the proxy sends its own `Date` and `Server`.
pub const DEFAULT_HIDDEN: [HeaderName; 8] = [
    header::DATE,
    header::SERVER,
    HeaderName::from_static("x-pad"),
    HeaderName::from_static("x-accel-expires"),
    HeaderName::from_static("x-accel-redirect"),
    HeaderName::from_static("x-accel-limit-rate"),
    HeaderName::from_static("x-accel-buffering"),
    HeaderName::from_static("x-accel-charset"),
];

/// What the `Connection` header to the backend says (decided by the engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamConnection {
    /// HTTP/1.1 persistent connection: no `Connection` header.
    KeepAlive,
    /// `Connection: close` (nginx's default without `keepalive`).
    Close,
    /// The client asked for a protocol upgrade: `Connection: upgrade` and the
    /// client's `Upgrade` header kept.
    Upgrade,
}

/// The evaluated `proxy_set_header` list: `None` removes the header.
pub type SetHeaders = Vec<(HeaderName, Option<HeaderValue>)>;

/// Removes hop-by-hop headers and the headers named in `Connection`. With
/// `keep_upgrade` the `Upgrade` header survives (tunnelling an upgrade).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Headers named in Connection first (it is removed below).
    let mut named: [Option<HeaderName>; 8] = Default::default();
    let mut extra: Vec<HeaderName> = Vec::new();
    let mut count = 0;
    for value in headers.get_all(header::CONNECTION) {
        for token in value.as_bytes().split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.is_empty() {
                continue;
            }
            let Ok(name) = HeaderName::from_bytes(token) else {
                continue;
            };
            if keep_upgrade && name == header::UPGRADE {
                continue;
            }
            match named.get_mut(count) {
                Some(slot) => *slot = Some(name),
                None => extra.push(name),
            }
            count += 1;
        }
    }
    for name in named.iter().flatten().chain(extra.iter()) {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        if keep_upgrade && name == header::UPGRADE {
            continue;
        }
        headers.remove(name);
    }
}

/// True when the request asks for a protocol upgrade (`Connection: upgrade` with an
/// `Upgrade` header), as for WebSocket.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has(headers, "upgrade")
}

/// True when a `Connection` header lists `token` (case-insensitive).
pub fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Evaluates the `proxy_set_header` list. Values that evaluate to bytes not allowed
/// in a header value (CR, LF, NUL, other controls) make the header removed. An empty
/// list allocates nothing.
pub fn eval_set_headers(set: &[(HeaderName, Template)], vars: &RequestVars<'_>) -> SetHeaders {
    let mut out = Vec::with_capacity(set.len());
    let mut buf = Vec::new();
    for (name, template) in set {
        buf.clear();
        vars::eval(template, vars, Style::Plain, &mut buf);
        let value = if buf.is_empty() {
            None
        } else {
            HeaderValue::from_bytes(&buf).ok()
        };
        out.push((name.clone(), value));
    }
    out
}

/// Turns the client's request headers, in place, into the headers for the backend:
/// hop-by-hop and `Expect` removed, `Host: proxy_host` (unless `set` names Host), the
/// `Connection` header per `connection`, then every `set` entry applied (replacing the
/// client's value; `None` removes). `Content-Length` is left as the client sent it.
pub fn to_upstream_request(
    headers: &mut HeaderMap,
    set: SetHeaders,
    proxy_host: &str,
    connection: UpstreamConnection,
) {
    let upgrade = connection == UpstreamConnection::Upgrade;
    remove_hop_by_hop(headers, upgrade);
    headers.remove(header::EXPECT);
    match HeaderValue::from_str(proxy_host) {
        Ok(host) => {
            headers.insert(header::HOST, host);
        }
        Err(_) => {
            headers.remove(header::HOST);
        }
    }
    match connection {
        UpstreamConnection::KeepAlive => {}
        UpstreamConnection::Close => {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        UpstreamConnection::Upgrade => {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
    for (name, value) in set {
        match value {
            Some(value) => {
                headers.insert(name, value);
            }
            None => {
                headers.remove(name);
            }
        }
    }
}

/// `$proxy_add_x_forwarded_for`: the client's `X-Forwarded-For` values joined with
/// `, `, then `, ` and the client address; just the address when there were none.
pub fn x_forwarded_for(headers: &HeaderMap, remote: IpAddr, out: &mut Vec<u8>) {
    for value in headers.get_all("x-forwarded-for") {
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b", ");
    }
    vars::ip_text(remote, out);
}

/// Filters the backend's response headers in place: hop-by-hop headers out (with
/// `upgrade`, a 101 switching protocols, `Upgrade` and `Connection` stay), nginx's
/// default hidden headers unless re-allowed by `pass`, and every `hide` header.
pub fn filter_response(
    headers: &mut HeaderMap,
    hide: &[HeaderName],
    pass: &[HeaderName],
    upgrade: bool,
) {
    if upgrade {
        let connection = headers.remove(header::CONNECTION);
        remove_hop_by_hop(headers, true);
        if connection.is_some() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    } else {
        remove_hop_by_hop(headers, false);
    }
    for name in &DEFAULT_HIDDEN {
        if !pass.contains(name) {
            headers.remove(name);
        }
    }
    for name in hide {
        headers.remove(name);
    }
}

/// A header value from untrusted bytes, or `None` when they hold CR, LF, NUL or
/// another byte a header value may not carry.
pub fn checked_value(bytes: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_bytes(bytes).ok()
}
