//! `http2 on|off` and the `http2_*` limits (ngx_http_v2_module, nginx
//! 1.25.1+), at http and server level, inherited as the other
//! connection-level settings are; the directives nginx made obsolete are
//! accepted with nginx's own warning (nginx ignores them too).

use super::args::{arg, directive_err, err, flag, number, set_once, simple, size};
use super::tuning::Ctx;
use super::{Builder, Res};
use crate::config::ast::Directive;
use crate::config::Http2Conf;

/// The largest flow-control window (RFC 9113 section 6.9.1).
const MAX_WINDOW: u64 = (1 << 31) - 1;
/// The largest frame payload (RFC 9113 section 4.2).
const MAX_FRAME_SIZE: u64 = (1 << 24) - 1;

/// The `http2*` settings written at one level.
#[derive(Debug, Clone, Default)]
pub(super) struct Http2Layer {
    enabled: Option<bool>,
    max_concurrent_streams: Option<u32>,
    body_preread_size: Option<u32>,
    recv_buffer_size: Option<u32>,
    chunk_size: Option<u32>,
}

impl Http2Layer {
    pub(super) fn inherit(mut self, parent: &Http2Layer) -> Http2Layer {
        super::inherit::inherit_fields!(
            self,
            parent,
            enabled,
            max_concurrent_streams,
            body_preread_size,
            recv_buffer_size,
            chunk_size
        );
        self
    }

    pub(super) fn finish(&self) -> Http2Conf {
        let d = Http2Conf::default();
        Http2Conf {
            enabled: self.enabled.unwrap_or(d.enabled),
            max_concurrent_streams: self
                .max_concurrent_streams
                .unwrap_or(d.max_concurrent_streams),
            body_preread_size: self.body_preread_size.unwrap_or(d.body_preread_size),
            recv_buffer_size: self.recv_buffer_size.unwrap_or(d.recv_buffer_size),
            chunk_size: self.chunk_size.unwrap_or(d.chunk_size),
        }
    }
}

/// nginx's obsolete HTTP/2 directives and what replaced them.
const OBSOLETE: &[(&str, &str)] = &[
    ("http2_idle_timeout", "keepalive_timeout"),
    ("http2_recv_timeout", "client_header_timeout"),
    ("http2_max_requests", "keepalive_requests"),
    ("http2_max_field_size", "large_client_header_buffers"),
    ("http2_max_header_size", "large_client_header_buffers"),
];

impl Builder {
    /// `http2` and `http2_*` at http (`ctx` [`Ctx::Http`]) or server level.
    /// `Ok(false)` for any other directive.
    pub(super) fn http2_directive(
        &mut self,
        d: &Directive,
        layer: &mut Http2Layer,
        ctx: Ctx,
    ) -> Res<bool> {
        let name = d.name.as_str();
        if let Some((_, instead)) = OBSOLETE.iter().find(|(n, _)| *n == name) {
            simple(d, 1, 1)?;
            self.warn(
                d,
                &format!(
                    "the \"{name}\" directive is obsolete, use the \"{instead}\" directive instead"
                ),
            );
            return Ok(true);
        }
        match name {
            "http2" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.enabled, flag(d)?, d)?;
            }
            "http2_push" | "http2_push_preload" => {
                simple(d, 1, 1)?;
                self.warn(d, &format!("the \"{name}\" directive is obsolete, ignored"));
            }
            "http2_max_concurrent_streams" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.max_concurrent_streams, number(d, arg(d, 0))?, d)?;
            }
            "http2_body_preread_size" => {
                let n = size_arg(d)?;
                if n > MAX_WINDOW {
                    return Err(directive_err(d, "value is too large"));
                }
                set_once(&mut layer.body_preread_size, n as u32, d)?;
            }
            "http2_recv_buffer_size" => {
                if ctx != Ctx::Http {
                    return Err(super::args::not_allowed(d));
                }
                let n = size_arg(d)?;
                if n <= 16 * 2 {
                    return Err(directive_err(d, "value is too small"));
                }
                set_once(&mut layer.recv_buffer_size, n.min(MAX_WINDOW) as u32, d)?;
            }
            "http2_chunk_size" => {
                let n = size_arg(d)?;
                if n == 0 {
                    return Err(directive_err(d, "value is too small"));
                }
                set_once(&mut layer.chunk_size, n.min(MAX_FRAME_SIZE) as u32, d)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn size_arg(d: &Directive) -> Res<u64> {
    simple(d, 1, 1)?;
    size(d, arg(d, 0))
}

/// The error for `http2_chunk_size` in a location: nginx allows it there,
/// the proxy applies it per connection.
pub(super) fn chunk_size_in_location(d: &Directive) -> Res<()> {
    Err(err(
        "\"http2_chunk_size\" in a location is not supported yet: set it in \"http\" or \"server\"",
        d,
    ))
}

#[cfg(test)]
mod tests {
    use crate::config::build::tests::{fails, ok};
    use crate::config::Http2Conf;

    #[test]
    fn defaults_are_nginx_s() {
        let (c, w) = ok("http { server { listen 127.0.0.1:80; } }");
        assert!(w.is_empty());
        let h = c.http.servers[0].connection.http2;
        assert_eq!(h, Http2Conf::default());
        assert_eq!(
            (
                h.enabled,
                h.max_concurrent_streams,
                h.body_preread_size,
                h.recv_buffer_size,
                h.chunk_size
            ),
            (false, 128, 65536, 262144, 8192)
        );
    }

    #[test]
    fn http_level_settings_are_inherited_and_servers_override_them() {
        let (c, w) = ok("http { http2 on; http2_max_concurrent_streams 10; \
             http2_recv_buffer_size 1m; http2_chunk_size 16k; http2_body_preread_size 0;
             server { listen 127.0.0.1:80; }
             server { listen 127.0.0.1:81; http2 off; http2_max_concurrent_streams 5;
                      http2_chunk_size 64m; } }");
        assert!(w.is_empty(), "{w:?}");
        let a = c.http.servers[0].connection.http2;
        assert_eq!(
            (
                a.enabled,
                a.max_concurrent_streams,
                a.recv_buffer_size,
                a.chunk_size,
                a.body_preread_size
            ),
            (true, 10, 1 << 20, 16384, 0)
        );
        let b = c.http.servers[1].connection.http2;
        // Bounded to the largest frame, as nginx.
        assert_eq!(
            (
                b.enabled,
                b.max_concurrent_streams,
                b.recv_buffer_size,
                b.chunk_size
            ),
            (false, 5, 1 << 20, (1 << 24) - 1)
        );
    }

    #[test]
    fn bad_values_and_contexts_fail_as_nginx() {
        let cases = [
            ("http { http2 maybe; }", "invalid value \"maybe\" in \"http2\" directive, it must be \"on\" or \"off\""),
            ("http { http2 on; http2 off; }", "\"http2\" directive is duplicate"),
            ("http { server { http2_recv_buffer_size 1m; } }", "\"http2_recv_buffer_size\" directive is not allowed here"),
            ("http { http2_recv_buffer_size 16; }", "\"http2_recv_buffer_size\" directive value is too small"),
            ("http { http2_chunk_size 0; }", "\"http2_chunk_size\" directive value is too small"),
            ("http { http2_body_preread_size 4g; }", "\"http2_body_preread_size\" directive value is too large"),
            ("http { server { location / { http2_max_concurrent_streams 1; } } }", "\"http2_max_concurrent_streams\" directive is not allowed here"),
            ("http { server { location / { http2_chunk_size 4k; } } }", "\"http2_chunk_size\" in a location is not supported yet: set it in \"http\" or \"server\""),
            ("http2 on;", "\"http2\" directive is not allowed here"),
        ];
        for (conf, message) in cases {
            let e = fails(conf);
            assert!(e.contains(message), "{conf}: {e}");
        }
    }

    #[test]
    fn obsolete_directives_warn_as_nginx() {
        let (_, w) = ok("http { http2_idle_timeout 3m; http2_max_requests 10; \
             server { http2_max_field_size 4k; http2_push_preload on; http2_recv_timeout 1s; } }");
        let messages: Vec<&str> = w.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "the \"http2_idle_timeout\" directive is obsolete, use the \"keepalive_timeout\" directive instead",
                "the \"http2_max_requests\" directive is obsolete, use the \"keepalive_requests\" directive instead",
                "the \"http2_max_field_size\" directive is obsolete, use the \"large_client_header_buffers\" directive instead",
                "the \"http2_push_preload\" directive is obsolete, ignored",
                "the \"http2_recv_timeout\" directive is obsolete, use the \"client_header_timeout\" directive instead",
            ]
        );
    }

    #[test]
    fn listen_http2_turns_it_on_for_the_address_with_nginx_s_warning() {
        let (c, w) = ok("http { server { listen 127.0.0.1:80 http2; } }");
        assert!(c.http.servers[0].listens[0].http2);
        let messages: Vec<&str> = w.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            ["the \"listen ... http2\" directive is deprecated, use the \"http2\" directive instead"]
        );
    }
}
