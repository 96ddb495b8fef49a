//! `limit_except METHOD ... { ... }` (nginx's core module): the methods named
//! (GET brings HEAD) are served as the location says; every other method, an
//! unknown one too, is served with the block's settings: its `allow`/`deny`,
//! `auth_basic`, `proxy_pass` and `access_log`, the rest inherited from the
//! location. As in nginx, the location's rewrite statements (`return`,
//! `rewrite`, `set`, `if`) and its `try_files` are not part of the block's
//! settings. Pure: the method set and the choice of settings.

use std::sync::Arc;

use http::Method;

use crate::config::LocationConf;

/// The methods `limit_except` accepts (nginx 1.22's list); a method's bit is
/// its index.
const NAMES: [&str; 14] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "MKCOL",
    "COPY",
    "MOVE",
    "OPTIONS",
    "PROPFIND",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "PATCH",
];

/// The methods a `limit_except` lets through as the location is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Methods(u16);

impl Methods {
    /// Adds a method written in `limit_except` (any case, as nginx reads it);
    /// GET brings HEAD. `None` for a name nginx refuses (`invalid method`).
    pub fn add(&mut self, name: &str) -> Option<()> {
        let i = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))?;
        self.0 |= 1 << i;
        if i == 0 {
            self.0 |= 1 << 1;
        }
        Some(())
    }

    /// Whether a request with `method` is let through as the location is.
    /// Request methods are case-sensitive: `get` is an unknown method.
    pub fn contains(&self, method: &Method) -> bool {
        NAMES
            .iter()
            .position(|n| *n == method.as_str())
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// A location's `limit_except`: the methods let through, and the location's
/// settings for every other method.
#[derive(Debug)]
pub struct LimitExcept {
    pub methods: Methods,
    pub conf: Arc<LocationConf>,
}

/// The settings a request with `method` is served with at a location whose
/// settings are `conf`.
#[inline]
pub fn conf_for<'c>(conf: &'c LocationConf, method: &Method) -> &'c LocationConf {
    match &conf.limit_except {
        Some(l) if !l.methods.contains(method) => &l.conf,
        _ => conf,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn methods(names: &[&str]) -> Methods {
        let mut m = Methods::default();
        for n in names {
            m.add(n).unwrap();
        }
        m
    }

    #[test]
    fn listed_methods_pass_and_get_brings_head() {
        // (written, request method, let through as the location is)
        let cases: &[(&[&str], &str, bool)] = &[
            (&["GET"], "GET", true),
            (&["GET"], "HEAD", true),
            (&["GET"], "POST", false),
            (&["get"], "GET", true),
            (&["GET"], "get", false),
            (&["HEAD"], "GET", false),
            (&["HEAD"], "HEAD", true),
            (&["OPTIONS"], "OPTIONS", true),
            (&["OPTIONS"], "GET", false),
            (&["GET", "POST"], "POST", true),
            (&["GET", "POST"], "PUT", false),
            (&["PATCH"], "PATCH", true),
            (&["GET"], "FOO", false),
            (&["GET"], "TRACE", false),
        ];
        for (written, method, want) in cases {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(methods(written).contains(&m), *want, "{written:?} {method}");
        }
    }

    #[test]
    fn nginx_refuses_other_names() {
        for bad in ["TRACE", "CONNECT", "FOO", ""] {
            assert_eq!(Methods::default().add(bad), None, "{bad}");
        }
        for good in NAMES {
            assert_eq!(Methods::default().add(good), Some(()), "{good}");
        }
    }
}
