//! Test certificates made at run time (rcgen): a CA, server and client
//! certificates written as PEM files for the proxy's configuration, rustls
//! settings for the test clients and HTTPS backends, and what an HTTPS
//! backend saw of each handshake.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test certificate authority and the files it wrote.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "sticky-proxy-tls-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ca key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{tag} test CA"));
        let cert = params.self_signed(&key).expect("ca cert");
        std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write ca");
        Pki {
            dir,
            ca_cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Issues a certificate for `names` (ECDSA P-256, or RSA 2048), writes
    /// `FILE.pem` and `FILE.key`; returns the certificate.
    pub fn issue(&self, file: &str, names: &[&str], rsa: bool) -> CertificateDer<'static> {
        let (cert, key) = self.make(names, rsa, None);
        std::fs::write(self.dir.join(format!("{file}.pem")), cert.pem()).expect("write cert");
        std::fs::write(self.dir.join(format!("{file}.key")), key.serialize_pem()).expect("key");
        cert.der().clone()
    }

    pub fn make(
        &self,
        names: &[&str],
        rsa: bool,
        common_name: Option<&str>,
    ) -> (rcgen::Certificate, KeyPair) {
        let key = if rsa {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .expect("rsa key")
        } else {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ec key")
        };
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        if let Some(cn) = common_name {
            params.distinguished_name.push(DnType::CommonName, cn);
            params
                .distinguished_name
                .push(DnType::OrganizationName, "Sticky Test");
        }
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert, key)
    }

    /// A client certificate and key for rustls.
    pub fn client_identity(
        &self,
        cn: &str,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let (cert, key) = self.make(&["client.test"], false, Some(cn));
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_cert.clone()).expect("root");
        roots
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// What an HTTPS backend saw of one finished handshake.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The SNI name the proxy sent, if any.
    pub sni: Option<String>,
    pub resumed: bool,
    /// The proxy presented a client certificate.
    pub client_cert: bool,
}

impl Handshake {
    pub fn of(conn: &rustls::ServerConnection) -> Handshake {
        Handshake {
            sni: conn.server_name().map(str::to_string),
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
        }
    }
}

impl Pki {
    /// The rustls settings of an HTTPS backend showing certificate `file`
    /// (made with [`Pki::issue`]); with `client_ca`, client certificates
    /// signed by this CA are required.
    pub fn server_config(&self, file: &str, client_ca: bool) -> Arc<rustls::ServerConfig> {
        let chain = vec![
            CertificateDer::from_pem_file(self.dir.join(format!("{file}.pem"))).expect("cert"),
        ];
        let key = PrivateKeyDer::from_pem_file(self.dir.join(format!("{file}.key"))).expect("key");
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions");
        let builder = if client_ca {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(self.roots()),
                provider(),
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(builder.with_single_cert(chain, key).expect("server cert"))
    }
}
