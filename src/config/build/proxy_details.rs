//! The `proxy_*` directives that shape what goes to the backend and what
//! comes back, beyond `common`: `proxy_redirect`, `proxy_cookie_domain`,
//! `proxy_cookie_path` (typed as `crate::proxy::redirect` rules; a level with
//! any replaces the outer list, `off` clears it), `proxy_request_buffering`
//! and `proxy_ignore_headers` (accepted with an honest warning: the proxy
//! streams request bodies and has no cache nor `X-Accel-*` handling to
//! ignore), and `proxy_cache*` / `proxy_store*`, refused: a cache is not
//! supported.

use super::args::{arg, compile_regex, err, flag, set_once, simple, template_arg};
use super::inherit::inherit_fields;
use super::{Builder, Res};
use crate::config::ast::Directive;
use crate::config::Template;
use crate::proxy::cookie_flags::Flag;
use crate::proxy::redirect::{CookieFlags, Pattern, ProxyDetails, RedirectRule, Rule, CAPTURE};
use crate::proxy::shape::RequestShape;

/// The rules written at one level; `None` = inherited.
#[derive(Debug, Clone, Default)]
pub(super) struct DetailsLayer {
    redirects: Option<Vec<RedirectRule>>,
    cookie_domains: Option<Vec<Rule>>,
    cookie_paths: Option<Vec<Rule>>,
    cookie_flags: Option<Vec<CookieFlags>>,
    method: Option<Template>,
    pass_headers: Option<bool>,
    pass_body: Option<bool>,
    set_body: Option<Template>,
}

impl DetailsLayer {
    pub(super) fn inherit(mut self, parent: &DetailsLayer) -> DetailsLayer {
        inherit_fields!(
            self,
            parent,
            redirects,
            cookie_domains,
            cookie_paths,
            cookie_flags,
            method,
            pass_headers,
            pass_body,
            set_body
        );
        self
    }

    /// nginx's default is `proxy_redirect default`.
    pub(super) fn finish(&self) -> ProxyDetails {
        ProxyDetails {
            redirects: self
                .redirects
                .clone()
                .unwrap_or_else(|| vec![RedirectRule::Default]),
            cookie_domains: self.cookie_domains.clone().unwrap_or_default(),
            cookie_paths: self.cookie_paths.clone().unwrap_or_default(),
            cookie_flags: self.cookie_flags.clone().unwrap_or_default(),
        }
    }

    pub(super) fn shape(&self) -> RequestShape {
        RequestShape {
            method: self.method.clone(),
            pass_headers: self.pass_headers.unwrap_or(true),
            pass_body: self.pass_body.unwrap_or(true),
            set_body: self.set_body.clone(),
        }
    }
}

/// `$1`, `${1}` in a replacement become capture references the template
/// parser keeps as text.
fn replacement(d: &Directive, text: &str) -> Res<Template> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let after = rest.get(at + 1..).unwrap_or_default();
        let braced = after.strip_prefix('{');
        let body = braced.unwrap_or(after);
        let digits = body.bytes().take_while(u8::is_ascii_digit).count();
        let closes = braced.is_none() || body.get(digits..).is_some_and(|r| r.starts_with('}'));
        if digits > 0 && closes {
            out.push(CAPTURE);
            out.push_str(body.get(..digits).unwrap_or_default());
            let used = digits + if braced.is_some() { 2 } else { 0 };
            rest = after.get(used..).unwrap_or_default();
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    template_arg(d, &out)
}

/// `PATTERN REPLACEMENT` where PATTERN is a prefix (variables allowed) or
/// `~regex` / `~*regex`.
fn rule(d: &Directive) -> Res<Rule> {
    let p = arg(d, 0);
    let pattern = if let Some(re) = p.strip_prefix("~*") {
        Pattern::Regex(compile_regex(d, re, true)?)
    } else if let Some(re) = p.strip_prefix('~') {
        Pattern::Regex(compile_regex(d, re, false)?)
    } else {
        Pattern::Prefix(template_arg(d, p)?)
    };
    Ok(Rule {
        pattern,
        replacement: replacement(d, arg(d, 1))?,
    })
}

impl Builder {
    /// A cache directive that cannot act: there is never a `proxy_cache`.
    fn no_cache(&mut self, d: &Directive) {
        self.ignored(
            d,
            "the proxy has no response cache (\"proxy_cache\" is refused), so it never acts, as in nginx without \"proxy_cache\"",
        );
    }

    /// `Ok(false)` when `d` is not one of these directives.
    pub(super) fn proxy_detail_directive(
        &mut self,
        d: &Directive,
        layer: &mut DetailsLayer,
    ) -> Res<bool> {
        let name = d.name.as_str();
        match name {
            "proxy_redirect" => {
                simple(d, 1, 2)?;
                if d.args.len() == 1 {
                    match arg(d, 0) {
                        "off" => layer.redirects = Some(Vec::new()),
                        "false" => {
                            self.warn(d, "invalid parameter \"false\", use \"off\" instead");
                            layer.redirects = Some(Vec::new());
                        }
                        "default" => layer
                            .redirects
                            .get_or_insert_with(Vec::new)
                            .push(RedirectRule::Default),
                        other => return Err(err(format!("invalid parameter \"{other}\""), d)),
                    }
                } else {
                    let r = rule(d)?;
                    layer
                        .redirects
                        .get_or_insert_with(Vec::new)
                        .push(RedirectRule::Rule(r));
                }
            }
            "proxy_cookie_domain" | "proxy_cookie_path" => {
                simple(d, 1, 2)?;
                let slot = if name == "proxy_cookie_domain" {
                    &mut layer.cookie_domains
                } else {
                    &mut layer.cookie_paths
                };
                if d.args.len() == 1 {
                    if arg(d, 0) != "off" {
                        return Err(err(format!("invalid parameter \"{}\"", arg(d, 0)), d));
                    }
                    *slot = Some(Vec::new());
                } else {
                    slot.get_or_insert_with(Vec::new).push(rule(d)?);
                }
            }
            "proxy_cookie_flags" => {
                simple(d, 1, 4)?;
                if d.args.len() == 1 {
                    if arg(d, 0) != "off" {
                        return Err(err(format!("invalid parameter \"{}\"", arg(d, 0)), d));
                    }
                    layer.cookie_flags = Some(Vec::new());
                    return Ok(true);
                }
                let c = arg(d, 0);
                let name = if let Some(re) = c.strip_prefix('~') {
                    Pattern::Regex(compile_regex(d, re, false)?)
                } else {
                    Pattern::Prefix(template_arg(d, c)?)
                };
                let mut flags = Vec::new();
                for a in d.args.iter().skip(1) {
                    let f = Flag::parse(&a.value)
                        .ok_or_else(|| err(format!("invalid parameter \"{}\"", a.value), d))?;
                    flags.push(f);
                }
                layer
                    .cookie_flags
                    .get_or_insert_with(Vec::new)
                    .push(CookieFlags { name, flags });
            }
            "proxy_method" | "proxy_set_body" => {
                simple(d, 1, 1)?;
                let slot = if name == "proxy_method" {
                    &mut layer.method
                } else {
                    &mut layer.set_body
                };
                set_once(slot, template_arg(d, arg(d, 0))?, d)?;
            }
            "proxy_pass_request_headers" | "proxy_pass_request_body" => {
                simple(d, 1, 1)?;
                let on = flag(d)?;
                let slot = if name == "proxy_pass_request_headers" {
                    &mut layer.pass_headers
                } else {
                    &mut layer.pass_body
                };
                set_once(slot, on, d)?;
            }
            "proxy_request_buffering" => {
                simple(d, 1, 1)?;
                flag(d)?;
                self.warn(
                    d,
                    "\"proxy_request_buffering\" is ignored: request bodies are always streamed to the backend as they arrive (nginx's \"off\")",
                );
            }
            "proxy_ignore_headers" => {
                simple(d, 1, usize::MAX)?;
                for a in &d.args {
                    match a.value.as_str() {
                        "X-Accel-Redirect" | "X-Accel-Expires" | "X-Accel-Limit-Rate"
                        | "X-Accel-Buffering" | "X-Accel-Charset" | "Expires" | "Cache-Control"
                        | "Set-Cookie" | "Vary" => {}
                        other => return Err(err(format!("invalid value \"{other}\""), d)),
                    }
                }
                self.ignored(
                    d,
                    "the proxy has no cache and does not act on \"X-Accel-*\" headers, so there is nothing to ignore",
                );
            }
            // Without `proxy_cache` (refused below) nginx's other cache
            // directives never act: accepted, as the many configurations
            // carrying `proxy_cache_bypass $http_upgrade;` need.
            "proxy_cache_bypass" | "proxy_no_cache" => {
                simple(d, 1, usize::MAX)?;
                for i in 0..d.args.len() {
                    template_arg(d, arg(d, i))?;
                }
                self.no_cache(d);
            }
            // nginx 1.22's own; `proxy_cache off;` and `proxy_store off;`
            // (nothing cached, nothing stored) are what the proxy does.
            "proxy_cache_background_update"
            | "proxy_cache_convert_head"
            | "proxy_cache_key"
            | "proxy_cache_lock"
            | "proxy_cache_lock_age"
            | "proxy_cache_lock_timeout"
            | "proxy_cache_max_range_offset"
            | "proxy_cache_methods"
            | "proxy_cache_min_uses"
            | "proxy_cache_revalidate"
            | "proxy_cache_use_stale"
            | "proxy_cache_valid"
            | "proxy_store_access" => {
                simple(d, 1, usize::MAX)?;
                self.no_cache(d);
            }
            "proxy_cache" | "proxy_store" if d.args.len() == 1 && arg(d, 0) == "off" => {
                self.no_cache(d);
            }
            _ if name.starts_with("proxy_cache") || name.starts_with("proxy_store") => {
                return Err(err(
                    format!("\"{name}\" is not supported: the proxy has no response cache"),
                    d,
                ));
            }
            "fastcgi_pass" => {
                return Err(err(
                    "\"fastcgi_pass\" is not supported: the proxy speaks HTTP to its backends \
                     (\"proxy_pass\"), not FastCGI"
                        .to_string(),
                    d,
                ));
            }
            _ if name.starts_with("fastcgi_cache") || name.starts_with("fastcgi_store") => {
                return Err(err(
                    format!("\"{name}\" is not supported: the proxy has no response cache"),
                    d,
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::build::tests::ok;
    use crate::config::load_str;

    #[test]
    fn rules_inherit_and_off_clears() {
        let (c, warnings) = ok("http {
              proxy_cookie_path /app/ /;
              proxy_request_buffering off;
              server {
                proxy_redirect http://a/ /b/;
                proxy_redirect ~^http://(x)/(.*)$ http://$1.example/${2}x;
                location /own { proxy_redirect off; proxy_cookie_domain ~*^(.+)\\.local$ $1.example.com; }
                location /inherit { }
              }
              server { location / { } }
            }");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let s = &c.http.servers[0];
        let own = &s.locations[0].conf.details;
        let inherited = &s.locations[1].conf.details;
        assert!(own.redirects.is_empty());
        assert_eq!(own.cookie_domains.len(), 1);
        assert_eq!(own.cookie_paths.len(), 1, "from http");
        assert_eq!(inherited.redirects.len(), 2);
        let RedirectRule::Rule(r) = &inherited.redirects[1] else {
            panic!("a rule")
        };
        assert_eq!(r.replacement.source, "http://\u{1}1.example/\u{1}2x");
        assert!(matches!(
            c.http.servers[1].locations[0].conf.details.redirects[..],
            [RedirectRule::Default]
        ));
        assert!(s.locations[0].conf.shape.is_default());
        let (c, _) =
            ok("http { proxy_pass_request_body off; server { location / { proxy_method PUT; } } }");
        let shape = &c.http.servers[0].locations[0].conf.shape;
        assert!(!shape.pass_body && shape.pass_headers);
        assert_eq!(
            shape.method.as_ref().map(|m| m.source.as_str()),
            Some("PUT")
        );
    }

    #[test]
    fn cache_is_refused_and_bad_values_fail() {
        let cases: &[(&str, &str)] = &[
            (
                "proxy_cache_path /tmp/c keys_zone=c:10m;",
                "\"proxy_cache_path\" is not supported: the proxy has no response cache",
            ),
            (
                "proxy_cache c;",
                "\"proxy_cache\" is not supported: the proxy has no response cache",
            ),
            (
                "proxy_store on;",
                "\"proxy_store\" is not supported: the proxy has no response cache",
            ),
            (
                "proxy_cache_typo 1;",
                "\"proxy_cache_typo\" is not supported: the proxy has no response cache",
            ),
            (
                "proxy_cache_bypass;",
                "invalid number of arguments in \"proxy_cache_bypass\" directive",
            ),
            (
                "proxy_no_cache $nonesuch;",
                "unknown \"nonesuch\" variable",
            ),
            ("proxy_redirect on;", "invalid parameter \"on\""),
            ("proxy_cookie_path x;", "invalid parameter \"x\""),
            ("proxy_cookie_flags a secure bogus;", "invalid parameter \"bogus\""),
            ("proxy_cookie_flags on;", "invalid parameter \"on\""),
            ("proxy_ignore_headers X-Foo;", "invalid value \"X-Foo\""),
            (
                "proxy_method GET; proxy_method POST;",
                "\"proxy_method\" directive is duplicate",
            ),
            (
                "proxy_pass_request_body no;",
                "invalid value \"no\" in \"proxy_pass_request_body\" directive, it must be \"on\" or \"off\"",
            ),
            (
                "proxy_redirect ~(unclosed /;",
                "regex \"(unclosed\" compile failed: unclosed group",
            ),
        ];
        for (directive, message) in cases {
            let src = format!("http {{ {directive} server {{ }} }}");
            let e = load_str(&src, Path::new("/t.conf")).expect_err(&src);
            assert_eq!(e.message, *message, "{directive}");
        }
    }

    #[test]
    fn cache_directives_that_cannot_act_load_with_a_warning() {
        // The lines of the usual Node.js/websocket configuration, and cache
        // settings kept at http level for a cache that is never enabled.
        let (_, warnings) = ok("http {
              proxy_cache off;
              proxy_cache_valid 200 10m;
              proxy_cache_key $scheme$host$request_uri;
              server { location / {
                proxy_cache_bypass $http_upgrade;
                proxy_no_cache $cookie_nocache $arg_nocache;
              } }
            }");
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        assert!(warnings.iter().all(|w| w
            .message
            .contains("directive is ignored: the proxy has no response cache")));
    }
}
