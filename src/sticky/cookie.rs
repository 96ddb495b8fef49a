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
use memchr::memchr;

use super::sid::SidIndex;
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
    // One comparison for the usual byte (anything above the space).
    *b <= b' ' && (*b == b' ' || *b == b'\t')
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

#[inline(always)]
fn segment(seg: &[u8]) -> Option<Segment<'_>> {
    let raw = trim(seg);
    if raw.is_empty() {
        return None;
    }
    let (name, value_start) = match memchr(b'=', raw) {
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
}

/// Iterator over the non-empty segments of one `Cookie` header value.
struct Segments<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    #[inline(always)]
    fn next(&mut self) -> Option<Segment<'a>> {
        loop {
            let rest = self.rest?;
            let seg = match memchr(b';', rest) {
                Some(i) => {
                    self.rest = rest.get(i + 1..);
                    rest.get(..i).unwrap_or_default()
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            if let Some(seg) = segment(seg) {
                return Some(seg);
            }
        }
    }
}

/// The non-empty segments of one `Cookie` header value.
fn segments(value: &[u8]) -> Segments<'_> {
    Segments { rest: Some(value) }
}

/// The value (quotes removed) of the first cookie named exactly `name` in one
/// `Cookie` header value.
pub fn find_in_value<'a>(value: &'a [u8], name: &str) -> Option<&'a [u8]> {
    segments(value)
        .find(|s| s.is_named(name.as_bytes()))
        .map(|s| s.value().0)
}

/// The value as written (quotes kept) of the first cookie whose name is
/// `name` ignoring ASCII case, in one `Cookie` header value: what nginx's
/// `$cookie_NAME` reads. The same scanner as the sticky cookie's.
pub fn find_in_value_ignore_case<'a>(value: &'a [u8], name: &str) -> Option<&'a [u8]> {
    segments(value)
        .find(|s| {
            s.name
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        })
        .map(|s| s.raw_value())
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
    if field.is_empty() {
        return Err(Invalid::Malformed);
    }
    // Up to 18 digits cannot overflow: one pass, checking digits as it goes.
    if field.len() <= 18 {
        let mut acc = 0i64;
        for d in field {
            let digit = d.wrapping_sub(b'0');
            if digit > 9 {
                return Err(Invalid::Malformed);
            }
            acc = acc * 10 + i64::from(digit);
        }
        return Ok(acc);
    }
    if !field.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::Malformed);
    }
    field.iter().try_fold(0i64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(i64::from(d - b'0')))
            .ok_or(Invalid::FromFuture)
    })
}

/// The usual `LASTSEEN|FIRSTSEEN`: two runs of 1 to 18 decimal digits around
/// one `|`. `None` for anything else, which the general path ([`split_at_byte`],
/// [`parse_ts`]) then classifies; where this returns values they are the ones
/// that path parses.
fn parse_stamps(stamps: &[u8]) -> Option<(i64, i64)> {
    let (last, first) = split_at_byte(stamps, b'|')?;
    Some((parse_digits(last)?, parse_digits(first)?))
}

/// 1 to 18 decimal digits (no overflow possible), eight at a time; `None` for
/// anything else.
fn parse_digits(field: &[u8]) -> Option<i64> {
    if field.is_empty() || field.len() > 18 {
        return None;
    }
    let mut acc = 0u64;
    let mut chunks = field.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        acc = acc * 100_000_000 + parse8(u64::from_le_bytes(word))?;
    }
    for d in chunks.remainder() {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        acc = acc * 10 + u64::from(digit);
    }
    i64::try_from(acc).ok()
}

/// Eight ASCII digits (first digit in the lowest byte) as a number, SWAR; `None`
/// unless every byte is `0`..=`9`.
fn parse8(word: u64) -> Option<u64> {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    // Each byte 0x30..=0x39: high nibble 3, and adding 6 does not carry into it.
    let digits = (word & HIGH) | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4);
    if digits != 0x3333_3333_3333_3333 {
        return None;
    }
    let v = word - 0x3030_3030_3030_3030;
    // Pairs of digits, then pairs of pairs, then the two halves.
    let v = (v * 10 + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v * 100 + (v >> 16)) & 0x0000_ffff_0000_ffff;
    Some((v * 10_000 + (v >> 32)) & 0xffff_ffff)
}

fn sid_str(sid: &[u8]) -> Result<&str, Invalid> {
    if sid.is_empty() {
        return Err(Invalid::EmptySid);
    }
    std::str::from_utf8(sid).map_err(|_| Invalid::Malformed)
}

/// The parts before and after the first `byte`.
fn split_at_byte(value: &[u8], byte: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr(byte, value)?;
    Some((value.get(..i)?, value.get(i + 1..)?))
}

fn decode_timestamped<'v, 's>(
    conf: &StickyConf,
    value: &'v [u8],
    now: i64,
    sid_check: impl FnOnce(&'v [u8]) -> Result<&'s str, Invalid>,
) -> Result<(&'s str, i64), Invalid> {
    // Exactly three `|`-separated fields.
    let (sid, stamps) = split_at_byte(value, b'|').ok_or(Invalid::Malformed)?;
    let (last, first) = match parse_stamps(stamps) {
        Some(both) => both,
        None => {
            let (last, first) = split_at_byte(stamps, b'|').ok_or(Invalid::Malformed)?;
            if memchr(b'|', first).is_some() {
                return Err(Invalid::Malformed);
            }
            (parse_ts(last)?, parse_ts(first)?)
        }
    };
    let sid = sid_check(sid)?;
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
    decode_with(conf, value, now, sid_str)
}

/// [`decode`], with the sid of a known peer taken from `index` instead of being
/// UTF-8-checked again: a sid equal to one in the index is valid UTF-8 (and
/// non-empty, which is checked first), so the result is the same.
/// Also returns the peer index found for the sid, if any (what
/// `index.lookup(sid)` returns for a valid cookie's sid).
pub(crate) fn decode_indexed<'s>(
    conf: &StickyConf,
    value: &'s [u8],
    index: &'s SidIndex,
    now: i64,
) -> (StickyCookie<'s>, Option<usize>) {
    let mut peer = None;
    let cookie = decode_with(conf, value, now, |raw| {
        if !raw.is_empty() {
            if let Some((i, sid)) = index
                .lookup_bytes(raw)
                .and_then(|i| index.sid(i).map(|sid| (i, sid)))
            {
                peer = Some(i);
                return Ok(sid);
            }
        }
        sid_str(raw)
    });
    (cookie, peer)
}

/// [`decode`] with `sid_check` turning the raw sid into a `&str` (or the reason
/// it is invalid), at the point of the checks where [`sid_str`] runs.
fn decode_with<'v, 's>(
    conf: &StickyConf,
    value: &'v [u8],
    now: i64,
    sid_check: impl FnOnce(&'v [u8]) -> Result<&'s str, Invalid>,
) -> StickyCookie<'s> {
    let result = match conf.mode {
        Mode::Insert if conf.timestamps() => {
            decode_timestamped(conf, value, now, sid_check).map(|(sid, first)| (sid, Some(first)))
        }
        Mode::Insert | Mode::Rewrite => sid_check(value).map(|sid| (sid, None)),
        Mode::Prefix => match memchr(b'~', value) {
            None => return StickyCookie::Absent,
            Some(t) => sid_check(value.get(..t).unwrap_or_default()).map(|sid| (sid, None)),
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
    let tilde = memchr(b'~', value)?;
    let start = seg.value_start + usize::from(quoted);
    Some(start..start + tilde + 1)
}

/// How one segment is forwarded: `None` = removed, else up to two byte slices
/// (the segment, or the parts before and after a prefix cut).
fn forwarded<'a>(
    seg: &Segment<'a>,
    name: &[u8],
    indirect: bool,
    prefix: bool,
) -> Option<(&'a [u8], &'a [u8], bool)> {
    if indirect && seg.is_named(name) {
        return None;
    }
    match prefix.then(|| prefix_cut(seg, name)).flatten() {
        Some(cut) => Some((
            seg.raw.get(..cut.start).unwrap_or_default(),
            seg.raw.get(cut.end..).unwrap_or_default(),
            true,
        )),
        None => Some((seg.raw, &[], false)),
    }
}

/// Output slices of the first pass, kept on the stack so that the usual header
/// (a handful of cookies) is parsed once; longer ones are parsed again.
struct Pieces<'a> {
    buf: [&'a [u8]; 16],
    len: usize,
    overflow: bool,
}

impl<'a> Pieces<'a> {
    fn push(&mut self, piece: &'a [u8]) {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = piece;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    fn as_slice(&self) -> &[&'a [u8]] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The forwarded form of one `Cookie` header value under `conf` (see [`strip`]).
pub fn strip_value(conf: &StickyConf, value: &[u8]) -> Stripped {
    if !strips(conf) {
        return Stripped::Keep;
    }
    scan_value(conf, value).1
}

/// What the tidy path does with one cookie.
enum TidyAction {
    Keep,
    /// Insert+indirect: drop the cookie (and one separator).
    Remove,
    /// Prefix: drop this byte range of the header (the `SID~`).
    Cut(usize, usize),
}

/// Runs of the original header a tidy forwarded value is copied from:
/// `(start, end, "; " before it)`.
const TIDY_RUNS: usize = 8;

/// The fast path of [`scan_value`] (insert+indirect or prefix) for a *tidy*
/// header, the form browsers send: cookies separated by exactly `"; "`, no other
/// whitespace around them, none empty. There every segment is already trimmed
/// and separated as the forwarded value joins them, so that value is the
/// original with the removed cookies (each with one separator) or `SID~` cut
/// out: a few runs copied, and only a cookie that starts with `name` is parsed.
/// `None` when the header is not tidy or needs too many runs; the general path
/// then produces the result (the unit tests check both agree).
fn scan_tidy<'a>(
    name: &[u8],
    indirect: bool,
    value: &'a [u8],
) -> Option<(Option<&'a [u8]>, Stripped)> {
    let (first, last) = (value.first()?, value.last()?);
    if is_ws(first) || is_ws(last) || *first == b';' || *last == b';' {
        return None;
    }
    let mut found = None;
    let mut changed = false;
    let mut runs = [(0usize, 0usize, false); TIDY_RUNS];
    let mut nruns = 0usize;
    let mut push = |run: (usize, usize, bool)| -> Option<()> {
        *runs.get_mut(nruns)? = run;
        nruns += 1;
        Some(())
    };
    // The run being extended: its start and whether "; " goes before it.
    let mut open: Option<(usize, bool)> = None;
    let mut kept_any = false;
    let mut prev_end = 0usize;
    let mut start = 0usize;
    loop {
        let rest = value.get(start..)?;
        let end = memchr(b';', rest).map_or(value.len(), |i| start + i);
        let cookie = value.get(start..end)?;
        let next = if end < value.len() {
            // `end` > `start`: the byte after a separator is never `;`.
            if is_ws(value.get(end.checked_sub(1)?)?) || value.get(end + 1) != Some(&b' ') {
                return None;
            }
            let after = value.get(end + 2)?;
            if is_ws(after) || *after == b';' {
                return None;
            }
            Some(end + 2)
        } else {
            None
        };
        let mut action = TidyAction::Keep;
        if cookie.first() == name.first() && cookie.starts_with(name) {
            if let Some(seg) = segment(cookie).filter(|seg| seg.is_named(name)) {
                if found.is_none() {
                    found = Some(seg.value().0);
                }
                if indirect {
                    action = TidyAction::Remove;
                } else if let Some(cut) = prefix_cut(&seg, name) {
                    action = TidyAction::Cut(start + cut.start, start + cut.end);
                }
            }
        }
        match action {
            TidyAction::Keep => {
                if open.is_none() {
                    open = Some((start, kept_any));
                }
                kept_any = true;
                prev_end = end;
            }
            TidyAction::Remove => {
                changed = true;
                if let Some((s, sep)) = open.take() {
                    push((s, prev_end, sep))?;
                }
            }
            TidyAction::Cut(c0, c1) => {
                changed = true;
                let (s, sep) = open.take().unwrap_or((start, kept_any));
                push((s, c0, sep))?;
                open = Some((c1, false));
                kept_any = true;
                prev_end = end;
            }
        }
        match next {
            Some(n) => start = n,
            None => break,
        }
    }
    if let Some((s, sep)) = open {
        push((s, prev_end, sep))?;
    }
    if !changed {
        return Some((found, Stripped::Keep));
    }
    let runs = runs.get(..nruns)?;
    let len: usize = runs
        .iter()
        .map(|&(s, e, sep)| e.saturating_sub(s) + if sep { 2 } else { 0 })
        .sum();
    if len == 0 {
        return Some((found, Stripped::Remove));
    }
    let mut out = Vec::with_capacity(len);
    for &(s, e, sep) in runs {
        if sep {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(value.get(s..e)?);
    }
    let stripped = match HeaderValue::from_maybe_shared(Bytes::from(out)) {
        Ok(v) => Stripped::Replace(v),
        Err(_) => Stripped::Remove,
    };
    Some((found, stripped))
}

/// One pass over one `Cookie` header value: the value (quotes removed) of its
/// first cookie named `conf.cookie`, exactly as [`find_in_value`], and its
/// forwarded form, exactly as [`strip_value`]. The request side of a request
/// with a single `Cookie` header (the usual case) parses it only here.
pub fn scan_value<'a>(conf: &StickyConf, value: &'a [u8]) -> (Option<&'a [u8]>, Stripped) {
    let name = conf.cookie.as_bytes();
    let indirect = conf.mode == Mode::Insert && conf.indirect;
    let prefix = conf.mode == Mode::Prefix;
    if !indirect && !prefix {
        return (find_in_value(value, &conf.cookie), Stripped::Keep);
    }
    scan_tidy(name, indirect, value).unwrap_or_else(|| scan_general(name, indirect, prefix, value))
}

/// [`scan_value`] without its fast path for tidy headers: the reference the
/// tests and the `sticky_cookie` fuzz target compare it with.
#[doc(hidden)]
pub fn scan_value_general<'a>(conf: &StickyConf, value: &'a [u8]) -> (Option<&'a [u8]>, Stripped) {
    let indirect = conf.mode == Mode::Insert && conf.indirect;
    let prefix = conf.mode == Mode::Prefix;
    if !indirect && !prefix {
        return (find_in_value(value, &conf.cookie), Stripped::Keep);
    }
    scan_general(conf.cookie.as_bytes(), indirect, prefix, value)
}

/// The general path of [`scan_value`] (insert+indirect or prefix): every
/// segment parsed and trimmed, the kept ones joined by `"; "`.
fn scan_general<'a>(
    name: &[u8],
    indirect: bool,
    prefix: bool,
    value: &'a [u8],
) -> (Option<&'a [u8]>, Stripped) {
    // First pass: the sticky value, is there anything to change, how long is
    // the result, and (for short headers) which slices make it up?
    let mut found = None;
    let mut changed = false;
    let mut len = 0usize;
    let mut pieces = Pieces {
        buf: [&[]; 16],
        len: 0,
        overflow: false,
    };
    let mut first = true;
    for seg in segments(value) {
        if found.is_none() && seg.is_named(name) {
            found = Some(seg.value().0);
        }
        let Some((head, tail, cut)) = forwarded(&seg, name, indirect, prefix) else {
            changed = true;
            continue;
        };
        changed |= cut;
        if !first {
            pieces.push(b"; ");
            len += 2;
        }
        first = false;
        pieces.push(head);
        if !tail.is_empty() {
            pieces.push(tail);
        }
        len += head.len() + tail.len();
    }
    if !changed {
        return (found, Stripped::Keep);
    }
    if first {
        return (found, Stripped::Remove);
    }
    // Build it with the exact capacity (one allocation).
    let mut out = Vec::with_capacity(len);
    if pieces.overflow {
        for seg in segments(value) {
            if let Some((head, tail, _)) = forwarded(&seg, name, indirect, prefix) {
                if !out.is_empty() {
                    out.extend_from_slice(b"; ");
                }
                out.extend_from_slice(head);
                out.extend_from_slice(tail);
            }
        }
    } else {
        for piece in pieces.as_slice() {
            out.extend_from_slice(piece);
        }
    }
    if out.is_empty() {
        return (found, Stripped::Remove);
    }
    // Substrings of a valid header value joined by "; " are valid; should that
    // ever fail, dropping the header is safer than forwarding the sticky pair.
    let stripped = match HeaderValue::from_maybe_shared(Bytes::from(out)) {
        Ok(v) => Stripped::Replace(v),
        Err(_) => Stripped::Remove,
    };
    (found, stripped)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sticky::Hash;

    const NOW: i64 = 1_571_297_169;
    const SID: &str = "fe12736d0ef927f9224a3336b65ee84b";

    fn conf(mode: Mode) -> StickyConf {
        StickyConf {
            mode,
            ..StickyConf::default()
        }
    }

    fn timestamped() -> StickyConf {
        StickyConf {
            maxidle: Some(30),
            maxlife: Some(3600),
            ..StickyConf::default()
        }
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).expect("valid test header"));
        }
        h
    }

    fn valid(sid: &str, firstseen: Option<i64>) -> StickyCookie<'_> {
        StickyCookie::Valid { sid, firstseen }
    }

    #[test]
    fn timestamped_cookie_boundaries() {
        let c = timestamped();
        let s = |last: i64, first: i64| format!("{SID}|{last}|{first}");
        let cases: Vec<(&str, String, StickyCookie<'_>)> = vec![
            ("fresh", s(NOW, NOW), valid(SID, Some(NOW))),
            (
                "idle_exactly_maxidle_is_valid",
                s(NOW - 30, NOW - 30),
                valid(SID, Some(NOW - 30)),
            ),
            (
                "idle_one_past_maxidle_is_expired",
                s(NOW - 31, NOW - 31),
                StickyCookie::Invalid(Invalid::IdleExpired),
            ),
            (
                "life_exactly_maxlife_is_valid",
                s(NOW, NOW - 3600),
                valid(SID, Some(NOW - 3600)),
            ),
            (
                "life_one_past_maxlife_is_expired",
                s(NOW, NOW - 3601),
                StickyCookie::Invalid(Invalid::LifeExpired),
            ),
            (
                "lastseen_86400_in_future_is_valid",
                s(NOW + 86_400, NOW),
                valid(SID, Some(NOW)),
            ),
            (
                "lastseen_86401_in_future_is_invalid",
                s(NOW + 86_401, NOW),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "firstseen_86400_in_future_is_valid",
                s(NOW, NOW + 86_400),
                valid(SID, Some(NOW + 86_400)),
            ),
            (
                "firstseen_86401_in_future_is_invalid",
                s(NOW, NOW + 86_401),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "twenty_digit_timestamp_overflowing_is_future",
                format!("{SID}|99999999999999999999|{NOW}"),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "twenty_digit_firstseen_overflowing_is_future",
                format!("{SID}|{NOW}|18446744073709551616"),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "i64_max_timestamp_is_future",
                format!("{SID}|9223372036854775807|{NOW}"),
                StickyCookie::Invalid(Invalid::FromFuture),
            ),
            (
                "twenty_digit_with_leading_zeros_is_parsed",
                format!("{SID}|0000000000{NOW}|{NOW}"),
                valid(SID, Some(NOW)),
            ),
            (
                "negative_timestamp_is_malformed",
                format!("{SID}|-1|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "plus_signed_timestamp_is_malformed",
                format!("{SID}|+{NOW}|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "empty_timestamp_is_malformed",
                format!("{SID}||{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "spaced_timestamp_is_malformed",
                format!("{SID}| {NOW}|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "two_fields_is_malformed",
                format!("{SID}|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "one_field_is_malformed",
                SID.to_string(),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "four_fields_is_malformed",
                format!("{SID}|{NOW}|{NOW}|{NOW}"),
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "empty_sid_is_invalid",
                format!("|{NOW}|{NOW}"),
                StickyCookie::Invalid(Invalid::EmptySid),
            ),
        ];
        for (name, value, want) in &cases {
            assert_eq!(decode(&c, value.as_bytes(), NOW), *want, "{name}");
        }
    }

    #[test]
    fn only_maxidle_leaves_lifetime_unlimited() {
        let c = StickyConf {
            maxidle: Some(30),
            maxlife: None,
            ..StickyConf::default()
        };
        let v = format!("{SID}|{NOW}|0");
        assert_eq!(decode(&c, v.as_bytes(), NOW), valid(SID, Some(0)));
    }

    #[test]
    fn extreme_now_does_not_overflow() {
        let c = timestamped();
        let v = format!("{SID}|9223372036854775807|0");
        for now in [i64::MIN, -1, 0, i64::MAX] {
            let _ = decode(&c, v.as_bytes(), now);
        }
        assert_eq!(
            decode(&c, v.as_bytes(), i64::MIN),
            StickyCookie::Invalid(Invalid::FromFuture)
        );
        assert_eq!(
            decode(&c, b"a|0|0", i64::MAX),
            StickyCookie::Invalid(Invalid::IdleExpired)
        );
    }

    #[test]
    fn plain_value_modes_take_the_whole_value_as_sid() {
        let cases: &[(&str, Mode, &[u8], StickyCookie<'_>)] = &[
            ("insert_sid", Mode::Insert, SID.as_bytes(), valid(SID, None)),
            (
                "insert_pipe_is_part_of_sid_without_timestamps",
                Mode::Insert,
                b"a|1|2",
                valid("a|1|2", None),
            ),
            (
                "insert_empty_sid_is_invalid",
                Mode::Insert,
                b"",
                StickyCookie::Invalid(Invalid::EmptySid),
            ),
            ("rewrite_sid", Mode::Rewrite, b"abc", valid("abc", None)),
            (
                "rewrite_empty_sid_is_invalid",
                Mode::Rewrite,
                b"",
                StickyCookie::Invalid(Invalid::EmptySid),
            ),
            (
                "non_utf8_sid_is_malformed",
                Mode::Rewrite,
                b"a\xff",
                StickyCookie::Invalid(Invalid::Malformed),
            ),
            (
                "prefix_sid_before_tilde",
                Mode::Prefix,
                b"abc~orig",
                valid("abc", None),
            ),
            (
                "prefix_repeated_tilde_splits_at_first",
                Mode::Prefix,
                b"abc~o~r",
                valid("abc", None),
            ),
            (
                "prefix_missing_tilde_is_no_cookie",
                Mode::Prefix,
                b"abc",
                StickyCookie::Absent,
            ),
            (
                "prefix_empty_sid_is_invalid",
                Mode::Prefix,
                b"~orig",
                StickyCookie::Invalid(Invalid::EmptySid),
            ),
            (
                "prefix_empty_original_is_valid",
                Mode::Prefix,
                b"abc~",
                valid("abc", None),
            ),
        ];
        for (name, mode, value, want) in cases {
            assert_eq!(decode(&conf(*mode), value, NOW), *want, "{name}");
        }
    }

    #[test]
    fn find_matches_exact_name_across_headers() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("xtest_is_not_test", &["xtest=a; test=b"], Some("b")),
            ("only_xtest_is_absent", &["xtest=a; testx=b"], None),
            ("second_cookie_header", &["a=1; b=2", "test=c"], Some("c")),
            ("first_pair_wins", &["test=a; test=b"], Some("a")),
            ("first_header_wins", &["test=a", "test=b"], Some("a")),
            (
                "spaces_around_semicolon_and_equals",
                &["a=1 ;  test = b ; c=3"],
                Some("b"),
            ),
            ("tabs_and_no_spaces", &["a=1;\ttest=b;c=3"], Some("b")),
            ("quoted_value_is_unquoted", &["test=\"b\""], Some("b")),
            ("lone_quote_is_kept", &["test=\"b"], Some("\"b")),
            ("empty_value", &["test="], Some("")),
            (
                "segment_without_equals_is_skipped",
                &["test; test=b"],
                Some("b"),
            ),
            ("no_cookie_header", &[], None),
            ("value_with_equals", &["test=a=b"], Some("a=b")),
        ];
        for (name, values, want) in cases {
            let h = headers(values);
            assert_eq!(find(&h, "test"), want.map(str::as_bytes), "{name}");
        }
    }

    #[test]
    fn read_finds_and_decodes() {
        let h = headers(&["a=1", &format!("route={SID}")]);
        assert_eq!(read(&StickyConf::default(), &h, NOW), valid(SID, None));
        assert_eq!(
            read(&StickyConf::default(), &headers(&["a=1"]), NOW),
            StickyCookie::Absent
        );
    }

    fn indirect() -> StickyConf {
        StickyConf {
            indirect: true,
            ..StickyConf::default()
        }
    }

    fn stripped(c: &StickyConf, values: &[&str]) -> Vec<String> {
        let mut h = headers(values);
        strip(c, &mut h);
        h.get_all(COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn indirect_removes_sticky_pair_and_keeps_others_in_order() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("middle_pair", &["a=1; route=x; b=2"], &["a=1; b=2"]),
            ("only_pair_drops_header", &["route=x"], &[]),
            (
                "every_pair_of_that_name",
                &["route=x; a=1; route=y"],
                &["a=1"],
            ),
            ("no_pair_is_untouched", &["a=1;b=2"], &["a=1;b=2"]),
            ("xroute_is_kept", &["xroute=1; route=2"], &["xroute=1"]),
            ("tight_separators", &["a=1;route=x;b=2"], &["a=1; b=2"]),
            (
                "segment_without_equals_is_kept",
                &["flag; route=x"],
                &["flag"],
            ),
            (
                "invalid_cookie_is_stripped_too",
                &["route=|bad; a=1"],
                &["a=1"],
            ),
            ("second_header", &["a=1", "route=x; c=3"], &["a=1", "c=3"]),
            ("empty_second_header_dropped", &["a=1", "route=x"], &["a=1"]),
            ("all_headers_emptied", &["route=x", "route=y"], &[]),
            ("empty_header_is_kept", &[""], &[""]),
        ];
        for (name, input, want) in cases {
            assert_eq!(stripped(&indirect(), input), *want, "{name}");
        }
    }

    #[test]
    fn long_headers_strip_like_short_ones() {
        let others: Vec<String> = (0..20).map(|i| format!("c{i}=v{i}")).collect();
        let kept = others.join("; ");
        let mut with_pair = others.clone();
        with_pair.insert(10, "route=x".into());
        with_pair.push("route=y".into());
        assert_eq!(
            stripped(&indirect(), &[&with_pair.join(";")]),
            [kept.as_str()]
        );
        let mut prefixed = others.clone();
        prefixed.insert(15, "route=s~orig".into());
        let mut want = others;
        want.insert(15, "route=orig".into());
        assert_eq!(
            stripped(&conf(Mode::Prefix), &[&prefixed.join("; ")]),
            [want.join("; ").as_str()]
        );
    }

    #[test]
    fn prefix_strips_sid_and_tilde() {
        let c = conf(Mode::Prefix);
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("simple", &["route=a~orig; b=1"], &["route=orig; b=1"]),
            ("quoted", &["route=\"a~orig\""], &["route=\"orig\""]),
            (
                "repeated_tilde_cuts_first",
                &["route=a~b~c"],
                &["route=b~c"],
            ),
            ("no_tilde_untouched", &["route=orig"], &["route=orig"]),
            ("spaces_kept", &["x=1 ; route = a~v"], &["x=1; route = v"]),
            ("empty_sid", &["route=~v"], &["route=v"]),
            ("second_header", &["a=1", "route=s~v"], &["a=1", "route=v"]),
            (
                "other_cookie_with_tilde_untouched",
                &["xroute=a~b"],
                &["xroute=a~b"],
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(stripped(&c, input), *want, "{name}");
        }
    }

    #[test]
    fn direct_insert_and_rewrite_forward_cookie_unchanged() {
        for c in [StickyConf::default(), conf(Mode::Rewrite)] {
            assert!(!strips(&c));
            assert_eq!(stripped(&c, &["route=x; a=1"]), ["route=x; a=1"]);
        }
        assert!(strips(&indirect()));
        assert!(strips(&conf(Mode::Prefix)));
    }

    #[test]
    fn strip_keeps_sensitive_flag() {
        let mut h = HeaderMap::new();
        let mut v = HeaderValue::from_static("a=1; route=x");
        v.set_sensitive(true);
        h.insert(COOKIE, v);
        strip(&indirect(), &mut h);
        let out = h.get(COOKIE).expect("header kept");
        assert_eq!(out, "a=1");
        assert!(out.is_sensitive());
    }

    #[test]
    fn plain_hash_does_not_change_decoding() {
        let c = StickyConf {
            hash: Hash::Plain,
            ..StickyConf::default()
        };
        assert_eq!(
            decode(&c, b"10.0.23.20:80", NOW),
            valid("10.0.23.20:80", None)
        );
    }

    #[test]
    fn parse_digits_agrees_with_parse_ts() {
        let mut inputs: Vec<Vec<u8>> = vec![b"".to_vec(), b"0".to_vec(), b"9".to_vec()];
        for len in 1..=20 {
            let digits: Vec<u8> = (0..len).map(|i| b"1571297169"[i % 10]).collect();
            inputs.push(digits.clone());
            inputs.push(vec![b'9'; len]);
            inputs.push(vec![b'0'; len]);
            for at in 0..len {
                for bad in [b'/', b':', b'|', b' ', b'a', 0x80, 0xff, 0x00, 0x39 + 0x10] {
                    let mut d = digits.clone();
                    if let Some(b) = d.get_mut(at) {
                        *b = bad;
                    }
                    inputs.push(d);
                }
            }
        }
        for input in &inputs {
            let fast = parse_digits(input);
            match parse_ts(input) {
                // Up to 18 digits, both agree exactly.
                Ok(v) if input.len() <= 18 => assert_eq!(fast, Some(v), "{input:?}"),
                // Longer or invalid fields are left to the general path.
                _ => assert_eq!(fast, None, "{input:?}"),
            }
        }
        for n in [0u64, 1, 9, 10, 99_999_999, 12_345_678, 87_654_321] {
            let text = format!("{n:08}");
            let mut word = [0u8; 8];
            word.copy_from_slice(text.as_bytes());
            assert_eq!(parse8(u64::from_le_bytes(word)), Some(n), "{text}");
        }
    }

    #[test]
    fn parse_stamps_agrees_with_the_general_path() {
        let cases: &[&[u8]] = &[
            b"1571297169|1571297169",
            b"0|0",
            b"1|2",
            b"123456789012345678|1",
            b"1234567890123456789|1",
            b"1|1234567890123456789",
            b"|1",
            b"1|",
            b"1",
            b"1|2|3",
            b"1||2",
            b"a|1",
            b"1|a",
            b" 1|1",
            b"-1|1",
        ];
        for stamps in cases {
            let general = split_at_byte(stamps, b'|').and_then(|(l, f)| {
                let no_more = memchr(b'|', f).is_none();
                match (parse_ts(l), parse_ts(f)) {
                    (Ok(l), Ok(f)) if no_more => Some((l, f)),
                    _ => None,
                }
            });
            match parse_stamps(stamps) {
                Some(both) => assert_eq!(Some(both), general, "{stamps:?}"),
                None => {
                    // Only fields the fast path does not take (over 18 digits)
                    // may still be valid for the general path.
                    let long = stamps.split(|b| *b == b'|').any(|f| f.len() > 18);
                    assert!(general.is_none() || long, "{stamps:?}");
                }
            }
        }
    }

    /// Header values exercising every branch of the scan, for the cross-checks.
    const SCAN_INPUTS: &[&str] = &[
        "",
        "a=1",
        "route=x",
        "route=x; a=1; route=y",
        "a=1;route=x;b=2",
        "a=1 ;  route = x ; c=3",
        "flag; route=x",
        "route; route=y",
        "xroute=1; route=2",
        "route=\"s~v\"",
        "route=s~v; b=1",
        "route=~v",
        "route=abc",
        "route=|bad; a=1",
        "route=fe12736d0ef927f9224a3336b65ee84b|1571297169|1571297169; lang=en",
        "test=a; route=b; test=c",
        ";;; ; route=x;;",
        "c0=v0; c1=v1; c2=v2; c3=v3; c4=v4; c5=v5; c6=v6; route=x; c7=v7; c8=v8; c9=v9",
    ];

    fn scan_confs() -> Vec<StickyConf> {
        let mut confs = Vec::new();
        for mode in [Mode::Insert, Mode::Rewrite, Mode::Prefix] {
            for indirect in [false, true] {
                for ts in [false, true] {
                    confs.push(StickyConf {
                        mode,
                        indirect: indirect && mode == Mode::Insert,
                        maxidle: ts.then_some(30),
                        maxlife: ts.then_some(3600),
                        ..StickyConf::default()
                    });
                }
            }
        }
        confs
    }

    #[test]
    fn scan_value_is_find_plus_strip() {
        let mut long: Vec<String> = (0..30).map(|i| format!("c{i}=v{i}")).collect();
        long.insert(12, "route=s~x".into());
        let long = long.join("; ");
        let inputs: Vec<&str> = SCAN_INPUTS.iter().copied().chain([long.as_str()]).collect();
        for conf in scan_confs() {
            for input in &inputs {
                let (found, stripped) = scan_value(&conf, input.as_bytes());
                assert_eq!(found, find_in_value(input.as_bytes(), "route"), "{input}");
                assert_eq!(stripped, strip_value(&conf, input.as_bytes()), "{input}");
                let general = scan_value_general(&conf, input.as_bytes());
                assert_eq!((found, stripped), general, "{conf:?} {input}");
            }
        }
    }

    /// Tidy headers (`"; "`-separated, as browsers send them) with the sticky
    /// cookie(s) in every position: the fast path must give exactly what the
    /// general path gives, and must actually be taken.
    #[test]
    fn tidy_fast_path_matches_general_path() {
        let others = [
            "_ga=GA1.2.3",
            "lang=en",
            "flag",
            "x=\"q\"",
            "routex=1",
            "a=b=c",
        ];
        let sticky = [
            "route=s1",
            "route=s~orig",
            "route=\"s~q\"",
            "route=~v",
            "route=s~",
            "route=",
            "route = s~v",
            "route=plain",
        ];
        let mut inputs: Vec<String> = Vec::new();
        for n in 0..=others.len() {
            let base: Vec<&str> = others.iter().copied().take(n).collect();
            inputs.push(base.join("; "));
            for s in sticky {
                for at in 0..=base.len() {
                    let mut v = base.clone();
                    v.insert(at, s);
                    inputs.push(v.join("; "));
                    // A second sticky cookie later on.
                    for at2 in at + 1..=v.len() {
                        let mut w = v.clone();
                        w.insert(at2, "route=t~two");
                        inputs.push(w.join("; "));
                    }
                }
            }
        }
        // Untidy forms: the fast path must decline them.
        let untidy = [
            " route=s",
            "route=s ",
            "a=1;route=s",
            "a=1;  route=s",
            "a=1 ; route=s",
            "a=1;\troute=s",
            "a=1; ; route=s",
            "a=1; route=s;",
            ";a=1",
            "",
        ];
        let mut taken = 0usize;
        let confs: Vec<StickyConf> = scan_confs().into_iter().filter(strips).collect();
        for conf in &confs {
            let (indirect, name) = (conf.mode == Mode::Insert, conf.cookie.as_bytes());
            for input in &inputs {
                let general = scan_value_general(conf, input.as_bytes());
                if let Some(fast) = scan_tidy(name, indirect, input.as_bytes()) {
                    taken += 1;
                    assert_eq!(fast, general, "{conf:?} {input:?}");
                }
                assert_eq!(scan_value(conf, input.as_bytes()), general, "{input:?}");
            }
            for input in untidy {
                assert!(
                    scan_tidy(name, indirect, input.as_bytes()).is_none(),
                    "{input:?}"
                );
            }
        }
        // Only the empty header and those needing more than TIDY_RUNS runs
        // fall back: at least 90% of the cases take the fast path.
        let total = confs.len() * inputs.len();
        assert!(
            taken * 10 >= total * 9,
            "fast path taken {taken} of {total}"
        );
    }

    #[test]
    fn decode_indexed_is_decode() {
        let index = SidIndex::new([SID, "s", "", "abc", SID]);
        let values: Vec<String> = vec![
            SID.into(),
            format!("{SID}|{NOW}|{NOW}"),
            format!("{SID}|{NOW}|{}", NOW - 4000),
            format!("{SID}~orig"),
            "s~v".into(),
            "~v".into(),
            "".into(),
            "abc".into(),
            "zz".into(),
            format!("zz|{NOW}|{NOW}"),
            format!("|{NOW}|{NOW}"),
            format!("a\u{e9}|{NOW}|{NOW}"),
        ];
        let mut raw: Vec<Vec<u8>> = values.iter().map(|v| v.clone().into_bytes()).collect();
        raw.push(b"\xff|1571297169|1571297169".to_vec());
        raw.push(b"s\xff~v".to_vec());
        for conf in scan_confs() {
            for value in &raw {
                let (got, peer) = decode_indexed(&conf, value, &index, NOW);
                let want = decode(&conf, value, NOW);
                assert_eq!(got, want, "{value:?}");
                let want_peer = match want {
                    StickyCookie::Valid { sid, .. } => index.lookup(sid),
                    _ => None,
                };
                // The peer is found whenever the cookie is valid and known
                // (and possibly for a cookie rejected later, e.g. expired).
                if want_peer.is_some() {
                    assert_eq!(peer, want_peer, "{value:?}");
                }
            }
        }
    }

    #[test]
    fn invalid_labels() {
        assert!(Invalid::IdleExpired.is_expired());
        assert!(Invalid::LifeExpired.is_expired());
        assert!(!Invalid::FromFuture.is_expired());
        assert_eq!(Invalid::EmptySid.as_str(), "empty sid");
    }
}
