//! The scanner of `Cookie` header values: `;`-separated segments, trimmed,
//! with their name and value (quotes removed or kept), found by exact name
//! (the sticky cookie) or ignoring case (`$cookie_NAME`). Borrows, never
//! allocates.

use http::header::COOKIE;
use http::HeaderMap;
use memchr::memchr;

/// One `;`-separated segment of a `Cookie` header, whitespace-trimmed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment<'a> {
    /// The whole trimmed segment.
    pub(super) raw: &'a [u8],
    /// Cookie name (trimmed); `None` when the segment has no `=`.
    pub(super) name: Option<&'a [u8]>,
    /// Offset in `raw` where the value (after `=` and whitespace) starts.
    pub(super) value_start: usize,
}

impl<'a> Segment<'a> {
    /// The value as written (quotes included).
    pub(super) fn raw_value(&self) -> &'a [u8] {
        self.raw.get(self.value_start..).unwrap_or_default()
    }

    /// The value without surrounding double quotes, and whether it was quoted.
    pub(super) fn value(&self) -> (&'a [u8], bool) {
        unquote(self.raw_value())
    }

    pub(super) fn is_named(&self, name: &[u8]) -> bool {
        self.name == Some(name)
    }
}

pub(super) fn is_ws(b: &u8) -> bool {
    // One comparison for the usual byte (anything above the space).
    *b <= b' ' && (*b == b' ' || *b == b'\t')
}

pub(super) fn trim(mut s: &[u8]) -> &[u8] {
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
pub(super) fn unquote(v: &[u8]) -> (&[u8], bool) {
    match v {
        [b'"', inner @ .., b'"'] => (inner, true),
        _ => (v, false),
    }
}

#[inline(always)]
pub(super) fn segment(seg: &[u8]) -> Option<Segment<'_>> {
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
pub(super) struct Segments<'a> {
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
pub(super) fn segments(value: &[u8]) -> Segments<'_> {
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
