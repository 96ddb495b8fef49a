//! Tengine's `session_sticky` semantics as pure code (spec/session_sticky.md).
//!
//! - [`StickyConf`]: the validated `session_sticky` parameters (built by the config
//!   builder).
//! - `sid`: server ids (md5 / plain) and the sid -> peer index.
//! - `cookie`: request side (find, decode, classify, strip).
//! - `decide`: which peer serves the request.
//! - `set_cookie`: response side (insert / rewrite / prefix).
//!
//! Nothing here does I/O or reads the clock: `now` (Unix seconds) is an argument.

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
