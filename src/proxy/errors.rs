//! (being written) proxy-made responses and the one error -> status mapping.
