//! `nocache` (ours, HAProxy's meaning): a response that carries a freshly set
//! sticky cookie must not be stored by a shared cache and replayed to other
//! users. When the sticky `Set-Cookie` is set, `Cache-Control: private` is
//! added unless the response already forbids shared caching (`private` or
//! `no-store`).

use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue};

/// True when a `Cache-Control` directive of the response already keeps it out
/// of shared caches. Directive names are case-insensitive; `private="x"` (a
/// field list) counts too.
pub fn forbids_shared_caching(headers: &HeaderMap) -> bool {
    headers.get_all(CACHE_CONTROL).iter().any(|v| {
        v.as_bytes().split(|b| *b == b',').any(|directive| {
            let name = directive
                .split(|b| *b == b'=')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            name.eq_ignore_ascii_case(b"private") || name.eq_ignore_ascii_case(b"no-store")
        })
    })
}

/// Adds `Cache-Control: private` unless shared caching is already forbidden.
pub fn mark_private(headers: &mut HeaderMap) {
    if !forbids_shared_caching(headers) {
        headers.append(CACHE_CONTROL, HeaderValue::from_static("private"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_is_added_only_where_shared_caching_is_allowed() {
        // (Cache-Control lines of the response, those after mark_private)
        let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
            (vec![], vec!["private"]),
            (
                vec!["public, max-age=3600"],
                vec!["public, max-age=3600", "private"],
            ),
            (
                vec!["max-age=60", "s-maxage=600"],
                vec!["max-age=60", "s-maxage=600", "private"],
            ),
            (vec!["no-cache"], vec!["no-cache", "private"]),
            (vec!["private"], vec!["private"]),
            (vec!["max-age=0, Private"], vec!["max-age=0, Private"]),
            (
                vec!["private=\"set-cookie\""],
                vec!["private=\"set-cookie\""],
            ),
            (vec!["public", "no-store"], vec!["public", "no-store"]),
            (vec!["NO-STORE"], vec!["NO-STORE"]),
            (vec!["x-private=1"], vec!["x-private=1", "private"]),
        ];
        for (before, after) in cases {
            let mut h = HeaderMap::new();
            for v in &before {
                h.append(CACHE_CONTROL, HeaderValue::from_str(v).expect("valid"));
            }
            mark_private(&mut h);
            let got: Vec<&str> = h
                .get_all(CACHE_CONTROL)
                .iter()
                .map(|v| v.to_str().expect("ascii"))
                .collect();
            assert_eq!(got, after, "{before:?}");
        }
    }
}
