//! The seam between the connection loops and what answers requests.
//!
//! `downstream` defines [`Handler`] and [`ResponseBody`]; the proxy
//! implements them. A connection loop (HTTP/1 today, HTTP/2 next) parses a
//! request, lends it to [`Handler::handle`], writes the response head from
//! the typed facts the body gives ([`ResponseBody::declared_length`],
//! [`ResponseBody::closes`]), streams the body, and ends the request with
//! one explicit call ([`ResponseBody::finish`]). Nothing under `downstream`
//! knows the proxy exists: dependencies run `server -> downstream -> Handler
//! <- proxy`.

use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};

use crate::downstream::body::RequestBody;
use crate::downstream::state::ConnState;
use crate::downstream::tunnel::Upgraded;
use crate::http1::request::RequestError;

/// Errors a response body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers requests: one request in, one response out.
pub trait Handler {
    /// The body of the responses it makes.
    type Body: ResponseBody;

    /// Answers `req`, a request of the connection `conn`. The request is lent:
    /// the handler takes what it needs (its body, its headers) and the
    /// connection drops the rest.
    fn handle(
        self: Rc<Self>,
        conn: Rc<ConnState>,
        req: &mut Request<RequestBody>,
    ) -> impl Future<Output = Response<Self::Body>>;

    /// The answer to a request head that could not be parsed (the connection
    /// closes after it).
    fn refuse(&self, error: RequestError) -> Response<Self::Body>;
}

/// What the connection loop must know of a response body beyond its data.
pub trait ResponseBody: http_body::Body<Data = Bytes, Error = BoxError> + Unpin {
    /// The `Content-Length` a response without a body (to HEAD, a 304)
    /// declares, passed on as is.
    fn declared_length(&self) -> Option<u64>;

    /// The connection closes after this response.
    fn closes(&self) -> bool;

    /// The response head, `n` bytes, was written (`$bytes_sent`), with the
    /// `Content-Length` it carried.
    fn head_sent(&mut self, n: usize, content_length: Option<u64>);

    /// After a `101 Switching Protocols`: the other end of the tunnel.
    fn take_upgrade(&mut self) -> Option<Upgraded>;

    /// The request is over (its response sent, cut short, or abandoned): the
    /// one step that ends it (access-log line, active count), told how many
    /// bytes the request took on the wire (`$request_length`: head and body).
    /// Returns when the body's source ended, the start of the connection's
    /// idle time. Called once; a body dropped without it ends itself the same
    /// way.
    fn finish(&mut self, request_length: u64) -> Option<Instant>;
}
