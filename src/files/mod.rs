//! Serving local files: `root`, `alias`, `index`, `try_files`, `autoindex`,
//! MIME types, conditional and range requests.
//!
//! Pure: [`path`] maps a URI to a path that never leaves its directory,
//! [`range`] reads `Range`, [`cond`] the validators and conditional
//! headers, [`cache`] keeps open files (`open_file_cache`), [`validators`]
//! the `Last-Modified` and `ETag` values of the last files served. I/O: [`open`]
//! opens (refusing symbolic links when asked),
//! [`serve`] runs nginx's try_files -> index -> autoindex -> static order and
//! returns an [`serve::Outcome`], [`body`] streams the file in bounded
//! chunks, [`autoindex`] lists a directory. The proxy turns an outcome into
//! its response (`crate::proxy::files`).

pub mod autoindex;
pub mod body;
pub mod cache;
pub mod cond;
pub mod open;
pub mod path;
pub mod range;
pub mod serve;
pub mod validators;
