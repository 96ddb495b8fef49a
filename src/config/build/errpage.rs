//! `error_page CODE ... [=[CODE]] URI|@name|URL` (nginx's syntax, checks and
//! texts) and the flags that go with it (`proxy_intercept_errors`,
//! `recursive_error_pages`), written into a level's [`Layer`].

use super::args::{arg, err, flag, set_once, simple, template_arg};
use super::inherit::Layer;
use super::Res;
use crate::config::ast::Directive;
use crate::config::rewrite::{ErrorPage, ErrorTarget, Overwrite};

/// Handles the error-page directives; `Ok(false)` when `d` is none of them.
pub(super) fn errpage_directive(d: &Directive, layer: &mut Layer) -> Res<bool> {
    match d.name.as_str() {
        "error_page" => {
            let pages = error_page(d)?;
            layer.error_pages.get_or_insert_with(Vec::new).extend(pages);
        }
        "proxy_intercept_errors" => {
            simple(d, 1, 1)?;
            set_once(&mut layer.intercept_errors, flag(d)?, d)?;
        }
        "recursive_error_pages" => {
            simple(d, 1, 1)?;
            set_once(&mut layer.recursive_error_pages, flag(d)?, d)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// One `error_page` line: an entry per status.
fn error_page(d: &Directive) -> Res<Vec<ErrorPage>> {
    simple(d, 2, usize::MAX)?;
    let last = d.args.len() - 1;
    let invalid = |v: &str| err(format!("invalid value \"{v}\""), d);
    let (overwrite, codes_end) = match arg(d, last - 1).strip_prefix('=') {
        Some(_) if last == 1 => return Err(invalid(arg(d, last - 1))),
        Some("") => (Overwrite::Page, last - 1),
        Some(code) => match status_number(code) {
            Some(c) => (Overwrite::Code(c), last - 1),
            None => return Err(invalid(arg(d, last - 1))),
        },
        None => (Overwrite::Keep, last),
    };
    let uri = arg(d, last);
    let target = if uri.starts_with('/') {
        ErrorTarget::Uri(template_arg(d, uri)?)
    } else if uri.starts_with('@') {
        ErrorTarget::Named(uri.to_string())
    } else {
        ErrorTarget::Redirect(template_arg(d, uri)?)
    };
    let mut out = Vec::with_capacity(codes_end);
    for a in d.args.iter().take(codes_end) {
        let status = match status_number(&a.value) {
            Some(s) if s != 499 => s,
            _ => return Err(invalid(&a.value)),
        };
        if !(300..=599).contains(&status) {
            return Err(err(
                format!("value \"{}\" must be between 300 and 599", a.value),
                d,
            ));
        }
        // nginx answers these (its own 494-497) as 400 unless told otherwise.
        let overwrite = match (overwrite, status) {
            (Overwrite::Keep, 494..=497) => Overwrite::Code(400),
            (o, _) => o,
        };
        out.push(ErrorPage {
            status,
            overwrite,
            target: target.clone(),
        });
    }
    Ok(out)
}

fn status_number(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use crate::config::build::tests::{fails, ok};
    use crate::config::rewrite::{ErrorTarget, Overwrite};

    fn pages(conf: &crate::config::LocationConf) -> Vec<(u16, Overwrite, String)> {
        conf.redirect
            .error_pages
            .iter()
            .map(|p| {
                let target = match &p.target {
                    ErrorTarget::Uri(t) => format!("uri {}", t.source),
                    ErrorTarget::Named(n) => format!("named {n}"),
                    ErrorTarget::Redirect(t) => format!("redirect {}", t.source),
                };
                (p.status, p.overwrite, target)
            })
            .collect()
    }

    #[test]
    fn error_page_forms_and_inheritance() {
        let (c, _) = ok("http {
              error_page 500 502 /50x.html;
              server {
                location /a { }
                location /b { error_page 404 =200 @fallback; error_page 403 = /x?y=1; }
                location /c { error_page 502 http://example.com/; proxy_intercept_errors on; }
                location @fallback { return 204; }
              }
            }");
        let s = &c.http.servers[0];
        let uri = |t: &str| format!("uri {t}");
        assert_eq!(
            pages(&s.conf),
            [
                (500, Overwrite::Keep, uri("/50x.html")),
                (502, Overwrite::Keep, uri("/50x.html"))
            ]
        );
        assert_eq!(pages(&s.locations[0].conf), pages(&s.conf));
        assert_eq!(
            pages(&s.locations[1].conf),
            [
                (404, Overwrite::Code(200), "named @fallback".to_string()),
                (403, Overwrite::Page, uri("/x?y=1"))
            ]
        );
        assert_eq!(
            pages(&s.locations[2].conf),
            [(
                502,
                Overwrite::Keep,
                "redirect http://example.com/".to_string()
            )]
        );
        assert!(s.locations[2].conf.redirect.intercept_errors);
        assert!(!s.locations[1].conf.redirect.intercept_errors);
        assert_eq!(s.named.len(), 1);
        assert_eq!(s.named[0].name, "@fallback");
    }

    #[test]
    fn error_page_errors_are_nginx_texts() {
        let cases = [
            ("error_page 404;", "invalid number of arguments in \"error_page\" directive"),
            ("error_page 200 /x;", "value \"200\" must be between 300 and 599"),
            ("error_page 499 /x;", "invalid value \"499\""),
            ("error_page abc /x;", "invalid value \"abc\""),
            ("error_page =200 /x;", "invalid value \"=200\""),
            ("error_page 404 =2x /x;", "invalid value \"=2x\""),
            (
                "proxy_intercept_errors maybe;",
                "invalid value \"maybe\" in \"proxy_intercept_errors\" directive, it must be \"on\" or \"off\"",
            ),
        ];
        for (line, message) in cases {
            let text = format!("http {{ server {{ location / {{ {line} }} }} }}");
            let e = fails(&text);
            assert!(e.contains(message), "{line}: {e}");
        }
    }
}
