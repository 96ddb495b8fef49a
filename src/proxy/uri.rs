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
    // A byte scan: `split_once('?')` costs a generic char searcher's setup
    // on every request for a target of a few bytes.
    match target.bytes().position(|b| b == b'?') {
        Some(i) => (target.get(..i).unwrap_or(target), target.get(i + 1..)),
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
    let set = if quoted {
        Escape::Uri
    } else {
        Escape::RequestLine
    };
    escape_into(rest, set, &mut out);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(query);
    }
    Cow::Owned(out)
}

/// The target of a request whose URI is now `path` (decoded) and `query`
/// (after an internal redirect): the path escaped as nginx's `NGX_ESCAPE_URI`,
/// then `?query` when the query is not empty.
pub fn escaped_target(path: &[u8], query: Option<&str>) -> String {
    let mut out = String::with_capacity(path.len() + 1 + query.map_or(0, str::len));
    escape_into(path, Escape::Uri, &mut out);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The `Location` of nginx's automatic trailing-slash redirect (301): the normalized
/// `path` with `/` appended, escaped, and `?query` when the query is not empty.
pub fn add_slash_target(path: &[u8], query: Option<&str>) -> String {
    let mut out = String::with_capacity(path.len() + 2 + query.map_or(0, str::len));
    escape_into(path, Escape::Uri, &mut out);
    out.push('/');
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Which bytes [`escape_into`] writes as `%XX`: nginx 1.22's tables,
/// checked against nginx itself byte by byte (a directory redirect for a
/// directory named with each byte, and an autoindex link to a file named
/// with each byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Only what a request line cannot carry: controls, space, DEL, non-ASCII.
    RequestLine,
    /// `NGX_ESCAPE_URI` (paths nginx writes: a `Location`, an upstream
    /// request's URI): the above and `"`, `#`, `%`, `<`, `>`, `?`, `\`,
    /// `^`, `` ` ``, `{`, `|`, `}`.
    Uri,
    /// `NGX_ESCAPE_URI_COMPONENT` (an autoindex link): all but letters,
    /// digits, `-`, `.`, `_` and `~`.
    UriComponent,
}

impl Escape {
    fn escapes(self, b: u8) -> bool {
        let line = b <= 0x20 || b >= 0x7f;
        match self {
            Escape::RequestLine => line,
            Escape::Uri => {
                line || matches!(
                    b,
                    b'"' | b'#'
                        | b'%'
                        | b'<'
                        | b'>'
                        | b'?'
                        | b'\\'
                        | b'^'
                        | b'`'
                        | b'{'
                        | b'|'
                        | b'}'
                )
            }
            Escape::UriComponent => {
                !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
            }
        }
    }
}

/// Appends `bytes` to `out`, the bytes `set` escapes as `%XX`.
pub(crate) fn escape_into(bytes: &[u8], set: Escape, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if set.escapes(b) {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(b));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escape_sets_are_nginx_s_byte_by_byte() {
        // The printable ASCII bytes nginx 1.22 leaves as they are (found by
        // asking nginx: a directory redirect per byte, an autoindex link per
        // byte); every control byte, space, DEL and non-ASCII byte is escaped
        // by all three sets but RequestLine's printable ones.
        let kept = |set: Escape| -> String {
            (0x21u8..0x7f)
                .filter(|&b| !set.escapes(b))
                .map(char::from)
                .collect()
        };
        assert_eq!(
            kept(Escape::Uri),
            "!$&'()*+,-./0123456789:;=@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~"
        );
        assert_eq!(
            kept(Escape::UriComponent),
            "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
        );
        assert_eq!(kept(Escape::RequestLine).len(), 0x7f - 0x21);
        for set in [Escape::RequestLine, Escape::Uri, Escape::UriComponent] {
            for b in (0..=0x20).chain(0x7f..=0xff) {
                assert!(set.escapes(b), "{set:?} {b:#x}");
            }
        }
        let mut out = String::new();
        escape_into(b"q\"on<x>.txt", Escape::UriComponent, &mut out);
        assert_eq!(out, "q%22on%3Cx%3E.txt");
        out.clear();
        escape_into(b"/dir&<>\xc3", Escape::Uri, &mut out);
        assert_eq!(out, "/dir&%3C%3E%C3");
    }

    #[test]
    fn normalization_table() {
        let cases: &[(&str, Result<&str, UriError>)] = &[
            ("/", Ok("/")),
            ("/a/b", Ok("/a/b")),
            ("/a/b/", Ok("/a/b/")),
            ("//a///b", Ok("/a/b")),
            ("/a/./b", Ok("/a/b")),
            ("/a/.", Ok("/a/")),
            ("/a/b/..", Ok("/a/")),
            ("/a/b/../c", Ok("/a/c")),
            ("/a/../../", Err(UriError::AboveRoot)),
            ("/..", Err(UriError::AboveRoot)),
            ("/../a", Err(UriError::AboveRoot)),
            ("/a/..", Ok("/")),
            ("/.hidden/..x/...", Ok("/.hidden/..x/...")),
            ("/a%20b", Ok("/a b")),
            ("/%41%62", Ok("/Ab")),
            ("/a%2Fb", Ok("/a/b")),
            ("/a/%2e%2e/b", Ok("/b")),
            ("/%2e%2e", Err(UriError::AboveRoot)),
            ("/a%2F%2Fb", Ok("/a/b")),
            ("/%25", Ok("/%")),
            ("/%25%34%31", Ok("/%41")),
            ("/a%", Err(UriError::BadEscape)),
            ("/a%4", Err(UriError::BadEscape)),
            ("/a%zz", Err(UriError::BadEscape)),
            ("/a%00b", Err(UriError::Nul)),
            ("a/b", Err(UriError::NotAbsolute)),
            ("", Err(UriError::NotAbsolute)),
            ("*", Err(UriError::NotAbsolute)),
        ];
        for (raw, want) in cases {
            let got = normalize_path(raw.as_bytes());
            let got = got.as_deref().map(|b| std::str::from_utf8(b).unwrap());
            assert_eq!(got.map_err(|e| *e), *want, "{raw}");
        }
    }

    #[test]
    fn plain_paths_are_borrowed() {
        for raw in ["/", "/a/b.c", "/a.b/", "/x..y", "/.well-known/x"] {
            assert!(
                matches!(normalize_path(raw.as_bytes()), Ok(Cow::Borrowed(_))),
                "{raw}"
            );
        }
    }

    #[test]
    fn decoded_bytes_that_are_not_utf8_survive() {
        assert_eq!(normalize_path(b"/%FF").unwrap().as_ref(), b"/\xff");
    }

    fn prefix(uri: &str) -> LocationMatch {
        LocationMatch::Prefix {
            uri: uri.to_string(),
            stop_regex: false,
        }
    }

    fn map(target: &str, location: &LocationMatch, proxy_uri: Option<&str>) -> String {
        let (path, _) = split_query(target);
        let norm = normalize_path(path.as_bytes()).unwrap();
        upstream_uri(target, &norm, location, proxy_uri).into_owned()
    }

    #[test]
    fn proxy_pass_uri_rules_match_nginx() {
        let regex = LocationMatch::Regex {
            re: regex::Regex::new("^/r").unwrap(),
            case_insensitive: false,
            source: "^/r".to_string(),
        };
        let cases: &[(&str, LocationMatch, Option<&str>, &str)] = &[
            // No URI part: the original target untouched, even unnormalized.
            ("/test_x/y?z=1", prefix("/test_x"), None, "/test_x/y?z=1"),
            ("//a/../b%20c?q", prefix("/"), None, "//a/../b%20c?q"),
            // URI part: the matched prefix replaced.
            ("/test_x", prefix("/test_x"), Some("/"), "/"),
            ("/test_x/y?z=1", prefix("/test_x"), Some("/"), "//y?z=1"),
            ("/test_x/y", prefix("/test_x/"), Some("/"), "/y"),
            (
                "/api/v1/users?id=3",
                prefix("/api/"),
                Some("/base/"),
                "/base/v1/users?id=3",
            ),
            ("/api/", prefix("/api/"), Some("/base/"), "/base/"),
            // An empty query is dropped, as nginx does.
            ("/api/x?", prefix("/api/"), Some("/b/"), "/b/x"),
            // The normalized path is used.
            ("/api//x/./y", prefix("/api/"), Some("/b/"), "/b/x/y"),
            // Escaped input is re-escaped (space, %, #, ?), other bytes decoded.
            (
                "/api/a%20b%41%25%23%3F",
                prefix("/api/"),
                Some("/b/"),
                "/b/a%20bA%25%23%3F",
            ),
            ("/api/%C3%A9", prefix("/api/"), Some("/"), "/%C3%A9"),
            // nginx 1.22's table: `"<>\^`{|}` re-escaped too, `&=@` not.
            (
                "/api/%3C%22%7B%7C%7D%5E%60%5C%26%3D%40",
                prefix("/api/"),
                Some("/b/"),
                "/b/%3C%22%7B%7C%7D%5E%60%5C&=@",
            ),
            // Exact locations too.
            (
                "/exact?x=1",
                LocationMatch::Exact("/exact".into()),
                Some("/other"),
                "/other?x=1",
            ),
            // A regex location replaces nothing.
            ("/rx", regex, Some("/b"), "/b/rx"),
        ];
        for (target, location, proxy_uri, want) in cases {
            assert_eq!(map(target, location, *proxy_uri), *want, "{target}");
        }
    }

    #[test]
    fn add_slash_redirect_targets() {
        let cases: &[(&[u8], Option<&str>, &str)] = &[
            (b"/static", None, "/static/"),
            (b"/static", Some(""), "/static/"),
            (b"/static", Some("a=1"), "/static/?a=1"),
            (b"/a b%", None, "/a%20b%25/"),
        ];
        for (path, query, want) in cases {
            assert_eq!(add_slash_target(path, *query), *want, "{path:?}");
        }
    }

    #[test]
    fn split_query_table() {
        let cases = [
            ("/a", ("/a", None)),
            ("/a?", ("/a", Some(""))),
            ("/a?b=1?c", ("/a", Some("b=1?c"))),
        ];
        for (target, want) in cases {
            assert_eq!(split_query(target), want, "{target}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod robustness {
    use super::*;

    /// xorshift64*: deterministic bytes for the property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn pick<'a>(&mut self, from: &'a [&'a str]) -> &'a str {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    const PIECES: &[&str] = &[
        "/", "//", ".", "..", "/.", "/..", "a", "b.c", "%2e", "%2E%2e", "%2F", "%25", "%20", "%00",
        "%", "%4", "%zz", "%C3%A9", "%FF", "?", "#", "x=1", "&", "+", "~",
    ];

    #[test]
    fn normalized_paths_never_keep_dot_segments_or_double_slashes() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let n = (rng.next() % 8) as usize;
            let mut raw = String::from("/");
            for _ in 0..n {
                raw.push_str(rng.pick(PIECES));
            }
            let (path, _) = split_query(&raw);
            let Ok(norm) = normalize_path(path.as_bytes()) else {
                continue;
            };
            assert_eq!(norm.first(), Some(&b'/'), "{raw}");
            for seg in norm.split(|&b| b == b'/').skip(1) {
                assert!(seg != b"." && seg != b"..", "{raw} -> {norm:?}");
            }
            assert!(!norm.windows(2).any(|w| w == b"//"), "{raw} -> {norm:?}");
            assert!(!norm.contains(&0), "{raw}");
        }
    }

    #[test]
    fn mapped_targets_always_parse_as_request_targets() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let location = LocationMatch::Prefix {
            uri: "/".to_string(),
            stop_regex: false,
        };
        let mut checked = 0;
        for _ in 0..20_000 {
            let n = (rng.next() % 8) as usize;
            let mut raw = String::from("/");
            for _ in 0..n {
                raw.push_str(rng.pick(PIECES));
            }
            // Only targets a client could send (the HTTP parser rejects the rest).
            if raw.contains('#') || raw.parse::<http::uri::PathAndQuery>().is_err() {
                continue;
            }
            let (path, _) = split_query(&raw);
            let Ok(norm) = normalize_path(path.as_bytes()) else {
                continue;
            };
            let mapped = upstream_uri(&raw, &norm, &location, Some("/base/"));
            let parsed = mapped.parse::<http::uri::PathAndQuery>();
            assert!(parsed.is_ok(), "{raw} -> {mapped}");
            checked += 1;
        }
        assert!(checked > 1000, "only {checked} targets checked");
    }

    #[test]
    fn arbitrary_bytes_give_valid_results_or_errors() {
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let len = (rng.next() % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    // Bias towards the interesting bytes.
                    b"/.%2eE0aF\0:[]\\"
                        .get((r % 20) as usize)
                        .copied()
                        .unwrap_or((r >> 8) as u8)
                })
                .collect();
            if let Ok(path) = normalize_path(&bytes) {
                assert_eq!(path.first(), Some(&b'/'), "{bytes:?}");
            }
            if let Ok(host) = crate::proxy::route::normalize_host(&bytes) {
                assert!(!host.is_empty(), "{bytes:?}");
                assert!(!host.bytes().any(|b| b.is_ascii_uppercase()), "{bytes:?}");
                assert!(!host.contains("..") && !host.contains('/'), "{bytes:?}");
                assert!(!host.contains('\0') && !host.ends_with('.'), "{bytes:?}");
            }
        }
    }
}
