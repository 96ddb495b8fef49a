//! The request pipeline, implementing `downstream::handler::Handler`:
//! `handler` (orchestration of one request), `worker` (per-thread state of
//! one configuration), `plan` (route, refusals, URI mapping; synchronous),
//! `forward` (where a planned request goes), `dynamic` (a variable
//! `proxy_pass` host that no upstream names), `prepare` (its upstream head),
//! `locate` and `script` (the rewrite phases), `internal` (internal redirects
//! and `error_page`),
//! `attempt` (the pure failover state machine), `exchange` (one try's I/O),
//! `body` (the streamed bodies), `reply` (proxy-made responses),
//! `add_headers` (`add_header` and `expires` on every response),
//! `auth_request` (the access phase's subrequest), and the
//! pure pieces `route`, `uri`, `headers`, `errors` (nginx's variables are
//! `crate::vars`, shared with the access log).

pub mod access;
pub mod add_headers;
pub mod attempt;
pub mod auth_request;
pub mod body;
mod compress;
pub mod cookie_flags;
pub mod dynamic;
pub mod errors;
pub mod exchange;
mod files;
pub mod forward;
pub mod handler;
pub mod headers;
pub mod internal;
pub mod locate;
pub mod plan;
pub mod prepare;
pub mod redirect;
pub mod reply;
pub mod route;
pub mod script;
pub mod shape;
pub mod uri;
mod view;
pub mod worker;
