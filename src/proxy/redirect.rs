//! `proxy_redirect`, `proxy_cookie_domain` and `proxy_cookie_path`: rewriting
//! the `Location`/`Refresh` headers and the `Domain`/`Path` attributes of the
//! backend's `Set-Cookie` headers, as nginx does. The rules are typed at load
//! time ([`ProxyDetails`]); their variables are evaluated once per request
//! that has rules ([`Ready`]); the rewriting itself is pure ([`rewrite`],
//! [`rewrite_set_cookie`]).
//!
//! A plain pattern matches a prefix (case-sensitive; for a cookie domain, the
//! whole domain case-insensitively, a leading `.` ignored) and the prefix is
//! replaced; a regex (`~`, `~*`) replaces the whole value, `$1`.. naming its
//! captures. The first rule that matches wins. The sticky cookie the proxy
//! inserts is added after these edits and is never rewritten.

use http::header::{self, HeaderMap, HeaderValue};
use regex::Regex;

use crate::config::Template;
use crate::proxy::cookie_flags::{apply_flags, Flag, ReadyFlags, ReadyName};

/// Marks a regex capture reference (`$1` -> `\u{1}1`) inside a replacement
/// template, so the template parser leaves it as literal text.
pub const CAPTURE: char = '\u{1}';

/// What a rule matches.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// A prefix (may hold variables).
    Prefix(Template),
    Regex(Regex),
}

/// One `pattern replacement` pair.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: Pattern,
    /// May hold variables and (after a regex) `CAPTURE` references.
    pub replacement: Template,
}

/// One `proxy_redirect` entry.
#[derive(Debug, Clone)]
pub enum RedirectRule {
    /// `proxy_redirect default`: the `proxy_pass` URL becomes the location's
    /// prefix.
    Default,
    Rule(Rule),
}

/// The response-header rewriting of one location (empty lists: nothing).
#[derive(Debug, Clone, Default)]
pub struct ProxyDetails {
    pub redirects: Vec<RedirectRule>,
    pub cookie_domains: Vec<Rule>,
    pub cookie_paths: Vec<Rule>,
    /// `proxy_cookie_flags`.
    pub cookie_flags: Vec<CookieFlags>,
}

/// One `proxy_cookie_flags COOKIE FLAG...`.
#[derive(Debug, Clone)]
pub struct CookieFlags {
    /// A name (variables allowed; matched exactly) or a regex.
    pub name: Pattern,
    pub flags: Vec<Flag>,
}

impl ProxyDetails {
    /// True when some rule reads request variables: its values are then
    /// evaluated while the request is planned ([`Ready::new`]), else only when
    /// a response has something to rewrite ([`literal`]).
    pub fn reads_variables(&self) -> bool {
        let rule = |r: &Rule| {
            !r.replacement.is_literal()
                || matches!(&r.pattern, Pattern::Prefix(t) if !t.is_literal())
        };
        self.redirects
            .iter()
            .any(|r| matches!(r, RedirectRule::Rule(r) if rule(r)))
            || self.cookie_domains.iter().any(rule)
            || self.cookie_paths.iter().any(rule)
            || self
                .cookie_flags
                .iter()
                .any(|f| matches!(&f.name, Pattern::Prefix(t) if !t.is_literal()))
    }
}

/// The text of a template without variables.
pub fn literal(t: &Template) -> Vec<u8> {
    let mut out = Vec::new();
    for part in &t.parts {
        if let crate::config::Part::Literal(text) = part {
            out.extend_from_slice(text.as_bytes());
        }
    }
    out
}

/// True when `headers` hold something the rules may rewrite.
pub fn worth_rewriting(details: &ProxyDetails, headers: &HeaderMap) -> bool {
    (!details.redirects.is_empty()
        && (headers.contains_key(header::LOCATION) || headers.contains_key(header::REFRESH)))
        || ((!details.cookie_domains.is_empty()
            || !details.cookie_paths.is_empty()
            || !details.cookie_flags.is_empty())
            && headers.contains_key(header::SET_COOKIE))
}

/// [`default_pair`] for a location that proxies with `pass`.
pub fn default_for(
    pass: &crate::config::ProxyPass,
    location: Option<&crate::config::Location>,
) -> (Vec<u8>, Vec<u8>) {
    let name = location.and_then(|l| match &l.matcher {
        crate::config::LocationMatch::Exact(uri) => Some(uri.as_str()),
        crate::config::LocationMatch::Prefix { uri, .. } => Some(uri.as_str()),
        crate::config::LocationMatch::Regex { .. } => None,
    });
    default_pair(&pass.proxy_host, pass.uri.as_deref(), name)
}

/// What `proxy_redirect default` stands for: the `proxy_pass` URL
/// (`http://HOST[:PORT]/URI`, `/` when it has no URI) and what replaces it
/// (the location's prefix, `/` when `proxy_pass` has no URI).
pub fn default_pair(
    proxy_host: &str,
    uri: Option<&str>,
    location: Option<&str>,
) -> (Vec<u8>, Vec<u8>) {
    let pattern = format!("http://{proxy_host}{}", uri.unwrap_or("/")).into_bytes();
    let replacement = match uri {
        Some(_) => location.unwrap_or("/"),
        None => "/",
    };
    (pattern, replacement.as_bytes().to_vec())
}

/// A rule with its variables evaluated for one request.
#[derive(Debug, Clone)]
pub enum ReadyPattern<'c> {
    Prefix(Vec<u8>),
    Regex(&'c Regex),
}

#[derive(Debug, Clone)]
pub struct ReadyRule<'c> {
    pub pattern: ReadyPattern<'c>,
    pub replacement: Vec<u8>,
}

/// Every rule of a location, ready for one response.
#[derive(Debug, Clone, Default)]
pub struct Ready<'c> {
    pub redirects: Vec<ReadyRule<'c>>,
    pub cookie_domains: Vec<ReadyRule<'c>>,
    pub cookie_paths: Vec<ReadyRule<'c>>,
    pub cookie_flags: Vec<ReadyFlags<'c>>,
}

impl<'c> Ready<'c> {
    /// Evaluates `details` with `eval`; `default` is the pair `proxy_redirect
    /// default` stands for (the `proxy_pass` URL and the location prefix).
    pub fn new(
        details: &'c ProxyDetails,
        eval: impl Fn(&Template) -> Vec<u8>,
        default: impl Fn() -> (Vec<u8>, Vec<u8>),
    ) -> Ready<'c> {
        let ready = |r: &'c Rule| ReadyRule {
            pattern: match &r.pattern {
                Pattern::Prefix(t) => ReadyPattern::Prefix(eval(t)),
                Pattern::Regex(re) => ReadyPattern::Regex(re),
            },
            replacement: eval(&r.replacement),
        };
        Ready {
            redirects: details
                .redirects
                .iter()
                .map(|r| match r {
                    RedirectRule::Default => {
                        let (pattern, replacement) = default();
                        ReadyRule {
                            pattern: ReadyPattern::Prefix(pattern),
                            replacement,
                        }
                    }
                    RedirectRule::Rule(rule) => ready(rule),
                })
                .collect(),
            cookie_domains: details.cookie_domains.iter().map(ready).collect(),
            cookie_paths: details.cookie_paths.iter().map(ready).collect(),
            cookie_flags: details
                .cookie_flags
                .iter()
                .map(|f| ReadyFlags {
                    name: match &f.name {
                        Pattern::Prefix(t) => ReadyName::Exact(eval(t)),
                        Pattern::Regex(re) => ReadyName::Regex(re),
                    },
                    flags: &f.flags,
                })
                .collect(),
        }
    }

    /// Rewrites `Location`, `Refresh` and `Set-Cookie` in `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        if !self.redirects.is_empty() {
            if let Some(v) = headers.get(header::LOCATION) {
                if let Some(new) = rewrite(v.as_bytes(), &self.redirects, false) {
                    set(headers, header::LOCATION, &new);
                }
            }
            if let Some(v) = headers.get(header::REFRESH) {
                if let Some(new) = rewrite_refresh(v.as_bytes(), &self.redirects) {
                    set(headers, header::REFRESH, &new);
                }
            }
        }
        if self.cookie_domains.is_empty()
            && self.cookie_paths.is_empty()
            && self.cookie_flags.is_empty()
        {
            return;
        }
        let cookies: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        if cookies.is_empty() {
            return;
        }
        headers.remove(header::SET_COOKIE);
        for c in cookies {
            let rewritten =
                rewrite_set_cookie(c.as_bytes(), &self.cookie_domains, &self.cookie_paths);
            let current = rewritten.as_deref().unwrap_or(c.as_bytes());
            let flagged = apply_flags(current, &self.cookie_flags).or(rewritten);
            let edited = flagged
                .and_then(|v| HeaderValue::from_bytes(&v).ok())
                .unwrap_or(c);
            headers.append(header::SET_COOKIE, edited);
        }
    }
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &[u8]) {
    if let Ok(v) = HeaderValue::from_bytes(value) {
        headers.insert(name, v);
    }
}

/// Expands `CAPTURE` references in `replacement` with `caps` (none for a
/// prefix rule: they become empty).
fn expand(replacement: &[u8], caps: Option<&regex::Captures<'_>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(replacement.len());
    let mut i = 0;
    while let Some(&b) = replacement.get(i) {
        if b == CAPTURE as u8 {
            let digits: Vec<u8> = replacement
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .copied()
                .collect();
            let n: usize = std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            if let Some(m) = caps.and_then(|c| c.get(n)) {
                out.extend_from_slice(m.as_str().as_bytes());
            }
            i += 1 + digits.len();
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// The value with the first matching rule applied; `None` when none matches.
/// `domain`: the cookie-domain comparison (whole value, case-insensitive,
/// leading `.` ignored).
pub fn rewrite(value: &[u8], rules: &[ReadyRule<'_>], domain: bool) -> Option<Vec<u8>> {
    rules.iter().find_map(|r| match &r.pattern {
        ReadyPattern::Prefix(p) => {
            if domain {
                let v = value.strip_prefix(b".").unwrap_or(value);
                let p = p.strip_prefix(b".").unwrap_or(p);
                v.eq_ignore_ascii_case(p)
                    .then(|| expand(&r.replacement, None))
            } else {
                let rest = value.strip_prefix(p.as_slice())?;
                let mut out = expand(&r.replacement, None);
                out.extend_from_slice(rest);
                Some(out)
            }
        }
        ReadyPattern::Regex(re) => {
            let text = std::str::from_utf8(value).ok()?;
            let caps = re.captures(text)?;
            Some(expand(&r.replacement, Some(&caps)))
        }
    })
}

/// `Refresh: 5; url=http://...`: the URL after `url=` is rewritten.
fn rewrite_refresh(value: &[u8], rules: &[ReadyRule<'_>]) -> Option<Vec<u8>> {
    let lower = value.to_ascii_lowercase();
    let at = lower.windows(4).position(|w| w == b"url=")? + 4;
    let (head, url) = value.split_at(at);
    let mut out = head.to_vec();
    out.extend(rewrite(url, rules, false)?);
    Some(out)
}

/// A `Set-Cookie` value with its `Domain` and `Path` attributes rewritten;
/// `None` when nothing changed.
pub fn rewrite_set_cookie(
    value: &[u8],
    domains: &[ReadyRule<'_>],
    paths: &[ReadyRule<'_>],
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len() + 16);
    let mut changed = false;
    for (n, segment) in value.split(|&b| b == b';').enumerate() {
        if n > 0 {
            out.push(b';');
        }
        let lead = segment
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        let attr = segment.get(lead..).unwrap_or_default();
        let eq = attr.iter().position(|&b| b == b'=');
        let edited = match (n, eq) {
            (0, _) | (_, None) => None,
            (_, Some(eq)) => {
                let (name, val) = (
                    attr.get(..eq).unwrap_or_default(),
                    attr.get(eq + 1..).unwrap_or_default(),
                );
                let name_trim = name.trim_ascii();
                if name_trim.eq_ignore_ascii_case(b"domain") && !domains.is_empty() {
                    rewrite(val, domains, true).map(|v| (name, v))
                } else if name_trim.eq_ignore_ascii_case(b"path") && !paths.is_empty() {
                    rewrite(val, paths, false).map(|v| (name, v))
                } else {
                    None
                }
            }
        };
        match edited {
            Some((name, v)) => {
                changed = true;
                out.extend_from_slice(segment.get(..lead).unwrap_or_default());
                out.extend_from_slice(name);
                out.push(b'=');
                out.extend_from_slice(&v);
            }
            None => out.extend_from_slice(segment),
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn prefix(p: &str, r: &str) -> ReadyRule<'static> {
        ReadyRule {
            pattern: ReadyPattern::Prefix(p.as_bytes().to_vec()),
            replacement: r.replace('$', &CAPTURE.to_string()).into_bytes(),
        }
    }

    fn regex(re: &'static Regex, r: &str) -> ReadyRule<'static> {
        ReadyRule {
            pattern: ReadyPattern::Regex(re),
            replacement: r.replace('$', &CAPTURE.to_string()).into_bytes(),
        }
    }

    #[test]
    fn location_rules_first_match_wins() {
        let re: &'static Regex = Box::leak(Box::new(
            Regex::new("^http://([^.]+)\\.internal(/.*)$").unwrap(),
        ));
        let rules = [
            prefix("http://app:8080/two/", "/one/"),
            regex(re, "https://$1.example.com$2"),
            prefix("http://app:8080/", "/"),
        ];
        let cases: &[(&str, Option<&str>)] = &[
            ("http://app:8080/two/x?y", Some("/one/x?y")),
            ("http://app:8080/three", Some("/three")),
            (
                "http://shop.internal/cart",
                Some("https://shop.example.com/cart"),
            ),
            ("http://APP:8080/x", None),
            ("/relative", None),
        ];
        for (value, want) in cases {
            let got =
                rewrite(value.as_bytes(), &rules, false).map(|v| String::from_utf8(v).unwrap());
            assert_eq!(got.as_deref(), *want, "{value}");
        }
        let refresh = rewrite_refresh(b"5; URL=http://app:8080/two/a", &rules).unwrap();
        assert_eq!(refresh, b"5; URL=/one/a");
    }

    #[test]
    fn cookie_domain_and_path_attributes() {
        let domains = [prefix(".backend.local", "example.com")];
        let paths = [prefix("/app/", "/")];
        let cases: &[(&str, Option<&str>)] = &[
            (
                "sid=1; Domain=backend.local; Path=/app/x; HttpOnly",
                Some("sid=1; Domain=example.com; Path=/x; HttpOnly"),
            ),
            (
                "sid=1; domain=.BACKEND.local",
                Some("sid=1; domain=example.com"),
            ),
            ("sid=1; Domain=other.local; Path=/else", None),
            ("path=/app/; x=1", None),
        ];
        for (value, want) in cases {
            let got = rewrite_set_cookie(value.as_bytes(), &domains, &paths)
                .map(|v| String::from_utf8(v).unwrap());
            assert_eq!(got.as_deref(), *want, "{value}");
        }
    }
}
