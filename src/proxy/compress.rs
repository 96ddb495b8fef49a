//! The proxy's side of compression: a response (a backend's, or a local
//! file's) is given to [`crate::compress`] to decide, its head edited and
//! its body wrapped in the encoder.

use http::Response;
use http_body::Body;

use crate::compress::{self, ClientFacts};
use crate::config::compress::CompressConf;
use crate::proxy::body::ProxyBody;

/// Compresses `resp` when `conf` and the client's `facts` say so.
pub(super) fn compress_response(
    resp: &mut Response<ProxyBody>,
    conf: &CompressConf,
    facts: &ClientFacts,
    now_unix: i64,
) {
    let length = resp.body().declared.or(resp.body().size_hint().exact());
    let decision =
        compress::decide::decide(conf, facts, resp.status(), resp.headers(), length, now_unix);
    if let Some(encoder) = compress::apply(resp.headers_mut(), decision, conf) {
        let body = resp.body_mut();
        body.encoder = Some(Box::new(encoder));
        body.declared = None;
    }
}
