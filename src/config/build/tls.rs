//! The `ssl_*` directives of `http` and `server` (issue 15): parsed and
//! checked where they are written (so messages name their line), inherited
//! from `http` by each `server`, and turned into the server's rustls settings
//! ([`crate::tls::ServerTls`]) once the server is complete. Certificates and
//! keys are read here (through `tls::load`), at every load and reload, so a
//! bad or missing key fails the load with nginx's message.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::aws_lc_rs::kx_group;
use rustls::crypto::SupportedKxGroup;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::args::{arg, directive_err, err, flag, set_once, simple, size, time};
use super::{Builder, Res};
use crate::config::ast::{Directive, Span};
use crate::tls::server::{SessionCache, Settings};
use crate::tls::ticket_key::TicketKey;
use crate::tls::{ciphers, load, ServerTls, VerifyClient};

/// The `ssl_*` settings written at one level (`None`: not set here).
#[derive(Clone, Default)]
pub(super) struct TlsLayer {
    certificates: Option<Vec<(PathBuf, Span)>>,
    keys: Option<Vec<(PathBuf, Span)>>,
    protocols: Option<Vec<&'static SupportedProtocolVersion>>,
    ciphers: Option<Vec<SupportedCipherSuite>>,
    prefer_server_ciphers: Option<bool>,
    curves: Option<Vec<&'static dyn SupportedKxGroup>>,
    session_cache: Option<SessionCache>,
    session_tickets: Option<bool>,
    session_timeout: Option<Duration>,
    ticket_keys: Option<Vec<(PathBuf, Span)>>,
    client_certificate: Option<(PathBuf, Span)>,
    verify_client: Option<VerifyClient>,
    verify_depth: Option<u32>,
    handshake_timeout: Option<Duration>,
}

macro_rules! inherit_tls {
    ($child:expr, $parent:expr, $($field:ident),*) => {
        $( if $child.$field.is_none() { $child.$field = $parent.$field.clone(); } )*
    };
}

impl TlsLayer {
    pub(super) fn inherit(mut self, parent: &TlsLayer) -> TlsLayer {
        inherit_tls!(
            self,
            parent,
            certificates,
            keys,
            protocols,
            ciphers,
            prefer_server_ciphers,
            curves,
            session_cache,
            session_tickets,
            session_timeout,
            ticket_keys,
            client_certificate,
            verify_client,
            verify_depth,
            handshake_timeout
        );
        self
    }
}

impl Builder {
    /// The file the first argument of `d` names ([`Builder::conf_file`]).
    pub(super) fn conf_path(&self, d: &Directive) -> PathBuf {
        PathBuf::from(self.conf_file(arg(d, 0)))
    }

    /// One `ssl_*` directive of `http` or `server`. `Ok(false)` when `d` is
    /// not one of them.
    pub(super) fn tls_directive(&mut self, d: &Directive, t: &mut TlsLayer) -> Res<bool> {
        match d.name.as_str() {
            "ssl" => {
                return Err(err(
                    "unknown directive \"ssl\" (removed in nginx 1.25.1): use the \"listen ... ssl\" directive instead",
                    d,
                ))
            }
            "ssl_certificate" | "ssl_certificate_key" => {
                simple(d, 1, 1)?;
                if arg(d, 0).contains('$') {
                    return Err(err(
                        format!("variables in \"{}\" are not supported", d.name),
                        d,
                    ));
                }
                let slot = if d.name == "ssl_certificate" {
                    &mut t.certificates
                } else {
                    &mut t.keys
                };
                slot.get_or_insert_with(Vec::new)
                    .push((self.conf_path(d), d.span.clone()));
            }
            "ssl_protocols" => {
                simple(d, 1, usize::MAX)?;
                let versions = self.protocol_list(d)?;
                set_once(&mut t.protocols, versions, d)?;
            }
            "ssl_ciphers" => {
                simple(d, 1, 1)?;
                set_once(&mut t.ciphers, self.cipher_list(d)?, d)?;
            }
            "ssl_prefer_server_ciphers" => {
                simple(d, 1, 1)?;
                set_once(&mut t.prefer_server_ciphers, flag(d)?, d)?;
            }
            "ssl_ecdh_curve" => {
                simple(d, 1, 1)?;
                set_once(&mut t.curves, self.curves(d)?, d)?;
            }
            "ssl_session_cache" => {
                simple(d, 1, usize::MAX)?;
                set_once(&mut t.session_cache, session_cache(d)?, d)?;
            }
            "ssl_session_tickets" => {
                simple(d, 1, 1)?;
                set_once(&mut t.session_tickets, flag(d)?, d)?;
            }
            "ssl_session_timeout" => {
                simple(d, 1, 1)?;
                set_once(&mut t.session_timeout, time(d, arg(d, 0))?, d)?;
            }
            "ssl_session_ticket_key" => {
                simple(d, 1, 1)?;
                t.ticket_keys
                    .get_or_insert_with(Vec::new)
                    .push((self.conf_path(d), d.span.clone()));
            }
            "ssl_client_certificate" | "ssl_trusted_certificate" => {
                simple(d, 1, 1)?;
                if d.name == "ssl_client_certificate" {
                    set_once(
                        &mut t.client_certificate,
                        (self.conf_path(d), d.span.clone()),
                        d,
                    )?;
                } else {
                    self.warn(d, "\"ssl_trusted_certificate\" is ignored: OCSP stapling is not supported yet");
                }
            }
            "ssl_verify_client" => {
                simple(d, 1, 1)?;
                let v = match arg(d, 0) {
                    "on" => VerifyClient::On,
                    "off" => VerifyClient::Off,
                    "optional" => VerifyClient::Optional,
                    "optional_no_ca" => VerifyClient::OptionalNoCa,
                    other => {
                        return Err(err(
                            format!("invalid value \"{other}\" in \"ssl_verify_client\" directive, it must be \"on\", \"off\", \"optional\" or \"optional_no_ca\""),
                            d,
                        ))
                    }
                };
                set_once(&mut t.verify_client, v, d)?;
            }
            "ssl_verify_depth" => {
                simple(d, 1, 1)?;
                let n = match arg(d, 0).parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(directive_err(d, "invalid value")),
                };
                set_once(&mut t.verify_depth, n, d)?;
            }
            "ssl_handshake_timeout" => {
                simple(d, 1, 1)?;
                set_once(&mut t.handshake_timeout, time(d, arg(d, 0))?, d)?;
            }
            "ssl_stapling" | "ssl_stapling_verify" => {
                simple(d, 1, 1)?;
                if flag(d)? {
                    self.warn(
                        d,
                        &format!("\"{}\" is ignored: OCSP stapling is not supported yet", d.name),
                    );
                }
            }
            "ssl_dhparam" => {
                // nginx loads the file for the DHE suites; rustls has none, so
                // the file is only checked, as nginx would read it.
                simple(d, 1, 1)?;
                let path = self.conf_path(d);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    err(format!("BIO_new_file(\"{}\") failed ({e})", path.display()), d)
                })?;
                // OpenSSL reads PKCS#3 and X9.42 parameters alike.
                let dh = ["-----BEGIN DH PARAMETERS-----", "-----BEGIN X9.42 DH PARAMETERS-----"];
                if !dh.iter().any(|begin| text.contains(begin)) {
                    return Err(err(
                        format!("PEM_read_bio_DHparams(\"{}\") failed", path.display()),
                        d,
                    ));
                }
                self.warn(d, "\"ssl_dhparam\" is ignored: rustls has no DHE cipher suites");
            }
            "ssl_buffer_size" | "ssl_early_data" | "ssl_password_file"
            | "ssl_conf_command" | "ssl_reject_handshake" | "ssl_ecdh_curves" => {
                return Err(err(
                    format!("\"{}\" is not supported yet", d.name),
                    d,
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The versions of `ssl_protocols` / `proxy_ssl_protocols`: the ones
    /// rustls lacks are warned about, none left is an error.
    pub(super) fn protocol_list(
        &mut self,
        d: &Directive,
    ) -> Res<Vec<&'static SupportedProtocolVersion>> {
        let mut versions = Vec::new();
        for a in &d.args {
            match a.value.as_str() {
                "TLSv1.2" => versions.push(&rustls::version::TLS12),
                "TLSv1.3" => versions.push(&rustls::version::TLS13),
                "SSLv2" | "SSLv3" | "TLSv1" | "TLSv1.1" => self.warn(
                    d,
                    &format!("\"{}\" is not supported by rustls, ignored", a.value),
                ),
                other => {
                    return Err(err(
                        format!("invalid value \"{other}\" in \"{}\" directive", d.name),
                        d,
                    ))
                }
            }
        }
        if versions.is_empty() {
            return Err(err(
                format!(
                    "\"{}\" leaves no protocol rustls supports (TLSv1.2, TLSv1.3)",
                    d.name
                ),
                d,
            ));
        }
        Ok(versions)
    }

    pub(super) fn cipher_list(&mut self, d: &Directive) -> Res<Vec<SupportedCipherSuite>> {
        let mut unmatched = Vec::new();
        let suites = ciphers::select(arg(d, 0), &mut unmatched).map_err(|m| err(m, d))?;
        for name in unmatched {
            self.warn(
                d,
                &format!("cipher \"{name}\" matches no cipher suite rustls implements, ignored"),
            );
        }
        Ok(suites)
    }

    fn curves(&mut self, d: &Directive) -> Res<Vec<&'static dyn SupportedKxGroup>> {
        let spec = arg(d, 0);
        if spec == "auto" {
            return Ok(rustls::crypto::aws_lc_rs::DEFAULT_KX_GROUPS.to_vec());
        }
        let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
        for name in spec.split(':').filter(|n| !n.is_empty()) {
            let group: &'static dyn SupportedKxGroup = match name {
                "X25519" | "x25519" => kx_group::X25519,
                "prime256v1" | "P-256" | "secp256r1" => kx_group::SECP256R1,
                "secp384r1" | "P-384" => kx_group::SECP384R1,
                "X25519MLKEM768" => kx_group::X25519MLKEM768,
                other => {
                    self.warn(
                        d,
                        &format!("curve \"{other}\" is not supported by rustls, ignored"),
                    );
                    continue;
                }
            };
            groups.push(group);
        }
        if groups.is_empty() {
            return Err(err(
                format!("SSL_CTX_set1_curves_list(\"{spec}\") failed (no curve rustls supports)"),
                d,
            ));
        }
        Ok(groups)
    }

    /// The TLS of a server: `None` when it neither listens with `ssl` nor has
    /// certificates. `ssl_listen` is the span of its first `listen ... ssl`.
    pub(super) fn server_tls(
        &mut self,
        t: &TlsLayer,
        ssl_listen: Option<&Span>,
        header_timeout: Duration,
    ) -> Res<Option<Arc<ServerTls>>> {
        let certificates = t.certificates.clone().unwrap_or_default();
        if certificates.is_empty() {
            return match ssl_listen {
                Some(span) => Err(crate::config::ConfigError::new(
                    "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive",
                    span,
                )),
                None => Ok(None),
            };
        }
        let keys = t.keys.clone().unwrap_or_default();
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let mut loaded = Vec::new();
        for (i, (cert, span)) in certificates.iter().enumerate() {
            let Some((key, _)) = keys.get(i) else {
                return Err(crate::config::ConfigError::new(
                    format!(
                        "no \"ssl_certificate_key\" is defined for certificate \"{}\"",
                        cert.display()
                    ),
                    span,
                ));
            };
            loaded.push(
                load::certified_key(cert, key, &provider)
                    .map_err(|m| crate::config::ConfigError::new(m, span))?,
            );
        }
        let verify_client = t.verify_client.unwrap_or(VerifyClient::Off);
        let client_roots = match &t.client_certificate {
            Some((path, span)) => {
                Some(load::roots(path).map_err(|m| crate::config::ConfigError::new(m, span))?)
            }
            None => None,
        };
        let span = certificates
            .first()
            .map(|(_, s)| s.clone())
            .or_else(|| ssl_listen.cloned());
        if matches!(verify_client, VerifyClient::On | VerifyClient::Optional)
            && client_roots.is_none()
        {
            let message = "no ssl_client_certificate for ssl_verify_client";
            return Err(match &span {
                Some(s) => crate::config::ConfigError::new(message, s),
                None => crate::config::ConfigError::without_span(message),
            });
        }
        let mut ticket_keys = Vec::new();
        for (path, span) in t.ticket_keys.iter().flatten() {
            ticket_keys
                .push(TicketKey::load(path).map_err(|m| crate::config::ConfigError::new(m, span))?);
        }
        let settings = Settings {
            keys: loaded,
            versions: t
                .protocols
                .clone()
                .unwrap_or_else(|| vec![&rustls::version::TLS12, &rustls::version::TLS13]),
            suites: match &t.ciphers {
                Some(s) => s.clone(),
                None => ciphers::select("HIGH:!aNULL:!MD5", &mut Vec::new())
                    .map_err(crate::config::ConfigError::without_span)?,
            },
            kx_groups: t
                .curves
                .clone()
                .unwrap_or_else(|| rustls::crypto::aws_lc_rs::DEFAULT_KX_GROUPS.to_vec()),
            prefer_server_ciphers: t.prefer_server_ciphers.unwrap_or(false),
            session_cache: t.session_cache.unwrap_or(SessionCache::None),
            session_tickets: t.session_tickets.unwrap_or(true),
            session_timeout: t.session_timeout.unwrap_or(Duration::from_secs(300)),
            ticket_keys,
            verify_client,
            client_roots,
            verify_depth: t.verify_depth.unwrap_or(1),
            handshake_timeout: t.handshake_timeout.unwrap_or(header_timeout),
        };
        let built = ServerTls::build(settings).map_err(|m| match &span {
            Some(s) => crate::config::ConfigError::new(m, s),
            None => crate::config::ConfigError::without_span(m),
        })?;
        Ok(Some(Arc::new(built)))
    }
}

/// `ssl_session_cache off | none | [builtin[:size]] [shared:name:size]`;
/// a shared megabyte holds about 4000 sessions, as nginx's.
fn session_cache(d: &Directive) -> Res<SessionCache> {
    let mut sessions = 0usize;
    for a in &d.args {
        let v = a.value.as_str();
        match v {
            "off" if d.args.len() == 1 => return Ok(SessionCache::Off),
            "none" if d.args.len() == 1 => return Ok(SessionCache::None),
            "builtin" => sessions += 20480,
            _ => {
                if let Some(n) = v.strip_prefix("builtin:") {
                    match n.parse::<usize>() {
                        Ok(n) if n > 0 => sessions += n,
                        _ => return Err(invalid_cache(d, v)),
                    }
                } else if let Some(rest) = v.strip_prefix("shared:") {
                    let Some((name, bytes)) = rest.rsplit_once(':') else {
                        return Err(invalid_cache(d, v));
                    };
                    let bytes = size(d, bytes)?;
                    if name.is_empty() || bytes < 8192 {
                        return Err(invalid_cache(d, v));
                    }
                    sessions += usize::try_from(bytes / 256).unwrap_or(usize::MAX);
                } else {
                    return Err(invalid_cache(d, v));
                }
            }
        }
    }
    Ok(SessionCache::Sessions(sessions))
}

fn invalid_cache(d: &Directive, v: &str) -> crate::config::ConfigError {
    err(format!("invalid session cache \"{v}\""), d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::config::build::tests::ok;
    use crate::config::load_str;

    /// A directory with `site.pem`/`site.key` (ECDSA) and `other.key`,
    /// made at test time.
    fn files(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sticky-proxy-tlsconf-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["t.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("site.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("site.key"), key.serialize_pem()).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.join("other.key"), other.serialize_pem()).unwrap();
        std::fs::write(dir.join("short.tk"), b"0123456789").unwrap();
        dir
    }

    fn error(src: &str) -> String {
        load_str(src, Path::new("/etc/proxy/test.conf"))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn tls_configuration_errors_carry_nginx_s_texts_and_lines() {
        let dir = files("errors");
        let d = dir.display();
        let cases = [
            (
                "http {\nserver { listen 127.0.0.1:0 ssl; }\n}".to_string(),
                "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in /etc/proxy/test.conf:2",
            ),
            (
                "http {\nserver {\nlisten 127.0.0.1:0;\nssl on;\n}\n}".to_string(),
                "unknown directive \"ssl\"",
            ),
            (
                format!("http {{ server {{ listen 127.0.0.1:0 ssl; ssl_certificate {d}/missing.pem; ssl_certificate_key {d}/site.key; }} }}"),
                "cannot load certificate \"",
            ),
            (
                format!("http {{ server {{ listen 127.0.0.1:0 ssl; ssl_certificate {d}/site.pem; ssl_certificate_key {d}/missing.key; }} }}"),
                "cannot load certificate key \"",
            ),
            (
                format!("http {{ server {{ listen 127.0.0.1:0 ssl; ssl_certificate {d}/site.pem; ssl_certificate_key {d}/other.key; }} }}"),
                "failed (key values mismatch)",
            ),
            (
                format!("http {{ server {{ listen 127.0.0.1:0 ssl; ssl_certificate {d}/site.pem; }} }}"),
                "no \"ssl_certificate_key\" is defined for certificate",
            ),
            (
                "http { ssl_ciphers \"AES128-SHA:RC4\"; }".to_string(),
                "SSL_CTX_set_cipher_list(\"AES128-SHA:RC4\") failed",
            ),
            (
                "http { ssl_protocols SSLv3 TLSv1; }".to_string(),
                "leaves no protocol rustls supports",
            ),
            (
                "http { ssl_protocols TLSv1.4; }".to_string(),
                "invalid value \"TLSv1.4\" in \"ssl_protocols\" directive",
            ),
            (
                format!("http {{ server {{ listen 127.0.0.1:0 ssl; ssl_certificate {d}/site.pem; ssl_certificate_key {d}/site.key; ssl_verify_client on; }} }}"),
                "no ssl_client_certificate for ssl_verify_client",
            ),
            (
                "http { ssl_session_cache shared:SSL; }".to_string(),
                "invalid session cache \"shared:SSL\"",
            ),
            (
                "http { server { location / { ssl_protocols TLSv1.2; } } }".to_string(),
                "\"ssl_protocols\" directive is not allowed here",
            ),
            (
                "http { ssl_ecdh_curve X448; }".to_string(),
                "SSL_CTX_set1_curves_list(\"X448\") failed",
            ),
        ];
        for (src, want) in cases {
            let e = error(&src);
            assert!(e.contains(want), "{src}\n{e}");
        }
        let ticket_key_cases = [
            (
                format!("http {{ server {{ listen 127.0.0.1:0 ssl; ssl_certificate {d}/site.pem; ssl_certificate_key {d}/site.key;\nssl_session_ticket_key {d}/short.tk; }} }}"),
                format!("\"{d}/short.tk\" must be 48 or 80 bytes in /etc/proxy/test.conf:2"),
            ),
            (
                format!("http {{ ssl_session_ticket_key {d}/missing.tk; server {{ listen 127.0.0.1:0 ssl; ssl_certificate {d}/site.pem; ssl_certificate_key {d}/site.key; }} }}"),
                format!("open() \"{d}/missing.tk\" failed"),
            ),
        ];
        for (src, want) in ticket_key_cases {
            let e = error(&src);
            assert!(e.contains(&want), "{src}\n{e}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn ssl_dhparam_is_checked_and_warned_as_ignored() {
        let dir = files("dhparam");
        let d = dir.display();
        std::fs::write(
            dir.join("dh.pem"),
            "-----BEGIN DH PARAMETERS-----\nMAgCAQACAQI=\n-----END DH PARAMETERS-----\n",
        )
        .unwrap();
        std::fs::write(dir.join("not-dh.pem"), "hello\n").unwrap();
        let conf = |file: &str| {
            format!(
                "http {{ server {{ listen 127.0.0.1:0 ssl;
                   ssl_certificate {d}/site.pem; ssl_certificate_key {d}/site.key;
                   ssl_dhparam {d}/{file}; }} }}"
            )
        };
        let (_, warnings) = ok(&conf("dh.pem"));
        let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            ["\"ssl_dhparam\" is ignored: rustls has no DHE cipher suites"]
        );
        let missing = error(&conf("missing.pem"));
        assert!(
            missing.contains("BIO_new_file(") && missing.contains("missing.pem"),
            "{missing}"
        );
        let bad = error(&conf("not-dh.pem"));
        assert!(bad.contains("PEM_read_bio_DHparams("), "{bad}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn http_level_settings_are_inherited_and_old_protocols_warn() {
        let dir = files("inherit");
        let d = dir.display();
        let (c, warnings) = ok(&format!(
            "http {{
               ssl_certificate {d}/site.pem; ssl_certificate_key {d}/site.key;
               ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_stapling on;
               ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA;
               ssl_ecdh_curve X25519:secp521r1;
               server {{ listen 127.0.0.1:0 ssl; }}
               server {{ listen 127.0.0.1:1 ssl; ssl_session_cache builtin:100 shared:S:1m; }}
               server {{ listen 127.0.0.1:2; }}
             }}"
        ));
        let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "\"TLSv1\" is not supported by rustls, ignored",
                "\"TLSv1.1\" is not supported by rustls, ignored",
                "\"ssl_stapling\" is ignored: OCSP stapling is not supported yet",
                "cipher \"AES128-SHA\" matches no cipher suite rustls implements, ignored",
                "curve \"secp521r1\" is not supported by rustls, ignored",
            ]
        );
        let servers = &c.http.servers;
        assert!(servers[0].listens[0].ssl && servers[0].tls.is_some());
        assert!(servers[1].tls.is_some());
        // Certificates inherited from http: the plain server has TLS settings
        // too (an ssl address it shared would use them), but no ssl listen.
        assert!(!servers[2].listens[0].ssl);
        let tls = servers[0].tls.as_ref().unwrap();
        assert_eq!(tls.config.crypto_provider().kx_groups.len(), 1);
        let suites = &tls.config.crypto_provider().cipher_suites;
        assert_eq!(suites.len(), 4, "three TLS 1.3 suites and the one named");
        let _ = std::fs::remove_dir_all(dir);
    }
}
