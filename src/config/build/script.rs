//! The rewrite module's statements in a `server`, `location` or `if` block:
//! `rewrite REGEX REPLACEMENT [last|break|redirect|permanent]`, `set`, `break`,
//! `if (CONDITION) { ... }` (with `return` among them), in order, as a
//! [`Script`]; and the `rewrite_log` / `uninitialized_variable_warn` flags.
//! An `if` in a location is a nested location of its own (nginx's "if is
//! evil"): its settings replace the location's when its condition holds.

use std::sync::Arc;

use super::args::{arg, compile_regex, err, flag, not_allowed, set_once, simple, template_arg};
use super::inherit::Layer;
use super::uservars;
use super::{Builder, HttpState, Res};
use crate::config::ast::Directive;
use crate::config::rewrite::{Condition, FileTest, Op, Pattern, RewriteFlag};
use crate::config::{ProxyPass, Template};

/// True for the statements [`Builder::script`] builds.
pub(super) fn is_statement(name: &str) -> bool {
    matches!(name, "rewrite" | "set" | "break" | "if")
}

/// `rewrite_log` and `uninitialized_variable_warn` (http, server, location,
/// if); `Ok(false)` when `d` is neither.
pub(super) fn script_flag(b: &mut Builder, d: &Directive, layer: &mut Layer) -> Res<bool> {
    match d.name.as_str() {
        "rewrite_log" => {
            simple(d, 1, 1)?;
            set_once(&mut layer.rewrite_log, flag(d)?, d)?;
        }
        "uninitialized_variable_warn" => {
            simple(d, 1, 1)?;
            flag(d)?;
            b.ignored(
                d,
                "reading an unset variable gives an empty value, never logged",
            );
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// What an `if` block in a location inherits: the location's layer and its
/// `proxy_pass` (nginx hands both to the `if`'s nested location).
pub(super) struct IfParent<'a> {
    pub(super) layer: &'a Layer,
    pub(super) proxy_pass: &'a Option<ProxyPass>,
}

impl Builder {
    /// The statements of `body` in order; `parent` is `Some` in a location
    /// (an `if` there gets settings of its own), `None` in a server.
    pub(super) fn script(
        &mut self,
        body: &[Directive],
        parent: Option<&IfParent<'_>>,
        st: &mut HttpState,
    ) -> Res<Vec<Op>> {
        let mut ops = Vec::new();
        for d in body {
            match d.name.as_str() {
                "rewrite" => ops.push(rewrite(d)?),
                "set" => ops.push(set(d)?),
                "break" => {
                    simple(d, 0, 0)?;
                    ops.push(Op::Break);
                }
                "return" => {
                    let mut slot = None;
                    self.return_directive(d, &mut slot)?;
                    if let Some(ret) = slot {
                        ops.push(Op::Return(ret));
                    }
                }
                "if" => ops.push(self.if_block(d, parent, st)?),
                _ => {}
            }
        }
        Ok(ops)
    }

    fn if_block(
        &mut self,
        d: &Directive,
        parent: Option<&IfParent<'_>>,
        st: &mut HttpState,
    ) -> Res<Op> {
        let Some(body) = &d.block else {
            return Err(err("directive \"if\" has no opening \"{\"", d));
        };
        if d.args.is_empty() {
            return Err(err("invalid number of arguments in \"if\" directive", d));
        }
        let cond = condition(d)?;
        let mut layer = Layer::default();
        let mut proxy_pass = None;
        for x in body {
            let name = x.name.as_str();
            if is_statement(name) && name != "if" || name == "return" {
                continue;
            }
            let in_location = parent.is_some();
            match name {
                "proxy_pass" if in_location => {
                    let pp = super::location::proxy_pass_directive(x, true, st)?;
                    set_once(&mut proxy_pass, pp, x)?;
                }
                "error_page" | "access_log" if in_location => {
                    self.common(x, &mut layer, st)?;
                }
                "add_header" | "add_trailer" | "expires" if in_location => {
                    self.response_headers(x, &mut layer)?;
                }
                "rewrite_log" | "uninitialized_variable_warn" => {
                    script_flag(self, x, &mut layer)?;
                }
                _ => return Err(not_allowed(x)),
            }
        }
        let ops: Arc<[Op]> = self.script(body, None, st)?.into();
        let conf = match parent {
            Some(p) => {
                let merged = layer.inherit(p.layer);
                let mut conf = merged.finish(proxy_pass.or_else(|| p.proxy_pass.clone()), None);
                conf.proxy_ssl = self.backend_tls(&merged.proxy_ssl, conf.proxy_pass.as_ref())?;
                conf.redirect.script = ops.clone();
                Some(Arc::new(conf))
            }
            None => None,
        };
        Ok(Op::If {
            cond,
            body: ops,
            conf,
        })
    }
}

/// A regex of the rewrite module, with the user variables of its named groups.
pub(super) fn pattern(d: &Directive, source: &str, case_insensitive: bool) -> Res<Pattern> {
    let re = compile_regex(d, source, case_insensitive)?;
    let named = re
        .capture_names()
        .enumerate()
        .filter_map(|(i, n)| n.and_then(uservars::index).map(|v| (i, v)))
        .collect();
    Ok(Pattern { re, named })
}

fn rewrite(d: &Directive) -> Res<Op> {
    simple(d, 2, 3)?;
    let re = pattern(d, arg(d, 0), false)?;
    let mut text = arg(d, 1);
    let keep_args = match text.strip_suffix('?') {
        Some(t) => {
            text = t;
            false
        }
        None => true,
    };
    let replacement = template_arg(d, text)?;
    let flag = match d.args.get(2).map(|a| a.value.as_str()) {
        None => RewriteFlag::Next,
        Some("last") => RewriteFlag::Last,
        Some("break") => RewriteFlag::Break,
        Some("redirect") => RewriteFlag::Redirect,
        Some("permanent") => RewriteFlag::Permanent,
        Some(other) => return Err(err(format!("invalid parameter \"{other}\""), d)),
    };
    Ok(Op::Rewrite {
        re,
        replacement,
        flag,
        keep_args,
    })
}

fn set(d: &Directive) -> Res<Op> {
    simple(d, 2, 2)?;
    Ok(Op::Set {
        var: settable(d, arg(d, 0))?,
        value: template_arg(d, arg(d, 1))?,
    })
}

/// The user variable `name` (`$x`) that `d` sets (`set`, `auth_request_set`),
/// with nginx's errors for a name without `$` or a built-in variable.
pub(super) fn settable(d: &Directive, name: &str) -> Res<u16> {
    let Some(bare) = name.strip_prefix('$') else {
        return Err(err(format!("invalid variable name \"{name}\""), d));
    };
    uservars::index(bare).ok_or_else(|| err(format!("the duplicate \"{bare}\" variable"), d))
}

/// `if (...)`'s condition from its arguments (the parentheses may be glued to
/// the first and last ones or stand alone).
fn condition(d: &Directive) -> Res<Condition> {
    let mut args: Vec<&str> = d.args.iter().map(|a| a.value.as_str()).collect();
    let first = args.first().copied().unwrap_or_default();
    let Some(rest) = first.strip_prefix('(') else {
        return Err(err(format!("invalid condition \"{first}\""), d));
    };
    args[0] = rest;
    let last_i = args.len() - 1;
    let last = args[last_i];
    let Some(rest) = last.strip_suffix(')') else {
        return Err(err(format!("invalid condition \"{last}\""), d));
    };
    args[last_i] = rest;
    // A parenthesis standing alone leaves an empty word: dropped (an empty
    // quoted operand, `$a != ""`, stays).
    if args.len() > 1 && args.last().is_some_and(|a| a.is_empty()) {
        args.pop();
    }
    if args.len() > 1 && args.first().is_some_and(|a| a.is_empty()) {
        args.remove(0);
    }
    let var = |a: &str| -> Res<Template> {
        if !a.starts_with('$') {
            return Err(err(format!("invalid condition \"{a}\""), d));
        }
        template_arg(d, a)
    };
    match args.as_slice() {
        [v] => Ok(Condition::Value(var(v)?)),
        [op, path] => {
            let (negate, op) = match op.strip_prefix('!') {
                Some(o) => (true, o),
                None => (false, *op),
            };
            let test = match op {
                "-f" => FileTest::File,
                "-d" => FileTest::Dir,
                "-e" => FileTest::Exists,
                "-x" => FileTest::Executable,
                _ => return Err(err(format!("invalid condition \"{op}\""), d)),
            };
            Ok(Condition::File {
                test,
                path: template_arg(d, path)?,
                negate,
            })
        }
        [v, op, operand] => {
            let value = var(v)?;
            match *op {
                "=" | "!=" => Ok(Condition::Equals {
                    value,
                    text: template_arg(d, operand)?,
                    negate: *op == "!=",
                }),
                "~" | "~*" | "!~" | "!~*" => Ok(Condition::Matches {
                    value,
                    re: pattern(d, operand, op.ends_with('*'))?,
                    negate: op.starts_with('!'),
                }),
                _ => Err(err(format!("unexpected \"{op}\" in condition"), d)),
            }
        }
        _ => Err(err(format!("invalid condition \"{}\"", arg(d, 0)), d)),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::build::tests::{fails, ok};
    use crate::config::rewrite::{Condition, Op, RewriteFlag};

    #[test]
    fn statements_keep_their_order_and_forms() {
        let (c, _) = ok("http { server {
              set $s 1;
              location /a {
                rewrite ^/a/(?<rest>.*)$ /b/$rest? last;
                if ($s = 1) { set $t \"$1\"; return 204; }
                set $t x;
                break;
                return 404;
              }
              location /b { return 200; }
            } }");
        let server = &c.http.servers[0];
        assert!(matches!(&server.conf.redirect.script[..], [Op::Set { .. }]));
        let a = &server.locations[0].conf;
        assert!(a.return_.is_none(), "return is in the script");
        let kinds: Vec<&str> = a
            .redirect
            .script
            .iter()
            .map(|op| match op {
                Op::Rewrite {
                    flag,
                    keep_args,
                    re,
                    ..
                } => {
                    assert_eq!((*flag, *keep_args), (RewriteFlag::Last, false));
                    assert_eq!(re.named.len(), 1);
                    "rewrite"
                }
                Op::If { cond, body, conf } => {
                    assert!(matches!(cond, Condition::Equals { negate: false, .. }));
                    assert_eq!(body.len(), 2);
                    assert!(conf.is_some());
                    "if"
                }
                Op::Set { .. } => "set",
                Op::Break => "break",
                Op::Return(_) => "return",
            })
            .collect();
        assert_eq!(kinds, ["rewrite", "if", "set", "break", "return"]);
        // A lone return stays the location's plain return.
        let b = &server.locations[1].conf;
        assert!(b.redirect.script.is_empty() && b.return_.is_some());
    }

    #[test]
    fn an_if_in_a_location_has_its_own_response_headers() {
        let (c, _) = ok("http { server { location / {
              add_header X-Outer a;
              if ($request_method = OPTIONS) {
                add_header X-Inner b always;
                expires 1h;
                return 204;
              }
              if ($request_method = HEAD) { return 200; }
            } } }");
        let confs: Vec<_> = c.http.servers[0].locations[0]
            .conf
            .redirect
            .script
            .iter()
            .filter_map(|op| match op {
                Op::If { conf, .. } => conf.clone(),
                _ => None,
            })
            .collect();
        let names = |i: usize| -> Vec<String> {
            confs[i]
                .add_headers
                .iter()
                .map(|h| h.name.name().to_string())
                .collect()
        };
        assert_eq!(
            names(0),
            ["x-inner"],
            "its own list replaces the location's"
        );
        assert_ne!(confs[0].expires, crate::config::Expires::Off);
        assert_eq!(names(1), ["x-outer"], "inherited when it has none");
    }

    #[test]
    fn conditions_parse_as_nginx() {
        let (c, _) = ok("http { server { location / {
              if ($x) { }
              if ( $x = a ) { }
              if ($x != \"a b\") { }
              if ($x ~* ^a) { }
              if ($x !~ b) { }
              if (-f /etc/passwd) { }
              if (!-d $uri) { }
              if ($request_method = 'OPTIONS') { }
              if ($cookie_test != \"\") { }
              set $x 1;
            } } }");
        let conds: Vec<String> = c.http.servers[0].locations[0]
            .conf
            .redirect
            .script
            .iter()
            .filter_map(|op| match op {
                Op::If { cond, .. } => Some(match cond {
                    Condition::Value(_) => "value".to_string(),
                    Condition::Equals { negate, .. } => format!("eq {negate}"),
                    Condition::Matches { negate, re, .. } => {
                        format!("re {negate} {}", re.re.as_str())
                    }
                    Condition::File { test, negate, .. } => format!("file {test:?} {negate}"),
                }),
                _ => None,
            })
            .collect();
        assert_eq!(
            conds,
            [
                "value",
                "eq false",
                "eq true",
                "re false (?i)^a",
                "re true b",
                "file File false",
                "file Dir true",
                "eq false",
                "eq true"
            ]
        );
    }

    #[test]
    fn errors_are_nginx_texts() {
        let cases = [
            (
                "rewrite ^/a;",
                "invalid number of arguments in \"rewrite\" directive",
            ),
            ("rewrite ^/a /b last2;", "invalid parameter \"last2\""),
            ("rewrite ^/(a /b;", "regex \"^/(a\" compile failed"),
            ("set x 1;", "invalid variable name \"x\""),
            ("set $uri 1;", "the duplicate \"uri\" variable"),
            ("if ($a = b { }", "invalid condition \"b\""),
            ("if ($a <> b) { }", "unexpected \"<>\" in condition"),
            ("if (a) { }", "invalid condition \"a\""),
            ("if (-q /x) { }", "invalid condition \"-q\""),
            (
                "if ($a) { proxy_set_header A b; }",
                "\"proxy_set_header\" directive is not allowed here",
            ),
            (
                "if ($a) { if ($b) { } }",
                "\"if\" directive is not allowed here",
            ),
            (
                "if ($a) { proxy_pass http://127.0.0.1:1/x; }",
                "cannot have URI part",
            ),
            ("return 200 $nope;", "unknown \"nope\" variable"),
            ("rewrite_log maybe;", "it must be \"on\" or \"off\""),
        ];
        for (line, message) in cases {
            let text =
                format!("http {{ server {{ location / {{ set $a 1; set $b 1; {line} }} }} }}");
            let e = fails(&text);
            assert!(e.contains(message), "{line}: {e}");
        }
        // `add_header` and `expires` are allowed in an `if` in a location
        // (nginx's LIF context), not in a server's.
        let e = fails("http { server { if ($a) { add_header X y; } set $a 1; } }");
        assert!(
            e.contains("\"add_header\" directive is not allowed here"),
            "{e}"
        );
        let e = fails("http { rewrite ^ /x; server { } }");
        assert!(
            e.contains("\"rewrite\" directive is not allowed here"),
            "{e}"
        );
    }
}
