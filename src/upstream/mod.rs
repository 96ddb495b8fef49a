//! Upstream peers at run time: balancing, health (passive `health`, active `check`,
//! the shared `stats` view and the `status` page), connection pools, and HTTP/1.1
//! to the backends (`client`: the I/O over the `http1` codec).

pub mod balance;
pub mod check;
pub mod client;
pub mod hash;
pub mod health;
pub mod method;
pub mod peers;
pub mod pool;
pub mod stats;
pub mod status;
