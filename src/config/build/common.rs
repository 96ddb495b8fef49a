//! The directives written into an inheritable layer: those allowed at http,
//! server and location level (`proxy_*`, `client_max_body_size`, `server_tokens`,
//! `access_log`, `log_format`, `session_sticky_hide_cookie`, and the accepted but
//! ignored ones such as `tcp_nodelay`), and the connection-level ones of http and
//! server (`client_*_timeout`, `send_timeout`, `keepalive_*`,
//! `large_client_header_buffers`, `ignore_invalid_headers`,
//! `underscores_in_headers`).

use super::args::{
    arg, directive_err, err, flag, header_name, number, set_once, simple, size, template_arg, time,
};
use super::inherit::{ConnLayer, Layer};
use super::log::log_format;
use super::sticky::hide_cookie_upstream;
use super::{Builder, HttpState, Res};
use crate::config::ast::Directive;
use crate::config::NextUpstream;
use crate::http1::names::SpelledName;

impl Builder {
    /// Directives allowed at http, server and location level. `Ok(false)` when `d`
    /// is not one of them.
    pub(super) fn common(
        &mut self,
        d: &Directive,
        layer: &mut Layer,
        st: &mut HttpState,
    ) -> Res<bool> {
        if self.response_headers(d, layer)?
            || super::errpage::errpage_directive(d, layer)?
            || super::script::script_flag(self, d, layer)?
            || layer.resolver.directive(d)?
        {
            return Ok(true);
        }
        match d.name.as_str() {
            "proxy_set_header" => {
                simple(d, 2, 2)?;
                let name = SpelledName::new(header_name(d, arg(d, 0))?, arg(d, 0));
                let value = arg(d, 1);
                if value.contains(['\r', '\n']) {
                    return Err(err(format!("invalid header value \"{value}\""), d));
                }
                let value = template_arg(d, value)?;
                layer
                    .set_headers
                    .get_or_insert_with(Vec::new)
                    .push((name, value));
            }
            "proxy_hide_header" | "proxy_pass_header" => {
                simple(d, 1, 1)?;
                let name = header_name(d, arg(d, 0))?;
                let list = if d.name == "proxy_hide_header" {
                    &mut layer.hide_headers
                } else {
                    &mut layer.pass_headers
                };
                list.get_or_insert_with(Vec::new).push(name);
            }
            "proxy_http_version" => {
                simple(d, 1, 1)?;
                let v = match arg(d, 0) {
                    "1.0" => http::Version::HTTP_10,
                    "1.1" => http::Version::HTTP_11,
                    other => return Err(err(format!("invalid value \"{other}\""), d)),
                };
                set_once(&mut layer.http_version, v, d)?;
            }
            "proxy_connect_timeout"
            | "proxy_read_timeout"
            | "proxy_send_timeout"
            | "proxy_next_upstream_timeout" => {
                simple(d, 1, 1)?;
                let t = time(d, arg(d, 0))?;
                let slot = match d.name.as_str() {
                    "proxy_connect_timeout" => &mut layer.connect_timeout,
                    "proxy_read_timeout" => &mut layer.read_timeout,
                    "proxy_send_timeout" => &mut layer.send_timeout,
                    _ => &mut layer.next_upstream_timeout,
                };
                set_once(slot, t, d)?;
            }
            "proxy_next_upstream" => {
                simple(d, 1, usize::MAX)?;
                let v = next_upstream(d)?;
                set_once(&mut layer.next_upstream, v, d)?;
            }
            "proxy_next_upstream_tries" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.next_upstream_tries, number(d, arg(d, 0))?, d)?;
            }
            "client_max_body_size" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.client_max_body_size, size(d, arg(d, 0))?, d)?;
            }
            "server_tokens" => {
                simple(d, 1, 1)?;
                let on = match arg(d, 0) {
                    "on" => true,
                    "off" => false,
                    other => return Err(err(format!("invalid value \"{other}\""), d)),
                };
                set_once(&mut layer.server_tokens, on, d)?;
            }
            "chunked_transfer_encoding"
            | "absolute_redirect"
            | "server_name_in_redirect"
            | "port_in_redirect" => {
                simple(d, 1, 1)?;
                let slot = match d.name.as_str() {
                    "absolute_redirect" => &mut layer.absolute_redirect,
                    "server_name_in_redirect" => &mut layer.server_name_in_redirect,
                    "port_in_redirect" => &mut layer.port_in_redirect,
                    _ => &mut layer.chunked_transfer_encoding,
                };
                set_once(slot, flag(d)?, d)?;
            }
            "access_log" => self.access_log(d, layer, st)?,
            "log_format" => log_format(d, st)?,
            "session_sticky_hide_cookie" | "session_sticky_header" => {
                let upstream = hide_cookie_upstream(d, st)?;
                set_once(&mut layer.hide_cookie, upstream, d)?;
            }
            "tcp_nodelay" => {
                simple(d, 1, 1)?;
                flag(d)?;
                self.ignored(d, "client sockets always have TCP_NODELAY");
            }
            "proxy_buffering" => {
                simple(d, 1, 1)?;
                flag(d)?;
                self.ignored(d, "bodies are always streamed");
            }
            "proxy_buffer_size" => {
                simple(d, 1, 1)?;
                size(d, arg(d, 0))?;
                self.ignored(d, "bodies are always streamed");
            }
            "proxy_buffers" => {
                simple(d, 2, 2)?;
                number::<u64>(d, arg(d, 0))?;
                size(d, arg(d, 1))?;
                self.ignored(d, "bodies are always streamed");
            }
            _ => {
                return Ok(self.files_directive(d, &mut layer.files)?
                    || self.compress_directive(d, &mut layer.compress)?
                    || self.access_directive(d, &mut layer.access, st)?
                    || self.proxy_detail_directive(d, &mut layer.details)?
                    || self.proxy_ssl_directive(d, &mut layer.proxy_ssl)?)
            }
        }
        Ok(true)
    }

    /// Connection-level directives (http and server only). `Ok(false)` when `d` is
    /// not one of them.
    pub(super) fn connection(&mut self, d: &Directive, conn: &mut ConnLayer) -> Res<bool> {
        match d.name.as_str() {
            "client_header_timeout" | "client_body_timeout" | "send_timeout" => {
                simple(d, 1, 1)?;
                let t = time(d, arg(d, 0))?;
                let slot = match d.name.as_str() {
                    "client_header_timeout" => &mut conn.client_header_timeout,
                    "client_body_timeout" => &mut conn.client_body_timeout,
                    _ => &mut conn.send_timeout,
                };
                set_once(slot, t, d)?;
            }
            "keepalive_timeout" => {
                let t = self.keepalive_timeout(d)?;
                set_once(&mut conn.keepalive_timeout, t, d)?;
            }
            "keepalive_requests" => {
                simple(d, 1, 1)?;
                set_once(&mut conn.keepalive_requests, number(d, arg(d, 0))?, d)?;
            }
            "large_client_header_buffers" => {
                simple(d, 2, 2)?;
                let n: usize = number(d, arg(d, 0))?;
                let s = size(d, arg(d, 1))?;
                if n == 0 || s == 0 {
                    return Err(directive_err(d, "invalid value"));
                }
                let s = usize::try_from(s).map_err(|_| directive_err(d, "invalid value"))?;
                set_once(&mut conn.large_client_header_buffers, (n, s), d)?;
            }
            "ignore_invalid_headers" | "underscores_in_headers" => {
                simple(d, 1, 1)?;
                let on = flag(d)?;
                let slot = match d.name.as_str() {
                    "ignore_invalid_headers" => &mut conn.ignore_invalid_headers,
                    _ => &mut conn.underscores_in_headers,
                };
                set_once(slot, on, d)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Builder {
    /// The connection-level directives nginx also allows in a location:
    /// `keepalive_timeout TIME [HEADER_TIME]` (the header time is warned of).
    fn keepalive_timeout(&mut self, d: &Directive) -> Res<std::time::Duration> {
        simple(d, 1, 2)?;
        let t = time(d, arg(d, 0))?;
        if let Some(a) = d.args.get(1) {
            time(d, &a.value)?;
            self.warn(
                d,
                "the \"Keep-Alive: timeout=\" header time of \"keepalive_timeout\" is ignored",
            );
        }
        Ok(t)
    }

    /// `client_body_timeout`, `send_timeout`, `keepalive_timeout` and
    /// `keepalive_requests` in a location apply to the location's requests
    /// (as nginx reads them from the location). `Ok(false)` for any other
    /// directive.
    pub(super) fn location_timeouts(&mut self, d: &Directive, layer: &mut Layer) -> Res<bool> {
        match d.name.as_str() {
            "client_body_timeout" | "send_timeout" => {
                simple(d, 1, 1)?;
                let slot = match d.name.as_str() {
                    "client_body_timeout" => &mut layer.client_body_timeout,
                    _ => &mut layer.client_send_timeout,
                };
                set_once(slot, time(d, arg(d, 0))?, d)?;
            }
            "http2_chunk_size" => super::http2::chunk_size_in_location(d)?,
            "keepalive_timeout" => {
                let t = self.keepalive_timeout(d)?;
                set_once(&mut layer.keepalive_timeout, t, d)?;
            }
            "keepalive_requests" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.keepalive_requests, number(d, arg(d, 0))?, d)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn next_upstream(d: &Directive) -> Res<NextUpstream> {
    let mut v = NextUpstream::default();
    let mut off = false;
    for a in &d.args {
        match a.value.as_str() {
            "error" => v.error = true,
            "timeout" => v.timeout = true,
            "invalid_header" => v.invalid_header = true,
            "non_idempotent" => v.non_idempotent = true,
            "off" => off = true,
            other => {
                let status = match other {
                    "http_500" => 500,
                    "http_502" => 502,
                    "http_503" => 503,
                    "http_504" => 504,
                    "http_403" => 403,
                    "http_404" => 404,
                    "http_429" => 429,
                    _ => return Err(err(format!("invalid value \"{other}\""), d)),
                };
                if !v.statuses.contains(&status) {
                    v.statuses.push(status);
                }
            }
        }
    }
    if off {
        return Ok(NextUpstream::default());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::build::tests::ok;

    #[test]
    fn proxy_next_upstream_values() {
        let cases: &[(&str, NextUpstream)] = &[
            ("off", NextUpstream::default()),
            ("error off timeout", NextUpstream::default()),
            (
                "invalid_header http_500 http_500 http_429 non_idempotent",
                NextUpstream {
                    invalid_header: true,
                    statuses: vec![500, 429],
                    non_idempotent: true,
                    ..NextUpstream::default()
                },
            ),
        ];
        for (values, expected) in cases {
            let (c, _) = ok(&format!(
                "http {{ proxy_next_upstream {values}; server {{ }} }}"
            ));
            assert_eq!(
                &c.http.servers[0].conf.proxy_next_upstream, expected,
                "{values}"
            );
        }
    }

    #[test]
    fn connection_timeouts_in_locations() {
        let (c, _) = ok(
            "http { client_body_timeout 20s; server { client_body_timeout 10s; send_timeout 9s;
              location /a { client_body_timeout 2s; send_timeout 3s; location /a/b { } }
              location /c { } } }",
        );
        let s = &c.http.servers[0];
        assert_eq!(s.connection.client_body_timeout, Duration::from_secs(10));
        assert_eq!(s.conf.client_body_timeout, None);
        let a = &s.locations[0];
        assert_eq!(a.conf.client_body_timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            a.nested[0].conf.client_body_timeout,
            Some(Duration::from_secs(2))
        );
        assert_eq!(s.locations[1].conf.client_body_timeout, None);
        assert_eq!(s.connection.send_timeout, Duration::from_secs(9));
        assert_eq!(a.conf.send_timeout, Some(Duration::from_secs(3)));
        assert_eq!(a.nested[0].conf.send_timeout, Some(Duration::from_secs(3)));
        assert_eq!(s.locations[1].conf.send_timeout, None);
        let (c, _) = ok(
            "http { keepalive_timeout 30s; server { location /a { keepalive_timeout 0; \
             keepalive_requests 3; location /a/b { } } location /c { } } }",
        );
        let s = &c.http.servers[0];
        let a = &s.locations[0];
        assert_eq!(s.connection.keepalive_timeout, Duration::from_secs(30));
        assert_eq!(a.conf.keepalive_timeout, Some(Duration::ZERO));
        assert_eq!(a.nested[0].conf.keepalive_requests, Some(3));
        assert_eq!(s.locations[1].conf.keepalive_timeout, None);
        assert_eq!(s.locations[1].conf.keepalive_requests, None);
    }

    #[test]
    fn accepted_but_ignored_directives_warn() {
        let (c, warnings) = ok("daemon off;\nmaster_process on;\nhttp {\n sendfile on;\n tcp_nodelay on;\n types { text/html html; }\n default_type text/plain;\n charset utf-8;\n gzip_buffers 4 8k;\n proxy_buffering off;\n proxy_buffer_size 4k;\n proxy_buffers 8 4k;\n server { }\n}\n");
        assert_eq!(c.http.servers.len(), 1);
        let lines: Vec<u32> = warnings.iter().map(|w| w.span.line).collect();
        // sendfile (line 4), types, default_type and charset (lines 6-8)
        // now serve files.
        assert_eq!(lines, [2, 5, 9, 10, 11, 12]);
        assert_eq!(
            warnings[1].message,
            "\"tcp_nodelay\" directive is ignored: client sockets always have TCP_NODELAY"
        );
    }
}
