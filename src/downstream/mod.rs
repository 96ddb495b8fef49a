//! HTTP/1.x towards the clients (`h1`: the pure codec; `conn`: one client
//! connection's coroutine, its request body and the upgrade tunnel).

pub mod conn;
pub mod h1;
