//! sticky-proxy: a reverse proxy that speaks nginx's configuration language and
//! implements Tengine's `session_sticky` cookie stickiness.
//!
//! Data flow (see ARCHITECTURE.md): `config` (parse -> build) gives an immutable
//! `Config`; `server` accepts connections; `proxy::route` picks the server and
//! location; `sticky` decodes the cookie and decides the peer; `upstream` connects,
//! pools and balances; the response goes back through `sticky::set_cookie`.
//! `config`, `sticky`, `proxy::{route, uri, headers, vars}` and `upstream::balance`
//! are pure: no I/O, no clock.

#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod access;
pub mod base64;
pub mod compress;
pub mod config;
pub mod downstream;
pub mod files;
pub mod http1;
pub mod log;
pub mod numfmt;
pub mod process;
pub mod proxy;
pub mod request_id;
pub mod reuse;
pub mod server;
pub mod sticky;
pub mod timefmt;
pub mod tls;
pub mod upstream;
pub mod user_vars;
pub mod vars;
