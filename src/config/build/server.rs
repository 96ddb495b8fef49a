//! `server` blocks: `listen` (addresses, `default_server`, `reuseport`,
//! `backlog`), `server_name` (exact, wildcard and regex names) and the server's
//! own layer; the warning for a name claimed twice on one address.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use super::args::{arg, block, block_of, compile_regex, err, not_allowed, simple};
use super::inherit::{ConnLayer, Layer};
use super::log::error_log_directive;
use super::resolve::{parse_port, resolve};
use super::tuning::Ctx;
use super::{Builder, HttpState, Res};
use crate::config::ast::Directive;
use crate::config::error::ConfigError;
use crate::config::rewrite::Op;
use crate::config::{Listen, ServerConf, ServerName};

impl Builder {
    /// nginx's `conflicting server name "x" on ADDR, ignored` for an exact name
    /// that an earlier server already claims on the same address.
    pub(super) fn warn_conflicting_names(
        &mut self,
        d: &Directive,
        server: &ServerConf,
        seen: &mut HashSet<(SocketAddr, String)>,
    ) {
        for listen in &server.listens {
            for name in &server.names {
                let ServerName::Exact(name) = name else {
                    continue;
                };
                if name.is_empty() {
                    continue;
                }
                if !seen.insert((listen.addr, name.clone())) {
                    self.warn(
                        d,
                        &format!(
                            "conflicting server name \"{name}\" on {}, ignored",
                            listen.addr
                        ),
                    );
                }
            }
        }
    }

    pub(super) fn server(
        &mut self,
        d: &Directive,
        http_layer: &Layer,
        http_conn: &ConnLayer,
        st: &mut HttpState,
    ) -> Res<ServerConf> {
        let body = block(d, 0, 0)?;
        let mut layer = Layer::default();
        let mut conn = ConnLayer::default();
        let mut listens: Vec<Listen> = Vec::new();
        let mut names = Vec::new();
        let mut return_ = None;
        let mut location_dirs = Vec::new();
        let mut tls_layer = super::tls::TlsLayer::default();
        let mut ssl_listen = None;
        let mut named_dirs = Vec::new();
        for x in body {
            // Run as one step so that an error here can give way to an error in
            // a location written before it (nginx reports in file order).
            let step = (|| -> Res<()> {
                match x.name.as_str() {
                    "listen" => {
                        self.listen(x, &mut listens, st)?;
                        if ssl_listen.is_none() && listens.iter().any(|l| l.ssl) {
                            ssl_listen = Some(x.span.clone());
                        }
                    }
                    "server_name" => {
                        simple(x, 1, usize::MAX)?;
                        for a in &x.args {
                            names.push(server_name(x, &a.value)?);
                        }
                    }
                    "location" => {
                        block_of(x)?;
                        if x.args.len() == 1 && arg(x, 0).starts_with('@') {
                            named_dirs.push(x);
                        } else {
                            location_dirs.push(x);
                        }
                    }
                    "return" => self.return_directive(x, &mut return_)?,
                    name if super::script::is_statement(name) => {}
                    "error_log" => {
                        error_log_directive(x)?;
                        self.ignored(x, "one error log serves the whole process");
                    }
                    _ => {
                        if !self.common(x, &mut layer, st)?
                            && !self.connection(x, &mut conn)?
                            && !self.http2_directive(x, &mut conn.http2, Ctx::Server)?
                            && !self.tuning(x, Ctx::Server, body)?
                            && !self.tls_directive(x, &mut tls_layer)?
                        {
                            return Err(not_allowed(x));
                        }
                    }
                }
                Ok(())
            })();
            if let Err(e) = step {
                let merged = layer.clone().inherit(http_layer);
                let earlier = self.locations(&location_dirs, &merged, None, st).err();
                return Err(earlier.unwrap_or(e));
            }
        }
        if listens.is_empty() {
            listens.push(Listen {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80),
                default_server: false,
                reuseport: false,
                backlog: 511,
                ssl: false,
                http2: false,
            });
        }
        if names.is_empty() {
            names.push(ServerName::Exact(String::new()));
        }
        let merged = layer.inherit(http_layer);
        let locations = self.locations(&location_dirs, &merged, None, st)?;
        let named = self.named_locations(&named_dirs, &merged, st)?;
        let script = self.script(body, None, st)?;
        let mut conf = merged.finish(None, None);
        let mut name_patterns = Vec::new();
        for x in body.iter().filter(|x| x.name == "server_name") {
            for a in &x.args {
                if let Some(re) = a.value.strip_prefix('~') {
                    let p = super::script::pattern(x, re, true)?;
                    if p.re.captures_len() > 1 {
                        name_patterns.push(p);
                    }
                }
            }
        }
        conf.redirect.name_patterns = name_patterns.into();
        if script.iter().any(|op| !matches!(op, Op::Return(_))) {
            // `return` runs in order with the other statements.
            return_ = None;
            conf.redirect.script = script.into();
        }
        let connection = conn.inherit(http_conn).finish();
        let tls = self.server_tls(
            &tls_layer.inherit(&st.tls),
            ssl_listen.as_ref(),
            connection.client_header_timeout,
        )?;
        Ok(ServerConf {
            listens,
            names,
            return_,
            locations,
            named,
            conf: Arc::new(conf),
            connection,
            tls,
            span: d.span.clone(),
        })
    }

    fn listen(&mut self, d: &Directive, listens: &mut Vec<Listen>, st: &mut HttpState) -> Res<()> {
        simple(d, 1, usize::MAX)?;
        let text = arg(d, 0);
        let addrs = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let port = parse_port(text, true).map_err(|m| listen_err(d, &m, text))?;
            vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)]
        } else if let Some(port) = text.strip_prefix("*:") {
            let port = parse_port(port, true).map_err(|m| listen_err(d, &m, text))?;
            vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)]
        } else {
            resolve(text, 80, true).map_err(|m| listen_err(d, &m, text))?
        };
        let mut default_server = false;
        let mut reuseport = false;
        let mut backlog = 511;
        let mut ssl = false;
        let mut http2 = false;
        for a in d.args.iter().skip(1) {
            let p = a.value.as_str();
            match p {
                "default_server" | "default" => default_server = true,
                "reuseport" => reuseport = true,
                "bind" => {}
                "ssl" => ssl = true,
                "http2" => {
                    if !http2 {
                        self.warn(d, "the \"listen ... http2\" directive is deprecated, use the \"http2\" directive instead");
                    }
                    http2 = true;
                }
                "quic" | "proxy_protocol" => {
                    return Err(err(
                        format!(
                        "the \"{p}\" parameter of the \"listen\" directive is not supported yet"
                    ),
                        d,
                    ))
                }
                _ => match p.strip_prefix("backlog=") {
                    Some(n) => {
                        backlog = match n.parse::<i32>() {
                            Ok(v) if v > 0 => v,
                            _ => return Err(err(format!("invalid backlog \"{p}\""), d)),
                        }
                    }
                    None => return Err(err(format!("invalid parameter \"{p}\""), d)),
                },
            }
        }
        for addr in addrs {
            if listens.iter().any(|l| l.addr == addr) {
                return Err(err(format!("a duplicate listen {addr}"), d));
            }
            if default_server && !st.default_servers.insert(addr) {
                return Err(err(format!("a duplicate default server for {addr}"), d));
            }
            listens.push(Listen {
                addr,
                default_server,
                reuseport,
                backlog,
                ssl,
                http2,
            });
        }
        Ok(())
    }
}

fn listen_err(d: &Directive, reason: &str, text: &str) -> ConfigError {
    err(
        format!("{reason} in \"{text}\" of the \"listen\" directive"),
        d,
    )
}

fn server_name(d: &Directive, raw: &str) -> Res<ServerName> {
    if let Some(re) = raw.strip_prefix('~') {
        return Ok(ServerName::Regex(compile_regex(d, re, true)?));
    }
    let name = raw.to_ascii_lowercase();
    let bad = || err(format!("invalid server name or wildcard \"{raw}\""), d);
    if let Some(rest) = name.strip_prefix("*.") {
        if rest.is_empty() || rest.contains('*') {
            return Err(bad());
        }
        return Ok(ServerName::LeadingWildcard {
            suffix: format!(".{rest}"),
            dot_form: false,
        });
    }
    if let Some(rest) = name.strip_prefix('.') {
        if rest.is_empty() || rest.contains('*') {
            return Err(bad());
        }
        return Ok(ServerName::LeadingWildcard {
            suffix: name.clone(),
            dot_form: true,
        });
    }
    if let Some(prefix) = name.strip_suffix('*') {
        if !prefix.ends_with('.') || prefix.len() < 2 || prefix.contains('*') {
            return Err(bad());
        }
        return Ok(ServerName::TrailingWildcard {
            prefix: prefix.to_string(),
        });
    }
    if name.contains('*') {
        return Err(bad());
    }
    Ok(ServerName::Exact(name))
}

#[cfg(test)]
mod tests {
    use crate::config::build::tests::ok;

    #[test]
    fn listen_forms() {
        let cases: &[(&str, &str)] = &[
            ("8080", "0.0.0.0:8080"),
            ("*:8081", "0.0.0.0:8081"),
            ("127.0.0.1", "127.0.0.1:80"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:8082", "[::1]:8082"),
            ("[::1]", "[::1]:80"),
        ];
        for (text, expected) in cases {
            let (c, _) = ok(&format!(
                "http {{ server {{ listen {text} reuseport backlog=64; }} }}"
            ));
            let l = &c.http.servers[0].listens[0];
            assert_eq!(l.addr.to_string(), *expected, "{text}");
            assert!(
                l.reuseport && !l.default_server && l.backlog == 64,
                "{text}"
            );
        }
        let (c, _) = ok("http { server { listen localhost:8083 default; } }");
        for l in &c.http.servers[0].listens {
            assert!(l.addr.ip().is_loopback() && l.addr.port() == 8083 && l.default_server);
        }
    }

    #[test]
    fn server_name_kinds() {
        let (c, _) = ok("http { server { server_name Example.COM _ \"\" .dot.example *.star.example www.tail.*; } }");
        let got: Vec<String> = c.http.servers[0]
            .names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect();
        assert_eq!(
            got,
            [
                "Exact(\"example.com\")",
                "Exact(\"_\")",
                "Exact(\"\")",
                "LeadingWildcard { suffix: \".dot.example\", dot_form: true }",
                "LeadingWildcard { suffix: \".star.example\", dot_form: false }",
                "TrailingWildcard { prefix: \"www.tail.\" }",
            ]
        );
    }

    #[test]
    fn conflicting_names_and_shared_server_ids_warn() {
        let (_, warnings) = ok("http {
              upstream u { server 127.0.0.1:9000 id=a; server 127.0.0.1:9001 id=a;
                           session_sticky hash=plain; }
              upstream v { server 127.0.0.1:9000 id=a; server 127.0.0.1:9001 id=a;
                           session_sticky; }
              server { listen 127.0.0.1:8080; server_name a.example; }
              server { listen 127.0.0.1:8080; server_name A.example b.example; }
              server { listen 127.0.0.1:8081; server_name a.example; }
            }");
        let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "servers of upstream \"u\" share the server id of \"a\"; sticky cookies cannot tell them apart",
                "conflicting server name \"a.example\" on 127.0.0.1:8080, ignored",
            ]
        );
    }
}
