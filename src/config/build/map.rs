//! `map SOURCE $VAR { ... }` and `split_clients STRING $VAR { ... }` (http
//! level): their entries, checks and nginx's error texts; the variables they
//! define were named before the build (see `uservars`), so the built block
//! fills the variable's slot. A cycle among them is refused once all are built.

use std::collections::HashMap;

use super::args::{arg, block, err, template_arg};
use super::script::pattern;
use super::uservars;
use super::Res;
use crate::access::cidr;
use crate::config::ast::Directive;
use crate::config::error::{ConfigError, ConfigWarning};
use crate::config::map::{Computed, ComputedRef, GeoConf, MapConf, SplitClients};
use crate::config::{Part, Template, Variable};

/// Builds a `map` or `split_clients` block into its variable's slot.
pub(super) fn computed_block(d: &Directive) -> Res<()> {
    let body = block(d, 2, 2)?;
    let name = arg(d, 1);
    let Some(bare) = name.strip_prefix('$').filter(|n| !n.is_empty()) else {
        return Err(err(format!("invalid variable name \"{name}\""), d));
    };
    let Some(var) = uservars::computed(bare) else {
        return Err(err(format!("invalid variable name \"{name}\""), d));
    };
    let source = template_arg(d, arg(d, 0))?;
    let built = if d.name == "map" {
        Computed::Map(map(d, body, source)?)
    } else {
        Computed::Split(split_clients(d, body, source)?)
    };
    if var.slot.set(built).is_err() {
        return Err(err(format!("the duplicate \"{bare}\" variable"), d));
    }
    Ok(())
}

/// Builds a `geo [$address] $var { ... }` block into its variable's slot
/// (nginx's `ngx_http_geo_block`): `default`, `delete NET`, `NET VALUE` (an
/// address or a CIDR block, IPv4 or IPv6); a network given twice keeps the
/// later value with nginx's warning.
pub(super) fn geo_block(d: &Directive, warnings: &mut Vec<ConfigWarning>) -> Res<()> {
    let body = block(d, 1, 2)?;
    let name = arg(d, d.args.len() - 1);
    let Some(var) = name
        .strip_prefix('$')
        .filter(|n| !n.is_empty())
        .and_then(uservars::computed)
    else {
        return Err(err(format!("invalid variable name \"{name}\""), d));
    };
    let source = match d.args.len() {
        2 => Some(template_arg(d, arg(d, 0))?),
        _ => None,
    };
    let mut conf = GeoConf {
        source,
        default: String::new(),
        nets: Vec::new(),
    };
    for e in body {
        let key = e.name.as_str();
        match (key, e.args.len()) {
            ("ranges" | "proxy_recursive", 0) | ("proxy", 1) => {
                return Err(err(
                    format!("\"{key}\" in a \"geo\" block is not supported"),
                    e,
                ));
            }
            (_, 1) if e.block.is_none() => {}
            _ => return Err(err("invalid number of arguments in \"geo\" directive", e)),
        }
        let value = arg(e, 0);
        let net = |text: &str| match cidr::parse(text) {
            Some((net, _)) => Ok(net),
            None => Err(err(format!("invalid network \"{text}\""), e)),
        };
        match key {
            "default" => conf.default = value.to_string(),
            "delete" => {
                let gone = net(value)?;
                conf.nets.retain(|(n, _)| *n != gone);
            }
            _ => {
                let n = net(key)?;
                if let Some((_, old)) = conf.nets.iter_mut().find(|(m, _)| *m == n) {
                    warnings.push(ConfigWarning {
                        message: format!(
                            "duplicate network \"{key}\", value: \"{value}\", old value: \"{old}\""
                        ),
                        span: e.span.clone(),
                    });
                    *old = value.to_string();
                } else {
                    conf.nets.push((n, value.to_string()));
                }
            }
        }
    }
    // Longest prefix first: the first network holding an address is the
    // most specific.
    conf.nets
        .sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix()));
    if var.slot.set(Computed::Geo(conf)).is_err() {
        return Err(err(format!("the duplicate \"{}\" variable", &name[1..]), d));
    }
    Ok(())
}

fn map(d: &Directive, body: &[Directive], source: Template) -> Res<MapConf> {
    let mut conf = MapConf {
        source,
        exact: HashMap::new(),
        leading: Vec::new(),
        trailing: Vec::new(),
        regexes: Vec::new(),
        default: None,
    };
    let mut hostnames = false;
    for e in body {
        let key = e.name.as_str();
        if e.block.is_some() {
            return Err(err("unexpected \"{\"", e));
        }
        if e.args.is_empty() && (key == "hostnames" || key == "volatile") {
            hostnames |= key == "hostnames";
            continue;
        }
        if e.args.len() != 1 {
            return Err(err("invalid number of the map parameters", e));
        }
        let value = template_arg(e, arg(e, 0))?;
        if key == "default" {
            if conf.default.is_some() {
                return Err(err("duplicate default map parameter", e));
            }
            conf.default = Some(value);
            continue;
        }
        if let Some(re) = key.strip_prefix('~') {
            let (re, ci) = match re.strip_prefix('*') {
                Some(r) => (r, true),
                None => (re, false),
            };
            conf.regexes.push((pattern(e, re, ci)?, value));
            continue;
        }
        let key = key.strip_prefix('\\').unwrap_or(key).to_ascii_lowercase();
        let conflict = || err(format!("conflicting parameter \"{}\"", e.name), e);
        if hostnames && (key.starts_with('.') || key.contains('*')) {
            let bad = || err(format!("invalid hostname or wildcard \"{}\"", e.name), e);
            if let Some(rest) = key.strip_prefix("*.") {
                if rest.is_empty() || rest.contains('*') {
                    return Err(bad());
                }
                conf.leading.push((format!(".{rest}"), false, value));
            } else if let Some(rest) = key.strip_prefix('.') {
                if rest.is_empty() || rest.contains('*') {
                    return Err(bad());
                }
                conf.leading.push((key.clone(), true, value));
            } else if let Some(prefix) = key.strip_suffix(".*") {
                if prefix.is_empty() || prefix.contains('*') {
                    return Err(bad());
                }
                conf.trailing.push((format!("{prefix}."), value));
            } else {
                return Err(bad());
            }
            continue;
        }
        if conf.exact.insert(key, value).is_some() {
            return Err(conflict());
        }
    }
    conf.leading
        .sort_by_key(|(s, _, _)| std::cmp::Reverse(s.len()));
    conf.trailing
        .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    let _ = d;
    Ok(conf)
}

fn split_clients(d: &Directive, body: &[Directive], source: Template) -> Res<SplitClients> {
    let mut parts = Vec::new();
    let mut sum: u32 = 0;
    let mut last: u64 = 0;
    for e in body {
        if e.block.is_some() || e.args.len() != 1 {
            return Err(err("invalid number of arguments in split_clients block", e));
        }
        let key = e.name.as_str();
        let value = arg(e, 0).to_string();
        if key == "*" {
            sum = 10_000;
            parts.push((None, value));
            continue;
        }
        let Some(percent) = key
            .strip_suffix('%')
            .and_then(hundredths)
            .filter(|&n| n > 0)
        else {
            return Err(err(format!("invalid percent value \"{key}\""), e));
        };
        sum = sum.saturating_add(percent);
        if sum > 10_000 {
            return Err(err("percent total is greater than 100%", d));
        }
        last += u64::from(percent) * u64::from(u32::MAX) / 10_000;
        parts.push((Some(u32::try_from(last).unwrap_or(u32::MAX)), value));
    }
    Ok(SplitClients { source, parts })
}

/// nginx's `ngx_atofp(text, 2)`: a decimal with at most two digits after the
/// point, times 100.
fn hundredths(text: &str) -> Option<u32> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 2 {
        return None;
    }
    let w: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: u32 = format!("{frac:0<2}").parse().ok()?;
    w.checked_mul(100)?.checked_add(f)
}

/// Refuses a `map`/`split_clients` variable whose value depends on itself
/// (nginx loops at run time).
pub(super) fn check_cycles() -> Result<(), ConfigError> {
    fn refs(t: &Template, out: &mut Vec<ComputedRef>) {
        for p in &t.parts {
            if let Part::Var(Variable::Computed(r)) = p {
                out.push(r.clone());
            }
        }
    }
    fn deps(r: &ComputedRef) -> Vec<ComputedRef> {
        let mut out = Vec::new();
        match r.slot.get() {
            Some(Computed::Map(m)) => {
                refs(&m.source, &mut out);
                m.exact.values().for_each(|t| refs(t, &mut out));
                m.leading.iter().for_each(|(_, _, t)| refs(t, &mut out));
                m.trailing.iter().for_each(|(_, t)| refs(t, &mut out));
                m.regexes.iter().for_each(|(_, t)| refs(t, &mut out));
                if let Some(t) = &m.default {
                    refs(t, &mut out);
                }
            }
            Some(Computed::Split(s)) => refs(&s.source, &mut out),
            Some(Computed::Geo(g)) => {
                if let Some(t) = &g.source {
                    refs(t, &mut out);
                }
            }
            None => {}
        }
        out
    }
    let all = uservars::all_computed();
    for start in &all {
        let mut stack = deps(start);
        let mut seen: Vec<ComputedRef> = Vec::new();
        while let Some(r) = stack.pop() {
            if r == *start {
                return Err(ConfigError::without_span(format!(
                    "cycle while evaluating variable \"{}\"",
                    start.name
                )));
            }
            if !seen.contains(&r) {
                stack.extend(deps(&r));
                seen.push(r);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::hundredths;
    use crate::config::build::tests::fails;

    #[test]
    fn errors_are_nginx_texts() {
        let cases = [
            (
                "map $arg_a $m { a b c; }",
                "invalid number of the map parameters",
            ),
            (
                "map $arg_a $m { default 1; default 2; }",
                "duplicate default map parameter",
            ),
            ("map $arg_a $m { x 1; X 2; }", "conflicting parameter \"X\""),
            (
                "map $arg_a $m { hostnames; *.a* 1; }",
                "invalid hostname or wildcard \"*.a*\"",
            ),
            ("map $arg_a m { }", "invalid variable name \"m\""),
            ("map $arg_a $m { ~( 1; }", "regex \"(\" compile failed"),
            ("map $nope $m { }", "unknown \"nope\" variable"),
            (
                "split_clients $arg_a $s { 10 x; }",
                "invalid percent value \"10\"",
            ),
            (
                "split_clients $arg_a $s { 0% x; }",
                "invalid percent value \"0%\"",
            ),
            (
                "split_clients $arg_a $s { 60% x; 50% y; }",
                "percent total is greater than 100%",
            ),
            (
                "map $b $a { default 1; } map $a $b { default $a; }",
                "cycle while evaluating variable",
            ),
            (
                "map $arg_x $a { default $a; }",
                "cycle while evaluating variable \"a\"",
            ),
            (
                "server { map $arg_a $m { } }",
                "\"map\" directive is not allowed here",
            ),
            (
                "geo $g { 10.0.0.0/33 x; }",
                "invalid network \"10.0.0.0/33\"",
            ),
            ("geo $g { nope x; }", "invalid network \"nope\""),
            ("geo $g { delete x; }", "invalid network \"x\""),
            (
                "geo $g { 10.0.0.0/8; }",
                "invalid number of arguments in \"geo\" directive",
            ),
            (
                "geo $g { ranges; }",
                "\"ranges\" in a \"geo\" block is not supported",
            ),
            (
                "geo $g { proxy 10.0.0.1; }",
                "\"proxy\" in a \"geo\" block is not supported",
            ),
            ("geo g { }", "invalid variable name \"g\""),
            ("geo $nope $g { }", "unknown \"nope\" variable"),
            ("geo $g { } geo $g { }", "the duplicate \"g\" variable"),
            (
                "server { geo $g { } }",
                "\"geo\" directive is not allowed here",
            ),
        ];
        for (text, message) in cases {
            let e = fails(&format!("http {{ {text} }}"));
            assert!(e.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn percentages_parse_as_nginx_atofp() {
        let cases = [
            ("50", Some(5000)),
            ("0.5", Some(50)),
            ("33.33", Some(3333)),
            (".5", Some(50)),
            ("100", Some(10000)),
            ("0.001", None),
            ("a", None),
            ("", None),
            ("1.2.3", None),
        ];
        for (text, want) in cases {
            assert_eq!(hundredths(text), want, "{text}");
        }
    }
}
