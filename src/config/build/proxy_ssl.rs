//! The `proxy_ssl_*` directives (TLS to the backends, issue 15): written at
//! http, server or location level and inherited as nginx does; a location
//! whose `proxy_pass` is `https://` gets its rustls client settings
//! ([`crate::tls::client::BackendTls`]) built once, here, with the
//! certificates and trusted CAs read at every load and reload.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::args::{arg, directive_err, err, flag, set_once, simple, template_arg};
use super::inherit::inherit_fields;
use super::{Builder, Res};
use crate::config::ast::{Directive, Span};
use crate::config::error::ConfigError;
use crate::config::{ProxyPass, Template};
use crate::tls::client::{BackendTls, ClientSettings};
use crate::tls::{ciphers, load};

/// The `proxy_ssl_*` settings written at one level (`None`: inherited).
#[derive(Debug, Clone, Default)]
pub(super) struct ProxySslLayer {
    verify: Option<(bool, Span)>,
    trusted: Option<(PathBuf, Span)>,
    verify_depth: Option<u32>,
    name: Option<Template>,
    server_name: Option<bool>,
    protocols: Option<Vec<&'static SupportedProtocolVersion>>,
    ciphers: Option<Vec<SupportedCipherSuite>>,
    certificate: Option<(PathBuf, Span)>,
    key: Option<(PathBuf, Span)>,
    session_reuse: Option<bool>,
}

impl ProxySslLayer {
    pub(super) fn inherit(&mut self, parent: &ProxySslLayer) {
        inherit_fields!(
            self,
            parent,
            verify,
            trusted,
            verify_depth,
            name,
            server_name,
            protocols,
            ciphers,
            certificate,
            key,
            session_reuse
        );
    }
}

/// A file argument without variables (nginx allows them in
/// `proxy_ssl_certificate`; this proxy reads the files at load time).
fn file_arg(b: &Builder, d: &Directive) -> Res<(PathBuf, Span)> {
    simple(d, 1, 1)?;
    if arg(d, 0).contains('$') {
        return Err(err(
            format!("variables in \"{}\" are not supported", d.name),
            d,
        ));
    }
    Ok((b.conf_path(d), d.span.clone()))
}

impl Builder {
    /// One `proxy_ssl_*` directive. `Ok(false)` when `d` is not one of them.
    pub(super) fn proxy_ssl_directive(
        &mut self,
        d: &Directive,
        l: &mut ProxySslLayer,
    ) -> Res<bool> {
        match d.name.as_str() {
            "proxy_ssl_verify" => {
                simple(d, 1, 1)?;
                set_once(&mut l.verify, (flag(d)?, d.span.clone()), d)?;
            }
            "proxy_ssl_trusted_certificate" => set_once(&mut l.trusted, file_arg(self, d)?, d)?,
            "proxy_ssl_certificate" => set_once(&mut l.certificate, file_arg(self, d)?, d)?,
            "proxy_ssl_certificate_key" => set_once(&mut l.key, file_arg(self, d)?, d)?,
            "proxy_ssl_verify_depth" => {
                simple(d, 1, 1)?;
                let n = match arg(d, 0).parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(directive_err(d, "invalid value")),
                };
                set_once(&mut l.verify_depth, n, d)?;
            }
            "proxy_ssl_name" => {
                simple(d, 1, 1)?;
                set_once(&mut l.name, template_arg(d, arg(d, 0))?, d)?;
            }
            "proxy_ssl_server_name" | "proxy_ssl_session_reuse" => {
                simple(d, 1, 1)?;
                let slot = if d.name == "proxy_ssl_server_name" {
                    &mut l.server_name
                } else {
                    &mut l.session_reuse
                };
                set_once(slot, flag(d)?, d)?;
            }
            "proxy_ssl_protocols" => {
                simple(d, 1, usize::MAX)?;
                let versions = self.protocol_list(d)?;
                set_once(&mut l.protocols, versions, d)?;
            }
            "proxy_ssl_ciphers" => {
                simple(d, 1, 1)?;
                let suites = self.cipher_list(d)?;
                set_once(&mut l.ciphers, suites, d)?;
            }
            "proxy_ssl_crl"
            | "proxy_ssl_password_file"
            | "proxy_ssl_conf_command"
            | "proxy_ssl_key_log" => {
                return Err(err(format!("\"{}\" is not supported yet", d.name), d))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The TLS to the backends of a location whose `proxy_pass` is
    /// `https://` (`None` otherwise), from its merged `proxy_ssl_*` layer.
    pub(super) fn backend_tls(
        &mut self,
        l: &ProxySslLayer,
        pass: Option<&ProxyPass>,
    ) -> Res<Option<Arc<BackendTls>>> {
        let may_be_https =
            |p: &ProxyPass| p.https || p.vars.as_ref().is_some_and(|v| v.dynamic_scheme);
        if !pass.is_some_and(may_be_https) {
            return Ok(None);
        }
        let trusted = match &l.trusted {
            Some((path, span)) => Some(load::roots(path).map_err(|m| ConfigError::new(m, span))?),
            None => None,
        };
        let certificate = match (&l.certificate, &l.key) {
            (None, _) => None,
            (Some((cert, span)), None) => {
                return Err(ConfigError::new(
                    format!(
                        "no \"proxy_ssl_certificate_key\" is defined for certificate \"{}\"",
                        cert.display()
                    ),
                    span,
                ))
            }
            (Some((cert, span)), Some((key, _))) => {
                let provider = rustls::crypto::aws_lc_rs::default_provider();
                Some(
                    load::certified_key(cert, key, &provider)
                        .map_err(|m| ConfigError::new(m, span))?,
                )
            }
        };
        let suites = match &l.ciphers {
            Some(s) => s.clone(),
            // nginx's default `proxy_ssl_ciphers DEFAULT`.
            None => {
                ciphers::select("DEFAULT", &mut Vec::new()).map_err(ConfigError::without_span)?
            }
        };
        let verify = l.verify.as_ref().is_some_and(|(on, _)| *on);
        let settings = ClientSettings {
            verify,
            trusted,
            verify_depth: l.verify_depth.unwrap_or(1),
            versions: l
                .protocols
                .clone()
                .unwrap_or_else(|| vec![&rustls::version::TLS12, &rustls::version::TLS13]),
            suites,
            certificate,
            session_reuse: l.session_reuse.unwrap_or(true),
            server_name: l.server_name.unwrap_or(false),
            name: l.name.clone(),
        };
        let built = BackendTls::build(settings).map_err(|m| match &l.verify {
            Some((_, span)) => ConfigError::new(m, span),
            None => ConfigError::without_span(m),
        })?;
        Ok(Some(Arc::new(built)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use crate::config::build::tests::{fails, ok};

    #[test]
    fn https_locations_get_client_tls_inherited_from_above() {
        let (c, _) = ok(
            "http { proxy_ssl_server_name on; proxy_ssl_protocols TLSv1.3;
            server {
                location /a { proxy_pass https://127.0.0.1; }
                location /b { proxy_pass http://127.0.0.1; }
                location /c { proxy_pass https://127.0.0.1:8443; proxy_ssl_server_name off; }
            } }",
        );
        let locs = &c.http.servers[0].locations;
        let tls = |i: usize| locs[i].conf.proxy_ssl.clone();
        let a = tls(0).unwrap();
        assert!(a.config.enable_sni, "inherited from http");
        assert!(tls(1).is_none(), "plain proxy_pass: no TLS");
        assert!(!tls(2).unwrap().config.enable_sni);
        // `https://h` without a port is h:443, apart from `http://h` (:80).
        let ups = &c.http.upstreams;
        let port = |i: usize| {
            let pass = locs[i].conf.proxy_pass.as_ref().unwrap();
            ups[pass.upstream].peers[0].addr.port()
        };
        assert_eq!((port(0), port(1), port(2)), (443, 80, 8443));
    }

    #[test]
    fn bad_values_are_refused_with_nginx_texts() {
        let cases = [
            (
                "proxy_ssl_protocols SSLv3;",
                "\"proxy_ssl_protocols\" leaves no protocol rustls supports",
            ),
            (
                "proxy_ssl_verify_depth 0;",
                "\"proxy_ssl_verify_depth\" directive invalid value",
            ),
            ("proxy_ssl_verify maybe;", "it must be \"on\" or \"off\""),
            (
                "proxy_ssl_crl /x.pem;",
                "\"proxy_ssl_crl\" is not supported yet",
            ),
            (
                "proxy_ssl_name a; proxy_ssl_name b;",
                "\"proxy_ssl_name\" directive is duplicate",
            ),
        ];
        for (directive, want) in cases {
            let src = format!(
                "http {{ server {{ location / {{ proxy_pass https://127.0.0.1; {directive} }} }} }}"
            );
            let got = fails(&src);
            assert!(got.contains(want), "{directive}: {got}");
        }
    }
}
