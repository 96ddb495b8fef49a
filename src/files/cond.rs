//! Validators of a file and the conditional requests nginx answers with
//! them (its not-modified filter): the `ETag` (`"MTIME-SIZE"` in hex, as
//! nginx), `If-None-Match` and `If-Modified-Since` (`if_modified_since
//! exact|before|off`) for `304`, and `If-Range` for whether a `Range`
//! applies. Pure: the file's facts are arguments.

use http::header::{self, HeaderMap, HeaderValue};

use crate::config::files::IfModifiedSince;
use crate::numfmt::write_hex;

/// nginx's strong `ETag` of a file: `"` mtime in hex `-` size in hex `"`.
pub fn etag(mtime_unix: i64, size: u64) -> HeaderValue {
    // Not through `fmt`: on every file response. A negative mtime is
    // written in two's complement, as `{:x}` would. Written in a buffer of
    // its exact length, which the value then owns (one allocation).
    let hex_len = |n: u64| (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
    let mtime = mtime_unix as u64;
    let mut text = Vec::with_capacity(3 + hex_len(mtime) + hex_len(size));
    text.push(b'"');
    write_hex(&mut text, mtime);
    text.push(b'-');
    write_hex(&mut text, size);
    text.push(b'"');
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// The request fields the conditional answers read (the first line of
/// each, as `HeaderMap::get`), found in one pass over the request's head.
#[derive(Debug, Default, Clone, Copy)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub if_unmodified_since: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
}

impl<'a> Conditions<'a> {
    /// The conditional fields of `headers`.
    pub fn of(headers: &'a HeaderMap) -> Self {
        let mut c = Conditions::default();
        for (name, value) in headers {
            let slot = if *name == header::IF_MATCH {
                &mut c.if_match
            } else if *name == header::IF_NONE_MATCH {
                &mut c.if_none_match
            } else if *name == header::IF_MODIFIED_SINCE {
                &mut c.if_modified_since
            } else if *name == header::IF_UNMODIFIED_SINCE {
                &mut c.if_unmodified_since
            } else if *name == header::IF_RANGE {
                &mut c.if_range
            } else if *name == header::RANGE {
                &mut c.range
            } else {
                continue;
            };
            slot.get_or_insert(value.as_bytes());
        }
        c
    }
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
fn names_etag(list: &[u8], etag: Option<&[u8]>, weak: bool) -> bool {
    if list.trim_ascii() == b"*" {
        return true;
    }
    let Some(etag) = etag else { return false };
    let bare = etag.strip_prefix(b"W/").unwrap_or(etag);
    list.split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .any(|tag| {
            if weak {
                tag.strip_prefix(b"W/").unwrap_or(tag) == bare
            } else {
                tag == etag
            }
        })
}

/// Whether a `GET`/`HEAD` of a file whose validators are `mtime_unix` and
/// `etag` (`None` with `etag off`) is answered `304 Not Modified`.
pub fn not_modified(
    c: &Conditions<'_>,
    mtime_unix: i64,
    etag: Option<&[u8]>,
    mode: IfModifiedSince,
) -> bool {
    if let Some(inm) = c.if_none_match {
        return names_etag(inm, etag, true);
    }
    let Some(ims) = c.if_modified_since else {
        return false;
    };
    let Some(since) = parse_date(ims) else {
        return false;
    };
    match mode {
        IfModifiedSince::Off => false,
        IfModifiedSince::Exact => since == mtime_unix,
        IfModifiedSince::Before => since >= mtime_unix,
    }
}

/// Whether a `If-Match` / `If-Unmodified-Since` precondition fails (`412`).
pub fn precondition_failed(c: &Conditions<'_>, mtime_unix: i64, etag: Option<&[u8]>) -> bool {
    if let Some(im) = c.if_match {
        return !names_etag(im, etag, false);
    }
    match c.if_unmodified_since {
        Some(v) => parse_date(v).is_some_and(|since| since < mtime_unix),
        None => false,
    }
}

/// Whether a `Range` applies given the request's `If-Range` (absent: it
/// does; an entity tag: it must be ours, strongly; a date: it must be the
/// file's modification time).
pub fn range_applies(c: &Conditions<'_>, mtime_unix: i64, etag: Option<&[u8]>) -> bool {
    let Some(v) = c.if_range else {
        return true;
    };
    if v.first() == Some(&b'"') || v.starts_with(b"W/") {
        return etag.is_some_and(|e| !e.starts_with(b"W/") && e == v);
    }
    parse_date(v) == Some(mtime_unix)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MTIME: i64 = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT
    const DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    const EARLIER: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const LATER: &str = "Tue, 14 Nov 2023 22:13:21 GMT";

    fn headers<V: AsRef<[u8]>>(pairs: &[(&'static str, V)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_bytes(v.as_ref()).unwrap());
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
        let t = Some(tag.as_bytes());
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
                not_modified(&Conditions::of(&headers(h)), MTIME, t, *mode),
                *want,
                "{h:?} {mode:?}"
            );
        }
        // Lists are compared as bytes, as nginx does: a tag that is not
        // UTF-8 does not hide ours, and only ASCII spaces separate tags.
        for (list, want) in [
            (&b"\"\xff\", \"6553f100-5\""[..], true),
            (&b"\"6553f100-5\"\xc2\xa0"[..], false),
        ] {
            let h = headers(&[("if-none-match", list)]);
            assert_eq!(not_modified(&Conditions::of(&h), MTIME, t, Exact), want);
        }
        // etag off: only `*` matches an If-None-Match.
        let h = headers(&[("if-none-match", "\"6553f100-5\"")]);
        assert!(!not_modified(&Conditions::of(&h), MTIME, None, Exact));
    }

    #[test]
    fn preconditions_and_if_range() {
        let tag = etag(MTIME, 5);
        let t = Some(tag.as_bytes());
        type Check = fn(&Conditions<'_>, i64, Option<&[u8]>) -> bool;
        type Case<'a> = (Check, &'a [(&'a str, &'a str)], bool);
        let failed: Check = precondition_failed;
        let applies: Check = range_applies;
        // (check, request fields, its answer): 412 for `failed`, the Range
        // applies for `applies`.
        let cases: [Case<'_>; 10] = [
            (failed, &[], false),
            (failed, &[("if-match", "\"6553f100-5\"")], false),
            (failed, &[("if-match", "\"x\"")], true),
            (failed, &[("if-unmodified-since", EARLIER)], true),
            (failed, &[("if-unmodified-since", DATE)], false),
            (applies, &[], true),
            (applies, &[("if-range", "\"6553f100-5\"")], true),
            (applies, &[("if-range", "\"x\"")], false),
            (applies, &[("if-range", DATE)], true),
            (applies, &[("if-range", LATER)], false),
        ];
        for (check, h, want) in cases {
            let c = headers(h);
            assert_eq!(check(&Conditions::of(&c), MTIME, t), want, "{h:?}");
        }
    }

    #[test]
    fn conditions_are_the_first_line_of_each_field() {
        let h = headers(&[
            ("host", "a"),
            ("range", "bytes=0-1"),
            ("if-none-match", "\"a\""),
            ("if-none-match", "\"b\""),
            ("if-modified-since", DATE),
            ("if-unmodified-since", EARLIER),
            ("if-match", "*"),
            ("if-range", LATER),
            ("range", "bytes=2-3"),
        ]);
        let c = Conditions::of(&h);
        assert_eq!(c.range, Some(&b"bytes=0-1"[..]));
        assert_eq!(c.if_none_match, Some(&b"\"a\""[..]));
        assert_eq!(c.if_modified_since, Some(DATE.as_bytes()));
        assert_eq!(c.if_unmodified_since, Some(EARLIER.as_bytes()));
        assert_eq!(c.if_match, Some(&b"*"[..]));
        assert_eq!(c.if_range, Some(LATER.as_bytes()));
        let plain = headers(&[("host", "a"), ("accept", "*/*")]);
        let none = Conditions::of(&plain);
        assert!(none.range.is_none() && none.if_match.is_none() && none.if_none_match.is_none());
        assert!(none.if_modified_since.is_none() && none.if_unmodified_since.is_none());
        assert!(none.if_range.is_none());
    }
}
