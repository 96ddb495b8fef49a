//! nginx's http -> server -> location (-> nested location) inheritance: the
//! settings written at one level ([`Layer`], and [`ConnLayer`] for the
//! connection-level ones of http and server), how a level takes what it did not
//! set from its parent, and the defaults that fill whatever no level set.

use std::time::Duration;

use http::HeaderName;

use crate::config::rewrite::{ErrorPage, RedirectConf};
use crate::config::template::Template;
use crate::config::{
    AccessLog, AddHeader, ConnectionConf, Expires, LocationConf, NextUpstream, ProxyPass, Return,
};
use crate::http1::names::SpelledName;

/// The inheritable settings written at one level (http, server or location).
/// `None` = not set at this level; [`Layer::inherit`] fills from the parent.
#[derive(Debug, Clone, Default)]
pub(super) struct Layer {
    pub(super) set_headers: Option<Vec<(SpelledName, Template)>>,
    pub(super) hide_headers: Option<Vec<HeaderName>>,
    pub(super) pass_headers: Option<Vec<HeaderName>>,
    pub(super) http_version: Option<http::Version>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) read_timeout: Option<Duration>,
    pub(super) send_timeout: Option<Duration>,
    pub(super) next_upstream: Option<NextUpstream>,
    pub(super) next_upstream_tries: Option<u32>,
    pub(super) next_upstream_timeout: Option<Duration>,
    pub(super) client_max_body_size: Option<u64>,
    pub(super) access_log: Option<AccessLog>,
    pub(super) server_tokens: Option<bool>,
    pub(super) chunked_transfer_encoding: Option<bool>,
    pub(super) absolute_redirect: Option<bool>,
    pub(super) server_name_in_redirect: Option<bool>,
    pub(super) port_in_redirect: Option<bool>,
    pub(super) hide_cookie: Option<String>,
    pub(super) add_headers: Option<Vec<AddHeader>>,
    pub(super) expires: Option<Expires>,
    /// Only ever set in a location (http and server keep theirs in [`ConnLayer`]).
    pub(super) client_body_timeout: Option<Duration>,
    /// `send_timeout`, as `client_body_timeout` (`send_timeout` above is
    /// `proxy_send_timeout`).
    pub(super) client_send_timeout: Option<Duration>,
    /// As `client_body_timeout`.
    pub(super) keepalive_timeout: Option<Duration>,
    pub(super) keepalive_requests: Option<u64>,
    /// Local file serving (`root`, `index`, `try_files`, ...).
    pub(super) files: super::files::FilesLayer,
    /// Response compression (`gzip*`, `brotli*`).
    pub(super) compress: super::compress::CompressLayer,
    pub(super) access: super::access::AccessLayer,
    pub(super) details: super::proxy_details::DetailsLayer,
    /// TLS to the backends (`proxy_ssl_*`).
    pub(super) proxy_ssl: super::proxy_ssl::ProxySslLayer,
    pub(super) error_pages: Option<Vec<ErrorPage>>,
    pub(super) intercept_errors: Option<bool>,
    pub(super) recursive_error_pages: Option<bool>,
    pub(super) rewrite_log: Option<bool>,
    /// `resolver` / `resolver_timeout` (`proxy_pass` with variables).
    pub(super) resolver: super::resolver::ResolverScope,
}

macro_rules! inherit_fields {
    ($child:expr, $parent:expr, $($field:ident),*) => {
        $( if $child.$field.is_none() { $child.$field = $parent.$field.clone(); } )*
    };
}
/// Also used by the layers of `files` and `compress`.
pub(super) use inherit_fields;

impl Layer {
    pub(super) fn inherit(mut self, parent: &Layer) -> Layer {
        inherit_fields!(
            self,
            parent,
            set_headers,
            hide_headers,
            pass_headers,
            http_version,
            connect_timeout,
            read_timeout,
            send_timeout,
            next_upstream,
            next_upstream_tries,
            next_upstream_timeout,
            client_max_body_size,
            access_log,
            server_tokens,
            chunked_transfer_encoding,
            absolute_redirect,
            server_name_in_redirect,
            port_in_redirect,
            hide_cookie,
            add_headers,
            expires,
            client_body_timeout,
            client_send_timeout,
            keepalive_timeout,
            keepalive_requests,
            error_pages,
            intercept_errors,
            recursive_error_pages,
            rewrite_log
        );
        self.files.inherit(&parent.files);
        self.compress.inherit(&parent.compress);
        self.access = self.access.inherit(&parent.access);
        self.details = self.details.inherit(&parent.details);
        self.resolver.inherit(&parent.resolver);
        self.proxy_ssl.inherit(&parent.proxy_ssl);
        self
    }

    pub(super) fn finish(
        &self,
        proxy_pass: Option<ProxyPass>,
        return_: Option<Return>,
    ) -> LocationConf {
        let sixty = Duration::from_secs(60);
        LocationConf {
            proxy_pass,
            // Built by the location's builder (it reads files).
            proxy_ssl: None,
            return_,
            proxy_set_headers: self.set_headers.clone().unwrap_or_default(),
            proxy_hide_headers: self.hide_headers.clone().unwrap_or_default(),
            proxy_pass_headers: self.pass_headers.clone().unwrap_or_default(),
            proxy_http_version: self.http_version.unwrap_or(http::Version::HTTP_10),
            proxy_connect_timeout: self.connect_timeout.unwrap_or(sixty),
            proxy_read_timeout: self.read_timeout.unwrap_or(sixty),
            proxy_send_timeout: self.send_timeout.unwrap_or(sixty),
            proxy_next_upstream: self.next_upstream.clone().unwrap_or(NextUpstream {
                error: true,
                timeout: true,
                ..NextUpstream::default()
            }),
            proxy_next_upstream_tries: self.next_upstream_tries.unwrap_or(0),
            proxy_next_upstream_timeout: self.next_upstream_timeout.unwrap_or(Duration::ZERO),
            client_max_body_size: self.client_max_body_size.unwrap_or(1 << 20),
            access_log: self.access_log.clone().unwrap_or(AccessLog::Off),
            server_tokens: self.server_tokens.unwrap_or(true),
            chunked_transfer_encoding: self.chunked_transfer_encoding.unwrap_or(true),
            redirect_form: crate::config::RedirectForm {
                absolute: self.absolute_redirect.unwrap_or(true),
                server_name: self.server_name_in_redirect.unwrap_or(false),
                port: self.port_in_redirect.unwrap_or(true),
            },
            sticky_hide_cookie: self.hide_cookie.clone(),
            check_status: None,
            add_headers: self.add_headers.clone().unwrap_or_default(),
            add_header_names: self.add_headers.as_deref().and_then(spelled_names),
            expires: self.expires.unwrap_or_default(),
            client_body_timeout: self.client_body_timeout,
            send_timeout: self.client_send_timeout,
            keepalive_timeout: self.keepalive_timeout,
            keepalive_requests: self.keepalive_requests,
            resolver: self.resolver.finish().map(std::sync::Arc::new),
            limit_except: None,
            files: self.files.finish(),
            compress: self.compress.finish(),
            access: self.access.finish(),
            details: self.details.finish(),
            shape: self.details.shape(),
            redirect: RedirectConf {
                internal: false,
                error_pages: self.error_pages.clone().unwrap_or_default().into(),
                intercept_errors: self.intercept_errors.unwrap_or(false),
                recursive_error_pages: self.recursive_error_pages.unwrap_or(false),
                script: std::sync::Arc::new([]),
                rewrite_log: self.rewrite_log.unwrap_or(false),
                captures: None,
                name_patterns: std::sync::Arc::new([]),
            },
        }
    }
}

/// Connection-level settings written at http or server level.
#[derive(Debug, Clone, Default)]
pub(super) struct ConnLayer {
    pub(super) client_header_timeout: Option<Duration>,
    pub(super) client_body_timeout: Option<Duration>,
    pub(super) send_timeout: Option<Duration>,
    pub(super) keepalive_timeout: Option<Duration>,
    pub(super) keepalive_requests: Option<u64>,
    pub(super) large_client_header_buffers: Option<(usize, usize)>,
    pub(super) http2: super::http2::Http2Layer,
    pub(super) ignore_invalid_headers: Option<bool>,
    pub(super) underscores_in_headers: Option<bool>,
}

impl ConnLayer {
    pub(super) fn inherit(mut self, parent: &ConnLayer) -> ConnLayer {
        inherit_fields!(
            self,
            parent,
            client_header_timeout,
            client_body_timeout,
            send_timeout,
            keepalive_timeout,
            keepalive_requests,
            large_client_header_buffers,
            ignore_invalid_headers,
            underscores_in_headers
        );
        self.http2 = self.http2.inherit(&parent.http2);
        self
    }

    pub(super) fn finish(&self) -> ConnectionConf {
        let sixty = Duration::from_secs(60);
        ConnectionConf {
            client_header_timeout: self.client_header_timeout.unwrap_or(sixty),
            client_body_timeout: self.client_body_timeout.unwrap_or(sixty),
            send_timeout: self.send_timeout.unwrap_or(sixty),
            keepalive_timeout: self.keepalive_timeout.unwrap_or(Duration::from_secs(75)),
            keepalive_requests: self.keepalive_requests.unwrap_or(1000),
            large_client_header_buffers: self.large_client_header_buffers.unwrap_or((4, 8192)),
            http2: self.http2.finish(),
            header_names: crate::http1::invalid::HeaderNames {
                ignore_invalid: self.ignore_invalid_headers.unwrap_or(true),
                underscores: self.underscores_in_headers.unwrap_or(false),
            },
        }
    }
}

/// The names of `headers` whose configured spelling is not lower-case (the
/// encoder writes these as configured), `None` when there is none.
fn spelled_names(headers: &[AddHeader]) -> Option<std::sync::Arc<[SpelledName]>> {
    let spelled: Vec<SpelledName> = headers
        .iter()
        .filter(|h| h.name.as_bytes() != h.name.name().as_str().as_bytes())
        .map(|h| h.name.clone())
        .collect();
    (!spelled.is_empty()).then(|| spelled.into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::build::tests::ok;
    use crate::config::build::COMBINED_FORMAT;
    use crate::config::{ErrorLog, Listen, LogLevel, ServerName, WorkerProcesses};

    /// The names of a location's `proxy_set_header` list, in order.
    fn header_names(conf: &LocationConf) -> Vec<&str> {
        conf.proxy_set_headers
            .iter()
            .map(|(n, _)| n.name().as_str())
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let (c, warnings) =
            ok("http { server { location / { proxy_pass http://127.0.0.1:9000; } } }");
        assert!(warnings.is_empty());
        assert_eq!(c.main.worker_processes, WorkerProcesses::Count(1));
        assert_eq!(c.main.worker_connections, 512);
        assert_eq!(c.main.pid, None);
        assert_eq!(
            c.main.error_log,
            ErrorLog {
                path: "stderr".into(),
                level: LogLevel::Error,
                syslog: None,
            }
        );
        let s = &c.http.servers[0];
        assert_eq!(
            s.listens,
            [Listen {
                addr: "0.0.0.0:80".parse().expect("addr"),
                default_server: false,
                reuseport: false,
                backlog: 511,
                ssl: false,
                http2: false
            }]
        );
        assert!(matches!(&s.names[..], [ServerName::Exact(n)] if n.is_empty()));
        assert_eq!(s.connection, ConnLayer::default().finish());
        assert_eq!(s.connection.keepalive_timeout, Duration::from_secs(75));
        let l = &s.locations[0].conf;
        assert_eq!(l.proxy_http_version, http::Version::HTTP_10);
        assert_eq!(l.proxy_connect_timeout, Duration::from_secs(60));
        assert_eq!(l.proxy_read_timeout, Duration::from_secs(60));
        assert_eq!(l.proxy_send_timeout, Duration::from_secs(60));
        assert!(l.proxy_next_upstream.error && l.proxy_next_upstream.timeout);
        assert!(!l.proxy_next_upstream.invalid_header && l.proxy_next_upstream.statuses.is_empty());
        assert_eq!(l.proxy_next_upstream_tries, 0);
        assert_eq!(l.proxy_next_upstream_timeout, Duration::ZERO);
        assert_eq!(l.client_max_body_size, 1 << 20);
        assert_eq!(l.access_log, AccessLog::Off);
        assert!(l.server_tokens);
        assert!(l.proxy_set_headers.is_empty() && l.sticky_hide_cookie.is_none());
        assert_eq!(c.http.log_formats.len(), 1);
        assert_eq!(c.http.log_formats["combined"].source, COMBINED_FORMAT);
    }

    #[test]
    fn proxy_set_header_list_is_replaced_wholesale_per_level() {
        let (c, _) = ok("http {
              proxy_set_header A a;
              proxy_set_header B b;
              server {
                location /plain { }
                location /own { proxy_set_header C c;
                  location /own/nested { }
                  location /own/reset { proxy_set_header D d; }
                }
              }
              server { proxy_set_header E e; location / { } }
            }");
        let s = &c.http.servers[0];
        assert_eq!(header_names(&s.conf), ["a", "b"]);
        assert_eq!(header_names(&s.locations[0].conf), ["a", "b"]);
        let own = &s.locations[1];
        assert_eq!(header_names(&own.conf), ["c"]);
        assert_eq!(header_names(&own.nested[0].conf), ["c"]);
        assert_eq!(header_names(&own.nested[1].conf), ["d"]);
        assert_eq!(header_names(&c.http.servers[1].locations[0].conf), ["e"]);
    }

    #[test]
    fn settings_written_after_a_block_are_still_inherited() {
        let (c, _) = ok("http {
              server { location / { } proxy_read_timeout 7s; }
              proxy_connect_timeout 3s;
              keepalive_timeout 0;
            }");
        let s = &c.http.servers[0];
        assert_eq!(
            s.locations[0].conf.proxy_read_timeout,
            Duration::from_secs(7)
        );
        assert_eq!(
            s.locations[0].conf.proxy_connect_timeout,
            Duration::from_secs(3)
        );
        assert_eq!(s.connection.keepalive_timeout, Duration::ZERO);
    }
}
