//! The directives of local file serving, written into a [`FilesLayer`] at
//! http, server or location level: `root`, `index`, `try_files`,
//! `default_type`, `types`, `charset`, `charset_types`, `etag`,
//! `if_modified_since`, `max_ranges`, `log_not_found`, `disable_symlinks`,
//! `autoindex*`, `sendfile`, `sendfile_max_chunk`, `tcp_nopush`,
//! `open_file_cache`, `open_file_cache_valid`, `_min_uses`, `_errors`;
//! `alias` (location only, [`alias`]). Relative paths
//! are taken from the directory of the file the directive is written in.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use super::args::{arg, block, err, flag, number, set_once, simple, size, template_arg, time};
use super::inherit::inherit_fields;
use super::{Builder, Res};
use crate::config::ast::Directive;
use crate::config::files::{
    AutoindexFormat, DocRoot, FilesConf, IfModifiedSince, MimeTypes, OpenFileCache, OpenFileLimits,
    PathPart, PathTemplate, TryFallback, TryFile, TryFiles,
};
use crate::config::template::Part;
use crate::config::LocationMatch;

/// The file settings written at one level; `None` = inherited.
#[derive(Debug, Clone, Default)]
pub(super) struct FilesLayer {
    pub(super) doc_root: Option<DocRoot>,
    index: Option<Vec<crate::config::Template>>,
    try_files: Option<TryFiles>,
    default_type: Option<HeaderValue>,
    types: Option<Arc<MimeTypes>>,
    charset: Option<Option<String>>,
    charset_types: Option<Vec<String>>,
    etag: Option<bool>,
    if_modified_since: Option<IfModifiedSince>,
    max_ranges: Option<Option<u32>>,
    log_not_found: Option<bool>,
    disable_symlinks: Option<bool>,
    autoindex: Option<bool>,
    autoindex_exact_size: Option<bool>,
    autoindex_localtime: Option<bool>,
    autoindex_format: Option<AutoindexFormat>,
    sendfile: Option<bool>,
    sendfile_max_chunk: Option<u64>,
    tcp_nopush: Option<bool>,
    /// `open_file_cache`: its store and `max`, `inactive` (`Some(None)`: off).
    open_file_cache: Option<Option<(Arc<()>, usize, Duration)>>,
    open_file_cache_valid: Option<Duration>,
    open_file_cache_min_uses: Option<u32>,
    open_file_cache_errors: Option<bool>,
}

impl FilesLayer {
    pub(super) fn inherit(&mut self, parent: &FilesLayer) {
        inherit_fields!(
            self,
            parent,
            doc_root,
            index,
            try_files,
            default_type,
            types,
            charset,
            charset_types,
            etag,
            if_modified_since,
            max_ranges,
            log_not_found,
            disable_symlinks,
            autoindex,
            autoindex_exact_size,
            autoindex_localtime,
            autoindex_format,
            sendfile,
            sendfile_max_chunk,
            tcp_nopush,
            open_file_cache,
            open_file_cache_valid,
            open_file_cache_min_uses,
            open_file_cache_errors
        );
    }

    /// The resolved settings, defaults filled in.
    pub(super) fn finish(&self) -> Arc<FilesConf> {
        let d = FilesConf::default();
        Arc::new(FilesConf {
            doc_root: self.doc_root.clone(),
            index: self.index.clone().unwrap_or(d.index),
            try_files: self.try_files.clone(),
            default_type: self.default_type.clone().unwrap_or(d.default_type),
            types: self.types.clone().unwrap_or(d.types),
            charset: self.charset.clone().unwrap_or(d.charset),
            charset_types: self.charset_types.clone().unwrap_or(d.charset_types),
            etag: self.etag.unwrap_or(d.etag),
            if_modified_since: self.if_modified_since.unwrap_or(d.if_modified_since),
            max_ranges: self.max_ranges.unwrap_or(d.max_ranges),
            log_not_found: self.log_not_found.unwrap_or(d.log_not_found),
            disable_symlinks: self.disable_symlinks.unwrap_or(d.disable_symlinks),
            autoindex: self.autoindex.unwrap_or(d.autoindex),
            autoindex_exact_size: self.autoindex_exact_size.unwrap_or(d.autoindex_exact_size),
            autoindex_localtime: self.autoindex_localtime.unwrap_or(d.autoindex_localtime),
            autoindex_format: self.autoindex_format.unwrap_or(d.autoindex_format),
            sendfile: self.sendfile.unwrap_or(d.sendfile),
            sendfile_max_chunk: self.sendfile_max_chunk.unwrap_or(d.sendfile_max_chunk),
            tcp_nopush: self.tcp_nopush.unwrap_or(d.tcp_nopush),
            open_file_cache: self.open_file_cache.clone().flatten().map(
                |(store, max, inactive)| OpenFileCache {
                    store,
                    limits: OpenFileLimits {
                        max,
                        inactive,
                        valid: self
                            .open_file_cache_valid
                            .unwrap_or(Duration::from_secs(60)),
                        min_uses: self.open_file_cache_min_uses.unwrap_or(1),
                        errors: self.open_file_cache_errors.unwrap_or(false),
                    },
                },
            ),
        })
    }
}

impl Builder {
    /// The file directives allowed at http, server and location level.
    /// `Ok(false)` when `d` is not one of them.
    pub(super) fn files_directive(&mut self, d: &Directive, layer: &mut FilesLayer) -> Res<bool> {
        match d.name.as_str() {
            "root" => {
                simple(d, 1, 1)?;
                if matches!(
                    layer.doc_root,
                    Some(DocRoot::AliasRegex(_) | DocRoot::Alias { .. })
                ) {
                    return Err(err("\"root\" directive is duplicate, \"alias\" directive was specified earlier", d));
                }
                let path = path_template(d, arg(d, 0), false)?;
                set_once(&mut layer.doc_root, DocRoot::Root(path), d)?;
            }
            "index" => {
                simple(d, 1, usize::MAX)?;
                let mut list = Vec::new();
                for a in &d.args {
                    if a.value.is_empty() {
                        return Err(err(
                            format!("index \"{}\" in \"index\" directive is invalid", a.value),
                            d,
                        ));
                    }
                    list.push(template_arg(d, &a.value)?);
                }
                // nginx appends every `index` line of one level.
                layer.index.get_or_insert_with(Vec::new).extend(list);
            }
            "try_files" => {
                simple(d, 2, usize::MAX)?;
                set_once(&mut layer.try_files, try_files(d)?, d)?;
            }
            "default_type" => {
                simple(d, 1, 1)?;
                let ty = mime_type(arg(d, 0), d)?;
                set_once(&mut layer.default_type, ty, d)?;
            }
            "types" => {
                let body = block(d, 0, 0)?;
                let mut map = MimeTypes::default();
                for t in body {
                    if t.block.is_some() || t.args.is_empty() {
                        return Err(err(
                            format!("invalid number of arguments in \"{}\" directive", t.name),
                            t,
                        ));
                    }
                    let ty = mime_type(&t.name, t)?;
                    for ext in &t.args {
                        let ext = ext.value.to_ascii_lowercase();
                        if let Some(previous) = map.get(&ext) {
                            let previous = String::from_utf8_lossy(HeaderValue::as_bytes(previous));
                            self.warn(t, &format!("duplicate extension \"{ext}\", content type: \"{}\", previous content type: \"{previous}\"", t.name));
                        }
                        map.insert(ext, ty.clone());
                    }
                }
                set_once(&mut layer.types, Arc::new(map), d)?;
            }
            "charset" => {
                simple(d, 1, 1)?;
                let v = arg(d, 0);
                // It ends up in `Content-Type` values: refused here when it
                // could not be sent, as a MIME type.
                if HeaderValue::from_str(v).is_err() {
                    return Err(err(format!("invalid charset \"{}\"", v.escape_debug()), d));
                }
                let cs = (v != "off").then(|| v.to_string());
                set_once(&mut layer.charset, cs, d)?;
            }
            "charset_types" => {
                simple(d, 1, usize::MAX)?;
                let list = d.args.iter().map(|a| a.value.clone()).collect();
                set_once(&mut layer.charset_types, list, d)?;
            }
            "etag"
            | "log_not_found"
            | "autoindex"
            | "autoindex_exact_size"
            | "autoindex_localtime"
            | "sendfile"
            | "tcp_nopush"
            | "open_file_cache_errors" => {
                simple(d, 1, 1)?;
                let on = flag(d)?;
                if on && d.name == "autoindex_localtime" {
                    self.warn(
                        d,
                        "\"autoindex_localtime on\" shows UTC: the proxy's local time is UTC (as $time_local)",
                    );
                }
                let slot = match d.name.as_str() {
                    "etag" => &mut layer.etag,
                    "log_not_found" => &mut layer.log_not_found,
                    "autoindex" => &mut layer.autoindex,
                    "autoindex_exact_size" => &mut layer.autoindex_exact_size,
                    "sendfile" => &mut layer.sendfile,
                    "tcp_nopush" => &mut layer.tcp_nopush,
                    "open_file_cache_errors" => &mut layer.open_file_cache_errors,
                    _ => &mut layer.autoindex_localtime,
                };
                set_once(slot, on, d)?;
            }
            "autoindex_format" => {
                simple(d, 1, 1)?;
                let f = match arg(d, 0) {
                    "html" => AutoindexFormat::Html,
                    "json" => AutoindexFormat::Json,
                    "xml" | "jsonp" => {
                        return Err(err(
                            format!(
                                "\"autoindex_format {}\" is not supported (html and json are)",
                                arg(d, 0)
                            ),
                            d,
                        ))
                    }
                    other => {
                        return Err(err(
                            format!("invalid value \"{other}\" in \"autoindex_format\" directive"),
                            d,
                        ))
                    }
                };
                set_once(&mut layer.autoindex_format, f, d)?;
            }
            "if_modified_since" => {
                simple(d, 1, 1)?;
                let v = match arg(d, 0) {
                    "off" => IfModifiedSince::Off,
                    "exact" => IfModifiedSince::Exact,
                    "before" => IfModifiedSince::Before,
                    other => return Err(err(format!("invalid value \"{other}\" in \"if_modified_since\" directive, it must be \"off\", \"exact\" or \"before\""), d)),
                };
                set_once(&mut layer.if_modified_since, v, d)?;
            }
            "open_file_cache" => {
                simple(d, 1, 2)?;
                let cache = super::tuning::cache_params(d, false)?.map(|(max, inactive)| {
                    (
                        Arc::new(()),
                        usize::try_from(max).unwrap_or(usize::MAX),
                        inactive,
                    )
                });
                set_once(&mut layer.open_file_cache, cache, d)?;
            }
            "open_file_cache_valid" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.open_file_cache_valid, time(d, arg(d, 0))?, d)?;
            }
            "open_file_cache_min_uses" => {
                simple(d, 1, 1)?;
                let n: u32 = number(d, arg(d, 0))?;
                set_once(&mut layer.open_file_cache_min_uses, n, d)?;
            }
            "sendfile_max_chunk" => {
                simple(d, 1, 1)?;
                set_once(&mut layer.sendfile_max_chunk, size(d, arg(d, 0))?, d)?;
            }
            "max_ranges" => {
                simple(d, 1, 1)?;
                let n: u32 = number(d, arg(d, 0))?;
                set_once(&mut layer.max_ranges, Some(n), d)?;
            }
            "disable_symlinks" => {
                simple(d, 1, 2)?;
                let on = match arg(d, 0) {
                    "off" => false,
                    "on" => true,
                    "if_not_owner" => {
                        return Err(err(
                            "\"disable_symlinks if_not_owner\" is not supported (off and on are)",
                            d,
                        ))
                    }
                    other => {
                        return Err(err(
                            format!("invalid value \"{other}\" in \"disable_symlinks\" directive"),
                            d,
                        ))
                    }
                };
                if d.args.len() == 2 {
                    return Err(err("\"disable_symlinks ... from=\" is not supported: \"on\" checks every component", d));
                }
                set_once(&mut layer.disable_symlinks, on, d)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `try_files FILE ... =CODE|URI|@NAME`.
/// A MIME type of `types` or `default_type`, as the `Content-Type` value it
/// becomes (a control character in it could not be sent).
fn mime_type(name: &str, d: &Directive) -> Res<HeaderValue> {
    HeaderValue::from_str(name)
        .map_err(|_| err(format!("invalid MIME type \"{}\"", name.escape_debug()), d))
}

fn try_files(d: &Directive) -> Res<TryFiles> {
    let n = d.args.len();
    let mut files = Vec::new();
    for a in d.args.iter().take(n.saturating_sub(1)) {
        // nginx strips the `/` of `$uri/` and remembers the directory test.
        let (text, dir) = match a.value.strip_suffix('/') {
            Some(text) => (text, true),
            None => (a.value.as_str(), false),
        };
        files.push(TryFile {
            name: template_arg(d, text)?,
            dir,
        });
    }
    let last = arg(d, n.saturating_sub(1));
    let fallback = if let Some(code) = last.strip_prefix('=') {
        match code.parse::<u16>() {
            Ok(c) if (100..=999).contains(&c) && code.bytes().all(|b| b.is_ascii_digit()) => {
                TryFallback::Code(c)
            }
            _ => return Err(err(format!("invalid code \"{last}\""), d)),
        }
    } else if let Some(name) = last.strip_prefix('@') {
        TryFallback::Named(name.to_string())
    } else {
        TryFallback::Uri(template_arg(d, last)?)
    };
    Ok(TryFiles { files, fallback })
}

/// A `root` or `alias` path: `$1`..`$9` are captures (only in a regex
/// location, `captures`), the rest nginx variables. A relative path is
/// taken from the directory of the file the directive is in.
pub(super) fn path_template(d: &Directive, value: &str, captures: bool) -> Res<PathTemplate> {
    let mut text = value.to_string();
    if !text.starts_with('/') && !text.starts_with('$') {
        if let Some(dir) = d.span.file.parent() {
            let dir = dir.to_string_lossy();
            let sep = if dir.is_empty() || dir.ends_with('/') {
                ""
            } else {
                "/"
            };
            text = format!("{dir}{sep}{text}");
        }
    }
    let mut parts = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let at = rest
            .char_indices()
            .find(|&(i, c)| {
                c == '$'
                    && rest
                        .as_bytes()
                        .get(i + 1)
                        .is_some_and(|b| b.is_ascii_digit())
            })
            .map(|(i, _)| i);
        let (lit, after) = match at {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !lit.is_empty() {
            parts.push(PathPart::Text(template_arg(d, lit)?));
        }
        if after.is_empty() {
            break;
        }
        let n = usize::from(after.as_bytes().get(1).copied().unwrap_or(b'0') - b'0');
        if !captures {
            return Err(err(
                format!(
                    "capture \"${n}\" in \"{}\" outside a regex location is not supported",
                    d.name
                ),
                d,
            ));
        }
        parts.push(PathPart::Capture(n));
        rest = after.get(2..).unwrap_or_default();
    }
    if parts.iter().all(
        |p| matches!(p, PathPart::Text(t) if t.parts.iter().all(|x| matches!(x, Part::Literal(_)))),
    ) && text.is_empty()
    {
        return Err(err(
            format!("invalid value \"\" in \"{}\" directive", d.name),
            d,
        ));
    }
    Ok(PathTemplate {
        source: text,
        parts,
    })
}

/// `alias PATH` in a location matched by `matcher`.
pub(super) fn alias(d: &Directive, layer: &mut FilesLayer, matcher: &LocationMatch) -> Res<()> {
    simple(d, 1, 1)?;
    match layer.doc_root {
        Some(DocRoot::Root(_)) => {
            return Err(err(
                "\"alias\" directive is duplicate, \"root\" directive was specified earlier",
                d,
            ))
        }
        Some(_) => return Err(err("\"alias\" directive is duplicate", d)),
        None => {}
    }
    let root = match matcher {
        LocationMatch::Regex { .. } => DocRoot::AliasRegex(path_template(d, arg(d, 0), true)?),
        LocationMatch::Exact(uri) | LocationMatch::Prefix { uri, .. } => DocRoot::Alias {
            path: path_template(d, arg(d, 0), false)?,
            prefix_len: uri.len(),
        },
    };
    layer.doc_root = Some(root);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{fails, ok};

    #[test]
    fn sendfile_directives_inherit_and_default_as_nginx() {
        let (c, w) = ok("http {
              sendfile on; sendfile_max_chunk 512k;
              server {
                location /a { tcp_nopush on; }
                location /b { sendfile off; sendfile_max_chunk 0; }
              }
            }");
        assert!(w.is_empty(), "{w:?}");
        let s = &c.http.servers[0];
        let a = &s.locations[0].conf.files;
        assert!(a.sendfile && a.tcp_nopush);
        assert_eq!(a.sendfile_max_chunk, 512 * 1024);
        let b = &s.locations[1].conf.files;
        assert!(!b.sendfile && !b.tcp_nopush);
        assert_eq!(b.sendfile_max_chunk, 0);
        // nginx's defaults: off, 2m, off.
        let (c, _) = ok("http { server { } }");
        let d = &c.http.servers[0].conf.files;
        assert!(!d.sendfile && !d.tcp_nopush);
        assert_eq!(d.sendfile_max_chunk, 2 * 1024 * 1024);
    }

    #[test]
    fn open_file_cache_inherits_and_shares_its_store_below_it() {
        use std::sync::Arc;
        use std::time::Duration;
        let (c, w) = ok("http {
              open_file_cache max=100 inactive=20s; open_file_cache_valid 30s;
              server {
                open_file_cache_min_uses 2;
                location /a { open_file_cache_errors on; }
                location /b { open_file_cache off; }
                location /c { open_file_cache max=5; }
              }
              server { }
            }");
        assert!(w.is_empty(), "{w:?}");
        let s = &c.http.servers[0];
        let a = s.locations[0].conf.files.open_file_cache.as_ref().unwrap();
        assert_eq!(
            (
                a.limits.max,
                a.limits.inactive,
                a.limits.valid,
                a.limits.min_uses,
                a.limits.errors
            ),
            (
                100,
                Duration::from_secs(20),
                Duration::from_secs(30),
                2,
                true
            )
        );
        assert!(s.locations[1].conf.files.open_file_cache.is_none());
        let own = s.locations[2].conf.files.open_file_cache.as_ref().unwrap();
        // nginx's default inactive is 60 s; a cache of its own.
        assert_eq!(
            (own.limits.max, own.limits.inactive),
            (5, Duration::from_secs(60))
        );
        assert!(!Arc::ptr_eq(&own.store, &a.store));
        let other = c.http.servers[1]
            .conf
            .files
            .open_file_cache
            .as_ref()
            .unwrap();
        assert!(Arc::ptr_eq(&other.store, &a.store));
        assert_eq!((other.limits.min_uses, other.limits.errors), (1, false));
        // Off by default.
        let (c, _) = ok("http { server { } }");
        assert!(c.http.servers[0].conf.files.open_file_cache.is_none());
    }

    #[test]
    fn bad_open_file_cache_values_are_nginx_errors() {
        for (conf, e) in [
            ("http { open_file_cache max=x; }", "invalid \"open_file_cache\" parameter \"max=x\" in /etc/proxy/test.conf:1"),
            ("http { open_file_cache_valid soon; }", "\"open_file_cache_valid\" directive invalid value in /etc/proxy/test.conf:1"),
            ("http { open_file_cache_min_uses -1; }", "\"open_file_cache_min_uses\" directive invalid number in /etc/proxy/test.conf:1"),
            ("http { open_file_cache_errors maybe; }", "invalid value \"maybe\" in \"open_file_cache_errors\" directive, it must be \"on\" or \"off\" in /etc/proxy/test.conf:1"),
        ] {
            assert_eq!(fails(conf), e, "{conf}");
        }
    }

    #[test]
    fn bad_sendfile_values_are_nginx_errors() {
        assert_eq!(
            fails("http { sendfile yes; }"),
            "invalid value \"yes\" in \"sendfile\" directive, it must be \"on\" or \"off\" in /etc/proxy/test.conf:1"
        );
        assert_eq!(
            fails("http { server { sendfile_max_chunk 2q; } }"),
            "\"sendfile_max_chunk\" directive invalid value in /etc/proxy/test.conf:1"
        );
        assert_eq!(
            fails("http { tcp_nopush on; tcp_nopush off; }"),
            "\"tcp_nopush\" directive is duplicate in /etc/proxy/test.conf:1"
        );
    }

    #[test]
    fn mime_types_become_content_type_values() {
        let (c, w) = ok("http {
              types { text/html html htm; text/css css; image/png PNG; }
              default_type application/octet-stream;
              server {
                location /u { charset utf-8; }
                location /d { types { } default_type text/plain; charset koi8-r; }
              }
            }");
        assert!(w.is_empty(), "{w:?}");
        let s = &c.http.servers[0];
        let (plain, utf8, d) = (
            &s.conf.files,
            &s.locations[0].conf.files,
            &s.locations[1].conf.files,
        );
        for (files, name, want) in [
            (plain, "/a.html", "text/html"),
            (plain, "/a.HTM", "text/html"),
            (plain, "/x/a.png", "image/png"),
            (plain, "/a.css", "text/css"),
            (plain, "/a.bin", "application/octet-stream"),
            (plain, "/a", "application/octet-stream"),
            (plain, "/a.d/b", "application/octet-stream"),
            // `charset` applies to `charset_types` only (text/html by default,
            // not text/css).
            (utf8, "/a.html", "text/html; charset=utf-8"),
            (utf8, "/a.css", "text/css"),
            (d, "/a.html", "text/plain; charset=koi8-r"),
        ] {
            assert_eq!(files.content_type(name.as_bytes()), want, "{name}");
        }
    }

    #[test]
    fn a_mime_type_or_charset_that_cannot_be_a_header_value_is_refused() {
        assert_eq!(
            fails("http { types { \"text/\\nhtml\" html; } }"),
            "invalid MIME type \"text/\\nhtml\" in /etc/proxy/test.conf:1"
        );
        assert_eq!(
            fails("http { default_type \"a\\rb\"; }"),
            "invalid MIME type \"a\\rb\" in /etc/proxy/test.conf:1"
        );
        assert_eq!(
            fails("http { charset \"a\\rb\"; }"),
            "invalid charset \"a\\rb\" in /etc/proxy/test.conf:1"
        );
    }
}
