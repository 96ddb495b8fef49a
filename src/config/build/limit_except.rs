//! `limit_except METHOD ... { ... }` in a location: the methods (nginx's list,
//! `invalid method` otherwise) and the block's settings, which may be
//! `allow`, `deny`, `auth_basic`, `auth_basic_user_file`, `proxy_pass` (no
//! URI part) and `access_log`, as nginx allows; the rest is inherited from
//! the location (see `crate::access::limit_except`).

use std::sync::Arc;

use super::args::{block, err, not_allowed, set_once};
use super::inherit::Layer;
use super::{Builder, HttpState, Res};
use crate::access::limit_except::{LimitExcept, Methods};
use crate::config::ast::Directive;
use crate::config::LocationConf;

impl Builder {
    /// The `limit_except` block `d` of a location whose settings are
    /// `location` (its merged layer `layer`).
    pub(super) fn limit_except(
        &mut self,
        d: &Directive,
        location: &LocationConf,
        layer: &Layer,
        st: &mut HttpState,
    ) -> Res<Arc<LimitExcept>> {
        let body = block(d, 1, usize::MAX)?;
        let mut methods = Methods::default();
        for a in &d.args {
            if methods.add(&a.value).is_none() {
                return Err(err(format!("invalid method \"{}\"", a.value), d));
            }
        }
        let mut own = Layer::default();
        let mut proxy_pass = None;
        for x in body {
            match x.name.as_str() {
                "allow" | "deny" | "auth_basic" | "auth_basic_user_file" => {
                    self.access_directive(x, &mut own.access, st)?;
                }
                "access_log" => self.access_log(x, &mut own, st)?,
                "proxy_pass" => {
                    let pp = super::location::proxy_pass_directive(x, true, st)?;
                    set_once(&mut proxy_pass, pp, x)?;
                }
                _ => return Err(not_allowed(x)),
            }
        }
        let block_conf = own.inherit(layer).finish(None, None);
        let mut conf = location.clone();
        conf.access = crate::access::conf::AccessConf {
            stub_status: location.access.stub_status,
            ..block_conf.access
        };
        conf.access_log = block_conf.access_log;
        if proxy_pass.is_some() {
            conf.proxy_pass = proxy_pass;
        }
        // nginx does not inherit the rewrite module's statements nor
        // `try_files` into the block.
        conf.return_ = None;
        conf.redirect.script = Arc::new([]);
        if conf.files.try_files.is_some() {
            let mut files = (*conf.files).clone();
            files.try_files = None;
            conf.files = Arc::new(files);
        }
        conf.limit_except = None;
        Ok(Arc::new(LimitExcept {
            methods,
            conf: Arc::new(conf),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::Method;

    use crate::access::conf::Target;
    use crate::access::limit_except::conf_for;
    use crate::config::build::tests::{fails, ok};

    #[test]
    fn other_methods_get_the_blocks_access_rules_and_proxy_pass() {
        let (c, _) = ok("http { server {
              location /a {
                deny 10.0.0.0/8;
                return 200 ok;
                limit_except GET { allow 127.0.0.1; deny all; proxy_pass http://127.0.0.1:9000; }
                location /a/n { }
              }
              location /b { auth_basic off; limit_except OPTIONS { auth_basic \"r\"; auth_basic_user_file /h; } }
            } }");
        let a = &c.http.servers[0].locations[0];
        let get = conf_for(&a.conf, &Method::GET);
        let head = conf_for(&a.conf, &Method::HEAD);
        let post = conf_for(&a.conf, &Method::POST);
        assert!(std::ptr::eq(get, &*a.conf) && std::ptr::eq(head, &*a.conf));
        assert_eq!(get.access.rules.len(), 1);
        assert_eq!(
            post.access
                .rules
                .iter()
                .map(|r| (r.allow, r.target == Target::All))
                .collect::<Vec<_>>(),
            [(true, false), (false, true)]
        );
        assert!(get.proxy_pass.is_none() && post.proxy_pass.is_some());
        assert!(get.return_.is_some() && post.return_.is_none());
        let nested = &a.nested[0].conf;
        assert!(
            nested.limit_except.is_none(),
            "not inherited by nested locations"
        );
        let b = &c.http.servers[0].locations[1].conf;
        assert!(conf_for(b, &Method::OPTIONS).access.auth_basic.is_none());
        assert!(conf_for(b, &Method::GET).access.auth_basic.is_some());
    }

    #[test]
    fn nginx_error_texts() {
        let cases: &[(&str, &str)] = &[
            (
                "http { server { location / { limit_except TRACE { deny all; } } } }",
                "invalid method \"TRACE\" in /etc/proxy/test.conf:1",
            ),
            (
                "http { server { location / { limit_except GET { } limit_except POST { } } } }",
                "\"limit_except\" directive is duplicate in /etc/proxy/test.conf:1",
            ),
            (
                "http { server { location / { limit_except { deny all; } } } }",
                "invalid number of arguments in \"limit_except\" directive in /etc/proxy/test.conf:1",
            ),
            (
                "http { server { location / { limit_except GET; } } }",
                "directive \"limit_except\" has no opening \"{\" in /etc/proxy/test.conf:1",
            ),
            (
                "http { server { location / { limit_except GET { return 200; } } } }",
                "\"return\" directive is not allowed here in /etc/proxy/test.conf:1",
            ),
            (
                "http { server { location / { limit_except GET { satisfy any; } } } }",
                "\"satisfy\" directive is not allowed here in /etc/proxy/test.conf:1",
            ),
            (
                "http { server { limit_except GET { } } }",
                "\"limit_except\" directive is not allowed here in /etc/proxy/test.conf:1",
            ),
            (
                "http { server { location / { limit_except GET { proxy_pass http://127.0.0.1:1/x; } } } }",
                "\"proxy_pass\" cannot have URI part in location given by regular expression, \
                 or inside named location, or inside \"if\" statement, or inside \"limit_except\" block in /etc/proxy/test.conf:1",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(fails(src), *want, "{src}");
        }
    }
}
