//! Request side of session_sticky (spec section 4): find the sticky cookie across
//! all `Cookie` headers by exact name, decode and classify it per mode
//! ([`StickyCookie`]), and produce the `Cookie` header(s) forwarded to the backend
//! ([`strip`]: pair removed under insert+indirect, `SID~` removed under prefix).
//!
//! Everything works on header bytes and borrows from them: the hit path does not
//! allocate. Headers are only rebuilt when something must be removed.

use bytes::Bytes;
use http::header::{Entry, COOKIE};
use http::{HeaderMap, HeaderValue};

use super::{Mode, StickyConf, UNLIMITED_SECS};

/// A timestamp more than this many seconds after `now` makes the cookie invalid.
pub const MAX_FUTURE_SECS: i64 = 86_400;

/// Why a sticky cookie was rejected. An invalid cookie is treated exactly as an
/// absent one (a new session), and it is still stripped before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Wrong form: not exactly three `|` fields, a timestamp that is not decimal
    /// digits only, or a sid that is not UTF-8.
    Malformed,
    /// The sid part is empty.
    EmptySid,
    /// `now - LASTSEEN > maxidle`.
    IdleExpired,
    /// `now - FIRSTSEEN > maxlife`.
    LifeExpired,
    /// A timestamp more than [`MAX_FUTURE_SECS`] after `now` (or too big to parse).
    FromFuture,
}

impl Invalid {
    /// Idle- or life-expired (logged as `expired`, not `new`).
    pub fn is_expired(self) -> bool {
        matches!(self, Invalid::IdleExpired | Invalid::LifeExpired)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Malformed => "malformed",
            Invalid::EmptySid => "empty sid",
            Invalid::IdleExpired => "idle expired",
            Invalid::LifeExpired => "life expired",
            Invalid::FromFuture => "from the future",
        }
    }
}

/// The decoded sticky cookie of one request; borrows the sid from the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickyCookie<'a> {
    /// No cookie of that name (or, in prefix mode, a value without `~`).
    Absent,
    Invalid(Invalid),
    Valid {
        sid: &'a str,
        /// FIRSTSEEN of a timestamped insert cookie, to be kept on refresh.
        firstseen: Option<i64>,
    },
}

/// One `;`-separated segment of a `Cookie` header, whitespace-trimmed.
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    /// The whole trimmed segment.
    raw: &'a [u8],
    /// Cookie name (trimmed); `None` when the segment has no `=`.
    name: Option<&'a [u8]>,
    /// Offset in `raw` where the value (after `=` and whitespace) starts.
    value_start: usize,
}

impl<'a> Segment<'a> {
    /// The value as written (quotes included).
    fn raw_value(&self) -> &'a [u8] {
        self.raw.get(self.value_start..).unwrap_or_default()
    }

    /// The value without surrounding double quotes, and whether it was quoted.
    fn value(&self) -> (&'a [u8], bool) {
        unquote(self.raw_value())
    }

    fn is_named(&self, name: &[u8]) -> bool {
        self.name == Some(name)
    }
}

fn is_ws(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ws(first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ws(last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// `"v"` -> (`v`, true); anything else unchanged.
fn unquote(v: &[u8]) -> (&[u8], bool) {
    match v {
        [b'"', inner @ .., b'"'] => (inner, true),
        _ => (v, false),
    }
}

/// The non-empty segments of one `Cookie` header value.
fn segments(value: &[u8]) -> impl Iterator<Item = Segment<'_>> {
    value.split(|b| *b == b';').filter_map(|seg| {
        let raw = trim(seg);
        if raw.is_empty() {
            return None;
        }
        let (name, value_start) = match raw.iter().position(|b| *b == b'=') {
            Some(eq) => {
                let name = trim(raw.get(..eq).unwrap_or_default());
                let after = raw.get(eq + 1..).unwrap_or_default();
                let lead = after.iter().take_while(|b| is_ws(b)).count();
                (Some(name), eq + 1 + lead)
            }
            None => (None, raw.len()),
        };
        Some(Segment {
            raw,
            name,
            value_start,
        })
    })
}

/// The value (quotes removed) of the first cookie named exactly `name` in one
/// `Cookie` header value.
pub fn find_in_value<'a>(value: &'a [u8], name: &str) -> Option<&'a [u8]> {
    segments(value)
        .find(|s| s.is_named(name.as_bytes()))
        .map(|s| s.value().0)
}

/// The value (quotes removed) of the first cookie named exactly `name`, searching
/// every `Cookie` header in order.
pub fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .find_map(|v| find_in_value(v.as_bytes(), name))
}

/// Decimal digits only, at least one; `Err(FromFuture)` when it overflows i64
/// (such a value is necessarily far in the future).
fn parse_ts(field: &[u8]) -> Result<i64, Invalid> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::Malformed);
    }
    field.iter().try_fold(0i64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(i64::from(d - b'0')))
            .ok_or(Invalid::FromFuture)
    })
}

fn sid_str(sid: &[u8]) -> Result<&str, Invalid> {
    if sid.is_empty() {
        return Err(Invalid::EmptySid);
    }
    std::str::from_utf8(sid).map_err(|_| Invalid::Malformed)
}

fn decode_timestamped<'a>(
    conf: &StickyConf,
    value: &'a [u8],
    now: i64,
) -> Result<(&'a str, i64), Invalid> {
    let mut fields = value.split(|b| *b == b'|');
    let (Some(sid), Some(last), Some(first), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Invalid::Malformed);
    };
    let last = parse_ts(last)?;
    let first = parse_ts(first)?;
    let sid = sid_str(sid)?;
    // i128: no overflow whatever `now` and the (non-negative) timestamps are.
    let (now, last_w, first_w) = (i128::from(now), i128::from(last), i128::from(first));
    let future = i128::from(MAX_FUTURE_SECS);
    if last_w - now > future || first_w - now > future {
        return Err(Invalid::FromFuture);
    }
    let maxidle = i128::from(conf.maxidle.unwrap_or(UNLIMITED_SECS));
    let maxlife = i128::from(conf.maxlife.unwrap_or(UNLIMITED_SECS));
    if now - last_w > maxidle {
        return Err(Invalid::IdleExpired);
    }
    if now - first_w > maxlife {
        return Err(Invalid::LifeExpired);
    }
    Ok((sid, first))
}

/// Decode and classify one sticky cookie value (quotes already removed) per
/// `conf.mode`, at time `now` (Unix seconds).
pub fn decode<'a>(conf: &StickyConf, value: &'a [u8], now: i64) -> StickyCookie<'a> {
    let result = match conf.mode {
        Mode::Insert if conf.timestamps() => {
            decode_timestamped(conf, value, now).map(|(sid, first)| (sid, Some(first)))
        }
        Mode::Insert | Mode::Rewrite => sid_str(value).map(|sid| (sid, None)),
        Mode::Prefix => match value.iter().position(|b| *b == b'~') {
            None => return StickyCookie::Absent,
            Some(t) => sid_str(value.get(..t).unwrap_or_default()).map(|sid| (sid, None)),
        },
    };
    match result {
        Ok((sid, firstseen)) => StickyCookie::Valid { sid, firstseen },
        Err(why) => StickyCookie::Invalid(why),
    }
}

/// Find and decode the sticky cookie of a request.
pub fn read<'a>(conf: &StickyConf, headers: &'a HeaderMap, now: i64) -> StickyCookie<'a> {
    match find(headers, &conf.cookie) {
        None => StickyCookie::Absent,
        Some(value) => decode(conf, value, now),
    }
}

/// True when the forwarded `Cookie` header must be edited: insert+indirect
/// (remove the pair) and prefix (remove `SID~`).
pub fn strips(conf: &StickyConf) -> bool {
    matches!(
        (conf.mode, conf.indirect),
        (Mode::Insert, true) | (Mode::Prefix, _)
    )
}

/// What to do with one forwarded `Cookie` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stripped {
    /// Forward it unchanged.
    Keep,
    /// Nothing is left: drop the header.
    Remove,
    /// Forward this value instead.
    Replace(HeaderValue),
}

/// In prefix mode, the byte range of `seg.raw` to drop (the sid and the first
/// `~`, inside the quotes if any), or `None` if the segment is not a prefixed
/// sticky pair.
fn prefix_cut(seg: &Segment<'_>, name: &[u8]) -> Option<std::ops::Range<usize>> {
    if !seg.is_named(name) {
        return None;
    }
    let (value, quoted) = seg.value();
    let tilde = value.iter().position(|b| *b == b'~')?;
    let start = seg.value_start + usize::from(quoted);
    Some(start..start + tilde + 1)
}

/// The forwarded form of one `Cookie` header value under `conf` (see [`strip`]).
pub fn strip_value(conf: &StickyConf, value: &[u8]) -> Stripped {
    let name = conf.cookie.as_bytes();
    let indirect = conf.mode == Mode::Insert && conf.indirect;
    let prefix = conf.mode == Mode::Prefix;
    if !indirect && !prefix {
        return Stripped::Keep;
    }
    // First pass: is there anything to change, and how long is the result?
    let mut changed = false;
    let mut len = 0usize;
    let mut kept = 0usize;
    for seg in segments(value) {
        let piece = if indirect && seg.is_named(name) {
            changed = true;
            continue;
        } else if let Some(cut) = prefix.then(|| prefix_cut(&seg, name)).flatten() {
            changed = true;
            seg.raw.len() - cut.len()
        } else {
            seg.raw.len()
        };
        len += piece + if kept > 0 { 2 } else { 0 };
        kept += 1;
    }
    if !changed {
        return Stripped::Keep;
    }
    if kept == 0 {
        return Stripped::Remove;
    }
    // Second pass: build it with the exact capacity (one allocation).
    let mut out = Vec::with_capacity(len);
    for seg in segments(value) {
        if indirect && seg.is_named(name) {
            continue;
        }
        if !out.is_empty() {
            out.extend_from_slice(b"; ");
        }
        match prefix.then(|| prefix_cut(&seg, name)).flatten() {
            Some(cut) => {
                out.extend_from_slice(seg.raw.get(..cut.start).unwrap_or_default());
                out.extend_from_slice(seg.raw.get(cut.end..).unwrap_or_default());
            }
            None => out.extend_from_slice(seg.raw),
        }
    }
    // Substrings of a valid header value joined by "; " are valid; should that
    // ever fail, dropping the header is safer than forwarding the sticky pair.
    match HeaderValue::from_maybe_shared(Bytes::from(out)) {
        Ok(v) => Stripped::Replace(v),
        Err(_) => Stripped::Remove,
    }
}

/// Edit the request's `Cookie` header(s) in place for forwarding: under
/// insert+indirect every `NAME=...` pair is removed (other cookies kept in order,
/// a header left empty is dropped); under prefix `SID~` is removed from the value
/// of every `NAME` cookie that has one. Other modes: untouched. Applies to
/// invalid cookies too. Allocates only when a header actually changes.
pub fn strip(conf: &StickyConf, headers: &mut HeaderMap) {
    if !strips(conf) {
        return;
    }
    let mut values = headers.get_all(COOKIE).iter();
    let (first, second) = (values.next(), values.next());
    match (first, second) {
        (None, _) => {}
        (Some(only), None) => {
            let sensitive = only.is_sensitive();
            match strip_value(conf, only.as_bytes()) {
                Stripped::Keep => {}
                Stripped::Remove => {
                    headers.remove(COOKIE);
                }
                Stripped::Replace(mut v) => {
                    v.set_sensitive(sensitive);
                    headers.insert(COOKIE, v);
                }
            }
        }
        (Some(_), Some(_)) => {
            let Entry::Occupied(entry) = headers.entry(COOKIE) else {
                return;
            };
            let (_, old) = entry.remove_entry_mult();
            let old: Vec<HeaderValue> = old.collect();
            for v in old {
                match strip_value(conf, v.as_bytes()) {
                    Stripped::Keep => {
                        headers.append(COOKIE, v);
                    }
                    Stripped::Remove => {}
                    Stripped::Replace(mut nv) => {
                        nv.set_sensitive(v.is_sensitive());
                        headers.append(COOKIE, nv);
                    }
                }
            }
        }
    }
}
