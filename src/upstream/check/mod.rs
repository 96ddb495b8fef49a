//! Active health checks: Tengine's `check` directive (`check_http_send`,
//! `check_http_expect_alive`, `check_keepalive_requests`).
//!
//! A check is a non-blocking TCP connect (`type=tcp`), or a connect, the raw
//! `check_http_send` bytes and the reply's status line (`type=http`), all
//! within `timeout`; with `check_keepalive_requests N` an http check reads the
//! whole reply and its connection serves up to N checks. Results go to the
//! peer's [`PeerStats`](crate::upstream::stats::PeerStats) in the shared
//! [`HealthTable`](crate::upstream::stats::HealthTable); workers read them
//! with relaxed atomic loads, so checks never run on, or wait for, the request
//! path.
//!
//! - [`state`] (pure): the rise/fall state machine of one peer, with
//!   `default_down`, time passed in; when each peer is checked (the first
//!   checks of an upstream spread over one interval in time slots).
//! - [`probe`] (pure): what a check connects to and sends, and the verdict on
//!   its reply, read by the one HTTP/1 codec ([`crate::http1`]): the status
//!   for `check_http_expect_alive`, and for kept-alive checks the framing and
//!   keep-alive that say where the reply ends and whether its connection can
//!   carry the next check.
//! - [`conn`] (I/O): one check in flight on one non-blocking socket, moved on
//!   each time its socket is ready; [`check_on`] runs one on this thread.
//! - [`scheme`] (pure): which upstreams' http checks speak TLS (those only
//!   `proxy_pass https://` names) and with which `proxy_ssl_*` settings.
//! - [`tls`] (I/O): rustls driven over a check's non-blocking socket, in the
//!   same steps as a plain check.
//! - [`runner`] (I/O): the [`Checker`] thread, one `poll(2)` loop over every
//!   check in flight; no task, timer or epoll registration per check.

pub mod conn;
pub mod probe;
pub mod runner;
pub mod scheme;
pub mod state;
#[cfg(test)]
mod testing;
pub mod tls;

pub use conn::{check_on, check_once, Kept};
pub use probe::{check_target, CheckError};
pub use runner::Checker;
pub use scheme::{scheme, Scheme};
pub use state::{first_due, CheckState, Transition, SLOTS};
pub use tls::CheckTls;
