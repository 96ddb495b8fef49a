//! Tengine's `session_sticky` semantics as pure code (spec/session_sticky.md).
//!
//! - [`StickyConf`]: the validated `session_sticky` parameters (built by the config
//!   builder).
//! - `sid`: server ids (md5 / plain) and the sid -> peer index.
//! - `cookie`: request side (find, decode, classify, strip).
//! - `decide`: which peer serves the request.
//! - `set_cookie`: response side (insert / rewrite / prefix).
//!
//! - [`Sticky`]: the per-upstream bundle (conf + sid index) with the two calls the
//!   proxy makes: [`Sticky::on_request`] and [`Sticky::on_response`].
//!
//! Nothing here does I/O or reads the clock: `now` (Unix seconds) is an argument.

pub mod cookie;
pub mod decide;
pub mod set_cookie;
pub mod sid;

pub use cookie::{Invalid, StickyCookie};
pub use decide::{Choice, Decision, Outcome};
pub use sid::SidIndex;

use http::{HeaderMap, StatusCode};

/// How the sticky cookie is owned and encoded (spec section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Insert,
    Rewrite,
    Prefix,
}

/// How a server id is derived (spec section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Md5,
    Plain,
}

/// "Unlimited" for maxidle/maxlife when only the other one is set: 2^31-1 seconds.
pub const UNLIMITED_SECS: i64 = (1 << 31) - 1;

/// The validated parameters of one `session_sticky` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyConf {
    /// Cookie name, default `route`.
    pub cookie: String,
    pub domain: Option<String>,
    /// Default `/`.
    pub path: String,
    /// `Max-Age` seconds of an inserted cookie; `None` = browser-session cookie.
    pub maxage: Option<i64>,
    pub mode: Mode,
    /// `option=indirect`: the sticky cookie never reaches the backend. Always false
    /// in rewrite mode (the builder warns and clears it).
    pub indirect: bool,
    /// Idle limit in seconds. The builder sets it to [`UNLIMITED_SECS`] when only
    /// `maxlife` was given; `None` when neither was given.
    pub maxidle: Option<i64>,
    /// Lifetime limit in seconds, same rule as `maxidle`.
    pub maxlife: Option<i64>,
    /// `fallback=on` (default true).
    pub fallback: bool,
    pub hash: Hash,
}

impl Default for StickyConf {
    fn default() -> Self {
        StickyConf {
            cookie: "route".to_string(),
            domain: None,
            path: "/".to_string(),
            maxage: None,
            mode: Mode::Insert,
            indirect: false,
            maxidle: None,
            maxlife: None,
            fallback: true,
            hash: Hash::Md5,
        }
    }
}

impl StickyConf {
    /// True when the insert-mode cookie carries `SID|LASTSEEN|FIRSTSEEN`.
    pub fn timestamps(&self) -> bool {
        self.mode == Mode::Insert && (self.maxidle.is_some() || self.maxlife.is_some())
    }
}

/// One sticky upstream: its configuration and the sids of its peers (index `i`
/// is peer `i` of the engine's peer list).
#[derive(Debug, Clone)]
pub struct Sticky {
    pub conf: StickyConf,
    pub index: SidIndex,
}

impl Sticky {
    pub fn new(conf: StickyConf, index: SidIndex) -> Sticky {
        Sticky { conf, index }
    }

    /// Request side, all in one: find and decode the cookie in `headers`, decide
    /// the peer (`is_up(i)`: health of peer `i`; `choose(exclude)`: the
    /// balancer's pick skipping `exclude`), then strip the `Cookie` header(s) for
    /// forwarding. On [`Decision::Refuse`] answer 502 without a sticky cookie.
    pub fn on_request<U, C>(&self, headers: &mut HeaderMap, now: i64, is_up: U, choose: C) -> Choice
    where
        U: Fn(usize) -> bool,
        C: FnOnce(Option<usize>) -> Option<usize>,
    {
        let found = cookie::read(&self.conf, headers, now);
        let choice = decide::decide(&self.conf, &found, &self.index, now, is_up, choose);
        cookie::strip(&self.conf, headers);
        choice
    }

    /// The sid of the peer a choice routes to, for `$sticky_sid` (`None` when
    /// refused).
    pub fn sid(&self, choice: &Choice) -> Option<&str> {
        choice.decision.peer().and_then(|p| self.index.sid(p))
    }

    /// Response side: set or edit the sticky `Set-Cookie` for the peer of
    /// `choice` (after any [`decide::after_connect_failure`]). No-op for a
    /// refused choice and for status >= 400.
    pub fn on_response(
        &self,
        status: StatusCode,
        headers: &mut HeaderMap,
        choice: &Choice,
        now: i64,
    ) {
        let Some(sid) = self.sid(choice) else {
            return;
        };
        set_cookie::apply(&self.conf, status, headers, sid, choice, now);
    }
}
