//! nginx's headers filter for one response: `expires` (the `Expires` and
//! `Cache-Control` lines) and `add_header`, as the location configured them. Pure:
//! the `add_header` values are evaluated once, when the request is planned
//! ([`ResponseEdits::new`], while its headers are at hand), and applied to
//! whatever response the request gets, proxied or made by the proxy
//! ([`ResponseEdits::apply`], with the clock reading passed in).
//!
//! nginx's rules: without `always`, headers (and `expires`) only go on 200, 201,
//! 204, 206, 301, 302, 303, 304, 307 and 308; an empty value adds nothing;
//! `Cache-Control` and `Link` are appended, `ETag` and `Last-Modified` replace
//! the response's own (an empty value removes it), any other name is appended.
//! `expires` replaces `Expires` and keeps a single `Cache-Control`.

use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::config::{Expires, LocationConf};
use crate::timefmt;
use crate::vars::{self, RequestVars};

/// What a response gets from its location: evaluated `add_header` lines and
/// `expires`. Empty (and allocation-free) when the location has neither.
#[derive(Debug, Clone, Default)]
pub struct ResponseEdits {
    headers: Vec<(HeaderName, HeaderValue, bool)>,
    expires: Expires,
}

/// `expires max`: nginx's fixed values.
const MAX_EXPIRES: &str = "Thu, 31 Dec 2037 23:55:55 GMT";
const MAX_AGE: &str = "max-age=315360000";
/// `expires epoch`.
const EPOCH_EXPIRES: &str = "Thu, 01 Jan 1970 00:00:01 GMT";

impl ResponseEdits {
    /// Evaluates the `add_header` values of `conf` with the request's variables.
    /// A value that evaluates empty, or to bytes a header cannot carry, adds nothing.
    pub fn new(conf: &LocationConf, vars: &RequestVars<'_>) -> ResponseEdits {
        let headers = conf
            .add_headers
            .iter()
            .filter_map(|h| {
                let value = vars::eval_to_vec(&h.value, vars);
                let value = HeaderValue::from_bytes(&value).ok()?;
                Some((h.name.clone(), value, h.always))
            })
            .collect();
        ResponseEdits {
            headers,
            expires: conf.expires,
        }
    }

    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.expires == Expires::Off
    }

    /// Edits the headers of a response of `status` sent at `now`.
    pub fn apply(&self, status: StatusCode, headers: &mut HeaderMap, now: SystemTime) {
        if self.is_empty() {
            return;
        }
        let safe = matches!(
            status.as_u16(),
            200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
        );
        if safe {
            set_expires(self.expires, headers, now);
        }
        for (name, value, always) in &self.headers {
            if !safe && !always {
                continue;
            }
            if *name == header::ETAG || *name == header::LAST_MODIFIED {
                headers.remove(name);
            }
            if !value.is_empty() {
                headers.append(name.clone(), value.clone());
            }
        }
    }
}

/// nginx's `ngx_http_set_expires`.
fn set_expires(expires: Expires, headers: &mut HeaderMap, now: SystemTime) {
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (at, cache_control): (HeaderValue, HeaderValue) = match expires {
        Expires::Off => return,
        Expires::Epoch => (
            HeaderValue::from_static(EPOCH_EXPIRES),
            HeaderValue::from_static("no-cache"),
        ),
        Expires::Max => (
            HeaderValue::from_static(MAX_EXPIRES),
            HeaderValue::from_static(MAX_AGE),
        ),
        Expires::Access(0) | Expires::Modified(0) => {
            (date_value(now_secs), HeaderValue::from_static("max-age=0"))
        }
        Expires::Access(offset) | Expires::Modified(offset) => {
            let last_modified = match expires {
                Expires::Modified(_) => last_modified(headers),
                _ => None,
            };
            let (at, max_age) = match last_modified {
                Some(base) => {
                    let at = base.saturating_add(offset);
                    (at, at.saturating_sub(now_secs))
                }
                None => (now_secs.saturating_add(offset), offset),
            };
            (
                date_value(at),
                max_age_value(offset < 0 || max_age < 0, max_age),
            )
        }
        Expires::Daily(time_of_day) => {
            let at = next_time_of_day(now_secs, time_of_day);
            let max_age = at.saturating_sub(now_secs);
            (date_value(at), max_age_value(max_age < 0, max_age))
        }
    };
    headers.insert(header::EXPIRES, at);
    headers.insert(header::CACHE_CONTROL, cache_control);
}

fn date_value(unix_secs: i64) -> HeaderValue {
    let stamp = timefmt::http_date_unix(unix_secs);
    HeaderValue::from_str(stamp.as_str()).unwrap_or(HeaderValue::from_static(EPOCH_EXPIRES))
}

fn max_age_value(no_cache: bool, max_age: i64) -> HeaderValue {
    if no_cache {
        return HeaderValue::from_static("no-cache");
    }
    let mut text = String::from("max-age=");
    text.push_str(&max_age.to_string());
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("max-age=0"))
}

/// The response's `Last-Modified`, in seconds since the epoch.
fn last_modified(headers: &HeaderMap) -> Option<i64> {
    let text = headers.get(header::LAST_MODIFIED)?.to_str().ok()?;
    let at = httpdate::parse_http_date(text).ok()?;
    let secs = at.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// The first instant after `now` whose time of day (UTC) is `time_of_day`
/// seconds after midnight; nginx's `ngx_next_time`.
fn next_time_of_day(now: i64, time_of_day: i64) -> i64 {
    let midnight = now - now.rem_euclid(86_400);
    let today = midnight + time_of_day;
    if today > now {
        today
    } else {
        today + 86_400
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2026-11-22 04:20:42 UTC.
    const NOW: u64 = 1_795_321_242;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn edits(headers: &[(&str, &str, bool)], expires: Expires) -> ResponseEdits {
        ResponseEdits {
            headers: headers
                .iter()
                .map(|(n, v, a)| {
                    (
                        HeaderName::from_bytes(n.as_bytes()).unwrap(),
                        HeaderValue::from_str(v).unwrap(),
                        *a,
                    )
                })
                .collect(),
            expires,
        }
    }

    fn lines(map: &HeaderMap) -> Vec<String> {
        map.iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect()
    }

    fn applied(e: &ResponseEdits, status: u16, start: &[(&str, &str)]) -> Vec<String> {
        let mut map = HeaderMap::new();
        for (n, v) in start {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        e.apply(StatusCode::from_u16(status).unwrap(), &mut map, now());
        lines(&map)
    }

    #[test]
    fn headers_go_on_safe_statuses_or_always() {
        let e = edits(&[("x-a", "a", false), ("x-b", "b", true)], Expires::Off);
        for status in [200, 201, 204, 206, 301, 302, 303, 304, 307, 308] {
            assert_eq!(applied(&e, status, &[]), ["x-a: a", "x-b: b"], "{status}");
        }
        for status in [101, 202, 400, 403, 404, 500, 502, 504] {
            assert_eq!(applied(&e, status, &[]), ["x-b: b"], "{status}");
        }
    }

    #[test]
    fn names_are_appended_or_replaced_as_nginx() {
        let e = edits(
            &[
                ("cache-control", "private", false),
                ("etag", "\"new\"", false),
                ("last-modified", "", false),
                ("x-a", "", false),
                ("x-b", "two", false),
            ],
            Expires::Off,
        );
        let start = [
            ("cache-control", "no-store"),
            ("etag", "\"old\""),
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("x-b", "one"),
        ];
        assert_eq!(
            applied(&e, 200, &start),
            [
                "cache-control: no-store",
                "cache-control: private",
                "x-b: one",
                "x-b: two",
                "etag: \"new\"",
            ]
        );
    }

    #[test]
    fn expires_writes_nginx_values() {
        let lm = "Sun, 22 Nov 2026 04:00:00 GMT";
        /// (expires, response headers before, Expires, Cache-Control)
        type Case<'a> = (Expires, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (Expires::Epoch, &[], EPOCH_EXPIRES, "no-cache"),
            (Expires::Max, &[], MAX_EXPIRES, MAX_AGE),
            (
                Expires::Access(0),
                &[],
                "Sun, 22 Nov 2026 04:20:42 GMT",
                "max-age=0",
            ),
            (
                Expires::Access(3600),
                &[],
                "Sun, 22 Nov 2026 05:20:42 GMT",
                "max-age=3600",
            ),
            (
                Expires::Access(-1),
                &[],
                "Sun, 22 Nov 2026 04:20:41 GMT",
                "no-cache",
            ),
            (
                Expires::Modified(3600),
                &[("last-modified", lm)],
                "Sun, 22 Nov 2026 05:00:00 GMT",
                "max-age=2358",
            ),
            (
                Expires::Modified(600),
                &[("last-modified", lm)],
                "Sun, 22 Nov 2026 04:10:00 GMT",
                "no-cache",
            ),
            (
                Expires::Modified(60),
                &[],
                "Sun, 22 Nov 2026 04:21:42 GMT",
                "max-age=60",
            ),
            (
                Expires::Daily(5 * 3600),
                &[],
                "Sun, 22 Nov 2026 05:00:00 GMT",
                "max-age=2358",
            ),
            (
                Expires::Daily(3600),
                &[],
                "Mon, 23 Nov 2026 01:00:00 GMT",
                "max-age=74358",
            ),
        ];
        for (expires, start, at, cc) in cases {
            let e = edits(&[], *expires);
            let mut start = start.to_vec();
            start.push(("cache-control", "public"));
            start.push(("cache-control", "s-maxage=5"));
            start.push(("expires", "0"));
            let got = applied(&e, 200, &start);
            assert!(
                got.contains(&format!("expires: {at}")),
                "{expires:?}: {got:?}"
            );
            assert!(
                got.contains(&format!("cache-control: {cc}")),
                "{expires:?}: {got:?}"
            );
            assert_eq!(
                got.iter()
                    .filter(|l| l.starts_with("cache-control"))
                    .count(),
                1,
                "{expires:?}: {got:?}"
            );
            // Not on other statuses.
            let got = applied(&e, 404, &[]);
            assert!(got.is_empty(), "{expires:?}: {got:?}");
        }
    }
}
