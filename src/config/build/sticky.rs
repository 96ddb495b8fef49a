//! Tengine's `session_sticky` directive, validated exactly (spec section 1), the
//! `session_sticky_hide_cookie` (alias `session_sticky_header`) that names a
//! sticky upstream, and the warning for peers whose server ids collide.

use std::collections::HashSet;

use super::args::{arg, err, simple};
use super::{Builder, HttpState, Res};
use crate::config::ast::Directive;
use crate::config::error::ConfigWarning;
use crate::config::units;
use crate::config::PeerConf;
use crate::sticky::{Hash, Mode, StickyConf, UNLIMITED_SECS};

/// A cookie name: an RFC 6265 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// A cookie attribute value (`domain=`, `path=`): visible ASCII without `;`.
fn is_attribute_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}

/// `session_sticky [param=value ...]`, validated exactly (spec section 1).
pub(super) fn sticky_directive(
    d: &Directive,
    warnings: &mut Vec<ConfigWarning>,
) -> Res<StickyConf> {
    simple(d, 0, usize::MAX)?;
    let mut conf = StickyConf::default();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut option_indirect = false;
    for a in &d.args {
        let raw = a.value.as_str();
        let invalid = || err(format!("invalid parameter \"{raw}\""), d);
        let Some((key, value)) = raw.split_once('=') else {
            return Err(invalid());
        };
        if !matches!(
            key,
            "cookie"
                | "domain"
                | "path"
                | "maxage"
                | "mode"
                | "option"
                | "maxidle"
                | "maxlife"
                | "fallback"
                | "hash"
        ) || value.is_empty()
        {
            return Err(invalid());
        }
        if !seen.insert(key) {
            return Err(err(
                format!("duplicate parameter \"{key}\" in \"session_sticky\" directive"),
                d,
            ));
        }
        let seconds = || units::parse_seconds(value).map_err(|_| invalid());
        match key {
            "cookie" if is_token(value) => conf.cookie = value.to_string(),
            "domain" if is_attribute_value(value) => conf.domain = Some(value.to_string()),
            "path" if is_attribute_value(value) => conf.path = value.to_string(),
            "maxage" => conf.maxage = Some(seconds()?),
            "maxidle" => conf.maxidle = Some(seconds()?),
            "maxlife" => conf.maxlife = Some(seconds()?),
            "mode" => {
                conf.mode = match value {
                    "insert" => Mode::Insert,
                    "rewrite" => Mode::Rewrite,
                    "prefix" => Mode::Prefix,
                    _ => return Err(invalid()),
                }
            }
            "option" => {
                option_indirect = match value {
                    "indirect" => true,
                    "direct" => false,
                    _ => return Err(invalid()),
                }
            }
            "fallback" => {
                conf.fallback = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(invalid()),
                }
            }
            "hash" => {
                conf.hash = match value {
                    "md5" => Hash::Md5,
                    "plain" => Hash::Plain,
                    _ => return Err(invalid()),
                }
            }
            _ => return Err(invalid()),
        }
    }
    match (conf.maxidle, conf.maxlife) {
        (Some(_), None) => conf.maxlife = Some(UNLIMITED_SECS),
        (None, Some(_)) => conf.maxidle = Some(UNLIMITED_SECS),
        _ => {}
    }
    if option_indirect && conf.mode == Mode::Rewrite {
        warnings.push(ConfigWarning {
            message: "\"option=indirect\" has no effect with \"mode=rewrite\" and is ignored"
                .to_string(),
            span: d.span.clone(),
        });
    } else {
        conf.indirect = option_indirect;
    }
    Ok(conf)
}

/// `session_sticky_hide_cookie upstream=NAME`: the name of a defined upstream
/// that has a `session_sticky`.
pub(super) fn hide_cookie_upstream(d: &Directive, st: &HttpState) -> Res<String> {
    simple(d, 1, 1)?;
    let raw = arg(d, 0);
    let name = match raw.strip_prefix("upstream=") {
        Some(n) if !n.is_empty() => n,
        _ => return Err(err(format!("invalid parameter \"{raw}\""), d)),
    };
    let Some(up) = st.named.iter().find(|u| u.name.eq_ignore_ascii_case(name)) else {
        return Err(err(
            format!(
                "upstream \"{name}\" in \"{}\" directive is not defined",
                d.name
            ),
            d,
        ));
    };
    if up.sticky.is_none() {
        return Err(err(
            format!(
                "upstream \"{name}\" in \"{}\" directive has no \"session_sticky\"",
                d.name
            ),
            d,
        ));
    }
    Ok(up.name.clone())
}

impl Builder {
    /// Two peers of a sticky upstream with the same server id cannot be told apart
    /// by the cookie; the first one would get every pinned request.
    pub(super) fn warn_shared_sids(
        &mut self,
        d: &Directive,
        upstream: &str,
        conf: &StickyConf,
        peers: &[PeerConf],
    ) {
        let mut seen: HashSet<&str> = HashSet::new();
        for p in peers {
            let sid = match (conf.hash, &p.id) {
                (Hash::Plain, Some(id)) => id.as_str(),
                _ => p.name.as_str(),
            };
            if !seen.insert(sid) {
                self.warn(
                    d,
                    &format!(
                        "servers of upstream \"{upstream}\" share the server id of \"{sid}\"; \
                         sticky cookies cannot tell them apart"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::build::tests::ok;
    use crate::sticky::{Hash, Mode, StickyConf, UNLIMITED_SECS};

    #[test]
    fn session_sticky_parameters_and_implied_limits() {
        let cases: &[(&str, StickyConf)] = &[
            ("", StickyConf::default()),
            (
                "maxidle=30m",
                StickyConf {
                    maxidle: Some(1800),
                    maxlife: Some(UNLIMITED_SECS),
                    ..StickyConf::default()
                },
            ),
            (
                "maxlife=100",
                StickyConf {
                    maxidle: Some(UNLIMITED_SECS),
                    maxlife: Some(100),
                    ..StickyConf::default()
                },
            ),
            (
                "cookie=SRV domain=.a.example path=/app maxage=1d option=indirect hash=plain fallback=off",
                StickyConf {
                    cookie: "SRV".into(),
                    domain: Some(".a.example".into()),
                    path: "/app".into(),
                    maxage: Some(86400),
                    indirect: true,
                    hash: Hash::Plain,
                    fallback: false,
                    ..StickyConf::default()
                },
            ),
            (
                "mode=prefix option=direct",
                StickyConf {
                    mode: Mode::Prefix,
                    ..StickyConf::default()
                },
            ),
        ];
        for (params, expected) in cases {
            let (c, warnings) = ok(&format!(
                "http {{ upstream u {{ server 127.0.0.1:9000; session_sticky {params}; }} }}"
            ));
            assert_eq!(
                c.http.upstreams[0].sticky.as_ref(),
                Some(expected),
                "{params}"
            );
            assert!(warnings.is_empty(), "{params}");
        }
    }

    #[test]
    fn indirect_with_rewrite_warns_and_is_cleared() {
        let (c, warnings) = ok("http {\n upstream u {\n server 127.0.0.1:9000;\n session_sticky mode=rewrite option=indirect;\n }\n}");
        let sticky = c.http.upstreams[0].sticky.clone().expect("sticky");
        assert_eq!((sticky.mode, sticky.indirect), (Mode::Rewrite, false));
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].message,
            "\"option=indirect\" has no effect with \"mode=rewrite\" and is ignored"
        );
        assert_eq!(warnings[0].span.line, 4);
    }

    #[test]
    fn hide_cookie_is_inherited_and_alias_accepted() {
        let (c, _) = ok("http {
              upstream s { server 127.0.0.1:9000; session_sticky; }
              session_sticky_header upstream=s;
              server { location / { } }
            }");
        let l = &c.http.servers[0].locations[0].conf;
        assert_eq!(l.sticky_hide_cookie.as_deref(), Some("s"));
    }
}
