//! The one builder of proxy-made responses (refusals, errors, `return`,
//! redirects): status, body, `Content-Type`/`Location`, and whether the
//! connection closes after it (a typed field of the body, never a header).
//! They never carry a sticky cookie; `Server` is added by the handler for
//! every response.

use http::header;
use http::Response;

use crate::proxy::body::ProxyBody;
use crate::proxy::errors::{self, MadeResponse, ProxyError};

/// The answer to a request the proxy could not parse (the connection closes
/// after it).
pub fn bad_request(error: ProxyError) -> Response<ProxyBody> {
    let mut resp = error_response(error, true);
    resp.headers_mut()
        .insert(header::SERVER, errors::server_header(true));
    resp
}

/// A proxy-made response.
pub(super) fn made(m: MadeResponse) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(m.body));
    *resp.status_mut() = m.status;
    let headers = resp.headers_mut();
    if let Some(ct) = m.content_type {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    if let Some(location) = m.location {
        headers.insert(header::LOCATION, location);
    }
    resp
}

/// The page for a proxy error; the connection is closed after the statuses
/// nginx closes it for. Never carries a sticky cookie.
pub(super) fn error_response(error: ProxyError, server_tokens: bool) -> Response<ProxyBody> {
    let mut resp = made(MadeResponse::error(error, server_tokens));
    resp.body_mut().close = error.closes_connection();
    resp
}
