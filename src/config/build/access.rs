//! The access and client-limit directives (`crate::access`): `allow`/`deny`,
//! `satisfy`, `auth_basic`/`auth_basic_user_file`,
//! `auth_request`/`auth_request_set`, realip
//! (`set_real_ip_from`, `real_ip_header`, `real_ip_recursive`),
//! `limit_req_zone`/`limit_req`/`limit_req_status`/`limit_req_log_level`/
//! `limit_req_dry_run`, `limit_conn_zone`/`limit_conn`/`limit_conn_status`/
//! `limit_conn_log_level`/`limit_conn_dry_run`, and `stub_status`; with
//! nginx's inheritance ([`AccessLayer`]): a level with any `allow`/`deny`
//! (or `limit_req`, `limit_conn`, `set_real_ip_from`) replaces the outer list.

use super::args::{arg, err, flag, set_once, simple, template_arg};
use super::inherit::inherit_fields;
use super::{Builder, HttpState, Res};
use crate::access::cidr;
use crate::access::conf::{
    AccessConf, AuthBasic, AuthRequest, AuthSet, LimitConn, LimitReq, Limits, RealIp, RealIpHeader,
    Rule, Target, ZoneConf, ZoneKind,
};
use crate::access::limit_req::parse_rate;
use crate::config::ast::Directive;
use crate::config::template::{self, Template};
use crate::config::{units, LogLevel};

/// The access settings written at one level; `None` = inherited.
#[derive(Debug, Clone, Default)]
pub(super) struct AccessLayer {
    rules: Option<Vec<Rule>>,
    satisfy_any: Option<bool>,
    /// `Some(None)` = `auth_basic off`.
    realm: Option<Option<Template>>,
    user_file: Option<Template>,
    /// `Some(None)` = `auth_request off`.
    auth_request: Option<Option<AuthRequest>>,
    auth_request_set: Option<Vec<AuthSet>>,
    real_ip_from: Option<Vec<cidr::Cidr>>,
    real_ip_header: Option<RealIpHeader>,
    real_ip_recursive: Option<bool>,
    limit_req: Option<Vec<LimitReq>>,
    limit_req_status: Option<u16>,
    limit_req_log_level: Option<LogLevel>,
    limit_req_dry_run: Option<bool>,
    limit_conn: Option<Vec<LimitConn>>,
    limit_conn_status: Option<u16>,
    limit_conn_log_level: Option<LogLevel>,
    limit_conn_dry_run: Option<bool>,
}

impl AccessLayer {
    pub(super) fn inherit(mut self, parent: &AccessLayer) -> AccessLayer {
        inherit_fields!(
            self,
            parent,
            rules,
            satisfy_any,
            realm,
            user_file,
            auth_request,
            auth_request_set,
            real_ip_from,
            real_ip_header,
            real_ip_recursive,
            limit_req,
            limit_req_status,
            limit_req_log_level,
            limit_req_dry_run,
            limit_conn,
            limit_conn_status,
            limit_conn_log_level,
            limit_conn_dry_run
        );
        self
    }

    pub(super) fn finish(&self) -> AccessConf {
        let d = AccessConf::default();
        let auth_basic = match (&self.realm, &self.user_file) {
            (Some(Some(realm)), Some(file)) => Some(AuthBasic {
                realm: realm.clone(),
                user_file: file.clone(),
            }),
            _ => None,
        };
        let realip = self
            .real_ip_from
            .as_ref()
            .filter(|f| !f.is_empty())
            .map(|from| RealIp {
                from: from.clone(),
                header: self.real_ip_header.clone().unwrap_or(RealIpHeader::Single(
                    http::HeaderName::from_static("x-real-ip"),
                )),
                recursive: self.real_ip_recursive.unwrap_or(false),
            });
        AccessConf {
            rules: self.rules.clone().unwrap_or_default(),
            satisfy_any: self.satisfy_any.unwrap_or(false),
            auth_basic,
            auth_request: self.auth_request.clone().flatten(),
            auth_request_set: self.auth_request_set.clone().unwrap_or_default(),
            realip,
            limit_req: Limits {
                list: self.limit_req.clone().unwrap_or_default(),
                status: self.limit_req_status.unwrap_or(d.limit_req.status),
                log_level: self.limit_req_log_level.unwrap_or(d.limit_req.log_level),
                dry_run: self.limit_req_dry_run.unwrap_or(false),
            },
            limit_conn: Limits {
                list: self.limit_conn.clone().unwrap_or_default(),
                status: self.limit_conn_status.unwrap_or(d.limit_conn.status),
                log_level: self.limit_conn_log_level.unwrap_or(d.limit_conn.log_level),
                dry_run: self.limit_conn_dry_run.unwrap_or(false),
            },
            stub_status: false,
        }
    }
}

impl Builder {
    /// Access directives allowed at http, server and location level.
    /// `Ok(false)` when `d` is not one of them.
    pub(super) fn access_directive(
        &mut self,
        d: &Directive,
        layer: &mut AccessLayer,
        st: &HttpState,
    ) -> Res<bool> {
        match d.name.as_str() {
            "allow" | "deny" => {
                simple(d, 1, 1)?;
                let value = arg(d, 0);
                let target = match value {
                    "all" => Target::All,
                    "unix:" => Target::Unix,
                    _ => {
                        let Some((block, low_bits)) = cidr::parse(value) else {
                            return Err(err(format!("invalid parameter \"{value}\""), d));
                        };
                        if low_bits {
                            self.warn(d, &format!("low address bits of {value} are meaningless"));
                        }
                        Target::Block(block)
                    }
                };
                layer.rules.get_or_insert_with(Vec::new).push(Rule {
                    allow: d.name == "allow",
                    target,
                });
            }
            "satisfy" => {
                simple(d, 1, 1)?;
                let any = match arg(d, 0) {
                    "all" => false,
                    "any" => true,
                    other => return Err(err(format!("invalid value \"{other}\""), d)),
                };
                set_once(&mut layer.satisfy_any, any, d)?;
            }
            "auth_basic" => {
                simple(d, 1, 1)?;
                let realm = match arg(d, 0) {
                    "off" => None,
                    text => Some(template_arg(d, text)?),
                };
                set_once(&mut layer.realm, realm, d)?;
            }
            "auth_basic_user_file" => {
                simple(d, 1, 1)?;
                let file = self.conf_file(arg(d, 0));
                set_once(&mut layer.user_file, template_arg(d, &file)?, d)?;
            }
            "auth_request" => {
                simple(d, 1, 1)?;
                let uri = match arg(d, 0) {
                    "off" => None,
                    uri => Some(match uri.split_once('?') {
                        Some((path, args)) => AuthRequest {
                            path: path.to_string(),
                            args: Some(args.to_string()),
                        },
                        None => AuthRequest {
                            path: uri.to_string(),
                            args: None,
                        },
                    }),
                };
                set_once(&mut layer.auth_request, uri, d)?;
            }
            "auth_request_set" => {
                simple(d, 2, 2)?;
                let var = super::script::settable(d, arg(d, 0))?;
                let value = auth_set_value(d, arg(d, 1))?;
                let list = layer.auth_request_set.get_or_insert_with(Vec::new);
                list.push(AuthSet { var, value });
            }
            "set_real_ip_from" => {
                simple(d, 1, 1)?;
                let value = arg(d, 0);
                let list = layer.real_ip_from.get_or_insert_with(Vec::new);
                if value == "unix:" {
                    // No UNIX-domain listeners: nothing to trust.
                    return Ok(true);
                }
                let Some((block, low_bits)) = cidr::parse(value) else {
                    return Err(err(
                        format!("invalid parameter \"{value}\" (an address or CIDR block; host names are not resolved here)"),
                        d,
                    ));
                };
                list.push(block);
                if low_bits {
                    self.warn(d, &format!("low address bits of {value} are meaningless"));
                }
            }
            "real_ip_header" => {
                simple(d, 1, 1)?;
                let value = arg(d, 0);
                let header = if value.eq_ignore_ascii_case("x-forwarded-for") {
                    RealIpHeader::XForwardedFor
                } else if value == "proxy_protocol" {
                    return Err(err(
                        "\"real_ip_header proxy_protocol\" is not supported: the proxy does not read the PROXY protocol",
                        d,
                    ));
                } else {
                    let name = http::HeaderName::from_bytes(value.as_bytes())
                        .map_err(|_| err(format!("invalid header name \"{value}\""), d))?;
                    RealIpHeader::Single(name)
                };
                set_once(&mut layer.real_ip_header, header, d)?;
            }
            "real_ip_recursive" | "limit_req_dry_run" | "limit_conn_dry_run" => {
                simple(d, 1, 1)?;
                let on = flag(d)?;
                let slot = match d.name.as_str() {
                    "real_ip_recursive" => &mut layer.real_ip_recursive,
                    "limit_req_dry_run" => &mut layer.limit_req_dry_run,
                    _ => &mut layer.limit_conn_dry_run,
                };
                set_once(slot, on, d)?;
            }
            "limit_req" => {
                simple(d, 1, 3)?;
                let limit = limit_req(d, st)?;
                let list = layer.limit_req.get_or_insert_with(Vec::new);
                if list.iter().any(|l| l.zone == limit.zone) {
                    return Err(super::args::duplicate(d));
                }
                list.push(limit);
            }
            "limit_conn" => {
                simple(d, 2, 2)?;
                let zone = zone_index(d, arg(d, 0), st, false)?;
                let max = match arg(d, 1).parse::<u32>() {
                    Ok(n) if n > 0 && arg(d, 1).bytes().all(|b| b.is_ascii_digit()) => n,
                    _ => {
                        return Err(err(
                            format!("invalid number of connections \"{}\"", arg(d, 1)),
                            d,
                        ))
                    }
                };
                let list = layer.limit_conn.get_or_insert_with(Vec::new);
                if list.iter().any(|l| l.zone == zone) {
                    return Err(super::args::duplicate(d));
                }
                list.push(LimitConn { zone, max });
            }
            "limit_req_status" | "limit_conn_status" => {
                simple(d, 1, 1)?;
                let status = match arg(d, 0).parse::<u16>() {
                    Ok(s) if (400..=599).contains(&s) => s,
                    Ok(_) => return Err(err("value must be between 400 and 599", d)),
                    Err(_) => return Err(super::args::directive_err(d, "invalid number")),
                };
                let slot = if d.name == "limit_req_status" {
                    &mut layer.limit_req_status
                } else {
                    &mut layer.limit_conn_status
                };
                set_once(slot, status, d)?;
            }
            "limit_req_log_level" | "limit_conn_log_level" => {
                simple(d, 1, 1)?;
                let level = match arg(d, 0) {
                    "info" => LogLevel::Info,
                    "notice" => LogLevel::Notice,
                    "warn" => LogLevel::Warn,
                    "error" => LogLevel::Error,
                    other => return Err(err(format!("invalid value \"{other}\""), d)),
                };
                let slot = if d.name == "limit_req_log_level" {
                    &mut layer.limit_req_log_level
                } else {
                    &mut layer.limit_conn_log_level
                };
                set_once(slot, level, d)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The value of `auth_request_set`, evaluated with the subrequest's
/// response (`$upstream_http_NAME` is its header NAME).
fn auth_set_value(d: &Directive, value: &str) -> Res<Template> {
    template::parse_with(value, &super::uservars::lookup).map_err(|m| err(m, d))
}

/// `limit_req zone=NAME [burst=N] [nodelay | delay=N]`.
fn limit_req(d: &Directive, st: &HttpState) -> Res<LimitReq> {
    let mut zone = None;
    let mut burst = 0u64;
    let mut delay = 0u64;
    for a in &d.args {
        let v = a.value.as_str();
        let count = |text: &str, what: &str| match text.parse::<u64>() {
            Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) && n <= u64::MAX / 1000 => {
                Ok(n * 1000)
            }
            _ => Err(err(format!("invalid {what} value \"{v}\""), d)),
        };
        if let Some(name) = v.strip_prefix("zone=") {
            zone = Some(zone_index(d, name, st, true)?);
        } else if let Some(n) = v.strip_prefix("burst=") {
            burst = count(n, "burst")?;
        } else if let Some(n) = v.strip_prefix("delay=") {
            delay = count(n, "delay")?;
        } else if v == "nodelay" {
            delay = u64::MAX;
        } else {
            return Err(err(format!("invalid parameter \"{v}\""), d));
        }
    }
    let Some(zone) = zone else {
        return Err(err(
            format!("\"{}\" must have \"zone\" parameter", d.name),
            d,
        ));
    };
    Ok(LimitReq { zone, burst, delay })
}

/// The index of the zone `name` of the right kind.
fn zone_index(d: &Directive, name: &str, st: &HttpState, req: bool) -> Res<usize> {
    let Some(i) = st.limit_zones.iter().position(|z| z.name == name) else {
        return Err(err(format!("zero size shared memory zone \"{name}\""), d));
    };
    let kind_ok = st
        .limit_zones
        .get(i)
        .is_some_and(|z| matches!(z.kind, ZoneKind::Req { .. }) == req);
    if !kind_ok {
        return Err(err(
            format!("the shared memory zone \"{name}\" is already declared for a different use"),
            d,
        ));
    }
    Ok(i)
}

/// `limit_req_zone KEY zone=NAME:SIZE rate=RATE [sync]` and
/// `limit_conn_zone KEY zone=NAME:SIZE` (http level).
pub(super) fn zone_directive(d: &Directive, known: &[ZoneConf]) -> Res<ZoneConf> {
    let req = d.name == "limit_req_zone";
    if req {
        simple(d, 3, 4)?;
    } else {
        simple(d, 2, 2)?;
    }
    let mut key = None;
    let mut zone = None;
    let mut rate = None;
    for a in &d.args {
        let v = a.value.as_str();
        if let Some(spec) = v.strip_prefix("zone=") {
            let invalid = || err(format!("invalid zone size \"{v}\""), d);
            let (name, size) = spec.split_once(':').ok_or_else(invalid)?;
            if name.is_empty() {
                return Err(invalid());
            }
            let size = units::parse_size(size).map_err(|_| invalid())?;
            if size < 8 * 4096 {
                return Err(err(format!("zone \"{name}\" is too small"), d));
            }
            zone = Some((name.to_string(), size));
        } else if req && v.starts_with("rate=") {
            let text = v.get(5..).unwrap_or_default();
            rate = Some(parse_rate(text).ok_or_else(|| err(format!("invalid rate \"{v}\""), d))?);
        } else if req && v == "sync" {
            return Err(err(
                "\"sync\" in \"limit_req_zone\" is not supported (no zone synchronisation)",
                d,
            ));
        } else if key.is_none() && !v.contains('=') {
            key = Some(template_arg(d, v)?);
        } else {
            return Err(err(format!("invalid parameter \"{v}\""), d));
        }
    }
    let Some((name, size)) = zone else {
        return Err(err(
            format!("\"{}\" must have \"zone\" parameter", d.name),
            d,
        ));
    };
    let Some(key) = key else {
        return Err(err(
            format!("no key is defined for {} \"{name}\"", &d.name),
            d,
        ));
    };
    if known.iter().any(|z| z.name == name) {
        return Err(err(format!("duplicate zone \"{name}\""), d));
    }
    let kind = if req {
        ZoneKind::Req {
            rate: rate.unwrap_or(1000),
        }
    } else {
        ZoneKind::Conn
    };
    Ok(ZoneConf {
        name,
        key,
        size,
        kind,
    })
}

/// `stub_status [on|off]` (location): whether the location serves the status.
pub(super) fn stub_status_directive(d: &Directive) -> Res<bool> {
    simple(d, 0, 1)?;
    // nginx before 1.7.5 took an (ignored) argument; it is still accepted.
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::access::conf::{LimitReq, Target};
    use crate::config::build::tests::ok;
    use crate::config::load_str;
    use crate::config::{Part, Variable};

    #[test]
    fn errors_use_nginx_texts() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "allow 10.0.0.0/33;", "invalid parameter \"10.0.0.0/33\""),
            ("", "deny 10.0.0.0/8 x;", "invalid number of arguments in \"deny\" directive"),
            ("", "limit_req zone=nope;", "zero size shared memory zone \"nope\""),
            ("", "limit_req burst=5;", "\"limit_req\" must have \"zone\" parameter"),
            (
                "limit_req_zone $binary_remote_addr zone=one:1m rate=1r/h;",
                "",
                "invalid rate \"rate=1r/h\"",
            ),
            (
                "limit_req_zone $binary_remote_addr zone=one:1k rate=1r/s;",
                "",
                "zone \"one\" is too small",
            ),
            (
                "limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;",
                "limit_req zone=one burst=x;",
                "invalid burst value \"burst=x\"",
            ),
            (
                "limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;",
                "limit_req zone=one; limit_req zone=one burst=2;",
                "\"limit_req\" directive is duplicate",
            ),
            (
                "limit_conn_zone $binary_remote_addr zone=c:1m;",
                "limit_conn c 0;",
                "invalid number of connections \"0\"",
            ),
            (
                "limit_req_zone $binary_remote_addr zone=r:1m rate=1r/s;",
                "limit_conn r 1;",
                "the shared memory zone \"r\" is already declared for a different use",
            ),
            (
                "limit_conn_zone $binary_remote_addr zone=c:1m; limit_conn_zone $remote_addr zone=c:1m;",
                "",
                "duplicate zone \"c\"",
            ),
            ("", "limit_req_status 200;", "value must be between 400 and 599"),
            ("", "limit_conn_log_level crit;", "invalid value \"crit\""),
            ("", "satisfy some;", "invalid value \"some\""),
            (
                "",
                "real_ip_header proxy_protocol;",
                "\"real_ip_header proxy_protocol\" is not supported: the proxy does not read the PROXY protocol",
            ),
            ("", "limit_req_zone $x zone=a:1m rate=1r/s;", "\"limit_req_zone\" directive is not allowed here"),
            ("", "stub_status;", "\"stub_status\" directive is not allowed here"),
            ("", "auth_request /a; auth_request /b;", "\"auth_request\" directive is duplicate"),
            ("", "auth_request off; auth_request /a;", "\"auth_request\" directive is duplicate"),
            ("", "auth_request;", "invalid number of arguments in \"auth_request\" directive"),
            ("", "auth_request_set user $host;", "invalid variable name \"user\""),
            ("", "auth_request_set $host x;", "the duplicate \"host\" variable"),
            ("", "auth_request_set $x $nope;", "unknown \"nope\" variable"),
            (
                "",
                "location / { limit_except GET { auth_request /a; } }",
                "\"auth_request\" directive is not allowed here",
            ),
        ];
        for (http, server, message) in cases {
            let src = format!("http {{ {http} server {{ {server} }} }}");
            let e = load_str(&src, Path::new("/t.conf")).expect_err(&src);
            assert_eq!(e.message, *message, "{src}");
        }
    }

    #[test]
    fn auth_request_is_inherited_and_its_sets_replaced_per_level() {
        let (c, _) = ok("http {
              auth_request /auth?from=http;
              auth_request_set $user $upstream_http_x_user;
              server {
                location /a { }
                location /off { auth_request off; }
                location /own { auth_request /other; auth_request_set $group \"g:$upstream_http_x_group\"; }
              }
            }");
        let s = &c.http.servers[0];
        let conf = |i: usize| &s.locations[i].conf.access;
        let a = conf(0).auth_request.as_ref().expect("inherited");
        assert_eq!(
            (a.path.as_str(), a.args.as_deref()),
            ("/auth", Some("from=http"))
        );
        assert_eq!(conf(0).auth_request_set.len(), 1);
        assert_eq!(
            conf(0).auth_request_set[0].value.parts,
            [Part::Var(Variable::UpstreamHttp("x-user".into()))]
        );
        assert_eq!(conf(1).auth_request, None);
        assert_eq!(
            conf(1).auth_request_set.len(),
            1,
            "inherited beside auth_request off"
        );
        let own = conf(2);
        assert_eq!(own.auth_request.as_ref().expect("own").path, "/other");
        assert_eq!(
            own.auth_request_set.len(),
            1,
            "a level with its own list replaces the outer one"
        );
        assert_ne!(own.auth_request_set[0].var, conf(0).auth_request_set[0].var);
        assert_eq!(
            own.auth_request_set[0].value.parts,
            [
                Part::Literal("g:".into()),
                Part::Var(Variable::UpstreamHttp("x-group".into()))
            ]
        );
    }

    #[test]
    fn lists_are_replaced_per_level_and_settings_inherited() {
        let (c, warnings) = ok("http {
              limit_req_zone $binary_remote_addr zone=a:1m rate=10r/s;
              limit_req_zone $binary_remote_addr zone=b:1m rate=30r/m;
              limit_req zone=a burst=5;
              deny 10.1.2.3/8;
              satisfy any;
              server {
                location /own { allow 127.0.0.1; limit_req zone=b nodelay; auth_basic x; }
                location /inherit { auth_basic_user_file /etc/htpasswd; stub_status; }
              }
            }");
        assert_eq!(
            warnings[0].message,
            "low address bits of 10.1.2.3/8 are meaningless"
        );
        let s = &c.http.servers[0];
        let own = &s.locations[0].conf.access;
        let inherited = &s.locations[1].conf.access;
        assert_eq!(own.rules.len(), 1);
        assert!(own.rules[0].allow);
        assert!(matches!(inherited.rules[0].target, Target::Block(_)) && !inherited.rules[0].allow);
        assert_eq!(
            own.limit_req.list,
            [LimitReq {
                zone: 1,
                burst: 0,
                delay: u64::MAX
            }]
        );
        assert_eq!(
            inherited.limit_req.list,
            [LimitReq {
                zone: 0,
                burst: 5000,
                delay: 0
            }]
        );
        assert!(own.satisfy_any && inherited.satisfy_any);
        assert!(
            own.auth_basic.is_none(),
            "a realm without a user file is off"
        );
        assert!(
            inherited.auth_basic.is_none(),
            "a user file without a realm is off"
        );
        assert!(inherited.stub_status && !own.stub_status && !s.conf.access.stub_status);
        assert_eq!(c.http.limit_zones.len(), 2);
        assert_eq!(
            c.http.limit_zones[1].kind,
            crate::access::conf::ZoneKind::Req { rate: 500 }
        );
    }

    #[test]
    fn a_relative_user_file_is_under_the_main_file_s_directory() {
        // nginx's conf prefix, even for a line in an included file; a value
        // starting with a variable is left as it is.
        let files = |conf: &str| {
            let (c, _) = ok(&format!(
                "http {{ server {{ location / {{ auth_basic r; {conf} }} }} }}"
            ));
            let access = &c.http.servers[0].locations[0].conf.access;
            access
                .auth_basic
                .as_ref()
                .map(|a| a.user_file.source.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            files("auth_basic_user_file htpasswd;"),
            "/etc/proxy/htpasswd"
        );
        assert_eq!(
            files("auth_basic_user_file conf.d/$host;"),
            "/etc/proxy/conf.d/$host"
        );
        assert_eq!(
            files("auth_basic_user_file /etc/htpasswd;"),
            "/etc/htpasswd"
        );
        assert_eq!(files("auth_basic_user_file $http_x_file;"), "$http_x_file");
    }
}
