//! The rustls settings of TLS to the backends (`proxy_pass https://`,
//! `proxy_ssl_*`), built once per location at configuration time and shared by
//! every worker thread (its session cache too), and the name a connection
//! verifies and (with `proxy_ssl_server_name on`) sends as SNI.
//!
//! As in nginx, the backend's certificate is not verified unless
//! `proxy_ssl_verify on`: then a [`Lax`] verifier accepts any certificate but
//! still checks the handshake's signatures (the backend holds the key of the
//! certificate it shows). With verification, the chain is checked against
//! `proxy_ssl_trusted_certificate` and the name (webpki) and its length
//! against `proxy_ssl_verify_depth`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption, WebPkiServerVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};

use crate::config::Template;

/// The `proxy_ssl_*` settings of one location, checked.
#[derive(Debug)]
pub struct ClientSettings {
    /// `proxy_ssl_verify`.
    pub verify: bool,
    /// `proxy_ssl_trusted_certificate`, read.
    pub trusted: Option<RootCertStore>,
    /// `proxy_ssl_verify_depth` (nginx's default 1).
    pub verify_depth: u32,
    pub versions: Vec<&'static SupportedProtocolVersion>,
    pub suites: Vec<SupportedCipherSuite>,
    /// `proxy_ssl_certificate` + `proxy_ssl_certificate_key`.
    pub certificate: Option<Arc<CertifiedKey>>,
    /// `proxy_ssl_session_reuse`.
    pub session_reuse: bool,
    /// `proxy_ssl_server_name`.
    pub server_name: bool,
    /// `proxy_ssl_name`; `None`: the host of the `proxy_pass` URL.
    pub name: Option<Template>,
}

/// Sessions kept per location for `proxy_ssl_session_reuse` (rustls keeps
/// them per server name).
const SESSIONS: usize = 256;

/// The TLS to the backends of one location.
#[derive(Debug)]
pub struct BackendTls {
    pub config: Arc<rustls::ClientConfig>,
    /// `proxy_ssl_name`; `None`: the host of the `proxy_pass` URL.
    pub name: Option<Template>,
}

impl BackendTls {
    /// Builds the rustls client settings. `Err` says why, as nginx would.
    pub fn build(s: ClientSettings) -> Result<BackendTls, String> {
        let base = aws_lc_rs::default_provider();
        let algorithms = base.signature_verification_algorithms;
        let provider = Arc::new(CryptoProvider {
            cipher_suites: s.suites,
            ..base
        });
        let verifier: Arc<dyn ServerCertVerifier> = if s.verify {
            let roots = s
                .trusted
                .filter(|r| !r.is_empty())
                .ok_or("no proxy_ssl_trusted_certificate for proxy_ssl_verify")?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("invalid \"proxy_ssl_trusted_certificate\": {e}"))?;
            Arc::new(Strict {
                webpki,
                depth: s.verify_depth.max(1) as usize,
            })
        } else {
            Arc::new(Lax { algorithms })
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&s.versions)
            .map_err(|e| format!("no usable TLS settings: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match s.certificate {
            Some(key) => builder.with_client_cert_resolver(Arc::new(OneCert(key))),
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = s.server_name;
        config.resumption = if s.session_reuse {
            Resumption::in_memory_sessions(SESSIONS)
        } else {
            Resumption::disabled()
        };
        Ok(BackendTls {
            config: Arc::new(config),
            name: s.name,
        })
    }
}

/// The ClientHello of Tengine's `check type=ssl_hello`, made once by rustls
/// (TLS 1.2 and 1.3 offered, no SNI: the peer's name is not known to a
/// check). `None` if rustls could not make one.
pub fn check_hello() -> Option<&'static [u8]> {
    static HELLO: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    HELLO
        .get_or_init(|| {
            let provider = aws_lc_rs::default_provider();
            let algorithms = provider.signature_verification_algorithms;
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lax { algorithms }))
                .with_no_client_auth();
            let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
            let mut conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
            let mut hello = Vec::new();
            conn.write_tls(&mut hello).ok()?;
            Some(hello)
        })
        .as_deref()
}

/// The verdict on the reply to [`check_hello`]: up when it starts with a TLS
/// handshake record holding a ServerHello; `None` while fewer than its first
/// six bytes are in.
pub fn hello_verdict(reply: &[u8]) -> Option<bool> {
    // Record: type 22 (handshake), version 3.x, length (2); then the
    // handshake type, 2 = ServerHello.
    match reply {
        [22, 3, _, _, _, 2, ..] => Some(true),
        [first, ..] if *first != 22 => Some(false),
        [_, second, ..] if *second != 3 => Some(false),
        _ if reply.len() >= 6 => Some(false),
        _ => None,
    }
}

/// The rustls name for `host` (an address or a DNS name; brackets of an IPv6
/// address and a port are taken off), `None` when it is neither.
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    let host = host
        .strip_prefix('[')
        .map_or(host, |h| h.split_once(']').map_or(h, |(addr, _)| addr));
    let host = match host.rsplit_once(':') {
        // One colon: `name:port`; more: an IPv6 address.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    ServerName::try_from(host.to_string()).ok()
}

/// The certificate `proxy_ssl_certificate` sends whenever the backend asks.
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesClientCert for OneCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `proxy_ssl_verify on`: webpki, with nginx's chain length limit.
#[derive(Debug)]
struct Strict {
    webpki: Arc<WebPkiServerVerifier>,
    /// `proxy_ssl_verify_depth`: at most this many certificates above the
    /// backend's own.
    depth: usize,
}

impl ServerCertVerifier for Strict {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if intermediates.len() >= self.depth {
            return Err(Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(DepthExceeded)),
            )));
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// OpenSSL's words for a chain longer than the verify depth.
#[derive(Debug)]
struct DepthExceeded;

impl std::fmt::Display for DepthExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("certificate chain too long")
    }
}

impl std::error::Error for DepthExceeded {}

/// `proxy_ssl_verify off` (nginx's default): any certificate is taken, but
/// the handshake's signatures are checked with the certificate's key.
#[derive(Debug)]
struct Lax {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lax {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn server_name_takes_the_host_of_host_port() {
        let cases = [
            ("example.com", Some("example.com")),
            ("example.com:8443", Some("example.com")),
            ("127.0.0.1:443", Some("127.0.0.1")),
            ("[::1]:443", Some("::1")),
            ("[::1]", Some("::1")),
            ("::1", Some("::1")),
            ("bad name!", None),
        ];
        for (host, want) in cases {
            let got = server_name(host).map(|n| n.to_str().into_owned());
            assert_eq!(got.as_deref(), want, "{host}");
        }
    }

    fn settings(verify: bool, trusted: Option<RootCertStore>) -> ClientSettings {
        ClientSettings {
            verify,
            trusted,
            verify_depth: 1,
            versions: vec![&rustls::version::TLS12, &rustls::version::TLS13],
            suites: crate::tls::ciphers::select("HIGH", &mut Vec::new()).unwrap(),
            certificate: None,
            session_reuse: true,
            server_name: false,
            name: None,
        }
    }

    #[test]
    fn verification_needs_trusted_certificates_and_sni_is_off_by_default() {
        let err = BackendTls::build(settings(true, None)).unwrap_err();
        assert_eq!(err, "no proxy_ssl_trusted_certificate for proxy_ssl_verify");
        let tls = BackendTls::build(settings(false, None)).unwrap();
        assert!(!tls.config.enable_sni);
    }

    #[test]
    fn the_check_hello_is_a_client_hello_and_only_a_server_hello_passes() {
        let hello = check_hello().unwrap();
        assert_eq!(&hello[..2], &[22, 3], "a handshake record");
        assert_eq!(hello[5], 1, "ClientHello");
        let cases: [(&[u8], Option<bool>); 6] = [
            (&[22, 3, 3, 0, 90, 2, 0], Some(true)),
            (&[22, 3, 1], None),
            (b"HTTP/1.1 400 Bad Request", Some(false)),
            (&[21, 3, 3, 0, 2, 2, 40], Some(false)),
            (&[22, 3, 3, 0, 4, 14, 0], Some(false)),
            (&[], None),
        ];
        for (reply, want) in cases {
            assert_eq!(hello_verdict(reply), want, "{reply:?}");
        }
    }
}
