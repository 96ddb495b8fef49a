//! nginx's headers filter for one response: `expires` (the `Expires` and
//! `Cache-Control` lines) and `add_header`, as the location configured them. Pure:
//! the `add_header` values are evaluated when the request is planned
//! ([`ResponseEdits::new`], while its headers are at hand), except the parts
//! that read the response (`$status`, `$sent_http_*`, `$upstream_*`), kept for
//! when it is known; then applied to whatever response the request gets,
//! proxied or made by the proxy ([`ResponseEdits::apply`], with the clock
//! reading and the backend's head as received passed in).
//!
//! nginx's rules: without `always`, headers (and `expires`) only go on 200, 201,
//! 204, 206, 301, 302, 303, 304, 307 and 308; an empty value adds nothing;
//! `Cache-Control` and `Link` are appended, `ETag` and `Last-Modified` replace
//! the response's own (an empty value removes it), any other name is appended.
//! `expires` replaces `Expires` and keeps a single `Cache-Control`. The values are
//! evaluated in order, so `$sent_http_NAME` sees the lines added before it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::config::{Expires, LocationConf, Part, Variable};
use crate::http1::names::SpelledName;
use crate::log::TryRecord;
use crate::timefmt;
use crate::vars::{self, RequestVars, ResponseFacts, UpstreamTry};

/// What a response gets from its location: evaluated `add_header` lines and
/// `expires`. Empty (and allocation-free) when the location has neither.
#[derive(Debug, Clone, Default)]
pub struct ResponseEdits {
    headers: Vec<(HeaderName, Value, bool)>,
    expires: Expires,
    /// Set when a value reads the response, or a name is spelled (kept in
    /// the box: the common edits stay three words and cheap to drop).
    late: Option<Box<Late>>,
}

/// One `add_header` value.
#[derive(Debug, Clone)]
enum Value {
    Ready(HeaderValue),
    /// Its request parts already evaluated, its response variables not yet.
    Late(Vec<Piece>),
}

#[derive(Debug, Clone)]
enum Piece {
    Bytes(Vec<u8>),
    Var(Variable),
}

/// What the late values read besides the response itself, and how the names
/// are spelled.
#[derive(Debug, Clone)]
struct Late {
    /// When the request's first byte came (`$request_time`).
    start: SystemTime,
    /// The upstream tries so far (`$upstream_addr`, `$upstream_status`, ...).
    tries: Vec<TryRecord>,
    /// Some value reads the response (or tries carried from before an
    /// internal redirect): the upstream tries are recorded.
    reads: bool,
    /// Some value reads the backend's header lines.
    upstream_headers: bool,
    /// How the added names are written, when some is not lower-cased.
    names: Option<Arc<[SpelledName]>>,
}

impl Late {
    fn new(start: SystemTime) -> Late {
        Late {
            start,
            tries: Vec::new(),
            reads: false,
            upstream_headers: false,
            names: None,
        }
    }
}

/// `expires max`: nginx's fixed values.
const MAX_EXPIRES: &str = "Thu, 31 Dec 2037 23:55:55 GMT";
const MAX_AGE: &str = "max-age=315360000";
/// `expires epoch`.
const EPOCH_EXPIRES: &str = "Thu, 01 Jan 1970 00:00:01 GMT";

impl ResponseEdits {
    /// Evaluates the `add_header` values of `conf` with the request's variables
    /// (the parts that read the response wait for it). `before`: the edits of
    /// the location the request was in before an internal redirect, whose
    /// upstream tries still count. A value that evaluates empty, or to bytes a
    /// header cannot carry, adds nothing.
    pub fn new(
        conf: &LocationConf,
        vars: &RequestVars<'_>,
        before: ResponseEdits,
    ) -> ResponseEdits {
        let mut late: Option<Box<Late>> = None;
        let headers = conf
            .add_headers
            .iter()
            .filter_map(|h| {
                let reads_response = h.value.parts.iter().any(|p| match p {
                    Part::Var(v) => vars::reads_response(v),
                    Part::Literal(_) => false,
                });
                if !reads_response {
                    let value = vars::eval_to_vec(&h.value, vars);
                    let value = HeaderValue::from_bytes(&value).ok()?;
                    return Some((h.name.name().clone(), Value::Ready(value), h.always));
                }
                let state = late.get_or_insert_with(|| Box::new(Late::new(vars.start)));
                state.reads = true;
                let pieces = pieces(&h.value.parts, vars, &mut state.upstream_headers);
                Some((h.name.name().clone(), Value::Late(pieces), h.always))
            })
            .collect();
        // The tries before an internal redirect count where it leads.
        let carried = before.late.map(|l| l.tries).unwrap_or_default();
        if !carried.is_empty() {
            let state = late.get_or_insert_with(|| Box::new(Late::new(vars.start)));
            state.tries = carried;
            state.reads = true;
        }
        if let Some(names) = &conf.add_header_names {
            late.get_or_insert_with(|| Box::new(Late::new(vars.start)))
                .names = Some(Arc::clone(names));
        }
        ResponseEdits {
            headers,
            expires: conf.expires,
            late,
        }
    }

    /// No edits, for a location without `add_header` or `expires`; the upstream
    /// tries of `before` (a location the request was internally redirected
    /// from) are kept for where it goes next.
    #[inline]
    pub fn none(before: ResponseEdits) -> ResponseEdits {
        let late = before.late.filter(|l| !l.tries.is_empty()).map(|mut l| {
            l.upstream_headers = false;
            l.names = None;
            l
        });
        ResponseEdits {
            late,
            ..ResponseEdits::default()
        }
    }

    /// The wire spelling of the names it adds, for the response's encoder.
    pub fn names(&self) -> Option<Arc<[SpelledName]>> {
        self.late.as_ref().and_then(|l| l.names.clone())
    }

    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.expires == Expires::Off
    }

    /// True when a value reads the upstream tries: the proxy then records
    /// them here ([`ResponseEdits::note_try`]).
    pub fn wants_tries(&self) -> bool {
        self.late.as_ref().is_some_and(|l| l.reads)
    }

    /// Records one upstream try (kept for the location an internal redirect
    /// leads to even when no value here reads it).
    pub fn note_try(&mut self, record: TryRecord) {
        let late = self
            .late
            .get_or_insert_with(|| Box::new(Late::new(UNIX_EPOCH)));
        late.reads = true;
        late.tries.push(record);
    }

    /// True when a value reads the backend's header lines: the proxy then
    /// passes the backend's head to [`ResponseEdits::apply`].
    pub fn wants_upstream_head(&self) -> bool {
        self.late.as_ref().is_some_and(|l| l.upstream_headers)
    }

    /// Edits the headers of a response of `status` sent at `now`.
    /// `upstream_head`: the last backend response head as received, when the
    /// request was proxied.
    pub fn apply(
        &self,
        status: StatusCode,
        headers: &mut HeaderMap,
        now: SystemTime,
        upstream_head: Option<&[u8]>,
    ) {
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
        let upstream_headers = match (&self.late, upstream_head) {
            (Some(late), Some(raw)) if late.upstream_headers => {
                Some(crate::http1::response::head_lines(raw))
            }
            _ => None,
        };
        let tries: Vec<UpstreamTry<'_>> = self
            .late
            .as_ref()
            .map(|l| l.tries.iter().map(TryRecord::as_try).collect())
            .unwrap_or_default();
        for (name, value, always) in &self.headers {
            if !safe && !always {
                continue;
            }
            let value = match value {
                Value::Ready(v) => v.clone(),
                Value::Late(pieces) => {
                    let facts = ResponseFacts {
                        status: Some(status.as_u16()),
                        sent: Some(headers),
                        body_bytes_sent: 0,
                        bytes_sent: 0,
                        elapsed: self
                            .late
                            .as_ref()
                            .and_then(|l| now.duration_since(l.start).ok())
                            .unwrap_or_default(),
                        upstream: &tries,
                        upstream_headers: upstream_headers.as_ref(),
                    };
                    let mut out = Vec::new();
                    for piece in pieces {
                        match piece {
                            Piece::Bytes(b) => out.extend_from_slice(b),
                            Piece::Var(var) => vars::eval_response(var, &facts, &mut out),
                        }
                    }
                    match HeaderValue::from_bytes(&out) {
                        Ok(v) => v,
                        Err(_) => continue,
                    }
                }
            };
            if *name == header::ETAG || *name == header::LAST_MODIFIED {
                headers.remove(name);
            }
            if !value.is_empty() {
                headers.append(name.clone(), value);
            }
        }
    }
}

/// A value's parts with those that read the request evaluated now; notes in
/// `upstream_headers` whether one reads the backend's header lines.
fn pieces(parts: &[Part], vars: &RequestVars<'_>, upstream_headers: &mut bool) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    for part in parts {
        match part {
            Part::Var(var) if vars::reads_response(var) => {
                *upstream_headers |= vars::reads_upstream_headers(var);
                pieces.push(Piece::Var(var.clone()));
            }
            _ => {
                if !matches!(pieces.last(), Some(Piece::Bytes(_))) {
                    pieces.push(Piece::Bytes(Vec::new()));
                }
                if let Some(Piece::Bytes(out)) = pieces.last_mut() {
                    match part {
                        Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
                        Part::Var(var) => vars::eval_var(var, vars, out),
                    }
                }
            }
        }
    }
    pieces
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
                        Value::Ready(HeaderValue::from_str(v).unwrap()),
                        *a,
                    )
                })
                .collect(),
            expires,
            late: None,
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
        e.apply(StatusCode::from_u16(status).unwrap(), &mut map, now(), None);
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

    fn load(text: &str) -> crate::config::Config {
        crate::config::load_str(text, std::path::Path::new("/etc/proxy/test.conf"))
            .unwrap()
            .0
    }

    /// Edits built from `add_header` lines as a configuration writes them, with
    /// the request's variables of `crate::vars`' tests (`$request_method` POST).
    fn configured(lines: &str) -> ResponseEdits {
        let text = format!("http {{ server {{ location / {{ {lines} return 200; }} }} }}");
        let c = load(&text);
        let conf = &c.http.servers[0].locations[0].conf;
        let h = crate::vars::tests::headers(&[]);
        let m = http::Method::POST;
        let vars = crate::vars::tests::vars(&h, &m);
        ResponseEdits::new(conf, &vars, ResponseEdits::default())
    }

    #[test]
    fn response_variables_are_read_when_the_response_is() {
        let mut e = configured(
            "add_header X-Disp $upstream_http_content_disposition;
             add_header X-Seen \"$request_method:$sent_http_x_disp\";
             add_header X-Up \"$upstream_addr=$upstream_status\" always;
             add_header X-Status $status always;
             add_header X-Cookie $upstream_cookie_sid;
             add_header X-Plain plain;",
        );
        assert!(e.wants_tries() && e.wants_upstream_head());
        e.note_try(TryRecord {
            addr: "127.0.0.1:1".into(),
            status: Some(502),
            connect_time: None,
            header_time: None,
            response_time: None,
        });
        e.note_try(TryRecord {
            addr: "127.0.0.1:2".into(),
            status: Some(200),
            connect_time: None,
            header_time: None,
            response_time: None,
        });
        let head = b"HTTP/1.1 200 OK\r\nContent-Disposition: inline\r\n\
                     Set-Cookie: sid=s1; Path=/\r\nContent-Length: 0\r\n\r\n";
        let mut map = HeaderMap::new();
        let ok = StatusCode::OK;
        e.apply(ok, &mut map, now(), Some(&head[..]));
        assert_eq!(
            lines(&map),
            [
                "x-disp: inline",
                "x-seen: POST:inline",
                "x-up: 127.0.0.1:1, 127.0.0.1:2=502, 200",
                "x-status: 200",
                "x-cookie: s1",
                "x-plain: plain",
            ]
        );
        // No backend head (a response the proxy made): empty values add
        // nothing; on a 404 only the `always` lines.
        let mut map = HeaderMap::new();
        e.apply(StatusCode::NOT_FOUND, &mut map, now(), None);
        assert_eq!(
            lines(&map),
            ["x-up: 127.0.0.1:1, 127.0.0.1:2=502, 200", "x-status: 404"]
        );
        // An internal redirect keeps the tries made so far.
        let h = crate::vars::tests::headers(&[]);
        let m = http::Method::GET;
        let vars = crate::vars::tests::vars(&h, &m);
        let c = load("http { server { location / { add_header X-Up $upstream_status; } } }");
        let next = ResponseEdits::new(&c.http.servers[0].locations[0].conf, &vars, e);
        let mut map = HeaderMap::new();
        next.apply(ok, &mut map, now(), None);
        assert_eq!(lines(&map), ["x-up: 502, 200"]);
        // Values that read only the request need nothing later.
        let plain = configured("add_header X-M $request_method;");
        assert!(!plain.wants_tries() && !plain.wants_upstream_head());
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
