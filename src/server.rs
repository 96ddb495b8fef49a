//! Listeners, accept loop, connection caps, shutdown (being written).

use crate::config::Config;

/// Runs the proxy with `config` until it is stopped. Blocks the calling thread.
pub fn run(config: Config) -> std::io::Result<()> {
    let _ = config;
    Err(std::io::Error::other("the proxy engine has not landed yet"))
}
