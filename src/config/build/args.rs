//! The small checks every directive shares: argument counts, block or `;`,
//! duplicates, on/off flags, times, sizes, numbers, templates, header names and
//! regexes, and nginx's texts for their errors (`unknown directive`, `"x"
//! directive is not allowed here`, `invalid number of arguments ...`).

use std::str::FromStr;
use std::time::Duration;

use http::HeaderName;

use super::Res;
use crate::config::ast::Directive;
use crate::config::error::ConfigError;
use crate::config::template::{self, Template};
use crate::config::units;

/// Every directive name the builder knows, in any context: a known name in the wrong
/// place is `"x" directive is not allowed here`, anything else `unknown directive`.
const KNOWN: &[&str] = &[
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_protocols",
    "ssl_ciphers",
    "ssl_prefer_server_ciphers",
    "ssl_ecdh_curve",
    "ssl_session_cache",
    "ssl_session_timeout",
    "ssl_session_tickets",
    "ssl_session_ticket_key",
    "ssl_client_certificate",
    "ssl_trusted_certificate",
    "ssl_verify_client",
    "ssl_verify_depth",
    "ssl_handshake_timeout",
    "ssl_stapling",
    "ssl_stapling_verify",
    "worker_processes",
    "worker_rlimit_nofile",
    "worker_shutdown_timeout",
    "error_log",
    "pid",
    "daemon",
    "master_process",
    "user",
    "events",
    "worker_connections",
    "use",
    "multi_accept",
    "accept_mutex",
    "accept_mutex_delay",
    "http",
    "upstream",
    "server",
    "listen",
    "server_name",
    "location",
    "proxy_pass",
    "return",
    "proxy_set_header",
    "proxy_hide_header",
    "proxy_pass_header",
    "proxy_http_version",
    "proxy_connect_timeout",
    "proxy_read_timeout",
    "proxy_send_timeout",
    "proxy_next_upstream",
    "proxy_next_upstream_tries",
    "proxy_next_upstream_timeout",
    "proxy_buffering",
    "proxy_buffer_size",
    "proxy_buffers",
    "client_max_body_size",
    "client_header_timeout",
    "client_body_timeout",
    "send_timeout",
    "keepalive_timeout",
    "keepalive_requests",
    "large_client_header_buffers",
    "http2",
    "http2_max_concurrent_streams",
    "http2_body_preread_size",
    "http2_recv_buffer_size",
    "http2_chunk_size",
    "http2_idle_timeout",
    "http2_recv_timeout",
    "http2_max_requests",
    "http2_max_field_size",
    "http2_max_header_size",
    "http2_push",
    "http2_push_preload",
    "ignore_invalid_headers",
    "underscores_in_headers",
    "access_log",
    "limit_except",
    "log_format",
    "server_tokens",
    "chunked_transfer_encoding",
    "absolute_redirect",
    "server_name_in_redirect",
    "port_in_redirect",
    "session_sticky",
    "session_sticky_hide_cookie",
    "session_sticky_header",
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "types",
    "default_type",
    "charset",
    "root",
    "alias",
    "index",
    "try_files",
    "charset_types",
    "etag",
    "if_modified_since",
    "max_ranges",
    "log_not_found",
    "disable_symlinks",
    "autoindex",
    "autoindex_exact_size",
    "autoindex_localtime",
    "autoindex_format",
    "aio",
    "directio",
    "directio_alignment",
    "sendfile_max_chunk",
    "read_ahead",
    "output_buffers",
    "open_file_cache",
    "open_file_cache_valid",
    "open_file_cache_min_uses",
    "open_file_cache_errors",
    "gzip",
    "gzip_types",
    "gzip_min_length",
    "gzip_comp_level",
    "gzip_vary",
    "gzip_proxied",
    "gzip_disable",
    "gzip_http_version",
    "gzip_static",
    "gzip_buffers",
    "gzip_window",
    "gzip_hash",
    "brotli",
    "brotli_types",
    "brotli_comp_level",
    "brotli_min_length",
    "brotli_static",
    "brotli_buffers",
    "brotli_window",
    "keepalive",
    "include",
    "check",
    "check_http_send",
    "check_http_expect_alive",
    "check_keepalive_requests",
    "check_shm_size",
    "check_status",
    "add_header",
    "add_trailer",
    "expires",
    "resolver",
    "resolver_timeout",
    "zone",
    "allow",
    "deny",
    "satisfy",
    "auth_basic",
    "auth_basic_user_file",
    "auth_request",
    "auth_request_set",
    "set_real_ip_from",
    "real_ip_header",
    "real_ip_recursive",
    "limit_req_zone",
    "limit_req",
    "limit_req_status",
    "limit_req_log_level",
    "limit_req_dry_run",
    "limit_conn_zone",
    "limit_conn",
    "limit_conn_status",
    "limit_conn_log_level",
    "limit_conn_dry_run",
    "stub_status",
    "ip_hash",
    "hash",
    "least_conn",
    "random",
    "keepalive_time",
    "proxy_redirect",
    "proxy_cookie_domain",
    "proxy_cookie_path",
    "proxy_request_buffering",
    "proxy_ignore_headers",
    "proxy_method",
    "proxy_cookie_flags",
    "proxy_set_body",
    "proxy_pass_request_headers",
    "proxy_pass_request_body",
    "error_page",
    "proxy_intercept_errors",
    "recursive_error_pages",
    "internal",
    "rewrite",
    "set",
    "break",
    "if",
    "rewrite_log",
    "uninitialized_variable_warn",
    "map",
    "split_clients",
    "geo",
    "proxy_ssl_verify",
    "proxy_ssl_trusted_certificate",
    "proxy_ssl_verify_depth",
    "proxy_ssl_name",
    "proxy_ssl_server_name",
    "proxy_ssl_protocols",
    "proxy_ssl_ciphers",
    "proxy_ssl_certificate",
    "proxy_ssl_certificate_key",
    "proxy_ssl_session_reuse",
];

pub(super) fn arg(d: &Directive, i: usize) -> &str {
    d.args.get(i).map_or("", |a| a.value.as_str())
}

pub(super) fn err(message: impl Into<String>, d: &Directive) -> ConfigError {
    ConfigError::new(message, &d.span)
}

/// nginx's `"NAME" directive MESSAGE` (e.g. `invalid value`).
pub(super) fn directive_err(d: &Directive, what: &str) -> ConfigError {
    err(format!("\"{}\" directive {what}", d.name), d)
}

pub(super) fn duplicate(d: &Directive) -> ConfigError {
    directive_err(d, "is duplicate")
}

pub(super) fn not_allowed(d: &Directive) -> ConfigError {
    if KNOWN.contains(&d.name.as_str()) || super::tuning::is_tuning(&d.name) {
        directive_err(d, "is not allowed here")
    } else {
        err(format!("unknown directive \"{}\"", d.name), d)
    }
}

fn arity(d: &Directive, min: usize, max: usize) -> Res<()> {
    if d.args.len() < min || d.args.len() > max {
        return Err(err(
            format!("invalid number of arguments in \"{}\" directive", d.name),
            d,
        ));
    }
    Ok(())
}

/// A directive ending in `;` with `min..=max` arguments.
pub(super) fn simple(d: &Directive, min: usize, max: usize) -> Res<()> {
    if d.block.is_some() {
        return Err(err(
            format!("directive \"{}\" is not terminated by \";\"", d.name),
            d,
        ));
    }
    arity(d, min, max)
}

/// A block directive with `min..=max` arguments; returns its block.
pub(super) fn block(d: &Directive, min: usize, max: usize) -> Res<&[Directive]> {
    let Some(block) = &d.block else {
        return Err(err(
            format!("directive \"{}\" has no opening \"{{\"", d.name),
            d,
        ));
    };
    arity(d, min, max)?;
    Ok(block)
}

pub(super) fn set_once<T>(slot: &mut Option<T>, value: T, d: &Directive) -> Res<()> {
    if slot.is_some() {
        return Err(duplicate(d));
    }
    *slot = Some(value);
    Ok(())
}

pub(super) fn flag(d: &Directive) -> Res<bool> {
    match arg(d, 0).to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(err(
            format!(
                "invalid value \"{}\" in \"{}\" directive, it must be \"on\" or \"off\"",
                arg(d, 0),
                d.name
            ),
            d,
        )),
    }
}

pub(super) fn time(d: &Directive, value: &str) -> Res<Duration> {
    units::parse_time(value).map_err(|_| directive_err(d, "invalid value"))
}

pub(super) fn size(d: &Directive, value: &str) -> Res<u64> {
    units::parse_size(value).map_err(|_| directive_err(d, "invalid value"))
}

/// The directive's one argument as a whole number above zero, or nginx's
/// `invalid value "V" in "NAME" directive`.
pub(super) fn positive<T: FromStr + PartialOrd + Default>(d: &Directive) -> Res<T> {
    match arg(d, 0).parse::<T>() {
        Ok(n) if n > T::default() && arg(d, 0).bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(err(
            format!(
                "invalid value \"{}\" in \"{}\" directive",
                arg(d, 0),
                d.name
            ),
            d,
        )),
    }
}

pub(super) fn number<T: FromStr>(d: &Directive, value: &str) -> Res<T> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(directive_err(d, "invalid number"));
    }
    value
        .parse()
        .map_err(|_| directive_err(d, "invalid number"))
}

pub(super) fn template_arg(d: &Directive, value: &str) -> Res<Template> {
    template::parse_with(value, &super::uservars::lookup).map_err(|m| err(m, d))
}

pub(super) fn header_name(d: &Directive, value: &str) -> Res<HeaderName> {
    HeaderName::from_bytes(value.as_bytes())
        .map_err(|_| err(format!("invalid header name \"{value}\""), d))
}

pub(super) fn compile_regex(
    d: &Directive,
    source: &str,
    case_insensitive: bool,
) -> Res<regex::Regex> {
    let pattern = if case_insensitive {
        format!("(?i){source}")
    } else {
        source.to_string()
    };
    regex::Regex::new(&pattern).map_err(|e| {
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        err(format!("regex \"{source}\" compile failed: {reason}"), d)
    })
}

/// Checks that a block directive really has a block (its arguments are checked
/// when it is built).
pub(super) fn block_of(d: &Directive) -> Res<()> {
    if d.block.is_none() {
        return Err(err(
            format!("directive \"{}\" has no opening \"{{\"", d.name),
            d,
        ));
    }
    Ok(())
}
