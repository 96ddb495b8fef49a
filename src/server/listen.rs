//! The listen side of the configuration: its distinct addresses with the
//! connection settings of their default servers, bound once per worker
//! thread with `SO_REUSEPORT`.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Config, ConnectionConf, WorkerProcesses};
use crate::downstream::conn::Settings;
use crate::downstream::h2::H2Settings;
use crate::http1::request::Limits;

use super::tls::Sites;

/// One distinct listening address and the connection settings of its default
/// server.
#[derive(Debug, Clone)]
pub(super) struct ListenGroup {
    /// The address as configured (what routing matches against).
    pub(super) configured: SocketAddr,
    pub(super) backlog: i32,
    pub(super) connection: ConnectionConf,
    /// Set when a `listen` of the address says `ssl`: its TLS servers.
    pub(super) tls: Option<Arc<Sites>>,
    /// Set when HTTP/2 is on for the address (a `listen ... http2`, or
    /// `http2 on` in its default server; on an `ssl` address, in any of its
    /// servers, which ALPN then offers it for): the default server's limits
    /// (on an `ssl` address, those of the server the SNI name chose replace
    /// them after the handshake).
    pub(super) http2: Option<H2Settings>,
}

/// The distinct listen addresses of `config`, in file order. Connection-level
/// settings come from the address's `default_server`, else its first server (as
/// nginx does before it knows the Host).
pub(super) fn listen_groups(config: &Config) -> Vec<ListenGroup> {
    // (group, has a default_server, the default server, any listen says ssl)
    let mut groups: Vec<(ListenGroup, bool, &crate::config::ServerConf, bool)> = Vec::new();
    // The addresses a `listen ... http2` names.
    let mut listen_http2 = Vec::new();
    for server in &config.http.servers {
        for listen in &server.listens {
            if listen.http2 {
                listen_http2.push(listen.addr);
            }
            match groups.iter_mut().find(|g| g.0.configured == listen.addr) {
                Some((group, has_default, default, ssl)) => {
                    if listen.default_server && !*has_default {
                        group.connection = server.connection.clone();
                        *has_default = true;
                        *default = server;
                    }
                    group.backlog = group.backlog.max(listen.backlog);
                    *ssl |= listen.ssl;
                }
                None => groups.push((
                    ListenGroup {
                        configured: listen.addr,
                        backlog: listen.backlog,
                        connection: server.connection.clone(),
                        tls: None,
                        http2: None,
                    },
                    listen.default_server,
                    server,
                    listen.ssl,
                )),
            }
        }
    }
    groups
        .into_iter()
        .map(|(mut group, _, default, ssl)| {
            let by_listen = listen_http2.contains(&group.configured);
            let on = by_listen
                || if ssl {
                    on_address(config, group.configured).any(|s| s.connection.http2.enabled)
                } else {
                    default.connection.http2.enabled
                };
            if on {
                group.http2 = Some(h2_settings(&default.connection));
            }
            if ssl {
                group.tls = Sites::new(config, group.configured, default, by_listen).map(Arc::new);
            }
            group
        })
        .collect()
}

/// The servers listening on `addr`.
pub(super) fn on_address(
    config: &Config,
    addr: SocketAddr,
) -> impl Iterator<Item = &crate::config::ServerConf> {
    config
        .http
        .servers
        .iter()
        .filter(move |s| s.listens.iter().any(|l| l.addr == addr))
        .map(|s| &**s)
}

/// The HTTP/2 limits of a connection from its server's settings: the
/// stream window is `http2_body_preread_size` (0, a window nginx opens
/// when the body is read, is read as RFC 9113's initial 65,535), the
/// connection window `http2_recv_buffer_size` (at least 65,535, which a
/// connection always has), the header list `large_client_header_buffers`'
/// number times size.
pub(super) fn h2_settings(conn: &ConnectionConf) -> H2Settings {
    let h = conn.http2;
    let (count, size) = conn.large_client_header_buffers;
    const RFC_WINDOW: u32 = 65_535;
    H2Settings {
        max_concurrent_streams: h.max_concurrent_streams,
        stream_window: if h.body_preread_size == 0 {
            RFC_WINDOW
        } else {
            h.body_preread_size
        },
        connection_window: h.recv_buffer_size.max(RFC_WINDOW),
        chunk_size: h.chunk_size as usize,
        max_header_list: u32::try_from(count.saturating_mul(size)).unwrap_or(u32::MAX),
    }
}

/// A non-blocking listening socket with `SO_REUSEADDR` and `SO_REUSEPORT`.
pub(super) fn bind(addr: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.max(1))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

pub(super) fn worker_count(config: &Config) -> usize {
    match config.main.worker_processes {
        WorkerProcesses::Count(n) => n.max(1),
        WorkerProcesses::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Binds `group` once per worker: the first socket learns the port when the
/// configured one is 0, the others bind that port (`SO_REUSEPORT`).
pub(super) fn bind_group(
    group: &ListenGroup,
    workers: usize,
) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = bind(group.configured, group.backlog).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("bind() to {} failed ({e})", group.configured),
        )
    })?;
    let actual = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..workers {
        sockets.push(bind(actual, group.backlog).map_err(|e| {
            std::io::Error::new(e.kind(), format!("bind() to {actual} failed ({e})"))
        })?);
    }
    Ok((actual, sockets))
}

/// The client connection settings of one listen address. Header and idle
/// timeouts are the worker sweeper's job (one timer per worker, none per
/// request).
pub(super) fn connection_settings(conn: &ConnectionConf) -> Settings {
    let (count, size) = conn.large_client_header_buffers;
    Settings {
        limits: Limits {
            names: conn.header_names,
            ..Limits::new(count, size)
        },
        keep_alive: !conn.keepalive_timeout.is_zero() && conn.keepalive_requests > 0,
    }
}
