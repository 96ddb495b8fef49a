//! How the locations use each upstream: a walk over every server, location
//! (nested and named) and `if` block of a built configuration, in file order,
//! and which of them `proxy_pass` to an upstream over `https://` or in clear.
//! Read by the health checks (an upstream only `https://` names is checked
//! over TLS) and by the load-time warning for one named both ways.

use std::sync::Arc;

use crate::config::rewrite::Op;
use crate::config::{Location, LocationConf, ServerConf};

/// How the `proxy_pass` lines of the configuration name one upstream.
#[derive(Debug, Default)]
pub struct UpstreamUse<'a> {
    /// The settings of the first location (in file order) that names it with
    /// `https://`.
    pub first_https: Option<&'a LocationConf>,
    /// Some location names it with `http://`.
    pub plain: bool,
}

/// How `servers` name upstream `u` (an index of `HttpConf::upstreams`); a
/// `proxy_pass` whose host has variables names no upstream here.
pub fn upstream_use(servers: &[Arc<ServerConf>], u: usize) -> UpstreamUse<'_> {
    let mut found = UpstreamUse::default();
    for_each_conf(servers, &mut |conf| {
        let Some(pass) = conf.proxy_pass.as_ref() else {
            return;
        };
        if pass.upstream != u || pass.vars.as_ref().is_some_and(|v| v.dynamic_host) {
            return;
        }
        if pass.https && conf.proxy_ssl.is_some() {
            found.first_https.get_or_insert(conf);
        } else {
            found.plain = true;
        }
    });
    found
}

/// Calls `f` with the settings of every server, location (nested and named)
/// and `if` block of `servers`, in file order.
pub fn for_each_conf<'a>(servers: &'a [Arc<ServerConf>], f: &mut dyn FnMut(&'a LocationConf)) {
    fn script<'a>(ops: &'a [Op], f: &mut dyn FnMut(&'a LocationConf)) {
        for op in ops {
            if let Op::If { body, conf, .. } = op {
                if let Some(conf) = conf {
                    f(conf);
                    script(&conf.redirect.script, f);
                }
                script(body, f);
            }
        }
    }
    fn location<'a>(l: &'a Location, f: &mut dyn FnMut(&'a LocationConf)) {
        f(&l.conf);
        script(&l.conf.redirect.script, f);
        for nested in &l.nested {
            location(nested, f);
        }
    }
    for server in servers {
        f(&server.conf);
        script(&server.conf.redirect.script, f);
        for l in &server.locations {
            location(l, f);
        }
        for named in &server.named {
            f(&named.conf);
            script(&named.conf.redirect.script, f);
        }
    }
}
