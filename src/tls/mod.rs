//! TLS with rustls: what the configuration loads (certificates, keys, CAs:
//! `load`), the OpenSSL cipher-string mapping (`ciphers`), the per-server
//! rustls settings built once per configuration (`server`, with `session`
//! for `ssl_session_timeout` and `ticket_key` for `ssl_session_ticket_key`; `client`
//! for TLS to the backends), and the facts of
//! one finished handshake that the `$ssl_*` variables show ([`TlsInfo`]).
//!
//! A leaf module: it knows neither the proxy nor the connection loops. The
//! configuration builder calls `load` and `server` (reading files is its
//! only I/O); `downstream::tls` runs handshakes with the settings built here.

pub mod ciphers;
pub mod client;
pub mod load;
pub mod server;
pub mod session;
pub mod ticket_key;

pub use server::{ServerTls, VerifyClient};

/// The facts of one client TLS connection, fixed at the end of its handshake
/// (`$ssl_protocol`, `$ssl_cipher`, `$ssl_server_name`, `$ssl_session_reused`,
/// `$ssl_client_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// The OpenSSL name of the negotiated suite.
    pub cipher: &'static str,
    /// The SNI name the client sent (empty when none).
    pub server_name: String,
    /// The handshake resumed a session (`$ssl_session_reused` = `r`).
    pub reused: bool,
    /// `NONE`, `SUCCESS` or `FAILED:reason` (`$ssl_client_verify`).
    pub client_verify: String,
    /// The client certificate's subject, RFC 2253 (`$ssl_client_s_dn`).
    pub client_s_dn: String,
    /// SHA-1 of the client certificate, hex (`$ssl_client_fingerprint`).
    pub client_fingerprint: String,
    /// What `ssl_verify_client` makes of the client certificate: every request
    /// of the connection is refused with it (nginx's 495 and 496, sent as 400).
    pub refusal: Option<CertRefusal>,
}

/// Why the requests of a TLS connection are refused under
/// `ssl_verify_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRefusal {
    /// The client's certificate did not verify (nginx's 495: `400 The SSL
    /// certificate error`).
    CertificateError,
    /// `ssl_verify_client on` and the client sent none (nginx's 496: `400 No
    /// required SSL certificate was sent`).
    NoCertificate,
}
