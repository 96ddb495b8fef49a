//! Response compression: `gzip` and ngx_brotli's `brotli`, on proxied
//! responses and local files.
//!
//! [`decide`] (pure) says whether a response is compressed, as nginx's
//! filter does; [`encoder`] compresses a body as it streams; [`apply`]
//! edits the response head for it (`Content-Encoding`, `Vary`, the `ETag`
//! weakened, `Accept-Ranges` and the length dropped: the body goes chunked).

pub mod decide;
pub mod encoder;

use http::header::{self, HeaderMap, HeaderValue};

pub use decide::{ClientFacts, Coding, Decision};
pub use encoder::Encoder;

/// The head edits of a response that `decision` applies to; returns the
/// encoder for its body when it is compressed.
pub fn apply(
    headers: &mut HeaderMap,
    decision: Decision,
    conf: &crate::config::compress::CompressConf,
) -> Option<Encoder> {
    if decision.vary {
        add_vary(headers);
    }
    let coding = decision.coding?;
    let (name, level) = match coding {
        Coding::Gzip => ("gzip", conf.gzip_comp_level),
        Coding::Brotli => ("br", conf.brotli_comp_level),
    };
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::ACCEPT_RANGES);
    weaken_etag(headers);
    Some(Encoder::new(coding, level))
}

/// `Vary: Accept-Encoding`, once.
pub fn add_vary(headers: &mut HeaderMap) {
    let present = headers.get_all(header::VARY).iter().any(|v| {
        v.as_bytes().split(|&b| b == b',').any(|t| {
            t.trim_ascii().eq_ignore_ascii_case(b"accept-encoding") || t.trim_ascii() == b"*"
        })
    });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// nginx's `ngx_http_weak_etag`: a strong `"x"` becomes `W/"x"`, a weak one
/// stays, anything else is removed.
pub fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(header::ETAG) else {
        return;
    };
    let v = etag.as_bytes();
    if v.starts_with(b"W/") {
        return;
    }
    if v.first() == Some(&b'"') {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(v);
        if let Ok(w) = HeaderValue::from_bytes(&weak) {
            headers.insert(header::ETAG, w);
            return;
        }
    }
    headers.remove(header::ETAG);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn etag_weakened_and_vary_added_once() {
        for (etag, want) in [
            ("\"abc\"", Some("W/\"abc\"")),
            ("W/\"abc\"", Some("W/\"abc\"")),
            ("abc", None),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::ETAG, HeaderValue::from_static(etag));
            weaken_etag(&mut h);
            assert_eq!(
                h.get(header::ETAG).map(|v| v.to_str().unwrap()),
                want,
                "{etag}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::VARY,
            HeaderValue::from_static("Cookie, accept-encoding"),
        );
        add_vary(&mut h);
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
        let mut h = HeaderMap::new();
        add_vary(&mut h);
        add_vary(&mut h);
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
    }
}
