//! Response side of session_sticky (spec sections 3 and 5): the `Set-Cookie`
//! that pins the client to the peer that answered. Insert mode builds our own
//! cookie (`NAME=VALUE[; Domain=D]; Path=P[; Max-Age=N; Expires=DATE]`); rewrite
//! and prefix modes edit the value of the backend's first `NAME` cookie and keep
//! its attributes byte for byte. Responses with status >= 400 are never touched,
//! and no invalid header value is ever produced (a value that would be invalid,
//! e.g. from a hostile backend, is left as the backend sent it).

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{Entry, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use httpdate::HttpDate;

use super::decide::Choice;
use super::{Mode, StickyConf};

/// Latest instant an HTTP date can show (9999-12-31 23:59:59 GMT).
const MAX_HTTP_DATE_SECS: i64 = 253_402_300_799;

/// `fmt::Write` sink that only counts bytes, to size the real buffer exactly.
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

fn http_date(unix_secs: i64) -> HttpDate {
    let secs = u64::try_from(unix_secs.clamp(0, MAX_HTTP_DATE_SECS)).unwrap_or(0);
    HttpDate::from(UNIX_EPOCH + Duration::from_secs(secs))
}

fn write_insert(
    w: &mut impl fmt::Write,
    conf: &StickyConf,
    sid: &str,
    now: i64,
    firstseen: i64,
) -> fmt::Result {
    w.write_str(&conf.cookie)?;
    w.write_char('=')?;
    w.write_str(sid)?;
    if conf.timestamps() {
        write!(w, "|{now}|{firstseen}")?;
    }
    if let Some(domain) = &conf.domain {
        write!(w, "; Domain={domain}")?;
    }
    write!(w, "; Path={}", conf.path)?;
    if let Some(maxage) = conf.maxage {
        write!(
            w,
            "; Max-Age={maxage}; Expires={}",
            http_date(now.saturating_add(maxage))
        )?;
    }
    Ok(())
}

/// The insert-mode `Set-Cookie` value for peer `sid`, exactly
/// `NAME=VALUE[; Domain=D]; Path=P[; Max-Age=N; Expires=IMF-fixdate]`, where VALUE
/// is `SID` or `SID|now|firstseen` when maxidle/maxlife is set. `None` if the
/// configured name/domain/path would make an invalid header value.
/// One allocation (the value is sized before it is written).
pub fn insert_value(conf: &StickyConf, sid: &str, now: i64, firstseen: i64) -> Option<HeaderValue> {
    let mut counter = Counter(0);
    write_insert(&mut counter, conf, sid, now, firstseen).ok()?;
    let mut out = String::with_capacity(counter.0);
    write_insert(&mut out, conf, sid, now, firstseen).ok()?;
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

/// Byte range of the cookie value in a `Set-Cookie` value whose cookie name is
/// exactly `name` (whitespace around name and value ignored), else `None`.
pub fn value_range(set_cookie: &[u8], name: &str) -> Option<std::ops::Range<usize>> {
    let pair_end = set_cookie
        .iter()
        .position(|b| *b == b';')
        .unwrap_or(set_cookie.len());
    let pair = set_cookie.get(..pair_end)?;
    let eq = pair.iter().position(|b| *b == b'=')?;
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let name_part = pair.get(..eq)?;
    let lead = name_part.iter().take_while(|b| is_ws(b)).count();
    let trail = name_part.iter().rev().take_while(|b| is_ws(b)).count();
    if name_part.get(lead..eq.saturating_sub(trail).max(lead))? != name.as_bytes() {
        return None;
    }
    let value_part = pair.get(eq + 1..)?;
    let vlead = value_part.iter().take_while(|b| is_ws(b)).count();
    let vtrail = value_part.iter().rev().take_while(|b| is_ws(b)).count();
    let start = eq + 1 + vlead;
    let end = (pair_end - vtrail).max(start);
    Some(start..end)
}

/// `set_cookie` with its value (if its name is `name`) replaced by `sid`
/// (rewrite) or prefixed with `sid~` (prefix). `None` when the name differs or
/// the result would be an invalid header value.
pub fn edit_value(mode: Mode, set_cookie: &[u8], name: &str, sid: &str) -> Option<HeaderValue> {
    let range = value_range(set_cookie, name)?;
    let head = set_cookie.get(..range.start)?;
    let (value, tail) = match mode {
        Mode::Rewrite => (&[][..], set_cookie.get(range.end..)?),
        Mode::Prefix => (
            set_cookie.get(range.start..range.end)?,
            set_cookie.get(range.end..)?,
        ),
        Mode::Insert => return None,
    };
    let tilde = usize::from(mode == Mode::Prefix);
    let mut out = Vec::with_capacity(head.len() + sid.len() + tilde + value.len() + tail.len());
    out.extend_from_slice(head);
    out.extend_from_slice(sid.as_bytes());
    if mode == Mode::Prefix {
        out.push(b'~');
    }
    out.extend_from_slice(value);
    out.extend_from_slice(tail);
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

fn is_named(v: &HeaderValue, name: &str) -> bool {
    value_range(v.as_bytes(), name).is_some()
}

/// Insert mode: put `ours` in place of the backend's first `NAME` Set-Cookie and
/// drop any further ones of that name (indirect), or append it.
fn place_insert(conf: &StickyConf, headers: &mut HeaderMap, ours: HeaderValue) {
    if !conf.indirect {
        headers.append(SET_COOKIE, ours);
        return;
    }
    let same = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| is_named(v, &conf.cookie))
        .count();
    if same == 0 {
        headers.append(SET_COOKIE, ours);
        return;
    }
    let Entry::Occupied(entry) = headers.entry(SET_COOKIE) else {
        return;
    };
    let (_, old) = entry.remove_entry_mult();
    let old: Vec<HeaderValue> = old.collect();
    let mut ours = Some(ours);
    for v in old {
        if is_named(&v, &conf.cookie) {
            if let Some(ours) = ours.take() {
                headers.append(SET_COOKIE, ours);
            }
        } else {
            headers.append(SET_COOKIE, v);
        }
    }
}

/// Rewrite/prefix: edit the first `Set-Cookie` named `NAME` in place.
fn edit_first(conf: &StickyConf, headers: &mut HeaderMap, sid: &str) {
    let Entry::Occupied(mut entry) = headers.entry(SET_COOKIE) else {
        return;
    };
    for v in entry.iter_mut() {
        if value_range(v.as_bytes(), &conf.cookie).is_some() {
            if let Some(mut nv) = edit_value(conf.mode, v.as_bytes(), &conf.cookie, sid) {
                nv.set_sensitive(v.is_sensitive());
                *v = nv;
            }
            return;
        }
    }
}

/// Apply the sticky response rules to the response `headers`.
///
/// `sid` is the sid of the peer that actually answered, `choice` the (possibly
/// fallen-back) decision, `now` Unix seconds. Nothing happens for status >= 400.
/// - insert: a cookie is set when the client is (re-)pinned, on every response
///   when maxidle/maxlife is set (LASTSEEN refreshed, FIRSTSEEN kept), and under
///   indirect whenever the backend set a cookie of the same name (ours replaces it).
/// - rewrite: the value of the first `NAME` Set-Cookie becomes `sid`.
/// - prefix: the value of the first `NAME` Set-Cookie becomes `sid~value`.
pub fn apply(
    conf: &StickyConf,
    status: StatusCode,
    headers: &mut HeaderMap,
    sid: &str,
    choice: &Choice,
    now: i64,
) {
    if status.as_u16() >= 400 {
        return;
    }
    match conf.mode {
        Mode::Insert => {
            let backend_set = conf.indirect
                && headers
                    .get_all(SET_COOKIE)
                    .iter()
                    .any(|v| is_named(v, &conf.cookie));
            if !(choice.pins() || conf.timestamps() || backend_set) {
                return;
            }
            if let Some(ours) = insert_value(conf, sid, now, choice.firstseen) {
                place_insert(conf, headers, ours);
            }
        }
        Mode::Rewrite | Mode::Prefix => edit_first(conf, headers, sid),
    }
}
