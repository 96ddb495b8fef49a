//! Configuration errors and warnings, shaped like nginx's messages:
//! `proxy: [emerg] MESSAGE in FILE:LINE`.

use std::fmt;

use super::ast::Span;

/// A fatal configuration error. `Display` gives nginx's text without the
/// `proxy: [emerg] ` prefix, e.g. `unknown directive "proxy_pas" in /etc/x.conf:20`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
    /// `None` only for errors not tied to a place (e.g. the main file cannot be opened).
    pub span: Option<Span>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>, span: &Span) -> Self {
        ConfigError {
            message: message.into(),
            span: Some(span.clone()),
        }
    }

    pub fn without_span(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            span: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.span {
            Some(span) => write!(f, "{} in {}", self.message, span),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A non-fatal remark made while loading (`[warn]` in nginx), e.g. an accepted but
/// ignored directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub message: String,
    pub span: Span,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.message, self.span)
    }
}
