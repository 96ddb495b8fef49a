//! Upstream peers at run time: balancing, health (passive `health`, active `check`,
//! the shared `stats` view and the `status` page), connection pools.

pub mod balance;
pub mod check;
pub mod health;
pub mod peers;
pub mod pool;
pub mod stats;
pub mod status;
