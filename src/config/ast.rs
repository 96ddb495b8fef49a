//! The raw syntax tree produced by [`crate::config::parse`]: directives with their
//! arguments, optional block, and the file/line where each token was read.
//!
//! Nothing here knows what a directive means; the builder ([`crate::config::build`])
//! turns this tree into the typed [`crate::config::Config`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a token was read: the file (shared by every token of that file) and a
/// 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub file: Arc<PathBuf>,
    pub line: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: directives given on the command line (`-g`), shown as nginx
        // does (`... in command line`).
        if self.line == 0 {
            return write!(f, "{}", self.file.display());
        }
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One argument. `value` is the text after quote removal and escape processing;
/// variables (`$name`, `${name}`) are kept as text. `quoted` tells whether it was
/// written in quotes (nginx treats a quoted `"on"` like a bare `on`, but `-T` output
/// and a few directives care).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub value: String,
    pub quoted: bool,
    pub span: Span,
}

/// One directive: `name arg... ;` or `name arg... { block }`.
/// After include expansion, `include` directives no longer appear: their files'
/// directives stand in their place, each keeping its own file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<Arg>,
    /// `Some` for a block directive (`http { ... }`), `None` for one ending in `;`.
    pub block: Option<Vec<Directive>>,
    /// Where the directive ends (its `;` or `{`), the line nginx names in its
    /// errors; each argument keeps its own line in [`Arg::span`].
    pub span: Span,
}
