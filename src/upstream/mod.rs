//! Upstream peers at run time: balancing, health (passive `health`, active `check`,
//! the shared `stats` view and the `status` page), connection pools, and HTTP/1.1
//! to the backends (`client`: the I/O over the `http1` codec, on a plain or TLS
//! `stream`), and the peers of
//! names resolved at run time (`resolved`: the pure change; `dns`: the resolver
//! thread).

pub mod background;
pub mod balance;
pub mod check;
pub mod client;
pub mod connect;
pub mod dns;
pub mod hash;
pub mod health;
pub mod method;
pub mod peers;
pub mod pool;
pub mod resolved;
pub mod stats;
pub mod status;
pub mod stream;
