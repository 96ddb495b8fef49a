//! Directives that only tune nginx's own memory, files, buffers or scheduling
//! (`*_hash_max_size`, `*_temp_path`, `client_body_buffer_size`,
//! `open_file_cache`, ...): accepted with nginx's contexts and argument checks,
//! and a `-t` warning saying why they change nothing here. One table, [`TUNING`]:
//! a directive's name, the contexts nginx allows it in, the shape of its value and
//! the reason it is ignored. A directive that changes what a client or backend
//! sees never belongs here.

use std::collections::HashSet;
use std::time::Duration;

use super::args::{arg, duplicate, err, flag, not_allowed, number, simple, size, time};
use super::{Builder, Res};
use crate::config::ast::Directive;

/// The context a directive is written in, as a bit for [`Tuning::contexts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctx {
    Main = 1,
    Events = 2,
    Http = 4,
    Server = 8,
    Location = 16,
}

const MAIN: u8 = Ctx::Main as u8;
const EVENTS: u8 = Ctx::Events as u8;
const HTTP: u8 = Ctx::Http as u8;
const HS: u8 = HTTP | Ctx::Server as u8;
const HSL: u8 = HS | Ctx::Location as u8;
const LOCATION: u8 = Ctx::Location as u8;

/// The shape of a tuning directive's arguments, checked as nginx checks them.
#[derive(Debug, Clone, Copy)]
enum Value {
    Flag,
    Size,
    Time,
    /// A whole number (`0` allowed).
    Number,
    /// A whole number that may be negative (`worker_priority -5`).
    Signed,
    /// `NUMBER SIZE` (`output_buffers 2 32k`).
    NumberSize,
    /// `off` or a size (`directio`).
    SizeOrOff,
    /// `PATH [LEVEL1 [LEVEL2 [LEVEL3]]]`, each level a number above 0 (the
    /// `*_temp_path`s).
    TempPath,
    /// `off` or `max=N [inactive=TIME]`, plus `min_uses=N valid=TIME` when
    /// `log_cache` (`open_file_cache`, `open_log_file_cache`).
    Cache {
        log_cache: bool,
    },
    /// One of the words given.
    Choice(&'static [&'static str]),
    /// Anything, `min..=max` arguments (checked no further).
    Args(usize, usize),
    /// As `Args`, and the directive may be repeated at one level
    /// (`fastcgi_param`).
    Repeat(usize, usize),
}

struct Tuning {
    name: &'static str,
    /// The contexts nginx allows, as [`Ctx`] bits.
    contexts: u8,
    value: Value,
    why: &'static str,
}

const MEMORY: &str = "the proxy sizes its own tables and buffers";
const FILES: &str = "the proxy keeps no temporary files";
const STREAMED: &str = "bodies are always streamed";
const PROCESS: &str = "the proxy runs as one process with worker threads";
const FASTCGI: &str = "it acts only with \"fastcgi_pass\", which is not supported";

/// Every tuning directive accepted with a warning.
#[rustfmt::skip]
const TUNING: &[Tuning] = &[
    // Main context: the process.
    t("pcre_jit", MAIN, Value::Flag, "regular expressions are compiled by the regex crate"),
    t("timer_resolution", MAIN, Value::Time, "the proxy reads the clock when it needs it"),
    t("worker_priority", MAIN, Value::Signed, PROCESS),
    t("worker_cpu_affinity", MAIN, Value::Args(1, usize::MAX), PROCESS),
    t("worker_rlimit_core", MAIN, Value::Size, PROCESS),
    t("working_directory", MAIN, Value::Args(1, 1), PROCESS),
    t("lock_file", MAIN, Value::Args(1, 1), PROCESS),
    t("thread_pool", MAIN, Value::Args(2, 3), "the proxy does no blocking file I/O"),
    t("worker_aio_requests", EVENTS, Value::Number, "the proxy does no asynchronous file I/O"),
    t("load_module", MAIN, Value::Args(1, 1),
      "the proxy has no dynamic modules: what it supports is built in, other modules' directives stay unknown"),
    t("env", MAIN, Value::Args(1, 1), "the proxy keeps the environment it was started with"),
    // Hash tables nginx sizes at start-up.
    t("server_names_hash_max_size", HTTP, Value::Number, MEMORY),
    t("server_names_hash_bucket_size", HTTP, Value::Number, MEMORY),
    t("variables_hash_max_size", HTTP, Value::Number, MEMORY),
    t("variables_hash_bucket_size", HTTP, Value::Number, MEMORY),
    t("map_hash_max_size", HTTP, Value::Number, MEMORY),
    t("map_hash_bucket_size", HTTP, Value::Number, MEMORY),
    t("types_hash_max_size", HSL, Value::Number, MEMORY),
    t("types_hash_bucket_size", HSL, Value::Number, MEMORY),
    t("proxy_headers_hash_max_size", HSL, Value::Number, MEMORY),
    t("proxy_headers_hash_bucket_size", HSL, Value::Number, MEMORY),
    // Buffers and memory pools.
    t("client_header_buffer_size", HS, Value::Size, MEMORY),
    t("client_body_buffer_size", HSL, Value::Size, STREAMED),
    t("client_body_in_single_buffer", HSL, Value::Flag, STREAMED),
    t("connection_pool_size", HS, Value::Size, MEMORY),
    t("request_pool_size", HS, Value::Size, MEMORY),
    t("output_buffers", HSL, Value::NumberSize, STREAMED),
    t("postpone_output", HSL, Value::Size, STREAMED),
    t("subrequest_output_buffer_size", HSL, Value::Size, STREAMED),
    t("send_lowat", HSL, Value::Size, "the proxy writes as soon as data is ready"),
    t("proxy_busy_buffers_size", HSL, Value::Size, STREAMED),
    t("proxy_temp_file_write_size", HSL, Value::Size, FILES),
    t("proxy_max_temp_file_size", HSL, Value::Size, FILES),
    // Temporary files.
    t("client_body_temp_path", HSL, Value::TempPath, FILES),
    t("proxy_temp_path", HSL, Value::TempPath, FILES),
    t("fastcgi_temp_path", HSL, Value::TempPath, FILES),
    t("uwsgi_temp_path", HSL, Value::TempPath, FILES),
    t("scgi_temp_path", HSL, Value::TempPath, FILES),
    // File I/O and caches of open files.
    t("open_file_cache_events", HSL, Value::Flag, "obsolete: nginx ignores it too"),
    t("open_log_file_cache", HSL, Value::Cache { log_cache: true }, "log files stay open"),
    t("aio", HSL, Value::Args(1, 1), "the proxy does no asynchronous file I/O"),
    t("aio_write", HSL, Value::Flag, "the proxy does no asynchronous file I/O"),
    t("directio", HSL, Value::SizeOrOff, "the proxy does no direct file I/O"),
    t("directio_alignment", HSL, Value::Size, "the proxy does no direct file I/O"),
    t("read_ahead", HSL, Value::Size, "the proxy does no file read-ahead"),
    // Connections and redirects.
    t("reset_timedout_connection", HSL, Value::Flag, "a timed-out connection is simply closed"),
    t("lingering_close", HSL, Value::Choice(&["off", "on", "always"]), "a connection is closed once its response is sent"),
    t("lingering_time", HSL, Value::Time, "a connection is closed once its response is sent"),
    t("lingering_timeout", HSL, Value::Time, "a connection is closed once its response is sent"),
    t("msie_padding", HSL, Value::Flag, "error pages are not padded for old browsers"),
    // Logging detail.
    t("log_subrequest", HSL, Value::Flag, "the proxy makes no subrequests"),
    // ngx_http_fastcgi_module's settings: they act only where `fastcgi_pass`
    // is, which is refused (so a config that loads never relies on them).
    t("fastcgi_connect_timeout", HSL, Value::Time, FASTCGI),
    t("fastcgi_send_timeout", HSL, Value::Time, FASTCGI),
    t("fastcgi_read_timeout", HSL, Value::Time, FASTCGI),
    t("fastcgi_next_upstream_timeout", HSL, Value::Time, FASTCGI),
    t("fastcgi_next_upstream_tries", HSL, Value::Number, FASTCGI),
    t("fastcgi_next_upstream", HSL, Value::Args(1, usize::MAX), FASTCGI),
    t("fastcgi_buffer_size", HSL, Value::Size, FASTCGI),
    t("fastcgi_buffers", HSL, Value::NumberSize, FASTCGI),
    t("fastcgi_busy_buffers_size", HSL, Value::Size, FASTCGI),
    t("fastcgi_temp_file_write_size", HSL, Value::Size, FASTCGI),
    t("fastcgi_max_temp_file_size", HSL, Value::Size, FASTCGI),
    t("fastcgi_limit_rate", HSL, Value::Size, FASTCGI),
    t("fastcgi_buffering", HSL, Value::Flag, FASTCGI),
    t("fastcgi_request_buffering", HSL, Value::Flag, FASTCGI),
    t("fastcgi_keep_conn", HSL, Value::Flag, FASTCGI),
    t("fastcgi_intercept_errors", HSL, Value::Flag, FASTCGI),
    t("fastcgi_ignore_client_abort", HSL, Value::Flag, FASTCGI),
    t("fastcgi_pass_request_body", HSL, Value::Flag, FASTCGI),
    t("fastcgi_pass_request_headers", HSL, Value::Flag, FASTCGI),
    t("fastcgi_socket_keepalive", HSL, Value::Flag, FASTCGI),
    t("fastcgi_force_ranges", HSL, Value::Flag, FASTCGI),
    t("fastcgi_index", HSL, Value::Args(1, 1), FASTCGI),
    t("fastcgi_bind", HSL, Value::Args(1, 2), FASTCGI),
    t("fastcgi_ignore_headers", HSL, Value::Args(1, usize::MAX), FASTCGI),
    t("fastcgi_split_path_info", LOCATION, Value::Args(1, 1), FASTCGI),
    t("fastcgi_param", HSL, Value::Repeat(2, 3), FASTCGI),
    t("fastcgi_hide_header", HSL, Value::Repeat(1, 1), FASTCGI),
    t("fastcgi_pass_header", HSL, Value::Repeat(1, 1), FASTCGI),
    t("fastcgi_catch_stderr", HSL, Value::Repeat(1, 1), FASTCGI),
];

const fn t(name: &'static str, contexts: u8, value: Value, why: &'static str) -> Tuning {
    Tuning {
        name,
        contexts,
        value,
        why,
    }
}

/// Whether `name` is a tuning directive (for `unknown directive` vs `not allowed`).
pub(super) fn is_tuning(name: &str) -> bool {
    TUNING.iter().any(|t| t.name == name)
}

/// Which tuning directives each level has set, to report a second one as nginx's
/// `"x" directive is duplicate`. A level is named by the address of its block.
#[derive(Debug, Default)]
pub(super) struct TuningSeen(HashSet<(usize, &'static str)>);

impl Builder {
    /// Accepts `d` when it is a tuning directive allowed in `ctx`, checking its
    /// arguments and warning that it is ignored. `level` is the block `d` is written
    /// in (for duplicates). `Ok(false)` when `d` is not a tuning directive.
    pub(super) fn tuning(&mut self, d: &Directive, ctx: Ctx, level: &[Directive]) -> Res<bool> {
        let Some(entry) = TUNING.iter().find(|t| t.name == d.name) else {
            return Ok(false);
        };
        if entry.contexts & ctx as u8 == 0 {
            return Err(not_allowed(d));
        }
        check_value(d, entry.value)?;
        if !matches!(entry.value, Value::Repeat(..))
            && !self
                .tuning_seen
                .0
                .insert((level.as_ptr() as usize, entry.name))
        {
            return Err(duplicate(d));
        }
        self.ignored(d, entry.why);
        Ok(true)
    }
}

fn check_value(d: &Directive, value: Value) -> Res<()> {
    match value {
        Value::Flag => {
            simple(d, 1, 1)?;
            flag(d)?;
        }
        Value::Size => {
            simple(d, 1, 1)?;
            size(d, arg(d, 0))?;
        }
        Value::Time => {
            simple(d, 1, 1)?;
            time(d, arg(d, 0))?;
        }
        Value::Number => {
            simple(d, 1, 1)?;
            number::<u64>(d, arg(d, 0))?;
        }
        Value::Signed => {
            simple(d, 1, 1)?;
            let v = arg(d, 0);
            number::<i64>(d, v.strip_prefix('-').unwrap_or(v))?;
        }
        Value::NumberSize => {
            simple(d, 2, 2)?;
            number::<u64>(d, arg(d, 0))?;
            size(d, arg(d, 1))?;
        }
        Value::SizeOrOff => {
            simple(d, 1, 1)?;
            if arg(d, 0) != "off" {
                size(d, arg(d, 0))?;
            }
        }
        Value::TempPath => {
            simple(d, 1, 4)?;
            for a in d.args.iter().skip(1) {
                if !matches!(a.value.parse::<u32>(), Ok(n) if n > 0) {
                    return Err(err(format!("invalid value \"{}\"", a.value), d));
                }
            }
        }
        Value::Cache { log_cache } => {
            simple(d, 1, if log_cache { 4 } else { 2 })?;
            cache_params(d, log_cache)?;
        }
        Value::Choice(words) => {
            simple(d, 1, 1)?;
            if !words.contains(&arg(d, 0)) {
                return Err(err(format!("invalid value \"{}\"", arg(d, 0)), d));
            }
        }
        Value::Args(min, max) | Value::Repeat(min, max) => simple(d, min, max)?,
    }
    Ok(())
}

/// `off` | `max=N [inactive=TIME] [min_uses=N] [valid=TIME]` with nginx's texts
/// (nginx reads them in any order, `off` included): `max` and `inactive`
/// (default 60 s), or `None` for `off`.
pub(super) fn cache_params(d: &Directive, log_cache: bool) -> Res<Option<(u64, Duration)>> {
    let mut off = false;
    let mut max = None;
    let mut inactive = Duration::from_secs(60);
    for a in &d.args {
        let p = a.value.as_str();
        let bad = || err(format!("invalid \"{}\" parameter \"{p}\"", d.name), d);
        if p == "off" {
            off = true;
            continue;
        }
        let (key, value) = p.split_once('=').ok_or_else(bad)?;
        match key {
            "max" => {
                let n = number::<u64>(d, value).map_err(|_| bad())?;
                // nginx refuses `open_file_cache max=0` as a bad parameter;
                // `open_log_file_cache max=0` is read as no `max`.
                if n == 0 && !log_cache {
                    return Err(bad());
                }
                max = Some(n).filter(|&n| n > 0);
            }
            "inactive" => {
                inactive = time(d, value).map_err(|_| bad())?;
            }
            "min_uses" if log_cache => {
                number::<u64>(d, value).map_err(|_| bad())?;
            }
            "valid" if log_cache => {
                time(d, value).map_err(|_| bad())?;
            }
            _ => return Err(bad()),
        }
    }
    if off {
        return Ok(None);
    }
    match max {
        Some(max) => Ok(Some((max, inactive))),
        None => Err(err(
            format!("\"{}\" must have the \"max\" parameter", d.name),
            d,
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::build::tests::ok;
    use crate::config::load_str;

    fn load_err(src: &str) -> String {
        match load_str(src, Path::new("/etc/proxy/test.conf")) {
            Ok(_) => panic!("should fail:\n{src}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_tuning_directive_is_unique_and_has_a_context() {
        let mut names: Vec<&str> = super::TUNING.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::TUNING.len());
        assert!(super::TUNING
            .iter()
            .all(|t| t.contexts != 0 && !t.why.is_empty()));
    }

    #[test]
    fn tuning_directives_load_with_a_warning_each() {
        let (c, warnings) = ok(
            "pcre_jit on;\nworker_priority -5;\nworker_rlimit_core 500m;\n\
            events { worker_aio_requests 32; }\n\
            http {\n\
             server_names_hash_max_size 1024;\n server_names_hash_bucket_size 128;\n\
             types_hash_max_size 2048;\n client_body_temp_path /tmp/body 1 2;\n\
             proxy_temp_path proxy_temp;\n open_file_cache max=1000 inactive=20s;\n\
             open_log_file_cache max=10 inactive=1m min_uses=2 valid=1m;\n\
             output_buffers 2 32k;\n directio off;\n lingering_close always;\n\
             server {\n  client_header_buffer_size 4k;\n  open_file_cache off;\n\
              location / {\n   client_body_buffer_size 128k;\n   proxy_busy_buffers_size 16k;\n\
               msie_padding off;\n   types_hash_bucket_size 64;\n  }\n }\n}\n",
        );
        assert_eq!(c.http.servers.len(), 1);
        assert_eq!(warnings.len(), 18);
        assert_eq!(
            warnings[3].to_string(),
            "\"worker_aio_requests\" directive is ignored: the proxy does no asynchronous \
             file I/O in /etc/proxy/test.conf:4"
        );
        assert!(warnings
            .iter()
            .all(|w| w.message.contains("directive is ignored: ")));
    }

    #[test]
    fn tuning_directives_are_checked_like_nginx() {
        let cases: &[(&str, &str)] = &[
            ("http { server { server_names_hash_max_size 512; } }", "\"server_names_hash_max_size\" directive is not allowed here in /etc/proxy/test.conf:1"),
            ("http { server { location / { client_header_buffer_size 1k; } } }", "\"client_header_buffer_size\" directive is not allowed here in /etc/proxy/test.conf:1"),
            ("events { pcre_jit on; } http { }", "\"pcre_jit\" directive is not allowed here in /etc/proxy/test.conf:1"),
            ("http { proxy_temp_path; }", "invalid number of arguments in \"proxy_temp_path\" directive in /etc/proxy/test.conf:1"),
            ("http { proxy_temp_path /t 1 0; }", "invalid value \"0\" in /etc/proxy/test.conf:1"),
            ("http { client_body_buffer_size 12q; }", "\"client_body_buffer_size\" directive invalid value in /etc/proxy/test.conf:1"),
            ("http { open_file_cache inactive=20s; }", "\"open_file_cache\" must have the \"max\" parameter in /etc/proxy/test.conf:1"),
            ("http { open_file_cache max=0; }", "invalid \"open_file_cache\" parameter \"max=0\" in /etc/proxy/test.conf:1"),
            ("http { open_file_cache max=1 valid=1s; }", "invalid \"open_file_cache\" parameter \"valid=1s\" in /etc/proxy/test.conf:1"),
            ("http { open_log_file_cache max=1 size=1; }", "invalid \"open_log_file_cache\" parameter \"size=1\" in /etc/proxy/test.conf:1"),
            ("http { reset_timedout_connection yes; }", "invalid value \"yes\" in \"reset_timedout_connection\" directive, it must be \"on\" or \"off\" in /etc/proxy/test.conf:1"),
            ("http { lingering_close sometimes; }", "invalid value \"sometimes\" in /etc/proxy/test.conf:1"),
            ("http { output_buffers 2; }", "invalid number of arguments in \"output_buffers\" directive in /etc/proxy/test.conf:1"),
            ("http {\n types_hash_max_size 1;\n types_hash_max_size 2;\n}", "\"types_hash_max_size\" directive is duplicate in /etc/proxy/test.conf:3"),
            ("http { postpone_output 0 { } }", "directive \"postpone_output\" is not terminated by \";\" in /etc/proxy/test.conf:1"),
        ];
        for (src, want) in cases {
            assert_eq!(load_err(src), *want, "{src}");
        }
        // nginx reads `off` anywhere among the cache parameters.
        ok("http { open_file_cache off max=1; }");
        // FastCGI settings load (nothing uses them without `fastcgi_pass`);
        // `fastcgi_param` and the header lists repeat, the others do not.
        let (_, warnings) = ok(
            "http {\n fastcgi_connect_timeout 300;\n fastcgi_buffers 4 64k;\n\
             server {\n  location ~ \\.php$ {\n   fastcgi_split_path_info ^(.+\\.php)(/.+)$;\n\
               fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
               fastcgi_param HTTPS $https if_not_empty;\n   fastcgi_hide_header X-Powered-By;\n\
               fastcgi_hide_header X-Runtime;\n  }\n }\n}\n",
        );
        assert_eq!(warnings.len(), 7);
        assert_eq!(
            warnings[0].to_string(),
            "\"fastcgi_connect_timeout\" directive is ignored: it acts only with \
             \"fastcgi_pass\", which is not supported in /etc/proxy/test.conf:2"
        );
        let fastcgi: &[(&str, &str)] = &[
            ("http { fastcgi_split_path_info ^(.+)$; }", "\"fastcgi_split_path_info\" directive is not allowed here in /etc/proxy/test.conf:1"),
            ("http { fastcgi_read_timeout 1; fastcgi_read_timeout 2; }", "\"fastcgi_read_timeout\" directive is duplicate in /etc/proxy/test.conf:1"),
            ("http { fastcgi_param A; }", "invalid number of arguments in \"fastcgi_param\" directive in /etc/proxy/test.conf:1"),
            ("http { server { location / { fastcgi_pass 127.0.0.1:9000; } } }", "\"fastcgi_pass\" is not supported: the proxy speaks HTTP to its backends (\"proxy_pass\"), not FastCGI in /etc/proxy/test.conf:1"),
            ("http { fastcgi_cache_path /tmp/c keys_zone=c:1m; }", "\"fastcgi_cache_path\" is not supported: the proxy has no response cache in /etc/proxy/test.conf:1"),
        ];
        for (src, want) in fastcgi {
            assert_eq!(load_err(src), *want, "{src}");
        }
        // The same directive at two levels is no duplicate.
        ok("http { types_hash_max_size 1; server { types_hash_max_size 2; location / { types_hash_max_size 3; } } }");
    }
}
