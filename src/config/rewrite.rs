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
#[derive(Debug, Clone, Default)]
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
}

impl RedirectConf {
    /// The `error_page` entry for `status`, if any.
    pub fn error_page(&self, status: u16) -> Option<&ErrorPage> {
        self.error_pages.iter().find(|p| p.status == status)
    }
}
