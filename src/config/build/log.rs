//! The logging directives: `error_log` (path or `syslog:`, and level),
//! `access_log` (targets or `off`, checked against the formats once the http
//! block is read; `if=`, `syslog:`) and
//! `log_format` (with `escape=`), and nginx's predefined `combined` format.

use std::path::PathBuf;
use std::sync::Arc;

use super::args::{arg, err, simple, template_arg};
use super::inherit::Layer;
use super::resolve::resolve;
use super::{Builder, HttpState, Res};
use crate::config::ast::Directive;
use crate::config::syslog::{self, Syslog};
use crate::config::template::Escape;
use crate::config::{AccessLog, AccessLogTarget, ErrorLog, LogLevel};

/// nginx's predefined `combined` format.
pub const COMBINED_FORMAT: &str = "$remote_addr - $remote_user [$time_local] \
\"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

pub(super) fn error_log_directive(d: &Directive) -> Res<ErrorLog> {
    simple(d, 1, 2)?;
    let level = match d.args.get(1) {
        None => LogLevel::Error,
        Some(a) => match a.value.as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "notice" => LogLevel::Notice,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "crit" => LogLevel::Crit,
            "alert" => LogLevel::Alert,
            "emerg" => LogLevel::Emerg,
            other => return Err(err(format!("invalid log level \"{other}\""), d)),
        },
    };
    Ok(ErrorLog {
        path: arg(d, 0).to_string(),
        level,
        syslog: syslog_arg(d)?,
    })
}

impl Builder {
    pub(super) fn access_log(
        &mut self,
        d: &Directive,
        layer: &mut Layer,
        st: &mut HttpState,
    ) -> Res<()> {
        simple(d, 1, usize::MAX)?;
        let path = arg(d, 0);
        if path == "off" {
            if let Some(extra) = d.args.get(1) {
                return Err(err(format!("invalid parameter \"{}\"", extra.value), d));
            }
            layer.access_log = Some(AccessLog::Off);
            return Ok(());
        }
        if path.contains('$') {
            return Err(err(
                "variables in \"access_log\" paths are not supported",
                d,
            ));
        }
        let format = match d.args.get(1) {
            Some(a) => a.value.clone(),
            None => "combined".to_string(),
        };
        let mut condition = None;
        for a in d.args.iter().skip(2) {
            let p = a.value.as_str();
            if let Some(cond) = p.strip_prefix("if=") {
                condition = Some(Arc::new(template_arg(d, cond)?));
            } else if (p.starts_with("buffer=")
                || p.starts_with("flush=")
                || p == "gzip"
                || p.starts_with("gzip="))
                && path.starts_with("syslog:")
            {
                return Err(err("logs to syslog cannot be buffered", d));
            } else if p.starts_with("buffer=")
                || p.starts_with("flush=")
                || p == "gzip"
                || p.starts_with("gzip=")
            {
                self.warn(
                    d,
                    &format!("\"{p}\" parameter of \"access_log\" is ignored: lines are written as they come"),
                );
            } else {
                return Err(err(format!("invalid parameter \"{p}\""), d));
            }
        }
        st.format_uses.push((format.clone(), d.span.clone()));
        let target = AccessLogTarget {
            path: PathBuf::from(path),
            format,
            condition,
            syslog: syslog_arg(d)?,
        };
        match &mut layer.access_log {
            Some(AccessLog::On(list)) => list.push(target),
            Some(AccessLog::Off) => {}
            None => layer.access_log = Some(AccessLog::On(vec![target])),
        }
        Ok(())
    }
}

/// The `syslog:` destination of a log directive's first argument, if any;
/// a server name is resolved now, as nginx does.
fn syslog_arg(d: &Directive) -> Res<Option<Syslog>> {
    syslog::parse(arg(d, 0), |host| {
        resolve(host, 514, false)
            .and_then(|addrs| {
                addrs
                    .first()
                    .copied()
                    .ok_or_else(|| "host not found".to_string())
            })
            .map_err(|reason| format!("{reason} in syslog server \"{host}\""))
    })
    .map_err(|e| err(e, d))
}

pub(super) fn log_format(d: &Directive, st: &mut HttpState) -> Res<()> {
    simple(d, 2, usize::MAX)?;
    let name = arg(d, 0).to_string();
    let mut strings = d.args.get(1..).unwrap_or_default();
    let mut escape = Escape::Default;
    if let Some(mode) = arg(d, 1).strip_prefix("escape=") {
        escape = match mode {
            "default" => Escape::Default,
            "json" => Escape::Json,
            "none" => Escape::None,
            other => return Err(err(format!("unknown log format escaping \"{other}\""), d)),
        };
        strings = d.args.get(2..).unwrap_or_default();
    }
    if strings.is_empty() {
        return Err(err(
            "invalid number of arguments in \"log_format\" directive",
            d,
        ));
    }
    if st.log_formats.contains_key(&name) {
        return Err(err(format!("duplicate \"log_format\" name \"{name}\""), d));
    }
    let source: String = strings.iter().map(|a| a.value.as_str()).collect();
    let t = template_arg(d, &source)?;
    st.log_formats.insert(name.clone(), Arc::new(t));
    st.log_format_escapes.insert(name, escape);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::config::build::tests::{fails, ok};
    use crate::config::template::parse;
    use crate::config::template::Escape;
    use crate::config::{AccessLog, AccessLogTarget};

    #[test]
    fn access_logs_and_log_formats() {
        let (c, _) = ok("http {
              log_format plain escape=none 'a=' '$arg_a';
              access_log /tmp/a.log;
              access_log /tmp/b.log plain buffer=32k if=$arg_log;
              server { location / { access_log off; } location /x { } }
            }");
        assert_eq!(c.http.log_format_escapes["plain"], Escape::None);
        assert_eq!(c.http.log_formats["plain"].source, "a=$arg_a");
        let s = &c.http.servers[0];
        assert_eq!(s.locations[0].conf.access_log, AccessLog::Off);
        assert_eq!(
            s.locations[1].conf.access_log,
            AccessLog::On(vec![
                AccessLogTarget {
                    path: "/tmp/a.log".into(),
                    format: "combined".into(),
                    condition: None,
                    syslog: None,
                },
                AccessLogTarget {
                    path: "/tmp/b.log".into(),
                    format: "plain".into(),
                    condition: Some(Arc::new(parse("$arg_log").expect("a template"))),
                    syslog: None,
                },
            ])
        );
        let e = fails("http { access_log syslog:server=127.0.0.1 combined buffer=32k; }");
        assert_eq!(
            e,
            "logs to syslog cannot be buffered in /etc/proxy/test.conf:1"
        );
        let e = fails("http { access_log /tmp/a.log combined if=$nonesuch; }");
        assert_eq!(e, "unknown \"nonesuch\" variable in /etc/proxy/test.conf:1");
    }
}
