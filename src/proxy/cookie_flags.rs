//! `proxy_cookie_flags COOKIE FLAG...`: adding or removing the `Secure`,
//! `HttpOnly` and `SameSite` attributes of the backend's `Set-Cookie` headers,
//! as nginx does: the first rule whose COOKIE matches the cookie's name (a
//! name, with variables, or `~regex`) applies; added attributes are appended
//! as `; Secure`, `; HttpOnly`, `; SameSite=Strict|Lax|None` in that order; a
//! `samesite=` flag replaces an existing value; `nosecure`, `nohttponly`,
//! `nosamesite` remove the attribute. Pure.

use regex::Regex;

/// One flag of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Secure(bool),
    HttpOnly(bool),
    /// `Some("Strict")`, or `None` for `nosamesite`.
    SameSite(Option<&'static str>),
}

impl Flag {
    /// `secure`, `httponly`, `samesite=strict|lax|none`, and their `no`
    /// forms.
    pub fn parse(text: &str) -> Option<Flag> {
        Some(match text.to_ascii_lowercase().as_str() {
            "secure" => Flag::Secure(true),
            "nosecure" => Flag::Secure(false),
            "httponly" => Flag::HttpOnly(true),
            "nohttponly" => Flag::HttpOnly(false),
            "samesite=strict" => Flag::SameSite(Some("Strict")),
            "samesite=lax" => Flag::SameSite(Some("Lax")),
            "samesite=none" => Flag::SameSite(Some("None")),
            "nosamesite" => Flag::SameSite(None),
            _ => return None,
        })
    }
}

/// What a rule's COOKIE matches, evaluated for one request.
#[derive(Debug, Clone)]
pub enum ReadyName<'c> {
    Exact(Vec<u8>),
    Regex(&'c Regex),
}

/// A rule ready for one response.
#[derive(Debug, Clone)]
pub struct ReadyFlags<'c> {
    pub name: ReadyName<'c>,
    pub flags: &'c [Flag],
}

/// The cookie with the flags of the first matching rule applied; `None` when
/// no rule matches or nothing changes.
pub fn apply_flags(value: &[u8], rules: &[ReadyFlags<'_>]) -> Option<Vec<u8>> {
    let name = value
        .split(|&b| b == b'=' || b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let rule = rules.iter().find(|r| match &r.name {
        ReadyName::Exact(n) => n.as_slice() == name,
        ReadyName::Regex(re) => std::str::from_utf8(name).is_ok_and(|n| re.is_match(n)),
    })?;
    let mut secure = None;
    let mut httponly = None;
    let mut samesite: Option<Option<&str>> = None;
    for f in rule.flags {
        match *f {
            Flag::Secure(on) => secure = Some(on),
            Flag::HttpOnly(on) => httponly = Some(on),
            Flag::SameSite(v) => samesite = Some(v),
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(value.len() + 32);
    let (mut has_secure, mut has_httponly, mut has_samesite) = (false, false, false);
    for (n, segment) in value.split(|&b| b == b';').enumerate() {
        let attr = segment.trim_ascii();
        let key = attr
            .split(|&b| b == b'=')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if n > 0 {
            if key.eq_ignore_ascii_case(b"secure") {
                has_secure = true;
                if secure == Some(false) {
                    continue;
                }
            } else if key.eq_ignore_ascii_case(b"httponly") {
                has_httponly = true;
                if httponly == Some(false) {
                    continue;
                }
            } else if key.eq_ignore_ascii_case(b"samesite") {
                has_samesite = true;
                match samesite {
                    Some(None) => continue,
                    Some(Some(v)) => {
                        let lead = segment.len() - segment.trim_ascii_start().len();
                        out.push(b';');
                        out.extend_from_slice(segment.get(..lead).unwrap_or_default());
                        out.extend_from_slice(key);
                        out.push(b'=');
                        out.extend_from_slice(v.as_bytes());
                        continue;
                    }
                    None => {}
                }
            }
            out.push(b';');
        }
        out.extend_from_slice(segment);
    }
    if secure == Some(true) && !has_secure {
        out.extend_from_slice(b"; Secure");
    }
    if httponly == Some(true) && !has_httponly {
        out.extend_from_slice(b"; HttpOnly");
    }
    if let (Some(Some(v)), false) = (samesite, has_samesite) {
        out.extend_from_slice(b"; SameSite=");
        out.extend_from_slice(v.as_bytes());
    }
    (out != value).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_match_nginx_output() {
        let re: &'static Regex = Box::leak(Box::new(Regex::new("^b").unwrap()));
        let a = [
            Flag::Secure(true),
            Flag::HttpOnly(true),
            Flag::SameSite(Some("Strict")),
        ];
        let b = [
            Flag::Secure(false),
            Flag::HttpOnly(false),
            Flag::SameSite(None),
        ];
        let c = [Flag::SameSite(Some("Lax"))];
        let rules = [
            ReadyFlags {
                name: ReadyName::Exact(b"a".to_vec()),
                flags: &a,
            },
            ReadyFlags {
                name: ReadyName::Regex(re),
                flags: &b,
            },
            ReadyFlags {
                name: ReadyName::Exact(b"c".to_vec()),
                flags: &c,
            },
        ];
        // What nginx 1.22 sends for the same rules.
        let cases: &[(&str, Option<&str>)] = &[
            (
                "a=1; Path=/",
                Some("a=1; Path=/; Secure; HttpOnly; SameSite=Strict"),
            ),
            (
                "b1=2; Secure; HttpOnly; SameSite=None; Path=/",
                Some("b1=2; Path=/"),
            ),
            (
                "c=3; SameSite=Strict; secure",
                Some("c=3; SameSite=Lax; secure"),
            ),
            (
                "a=4; HTTPONLY",
                Some("a=4; HTTPONLY; Secure; SameSite=Strict"),
            ),
            ("d=5; Path=/", None),
        ];
        for (value, want) in cases {
            let got = apply_flags(value.as_bytes(), &rules).map(|v| String::from_utf8(v).unwrap());
            assert_eq!(got.as_deref(), *want, "{value}");
        }
        assert_eq!(
            Flag::parse("SameSite=Lax"),
            Some(Flag::SameSite(Some("Lax")))
        );
        assert_eq!(Flag::parse("samesite=x"), None);
    }
}
