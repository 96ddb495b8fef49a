//! Request paths: nginx's normalization and the `proxy_pass` URI mapping.
//!
//! [`normalize_path`] turns the path of a request target into nginx's `$uri`:
//! `%XX` decoded, `//` merged (nginx's `merge_slashes on`), `.` and `..` segments
//! resolved; a `..` above the root, a bad `%` escape or a decoded NUL is a 400.
//! Location matching runs on that normalized path. [`upstream_uri`] builds the
//! request target sent to the backend (spec/config.md, "proxy_pass URI rules"):
//! without a URI part the original target unchanged; with one, the matched location
//! prefix of the normalized path replaced by the URI, re-escaped as nginx does, and
//! the query kept.

use std::borrow::Cow;

use crate::config::LocationMatch;

/// Why a request target is refused (the engine answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// A decoded NUL byte.
    Nul,
    /// `..` climbing above the root.
    AboveRoot,
}

impl std::fmt::Display for UriError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UriError::NotAbsolute => "request path does not start with \"/\"",
            UriError::BadEscape => "invalid %-escape in request path",
            UriError::Nul => "NUL byte in request path",
            UriError::AboveRoot => "request path climbs above the root",
        })
    }
}

impl std::error::Error for UriError {}

/// Splits a request target (`/path?query`) at the first `?`.
pub fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// nginx's `$uri` for a request path (no query): decoded, slashes merged, dot
/// segments resolved. Borrows when the path is already normal (the common case).
pub fn normalize_path(path: &[u8]) -> Result<Cow<'_, [u8]>, UriError> {
    if path.first() != Some(&b'/') {
        return Err(UriError::NotAbsolute);
    }
    if is_plain(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path)?;
    Ok(Cow::Owned(resolve(&decoded)?))
}

/// True when the path needs no work: no `%`, no `//`, no `.` or `..` segment.
fn is_plain(path: &[u8]) -> bool {
    let mut prev = 0u8;
    for (i, &b) in path.iter().enumerate() {
        match b {
            b'%' | 0 => return false,
            b'/' if prev == b'/' => return false,
            b'.' if prev == b'/' => {
                let rest = path.get(i + 1..).unwrap_or_default();
                match rest {
                    [] | [b'/', ..] | [b'.'] | [b'.', b'/', ..] => return false,
                    _ => {}
                }
            }
            _ => {}
        }
        prev = b;
    }
    true
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(path: &[u8]) -> Result<Vec<u8>, UriError> {
    let mut out = Vec::with_capacity(path.len());
    let mut iter = path.iter();
    while let Some(&b) = iter.next() {
        let byte = if b == b'%' {
            let hi = iter.next().copied().and_then(hex);
            let lo = iter.next().copied().and_then(hex);
            match (hi, lo) {
                (Some(hi), Some(lo)) => (hi << 4) | lo,
                _ => return Err(UriError::BadEscape),
            }
        } else {
            b
        };
        if byte == 0 {
            return Err(UriError::Nul);
        }
        out.push(byte);
    }
    Ok(out)
}

/// Merges slashes and resolves `.`/`..` over a decoded path starting with `/`.
fn resolve(path: &[u8]) -> Result<Vec<u8>, UriError> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    // True when the path so far ends at a directory (`/`, `/.`, `/..`, `//`).
    let mut dir_end = false;
    for seg in path.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => dir_end = true,
            b".." => {
                // Drop the last segment of `out`.
                let cut = out
                    .iter()
                    .rposition(|&b| b == b'/')
                    .ok_or(UriError::AboveRoot)?;
                out.truncate(cut);
                dir_end = true;
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(seg);
                dir_end = false;
            }
        }
    }
    if out.is_empty() || dir_end {
        out.push(b'/');
    }
    Ok(out)
}

/// The request target sent to the backend.
///
/// - `proxy_uri` `None` (`proxy_pass http://app;`): `target` (the original request
///   target, path and query as received) unchanged.
/// - `Some(uri)`: `uri` + the rest of the normalized `path` after the location's
///   prefix (escaped as nginx's `NGX_ESCAPE_URI` when the original path had a
///   `%`-escape), then `?query` when the query is not empty. For a regex location
///   (a config error with a URI part) nothing of the path is replaced: `uri` + path.
pub fn upstream_uri<'t>(
    target: &'t str,
    path: &[u8],
    location: &LocationMatch,
    proxy_uri: Option<&str>,
) -> Cow<'t, str> {
    let Some(base) = proxy_uri else {
        return Cow::Borrowed(target);
    };
    let (raw_path, query) = split_query(target);
    let prefix_len = match location {
        LocationMatch::Exact(uri) => uri.len(),
        LocationMatch::Prefix { uri, .. } => uri.len(),
        LocationMatch::Regex { .. } => 0,
    };
    let rest = path.get(prefix_len..).unwrap_or_default();
    let quoted = raw_path.contains('%');
    let mut out = String::with_capacity(base.len() + rest.len() + target.len() - raw_path.len());
    out.push_str(base);
    escape_into(rest, quoted, &mut out);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(query);
    }
    Cow::Owned(out)
}

/// Appends `bytes` to `out`; bytes nginx's `NGX_ESCAPE_URI` escapes (space, `#`,
/// `%`, `?`, controls, DEL, non-ASCII) become `%XX` when `escape_all`; otherwise
/// only the bytes a request line cannot carry (controls, space, non-ASCII).
fn escape_into(bytes: &[u8], escape_all: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        let must = b <= 0x20 || b >= 0x7f;
        let nginx = matches!(b, b'#' | b'%' | b'?');
        if must || (escape_all && nginx) {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(b));
        }
    }
}
