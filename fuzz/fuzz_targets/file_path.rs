//! Fuzz the URI -> file path mapping of `root` and `alias`
//! (`sticky_proxy::files::path`). The first byte picks a trusted directory
//! and how many URI bytes an alias location's prefix takes; the rest is the
//! URI, mapped both raw and after the proxy's own normalization
//! (`proxy::uri::normalize_path`, as a request's `$uri`). Properties: never
//! panics; every path returned begins with the trusted directory and has no
//! component after it but plain names (no `..`, no `.`, no second root), no
//! NUL, no backslash, and is valid UTF-8 past the directory.
#![no_main]
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use sticky_proxy::files::path::{alias, root, under};
use sticky_proxy::proxy::uri::normalize_path;

const DIRS: [&[u8]; 6] = [
    b"/srv/www",
    b"/srv/www/",
    b"html",
    b"../html",
    b"/data/pics",
    b"/data/.",
];

fn check(dir: &[u8], path: &Path) {
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.starts_with(dir), "{path:?} not under {dir:?}");
    let rest = bytes.get(dir.len()..).unwrap_or_default();
    assert!(!rest.contains(&0) && !rest.contains(&b'\\'));
    assert!(std::str::from_utf8(rest).is_ok());
    // Past the directory, only names: nothing climbs out or restarts at /.
    let mut first = true;
    for c in Path::new(OsStr::from_bytes(rest)).components() {
        match c {
            Component::Normal(_) => {}
            Component::RootDir if first => {}
            other => panic!("{other:?} in {path:?}"),
        }
        first = false;
    }
}

/// The part of `trusted` that `under` promises to stay in: up to its last `/`.
fn dir_of(trusted: &[u8]) -> &[u8] {
    let n = trusted.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    trusted.get(..n).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, uri)) = data.split_first() else {
        return;
    };
    let dir = DIRS[usize::from(sel) % DIRS.len()];
    let prefix = usize::from(sel >> 3);
    let normalized = normalize_path(uri).ok();
    let inputs = [Some(uri), normalized.as_deref()];
    for uri in inputs.into_iter().flatten() {
        if let Ok(p) = root(dir, uri) {
            check(dir, &p);
        }
        if let Ok(p) = alias(dir, uri, prefix) {
            check(dir, &p);
        }
        // A template's literal part followed by variable values / captures.
        if let Ok(p) = under(dir, uri) {
            check(dir_of(dir), &p);
        }
    }
});
