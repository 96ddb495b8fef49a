//! The typed configuration of one `upstream` block: its peers, balancing
//! method, keep-alive pool, `session_sticky`, Tengine's active `check`, and
//! the run-time name resolution (`zone`, `resolver`, `server NAME resolve`).
//! Built by `config::build::upstream`; read by `crate::upstream`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Template;
use crate::sticky::StickyConf;

/// One upstream peer (one resolved address of a `server` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConf {
    /// nginx-style peer name: `IP:PORT` or `[v6]:PORT`. The md5 sid is computed from it.
    pub name: String,
    pub addr: SocketAddr,
    /// The `server` argument as written (`backend.local:8080`).
    pub server: String,
    pub weight: u32,
    /// Default 1; 0 disables passive failure accounting.
    pub max_fails: u32,
    /// Default 10s.
    pub fail_timeout: Duration,
    pub down: bool,
    pub backup: bool,
    /// `id=` (Tengine): the sid under `hash=plain`.
    pub id: Option<String>,
    /// `drain`: keeps serving the sessions pinned to it but is never chosen for a
    /// new session.
    pub drain: bool,
    /// `max_conns=N`: requests in flight at once, across workers; 0 = no limit.
    pub max_conns: u32,
    /// `server unix:/path`: the peer is a Unix stream socket (its `name` is
    /// `unix:/path`, as nginx's `$upstream_addr`; `addr` is unused).
    pub unix: Option<std::path::PathBuf>,
}

/// The load-balancing method of an upstream (`ip_hash`, `hash`, `least_conn`,
/// `random`; default weighted round robin).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    IpHash,
    Hash {
        key: Template,
        consistent: bool,
    },
    LeastConn,
    /// `random` (`two`: the less loaded of two random peers).
    Random {
        two: bool,
    },
}

/// What an active health check does (`check type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckType {
    /// A TCP connect that succeeds within the timeout.
    Tcp,
    /// `check_http_send` written raw; the status line of the reply is classified
    /// by `check_http_expect_alive`.
    Http,
    /// A TLS ClientHello: up when the reply starts with a ServerHello.
    SslHello,
}

impl CheckType {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Tcp => "tcp",
            CheckType::Http => "http",
            CheckType::SslHello => "ssl_hello",
        }
    }
}

/// Status classes accepted by `check_http_expect_alive` (`http_2xx` ... `http_5xx`),
/// as a bit set: bit `n` stands for the class `n`xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusClasses(pub u8);

impl StatusClasses {
    /// Tengine's default: `http_2xx http_3xx`.
    pub const DEFAULT: StatusClasses = StatusClasses((1 << 2) | (1 << 3));

    /// The set with class `class` (2..=5) added.
    pub fn with(self, class: u8) -> StatusClasses {
        StatusClasses(self.0 | (1u8 << (class & 7)))
    }

    /// True when `status` falls in one of the classes.
    pub fn contains(self, status: u16) -> bool {
        let class = status / 100;
        (2..=5).contains(&class) && self.0 & (1u8 << class) != 0
    }
}

/// Tengine's `check` (with `check_http_send` / `check_http_expect_alive`): active
/// health checks of every peer of an upstream. Defaults are Tengine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConf {
    /// `interval=` (milliseconds), default 30000.
    pub interval: Duration,
    /// `rise=`: consecutive successes that bring a down peer up, default 2.
    pub rise: u32,
    /// `fall=`: consecutive failures that take an up peer down, default 5.
    pub fall: u32,
    /// `timeout=` (milliseconds) of one check, default 1000.
    pub timeout: Duration,
    /// `default_down=`: the state of every peer before its first checks, default true.
    pub default_down: bool,
    /// `type=`, default tcp.
    pub kind: CheckType,
    /// `port=`: check this port instead of the peer's (`0`/unset = the peer's).
    pub port: Option<u16>,
    /// `check_http_send`, default `GET / HTTP/1.0\r\n\r\n`.
    pub http_send: Vec<u8>,
    /// `check_http_expect_alive`, default `http_2xx http_3xx`.
    pub expect_alive: StatusClasses,
    /// `check_keepalive_requests`: checks one connection serves (`type=http`),
    /// default 1 (a new connection per check).
    pub keepalive_requests: u32,
}

impl CheckConf {
    /// An http check of the peer's own port: it speaks TLS when the peers do
    /// (an upstream only `proxy_pass https://` names). With `port=` it checks
    /// another port, as Tengine users check a TLS peer on a plain one.
    pub fn follows_peer_scheme(&self) -> bool {
        self.kind == CheckType::Http && self.port.is_none()
    }
}

impl Default for CheckConf {
    fn default() -> Self {
        CheckConf {
            interval: Duration::from_millis(30_000),
            rise: 2,
            fall: 5,
            timeout: Duration::from_millis(1000),
            default_down: true,
            kind: CheckType::Tcp,
            port: None,
            http_send: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            expect_alive: StatusClasses::DEFAULT,
            keepalive_requests: 1,
        }
    }
}

/// `check_status [html|csv|json]`: the format of the status page when the request
/// has no `?format=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Html,
    Csv,
    Json,
    /// Prometheus text exposition (`?format=prometheus`; not a Tengine value).
    Prometheus,
}

impl StatusFormat {
    /// The format named `name` (`html`, `csv`, `json`, `prometheus`).
    pub fn from_name(name: &str) -> Option<StatusFormat> {
        match name {
            "html" => Some(StatusFormat::Html),
            "csv" => Some(StatusFormat::Csv),
            "json" => Some(StatusFormat::Json),
            "prometheus" => Some(StatusFormat::Prometheus),
            _ => None,
        }
    }
}

/// An `upstream` block, or an implicit one for `proxy_pass http://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConf {
    /// The block's name, or `HOST:PORT` as written for an implicit upstream.
    pub name: String,
    pub implicit: bool,
    /// Never empty, but for an upstream whose `server NAME resolve` names
    /// have no address yet (`resolve`).
    pub peers: Vec<PeerConf>,
    pub sticky: Option<StickyConf>,
    /// `keepalive N`: idle connections cached per worker; `None` = no keep-alive to
    /// the backends (nginx default).
    pub keepalive: Option<usize>,
    /// Upstream `keepalive_timeout`, default 60s.
    pub keepalive_timeout: Duration,
    /// Upstream `keepalive_requests`, default 1000.
    pub keepalive_requests: u64,
    /// Tengine's `check`: active health checks; `None` = none.
    pub check: Option<CheckConf>,
    /// `server NAME resolve` lines (with `zone` and a `resolver`): names
    /// resolved at run time; `None` = every peer is fixed at load time.
    pub resolve: Option<ResolveConf>,
    /// How new requests are spread over the peers.
    pub balance: Balance,
    /// Upstream `keepalive_time`: a kept-alive connection is not reused once
    /// it has been open this long; default 1h.
    pub keepalive_time: Duration,
}

impl UpstreamConf {
    /// The implicit upstream of `proxy_pass http://HOST[:PORT]` (`name` as
    /// written): one peer per address, nginx's defaults, no keep-alive.
    pub fn implicit(name: &str, addrs: impl IntoIterator<Item = SocketAddr>) -> UpstreamConf {
        UpstreamConf::implicit_peers(
            name,
            addrs.into_iter().map(|addr| (addr.to_string(), addr, None)),
        )
    }

    /// [`UpstreamConf::implicit`] for peers that may be Unix sockets: each is
    /// its name, its address and, for `unix:/path`, the path.
    pub fn implicit_peers(
        name: &str,
        peers: impl IntoIterator<Item = (String, SocketAddr, Option<std::path::PathBuf>)>,
    ) -> UpstreamConf {
        UpstreamConf {
            name: name.to_string(),
            implicit: true,
            peers: peers
                .into_iter()
                .map(|(peer, addr, unix)| PeerConf {
                    name: peer,
                    addr,
                    unix,
                    server: name.to_string(),
                    weight: 1,
                    max_fails: 1,
                    fail_timeout: Duration::from_secs(10),
                    down: false,
                    backup: false,
                    id: None,
                    drain: false,
                    max_conns: 0,
                })
                .collect(),
            sticky: None,
            keepalive: None,
            keepalive_timeout: Duration::from_secs(60),
            keepalive_requests: 1000,
            check: None,
            resolve: None,
            balance: Balance::default(),
            keepalive_time: Duration::from_secs(3600),
        }
    }
}

/// The run-time name resolution of one upstream (nginx 1.27.3+): its `zone`,
/// its resolver and the `server NAME resolve` lines. `UpstreamConf::peers` holds
/// the fixed peers first, then the addresses each name resolved to, name by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveConf {
    /// `zone NAME [SIZE]`: the name (the state lives in process memory).
    pub zone: String,
    pub resolver: ResolverConf,
    /// One template per `server NAME resolve` line: `server` is the line's
    /// argument, `addr` has the port and an unspecified IP, the parameters
    /// (`weight`, `max_fails`, ...) are the line's.
    pub servers: Vec<PeerConf>,
    /// How many of `UpstreamConf::peers` come from fixed `server` lines.
    pub fixed: usize,
}

/// `resolver ADDRESS ... [valid=TIME] [ipv4=on|off] [ipv6=on|off]` with
/// `resolver_timeout` (default 30s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConf {
    /// The DNS servers asked (UDP, port 53 unless given); never the system's.
    pub servers: Vec<SocketAddr>,
    /// `valid=`: re-resolve after this instead of the answer's TTL.
    pub valid: Option<Duration>,
    pub ipv4: bool,
    pub ipv6: bool,
    /// `resolver_timeout`.
    pub timeout: Duration,
}
