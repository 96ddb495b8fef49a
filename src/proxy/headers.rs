//! Header edits between client and backend, each a small function over
//! [`http::HeaderMap`].
//!
//! Request side: [`eval_set_headers`] evaluates the `proxy_set_header` list against
//! the request (while the client headers are still borrowed), then
//! [`to_upstream_request`] turns the client's headers, in place, into the headers
//! sent upstream: hop-by-hop headers out, `Host: $proxy_host` unless set, the
//! evaluated values applied (an empty value removes the header), the `Connection`
//! header chosen by the engine ([`UpstreamConnection`]).
//! Response side: [`left_out_of_response`] keeps hop-by-hop headers and the hidden
//! ones (nginx's default `proxy_hide_header` list plus the configured ones, minus
//! `proxy_pass_header`) out of the response while its head is parsed, so they
//! never enter a map; [`filter_response`] does the same to a map, and edits a
//! `101`'s `Connection` and `Upgrade`. No header value is ever built from bytes containing CR, LF
//! or NUL: [`HeaderValue::from_bytes`] rejects them and the header is dropped.

use http::header::{self, HeaderName, HeaderValue};
use http::HeaderMap;

use crate::config::Template;
use crate::http1::fields::{connection_tokens, ConnectionToken};
use crate::http1::names::SpelledName;
use crate::http1::response::LineKind;
use crate::vars::{self, RequestVars, Style};

/// Hop-by-hop headers (RFC 9110 7.6.1 plus the legacy ones), never forwarded.
pub static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    // An h2c upgrade's settings (RFC 9113 3.2.1 of RFC 7540): never forwarded.
    HeaderName::from_static("http2-settings"),
];

/// Response headers nginx hides by default (`proxy_hide_header` defaults of
/// ngx_http_proxy_module): the proxy sends its own `Date` and `Server`.
pub static DEFAULT_HIDDEN: [HeaderName; 8] = [
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
///
/// One pass over the headers present finds what to remove (usually nothing but
/// `Connection`), instead of one hashed lookup per hop-by-hop name.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    remove_matching(headers, |name, named| hop_by_hop(name, named, keep_upgrade));
}

/// True for a hop-by-hop header: one of [`HOP_BY_HOP`] or one the message's
/// `Connection` header names (`named`); with `keep_upgrade`, never `Upgrade`.
fn hop_by_hop(name: &HeaderName, named: bool, keep_upgrade: bool) -> bool {
    !(keep_upgrade && name == header::UPGRADE) && (named || HOP_BY_HOP.iter().any(|h| h == name))
}

/// Removes every header whose name `drop(name, named_in_connection)` selects, in
/// one pass over the names present. The names a `Connection` header lists are
/// hop-by-hop too (RFC 9110 7.6.1); the options every message carries
/// (`keep-alive`, `close`, `upgrade`) name headers that are hop-by-hop anyway or
/// no header at all, so the common `Connection: keep-alive` costs no lookups.
/// The names to remove are gathered first (on the stack for up to 16) because a
/// `HeaderMap` cannot be edited while it is iterated.
fn remove_matching(headers: &mut HeaderMap, drop: impl Fn(&HeaderName, bool) -> bool) {
    let mut listed: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        for token in connection_tokens(value.as_bytes()) {
            if let ConnectionToken::Named(token) = token {
                if let Ok(name) = HeaderName::from_bytes(token) {
                    listed.push(name);
                }
            }
        }
    }
    let mut found: [Option<HeaderName>; 16] = Default::default();
    let mut extra: Vec<HeaderName> = Vec::new();
    let mut count = 0;
    for name in headers.keys() {
        let named = listed.contains(name);
        if !drop(name, named) {
            continue;
        }
        match found.get_mut(count) {
            Some(slot) => *slot = Some(name.clone()),
            None => extra.push(name.clone()),
        }
        count += 1;
    }
    for name in found.iter().flatten().chain(extra.iter()) {
        headers.remove(name);
    }
}

/// True when the request asks for an upgrade the proxy tunnels
/// (`Connection: upgrade` with `Upgrade: websocket`). Any other protocol
/// (`h2c` above all: a tunnel would bypass every location rule) is not
/// forwarded as an upgrade, and a `101` to it gets 502.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|v| tunnelled_protocol(v.as_bytes()))
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|value| connection_tokens(value.as_bytes()).any(|t| t == ConnectionToken::Upgrade))
}

/// Whether an `Upgrade` value names a protocol the proxy tunnels: WebSocket
/// (`websocket`, any case, with or without a version), as the first offer.
pub fn tunnelled_protocol(value: &[u8]) -> bool {
    let first = value.split(|&b| b == b',').next().unwrap_or_default();
    let name = first.split(|&b| b == b'/').next().unwrap_or_default();
    name.trim_ascii().eq_ignore_ascii_case(b"websocket")
}

/// Whether an `Upgrade` value offers `h2c` (cleartext HTTP/2).
fn offers_h2c(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|p| p.trim_ascii().eq_ignore_ascii_case(b"h2c"))
}

/// Evaluates the `proxy_set_header` list. Values that evaluate to bytes not allowed
/// in a header value (CR, LF, NUL, other controls) make the header removed. An empty
/// list allocates nothing. (The names' spelling stays in the list:
/// [`configured_name`] gives it to the encoder.)
pub fn eval_set_headers(set: &[(SpelledName, Template)], vars: &RequestVars<'_>) -> SetHeaders {
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
        out.push((name.name().clone(), value));
    }
    out
}

/// How the `proxy_set_header` list `set` writes `name` (`X-Real-IP`), if it
/// names it: the spelling a value the proxy set goes out with.
pub fn configured_name<'a>(
    set: &'a [(SpelledName, Template)],
    name: &HeaderName,
) -> Option<&'a [u8]> {
    set.iter()
        .find(|(spelled, _)| spelled.name() == name)
        .map(|(spelled, _)| spelled.as_bytes())
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
    to_upstream_request_with_host(
        headers,
        set,
        HeaderValue::from_str(proxy_host).ok(),
        connection,
    );
}

/// [`to_upstream_request`] with the `Host` value prepared once (e.g. per location at
/// start-up: cloning a [`HeaderValue`] does not copy the bytes). `None` sends no
/// Host unless `set` names one.
pub fn to_upstream_request_with_host(
    headers: &mut HeaderMap,
    set: SetHeaders,
    proxy_host: Option<HeaderValue>,
    connection: UpstreamConnection,
) {
    let upgrade = connection == UpstreamConnection::Upgrade;
    remove_hop_by_hop(headers, upgrade);
    headers.remove(header::EXPECT);
    match proxy_host {
        Some(host) => {
            headers.insert(header::HOST, host);
        }
        None => {
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
    let mut sets_upgrade = false;
    for (name, value) in set {
        sets_upgrade |= name == header::UPGRADE;
        match value {
            Some(value) => {
                headers.insert(name, value);
            }
            None => {
                headers.remove(name);
            }
        }
    }
    // An h2c upgrade never reaches a backend, not even through
    // `proxy_set_header Upgrade $http_upgrade` (otherwise `Upgrade` is
    // hop-by-hop and only a WebSocket one is left in).
    if sets_upgrade
        && headers
            .get(header::UPGRADE)
            .is_some_and(|v| offers_h2c(v.as_bytes()))
    {
        headers.remove(header::UPGRADE);
    }
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
    let had_connection = headers.contains_key(header::CONNECTION);
    remove_matching(headers, |name, named| {
        hop_by_hop(name, named, upgrade) || is_hidden(name, hide, pass)
    });
    if upgrade && had_connection {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Whether a line of the backend's response head stays out of the response
/// (decided as the head is parsed, see [`crate::http1::response::build_response_head`]):
/// a hidden header ([`is_hidden`]) always; a hop-by-hop one, or one the
/// `Connection` header names, unless the response switches protocols. A `101`
/// keeps those for [`filter_response`], which keeps `Upgrade` and says
/// `Connection: upgrade`.
pub fn left_out_of_response(
    name: &HeaderName,
    kind: LineKind,
    hide: &[HeaderName],
    pass: &[HeaderName],
) -> bool {
    is_hidden(name, hide, pass)
        || (!kind.switching && hop_by_hop(name, kind.named_in_connection, false))
}

/// True for a response header the client never sees: one of nginx's default
/// hidden headers not re-allowed by `pass` (`proxy_pass_header`), or one named
/// by `hide` (`proxy_hide_header`).
pub fn is_hidden(name: &HeaderName, hide: &[HeaderName], pass: &[HeaderName]) -> bool {
    (DEFAULT_HIDDEN.iter().any(|h| h == name) && !pass.contains(name)) || hide.contains(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Part, Variable};
    use crate::vars::tests::{headers, vars};
    use http::Method;

    fn names(map: &HeaderMap) -> Vec<String> {
        let mut v: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{}: {}", k, v.to_str().unwrap_or("<bin>")))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (
                &[
                    ("connection", "keep-alive, X-Secret"),
                    ("x-secret", "1"),
                    ("keep-alive", "timeout=5"),
                    ("proxy-connection", "keep-alive"),
                    ("te", "trailers"),
                    ("trailer", "x"),
                    ("transfer-encoding", "chunked"),
                    ("upgrade", "websocket"),
                    ("x-kept", "yes"),
                ],
                false,
                &["x-kept: yes"],
            ),
            (
                &[
                    ("connection", "Upgrade"),
                    ("upgrade", "websocket"),
                    ("sec-websocket-key", "k"),
                ],
                true,
                &["sec-websocket-key: k", "upgrade: websocket"],
            ),
            (
                &[("connection", ",, bad header name ,"), ("x-a", "1")],
                false,
                &["x-a: 1"],
            ),
        ];
        for (input, keep_upgrade, want) in cases {
            let mut map = headers(input);
            remove_hop_by_hop(&mut map, *keep_upgrade);
            assert_eq!(names(&map), *want, "{input:?}");
        }
    }

    #[test]
    fn many_connection_tokens_are_all_removed() {
        let list: Vec<String> = (0..20).map(|i| format!("x-h{i}")).collect();
        let joined = list.join(",");
        let mut pairs: Vec<(&str, &str)> = list.iter().map(|n| (n.as_str(), "v")).collect();
        pairs.push(("connection", &joined));
        pairs.push(("x-stay", "1"));
        let mut map = headers(&pairs);
        remove_hop_by_hop(&mut map, false);
        assert_eq!(names(&map), ["x-stay: 1"]);
    }

    #[test]
    fn h2c_upgrades_never_reach_the_backend() {
        for set_upgrade in [false, true] {
            let mut map = headers(&[
                ("connection", "Upgrade, HTTP2-Settings"),
                ("upgrade", "h2c"),
                ("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"),
                ("x-keep", "1"),
            ]);
            // As `proxy_set_header Upgrade $http_upgrade` would.
            let set = if set_upgrade {
                vec![(header::UPGRADE, Some(HeaderValue::from_static("h2c")))]
            } else {
                Vec::new()
            };
            let mode = if wants_upgrade(&map) {
                UpstreamConnection::Upgrade
            } else {
                UpstreamConnection::KeepAlive
            };
            assert_eq!(mode, UpstreamConnection::KeepAlive);
            to_upstream_request_with_host(&mut map, set, None, mode);
            assert_eq!(names(&map), ["x-keep: 1"], "set Upgrade: {set_upgrade}");
        }
    }

    #[test]
    fn upgrade_detection_table() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("connection", "Upgrade"), ("upgrade", "websocket")], true),
            (
                &[
                    ("connection", "keep-alive, upgrade"),
                    ("upgrade", "WebSocket/13"),
                ],
                true,
            ),
            // Issue 14, item 12: only WebSocket is tunnelled; h2c never.
            (
                &[("connection", "keep-alive, upgrade"), ("upgrade", "h2c")],
                false,
            ),
            (
                &[
                    ("connection", "upgrade, http2-settings"),
                    ("upgrade", "h2c, websocket"),
                ],
                false,
            ),
            (&[("connection", "upgrade"), ("upgrade", "TLS/1.2")], false),
            (&[("connection", "upgrade")], false),
            (&[("upgrade", "websocket")], false),
            (&[("connection", "close"), ("upgrade", "websocket")], false),
        ];
        for (input, want) in cases {
            assert_eq!(wants_upgrade(&headers(input)), *want, "{input:?}");
        }
    }

    fn template(parts: Vec<Part>) -> Template {
        Template {
            source: String::new(),
            parts,
        }
    }

    fn upstream(
        client: &[(&str, &str)],
        set: &[(&str, Template)],
        connection: UpstreamConnection,
    ) -> Vec<String> {
        let mut map = headers(client);
        let m = Method::GET;
        let set: Vec<(SpelledName, Template)> = set
            .iter()
            .map(|(n, t)| {
                let name = HeaderName::from_bytes(n.as_bytes()).unwrap();
                (SpelledName::new(name, n), t.clone())
            })
            .collect();
        let evaluated = {
            let v = vars(&map, &m);
            eval_set_headers(&set, &v)
        };
        to_upstream_request(&mut map, evaluated, "backend:8080", connection);
        names(&map)
    }

    #[test]
    fn upstream_request_headers_follow_nginx() {
        let lit = |s: &str| template(vec![Part::Literal(s.into())]);
        let var = |v: Variable| template(vec![Part::Var(v)]);
        let client: &[(&str, &str)] = &[
            ("host", "example.com"),
            ("connection", "keep-alive"),
            ("keep-alive", "300"),
            ("expect", "100-continue"),
            ("user-agent", "curl"),
            ("content-length", "5"),
            ("x-forwarded-for", "10.0.0.1"),
        ];
        let base = [
            "content-length: 5",
            "host: backend:8080",
            "user-agent: curl",
            "x-forwarded-for: 10.0.0.1",
        ];
        // Keep-alive: no Connection header, Host is $proxy_host.
        assert_eq!(upstream(client, &[], UpstreamConnection::KeepAlive), base);
        // Close.
        let mut want: Vec<&str> = base.to_vec();
        want.insert(0, "connection: close");
        assert_eq!(upstream(client, &[], UpstreamConnection::Close), want);
        // proxy_set_header: Host $host, XFF, a literal, an empty value removes.
        let set = [
            ("host", var(Variable::Host)),
            ("x-forwarded-for", var(Variable::ProxyAddXForwardedFor)),
            ("x-real-ip", var(Variable::RemoteAddr)),
            ("user-agent", lit("")),
            ("x-absent", var(Variable::Http("nope".into()))),
            ("x-static", lit("on")),
        ];
        assert_eq!(
            upstream(client, &set, UpstreamConnection::KeepAlive),
            [
                "content-length: 5",
                "host: example.com",
                "x-forwarded-for: 10.0.0.1, 192.0.2.7",
                "x-real-ip: 192.0.2.7",
                "x-static: on",
            ]
        );
        // Upgrade keeps Upgrade and says Connection: upgrade.
        let ws: &[(&str, &str)] = &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
        ];
        assert_eq!(
            upstream(ws, &[], UpstreamConnection::Upgrade),
            [
                "connection: upgrade",
                "host: backend:8080",
                "sec-websocket-version: 13",
                "upgrade: websocket",
            ]
        );
        // The usual WebSocket config sets both explicitly.
        let set = [
            ("upgrade", var(Variable::Http("upgrade".into()))),
            ("connection", lit("upgrade")),
        ];
        assert_eq!(
            upstream(ws, &set, UpstreamConnection::Close),
            [
                "connection: upgrade",
                "host: backend:8080",
                "sec-websocket-version: 13",
                "upgrade: websocket",
            ]
        );
    }

    #[test]
    fn set_header_values_with_control_bytes_are_dropped() {
        // $uri is decoded: %0D%0A must never reach a header.
        let h = headers(&[]);
        let m = Method::GET;
        let mut v = vars(&h, &m);
        v.path = b"/a\r\nInjected: 1";
        let set = vec![(
            SpelledName::new(HeaderName::from_static("x-uri"), "X-Uri"),
            template(vec![Part::Var(Variable::Uri)]),
        )];
        assert_eq!(
            eval_set_headers(&set, &v),
            vec![(HeaderName::from_static("x-uri"), None)]
        );
    }

    #[test]
    fn response_headers_are_filtered_like_nginx() {
        let backend: &[(&str, &str)] = &[
            ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("server", "backend/1.0"),
            ("x-pad", "avoid browser bug"),
            ("x-accel-redirect", "/internal"),
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-powered-by", "php"),
            ("set-cookie", "a=1"),
            ("content-type", "text/plain"),
        ];
        let h = |n: &str| HeaderName::from_bytes(n.as_bytes()).unwrap();
        type Case<'a> = (Vec<HeaderName>, Vec<HeaderName>, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                vec![],
                vec![],
                vec![
                    "content-type: text/plain",
                    "set-cookie: a=1",
                    "x-powered-by: php",
                ],
            ),
            (
                vec![h("x-powered-by")],
                vec![],
                vec!["content-type: text/plain", "set-cookie: a=1"],
            ),
            (
                vec![],
                vec![h("server"), h("date"), h("connection")],
                vec![
                    "content-type: text/plain",
                    "date: Mon, 01 Jan 2024 00:00:00 GMT",
                    "server: backend/1.0",
                    "set-cookie: a=1",
                    "x-powered-by: php",
                ],
            ),
        ];
        for (hide, pass, want) in cases {
            let mut map = headers(backend);
            filter_response(&mut map, &hide, &pass, false);
            assert_eq!(names(&map), want, "hide {hide:?} pass {pass:?}");
        }
    }

    #[test]
    fn switching_protocols_response_keeps_upgrade() {
        let mut map = headers(&[
            ("connection", "Upgrade, X-Hop"),
            ("x-hop", "1"),
            ("upgrade", "websocket"),
            ("sec-websocket-accept", "x"),
            ("server", "b"),
        ]);
        filter_response(&mut map, &[], &[], true);
        assert_eq!(
            names(&map),
            [
                "connection: upgrade",
                "sec-websocket-accept: x",
                "upgrade: websocket"
            ]
        );
    }

    /// The response headers the client gets are the same whether the lines
    /// are left out while the head is parsed (`left_out_of_response`, then
    /// `filter_response` for a 101 only, as the proxy does) or all parsed and
    /// then filtered.
    #[test]
    fn leaving_lines_out_while_parsing_equals_filtering_afterwards() {
        use crate::http1::response as h1;
        // (head, whether the kept lines stay in the backend's order)
        let heads = [
            (
                "HTTP/1.1 200 OK\r\nServer: b\r\nDate: d\r\nContent-Length: 2\r\n\
                 Connection: keep-alive\r\nContent-Type: text/plain\r\n\r\n",
                true,
            ),
            // Named in Connection: removed after, the rest may move.
            (
                "HTTP/1.1 200 OK\r\nX-Early: 1\r\nConnection: close, X-Early, x-late\r\n\
                 X-Late: 2\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\
                 Trailer: x\r\nProxy-Connection: x\r\nTE: trailers\r\nUpgrade: h2c\r\n\
                 X-Kept: 3\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 302 Found\r\nSet-Cookie: a=1\r\nX-Accel-Redirect: /x\r\n\
                 X-Pad: p\r\nX-Powered-By: php\r\nSet-Cookie: b=2\r\nConnection: ,, bad name ,\r\n\
                 Content-Length: 0\r\n\r\n",
                true,
            ),
            // A 101: the filter edits Connection and Upgrade.
            (
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade, X-Hop\r\nX-Hop: 1\r\n\
                 Upgrade: websocket\r\nSec-WebSocket-Accept: x\r\nServer: b\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\n\
                 Content-Length: 0\r\n\r\n",
                true,
            ),
        ];
        let hides: [&[HeaderName]; 2] = [&[], &[HeaderName::from_static("x-powered-by")]];
        let passes: [&[HeaderName]; 2] = [&[], &[header::SERVER, HeaderName::from_static("x-pad")]];
        for (text, in_order) in heads {
            let bytes = bytes::Bytes::from(text);
            let layout = h1::locate_response_head(&bytes).unwrap().unwrap();
            for (hide, pass) in hides
                .iter()
                .flat_map(|h| passes.iter().map(move |p| (*h, *p)))
            {
                let mut all =
                    h1::build_response_head(&bytes, &layout, false, |_, _| false).unwrap();
                let switching = all.status == http::StatusCode::SWITCHING_PROTOCOLS;
                filter_response(&mut all.headers, hide, pass, switching);
                let mut early = h1::build_response_head(&bytes, &layout, false, |n, kind| {
                    left_out_of_response(n, kind, hide, pass)
                })
                .unwrap();
                if switching {
                    filter_response(&mut early.headers, hide, pass, true);
                }
                // The same lines (a removal from a map may reorder the rest) ...
                let text_of = |map: &HeaderMap| -> Vec<(String, Vec<u8>)> {
                    map.iter()
                        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                        .collect()
                };
                let mut all_lines = text_of(&all.headers);
                let mut sorted = text_of(&early.headers);
                all_lines.sort();
                sorted.sort();
                assert_eq!(sorted, all_lines, "{text:?} hide {hide:?} pass {pass:?}");
                // ... and, left out early, in the backend's order.
                let lower = text.to_ascii_lowercase();
                // (A map lists all values of a name at its first line.)
                let order: Vec<usize> = early
                    .headers
                    .keys()
                    .filter_map(|n| lower.find(&format!("\n{n}:")))
                    .collect();
                assert!(
                    !in_order || order.is_sorted(),
                    "{text:?}: {:?}",
                    early.headers
                );
                assert_eq!(
                    (early.framing, early.keep_alive),
                    (all.framing, all.keep_alive),
                    "{text:?}"
                );
            }
        }
    }
}
