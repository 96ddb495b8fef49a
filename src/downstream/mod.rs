//! The client side: connections from clients and the seam to what answers
//! them. `handler` (the [`handler::Handler`] trait the proxy implements),
//! `state` (a connection's state: timeouts, signals, the deadline slot),
//! `body` (the client's bytes and request body), `conn` (the HTTP/1 loop
//! over the `http1` codec), `h2` (HTTP/2 through hyper, h2c and ALPN
//! dispatch), `sendfile` (a file's body with sendfile(2) on plain TCP),
//! `tls` (the handshake on an `ssl` listener),
//! `tunnel` (after a `101`). Nothing here imports the proxy.

pub mod body;
pub mod conn;
pub mod h2;
pub mod handler;
mod out;
mod sendfile;
pub mod state;
pub mod tls;
pub mod tunnel;
