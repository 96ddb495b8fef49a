//! Where a request's file is on disk, with no I/O: `root` and `alias` joined
//! with the request's `$uri`, refusing every path that could leave the
//! directory they name.
//!
//! The rule is one function, [`under`]: a *trusted* part (the text of the
//! directive up to its first variable, written by the administrator) joined
//! with an *untrusted* part (variable values, regex captures, the URI). Every
//! path segment that holds an untrusted byte must be a plain name: never `.`
//! or `..`, never empty but as the last one (a trailing `/`), never holding a
//! NUL or a backslash, and the untrusted part must be valid UTF-8 (which
//! refuses overlong encodings such as `%c0%ae`). The URI reaching here is
//! already decoded and normalized (`crate::proxy::uri::normalize_path`:
//! `%2e%2e` and `%2f` decoded, `..` resolved, NUL refused), but this module
//! does not rely on it: it checks again, so that the one property holds for
//! any bytes at all (see the `file_path` fuzz target).
//!
//! Symbolic links are the one escape a lexical check cannot see; with
//! `disable_symlinks on` they are refused while the file is opened
//! (`crate::files::open`), component by component.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Why a request path maps to no file (nginx answers 400 for a path it
/// cannot normalize; so do we).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// A `.` or `..` segment, or an empty one inside the path.
    DotSegment,
    /// A NUL byte.
    Nul,
    /// A backslash (a separator on other systems, refused everywhere).
    Backslash,
    /// Not UTF-8 (overlong or truncated sequences, stray bytes).
    NotUtf8,
    /// Bytes that would lengthen the directory's own name (`alias /data/pics`
    /// and the URI `/img..` would name `/data/pics..`, a sibling).
    Sibling,
}

/// `trusted` followed by `untrusted`, as a path, when no segment touched by
/// `untrusted` can step out of the directory `trusted` names (see the
/// module's rule). `trusted` is never checked: it is the configuration's own
/// text.
pub fn under(trusted: &[u8], untrusted: &[u8]) -> Result<PathBuf, PathError> {
    // ASCII, the common case, is checked a word at a time.
    if !untrusted.is_ascii() && std::str::from_utf8(untrusted).is_err() {
        return Err(PathError::NotUtf8);
    }
    let mut full = Vec::with_capacity(trusted.len() + untrusted.len());
    full.extend_from_slice(trusted);
    full.extend_from_slice(untrusted);
    // The first segment that holds an untrusted byte starts after the last
    // `/` of the trusted part.
    let first = memchr::memrchr(b'/', trusted).map_or(0, |i| i + 1);
    check_segments(full.get(first..).unwrap_or_default())?;
    Ok(PathBuf::from(OsString::from_vec(full)))
}

/// The rule on every segment of `checked` (split at `/`), the first
/// failing segment deciding: no NUL, no backslash, not `.` or `..`, not
/// empty but as the first or the last one.
fn check_segments(checked: &[u8]) -> Result<(), PathError> {
    // Plain loops over bytes: a request path is a few dozen bytes, where a
    // vectorised search costs more to set up than it saves.
    let mut segments = checked.split(|&b| b == b'/').enumerate().peekable();
    while let Some((index, segment)) = segments.next() {
        let last = segments.peek().is_none();
        if segment.iter().any(|&b| b == 0 || b == b'\\') {
            return Err(if segment.contains(&0) {
                PathError::Nul
            } else {
                PathError::Backslash
            });
        }
        // An empty segment is the one after a trailing `/` (a directory), or
        // the start when the trusted part ends in `/` and the untrusted one
        // starts with it (`root /srv/` + `/a`), which the filesystem merges.
        let empty_inside = segment.is_empty() && index != 0 && !last;
        if segment == b"." || segment == b".." || empty_inside {
            return Err(PathError::DotSegment);
        }
    }
    Ok(())
}

/// [`under`], with `dir` a whole directory: the result is inside `dir`
/// itself, not only inside its parent.
pub fn in_dir(dir: &[u8], rest: &[u8]) -> Result<PathBuf, PathError> {
    if !(rest.is_empty() || rest.first() == Some(&b'/') || dir.last() == Some(&b'/')) {
        return Err(PathError::Sibling);
    }
    under(dir, rest)
}

/// nginx's `root`: the directory, then the whole `$uri`.
pub fn root(dir: &[u8], uri: &[u8]) -> Result<PathBuf, PathError> {
    in_dir(dir, uri)
}

/// nginx's `alias` in a prefix or exact location: the `$uri` with the
/// location's prefix (`prefix_len` bytes) replaced by the directory. A URI
/// shorter than the prefix (never, after a match) maps to the directory.
pub fn alias(dir: &[u8], uri: &[u8], prefix_len: usize) -> Result<PathBuf, PathError> {
    in_dir(dir, uri.get(prefix_len..).unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Component, Path};

    /// The property the fuzz target checks: the result begins with the
    /// trusted directory and never climbs out of it.
    fn stays_under(trusted: &[u8], path: &Path) -> bool {
        let bytes = path.as_os_str().as_bytes();
        let dir_len = trusted
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |i| i + 1);
        let dir = trusted.get(..dir_len).unwrap();
        let rest = Path::new(OsStr::from_bytes(bytes.get(dir_len..).unwrap()));
        bytes.starts_with(dir)
            && !bytes.contains(&0)
            && rest
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::RootDir))
    }

    #[test]
    fn hostile_paths_never_leave_the_root() {
        use PathError::*;
        // (uri as it may reach the mapping, expected result)
        let cases: &[(&[u8], Result<&str, PathError>)] = &[
            (b"/index.html", Ok("/srv/www/index.html")),
            (b"/", Ok("/srv/www/")),
            (b"/a/b/", Ok("/srv/www/a/b/")),
            (b"/..", Err(DotSegment)),
            (b"/../etc/passwd", Err(DotSegment)),
            (b"/a/../../etc/passwd", Err(DotSegment)),
            (b"/a/..", Err(DotSegment)),
            (b"/./a", Err(DotSegment)),
            (b"/a/.", Err(DotSegment)),
            (b"/a//b", Err(DotSegment)),
            (b"//etc/passwd", Err(DotSegment)),
            (b"/...", Ok("/srv/www/...")),
            (b"/..a", Ok("/srv/www/..a")),
            (b"/a..", Ok("/srv/www/a..")),
            (b"/.hidden", Ok("/srv/www/.hidden")),
            // Percent escapes arrive decoded; undecoded they are names.
            (b"/%2e%2e/etc/passwd", Ok("/srv/www/%2e%2e/etc/passwd")),
            (b"/%2e%2e%2fetc", Ok("/srv/www/%2e%2e%2fetc")),
            (b"/a\0b", Err(Nul)),
            (b"/a.html\0.png", Err(Nul)),
            (b"/\0", Err(Nul)),
            (b"/..\\etc\\passwd", Err(Backslash)),
            (b"/a\\b", Err(Backslash)),
            (b"/\\", Err(Backslash)),
            // Overlong `.` and `/` (`%c0%ae`, `%c0%af`, `%e0%80%ae`) and other
            // invalid UTF-8.
            (b"/\xc0\xae\xc0\xae/etc", Err(NotUtf8)),
            (b"/\xc0\xaf", Err(NotUtf8)),
            (b"/\xe0\x80\xae\xe0\x80\xae", Err(NotUtf8)),
            (b"/\xf0\x80\x80\xaf", Err(NotUtf8)),
            (b"/\xff", Err(NotUtf8)),
            (b"/\xed\xa0\x80", Err(NotUtf8)),
            (b"/caf\xc3\xa9", Ok("/srv/www/caf\u{e9}")),
            (b"/a/b/c/../../..", Err(DotSegment)),
            (b"..", Err(Sibling)),
            (b"x", Err(Sibling)),
            (b"", Ok("/srv/www")),
            (b"/ ..", Ok("/srv/www/ ..")),
            (b"/.. /x", Ok("/srv/www/.. /x")),
        ];
        assert!(cases.len() >= 30);
        for (uri, want) in cases {
            let got = root(b"/srv/www", uri);
            let shown = String::from_utf8_lossy(uri);
            match (got, want) {
                (Ok(p), Ok(w)) => {
                    assert_eq!(p, Path::new(w), "{shown}");
                    assert!(stays_under(b"/srv/www", &p), "{shown}");
                }
                (Err(e), Err(w)) => assert_eq!(e, *w, "{shown}"),
                (got, want) => panic!("{shown}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_junction_of_trusted_and_untrusted_is_checked() {
        // A trusted part ending inside a segment: the untrusted bytes may not
        // complete a dot segment with it.
        assert_eq!(under(b"/data/.", b"./x"), Err(PathError::DotSegment));
        assert_eq!(under(b"/data/.", b"/x"), Err(PathError::DotSegment));
        assert_eq!(under(b"/data/x", b"/../y"), Err(PathError::DotSegment));
        assert_eq!(under(b"/data/x", b"y"), Ok(PathBuf::from("/data/xy")));
        // The administrator's own `..` is theirs (`root ../html`).
        assert_eq!(
            under(b"../html", b"/a.txt"),
            Ok(PathBuf::from("../html/a.txt"))
        );
        assert_eq!(under(b"..", b"/a"), Err(PathError::DotSegment));
        // `root /srv/;` and the URI's leading slash.
        assert_eq!(under(b"/srv/", b"/a"), Ok(PathBuf::from("/srv//a")));
    }

    #[test]
    fn alias_replaces_the_location_prefix() {
        type Case<'a> = (&'a [u8], &'a [u8], usize, Result<&'a str, PathError>);
        let cases: &[Case<'_>] = &[
            (b"/data/pics/", b"/img/a.png", 5, Ok("/data/pics/a.png")),
            (b"/data/pics/", b"/img/", 5, Ok("/data/pics/")),
            (b"/data/pics", b"/img/a.png", 4, Ok("/data/pics/a.png")),
            (b"/data/file.txt", b"/f", 2, Ok("/data/file.txt")),
            (b"/data/pics/", b"/img/../x", 5, Err(PathError::DotSegment)),
            (b"/data/pics", b"/img..", 4, Err(PathError::Sibling)),
            (b"/data/pics", b"/imgx/a", 4, Err(PathError::Sibling)),
            (
                b"/data/pics/",
                b"/img../secret",
                4,
                Err(PathError::DotSegment),
            ),
            (b"/data/pics", b"/img", 10, Ok("/data/pics")),
        ];
        for (dir, uri, prefix, want) in cases {
            let got = alias(dir, uri, *prefix);
            assert_eq!(
                got,
                want.map(PathBuf::from),
                "{}",
                String::from_utf8_lossy(uri)
            );
        }
    }
}
