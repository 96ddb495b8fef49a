//! The request pipeline: routing, URI mapping, header edits, variables, forwarding.

pub mod errors;
pub mod forward;
pub mod headers;
pub mod route;
pub mod uri;
pub mod vars;
