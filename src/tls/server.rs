//! The rustls settings of one `server` block (built once per configuration,
//! shared by every worker thread: its session cache and ticket keys too), the
//! choice among its certificates, and the verdict on a client certificate.
//!
//! Client certificates (`ssl_verify_client`): the handshake asks for one and
//! checks that the client holds its key, but lets a certificate that does not
//! verify through; the verdict ([`ServerTls::info`]) is taken after the
//! handshake, as nginx does, so such a client gets nginx's `400 The SSL
//! certificate error` page instead of a TLS alert.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::aws_lc_rs::{self, Ticketer};
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{
    ClientHello, NoServerSessionStorage, ProducesTickets, ResolvesServerCert,
    ServerSessionMemoryCache, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, CipherSuite, DigitallySignedStruct, DistinguishedName, Error, HandshakeKind,
    ProtocolVersion, RootCertStore, ServerConnection, SignatureAlgorithm, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};

use super::session::{self, TimedCache, TimedTickets};
use super::ticket_key::{KeyFileTicketer, TicketKey};
use super::{ciphers, CertRefusal, TlsInfo};

/// `ssl_verify_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyClient {
    Off,
    On,
    Optional,
    /// A certificate is asked for but not checked against a CA.
    OptionalNoCa,
}

/// `ssl_session_cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCache {
    /// `off`: no session is resumed from a cache (tickets still may).
    Off,
    /// `none` (nginx's default): the same, said gently.
    None,
    /// `builtin:N` / `shared:NAME:SIZE`: this many sessions, shared by every
    /// worker thread.
    Sessions(usize),
}

/// One server's TLS settings as the configuration spells them, checked.
#[derive(Debug)]
pub struct Settings {
    pub keys: Vec<Arc<CertifiedKey>>,
    pub versions: Vec<&'static SupportedProtocolVersion>,
    pub suites: Vec<SupportedCipherSuite>,
    pub kx_groups: Vec<&'static dyn SupportedKxGroup>,
    pub prefer_server_ciphers: bool,
    pub session_cache: SessionCache,
    pub session_tickets: bool,
    /// `ssl_session_timeout`: no older session is resumed.
    pub session_timeout: Duration,
    /// `ssl_session_ticket_key`: the first seals, all open (none: keys
    /// made by the proxy).
    pub ticket_keys: Vec<TicketKey>,
    pub verify_client: VerifyClient,
    pub client_roots: Option<RootCertStore>,
    pub verify_depth: u32,
    pub handshake_timeout: Duration,
}

/// The TLS of one `server` block, ready to accept handshakes.
#[derive(Debug)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    /// The same settings with ALPN offering `h2` before `http/1.1` (a
    /// server with HTTP/2 on).
    pub config_h2: Arc<rustls::ServerConfig>,
    /// `ssl_handshake_timeout`.
    pub handshake_timeout: Duration,
    verify_client: VerifyClient,
    /// The verifier of client certificates against `ssl_client_certificate`.
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    verify_depth: u32,
}

impl ServerTls {
    /// Builds the rustls settings: protocol versions, suites, curves, the
    /// session cache and ticket keys, client-certificate requests.
    pub fn build(s: Settings) -> Result<ServerTls, String> {
        let base = aws_lc_rs::default_provider();
        let algorithms = base.signature_verification_algorithms;
        let provider = Arc::new(CryptoProvider {
            cipher_suites: s.suites,
            kx_groups: s.kx_groups,
            ..base
        });
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&s.versions)
            .map_err(|e| format!("no usable TLS settings: {e}"))?;
        let verifier = match &s.client_roots {
            Some(roots) if s.verify_client != VerifyClient::Off => Some(
                WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots.clone()),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| format!("invalid \"ssl_client_certificate\": {e}"))?,
            ),
            _ => None,
        };
        let builder = if s.verify_client == VerifyClient::Off {
            builder.with_no_client_auth()
        } else {
            builder.with_client_cert_verifier(Arc::new(Lenient {
                hints: verifier
                    .as_ref()
                    .map(|v| v.root_hint_subjects().to_vec())
                    .unwrap_or_default(),
                algorithms,
            }))
        };
        let mut config = builder.with_cert_resolver(Arc::new(Keys(s.keys)));
        config.ignore_client_order = s.prefer_server_ciphers;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let clock = session::system_clock();
        config.session_storage = match s.session_cache {
            SessionCache::Off | SessionCache::None => Arc::new(NoServerSessionStorage {}),
            SessionCache::Sessions(n) => TimedCache::new(
                ServerSessionMemoryCache::new(n.max(1)),
                s.session_timeout,
                Arc::clone(&clock),
            ),
        };
        if s.session_tickets {
            let keys: Arc<dyn ProducesTickets> = match KeyFileTicketer::new(s.ticket_keys) {
                Some(from_files) => Arc::new(from_files),
                // Keys made at start (and at each reload), rotated by rustls
                // every 6 hours, the previous key still accepted.
                None => {
                    Ticketer::new().map_err(|e| format!("cannot make session ticket keys: {e}"))?
                }
            };
            config.ticketer = TimedTickets::new(keys, s.session_timeout, clock);
        }
        let mut config_h2 = config.clone();
        config_h2.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            config_h2: Arc::new(config_h2),
            handshake_timeout: s.handshake_timeout,
            verify_client: s.verify_client,
            verifier,
            verify_depth: s.verify_depth,
        })
    }

    /// The facts of a finished handshake, with the verdict on the client's
    /// certificate.
    pub fn info(&self, conn: &ServerConnection) -> TlsInfo {
        let protocol = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "",
        };
        let mut info = TlsInfo {
            protocol,
            cipher: conn
                .negotiated_cipher_suite()
                .map_or("", |s| ciphers::openssl_name(s.suite())),
            server_name: conn.server_name().unwrap_or_default().to_string(),
            reused: conn.handshake_kind() == Some(HandshakeKind::Resumed),
            client_verify: "NONE".to_string(),
            ..TlsInfo::default()
        };
        if self.verify_client == VerifyClient::Off {
            return info;
        }
        let chain = conn.peer_certificates().unwrap_or_default();
        let Some((leaf, intermediates)) = chain.split_first() else {
            if self.verify_client == VerifyClient::On {
                info.refusal = Some(CertRefusal::NoCertificate);
            }
            return info;
        };
        info.client_s_dn = subject_dn(leaf);
        info.client_fingerprint = hex::encode(::aws_lc_rs::digest::digest(
            &::aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            leaf.as_ref(),
        ));
        let verdict = match &self.verifier {
            _ if intermediates.len() >= self.verify_depth.max(1) as usize => {
                Err("certificate chain too long".to_string())
            }
            Some(verifier) => verifier
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .map(|_| ())
                .map_err(|e| verify_reason(&e)),
            None => Err("unable to get local issuer certificate".to_string()),
        };
        match verdict {
            Ok(()) => info.client_verify = "SUCCESS".to_string(),
            Err(reason) => {
                info.client_verify = format!("FAILED:{reason}");
                if self.verify_client != VerifyClient::OptionalNoCa {
                    info.refusal = Some(CertRefusal::CertificateError);
                }
            }
        }
        info
    }
}

/// OpenSSL's words for the common verification failures.
fn verify_reason(e: &Error) -> String {
    match e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "unable to get local issuer certificate".to_string()
        }
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "certificate has expired".to_string(),
        Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "certificate is not yet valid".to_string(),
        Error::InvalidCertificate(CertificateError::BadSignature) => {
            "certificate signature failure".to_string()
        }
        Error::InvalidCertificate(CertificateError::Revoked) => "certificate revoked".to_string(),
        other => other.to_string(),
    }
}

/// The subject of a certificate, RFC 2253 (`CN=client,O=Example`).
fn subject_dn(der: &CertificateDer<'_>) -> String {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return String::new();
    };
    let registry = x509_parser::objects::oid_registry();
    let mut out = String::new();
    let rdns: Vec<_> = cert.subject().iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match x509_parser::objects::oid2abbrev(attr.attr_type(), registry) {
                Ok(name) => out.push_str(name),
                Err(_) => out.push_str(&attr.attr_type().to_id_string()),
            }
            out.push('=');
            match attr.as_str() {
                Ok(value) => escape_dn_value(value, &mut out),
                Err(_) => {
                    out.push('#');
                    out.push_str(&hex::encode(attr.attr_value().data));
                }
            }
        }
    }
    out
}

/// RFC 2253 section 2.4 escaping of an attribute value.
fn escape_dn_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The server's certificates: the first whose key can sign with a scheme
/// the client offers, ECDSA and EdDSA before RSA (smaller and faster).
#[derive(Debug)]
struct Keys(Vec<Arc<CertifiedKey>>);

impl ResolvesServerCert for Keys {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        let usable = |k: &&Arc<CertifiedKey>| k.key.choose_scheme(schemes).is_some();
        // A TLS 1.2-only client may offer RSA suites alone: then only an RSA
        // certificate can serve it.
        let non_rsa_ok = hello.cipher_suites().iter().any(|s| {
            matches!(
                s,
                CipherSuite::TLS13_AES_128_GCM_SHA256
                    | CipherSuite::TLS13_AES_256_GCM_SHA384
                    | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
                    | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                    | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                    | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            )
        });
        self.0
            .iter()
            .filter(|k| non_rsa_ok && k.key.algorithm() != SignatureAlgorithm::RSA)
            .find(usable)
            .or_else(|| self.0.iter().find(usable))
            .or_else(|| self.0.first())
            .cloned()
    }
}

/// Asks for a client certificate and checks the client holds its key, but
/// leaves the verdict on the certificate to [`ServerTls::info`].
#[derive(Debug)]
struct Lenient {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for Lenient {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
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
mod tests {
    use super::*;

    #[test]
    fn dn_values_are_escaped_as_rfc_2253_says() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "a\\,b"),
            (" lead", "\\ lead"),
            ("trail ", "trail\\ "),
            ("#x", "\\#x"),
            ("q\"+;<>\\", "q\\\"\\+\\;\\<\\>\\\\"),
        ];
        for (value, want) in cases {
            let mut out = String::new();
            escape_dn_value(value, &mut out);
            assert_eq!(out, want, "{value}");
        }
    }
}
