//! One try at one peer, the I/O of the failover: a pooled or new connection
//! (`proxy_connect_timeout`), the request written and the response head
//! awaited (`proxy_read_timeout`, kept in the connection's deadline slot so
//! no request arms a timer of its own), and the failure classified for
//! [`crate::proxy::attempt`].

use std::future::Future;
use std::task::Poll;
use std::time::Instant;

use crate::config::LocationConf;
use crate::downstream::body::BodyError;
use crate::downstream::state::ConnState;
use crate::http1::framing::RequestFraming;
use crate::http1::response::ResponseHead;
use crate::proxy::attempt::Failure;
use crate::proxy::body::{BodyTooLarge, ClientBody};
use crate::proxy::headers;
use crate::upstream::client::{self, ConnectError, Outgoing, SendError, Transport, UpstreamBody};
use crate::upstream::peers::PeerSet;
use crate::upstream::pool::{Conn, Wear};
use crate::upstream::stream::ConnKey;

/// Classifies a failed exchange with a backend.
fn failure_of(err: &SendError) -> Failure {
    match err {
        SendError::Io { .. } => Failure::Error,
        SendError::Head(_) => Failure::InvalidHeader,
        SendError::SendTimeout => Failure::Timeout,
        SendError::Body(e) if e.is::<BodyTooLarge>() => Failure::BodyTooLarge,
        SendError::Body(e) if BodyError::is_invalid(e.as_ref()) => Failure::InvalidClientBody,
        SendError::Body(_) => Failure::ClientBody,
    }
}
/// A backend's answer to one try: the response head, its body (which owns the
/// connection until it ends), and the requests the connection has carried.
pub(super) type Answer = (ResponseHead, UpstreamBody<ClientBody>, Wear);

/// A failed try: why, and whether the request can still go out as it is
/// (nothing of it was written, and any body is back in its slot).
#[derive(Debug, Clone, Copy)]
pub(super) struct Missed {
    pub(super) failure: Failure,
    pub(super) unsent: bool,
}

/// Sends the request on `conn`, waiting at most `proxy_read_timeout` for the
/// response head. The deadline is kept on the client connection and checked by
/// the worker's sweeper ([`ConnState::sweep`]), so a request arms no timer of
/// its own. A body that was not written comes back into `body`.
pub(super) async fn send(
    info: &ConnState,
    conn: Conn<Transport>,
    req: &UpstreamRequest,
    body: &mut Option<ClientBody>,
    conf: &LocationConf,
    sent_at: Instant,
) -> Result<Answer, Missed> {
    let requests = Wear {
        requests: conn.requests + 1,
        opened: conn.opened,
    };
    let leave_out = |name: &http::HeaderName, kind| {
        headers::left_out_of_response(
            name,
            kind,
            &conf.proxy_hide_headers,
            &conf.proxy_pass_headers,
        )
    };
    let outgoing = Outgoing {
        head: &req.head,
        body: body.take(),
        framing: req.framing,
        head_request: req.head_request,
        send_timeout: conf.proxy_send_timeout,
        leave_out: &leave_out,
        received: &info.response_head,
    };
    let fut = client::send(conn.io, outgoing);
    let read_timeout = conf.proxy_read_timeout;
    let mut fut = std::pin::pin!(fut);
    // A timeout too large to represent (or none) never fires.
    let deadline = (!read_timeout.is_zero())
        .then(|| sent_at.checked_add(read_timeout))
        .flatten();
    info.arm(deadline);
    let waited = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(r));
        }
        // The client went away: the backend connection is dropped (never
        // reused) and the request ends with 499, as nginx.
        if info.client_gone() {
            return Poll::Ready(Err(Failure::ClientAbort));
        }
        if info.deadline_passed() {
            return Poll::Ready(Err(Failure::Timeout));
        }
        if deadline.is_some() {
            info.park(cx.waker());
        }
        Poll::Pending
    })
    .await;
    info.disarm();
    let result = match waited {
        Ok(r) => r,
        Err(failure) => {
            return Err(Missed {
                failure,
                unsent: false,
            })
        }
    };
    match result {
        Ok((head, upstream_body)) => Ok((head, upstream_body, requests)),
        Err((error, back)) => {
            let unsent = back.is_some() || matches!(error, SendError::Io { sent: false, .. });
            if back.is_some() {
                *body = back;
            }
            tracing::debug!("{error}");
            Err(Missed {
                failure: failure_of(&error),
                unsent,
            })
        }
    }
}

/// A new connection to peer `peer` within `proxy_connect_timeout`.
pub(super) async fn open(
    set: &PeerSet<Transport>,
    peer: usize,
    conf: &LocationConf,
    key: &ConnKey,
) -> Result<Transport, Failure> {
    let addr = set.addr(peer).ok_or(Failure::Error)?;
    let timeout = conf.proxy_connect_timeout;
    let opened = match set.unix(peer) {
        Some(path) => client::connect_unix(path, timeout, key).await,
        None => client::connect_keyed(addr, timeout, key).await,
    };
    opened.map_err(|e| match e {
        ConnectError::Timeout => Failure::Timeout,
        ConnectError::Io(e) => {
            let name = set.name(peer).unwrap_or_default();
            tracing::error!("connect() to {name} failed: {e}");
            Failure::Error
        }
        // A certificate that does not verify is a failed connect, as
        // in nginx: the next upstream is tried, max_fails counts it.
        ConnectError::Tls(e) => {
            let name = set.name(peer).unwrap_or_default();
            tracing::error!("SSL_do_handshake() to {name} failed: {e}");
            Failure::Error
        }
    })
}

/// The request as it goes to the backends: its head encoded once (kept for a
/// resend: a pooled connection found closed, or `proxy_next_upstream`), and how
/// its body is framed.
pub(super) struct UpstreamRequest {
    pub(super) head: Vec<u8>,
    pub(super) framing: RequestFraming,
    pub(super) head_request: bool,
    /// Plain, or TLS with which settings to which name.
    pub(super) key: ConnKey,
}

impl Drop for UpstreamRequest {
    fn drop(&mut self) {
        crate::reuse::give_vec(std::mem::take(&mut self.head));
    }
}

/// Room for the encoded request head: the request line and every header line.
pub(super) fn head_capacity(target: &str, headers: &http::HeaderMap) -> usize {
    let lines: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    target.len() + lines + 64
}
