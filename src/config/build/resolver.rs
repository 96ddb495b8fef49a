//! Run-time name resolution: `resolver` and `resolver_timeout` (in `http`,
//! `server` and `location`, inherited as nginx does, for `proxy_pass` with
//! variables; in `upstream` (nginx 1.27.3+), the upstream's own winning over
//! the `http` one's),
//! `zone NAME [SIZE]`, and the checks that tie them to `server NAME resolve`
//! lines, with nginx's texts. The names themselves are resolved at run time by
//! `upstream::dns`; here only the resolver's own addresses are (at load time,
//! as nginx does).

use std::net::SocketAddr;
use std::time::Duration;

use super::args::{arg, err, set_once, simple, time};
use super::resolve::resolve;
use super::Res;
use crate::config::ast::Directive;
use crate::config::units;
use crate::config::ConfigError;
use crate::config::{PeerConf, ResolveConf, ResolverConf};

/// nginx's `resolver_timeout` default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The smallest `zone` size nginx accepts: 8 pages of 4 KiB.
const MIN_ZONE: u64 = 8 * 4096;

/// `resolver` without the timeout, as written in one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResolverSpec {
    servers: Vec<SocketAddr>,
    valid: Option<Duration>,
    ipv4: bool,
    ipv6: bool,
}

/// The `resolver` and `resolver_timeout` of one context (`http`, `server`,
/// `location` or `upstream`); each is inherited on its own, as nginx merges
/// them.
#[derive(Debug, Clone, Default)]
pub(super) struct ResolverScope {
    resolver: Option<ResolverSpec>,
    timeout: Option<Duration>,
}

impl ResolverScope {
    /// Handles `resolver` / `resolver_timeout`; false for any other directive.
    pub(super) fn directive(&mut self, d: &Directive) -> Res<bool> {
        match d.name.as_str() {
            "resolver" => {
                simple(d, 1, usize::MAX)?;
                set_once(&mut self.resolver, resolver_directive(d)?, d)?;
            }
            "resolver_timeout" => {
                simple(d, 1, 1)?;
                set_once(&mut self.timeout, time(d, arg(d, 0))?, d)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Takes what this level did not set from `parent`.
    pub(super) fn inherit(&mut self, parent: &ResolverScope) {
        if self.resolver.is_none() {
            self.resolver.clone_from(&parent.resolver);
        }
        self.timeout = self.timeout.or(parent.timeout);
    }

    /// The resolver in effect, with its timeout (default 30s); `None` when no
    /// level defines one.
    pub(super) fn finish(&self) -> Option<ResolverConf> {
        let spec = self.resolver.as_ref()?;
        Some(ResolverConf {
            servers: spec.servers.clone(),
            valid: spec.valid,
            ipv4: spec.ipv4,
            ipv6: spec.ipv6,
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// The `resolver` and `resolver_timeout` of an `http` block (read before its
    /// upstreams are built).
    pub(super) fn of_http(block: &[Directive]) -> Res<ResolverScope> {
        let mut scope = ResolverScope::default();
        for d in block {
            scope.directive(d)?;
        }
        Ok(scope)
    }
}

/// What an `upstream` block says about run-time resolution while it is built.
#[derive(Debug, Default)]
pub(super) struct UpstreamDns {
    scope: ResolverScope,
    zone: Option<String>,
    /// The `server NAME resolve` templates, in file order.
    servers: Vec<PeerConf>,
}

impl UpstreamDns {
    /// Handles `zone`, `resolver` and `resolver_timeout`; false for any other.
    pub(super) fn directive(&mut self, d: &Directive) -> Res<bool> {
        if d.name == "zone" {
            simple(d, 1, 2)?;
            let name = arg(d, 0);
            if name.is_empty() {
                return Err(err(format!("invalid zone name \"{name}\""), d));
            }
            if d.args.len() == 2 {
                let text = arg(d, 1);
                let bytes = units::parse_size(text)
                    .map_err(|_| err(format!("invalid zone size \"{text}\""), d))?;
                if bytes < MIN_ZONE {
                    return Err(err(format!("zone \"{name}\" is too small"), d));
                }
            }
            set_once(&mut self.zone, name.to_string(), d)?;
            return Ok(true);
        }
        self.scope.directive(d)
    }

    /// A `server NAME resolve` line's template.
    pub(super) fn add_server(&mut self, template: PeerConf) {
        self.servers.push(template);
    }

    /// The upstream's run-time resolution, checked as nginx does: `resolve`
    /// needs a `zone` and a resolver (the upstream's own, else the `http`
    /// one's), with nginx's texts (which name the place themselves, so the error
    /// has no span of its own). `d` is the `upstream` directive, `fixed` the count of peers from
    /// fixed `server` lines.
    pub(super) fn finish(
        self,
        d: &Directive,
        name: &str,
        http: &ResolverScope,
        fixed: usize,
    ) -> Res<Option<ResolveConf>> {
        if self.servers.is_empty() {
            return Ok(None);
        }
        let place = format!("{}:{}", d.span.file.display(), d.span.line);
        let Some(zone) = self.zone else {
            return Err(ConfigError::without_span(format!(
                "resolving names at run time requires upstream \"{name}\" in {place} to be in shared memory"
            )));
        };
        let mut scope = self.scope;
        scope.inherit(http);
        let Some(resolver) = scope.finish() else {
            return Err(ConfigError::without_span(format!(
                "no resolver defined to resolve names at run time in upstream \"{name}\" in {place}"
            )));
        };
        Ok(Some(ResolveConf {
            zone,
            resolver,
            servers: self.servers,
            fixed,
        }))
    }
}

/// `resolver ADDRESS ... [valid=TIME] [ipv4=on|off] [ipv6=on|off]`.
fn resolver_directive(d: &Directive) -> Res<ResolverSpec> {
    let mut spec = ResolverSpec {
        servers: Vec::new(),
        valid: None,
        ipv4: true,
        ipv6: true,
    };
    for a in &d.args {
        let text = a.value.as_str();
        let invalid = || err(format!("invalid parameter: {text}"), d);
        let on_off = |v: &str| match v {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(invalid()),
        };
        if let Some(v) = text.strip_prefix("valid=") {
            let t = units::parse_time(v).map_err(|_| invalid())?;
            spec.valid = (!t.is_zero()).then_some(t);
        } else if let Some(v) = text.strip_prefix("ipv4=") {
            spec.ipv4 = on_off(v)?;
        } else if let Some(v) = text.strip_prefix("ipv6=") {
            spec.ipv6 = on_off(v)?;
        } else {
            let addrs = resolve(text, 53, false)
                .map_err(|reason| err(format!("{reason} in resolver \"{text}\""), d))?;
            spec.servers.extend(addrs);
        }
    }
    if !spec.ipv4 && !spec.ipv6 {
        return Err(err("\"ipv4\" and \"ipv6\" cannot both be \"off\"", d));
    }
    if spec.servers.is_empty() {
        return Err(err("no name servers defined", d));
    }
    Ok(spec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::build::tests::ok;
    use crate::config::load_str;

    fn fails(src: &str) -> String {
        match load_str(src, Path::new("/t.conf")) {
            Ok(_) => panic!("loaded: {src}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn resolve_servers_become_templates_with_the_http_resolver() {
        let (c, _) = ok("http {
              resolver 127.0.0.1:5353 [::1] valid=5s ipv6=off;
              resolver_timeout 2s;
              upstream u {
                zone u 64k;
                server 127.0.0.1:9000;
                server backend.svc:8080 resolve weight=3 max_fails=2;
                server 127.0.0.1 resolve;
              } }");
        let u = &c.http.upstreams[0];
        assert_eq!(u.peers.len(), 2, "addresses are fixed even with resolve");
        let r = u.resolve.as_ref().expect("resolve");
        assert_eq!((r.zone.as_str(), r.fixed), ("u", 2));
        assert_eq!(
            r.resolver,
            ResolverConf {
                servers: vec![
                    "127.0.0.1:5353".parse().unwrap(),
                    "[::1]:53".parse().unwrap()
                ],
                valid: Some(Duration::from_secs(5)),
                ipv4: true,
                ipv6: false,
                timeout: Duration::from_secs(2),
            }
        );
        assert_eq!(r.servers.len(), 1);
        let t = &r.servers[0];
        assert_eq!(
            (t.server.as_str(), t.addr.port()),
            ("backend.svc:8080", 8080)
        );
        assert_eq!((t.weight, t.max_fails), (3, 2));
    }

    #[test]
    fn the_upstream_resolver_wins_and_timeout_defaults_to_30s() {
        let (c, _) = ok("http { resolver 127.0.0.1;
              upstream u { zone z; resolver 127.0.0.2 valid=0; server never.invalid resolve; } }");
        let r = c.http.upstreams[0].resolve.clone().expect("resolve");
        assert_eq!(r.resolver.servers, vec!["127.0.0.2:53".parse().unwrap()]);
        assert_eq!(
            (r.resolver.valid, r.resolver.timeout),
            (None, DEFAULT_TIMEOUT)
        );
        assert!(c.http.upstreams[0].peers.is_empty(), "resolved at run time");
    }

    #[test]
    fn server_and_location_resolvers_inherit_each_part_on_its_own() {
        let (c, _) = ok("http { resolver 127.0.0.1 valid=5s; resolver_timeout 3s;
              server { location /h { } location /l { resolver 127.0.0.3; } }
              server { resolver 127.0.0.2 ipv6=off;
                       location /s { } location /t { resolver_timeout 1s; } }
            }");
        type Seen = (SocketAddr, Option<Duration>, bool, Duration);
        let got: Vec<(String, Option<Seen>)> = c
            .http
            .servers
            .iter()
            .flat_map(|s| {
                std::iter::once((String::from("server"), &*s.conf)).chain(s.locations.iter().map(
                    |l| match &l.matcher {
                        crate::config::LocationMatch::Prefix { uri, .. } => (uri.clone(), &*l.conf),
                        _ => (String::new(), &*l.conf),
                    },
                ))
            })
            .map(|(name, conf)| {
                let r = conf
                    .resolver
                    .as_ref()
                    .map(|r| (r.servers[0], r.valid, r.ipv6, r.timeout));
                (name, r)
            })
            .collect();
        let a = |ip: &str| format!("{ip}:53").parse::<SocketAddr>().unwrap();
        let secs = Duration::from_secs;
        assert_eq!(
            got,
            [
                (
                    "server".into(),
                    Some((a("127.0.0.1"), Some(secs(5)), true, secs(3)))
                ),
                (
                    "/h".into(),
                    Some((a("127.0.0.1"), Some(secs(5)), true, secs(3)))
                ),
                ("/l".into(), Some((a("127.0.0.3"), None, true, secs(3)))),
                (
                    "server".into(),
                    Some((a("127.0.0.2"), None, false, secs(3)))
                ),
                ("/s".into(), Some((a("127.0.0.2"), None, false, secs(3)))),
                ("/t".into(), Some((a("127.0.0.2"), None, false, secs(1)))),
            ]
        );
        let (c, _) = ok("http { server { location / { resolver_timeout 1s; } } }");
        assert!(c.http.servers[0].locations[0].conf.resolver.is_none());
    }

    #[test]
    fn nginx_error_texts() {
        let cases: &[(&str, &str)] = &[
            (
                "http {\nupstream u {\nserver a.svc resolve;\n}\n}",
                "resolving names at run time requires upstream \"u\" in /t.conf:2 to be in shared memory",
            ),
            (
                "http {\nupstream u {\nzone u;\nserver a.svc resolve;\n}\n}",
                "no resolver defined to resolve names at run time in upstream \"u\" in /t.conf:2",
            ),
            (
                "http { resolver 127.0.0.1 ipv4=off ipv6=off; }",
                "\"ipv4\" and \"ipv6\" cannot both be \"off\" in /t.conf:1",
            ),
            (
                "http { resolver 127.0.0.1 valid=x; }",
                "invalid parameter: valid=x in /t.conf:1",
            ),
            (
                "http { resolver 127.0.0.1 ipv6=no; }",
                "invalid parameter: ipv6=no in /t.conf:1",
            ),
            (
                "http { resolver 127.0.0.1:0; }",
                "invalid port in resolver \"127.0.0.1:0\" in /t.conf:1",
            ),
            ("http { resolver valid=1s; }", "no name servers defined in /t.conf:1"),
            (
                "http { resolver 127.0.0.1; resolver 127.0.0.2; }",
                "\"resolver\" directive is duplicate in /t.conf:1",
            ),
            (
                "http { upstream u { zone u 1k; server 127.0.0.1; } }",
                "zone \"u\" is too small in /t.conf:1",
            ),
            (
                "http { upstream u { zone u big; server 127.0.0.1; } }",
                "invalid zone size \"big\" in /t.conf:1",
            ),
            (
                "http { upstream u { zone u; zone v; server 127.0.0.1; } }",
                "\"zone\" directive is duplicate in /t.conf:1",
            ),
            (
                "http { server { location / { if ($host) { resolver 127.0.0.1; } } } }",
                "\"resolver\" directive is not allowed here in /t.conf:1",
            ),
            (
                "http { resolver 127.0.0.1; upstream u { zone u; server a.svc:0 resolve; } }",
                "invalid port in upstream \"a.svc:0\" in /t.conf:1",
            ),
        ];
        for (src, expected) in cases {
            assert_eq!(fails(src), *expected, "{src}");
        }
    }
}
