//! The TLS side of one `ssl` listen address: which server's settings and
//! certificates a handshake uses, chosen by the SNI name with the same
//! server-name tables as the Host header (`proxy::route::Router`), the
//! address's default server when the client sends no name or an unknown one.

use std::net::SocketAddr;
use std::sync::Arc;

use super::listen::on_address;
use crate::config::{Config, ConnectionConf, ServerConf};
use crate::proxy::route::Router;
use crate::tls::ServerTls;

/// The TLS servers of one listen address.
#[derive(Debug)]
pub(super) struct Sites {
    addr: SocketAddr,
    router: Router,
    /// The default server's TLS (else the first server's on the address that
    /// has one).
    default: Arc<ServerTls>,
    /// `listen ... http2`: ALPN offers `h2` whichever server is chosen.
    listen_http2: bool,
    /// The default server's connection settings (`http2` and its limits,
    /// timeouts, `keepalive_*`).
    default_connection: ConnectionConf,
}

/// What a ClientHello's SNI name chose: the certificates, whether ALPN
/// offers `h2`, and the connection settings the connection then has (nginx
/// gives a connection the configuration of the server its SNI name chose).
pub(super) struct Chosen {
    pub(super) tls: Arc<ServerTls>,
    pub(super) h2: bool,
    pub(super) connection: ConnectionConf,
}

impl Sites {
    /// `None` when no server on `addr` has TLS settings.
    pub(super) fn new(
        config: &Config,
        addr: SocketAddr,
        default_server: &ServerConf,
        listen_http2: bool,
    ) -> Option<Sites> {
        let default = default_server
            .tls
            .clone()
            .or_else(|| on_address(config, addr).find_map(|s| s.tls.clone()))?;
        Some(Sites {
            addr,
            router: Router::new(config),
            default,
            listen_http2,
            default_connection: default_server.connection.clone(),
        })
    }

    /// The settings for a ClientHello naming `sni` (those of the server the
    /// name routes to when it has TLS settings, else the default server's),
    /// and whether ALPN offers `h2` (`http2 on` in the server chosen, or
    /// `listen ... http2`).
    pub(super) fn choose(&self, sni: Option<&str>) -> Chosen {
        let chosen = sni.and_then(|name| {
            let routed = self.router.server(self.addr, Some(name.as_bytes())).ok()?;
            let server = routed.server;
            server.tls.clone().map(|tls| (tls, &server.connection))
        });
        let (tls, connection) =
            chosen.unwrap_or_else(|| (Arc::clone(&self.default), &self.default_connection));
        Chosen {
            tls,
            h2: connection.http2.enabled || self.listen_http2,
            connection: connection.clone(),
        }
    }

    /// The handshake timeout (the default server's).
    pub(super) fn handshake_timeout(&self) -> std::time::Duration {
        self.default.handshake_timeout
    }
}
