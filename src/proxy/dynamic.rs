//! `proxy_pass` with variables whose host names no upstream (nginx's
//! `ngx_http_proxy_eval`, then `ngx_http_upstream_init_request`): an address
//! (`IP`, `IP:PORT`, `[IPv6]:PORT`) is connected to directly; a name is
//! resolved for the request with the location's `resolver`, and without one
//! the request is answered 502 with nginx's `no resolver defined to resolve
//! NAME`. Either way the request gets a peer set of its own (round robin over
//! the addresses, no keep-alive, no failure counts shared with other
//! requests), as nginx makes one per request. [`parse`] is pure; the lookup
//! is `crate::upstream::dns::Lookups`.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{ResolverConf, UpstreamConf};
use crate::proxy::worker::Worker;
use crate::upstream::balance::{Pick, Tried};
use crate::upstream::client::Transport;
use crate::upstream::dns::Miss;
use crate::upstream::peers::PeerSet;

/// The host of a `proxy_pass` URL, evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host<'a> {
    Addr(SocketAddr),
    Name { host: &'a str, port: u16 },
}

/// `HOST[:PORT]` (port 80 by default); `Err` is nginx's reason (`invalid
/// port`, `no host`, `invalid host`).
pub fn parse(host_port: &str) -> Result<Host<'_>, &'static str> {
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("invalid host")?;
        let ip: IpAddr = inside.parse().map_err(|_| "invalid host")?;
        let port = match after {
            "" => 80,
            _ => port(after.strip_prefix(':').ok_or("invalid host")?)?,
        };
        return Ok(Host::Addr(SocketAddr::new(ip, port)));
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, port(p)?),
            None => (host_port, 80),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    if host.contains(':') {
        return Err("invalid host");
    }
    Ok(match host.parse::<IpAddr>() {
        Ok(ip) => Host::Addr(SocketAddr::new(ip, port)),
        Err(_) => Host::Name { host, port },
    })
}

fn port(text: &str) -> Result<u16, &'static str> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err("invalid port"),
    }
}

/// A name to resolve before the request goes out.
#[derive(Debug, Clone)]
pub struct Pending {
    /// `HOST:PORT` as evaluated (the peer set's name).
    name: String,
    host: String,
    port: u16,
    resolver: Arc<ResolverConf>,
}

/// Where a host that no upstream names sends the request.
pub enum Dynamic {
    /// An address: its peer set.
    Set(Rc<PeerSet<Transport>>),
    /// A name, resolved by [`Worker::resolve_pending`] (the peer set is empty
    /// until then).
    Resolve(Rc<PeerSet<Transport>>, Pending),
    /// Answered with this status (logged here).
    Refused(u16),
}

/// A peer set of its own for `name` over `addrs`.
fn one_off(name: &str, addrs: impl IntoIterator<Item = SocketAddr>) -> Rc<PeerSet<Transport>> {
    Rc::new(PeerSet::new(Arc::new(UpstreamConf::implicit(name, addrs))))
}

/// What `host_port` (no upstream's name) becomes with the location's
/// `resolver`.
pub fn target(host_port: &str, resolver: Option<&Arc<ResolverConf>>) -> Dynamic {
    match parse(host_port) {
        Ok(Host::Addr(addr)) => Dynamic::Set(one_off(host_port, [addr])),
        Ok(Host::Name { host, port }) => match resolver {
            Some(r) => Dynamic::Resolve(
                one_off(host_port, []),
                Pending {
                    name: host_port.to_string(),
                    host: host.to_string(),
                    port,
                    resolver: Arc::clone(r),
                },
            ),
            None => {
                tracing::error!("no resolver defined to resolve {host}");
                Dynamic::Refused(502)
            }
        },
        Err(reason) => {
            tracing::error!("{reason} in upstream \"{host_port}\"");
            Dynamic::Refused(500)
        }
    }
}

impl Worker {
    /// Resolves `pending`: its peer set and the peer chosen first, or `None`
    /// (logged as nginx: `NAME could not be resolved (3: Host not found)`),
    /// which is a 502.
    pub(super) async fn resolve_pending(
        &self,
        pending: Pending,
        pick: &Pick,
    ) -> Option<(Rc<PeerSet<Transport>>, Option<usize>)> {
        match self.dns.addresses(&pending.resolver, &pending.host).await {
            Ok(addrs) => {
                let port = pending.port;
                let set = one_off(
                    &pending.name,
                    addrs.into_iter().map(|ip| SocketAddr::new(ip, port)),
                );
                let peer = set.choose(None, &Tried::new(), Instant::now(), pick);
                Some((set, peer))
            }
            Err(miss) => {
                let why = match miss {
                    Miss::NoAddress => "3: Host not found".to_string(),
                    Miss::TimedOut => "110: Operation timed out".to_string(),
                    Miss::Failed(e) => format!("2: Server failure: {e}"),
                };
                tracing::error!("{} could not be resolved ({why})", pending.host);
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let addr = |s: &str| Ok(Host::Addr(s.parse().unwrap()));
        let name = |host, port| Ok(Host::Name { host, port });
        let cases: &[(&str, Result<Host<'_>, &str>)] = &[
            ("127.0.0.1", addr("127.0.0.1:80")),
            ("127.0.0.1:8080", addr("127.0.0.1:8080")),
            ("[::1]", addr("[::1]:80")),
            ("[::1]:9000", addr("[::1]:9000")),
            ("backend", name("backend", 80)),
            ("backend.svc:8080", name("backend.svc", 8080)),
            ("127.0.0.1:0", Err("invalid port")),
            ("127.0.0.1:x", Err("invalid port")),
            ("backend:", Err("invalid port")),
            ("backend:70000", Err("invalid port")),
            (":80", Err("no host")),
            ("", Err("no host")),
            ("[::1", Err("invalid host")),
            ("[nope]:80", Err("invalid host")),
            ("[::1]x", Err("invalid host")),
            ("::1", Err("invalid host")),
            ("a:b:80", Err("invalid host")),
        ];
        for (text, want) in cases {
            assert_eq!(&parse(text), want, "{text}");
        }
    }
}
