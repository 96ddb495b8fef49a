//! Listeners, accept loop, connection caps, shutdown.
