//! The TLS side of one `ssl` listen address: which server's settings and
//! certificates a handshake uses, chosen by the SNI name with the same
//! server-name tables as the Host header (`proxy::route::Router`), the
//! address's default server when the client sends no name or an unknown one.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, ServerConf};
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
}

impl Sites {
    /// `None` when no server on `addr` has TLS settings.
    pub(super) fn new(config: &Config, addr: SocketAddr, default: &ServerConf) -> Option<Sites> {
        let on_addr = || {
            config
                .http
                .servers
                .iter()
                .filter(|s| s.listens.iter().any(|l| l.addr == addr))
        };
        let default = default
            .tls
            .clone()
            .or_else(|| on_addr().find_map(|s| s.tls.clone()))?;
        Some(Sites {
            addr,
            router: Router::new(config),
            default,
        })
    }

    /// The settings for a ClientHello naming `sni`.
    pub(super) fn choose(&self, sni: Option<&str>) -> Arc<ServerTls> {
        let chosen = sni.and_then(|name| {
            let routed = self.router.server(self.addr, Some(name.as_bytes())).ok()?;
            routed.server.tls.clone()
        });
        chosen.unwrap_or_else(|| Arc::clone(&self.default))
    }

    /// The handshake timeout (the default server's).
    pub(super) fn handshake_timeout(&self) -> std::time::Duration {
        self.default.handshake_timeout
    }
}
