//! The request pipeline, implementing `downstream::handler::Handler`:
//! `handler` (orchestration of one request), `worker` (per-thread state of
//! one configuration), `plan` (route, refusals, URI mapping; synchronous),
//! `attempt` (the pure failover state machine), `exchange` (one try's I/O),
//! `body` (the streamed bodies), `reply` (proxy-made responses), and the
//! pure pieces `route`, `uri`, `headers`, `errors` (nginx's variables are
//! `crate::vars`, shared with the access log).

pub mod attempt;
pub mod body;
pub mod errors;
pub mod exchange;
pub mod handler;
pub mod headers;
pub mod locate;
pub mod plan;
pub mod redirect;
pub mod reply;
pub mod route;
pub mod script;
pub mod uri;
pub mod worker;
