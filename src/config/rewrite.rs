//! The typed settings of nginx's internal redirects and error pages, as the
//! builder makes them and the proxy reads them: `error_page`, `internal`,
//! `proxy_intercept_errors`, `recursive_error_pages` and named locations
//! (`location @name`).

use std::sync::Arc;

use super::template::Template;

/// What `error_page` does with the status of the response it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// No `=`: the response keeps the original error status.
    Keep,
    /// `=` alone: the status of the page's own response.
    Page,
    /// `=CODE`.
    Code(u16),
}

/// Where `error_page` sends the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorTarget {
    /// A URI starting with `/`: an internal redirect (the method becomes GET,
    /// except HEAD). May hold variables and `?args`.
    Uri(Template),
    /// `@name`: the named location, with the method and URI unchanged.
    Named(String),
    /// Anything else (`http://...`): a redirect to it (302 unless `=301`,
    /// `=303`, `=307` or `=308`).
    Redirect(Template),
}

/// One status of an `error_page` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    pub status: u16,
    pub overwrite: Overwrite,
    pub target: ErrorTarget,
}

/// The internal-redirect settings of a location (or of a server, used when no
/// location matches). Defaults are nginx's.
#[derive(Debug, Clone)]
pub struct RedirectConf {
    /// `internal`: only reachable by an internal redirect (404 otherwise). Not
    /// inherited.
    pub internal: bool,
    /// `error_page`, inherited whole from the outer level when a level has none.
    pub error_pages: Arc<[ErrorPage]>,
    /// `proxy_intercept_errors`, default off.
    pub intercept_errors: bool,
    /// `recursive_error_pages`, default off.
    pub recursive_error_pages: bool,
    /// The block's rewrite-module statements (`rewrite`, `set`, `if`,
    /// `break`, and `return` when one of those is there too). Not inherited.
    pub script: Script,
    /// `rewrite_log`: each rewrite is logged at `notice`. Default off.
    pub rewrite_log: bool,
    /// A `location ~` whose regex has groups: its captures (`$1`, and the user
    /// variables of its named groups: group index, variable index) are set
    /// when it matches.
    pub captures: Option<Arc<[(usize, u16)]>>,
    /// A server's `server_name ~regex` names that have groups: the one that
    /// matches the request's host sets the captures (server level only).
    pub name_patterns: Arc<[Pattern]>,
}

impl Default for RedirectConf {
    fn default() -> Self {
        RedirectConf {
            internal: false,
            error_pages: Arc::new([]),
            intercept_errors: false,
            recursive_error_pages: false,
            script: Arc::new([]),
            rewrite_log: false,
            captures: None,
            name_patterns: Arc::new([]),
        }
    }
}

impl RedirectConf {
    /// The `error_page` entry for `status`, if any.
    pub fn error_page(&self, status: u16) -> Option<&ErrorPage> {
        self.error_pages.iter().find(|p| p.status == status)
    }
}

/// The statements of nginx's rewrite module in one block (server, location or
/// `if`), run in order: empty when the block has none.
pub type Script = Arc<[Op]>;

/// What `rewrite` does after replacing the URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteFlag {
    /// No flag: the next statement runs.
    Next,
    /// `last`: stop, and match the locations again with the new URI.
    Last,
    /// `break`: stop, and stay in this location with the new URI.
    Break,
    /// `redirect`: a 302 to the new URI.
    Redirect,
    /// `permanent`: a 301 to the new URI.
    Permanent,
}

/// One statement of a [`Script`].
#[derive(Debug, Clone)]
pub enum Op {
    /// `rewrite REGEX REPLACEMENT [FLAG]`.
    Rewrite {
        re: Pattern,
        replacement: Template,
        /// `last`, `break`, ...; a replacement starting with `http://`,
        /// `https://` or `$scheme` is a redirect (302) whatever the flag, unless
        /// the flag is `permanent`.
        flag: RewriteFlag,
        /// The request's arguments are appended (the replacement does not end
        /// in `?`).
        keep_args: bool,
    },
    /// `set $NAME VALUE`.
    Set { var: u16, value: Template },
    /// `return`.
    Return(super::Return),
    /// `break`.
    Break,
    /// `if (CONDITION) { ... }`; `conf` is the settings of the block (a nested
    /// location of the `if` in a location; `None` at server level).
    If {
        cond: Condition,
        body: Script,
        conf: Option<Arc<super::LocationConf>>,
    },
}

/// A file test of `if (-f ...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileTest {
    /// `-f`: a regular file.
    File,
    /// `-d`: a directory.
    Dir,
    /// `-e`: anything.
    Exists,
    /// `-x`: an executable file.
    Executable,
}

/// The condition of an `if`.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `($var)`: true unless empty or `0`.
    Value(Template),
    /// `($var = text)` / `($var != text)` (`negate`).
    Equals {
        value: Template,
        text: Template,
        negate: bool,
    },
    /// `($var ~ re)`, `~*`, `!~`, `!~*`: captures are set on a match.
    Matches {
        value: Template,
        re: Pattern,
        negate: bool,
    },
    /// `(-f path)`, `(!-f path)`, ...
    File {
        test: FileTest,
        path: Template,
        negate: bool,
    },
}

/// A regex of the rewrite module, with the user variables its named groups set
/// on a match (`(?<name>...)` sets `$name`, as nginx).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub re: regex::Regex,
    /// (group index, [`super::Variable::User`] index) per named group.
    pub named: Vec<(usize, u16)>,
}
