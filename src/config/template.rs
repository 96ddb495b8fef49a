//! Strings with nginx variables (`$host`, `${cookie_x}`, ...), parsed once at load
//! time into literal and variable parts. Used by `proxy_set_header`, `return`, and
//! `log_format`. Evaluation against a request lives in `proxy::vars`.

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
    /// `$arg_NAME`: query argument NAME.
    Arg(String),
    RemoteAddr,
    RemotePort,
    RemoteUser,
    ServerAddr,
    ServerPort,
    ServerName,
    ServerProtocol,
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
    StickySid,
    StickyStatus,
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
