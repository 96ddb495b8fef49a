//! The typed access settings of one location ([`AccessConf`], built by
//! `config::build::access` with nginx's inheritance) and the shared zones of
//! the `http` block ([`ZoneConf`]).

use crate::access::cidr::Cidr;
use crate::config::{LogLevel, Template};

/// What an `allow` or `deny` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `all`: every client, IPv4, IPv6 and `unix:`.
    All,
    Block(Cidr),
    /// `unix:`: clients of a UNIX-domain listener (the proxy has none, so such
    /// a rule never matches a client).
    Unix,
}

/// One `allow` / `deny` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub target: Target,
}

/// `auth_basic REALM` with its `auth_basic_user_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthBasic {
    pub realm: Template,
    /// Read at each request (nginx): edits apply without a reload.
    pub user_file: Template,
}

/// `auth_request URI` (nginx's ngx_http_auth_request_module): the
/// subrequest's URI, split at its `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub path: String,
    pub args: Option<String>,
}

/// One `auth_request_set $variable value`: the user variable set, once the
/// subrequest is done, to `value` evaluated with the subrequest's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSet {
    pub var: u16,
    pub value: Template,
}

/// Which header carries the client address for realip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealIpHeader {
    /// `X-Forwarded-For`: a list, read from the right.
    XForwardedFor,
    /// `X-Real-IP` or any other header name: one address.
    Single(http::HeaderName),
}

/// `set_real_ip_from` (non-empty), `real_ip_header`, `real_ip_recursive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealIp {
    pub from: Vec<Cidr>,
    pub header: RealIpHeader,
    pub recursive: bool,
}

/// One `limit_req zone=NAME [burst=N] [nodelay | delay=N]`, in nginx's units
/// (a request is 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitReq {
    /// Index into [`crate::config::HttpConf::limit_zones`].
    pub zone: usize,
    pub burst: u64,
    /// Excess served without delay: 0 by default, `u64::MAX` for `nodelay`.
    pub delay: u64,
}

/// One `limit_conn ZONE N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitConn {
    pub zone: usize,
    pub max: u32,
}

/// The limits of one kind at one location, with their status, log level and
/// dry-run flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits<T> {
    pub list: Vec<T>,
    /// Default 503.
    pub status: u16,
    /// Default `error`.
    pub log_level: LogLevel,
    pub dry_run: bool,
}

/// Everything the access and preaccess phases need at one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConf {
    /// `allow` / `deny`, in order; empty = everyone.
    pub rules: Vec<Rule>,
    /// `satisfy any` (default `all`).
    pub satisfy_any: bool,
    pub auth_basic: Option<AuthBasic>,
    /// `auth_request` (`None`: off, the default).
    pub auth_request: Option<AuthRequest>,
    /// `auth_request_set`, in order.
    pub auth_request_set: Vec<AuthSet>,
    pub realip: Option<RealIp>,
    pub limit_req: Limits<LimitReq>,
    pub limit_conn: Limits<LimitConn>,
    /// `stub_status` (location only, not inherited).
    pub stub_status: bool,
}

impl Default for AccessConf {
    fn default() -> Self {
        let (status, log_level) = (503, LogLevel::Error);
        AccessConf {
            rules: Vec::new(),
            satisfy_any: false,
            auth_basic: None,
            auth_request: None,
            auth_request_set: Vec::new(),
            realip: None,
            limit_req: Limits {
                list: Vec::new(),
                status,
                log_level,
                dry_run: false,
            },
            limit_conn: Limits {
                list: Vec::new(),
                status,
                log_level,
                dry_run: false,
            },
            stub_status: false,
        }
    }
}

/// What a shared zone counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneKind {
    /// `limit_req_zone ... rate=`: requests per second times 1000.
    Req { rate: u64 },
    /// `limit_conn_zone`.
    Conn,
}

/// A `limit_req_zone` or `limit_conn_zone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConf {
    pub name: String,
    pub key: Template,
    /// Bytes; the table keeps about one key per 64 bytes, as nginx.
    pub size: u64,
    pub kind: ZoneKind,
}

impl ZoneConf {
    /// Keys the table may hold at once.
    pub fn capacity(&self) -> usize {
        usize::try_from(self.size / 64).unwrap_or(usize::MAX).max(1)
    }
}
