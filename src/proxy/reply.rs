//! The one builder of proxy-made responses (refusals, errors, `return`,
//! redirects): status, body, `Content-Type`/`Location`, and whether the
//! connection closes after it (a typed field of the body, never a header).
//! They never carry a sticky cookie; `Server` is added by the handler for
//! every response.

use bytes::Bytes;
use http::header;
use http::{Response, StatusCode};

use crate::proxy::body::ProxyBody;
use crate::proxy::errors::{self, MadeResponse, ProxyError};

/// A proxy-made response, with our `Server` (`server_tokens`).
pub(super) fn made(m: MadeResponse, server_tokens: bool) -> Response<ProxyBody> {
    let silent = m.status.as_u16() == 444 && m.body.is_empty();
    let mut resp = full(m.status, m.body, server_tokens);
    // nginx's non-standard 444 (`return 444;`): close, answer nothing. With
    // a text (`return 444 "x"`) nginx answers it.
    resp.body_mut().unanswered = silent;
    let headers = resp.headers_mut();
    if let Some(ct) = m.content_type {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    if let Some(location) = m.location {
        headers.insert(header::LOCATION, location);
    }
    resp
}

/// A proxy-made response of `status` with `body`, and our `Server`.
pub(super) fn full(
    status: StatusCode,
    body: impl Into<Bytes>,
    server_tokens: bool,
) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::SERVER, errors::server_header(server_tokens));
    resp
}

/// The page for a proxy error; the connection is closed after the statuses
/// nginx closes it for. Never carries a sticky cookie. Cold: called from
/// many places on the request path, it is kept out of their code.
#[cold]
#[inline(never)]
pub(super) fn error_response(error: ProxyError, server_tokens: bool) -> Response<ProxyBody> {
    let mut resp = made(MadeResponse::error(error, server_tokens), server_tokens);
    resp.body_mut().close = error.closes_connection();
    resp
}
