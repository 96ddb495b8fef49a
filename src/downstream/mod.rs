//! HTTP/1.x towards the clients (`conn`: one client connection's coroutine,
//! its request body and the upgrade tunnel, over the `http1` codec).

pub mod conn;
