//! The variables whose values come from the response or the upstream exchange:
//! `$status`, `$sent_http_NAME`, `$body_bytes_sent`, `$bytes_sent`,
//! `$request_time`, `$upstream_*` (the tries, and the backend's own header
//! lines: `$upstream_http_NAME`, `$upstream_cookie_NAME`). Evaluated by
//! [`super::eval_var`] for the access log and by `add_header`, which reads them
//! once the response is known ([`eval`], with [`ResponseFacts`]).

use std::time::Duration;

use http::HeaderMap;

use super::{header_value, join_tries, push_display, push_opt_seconds, push_seconds};
use super::{RequestVars, UpstreamTry};
use crate::config::Variable;

/// What the response-side variables read. All borrowed.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFacts<'a> {
    /// The response's status (`None`: no response yet, `$status` is `000`).
    pub status: Option<u16>,
    /// The headers going to the client (`$sent_http_*`).
    pub sent: Option<&'a HeaderMap>,
    pub body_bytes_sent: u64,
    pub bytes_sent: u64,
    /// Time since the request's first byte (`$request_time`).
    pub elapsed: Duration,
    pub upstream: &'a [UpstreamTry<'a>],
    /// Every header line of the last backend response, as it came.
    pub upstream_headers: Option<&'a HeaderMap>,
}

impl<'a> ResponseFacts<'a> {
    /// The facts a set of request variables holds.
    pub fn of(v: &RequestVars<'a>) -> ResponseFacts<'a> {
        ResponseFacts {
            status: v.response.map(|r| r.status),
            sent: v.response.map(|r| r.headers),
            body_bytes_sent: v.response.map_or(0, |r| r.body_bytes_sent),
            bytes_sent: v.response.map_or(0, |r| r.bytes_sent),
            elapsed: v.now.duration_since(v.start).unwrap_or(Duration::ZERO),
            upstream: v.upstream,
            upstream_headers: v.upstream_headers,
        }
    }
}

/// True when `var` is one of this module's: its value is only known once the
/// response is.
pub fn reads_response(var: &Variable) -> bool {
    matches!(
        var,
        Variable::Status
            | Variable::SentHttp(_)
            | Variable::BodyBytesSent
            | Variable::BytesSent
            | Variable::RequestTime
            | Variable::UpstreamAddr
            | Variable::UpstreamStatus
            | Variable::UpstreamResponseTime
            | Variable::UpstreamConnectTime
            | Variable::UpstreamHeaderTime
            | Variable::UpstreamHttp(_)
            | Variable::UpstreamCookie(_)
    )
}

/// True when `var` reads the backend's header lines.
pub fn reads_upstream_headers(var: &Variable) -> bool {
    matches!(var, Variable::UpstreamHttp(_) | Variable::UpstreamCookie(_))
}

/// Appends the value of `var` (nothing for a variable [`reads_response`]
/// does not name).
pub fn eval(var: &Variable, f: &ResponseFacts<'_>, out: &mut Vec<u8>) {
    match var {
        Variable::Status => match f.status {
            Some(s) => push_display(out, format_args!("{s:03}")),
            None => out.extend_from_slice(b"000"),
        },
        Variable::SentHttp(name) => {
            if let Some(h) = f.sent {
                header_value(h, name, out);
            }
        }
        Variable::BodyBytesSent => crate::numfmt::write_decimal(out, f.body_bytes_sent),
        Variable::BytesSent => crate::numfmt::write_decimal(out, f.bytes_sent),
        Variable::RequestTime => push_seconds(out, f.elapsed),
        Variable::UpstreamAddr => join_tries(f.upstream, out, |t, out| {
            out.extend_from_slice(t.addr.as_bytes());
        }),
        Variable::UpstreamStatus => join_tries(f.upstream, out, |t, out| match t.status {
            Some(s) => push_display(out, s),
            None => out.push(b'-'),
        }),
        Variable::UpstreamResponseTime => join_tries(f.upstream, out, |t, out| {
            push_opt_seconds(out, t.response_time)
        }),
        Variable::UpstreamConnectTime => join_tries(f.upstream, out, |t, out| {
            push_opt_seconds(out, t.connect_time)
        }),
        Variable::UpstreamHeaderTime => join_tries(f.upstream, out, |t, out| {
            push_opt_seconds(out, t.header_time)
        }),
        Variable::UpstreamHttp(name) => {
            if let Some(h) = f.upstream_headers {
                header_value(h, name, out);
            }
        }
        Variable::UpstreamCookie(name) => {
            if let Some(value) = f.upstream_headers.and_then(|h| set_cookie(h, name)) {
                out.extend_from_slice(value);
            }
        }
        _ => {}
    }
}

/// The value of cookie `name` in the first `Set-Cookie` line that sets it.
fn set_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .find_map(|line| {
            let bytes = line.as_bytes();
            let range = crate::sticky::set_cookie::value_range(bytes, name)?;
            bytes.get(range)
        })
}
