//! Validators of a file and the conditional requests nginx answers with
//! them (its not-modified filter): the `ETag` (`"MTIME-SIZE"` in hex, as
//! nginx), `If-None-Match` and `If-Modified-Since` (`if_modified_since
//! exact|before|off`) for `304`, and `If-Range` for whether a `Range`
//! applies. Pure: the file's facts are arguments.

use http::header::{self, HeaderMap};

use crate::config::files::IfModifiedSince;
use crate::numfmt::write_hex;

/// nginx's strong `ETag` of a file: `"` mtime in hex `-` size in hex `"`.
pub fn etag(mtime_unix: i64, size: u64) -> String {
    // Not through `fmt`: on every file response. A negative mtime is
    // written in two's complement, as `{:x}` would.
    let mut text = Vec::with_capacity(36);
    text.push(b'"');
    write_hex(&mut text, mtime_unix as u64);
    text.push(b'-');
    write_hex(&mut text, size);
    text.push(b'"');
    String::from_utf8(text).unwrap_or_default()
}

/// Seconds since the epoch of an HTTP date (`None` when it is not one).
fn parse_date(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let t = httpdate::parse_http_date(text.trim()).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// True when `list` (an `If-None-Match` or `If-Match` value) names `etag`,
/// compared weakly as nginx does for `If-None-Match`, or is `*`.
fn names_etag(list: &[u8], etag: Option<&str>, weak: bool) -> bool {
    let Ok(list) = std::str::from_utf8(list) else {
        return false;
    };
    if list.trim() == "*" {
        return true;
    }
    let Some(etag) = etag else { return false };
    let bare = etag.strip_prefix("W/").unwrap_or(etag);
    list.split(',').map(str::trim).any(|tag| {
        if weak {
            tag.strip_prefix("W/").unwrap_or(tag) == bare
        } else {
            tag == etag
        }
    })
}

/// Whether a `GET`/`HEAD` of a file whose validators are `mtime_unix` and
/// `etag` (`None` with `etag off`) is answered `304 Not Modified`.
pub fn not_modified(
    headers: &HeaderMap,
    mtime_unix: i64,
    etag: Option<&str>,
    mode: IfModifiedSince,
) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        return names_etag(inm.as_bytes(), etag, true);
    }
    let Some(ims) = headers.get(header::IF_MODIFIED_SINCE) else {
        return false;
    };
    let Some(since) = parse_date(ims.as_bytes()) else {
        return false;
    };
    match mode {
        IfModifiedSince::Off => false,
        IfModifiedSince::Exact => since == mtime_unix,
        IfModifiedSince::Before => since >= mtime_unix,
    }
}

/// Whether a `If-Match` / `If-Unmodified-Since` precondition fails (`412`).
pub fn precondition_failed(headers: &HeaderMap, mtime_unix: i64, etag: Option<&str>) -> bool {
    if let Some(im) = headers.get(header::IF_MATCH) {
        return !names_etag(im.as_bytes(), etag, false);
    }
    match headers.get(header::IF_UNMODIFIED_SINCE) {
        Some(v) => parse_date(v.as_bytes()).is_some_and(|since| since < mtime_unix),
        None => false,
    }
}

/// Whether a `Range` applies given the request's `If-Range` (absent: it
/// does; an entity tag: it must be ours, strongly; a date: it must be the
/// file's modification time).
pub fn range_applies(headers: &HeaderMap, mtime_unix: i64, etag: Option<&str>) -> bool {
    let Some(v) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let v = v.as_bytes();
    if v.first() == Some(&b'"') || v.starts_with(b"W/") {
        return etag.is_some_and(|e| !e.starts_with("W/") && e.as_bytes() == v);
    }
    parse_date(v) == Some(mtime_unix)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const MTIME: i64 = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT
    const DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    const EARLIER: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const LATER: &str = "Tue, 14 Nov 2023 22:13:21 GMT";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn etag_is_mtime_and_size_in_hex() {
        assert_eq!(etag(MTIME, 1024), "\"6553f100-400\"");
        assert_eq!(etag(0, 0), "\"0-0\"");
        assert_eq!(
            etag(-1, u64::MAX),
            format!("\"{:x}-{:x}\"", -1i64, u64::MAX)
        );
    }

    #[test]
    fn not_modified_follows_nginx() {
        let tag = etag(MTIME, 5);
        let t = Some(tag.as_str());
        use IfModifiedSince::*;
        type Case<'a> = (&'a [(&'a str, &'a str)], IfModifiedSince, bool);
        let cases: &[Case<'_>] = &[
            (&[], Exact, false),
            (&[("if-modified-since", DATE)], Exact, true),
            (&[("if-modified-since", LATER)], Exact, false),
            (&[("if-modified-since", LATER)], Before, true),
            (&[("if-modified-since", EARLIER)], Before, false),
            (&[("if-modified-since", DATE)], Off, false),
            (&[("if-modified-since", "garbage")], Exact, false),
            (&[("if-none-match", "\"6553f100-5\"")], Exact, true),
            (&[("if-none-match", "W/\"6553f100-5\"")], Exact, true),
            (&[("if-none-match", "\"x\", \"6553f100-5\"")], Exact, true),
            (&[("if-none-match", "*")], Exact, true),
            (&[("if-none-match", "\"other\"")], Exact, false),
            // If-None-Match wins over If-Modified-Since.
            (
                &[("if-none-match", "\"other\""), ("if-modified-since", DATE)],
                Exact,
                false,
            ),
        ];
        for (h, mode, want) in cases {
            assert_eq!(
                not_modified(&headers(h), MTIME, t, *mode),
                *want,
                "{h:?} {mode:?}"
            );
        }
        // etag off: only `*` matches an If-None-Match.
        let h = headers(&[("if-none-match", "\"6553f100-5\"")]);
        assert!(!not_modified(&h, MTIME, None, Exact));
    }

    #[test]
    fn preconditions_and_if_range() {
        let tag = etag(MTIME, 5);
        let t = Some(tag.as_str());
        assert!(!precondition_failed(&headers(&[]), MTIME, t));
        assert!(!precondition_failed(
            &headers(&[("if-match", "\"6553f100-5\"")]),
            MTIME,
            t
        ));
        assert!(precondition_failed(
            &headers(&[("if-match", "\"x\"")]),
            MTIME,
            t
        ));
        assert!(precondition_failed(
            &headers(&[("if-unmodified-since", EARLIER)]),
            MTIME,
            t
        ));
        assert!(!precondition_failed(
            &headers(&[("if-unmodified-since", DATE)]),
            MTIME,
            t
        ));
        assert!(range_applies(&headers(&[]), MTIME, t));
        assert!(range_applies(
            &headers(&[("if-range", "\"6553f100-5\"")]),
            MTIME,
            t
        ));
        assert!(!range_applies(&headers(&[("if-range", "\"x\"")]), MTIME, t));
        assert!(range_applies(&headers(&[("if-range", DATE)]), MTIME, t));
        assert!(!range_applies(&headers(&[("if-range", LATER)]), MTIME, t));
    }
}
