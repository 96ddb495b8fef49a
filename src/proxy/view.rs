//! What planning reads of a request to evaluate its variables: the request
//! as it arrived, its connection, the server that took it, and the client
//! address realip makes of it ([`RequestView`], [`real_remote`]).

use std::net::SocketAddr;
use std::time::SystemTime;

use http::Request;

use crate::config::LocationConf;
use crate::downstream::body::RequestBody;
use crate::downstream::state::ConnState;
use crate::user_vars::UserVars;
use crate::vars::RequestVars;

/// realip: the client address a request from `info` is treated as coming
/// from by `conf`'s settings, and the connection's own when that differs
/// (`$realip_remote_addr`).
pub(super) fn real_remote(
    conf: &LocationConf,
    info: &ConnState,
    req: &Request<RequestBody>,
) -> (SocketAddr, Option<SocketAddr>) {
    let realip = conf
        .access
        .realip
        .as_ref()
        .and_then(|r| crate::access::realip::real_addr(r, info.remote, req.headers()));
    (realip.unwrap_or(info.remote), realip.map(|_| info.remote))
}

/// What planning reads of a request to evaluate its variables.
#[derive(Clone, Copy)]
pub(super) struct RequestView<'a> {
    pub(super) req: &'a Request<RequestBody>,
    pub(super) info: &'a ConnState,
    pub(super) host: &'a str,
    pub(super) server_name: &'a str,
    /// The request target as received.
    pub(super) target: &'a str,
    pub(super) start: SystemTime,
    /// The client's address after realip.
    pub(super) remote: SocketAddr,
    pub(super) realip_remote: Option<SocketAddr>,
}

impl<'a> RequestView<'a> {
    /// The variables of the request with its URI now `path` (no response yet).
    pub(super) fn vars(
        &self,
        path: &'a [u8],
        proxy_host: &'a str,
        user: Option<&'a UserVars>,
    ) -> RequestVars<'a> {
        RequestVars {
            method: self.req.method(),
            request_uri: self.target,
            path,
            version: self.req.version(),
            headers: self.req.headers(),
            host: self.host,
            server_name: self.server_name,
            remote: self.remote,
            realip_remote: self.realip_remote,
            local: self.info.local,
            scheme: self.info.scheme(),
            tls: self.info.tls(),
            proxy_host,
            // What has been read of the request so far: its head.
            request_length: self.info.head_bytes.get(),
            connection: self.info.serial,
            connection_requests: self.info.requests.get(),
            start: self.start,
            now: self.start,
            pid: crate::log::pid(),
            hostname: crate::log::hostname(),
            response: None,
            upstream: &[],
            upstream_headers: user.and_then(|u| u.upstream_headers.as_ref()),
            sticky: None,
            user,
            request_id: Some(&self.info.request_id),
            pipelined: self.info.pipelined.get(),
        }
    }
}
