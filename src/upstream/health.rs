//! (being written) passive health: max_fails / fail_timeout accounting.
