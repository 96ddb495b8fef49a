//! Reading PEM files for TLS (the configuration's only TLS I/O):
//! certificate chains, private keys (a key file may also hold the chain, as
//! nginx accepts), CA bundles. Errors are nginx's texts without the OpenSSL
//! codes.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

/// The certificates of a PEM file, in file order (leaf first).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let cannot = |why: String| format!("cannot load certificate \"{}\": {why}", path.display());
    let bytes = std::fs::read(path).map_err(|e| cannot(format!("BIO_new_file() failed ({e})")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cannot(format!("PEM_read_bio_X509_AUX() failed ({e})")))?;
    if certs.is_empty() {
        return Err(cannot(
            "PEM_read_bio_X509_AUX() failed (no certificate)".into(),
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of a PEM file;
/// certificates in the same file are skipped.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let cannot = |why: String| format!("cannot load certificate key \"{}\": {why}", path.display());
    let bytes = std::fs::read(path).map_err(|e| cannot(format!("BIO_new_file() failed ({e})")))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| cannot(format!("PEM_read_bio_PrivateKey() failed ({e})")))
}

/// A certificate chain and its key, checked to belong together.
pub fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = certificates(cert)?;
    let der = private_key(key)?;
    let signing = provider.key_provider.load_private_key(der).map_err(|e| {
        format!(
            "cannot load certificate key \"{}\": unsupported key ({e})",
            key.display()
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        format!(
            "SSL_CTX_use_PrivateKey(\"{}\") failed (key values mismatch)",
            key.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// The trusted CAs of a PEM bundle (`ssl_client_certificate`,
/// `proxy_ssl_trusted_certificate`).
pub fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store.add(cert).map_err(|e| {
            format!(
                "SSL_CTX_load_verify_locations(\"{}\") failed ({e})",
                path.display()
            )
        })?;
    }
    Ok(store)
}
