//! Which upstreams' http checks speak TLS, and with which settings (pure: a
//! walk over the loaded configuration, no I/O).
//!
//! Tengine's `check type=http` always sends plain HTTP, so a check of peers
//! that speak only TLS fails and marks every peer down. Here an upstream's
//! `check type=http` runs over TLS when:
//!
//! - every `proxy_pass` that names the upstream is `https://` (in any
//!   location, `if` block or server), and
//! - the check has no `port=`: with one, it checks another port of the peer,
//!   which is how Tengine users check a TLS upstream today (a plain HTTP port
//!   for the checks), and it stays plain.
//!
//! The TLS settings are those of the first such location in the file (its
//! `proxy_ssl_verify`, trusted certificates, `proxy_ssl_name` / SNI, client
//! certificate, protocols, ciphers and session cache). An upstream named by
//! both `http://` and `https://` keeps Tengine's plain checks
//! ([`Scheme::Mixed`]; loading the configuration warns of it).

use std::sync::Arc;

use crate::config::upstream_use::upstream_use;
use crate::config::{Config, Part, Variable};
use crate::tls::client::{server_name, BackendTls};
use crate::upstream::check::tls::CheckTls;

/// How the http checks of one upstream go.
#[derive(Debug, Clone)]
pub enum Scheme {
    /// Plain HTTP (Tengine's way).
    Plain,
    /// Over TLS, as the requests go.
    Tls(CheckTls),
    /// Plain, though some `proxy_pass` to the upstream is `https://`: it is
    /// named by both schemes.
    Mixed,
    /// Over TLS, but verifying (and sending) the `proxy_pass` host: the
    /// `proxy_ssl_name` written (the `String`) reads the request, or gives
    /// no valid name.
    TlsByHost(CheckTls, String),
    /// Plain: neither `proxy_ssl_name` nor the `proxy_pass` host is a valid
    /// name.
    BadName(String),
}

/// How the http checks of upstream `u` (an index of `HttpConf::upstreams`) go.
pub fn scheme(config: &Config, u: usize) -> Scheme {
    let Some(upstream) = config.http.upstreams.get(u) else {
        return Scheme::Plain;
    };
    let Some(check) = &upstream.check else {
        return Scheme::Plain;
    };
    if !check.follows_peer_scheme() {
        return Scheme::Plain;
    }
    let used = upstream_use(&config.http.servers, u);
    let Some(https) = used.first_https else {
        return Scheme::Plain;
    };
    let (Some(tls), Some(pass)) = (&https.proxy_ssl, &https.proxy_pass) else {
        return Scheme::Plain;
    };
    if used.plain {
        return Scheme::Mixed;
    }
    let check_tls = |name| CheckTls {
        config: Arc::clone(&tls.config),
        name,
    };
    let host = &pass.proxy_host;
    match check_name(tls, host).map(|n| server_name(&n)) {
        Some(Some(name)) => Scheme::Tls(check_tls(name)),
        _ => {
            let written = tls.name.as_ref().map(|t| t.source.clone());
            match (server_name(host), written) {
                (Some(name), Some(written)) => Scheme::TlsByHost(check_tls(name), written),
                (Some(name), None) => Scheme::Tls(check_tls(name)),
                (None, _) => Scheme::BadName(host.clone()),
            }
        }
    }
}

/// The name a check verifies (and sends as SNI): `proxy_ssl_name` with
/// `$proxy_host` (the `host[:port]` of the `proxy_pass` URL) filled in, or
/// the `proxy_pass` host as for a request. `None` when `proxy_ssl_name` reads
/// the request (a check has none).
fn check_name(tls: &BackendTls, proxy_host: &str) -> Option<String> {
    let Some(template) = &tls.name else {
        return Some(proxy_host.to_string());
    };
    template
        .parts
        .iter()
        .map(|p| match p {
            Part::Literal(text) => Some(text.as_str()),
            Part::Var(Variable::ProxyHost) => Some(proxy_host),
            Part::Var(_) => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn load(src: &str) -> Config {
        crate::config::load_str(src, std::path::Path::new("/t.conf"))
            .unwrap()
            .0
    }

    /// What `scheme` says of the first upstream, in words.
    fn verdict(config: &Config) -> String {
        match scheme(config, 0) {
            Scheme::Plain => "plain".to_string(),
            Scheme::Mixed => "mixed".to_string(),
            Scheme::BadName(n) => format!("bad {n}"),
            Scheme::Tls(t) => format!("tls {}", t.name.to_str()),
            Scheme::TlsByHost(t, written) => format!("tls {} not {written}", t.name.to_str()),
        }
    }

    #[test]
    fn http_checks_of_an_upstream_only_https_names_speak_tls() {
        let http = "check type=http interval=1000;";
        let cases = [
            // (check, http-level body, verdict)
            (
                http,
                "server { location / { proxy_pass https://u; } }",
                "tls u",
            ),
            (http, "server { location / { proxy_pass http://u; } }", "plain"),
            (http, "server { }", "plain"),
            (
                http,
                "server { location /a { proxy_pass https://u; } location /b { proxy_pass http://u; } }",
                "mixed",
            ),
            // port=: Tengine's way to check a TLS peer on a plain port.
            (
                "check type=http port=8080;",
                "server { location / { proxy_pass https://u; } }",
                "plain",
            ),
            (
                "check type=tcp;",
                "server { location / { proxy_pass https://u; } }",
                "plain",
            ),
            (
                "check type=ssl_hello;",
                "server { location / { proxy_pass https://u; } }",
                "plain",
            ),
            ("", "server { location / { proxy_pass https://u; } }", "plain"),
            // proxy_ssl_name, with $proxy_host filled in; the first https
            // location's settings.
            (
                http,
                "server { location /a { proxy_pass https://u; proxy_ssl_name api.example; }
                          location /b { proxy_pass https://u; proxy_ssl_name other.example; } }",
                "tls api.example",
            ),
            (
                http,
                "server { location / { proxy_pass https://u; proxy_ssl_name a.$proxy_host; } }",
                "tls a.u",
            ),
            (
                http,
                "server { location / { proxy_pass https://u; proxy_ssl_name \"bad name\"; } }",
                "tls u not bad name",
            ),
            // A name read from the request: the proxy_pass host instead.
            (
                http,
                "server { location / { proxy_pass https://u; proxy_ssl_name $host; } }",
                "tls u not $host",
            ),
            // Nested locations, `if` blocks, named locations are all seen.
            (
                http,
                "server { location / { location /in { proxy_pass https://u; } } }",
                "tls u",
            ),
            (
                http,
                "server { location / { if ($arg_x) { proxy_pass https://u; } } }",
                "tls u",
            ),
            (
                http,
                "server { location / { proxy_pass https://u; }
                          location @n { proxy_pass http://u; } }",
                "mixed",
            ),
        ];
        for (check, body, want) in cases {
            let src = format!("http {{ upstream u {{ server 127.0.0.1:8443; {check} }} {body} }}");
            assert_eq!(verdict(&load(&src)), want, "{check} {body}");
        }
    }

    #[test]
    fn the_check_shares_the_locations_tls_settings() {
        let config = load(
            "http { upstream u { server 127.0.0.1:8443; check type=http; }
               server { location / { proxy_pass https://u; proxy_ssl_server_name on; } } }",
        );
        let Scheme::Tls(t) = scheme(&config, 0) else {
            panic!("tls expected");
        };
        let loc = config.http.servers[0].locations[0].conf.proxy_ssl.clone();
        assert!(Arc::ptr_eq(&t.config, &loc.unwrap().config));
        assert!(t.config.enable_sni);
        assert!(matches!(scheme(&config, 7), Scheme::Plain));
    }
}
