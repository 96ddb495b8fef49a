//! Tengine's `session_sticky` directive, validated exactly (spec section 1), the
//! `session_sticky_hide_cookie` (alias `session_sticky_header`) that names a
//! sticky upstream, and the warning for peers whose server ids collide.

use std::collections::HashSet;

use super::args::{arg, err, simple};
use super::key_file;
use super::{Builder, HttpState, Res};
use crate::config::ast::Directive;
use crate::config::error::ConfigWarning;
use crate::config::units;
use crate::config::PeerConf;
use crate::sticky::{Hash, Keys, Mode, SameSite, Secure, StickyConf, UNLIMITED_SECS};

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

/// Parameters of ours that are single words (`secure` is also `secure=auto`).
const FLAGS: [&str; 4] = ["httponly", "secure", "partitioned", "nocache"];

/// Shortest key accepted: 16 bytes (128 bits), so a key cannot be guessed.
const MIN_KEY_BYTES: usize = 16;

/// `session_sticky [param=value ...]`, validated exactly (spec section 1, and
/// ours from issue 19: attributes, `hash=hmac`, `key=`/`key_file=`, `sign=`,
/// `learn=`, `nocache`).
pub(super) fn sticky_directive(
    d: &Directive,
    warnings: &mut Vec<ConfigWarning>,
) -> Res<StickyConf> {
    simple(d, 0, usize::MAX)?;
    let mut conf = StickyConf::default();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut option_indirect = false;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for a in &d.args {
        let raw = a.value.as_str();
        let invalid = || err(format!("invalid parameter \"{raw}\""), d);
        let (key, value) = match raw.split_once('=') {
            Some(kv) => kv,
            None if FLAGS.contains(&raw) => (raw, ""),
            None => return Err(invalid()),
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
                | "httponly"
                | "secure"
                | "samesite"
                | "partitioned"
                | "key"
                | "key_file"
                | "sign"
                | "learn"
                | "nocache"
        ) || (value.is_empty() && !FLAGS.contains(&raw))
        {
            return Err(invalid());
        }
        // `key=` may be given once per key.
        if key != "key" && !seen.insert(key) {
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
            "fallback" => conf.fallback = on_off(value).ok_or_else(invalid)?,
            "hash" => {
                conf.hash = match value {
                    "md5" => Hash::Md5,
                    "plain" => Hash::Plain,
                    "hmac" => Hash::Hmac,
                    _ => return Err(invalid()),
                }
            }
            "httponly" if value.is_empty() => conf.attrs.httponly = true,
            "partitioned" if value.is_empty() => conf.attrs.partitioned = true,
            "nocache" if value.is_empty() => conf.nocache = true,
            "secure" => {
                conf.attrs.secure = match value {
                    "" => Secure::On,
                    "auto" => Secure::Auto,
                    _ => return Err(invalid()),
                }
            }
            "samesite" => {
                conf.attrs.samesite = Some(match value {
                    "strict" => SameSite::Strict,
                    "lax" => SameSite::Lax,
                    "none" => SameSite::None,
                    _ => return Err(invalid()),
                })
            }
            "key" => keys.push(value.as_bytes().to_vec()),
            "key_file" => {
                let path = key_file::resolve(&d.span.file, value);
                keys.extend(key_file::read(&path).map_err(|e| err(e, d))?);
            }
            "sign" => conf.sign = on_off(value).ok_or_else(invalid)?,
            "learn" => {
                for name in value.split(',') {
                    if !is_token(name) || conf.learn.iter().any(|n| n == name) {
                        return Err(invalid());
                    }
                    conf.learn.push(name.to_string());
                }
                if conf.learn.len() > usize::from(u8::MAX) {
                    return Err(invalid());
                }
            }
            _ => return Err(invalid()),
        }
    }
    check_ours(d, &mut conf, keys, &seen)?;
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

fn on_off(value: &str) -> Option<bool> {
    match value {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// The rules between our parameters: keys exactly when something uses them,
/// long enough, and `sign=`/`learn=` only where the proxy owns the cookie.
fn check_ours(
    d: &Directive,
    conf: &mut StickyConf,
    keys: Vec<Vec<u8>>,
    seen: &HashSet<&str>,
) -> Res<()> {
    let fail = |m: &str| Err(err(format!("{m} in \"session_sticky\" directive"), d));
    let keyed = conf.hash == Hash::Hmac || conf.sign;
    if keyed && keys.is_empty() {
        return fail("\"hash=hmac\" and \"sign=on\" need \"key=\" or \"key_file=\"");
    }
    if !keyed && (!keys.is_empty() || seen.contains("key_file")) {
        return fail("\"key=\" and \"key_file=\" need \"hash=hmac\" or \"sign=on\"");
    }
    if keys.iter().any(|k| k.len() < MIN_KEY_BYTES) {
        return fail("a key is shorter than 16 bytes");
    }
    if conf.mode != Mode::Insert && conf.sign {
        return fail("\"sign=on\" needs \"mode=insert\"");
    }
    if conf.mode != Mode::Insert && !conf.learn.is_empty() {
        return fail("\"learn=\" needs \"mode=insert\"");
    }
    if keyed {
        match Keys::new(&keys) {
            Some(k) => conf.keys = k,
            None => return fail("a key is empty"),
        }
    }
    Ok(())
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
    use crate::sticky::{Attrs, Hash, Keys, Mode, SameSite, Secure, StickyConf, UNLIMITED_SECS};

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

    const K1: &str = "0123456789abcdef-k1";
    const K2: &str = "0123456789abcdef-k2";

    fn sticky_of(params: &str) -> StickyConf {
        let (c, w) = ok(&format!(
            "http {{ upstream u {{ server 127.0.0.1:9000; session_sticky {params}; }} }}"
        ));
        assert!(w.is_empty(), "{params}: {w:?}");
        c.http.upstreams[0].sticky.clone().expect("sticky")
    }

    #[test]
    fn our_parameters_are_parsed() {
        let keys = |k: &[&str]| Keys::new(k).expect("keys");
        let cases: Vec<(String, StickyConf)> = vec![
            (
                "httponly secure samesite=lax partitioned nocache".into(),
                StickyConf {
                    attrs: Attrs {
                        httponly: true,
                        secure: Secure::On,
                        samesite: Some(SameSite::Lax),
                        partitioned: true,
                    },
                    nocache: true,
                    ..StickyConf::default()
                },
            ),
            (
                "secure=auto samesite=none".into(),
                StickyConf {
                    attrs: Attrs {
                        secure: Secure::Auto,
                        samesite: Some(SameSite::None),
                        ..Attrs::default()
                    },
                    ..StickyConf::default()
                },
            ),
            (
                "samesite=strict".into(),
                StickyConf {
                    attrs: Attrs {
                        samesite: Some(SameSite::Strict),
                        ..Attrs::default()
                    },
                    ..StickyConf::default()
                },
            ),
            (
                format!("hash=hmac key={K1}"),
                StickyConf {
                    hash: Hash::Hmac,
                    keys: keys(&[K1]),
                    ..StickyConf::default()
                },
            ),
            (
                format!("sign=on key={K2} key={K1} maxidle=1h"),
                StickyConf {
                    sign: true,
                    keys: keys(&[K2, K1]),
                    maxidle: Some(3600),
                    maxlife: Some(UNLIMITED_SECS),
                    ..StickyConf::default()
                },
            ),
            ("sign=off".into(), StickyConf::default()),
            (
                "cookie=__VCAP_ID__ learn=JSESSIONID,SESSION hash=plain".into(),
                StickyConf {
                    cookie: "__VCAP_ID__".into(),
                    learn: vec!["JSESSIONID".into(), "SESSION".into()],
                    hash: Hash::Plain,
                    ..StickyConf::default()
                },
            ),
        ];
        for (params, want) in cases {
            assert_eq!(sticky_of(&params), want, "{params}");
        }
    }

    #[test]
    fn our_parameters_are_validated() {
        let cases: Vec<(String, &str)> = vec![
            ("httponly=on".into(), "invalid parameter \"httponly=on\""),
            ("secure=yes".into(), "invalid parameter \"secure=yes\""),
            ("samesite=".into(), "invalid parameter \"samesite=\""),
            ("samesite=Lax".into(), "invalid parameter \"samesite=Lax\""),
            ("samesite".into(), "invalid parameter \"samesite\""),
            ("hash=sha1".into(), "invalid parameter \"hash=sha1\""),
            ("sign=yes".into(), "invalid parameter \"sign=yes\""),
            ("learn=a,,b".into(), "invalid parameter \"learn=a,,b\""),
            ("learn=a/b".into(), "invalid parameter \"learn=a/b\""),
            ("learn=a,a".into(), "invalid parameter \"learn=a,a\""),
            (
                "httponly httponly".into(),
                "duplicate parameter \"httponly\" in \"session_sticky\" directive",
            ),
            (
                "hash=hmac".into(),
                "\"hash=hmac\" and \"sign=on\" need \"key=\" or \"key_file=\" in \"session_sticky\" directive",
            ),
            (
                "sign=on".into(),
                "\"hash=hmac\" and \"sign=on\" need \"key=\" or \"key_file=\" in \"session_sticky\" directive",
            ),
            (
                format!("key={K1}"),
                "\"key=\" and \"key_file=\" need \"hash=hmac\" or \"sign=on\" in \"session_sticky\" directive",
            ),
            (
                "hash=hmac key=short".into(),
                "a key is shorter than 16 bytes in \"session_sticky\" directive",
            ),
            (
                format!("mode=prefix sign=on key={K1}"),
                "\"sign=on\" needs \"mode=insert\" in \"session_sticky\" directive",
            ),
            (
                "mode=rewrite learn=JSESSIONID".into(),
                "\"learn=\" needs \"mode=insert\" in \"session_sticky\" directive",
            ),
            (
                "hash=hmac key_file=/nonexistent/sticky.keys".into(),
                "open() \"/nonexistent/sticky.keys\" failed",
            ),
        ];
        for (params, want) in cases {
            let src = format!(
                "http {{\n upstream u {{\n server 127.0.0.1:9000;\n session_sticky {params};\n }}\n}}\n"
            );
            let e = crate::config::load_str(&src, std::path::Path::new("/etc/proxy/t.conf"))
                .expect_err(&params);
            let text = e.to_string();
            assert!(text.contains(want), "{params}: {text}");
            assert!(text.contains("/etc/proxy/t.conf:4"), "{params}: {text}");
        }
    }

    #[test]
    fn key_file_keys_come_in_file_order() {
        let dir = std::env::temp_dir().join(format!("sticky-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("keys"), format!("# new first\n{K2}\n{K1}\n")).expect("write");
        let conf_file = dir.join("p.conf");
        let src =
            "http { upstream u { server 127.0.0.1:9000; session_sticky sign=on key_file=keys; } }";
        let (c, _) = crate::config::load_str(src, &conf_file).expect("loads");
        let sticky = c.http.upstreams[0].sticky.clone().expect("sticky");
        assert_eq!(sticky.keys, Keys::new([K2, K1]).expect("keys"));
        std::fs::write(dir.join("keys"), "# nothing\n").expect("write");
        let e = crate::config::load_str(src, &conf_file).expect_err("no keys");
        assert!(e.to_string().contains("need \"key=\""), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
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
