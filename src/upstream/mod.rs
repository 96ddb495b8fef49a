//! Upstream peers at run time: balancing, health, connection pools.

pub mod balance;
pub mod health;
pub mod peers;
pub mod pool;
