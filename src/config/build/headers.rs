//! Response header directives of http, server and location: `add_header NAME
//! VALUE [always]` and `expires [modified] TIME | epoch | max | off | @TIME`
//! (nginx's headers module), and `add_trailer`, refused until response trailers
//! exist. Applied to responses by [`crate::proxy::add_headers`].

use super::args::{arg, directive_err, err, header_name, set_once, simple, template_arg};
use super::inherit::Layer;
use super::{Builder, Res};
use crate::config::ast::Directive;
use crate::config::template::{Part, Variable};
use crate::config::units;
use crate::config::{AddHeader, Expires};
use crate::http1::names::SpelledName;

impl Builder {
    /// `add_header`, `add_trailer` and `expires`. `Ok(false)` when `d` is none of
    /// them.
    pub(super) fn response_headers(&mut self, d: &Directive, layer: &mut Layer) -> Res<bool> {
        match d.name.as_str() {
            "add_header" => {
                let header = add_header(d)?;
                layer.add_headers.get_or_insert_with(Vec::new).push(header);
            }
            "add_trailer" => {
                add_header(d)?;
                return Err(err(
                    "\"add_trailer\" is not supported yet: responses carry no trailers",
                    d,
                ));
            }
            "expires" => {
                simple(d, 1, 2)?;
                set_once(&mut layer.expires, expires(d)?, d)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `add_header NAME VALUE [always]`. The value is evaluated when the request is
/// planned, its response variables once the response is known.
fn add_header(d: &Directive) -> Res<AddHeader> {
    simple(d, 2, 3)?;
    if let Some(a) = d.args.get(2) {
        if a.value != "always" {
            return Err(err(format!("invalid parameter \"{}\"", a.value), d));
        }
    }
    let name = SpelledName::new(header_name(d, arg(d, 0))?, arg(d, 0));
    let raw = arg(d, 1);
    if raw.contains(['\r', '\n']) {
        return Err(err(format!("invalid header value \"{raw}\""), d));
    }
    let value = template_arg(d, raw)?;
    for part in &value.parts {
        if let Part::Var(var) = part {
            if let Some(name) = response_variable(var) {
                return Err(err(
                    format!(
                        "the \"${name}\" variable is not supported in \"{}\"",
                        d.name
                    ),
                    d,
                ));
            }
        }
    }
    Ok(AddHeader {
        name,
        value,
        always: d.args.len() == 3,
    })
}

/// The name of a variable `add_header` cannot read: the sticky outcome, which
/// the response filter does not carry; `None` for the others (the response
/// and upstream variables are read once the response is known).
fn response_variable(var: &Variable) -> Option<&'static str> {
    Some(match var {
        Variable::StickySid => "sticky_sid",
        Variable::StickyStatus => "sticky_status",
        Variable::StickyLearned => "sticky_learned",
        _ => return None,
    })
}

/// nginx's `expires` arguments, with its error texts.
fn expires(d: &Directive) -> Res<Expires> {
    let (modified, value) = match d.args.len() {
        1 => (false, arg(d, 0)),
        _ if arg(d, 0) == "modified" => (true, arg(d, 1)),
        _ => return Err(directive_err(d, "invalid value")),
    };
    if value.contains('$') {
        return Err(err("variables in \"expires\" are not supported", d));
    }
    if !modified {
        match value {
            "epoch" => return Ok(Expires::Epoch),
            "max" => return Ok(Expires::Max),
            "off" => return Ok(Expires::Off),
            _ => {}
        }
    }
    let (daily, negative, time) = if let Some(rest) = value.strip_prefix('@') {
        if modified {
            return Err(directive_err(
                d,
                "daily time cannot be used with \"modified\" parameter",
            ));
        }
        (true, false, rest)
    } else if let Some(rest) = value.strip_prefix('-') {
        (false, true, rest)
    } else {
        (false, false, value.strip_prefix('+').unwrap_or(value))
    };
    // Whole seconds only: nginx refuses `ms` here.
    if time.contains("ms") {
        return Err(directive_err(d, "invalid value"));
    }
    let secs = units::parse_time(time)
        .ok()
        .and_then(|t| i64::try_from(t.as_secs()).ok())
        .ok_or_else(|| directive_err(d, "invalid value"))?;
    if daily {
        if secs > 24 * 60 * 60 {
            return Err(directive_err(
                d,
                "daily time value must be less than 24 hours",
            ));
        }
        return Ok(Expires::Daily(secs));
    }
    let secs = if negative { -secs } else { secs };
    Ok(if modified {
        Expires::Modified(secs)
    } else {
        Expires::Access(secs)
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::build::tests::ok;
    use crate::config::{load_str, Expires};

    #[test]
    fn expires_values() {
        let cases: &[(&str, Expires)] = &[
            ("off", Expires::Off),
            ("epoch", Expires::Epoch),
            ("max", Expires::Max),
            ("30d", Expires::Access(30 * 86_400)),
            ("+1h", Expires::Access(3600)),
            ("-1", Expires::Access(-1)),
            ("0", Expires::Access(0)),
            ("modified 1h30m", Expires::Modified(5400)),
            ("modified -10s", Expires::Modified(-10)),
            ("@15h30m", Expires::Daily(55_800)),
        ];
        for (value, want) in cases {
            let (c, _) = ok(&format!("http {{ server {{ expires {value}; }} }}"));
            assert_eq!(c.http.servers[0].conf.expires, *want, "{value}");
        }
    }

    #[test]
    fn add_header_lists_replace_per_level_and_expires_inherits() {
        let (c, _) = ok("http {
              add_header X-A a;
              add_header X-B \"b $host\" always;
              expires 1h;
              server {
                location /plain { }
                location /own { add_header X-C c; expires off;
                  location /own/nested { }
                }
              }
            }");
        let s = &c.http.servers[0];
        let names = |l: &crate::config::LocationConf| -> Vec<(String, bool)> {
            l.add_headers
                .iter()
                .map(|h| (h.name.name().to_string(), h.always))
                .collect()
        };
        assert_eq!(
            names(&s.locations[0].conf),
            [("x-a".to_string(), false), ("x-b".to_string(), true)]
        );
        assert_eq!(s.locations[0].conf.expires, Expires::Access(3600));
        let own = &s.locations[1];
        assert_eq!(names(&own.conf), [("x-c".to_string(), false)]);
        assert_eq!(own.conf.expires, Expires::Off);
        assert_eq!(names(&own.nested[0].conf), [("x-c".to_string(), false)]);
        assert_eq!(own.nested[0].conf.expires, Expires::Off);
    }

    #[test]
    fn errors_are_nginx_texts() {
        let cases: &[(&str, &str)] = &[
            (
                "add_header X;",
                "invalid number of arguments in \"add_header\" directive",
            ),
            (
                "add_header X y sometimes;",
                "invalid parameter \"sometimes\"",
            ),
            (
                "add_header X $sticky_status;",
                "the \"$sticky_status\" variable is not supported in \"add_header\"",
            ),
            ("add_header X $nope;", "unknown \"nope\" variable"),
            (
                "add_trailer X y;",
                "\"add_trailer\" is not supported yet: responses carry no trailers",
            ),
            ("expires soon;", "\"expires\" directive invalid value"),
            ("expires later 1h;", "\"expires\" directive invalid value"),
            (
                "expires modified epoch;",
                "\"expires\" directive invalid value",
            ),
            (
                "expires modified @1h;",
                "\"expires\" directive daily time cannot be used with \"modified\" parameter",
            ),
            (
                "expires @25h;",
                "\"expires\" directive daily time value must be less than 24 hours",
            ),
            ("expires 500ms;", "\"expires\" directive invalid value"),
            (
                "expires 1h; expires 2h;",
                "\"expires\" directive is duplicate",
            ),
            (
                "expires 1 2 3;",
                "invalid number of arguments in \"expires\" directive",
            ),
        ];
        for (directive, want) in cases {
            let src = format!("http {{ server {{ {directive} }} }}");
            match load_str(&src, Path::new("/etc/proxy/test.conf")) {
                Ok(_) => panic!("{directive} should fail"),
                Err(e) => assert_eq!(e.message, *want, "{directive}"),
            }
        }
    }
}
