//! What goes to the backend: the `Cookie` header(s) with the sticky pair
//! removed (insert with `indirect`) or its `SID~` prefix cut (prefix), one
//! scan that also finds the sticky value when there is a single header.

use bytes::Bytes;
use http::header::{Entry, COOKIE};
use http::{HeaderMap, HeaderValue};
use memchr::memchr;

use super::scan::*;
use crate::sticky::{Mode, StickyConf};

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
pub(super) fn prefix_cut(seg: &Segment<'_>, name: &[u8]) -> Option<std::ops::Range<usize>> {
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
pub(super) fn forwarded<'a>(
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
pub(super) struct Pieces<'a> {
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
pub(super) enum TidyAction {
    Keep,
    /// Insert+indirect: drop the cookie (and one separator).
    Remove,
    /// Prefix: drop this byte range of the header (the `SID~`).
    Cut(usize, usize),
}

/// Runs of the original header a tidy forwarded value is copied from:
/// `(start, end, "; " before it)`.
pub(super) const TIDY_RUNS: usize = 8;

/// The fast path of [`scan_value`] (insert+indirect or prefix) for a *tidy*
/// header, the form browsers send: cookies separated by exactly `"; "`, no other
/// whitespace around them, none empty. There every segment is already trimmed
/// and separated as the forwarded value joins them, so that value is the
/// original with the removed cookies (each with one separator) or `SID~` cut
/// out: a few runs copied, and only a cookie that starts with `name` is parsed.
/// `None` when the header is not tidy or needs too many runs; the general path
/// then produces the result (the unit tests check both agree).
pub(super) fn scan_tidy<'a>(
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
pub(super) fn scan_general<'a>(
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
