//! Strings with nginx variables (`$host`, `${cookie_x}`, ...), parsed once at load
//! time into literal and variable parts. Used by `proxy_set_header`, `return`, and
//! `log_format`. Evaluation against a request lives in `crate::vars`.

/// A variable the proxy knows how to evaluate (spec/config.md, "Variables").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Variable {
    Host,
    /// `$http_NAME`: request header NAME, with `_` meaning `-`, lowercase.
    Http(String),
    /// `$sent_http_NAME`: response header NAME.
    SentHttp(String),
    /// `$cookie_NAME`: request cookie NAME (exact match).
    Cookie(String),
    /// `$upstream_http_NAME`: header NAME of the backend's response, as the
    /// backend sent it (hidden lines included).
    UpstreamHttp(String),
    /// `$upstream_cookie_NAME`: cookie NAME the backend set (`Set-Cookie`).
    UpstreamCookie(String),
    /// `$arg_NAME`: query argument NAME.
    Arg(String),
    RemoteAddr,
    RemotePort,
    RemoteUser,
    /// `$binary_remote_addr`: the client address in 4 or 16 bytes.
    BinaryRemoteAddr,
    /// `$realip_remote_addr` / `$realip_remote_port`: the connection's address
    /// before realip replaced it.
    RealipRemoteAddr,
    RealipRemotePort,
    ServerAddr,
    ServerPort,
    ServerName,
    ServerProtocol,
    /// `$http2`: `h2` (HTTP/2 over TLS), `h2c` (cleartext), or empty.
    Http2,
    Scheme,
    RequestMethod,
    RequestUri,
    Uri,
    Args,
    QueryString,
    IsArgs,
    Request,
    RequestLength,
    ProxyHost,
    ProxyAddXForwardedFor,
    Status,
    BodyBytesSent,
    BytesSent,
    RequestTime,
    UpstreamAddr,
    UpstreamStatus,
    UpstreamResponseTime,
    UpstreamConnectTime,
    UpstreamHeaderTime,
    TimeLocal,
    TimeIso8601,
    Msec,
    Pid,
    Connection,
    ConnectionRequests,
    Hostname,
    /// `$request_id`: 16 random bytes in hex, drawn on first use.
    RequestId,
    /// `$pipe`: `p` for a pipelined request, else `.`.
    Pipe,
    /// `$upstream_cache_status`: always empty (`proxy_cache` is refused, and
    /// nginx leaves it empty for a location without a cache).
    UpstreamCacheStatus,
    StickySid,
    StickyStatus,
    /// Ours: the learned cookie's name (`session_sticky learn=`).
    StickyLearned,
    /// A variable the configuration defines (`set`, a named regex capture):
    /// its index in the request's [`crate::user_vars::UserVars`].
    User(u16),
    /// `$0`..`$9`: a capture of the last regex that matched (`rewrite`, `if`,
    /// `location ~`).
    Capture(u8),
    /// A `map` or `split_clients` variable.
    Computed(crate::config::map::ComputedRef),
    /// `$https` and the `$ssl_*` variables of the client's connection.
    Tls(TlsVariable),
}

/// The variables of the client's TLS connection (empty on plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVariable {
    /// `$https`: `on`.
    Https,
    /// `$ssl_protocol`: `TLSv1.2`, `TLSv1.3`.
    Protocol,
    /// `$ssl_cipher`: the OpenSSL name of the suite.
    Cipher,
    /// `$ssl_server_name`: the SNI name.
    ServerName,
    /// `$ssl_session_reused`: `r` or `.`.
    SessionReused,
    /// `$ssl_client_verify`: `NONE`, `SUCCESS`, `FAILED:reason`.
    ClientVerify,
    /// `$ssl_client_s_dn`.
    ClientSDn,
    /// `$ssl_client_fingerprint`.
    ClientFingerprint,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Var(Variable),
}

/// A parsed string with variables. `source` is the original text (for `-T` and
/// messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub parts: Vec<Part>,
}

/// How `log_format NAME escape=...` escapes variable values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escape {
    /// nginx's default: `"`, `\` and bytes < 0x20 or >= 0x7f as `\xHH`.
    #[default]
    Default,
    /// JSON string escaping.
    Json,
    /// No escaping.
    None,
}

impl Template {
    /// A template of literal text only.
    pub fn literal(text: &str) -> Template {
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![Part::Literal(text.to_string())]
        };
        Template {
            source: text.to_string(),
            parts,
        }
    }

    /// True when the template has no variables.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Maps a variable name (without `$`) to the [`Variable`] it denotes. Names are
/// case-insensitive, as nginx looks them up lower-cased (`$HTTP_X_REAL_IP` is
/// `$http_x_real_ip`); the NAME of `$cookie_NAME` / `$arg_NAME` keeps its case.
pub fn variable(name: &str) -> Option<Variable> {
    let lower = name.to_ascii_lowercase();
    let v = match lower.as_str() {
        "host" => Variable::Host,
        "remote_addr" => Variable::RemoteAddr,
        "remote_port" => Variable::RemotePort,
        "remote_user" => Variable::RemoteUser,
        "binary_remote_addr" => Variable::BinaryRemoteAddr,
        "realip_remote_addr" => Variable::RealipRemoteAddr,
        "realip_remote_port" => Variable::RealipRemotePort,
        "server_addr" => Variable::ServerAddr,
        "server_port" => Variable::ServerPort,
        "server_name" => Variable::ServerName,
        "server_protocol" => Variable::ServerProtocol,
        "http2" => Variable::Http2,
        "scheme" => Variable::Scheme,
        "request_method" => Variable::RequestMethod,
        "request_uri" => Variable::RequestUri,
        "uri" | "document_uri" => Variable::Uri,
        "args" => Variable::Args,
        "query_string" => Variable::QueryString,
        "is_args" => Variable::IsArgs,
        "request" => Variable::Request,
        "request_length" => Variable::RequestLength,
        "proxy_host" => Variable::ProxyHost,
        "proxy_add_x_forwarded_for" => Variable::ProxyAddXForwardedFor,
        "status" => Variable::Status,
        "body_bytes_sent" => Variable::BodyBytesSent,
        "bytes_sent" => Variable::BytesSent,
        "request_time" => Variable::RequestTime,
        "upstream_addr" => Variable::UpstreamAddr,
        "upstream_status" => Variable::UpstreamStatus,
        "upstream_response_time" => Variable::UpstreamResponseTime,
        "upstream_connect_time" => Variable::UpstreamConnectTime,
        "upstream_header_time" => Variable::UpstreamHeaderTime,
        "time_local" => Variable::TimeLocal,
        "time_iso8601" => Variable::TimeIso8601,
        "msec" => Variable::Msec,
        "pid" => Variable::Pid,
        "connection" => Variable::Connection,
        "connection_requests" => Variable::ConnectionRequests,
        "hostname" => Variable::Hostname,
        "request_id" => Variable::RequestId,
        "pipe" => Variable::Pipe,
        "upstream_cache_status" => Variable::UpstreamCacheStatus,
        // nginx's names for two request headers.
        "content_type" => Variable::Http("content-type".into()),
        "content_length" => Variable::Http("content-length".into()),
        "sticky_sid" => Variable::StickySid,
        "sticky_status" => Variable::StickyStatus,
        "sticky_learned" => Variable::StickyLearned,
        "https" => Variable::Tls(TlsVariable::Https),
        "ssl_protocol" => Variable::Tls(TlsVariable::Protocol),
        "ssl_cipher" => Variable::Tls(TlsVariable::Cipher),
        "ssl_server_name" => Variable::Tls(TlsVariable::ServerName),
        "ssl_session_reused" => Variable::Tls(TlsVariable::SessionReused),
        "ssl_client_verify" => Variable::Tls(TlsVariable::ClientVerify),
        "ssl_client_s_dn" => Variable::Tls(TlsVariable::ClientSDn),
        "ssl_client_fingerprint" => Variable::Tls(TlsVariable::ClientFingerprint),
        _ => {
            let header = |rest: &str| rest.replace('_', "-");
            // The prefix is matched lower-cased; `as_written` is the rest of the
            // name in its own case (the prefixes are ASCII, so lengths agree).
            let as_written = |prefix: &str| name.get(prefix.len()..).unwrap_or_default();
            if let Some(rest) = lower.strip_prefix("sent_http_").filter(|r| !r.is_empty()) {
                Variable::SentHttp(header(rest))
            } else if let Some(rest) = lower
                .strip_prefix("upstream_http_")
                .filter(|r| !r.is_empty())
            {
                Variable::UpstreamHttp(header(rest))
            } else if lower.starts_with("upstream_cookie_")
                && lower.len() > "upstream_cookie_".len()
            {
                Variable::UpstreamCookie(as_written("upstream_cookie_").to_string())
            } else if let Some(rest) = lower.strip_prefix("http_").filter(|r| !r.is_empty()) {
                Variable::Http(header(rest))
            } else if lower.starts_with("cookie_") && lower.len() > "cookie_".len() {
                Variable::Cookie(as_written("cookie_").to_string())
            } else if lower.starts_with("arg_") && lower.len() > "arg_".len() {
                Variable::Arg(as_written("arg_").to_string())
            } else {
                return None;
            }
        }
    };
    Some(v)
}

/// Parses `src` into literal and variable parts. `$http_NAME` / `$sent_http_NAME`
/// store NAME lowercased with `_` turned into `-` (ready for a header lookup);
/// `$cookie_NAME` / `$arg_NAME` keep NAME exactly.
pub fn parse(src: &str) -> Result<Template, String> {
    parse_with(src, &|_| None)
}

/// [`parse`], where `user` names the variables the configuration defines
/// (looked up before the built-in ones, as nginx's user variables shadow
/// nothing it knows: a name it knows is never passed). `$0`..`$9` are regex
/// captures.
pub fn parse_with(src: &str, user: &dyn Fn(&str) -> Option<Variable>) -> Result<Template, String> {
    let bytes = src.as_bytes();
    let mut parts: Vec<Part> = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let Some(offset) = src[i..].find('$') else {
            literal.push_str(&src[i..]);
            break;
        };
        literal.push_str(&src[i..i + offset]);
        let dollar = i + offset;
        let (name, next) = if bytes.get(dollar + 1) == Some(&b'{') {
            let start = dollar + 2;
            let mut end = start;
            while end < bytes.len() && is_name_byte(bytes[end]) {
                end += 1;
            }
            let name = &src[start..end];
            if name.is_empty() {
                return Err("invalid variable name".to_string());
            }
            if bytes.get(end) != Some(&b'}') {
                return Err(format!(
                    "the closing bracket in \"{name}\" variable is missing"
                ));
            }
            (name, end + 1)
        } else {
            let start = dollar + 1;
            let mut end = start;
            if bytes.get(start).is_some_and(u8::is_ascii_digit) {
                // `$1abc` is capture 1 then `abc`, as nginx.
                end += 1;
            } else {
                while end < bytes.len() && is_name_byte(bytes[end]) {
                    end += 1;
                }
            }
            (&src[start..end], end)
        };
        if name.is_empty() {
            literal.push('$');
            i = dollar + 1;
            continue;
        }
        let capture = match name.as_bytes() {
            [d @ b'0'..=b'9'] => Some(Variable::Capture(d - b'0')),
            _ => None,
        };
        let var = capture
            .or_else(|| variable(name))
            .or_else(|| user(name))
            .ok_or_else(|| format!("unknown \"{name}\" variable"))?;
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal)));
        }
        parts.push(Part::Var(var));
        i = next;
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(Template {
        source: src.to_string(),
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Literal(s.to_string())
    }

    #[test]
    fn parses_variables_and_literals() {
        let cases: Vec<(&str, Vec<Part>)> = vec![
            ("", vec![]),
            ("plain text", vec![lit("plain text")]),
            ("$host", vec![Part::Var(Variable::Host)]),
            ("${host}", vec![Part::Var(Variable::Host)]),
            ("${host}name", vec![Part::Var(Variable::Host), lit("name")]),
            (
                "a $remote_addr:$remote_port.",
                vec![
                    lit("a "),
                    Part::Var(Variable::RemoteAddr),
                    lit(":"),
                    Part::Var(Variable::RemotePort),
                    lit("."),
                ],
            ),
            (
                "$http_user_agent",
                vec![Part::Var(Variable::Http("user-agent".into()))],
            ),
            (
                "$http_X_Real_IP",
                vec![Part::Var(Variable::Http("x-real-ip".into()))],
            ),
            (
                "$sent_http_set_cookie",
                vec![Part::Var(Variable::SentHttp("set-cookie".into()))],
            ),
            (
                "$cookie_SERVERID",
                vec![Part::Var(Variable::Cookie("SERVERID".into()))],
            ),
            ("$arg_page", vec![Part::Var(Variable::Arg("page".into()))]),
            (
                "$upstream_http_Content_Disposition",
                vec![Part::Var(Variable::UpstreamHttp(
                    "content-disposition".into(),
                ))],
            ),
            (
                "$Upstream_Cookie_SID",
                vec![Part::Var(Variable::UpstreamCookie("SID".into()))],
            ),
            // Names are case-insensitive (nginx looks them up lower-cased).
            (
                "$HTTP_X_REAL_IP",
                vec![Part::Var(Variable::Http("x-real-ip".into()))],
            ),
            ("${Host}", vec![Part::Var(Variable::Host)]),
            ("$Remote_Addr", vec![Part::Var(Variable::RemoteAddr)]),
            (
                "$Sent_Http_X_A",
                vec![Part::Var(Variable::SentHttp("x-a".into()))],
            ),
            (
                "$COOKIE_SessionId",
                vec![Part::Var(Variable::Cookie("SessionId".into()))],
            ),
            ("$ARG_Page", vec![Part::Var(Variable::Arg("Page".into()))]),
            ("$document_uri", vec![Part::Var(Variable::Uri)]),
            ("$sticky_status", vec![Part::Var(Variable::StickyStatus)]),
            ("$sticky_learned", vec![Part::Var(Variable::StickyLearned)]),
            ("cost: 5$", vec![lit("cost: 5$")]),
            ("a $ b", vec![lit("a $ b")]),
            ("$-x", vec![lit("$-x")]),
            ("$$host", vec![lit("$"), Part::Var(Variable::Host)]),
            ("$1", vec![Part::Var(Variable::Capture(1))]),
            (
                "/x/$1abc${2}",
                vec![
                    lit("/x/"),
                    Part::Var(Variable::Capture(1)),
                    lit("abc"),
                    Part::Var(Variable::Capture(2)),
                ],
            ),
        ];
        for (src, parts) in cases {
            let t = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
            assert_eq!(t.parts, parts, "{src:?}");
            assert_eq!(t.source, src);
        }
    }

    #[test]
    fn rejects_unknown_and_malformed_variables() {
        let cases = [
            ("$foo", "unknown \"foo\" variable"),
            ("x ${nope} y", "unknown \"nope\" variable"),
            ("$http_", "unknown \"http_\" variable"),
            ("$cookie_", "unknown \"cookie_\" variable"),
            (
                "${host",
                "the closing bracket in \"host\" variable is missing",
            ),
            ("${}", "invalid variable name"),
            ("${-}", "invalid variable name"),
        ];
        for (src, message) in cases {
            assert_eq!(parse(src), Err(message.to_string()), "{src:?}");
        }
    }

    #[test]
    fn literal_helper_has_no_variables() {
        let t = Template::literal("Hello, world\n");
        assert!(t.is_literal());
        assert_eq!(t.parts, vec![lit("Hello, world\n")]);
        assert!(Template::literal("").parts.is_empty());
        assert!(!parse("$host").map(|t| t.is_literal()).unwrap_or(true));
    }
}
