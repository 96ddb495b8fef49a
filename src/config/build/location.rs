//! `location` blocks (`=`, `^~`, `~`, `~*` and prefix matchers, nesting rules,
//! duplicates) and what a location may hold besides its layer: `proxy_pass` (to a
//! named upstream, or an implicit one made from `HOST:PORT`), `return` (also
//! allowed in `server`) and `check_status`.

use std::collections::HashSet;
use std::sync::Arc;

use super::args::{
    arg, block, block_of, compile_regex, err, not_allowed, set_once, simple, template_arg,
};
use super::inherit::Layer;
use super::resolve::peer_addrs;
use super::tuning::Ctx;
use super::{Builder, HttpState, Res};
use crate::config::ast::Directive;
use crate::config::rewrite::Op;
use crate::config::{
    Location, LocationConf, LocationMatch, NamedLocation, ProxyPass, ProxyVars, Return,
    StatusFormat, UpstreamConf,
};

/// What a nested location needs to know about its parent.
pub(super) struct ParentLocation<'a> {
    name: &'a str,
    exact: bool,
}

impl Builder {
    pub(super) fn return_directive(&mut self, d: &Directive, slot: &mut Option<Return>) -> Res<()> {
        simple(d, 1, 2)?;
        let first = arg(d, 0);
        let ret = if d.args.len() == 1
            && (first.starts_with("http://")
                || first.starts_with("https://")
                || first.starts_with("$scheme"))
        {
            Return {
                code: 302,
                text: Some(template_arg(d, first)?),
            }
        } else {
            let code = match first.parse::<u16>() {
                Ok(c) if c <= 999 && first.bytes().all(|b| b.is_ascii_digit()) => c,
                _ => return Err(err(format!("invalid return code \"{first}\""), d)),
            };
            // An empty literal text is none, as nginx: `return 404 "";`
            // sends the 404 page.
            let text = match d.args.get(1) {
                Some(a) if !a.value.is_empty() => Some(template_arg(d, &a.value)?),
                _ => None,
            };
            Return { code, text }
        };
        if slot.is_some() {
            self.warn(d, "\"return\" after another \"return\" is never reached");
        } else {
            *slot = Some(ret);
        }
        Ok(())
    }

    /// Builds sibling locations, rejecting duplicates as nginx does.
    pub(super) fn locations(
        &mut self,
        dirs: &[&Directive],
        parent_layer: &Layer,
        parent: Option<&ParentLocation<'_>>,
        st: &mut HttpState,
    ) -> Res<Vec<Location>> {
        let mut seen: HashSet<(bool, String)> = HashSet::new();
        let mut out = Vec::new();
        for d in dirs {
            let loc = self.location(d, parent_layer, parent, st)?;
            let key = match &loc.matcher {
                LocationMatch::Exact(uri) => Some((true, uri.clone())),
                LocationMatch::Prefix { uri, .. } => Some((false, uri.clone())),
                LocationMatch::Regex { .. } => None,
            };
            if let Some(key) = key {
                if !seen.insert(key.clone()) {
                    return Err(err(format!("duplicate location \"{}\"", key.1), d));
                }
            }
            out.push(loc);
        }
        Ok(out)
    }

    /// A server's named locations (`location @name`), rejecting duplicates.
    pub(super) fn named_locations(
        &mut self,
        dirs: &[&Directive],
        server_layer: &Layer,
        st: &mut HttpState,
    ) -> Res<Vec<NamedLocation>> {
        let mut out: Vec<NamedLocation> = Vec::new();
        for d in dirs {
            block(d, 1, 1)?;
            let name = arg(d, 0);
            if out.iter().any(|n| n.name == name) {
                return Err(err(format!("duplicate location \"{name}\""), d));
            }
            let (conf, nested) = self.location_conf(d, None, server_layer, st)?;
            if let Some(x) = nested.first() {
                return Err(err(
                    format!(
                        "location \"{}\" cannot be inside the named location \"{name}\"",
                        arg(x, x.args.len().saturating_sub(1))
                    ),
                    x,
                ));
            }
            out.push(NamedLocation {
                name: name.to_string(),
                conf: Arc::new(conf.0),
            });
        }
        Ok(out)
    }

    fn location(
        &mut self,
        d: &Directive,
        parent_layer: &Layer,
        parent: Option<&ParentLocation<'_>>,
        st: &mut HttpState,
    ) -> Res<Location> {
        block(d, 1, 2)?;
        if d.args.len() == 1 && arg(d, 0).starts_with('@') {
            return Err(err(
                format!(
                    "named location \"{}\" can be on the server level only",
                    arg(d, 0)
                ),
                d,
            ));
        }
        let (matcher, name) = location_matcher(d)?;
        let is_regex = matches!(matcher, LocationMatch::Regex { .. });
        if let Some(p) = parent {
            if p.exact {
                return Err(err(
                    format!(
                        "location \"{name}\" cannot be inside the exact location \"{}\"",
                        p.name
                    ),
                    d,
                ));
            }
            if !is_regex && !name.starts_with(p.name) {
                return Err(err(
                    format!("location \"{name}\" is outside location \"{}\"", p.name),
                    d,
                ));
            }
        }
        let (mut conf, nested_dirs) = self.location_conf(d, Some(&matcher), parent_layer, st)?;
        if let LocationMatch::Regex { re, .. } = &matcher {
            if re.captures_len() > 1 {
                let named: Vec<(usize, u16)> = re
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| n.and_then(super::uservars::index).map(|v| (i, v)))
                    .collect();
                conf.0.redirect.captures = Some(named.into());
            }
        }
        let me = ParentLocation {
            name: &name,
            exact: matches!(matcher, LocationMatch::Exact(_)),
        };
        let merged = conf.1;
        let nested = self.locations(&nested_dirs, &merged, Some(&me), st)?;
        Ok(Location {
            matcher,
            conf: Arc::new(conf.0),
            nested,
        })
    }

    /// The settings of the body of location `d` (its own layer inherited from
    /// `parent_layer`) and the nested `location` blocks, still to build.
    #[allow(clippy::type_complexity)]
    fn location_conf<'d>(
        &mut self,
        d: &'d Directive,
        matcher: Option<&LocationMatch>,
        parent_layer: &Layer,
        st: &mut HttpState,
    ) -> Res<((LocationConf, Layer), Vec<&'d Directive>)> {
        let body = d.block.as_deref().unwrap_or_default();
        let out = self.location_body(body, matcher, parent_layer, st)?;
        let conf = &out.0 .0;
        if conf.check_status.is_some() && (conf.proxy_pass.is_some() || conf.return_.is_some()) {
            return Err(err(
                "\"check_status\" cannot be combined with \"proxy_pass\" or \"return\" in one location",
                d,
            ));
        }
        Ok(out)
    }

    /// The settings of a location's body (its own layer inherited from
    /// `parent_layer`) and the nested `location` blocks, still to build.
    /// `matcher` is `None` for a named location (`location @name`).
    #[allow(clippy::type_complexity)]
    fn location_body<'d>(
        &mut self,
        body: &'d [Directive],
        matcher: Option<&LocationMatch>,
        parent_layer: &Layer,
        st: &mut HttpState,
    ) -> Res<((LocationConf, Layer), Vec<&'d Directive>)> {
        // A regex or named location has no URI part to replace.
        let no_uri_part = matcher.is_none_or(|m| matches!(m, LocationMatch::Regex { .. }));
        let mut layer = Layer::default();
        let mut proxy_pass = None;
        let mut return_ = None;
        let mut check_status = None;
        let mut stub_status = None;
        let mut internal = false;
        let mut limit_except = None;
        let mut nested_dirs = Vec::new();
        for x in body {
            match x.name.as_str() {
                "location" => {
                    block_of(x)?;
                    nested_dirs.push(x);
                }
                name if super::script::is_statement(name) => {}
                "proxy_pass" => {
                    let pp = proxy_pass_directive(x, no_uri_part, st)?;
                    set_once(&mut proxy_pass, pp, x)?;
                }
                "return" => self.return_directive(x, &mut return_)?,
                "alias" => match matcher {
                    Some(m) => super::files::alias(x, &mut layer.files, m)?,
                    None => {
                        return Err(err(
                            "the \"alias\" directive cannot be used inside the named location",
                            x,
                        ))
                    }
                },
                "stub_status" => {
                    let on = super::access::stub_status_directive(x)?;
                    set_once(&mut stub_status, on, x)?;
                }
                "limit_except" => set_once(&mut limit_except, x, x)?,
                "internal" => {
                    simple(x, 0, 0)?;
                    if internal {
                        return Err(super::args::duplicate(x));
                    }
                    internal = true;
                }
                "check_status" => {
                    simple(x, 0, 1)?;
                    let format = match x.args.first() {
                        None => StatusFormat::Html,
                        Some(a) => match StatusFormat::from_name(&a.value) {
                            Some(f) => f,
                            None => {
                                return Err(err(format!("invalid parameter \"{}\"", a.value), x))
                            }
                        },
                    };
                    set_once(&mut check_status, format, x)?;
                }
                _ => {
                    if !self.common(x, &mut layer, st)?
                        && !self.location_timeouts(x, &mut layer)?
                        && !self.tuning(x, Ctx::Location, body)?
                    {
                        return Err(not_allowed(x));
                    }
                }
            }
        }
        let merged = layer.inherit(parent_layer);
        let parent = super::script::IfParent {
            layer: &merged,
            proxy_pass: &proxy_pass,
        };
        let script = self.script(body, Some(&parent), st)?;
        let mut conf = merged.finish(proxy_pass, return_);
        conf.proxy_ssl = self.backend_tls(&merged.proxy_ssl, conf.proxy_pass.as_ref())?;
        conf.check_status = check_status;
        conf.access.stub_status = stub_status.unwrap_or(false);
        conf.redirect.internal = internal;
        if script.iter().any(|op| !matches!(op, Op::Return(_))) {
            // `return` runs in order with the other statements.
            conf.return_ = None;
            conf.redirect.script = script.into();
        }
        if let Some(x) = limit_except {
            conf.limit_except = Some(self.limit_except(x, &conf, &merged, st)?);
        }
        Ok(((conf, merged), nested_dirs))
    }
}

/// `location [=|^~|~|~*] URI` (also the glued forms `=/x`, `~^/x`); returns the
/// matcher and the location's name (URI or regex source) for messages.
fn location_matcher(d: &Directive) -> Res<(LocationMatch, String)> {
    let (modifier, uri) = if d.args.len() == 2 {
        (arg(d, 0), arg(d, 1))
    } else {
        let a = arg(d, 0);
        if a.starts_with('@') {
            return Err(err(format!("named location \"{a}\" is not supported"), d));
        }
        ["~*", "^~", "=", "~"]
            .iter()
            .find_map(|m| {
                a.strip_prefix(m)
                    .filter(|rest| !rest.is_empty())
                    .map(|rest| (*m, rest))
            })
            .unwrap_or(("", a))
    };
    let matcher = match modifier {
        "" => LocationMatch::Prefix {
            uri: uri.to_string(),
            stop_regex: false,
        },
        "^~" => LocationMatch::Prefix {
            uri: uri.to_string(),
            stop_regex: true,
        },
        "=" => LocationMatch::Exact(uri.to_string()),
        "~" | "~*" => {
            let case_insensitive = modifier == "~*";
            LocationMatch::Regex {
                re: compile_regex(d, uri, case_insensitive)?,
                case_insensitive,
                source: uri.to_string(),
            }
        }
        other => return Err(err(format!("invalid location modifier \"{other}\""), d)),
    };
    Ok((matcher, uri.to_string()))
}

pub(super) fn proxy_pass_directive(
    d: &Directive,
    in_regex: bool,
    st: &mut HttpState,
) -> Res<ProxyPass> {
    simple(d, 1, 1)?;
    let url = arg(d, 0);
    if url.contains('$') {
        return proxy_pass_with_variables(d, url, st);
    }
    let Some((https, rest)) = url_scheme(url) else {
        return Err(err("invalid URL prefix", d));
    };
    // `unix:/path[:/uri]`: the socket's path ends at a colon (nginx).
    let end = match rest.strip_prefix("unix:") {
        Some(path) => path.find(':').map(|i| i + 5),
        None => rest.find('/'),
    };
    let (host_port, uri) = match end {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let uri = uri
        .strip_prefix(':')
        .filter(|_| host_port.starts_with("unix:"))
        .unwrap_or(uri);
    let uri = (!uri.is_empty()).then(|| uri.to_string());
    if host_port.is_empty() {
        return Err(err(format!("no host in upstream \"{rest}\""), d));
    }
    proxy_pass_to(d, host_port, uri, in_regex, https, st)
}

/// The scheme of a `proxy_pass` URL (`true`: `https://`) and the rest.
pub fn url_scheme(url: &str) -> Option<(bool, &str)> {
    let has = |prefix: &str| {
        url.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    if has("http://") {
        url.get(7..).map(|rest| (false, rest))
    } else if has("https://") {
        url.get(8..).map(|rest| (true, rest))
    } else {
        None
    }
}

/// `proxy_pass` whose URL has variables: evaluated per request. A literal host
/// is resolved now, as without variables; a host with variables must name an
/// upstream at run time. A URI part (also in a regex location) replaces the
/// request's URI as it is.
fn proxy_pass_with_variables(d: &Directive, url: &str, st: &mut HttpState) -> Res<ProxyPass> {
    let template = super::args::template_arg(d, url)?;
    // A URL that starts with a variable gets its scheme per request, as in
    // nginx (which checks it only then: "invalid URL prefix", 500).
    let (https, rest, dynamic_scheme) = match url_scheme(url) {
        Some((https, rest)) => (https, rest, false),
        None if url.starts_with('$') => (false, url, true),
        None => return Err(err("invalid URL prefix", d)),
    };
    let host_port = rest.split('/').next().unwrap_or_default();
    if host_port.is_empty() {
        return Err(err(format!("no host in upstream \"{rest}\""), d));
    }
    let dynamic_host = dynamic_scheme || host_port.contains('$');
    let mut pass = if dynamic_host {
        ProxyPass {
            upstream: 0,
            proxy_host: String::new(),
            uri: None,
            vars: None,
            https,
        }
    } else {
        proxy_pass_to(d, host_port, None, false, https, st)?
    };
    pass.vars = Some(ProxyVars {
        url: template,
        dynamic_host,
        dynamic_scheme,
    });
    Ok(pass)
}

/// The upstream of `proxy_pass http://HOST_PORT[URI]`: a named upstream, or an
/// implicit one made from the address.
fn proxy_pass_to(
    d: &Directive,
    host_port: &str,
    uri: Option<String>,
    in_regex: bool,
    https: bool,
    st: &mut HttpState,
) -> Res<ProxyPass> {
    if uri.is_some() && in_regex {
        return Err(err(
            "\"proxy_pass\" cannot have URI part in location given by regular expression, \
             or inside named location, or inside \"if\" statement, or inside \"limit_except\" block",
            d,
        ));
    }
    // `[v6]:port` has its colon after the bracket; a name has at most one colon.
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (host_port, None),
    };
    if let Some(index) = st
        .named
        .iter()
        .position(|u| u.name.eq_ignore_ascii_case(host))
    {
        if let Some(port) = port {
            return Err(err(
                format!("upstream \"{host}\" may not have port {port}"),
                d,
            ));
        }
        return Ok(ProxyPass {
            upstream: index,
            proxy_host: host_port.to_string(),
            uri,
            vars: None,
            https,
        });
    }
    // Without a port, `http://h` and `https://h` are two upstreams (80, 443).
    let default_port = if https { 443 } else { 80 };
    let same = |u: &UpstreamConf| {
        u.name == host_port
            && (port.is_some()
                || u.peers
                    .first()
                    .is_none_or(|p| p.addr.port() == default_port))
    };
    let index = match st.implicit.iter().position(same) {
        Some(i) => i,
        None => {
            let addrs = peer_addrs(host_port, default_port)
                .map_err(|reason| err(format!("{reason} in upstream \"{host_port}\""), d))?;
            st.implicit
                .push(UpstreamConf::implicit_peers(host_port, addrs));
            st.implicit.len() - 1
        }
    };
    // nginx's `$proxy_host` (and Host) for a Unix socket is `localhost`.
    let proxy_host = if host_port.starts_with("unix:") {
        "localhost"
    } else {
        host_port
    };
    Ok(ProxyPass {
        upstream: st.named.len() + index,
        proxy_host: proxy_host.to_string(),
        uri,
        vars: None,
        https,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::build::tests::ok;
    use crate::config::{LocationMatch, Part, StatusFormat, Variable};

    #[test]
    fn proxy_pass_targets_resolve_to_named_or_implicit_upstreams() {
        let (c, _) = ok("http {
              server {
                location /a { proxy_pass http://later; }
                location /b { proxy_pass http://127.0.0.1:9000/x/; }
                location /c { proxy_pass http://127.0.0.1:9000; }
                location /d { proxy_pass http://127.0.0.1; }
                location /e { proxy_pass HTTP://LATER/; }
              }
              upstream later { server 127.0.0.1:9100; }
            }");
        let targets: Vec<(usize, String, Option<String>)> = c.http.servers[0]
            .locations
            .iter()
            .map(|l| {
                let p = l.conf.proxy_pass.clone().expect("proxy_pass");
                (p.upstream, p.proxy_host, p.uri)
            })
            .collect();
        assert_eq!(
            targets,
            [
                (0, "later".into(), None),
                (1, "127.0.0.1:9000".into(), Some("/x/".into())),
                (1, "127.0.0.1:9000".into(), None),
                (2, "127.0.0.1".into(), None),
                (0, "LATER".into(), Some("/".into())),
            ]
        );
        let names: Vec<(&str, bool, &str)> = c
            .http
            .upstreams
            .iter()
            .map(|u| (u.name.as_str(), u.implicit, u.peers[0].name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("later", false, "127.0.0.1:9100"),
                ("127.0.0.1:9000", true, "127.0.0.1:9000"),
                ("127.0.0.1", true, "127.0.0.1:80"),
            ]
        );
    }

    #[test]
    fn return_forms() {
        let (c, _) = ok("http { server {
              location /a { return 204; }
              location /b { return http://example.com/; }
              location /c { return 301 https://example.com$request_uri; }
              location /d { return 200 \"host=$host\"; }
              location /e { return 404; return 500; }
              location /f { return 404 \"\"; }
            } }");
        let got: Vec<(u16, Option<Vec<Part>>)> = c.http.servers[0]
            .locations
            .iter()
            .map(|l| {
                let r = l.conf.return_.clone().expect("return");
                (r.code, r.text.map(|t| t.parts))
            })
            .collect();
        let lit = |s: &str| Part::Literal(s.to_string());
        assert_eq!(
            got,
            [
                (204, None),
                (302, Some(vec![lit("http://example.com/")])),
                (
                    301,
                    Some(vec![
                        lit("https://example.com"),
                        Part::Var(Variable::RequestUri)
                    ])
                ),
                (200, Some(vec![lit("host="), Part::Var(Variable::Host)])),
                (404, None),
                (404, None),
            ]
        );
    }

    #[test]
    fn location_modifiers_separate_and_glued() {
        let (c, _) = ok("http { server {
              location = /e1 { } location =/e2 { }
              location ^~ /p1 { } location ^~/p2 { } location /p3 { }
              location ~ ^/r1 { } location ~^/r2 { } location ~* \\.PHP$ { } location ~*\\.js$ { }
            } }");
        let got: Vec<String> = c.http.servers[0]
            .locations
            .iter()
            .map(|l| match &l.matcher {
                LocationMatch::Exact(u) => format!("= {u}"),
                LocationMatch::Prefix { uri, stop_regex } => {
                    format!("{}{uri}", if *stop_regex { "^~ " } else { "" })
                }
                LocationMatch::Regex {
                    case_insensitive,
                    source,
                    ..
                } => format!("{} {source}", if *case_insensitive { "~*" } else { "~" }),
            })
            .collect();
        assert_eq!(
            got,
            [
                "= /e1",
                "= /e2",
                "^~ /p1",
                "^~ /p2",
                "/p3",
                "~ ^/r1",
                "~ ^/r2",
                "~* \\.PHP$",
                "~* \\.js$"
            ]
        );
        let matches = |i: usize, path: &str| match &c.http.servers[0].locations[i].matcher {
            LocationMatch::Regex { re, .. } => re.is_match(path),
            _ => false,
        };
        assert!(matches(5, "/r1/x") && !matches(5, "/R1/x"));
        assert!(matches(7, "/index.php") && matches(7, "/INDEX.PHP"));
        assert!(matches(8, "/app.JS"));
    }

    #[test]
    fn check_status_formats_and_drain() {
        let (c, _) = ok(
            "http { upstream u { server 127.0.0.1:9000 drain; server 127.0.0.1:9001; }
            server { location /a { check_status; } location /b { check_status csv; }
                     location /c { check_status json; } location /d { proxy_pass http://u; } } }",
        );
        let formats: Vec<Option<StatusFormat>> = c.http.servers[0]
            .locations
            .iter()
            .map(|l| l.conf.check_status)
            .collect();
        assert_eq!(
            formats,
            [
                Some(StatusFormat::Html),
                Some(StatusFormat::Csv),
                Some(StatusFormat::Json),
                None
            ]
        );
        assert_eq!(c.http.servers[0].conf.check_status, None);
        let drains: Vec<bool> = c.http.upstreams[0].peers.iter().map(|p| p.drain).collect();
        assert_eq!(drains, [true, false]);
    }

    #[test]
    fn unix_socket_peers_in_upstreams_and_proxy_pass() {
        let (c, _) = ok(
            "http { upstream u { server unix:/run/a.sock weight=2; server 127.0.0.1:9000; }
            server {
                location /a { proxy_pass http://u; }
                location /b { proxy_pass http://unix:/run/b.sock:/base/; }
                location /c { proxy_pass http://unix:/run/b.sock; }
            } }",
        );
        let u = &c.http.upstreams[0];
        assert_eq!(u.peers[0].name, "unix:/run/a.sock");
        assert_eq!(
            u.peers[0].unix.as_deref(),
            Some(std::path::Path::new("/run/a.sock"))
        );
        assert_eq!(u.peers[0].weight, 2);
        assert!(u.peers[1].unix.is_none());
        let locs = &c.http.servers[0].locations;
        let pass = |i: usize| locs[i].conf.proxy_pass.clone().expect("proxy_pass");
        let (b, c2) = (pass(1), pass(2));
        assert_eq!(b.uri.as_deref(), Some("/base/"));
        assert_eq!(b.proxy_host, "localhost");
        assert_eq!(c2.uri, None);
        assert_eq!(b.upstream, c2.upstream, "one implicit upstream per socket");
        let up = &c.http.upstreams[b.upstream];
        assert_eq!(up.peers[0].name, "unix:/run/b.sock");
        assert_eq!(
            crate::config::build::tests::fails(
                "http { upstream u { server unix:; } server { location / { proxy_pass http://u; } } }"
            ),
            "no path in upstream \"unix:\" in /etc/proxy/test.conf:1"
        );
    }
}
