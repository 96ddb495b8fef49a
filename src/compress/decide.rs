//! Whether a response is compressed, and how, as nginx's gzip filter (and
//! ngx_brotli's) decide it: from the request (`Accept-Encoding`, HTTP
//! version, `Via`, `Authorization`, `User-Agent`) and the response (status,
//! `Content-Encoding`, `Content-Type`, length, and for a proxied response
//! per `gzip_proxied` its `Expires`, `Date`, `Cache-Control`,
//! `Last-Modified`, `ETag`). Pure: `now` is an argument.

use http::header::{self, HeaderMap};
use http::{StatusCode, Version};

use crate::config::compress::CompressConf;

/// What the request says, taken before its headers go to the backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientFacts {
    pub accepts_gzip: bool,
    pub accepts_br: bool,
    /// Older than `gzip_http_version`.
    pub too_old: bool,
    /// `gzip_disable` matched the User-Agent.
    pub disabled: bool,
    /// The request came through a proxy (`Via`).
    pub via: bool,
    pub authorization: bool,
    /// A HEAD request: never compressed.
    pub head: bool,
}

/// An encoding the client accepts: listed, and not with `q=0`.
pub fn accepts(accept_encoding: &[u8], coding: &[u8]) -> bool {
    accept_encoding.split(|&b| b == b',').any(|item| {
        let mut parts = item.split(|&b| b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        if !name.eq_ignore_ascii_case(coding) {
            return false;
        }
        // `q=0`, `q=0.0`, `q=0.000`: refused.
        !parts.any(|p| {
            let p = p.trim_ascii();
            p.len() >= 3
                && p.get(..2).is_some_and(|q| q.eq_ignore_ascii_case(b"q="))
                && p.get(2..).is_some_and(|v| {
                    v.first() == Some(&b'0') && v.iter().all(|&b| b == b'0' || b == b'.')
                })
        })
    })
}

impl ClientFacts {
    /// The facts of a request with `headers` and `version`, for `conf`.
    pub fn of(
        headers: &HeaderMap,
        version: Version,
        head: bool,
        conf: &CompressConf,
    ) -> ClientFacts {
        let ae = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .map(|v| v.as_bytes());
        let (mut gzip, mut br) = (false, false);
        for v in ae {
            gzip |= accepts(v, b"gzip");
            br |= accepts(v, b"br");
        }
        let ua = headers.get(header::USER_AGENT).map(|v| v.as_bytes());
        let disabled = ua.is_some_and(|ua| {
            let text = String::from_utf8_lossy(ua);
            (conf.gzip_disable_msie6 && is_msie6(&text))
                || conf.gzip_disable.iter().any(|re| re.is_match(&text))
        });
        ClientFacts {
            accepts_gzip: gzip,
            accepts_br: br,
            too_old: version < conf.gzip_http_version,
            disabled,
            via: headers.contains_key(header::VIA),
            authorization: headers.contains_key(header::AUTHORIZATION),
            head,
        }
    }
}

/// nginx's `msie6`: `MSIE 4.`, `MSIE 5.`, `MSIE 6.` without `SV1`.
fn is_msie6(ua: &str) -> bool {
    match ua.find("MSIE ") {
        Some(i) => {
            let v = ua.get(i + 5..i + 7).unwrap_or("");
            matches!(v, "4." | "5.") || (v == "6." && !ua.contains("SV1"))
        }
        None => false,
    }
}

/// The encoding chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Brotli,
}

/// nginx's answer for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub coding: Option<Coding>,
    /// Add `Vary: Accept-Encoding` (`gzip_vary on` and the response was of
    /// a kind gzip would compress, whatever the client accepts).
    pub vary: bool,
}

/// Whether the response (`status`, `headers`, `length` when known) is
/// compressed; `proxied` for a backend's response (`gzip_proxied` applies
/// to requests that came through a proxy), `now_unix` for `expired`.
pub fn decide(
    conf: &CompressConf,
    client: &ClientFacts,
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<u64>,
    now_unix: i64,
) -> Decision {
    let none = Decision {
        coding: None,
        vary: false,
    };
    if !conf.enabled()
        || client.head
        || !matches!(status.as_u16(), 200 | 403 | 404)
        || headers.contains_key(header::CONTENT_ENCODING)
    {
        return none;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map_or(&b""[..], |v| v.as_bytes());
    let brotli_ok = conf.brotli
        && client.accepts_br
        && conf.brotli_types.matches(ct)
        && length.is_none_or(|n| n >= conf.brotli_min_length);
    let gzip_kind = conf.gzip
        && conf.gzip_types.matches(ct)
        && length.is_none_or(|n| n >= conf.gzip_min_length);
    let vary = (gzip_kind && conf.gzip_vary) || brotli_ok;
    // ngx_http_gzip_ok: the request's side, then gzip_proxied.
    let request_ok = !client.too_old && proxied_ok(conf, client, headers, now_unix);
    let coding = if brotli_ok && request_ok {
        Some(Coding::Brotli)
    } else if gzip_kind && client.accepts_gzip && !client.disabled && request_ok {
        Some(Coding::Gzip)
    } else {
        None
    };
    Decision { coding, vary }
}

/// nginx's `gzip_proxied` check: a request without `Via` passes; one with
/// it passes per the flags and the response's caching headers.
fn proxied_ok(conf: &CompressConf, client: &ClientFacts, h: &HeaderMap, now: i64) -> bool {
    if !client.via {
        return true;
    }
    let p = &conf.gzip_proxied;
    if p.off {
        return false;
    }
    if p.any || (p.auth && client.authorization) {
        return true;
    }
    if let Some(expires) = h.get(header::EXPIRES) {
        if !p.expired {
            return false;
        }
        let Some(expires) = date(expires.as_bytes()) else {
            return false;
        };
        let date = h
            .get(header::DATE)
            .and_then(|d| date(d.as_bytes()))
            .unwrap_or(now);
        return expires < date;
    }
    let cc: Vec<&[u8]> = h
        .get_all(header::CACHE_CONTROL)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if !cc.is_empty() {
        let has = |token: &[u8]| {
            cc.iter().any(|v| {
                v.split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
            })
        };
        return (p.no_cache && has(b"no-cache"))
            || (p.no_store && has(b"no-store"))
            || (p.private && has(b"private"));
    }
    if p.no_last_modified && h.contains_key(header::LAST_MODIFIED) {
        return false;
    }
    if p.no_etag && h.contains_key(header::ETAG) {
        return false;
    }
    true
}

fn date(v: &[u8]) -> Option<i64> {
    let t = httpdate::parse_http_date(std::str::from_utf8(v).ok()?.trim()).ok()?;
    i64::try_from(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::compress::Proxied;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn gzip_conf() -> CompressConf {
        CompressConf {
            gzip: true,
            gzip_vary: true,
            ..CompressConf::default()
        }
    }

    const NOW: i64 = 1_700_000_000;
    const PAST: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const FUTURE: &str = "Tue, 14 Nov 2023 22:13:21 GMT";

    #[test]
    fn accept_encoding_tokens_and_q_zero() {
        for (ae, want) in [
            ("gzip", true),
            ("deflate, GZIP", true),
            ("gzip;q=0.5", true),
            ("gzip;q=0", false),
            ("gzip; q=0.000", false),
            ("x-gzip", false),
            ("gzipx", false),
            ("", false),
        ] {
            assert_eq!(accepts(ae.as_bytes(), b"gzip"), want, "{ae}");
        }
        assert!(is_msie6(
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
        ));
        assert!(!is_msie6(
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
        ));
        assert!(!is_msie6("Mozilla/5.0 (compatible; MSIE 9.0)"));
    }

    #[test]
    fn response_side_rules() {
        let conf = gzip_conf();
        let client = ClientFacts {
            accepts_gzip: true,
            ..ClientFacts::default()
        };
        let html = headers(&[("content-type", "text/html; charset=utf-8")]);
        let gz = Some(Coding::Gzip);
        let cases: &[(u16, &HeaderMap, Option<u64>, Option<Coding>)] = &[
            (200, &html, None, gz),
            (200, &html, Some(20), gz),
            (200, &html, Some(19), None),
            (404, &html, None, gz),
            (403, &html, None, gz),
            (206, &html, None, None),
            (304, &html, None, None),
            (500, &html, None, None),
            (200, &headers(&[("content-type", "image/png")]), None, None),
            (
                200,
                &headers(&[("content-type", "text/html"), ("content-encoding", "br")]),
                None,
                None,
            ),
            (200, &HeaderMap::new(), None, None),
        ];
        for (status, h, len, want) in cases {
            let d = decide(
                &conf,
                &client,
                StatusCode::from_u16(*status).unwrap(),
                h,
                *len,
                NOW,
            );
            assert_eq!(d.coding, *want, "{status} {h:?} {len:?}");
        }
        // HEAD never; a client that does not accept gzip gets Vary only.
        let head = ClientFacts {
            head: true,
            ..client
        };
        assert_eq!(
            decide(&conf, &head, StatusCode::OK, &html, None, NOW).coding,
            None
        );
        let plain = ClientFacts::default();
        let d = decide(&conf, &plain, StatusCode::OK, &html, None, NOW);
        assert_eq!(
            d,
            Decision {
                coding: None,
                vary: true
            }
        );
        let old = ClientFacts {
            too_old: true,
            ..client
        };
        assert_eq!(
            decide(&conf, &old, StatusCode::OK, &html, None, NOW).coding,
            None
        );
        let disabled = ClientFacts {
            disabled: true,
            ..client
        };
        assert_eq!(
            decide(&conf, &disabled, StatusCode::OK, &html, None, NOW).coding,
            None
        );
    }

    #[test]
    fn gzip_proxied_follows_nginx() {
        let client = ClientFacts {
            accepts_gzip: true,
            via: true,
            ..ClientFacts::default()
        };
        let auth = ClientFacts {
            authorization: true,
            ..client
        };
        let flags = |f: &dyn Fn(&mut Proxied)| {
            let mut p = Proxied::default();
            f(&mut p);
            p
        };
        let off = Proxied {
            off: true,
            ..Proxied::default()
        };
        let any = flags(&|p| p.any = true);
        let expired = flags(&|p| p.expired = true);
        let no_cache = flags(&|p| p.no_cache = true);
        let no_store = flags(&|p| p.no_store = true);
        let private = flags(&|p| p.private = true);
        let no_lm = flags(&|p| p.no_last_modified = true);
        let no_etag = flags(&|p| p.no_etag = true);
        let auth_flag = flags(&|p| p.auth = true);
        let ct = ("content-type", "text/html");
        type Case<'a> = (
            Proxied,
            &'a ClientFacts,
            &'a [(&'static str, &'a str)],
            bool,
        );
        let cases: &[Case<'_>] = &[
            (off, &client, &[ct], false),
            (any, &client, &[ct], true),
            (auth_flag, &client, &[ct], true),
            (auth_flag, &auth, &[ct], true),
            (expired, &client, &[ct, ("expires", PAST)], true),
            (expired, &client, &[ct, ("expires", FUTURE)], false),
            (
                expired,
                &client,
                &[ct, ("expires", FUTURE), ("date", FUTURE)],
                false,
            ),
            (
                expired,
                &client,
                &[ct, ("expires", PAST), ("date", FUTURE)],
                true,
            ),
            (expired, &client, &[ct, ("expires", "0")], false),
            (no_cache, &client, &[ct, ("expires", PAST)], false),
            (
                no_cache,
                &client,
                &[ct, ("cache-control", "max-age=0, no-cache")],
                true,
            ),
            (
                no_cache,
                &client,
                &[ct, ("cache-control", "no-store")],
                false,
            ),
            (
                no_store,
                &client,
                &[ct, ("cache-control", "no-store")],
                true,
            ),
            (private, &client, &[ct, ("cache-control", "private")], true),
            (private, &client, &[ct, ("cache-control", "public")], false),
            (no_lm, &client, &[ct], true),
            (no_lm, &client, &[ct, ("last-modified", PAST)], false),
            (no_etag, &client, &[ct, ("etag", "\"x\"")], false),
            (no_etag, &client, &[ct], true),
        ];
        for (i, (p, c, h, want)) in cases.iter().enumerate() {
            let conf = CompressConf {
                gzip_proxied: *p,
                ..gzip_conf()
            };
            let got = decide(&conf, c, StatusCode::OK, &headers(h), None, NOW).coding;
            assert_eq!(got.is_some(), *want, "case {i}: {p:?} {h:?}");
        }
        // Without Via, gzip_proxied does not apply.
        let conf = CompressConf {
            gzip_proxied: off,
            ..gzip_conf()
        };
        let direct = ClientFacts {
            via: false,
            ..client
        };
        assert!(
            decide(&conf, &direct, StatusCode::OK, &headers(&[ct]), None, NOW)
                .coding
                .is_some()
        );
    }

    #[test]
    fn brotli_is_preferred_when_accepted() {
        let conf = CompressConf {
            brotli: true,
            ..gzip_conf()
        };
        let both = ClientFacts {
            accepts_gzip: true,
            accepts_br: true,
            ..ClientFacts::default()
        };
        let h = headers(&[("content-type", "text/html")]);
        assert_eq!(
            decide(&conf, &both, StatusCode::OK, &h, None, NOW).coding,
            Some(Coding::Brotli)
        );
        let gz = ClientFacts {
            accepts_br: false,
            ..both
        };
        assert_eq!(
            decide(&conf, &gz, StatusCode::OK, &h, None, NOW).coding,
            Some(Coding::Gzip)
        );
    }
}
