//! HTTP/1.1 on the wire, both directions, no I/O: what `downstream` (the
//! clients), `upstream` (the backends) and the health checker read and write.
//!
//! - [`request`]: a client's request head parsed (nginx's limits and
//!   refusals); the backend's request head written.
//! - [`response`]: a backend's response head parsed; the client's response
//!   head written.
//! - [`framing`]: RFC 9112 section 6.3, decided once for every head; the
//!   result travels as a typed value to whoever reads or writes the body.
//! - [`chunked`]: the chunked transfer-coding, decoded and framed.
//! - [`fields`]: header-line spans, decimals, `Connection` tokens.
//! - [`names`]: header names as written: received, configured or canonical.
//! - [`invalid`]: `ignore_invalid_headers` / `underscores_in_headers`: which
//!   request header lines are kept.
//! - [`status`]: reason phrases.
//! - [`trailers`]: which trailer fields pass on, and the last chunk that
//!   carries them.

pub mod chunked;
pub mod fields;
pub mod framing;
pub mod invalid;
pub mod names;
pub mod request;
pub mod response;
pub mod status;
pub mod trailers;
