//! The `proxy` binary (being written).
fn main() {}
