//! The compression directives, written into a [`CompressLayer`] at http,
//! server or location level: nginx's `gzip`, `gzip_types`,
//! `gzip_min_length`, `gzip_comp_level`, `gzip_vary`, `gzip_proxied`,
//! `gzip_disable`, `gzip_http_version`, `gzip_static`, `gzip_buffers`
//! (accepted with a warning: output is streamed), and ngx_brotli's `brotli`,
//! `brotli_types`, `brotli_comp_level`, `brotli_min_length`,
//! `brotli_static`, `brotli_buffers`/`brotli_window` (accepted).

use std::sync::Arc;

use super::args::{arg, compile_regex, err, flag, number, set_once, simple, size};
use super::inherit::inherit_fields;
use super::{Builder, Res};
use crate::config::ast::Directive;
use crate::config::compress::{CompressConf, Proxied, StaticMode, Types};

/// The compression settings written at one level; `None` = inherited.
#[derive(Debug, Clone, Default)]
pub(super) struct CompressLayer {
    gzip: Option<bool>,
    gzip_types: Option<Types>,
    gzip_min_length: Option<u64>,
    gzip_comp_level: Option<u32>,
    gzip_vary: Option<bool>,
    gzip_proxied: Option<Proxied>,
    gzip_disable: Option<(Vec<regex::Regex>, bool)>,
    gzip_http_version: Option<http::Version>,
    gzip_static: Option<StaticMode>,
    brotli: Option<bool>,
    brotli_types: Option<Types>,
    brotli_comp_level: Option<u32>,
    brotli_min_length: Option<u64>,
    brotli_static: Option<StaticMode>,
}

impl CompressLayer {
    pub(super) fn inherit(&mut self, parent: &CompressLayer) {
        inherit_fields!(
            self,
            parent,
            gzip,
            gzip_types,
            gzip_min_length,
            gzip_comp_level,
            gzip_vary,
            gzip_proxied,
            gzip_disable,
            gzip_http_version,
            gzip_static,
            brotli,
            brotli_types,
            brotli_comp_level,
            brotli_min_length,
            brotli_static
        );
    }

    pub(super) fn finish(&self) -> Arc<CompressConf> {
        let d = CompressConf::default();
        let (gzip_disable, gzip_disable_msie6) = self
            .gzip_disable
            .clone()
            .unwrap_or((d.gzip_disable, d.gzip_disable_msie6));
        Arc::new(CompressConf {
            gzip: self.gzip.unwrap_or(d.gzip),
            gzip_types: self.gzip_types.clone().unwrap_or(d.gzip_types),
            gzip_min_length: self.gzip_min_length.unwrap_or(d.gzip_min_length),
            gzip_comp_level: self.gzip_comp_level.unwrap_or(d.gzip_comp_level),
            gzip_vary: self.gzip_vary.unwrap_or(d.gzip_vary),
            gzip_proxied: self.gzip_proxied.unwrap_or(d.gzip_proxied),
            gzip_disable,
            gzip_disable_msie6,
            gzip_http_version: self.gzip_http_version.unwrap_or(d.gzip_http_version),
            gzip_static: self.gzip_static.unwrap_or(d.gzip_static),
            brotli: self.brotli.unwrap_or(d.brotli),
            brotli_types: self.brotli_types.clone().unwrap_or(d.brotli_types),
            brotli_comp_level: self.brotli_comp_level.unwrap_or(d.brotli_comp_level),
            brotli_min_length: self.brotli_min_length.unwrap_or(d.brotli_min_length),
            brotli_static: self.brotli_static.unwrap_or(d.brotli_static),
        })
    }
}

impl Builder {
    /// The compression directives. `Ok(false)` when `d` is not one of them.
    pub(super) fn compress_directive(
        &mut self,
        d: &Directive,
        layer: &mut CompressLayer,
    ) -> Res<bool> {
        match d.name.as_str() {
            "gzip" | "gzip_vary" | "brotli" => {
                simple(d, 1, 1)?;
                let on = flag(d)?;
                let slot = match d.name.as_str() {
                    "gzip" => &mut layer.gzip,
                    "gzip_vary" => &mut layer.gzip_vary,
                    _ => &mut layer.brotli,
                };
                set_once(slot, on, d)?;
            }
            "gzip_types" | "brotli_types" => {
                simple(d, 1, usize::MAX)?;
                let mut t = Types {
                    any: false,
                    list: vec!["text/html".to_string()],
                };
                for a in &d.args {
                    if a.value == "*" {
                        t.any = true;
                    } else if !t.list.iter().any(|x| x.eq_ignore_ascii_case(&a.value)) {
                        t.list.push(a.value.to_ascii_lowercase());
                    }
                }
                let slot = if d.name == "gzip_types" {
                    &mut layer.gzip_types
                } else {
                    &mut layer.brotli_types
                };
                set_once(slot, t, d)?;
            }
            "gzip_min_length" | "brotli_min_length" => {
                simple(d, 1, 1)?;
                let n = size(d, arg(d, 0))?;
                let slot = if d.name == "gzip_min_length" {
                    &mut layer.gzip_min_length
                } else {
                    &mut layer.brotli_min_length
                };
                set_once(slot, n, d)?;
            }
            "gzip_comp_level" | "brotli_comp_level" => {
                simple(d, 1, 1)?;
                let n: u32 = number(d, arg(d, 0))?;
                let (lo, hi, slot) = if d.name == "gzip_comp_level" {
                    (1, 9, &mut layer.gzip_comp_level)
                } else {
                    (0, 11, &mut layer.brotli_comp_level)
                };
                if !(lo..=hi).contains(&n) {
                    return Err(err(format!("value must be between {lo} and {hi}"), d));
                }
                set_once(slot, n, d)?;
            }
            "gzip_proxied" => {
                simple(d, 1, usize::MAX)?;
                let mut p = Proxied::default();
                for a in &d.args {
                    let f = match a.value.as_str() {
                        "off" => &mut p.off,
                        "expired" => &mut p.expired,
                        "no-cache" => &mut p.no_cache,
                        "no-store" => &mut p.no_store,
                        "private" => &mut p.private,
                        "no_last_modified" => &mut p.no_last_modified,
                        "no_etag" => &mut p.no_etag,
                        "auth" => &mut p.auth,
                        "any" => &mut p.any,
                        other => {
                            return Err(err(
                                format!("invalid value \"{other}\" in \"gzip_proxied\" directive"),
                                d,
                            ))
                        }
                    };
                    *f = true;
                }
                set_once(&mut layer.gzip_proxied, p, d)?;
            }
            "gzip_disable" => {
                simple(d, 1, usize::MAX)?;
                let mut list = Vec::new();
                let mut msie6 = false;
                for a in &d.args {
                    if a.value == "msie6" {
                        msie6 = true;
                    } else {
                        list.push(compile_regex(d, &a.value, true)?);
                    }
                }
                set_once(&mut layer.gzip_disable, (list, msie6), d)?;
            }
            "gzip_http_version" => {
                simple(d, 1, 1)?;
                let v = match arg(d, 0) {
                    "1.0" => http::Version::HTTP_10,
                    "1.1" => http::Version::HTTP_11,
                    other => {
                        return Err(err(
                            format!("invalid value \"{other}\" in \"gzip_http_version\" directive"),
                            d,
                        ))
                    }
                };
                set_once(&mut layer.gzip_http_version, v, d)?;
            }
            "gzip_static" | "brotli_static" => {
                simple(d, 1, 1)?;
                let m = match arg(d, 0) {
                    "off" => StaticMode::Off,
                    "on" => StaticMode::On,
                    "always" => StaticMode::Always,
                    other => {
                        return Err(err(
                            format!("invalid value \"{other}\" in \"{}\" directive", d.name),
                            d,
                        ))
                    }
                };
                let slot = if d.name == "gzip_static" {
                    &mut layer.gzip_static
                } else {
                    &mut layer.brotli_static
                };
                set_once(slot, m, d)?;
            }
            "gzip_buffers" | "brotli_buffers" => {
                simple(d, 2, 2)?;
                number::<u64>(d, arg(d, 0))?;
                size(d, arg(d, 1))?;
                self.ignored(d, "compressed output is streamed");
            }
            "gzip_window" | "gzip_hash" | "brotli_window" => {
                simple(d, 1, 1)?;
                size(d, arg(d, 0))?;
                self.ignored(d, "the encoder's default window is used");
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::build::tests::ok;
    use crate::config::compress::StaticMode;

    #[test]
    fn gzip_directives_inherit_and_default_as_nginx() {
        let (c, w) = ok("http {
              gzip on; gzip_types text/css application/json; gzip_proxied expired no-cache auth;
              gzip_buffers 16 8k;
              server {
                location /a { gzip_comp_level 6; gzip_vary on; gzip_min_length 1k; }
                location /b { gzip off; gzip_disable msie6 \"curl\"; gzip_static always; }
                location /c { brotli on; brotli_types *; brotli_comp_level 4; }
              }
            }");
        assert_eq!(w.len(), 1, "gzip_buffers warns");
        let s = &c.http.servers[0];
        let a = &s.locations[0].conf.compress;
        assert!(a.gzip && a.gzip_vary);
        assert_eq!((a.gzip_comp_level, a.gzip_min_length), (6, 1024));
        assert!(a.gzip_types.matches(b"text/css; charset=utf-8"));
        assert!(a.gzip_types.matches(b"text/html"));
        assert!(!a.gzip_types.matches(b"image/png"));
        assert!(a.gzip_proxied.expired && a.gzip_proxied.no_cache && a.gzip_proxied.auth);
        assert!(!a.gzip_proxied.off);
        let b = &s.locations[1].conf.compress;
        assert!(!b.gzip && b.gzip_disable_msie6 && b.gzip_disable.len() == 1);
        assert_eq!(b.gzip_static, StaticMode::Always);
        let cc = &s.locations[2].conf.compress;
        assert!(cc.brotli && cc.brotli_types.matches(b"image/png"));
        assert_eq!(cc.brotli_comp_level, 4);
        // Defaults.
        let (c, _) = ok("http { server { } }");
        let d = &c.http.servers[0].conf.compress;
        assert!(!d.gzip && d.gzip_proxied.off && d.gzip_min_length == 20);
        assert_eq!(d.gzip_comp_level, 1);
        assert_eq!(d.gzip_http_version, http::Version::HTTP_11);
    }

    #[test]
    fn bad_values_are_nginx_errors() {
        let fails = |src: &str| {
            crate::config::load_str(src, std::path::Path::new("/etc/proxy/test.conf"))
                .expect_err("rejected")
                .to_string()
        };
        for (text, want) in [
            ("gzip_comp_level 10;", "value must be between 1 and 9"),
            (
                "gzip_proxied sometimes;",
                "invalid value \"sometimes\" in \"gzip_proxied\" directive",
            ),
            (
                "gzip_http_version 2.0;",
                "invalid value \"2.0\" in \"gzip_http_version\" directive",
            ),
            ("gzip maybe;", "it must be \"on\" or \"off\""),
        ] {
            let e = fails(&format!("http {{ {text} server {{ }} }}"));
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
