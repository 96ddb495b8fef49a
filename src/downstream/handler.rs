//! The seam between the connection loops and what answers requests.
//!
//! `downstream` defines [`Handler`] and [`ResponseBody`]; the proxy
//! implements them. A connection loop (HTTP/1 today, HTTP/2 next) parses a
//! request, lends it to [`Handler::handle`], writes the response head from
//! the typed facts the body gives ([`ResponseBody::declared_length`],
//! [`ResponseBody::closes`]), streams the body, and ends the request with
//! one explicit call ([`ResponseBody::finish`]). A body that is one stretch
//! of a file may hand it over instead ([`ResponseBody::take_file_range`]):
//! on a plain TCP connection the loop sends it with sendfile(2), and the
//! file's bytes never enter user space. Nothing under `downstream`
//! knows the proxy exists: dependencies run `server -> downstream -> Handler
//! <- proxy`.

use std::fs::File;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
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
    ///
    /// The response is boxed: it is moved from the handler's steps to the
    /// connection's, a pointer instead of a few hundred bytes each time.
    fn handle(
        self: Rc<Self>,
        conn: Rc<ConnState>,
        req: &mut Request<RequestBody>,
    ) -> impl Future<Output = Box<Response<Self::Body>>>;

    /// The answer to a request head that could not be parsed (the connection
    /// closes after it).
    fn refuse(&self, error: RequestError) -> Response<Self::Body>;
}

/// A stretch of an open file a connection may send itself, with
/// sendfile(2), instead of reading the body's data.
#[derive(Debug, Clone)]
pub struct FileRange {
    pub file: Arc<File>,
    /// Where the stretch starts in the file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// The most one sendfile(2) call sends before the connection lets others
    /// run (`sendfile_max_chunk`); 0: no limit.
    pub max_chunk: u64,
    /// Cork the socket while the head and the file go out (`tcp_nopush`).
    pub nopush: bool,
}

/// What the connection loop must know of a response body beyond its data.
pub trait ResponseBody: http_body::Body<Data = Bytes, Error = BoxError> + Unpin {
    /// The `Content-Length` a response without a body (to HEAD, a 304)
    /// declares, passed on as is.
    fn declared_length(&self) -> Option<u64>;

    /// The connection closes after this response.
    fn closes(&self) -> bool;

    /// A body of unknown length may go out chunked to an HTTP/1.1 client
    /// (`chunked_transfer_encoding`); when not, closing the connection ends
    /// it, as for HTTP/1.0.
    fn chunked(&self) -> bool {
        true
    }

    /// nginx's `return 444`: the connection closes without an answer (an
    /// HTTP/2 stream is reset). The request ends (and is logged) all the same.
    fn unanswered(&self) -> bool {
        false
    }

    /// How the configuration writes `name` (`add_header X-Frame-Options`),
    /// for a line the proxy added; `None`: as received, else canonical.
    fn configured_name(&self, _name: &http::HeaderName) -> Option<&[u8]> {
        None
    }

    /// Whether [`ResponseBody::configured_name`] may say anything.
    fn has_configured_names(&self) -> bool {
        false
    }

    /// The response is a backend's, its status as the backend said it: the
    /// backend's status line goes on to the client as it came (nginx's
    /// `status_line`), not nginx's phrase for the code.
    fn passes_status_line(&self) -> bool {
        false
    }

    /// The response head, `n` bytes, was written (`$bytes_sent`), with the
    /// `Content-Length` it carried.
    fn head_sent(&mut self, n: usize, content_length: Option<u64>);

    /// After a `101 Switching Protocols`: the other end of the tunnel.
    fn take_upgrade(&mut self) -> Option<Upgraded>;

    /// The whole body is one stretch of a file the connection may send with
    /// sendfile(2): given once, after which the body has no data left (it
    /// is not polled). Asked only by a loop that can use it (a plain TCP
    /// connection, the body sent as is with its `Content-Length`); a body
    /// that must go through user space (compressed, several pieces,
    /// `sendfile off`) says `None`.
    fn take_file_range(&mut self) -> Option<FileRange> {
        None
    }

    /// `n` more bytes of the file range went to the client (`$bytes_sent`).
    fn file_sent(&mut self, _n: u64) {}

    /// The request is over (its response sent, cut short, or abandoned): the
    /// one step that ends it (access-log line, active count), told how many
    /// bytes the request took on the wire (`$request_length`: head and body).
    /// Returns when the body's source ended, the start of the connection's
    /// idle time. Called once; a body dropped without it ends itself the same
    /// way.
    fn finish(&mut self, request_length: u64) -> Option<Instant>;
}
